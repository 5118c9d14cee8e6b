"""The seed's LMI flow with its model data in S3, through `lmstream control-plane` and boto3:
ModelDataUrl = s3://.../code/model.tar.gz in moto's S3 server, holding only
chat_llama2_13b_hf/serving.properties whose option.model_id is an s3:// prefix with the model's
files (the seed's layout). The control plane passes the URL through to its worker
(`lmstream serve --model s3://...`) and the worker's environment carries AWS_ENDPOINT_URL_S3.

EXPECTED TO FAIL until the model resolver (store/: s3://, model.tar.gz) lands in `serve`: today
the worker cannot open an s3:// model, so the endpoint ends Failed. Needs python3 with boto3 and
moto (pyenv 3.11)."""
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import unittest
import urllib.request

try:
    import boto3
    import moto  # noqa: F401
except ImportError as e:
    raise SystemExit("boto3 and moto are required for this test (pyenv python3): %s" % e)

from lmstest import cached_model, free_port, python_client_dir  # noqa: E402
from lmstest.control import LMI_IMAGE, ROLE, ControlPlane  # noqa: E402

sys.path.insert(0, python_client_dir())
from lmstream_client import LineIterator  # noqa: E402


class LmiFromS3(unittest.TestCase):
    # ---- Passes once the store/ model resolver is used by `lmstream serve` (see the docstring).
    def test_seed_lmi_flow_from_s3(self):
        port = free_port()
        moto_proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            s3_url = "http://127.0.0.1:%d" % port
            for _ in range(200):
                try:
                    urllib.request.urlopen(s3_url, timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": s3_url}
            s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
            s3.create_bucket(Bucket="sagemaker-us-east-1-111122223333")
            model = cached_model("hf", "micro", "f32", tokenizer=True)
            prefix = "hf-large-model-djl/meta-llama/Llama-2-13b-chat/model/"
            for name in os.listdir(model):
                s3.upload_file(os.path.join(model, name), "sagemaker-us-east-1-111122223333", prefix + name)
            props = ("engine = MPI\noption.entryPoint=djl_python.huggingface\noption.tensor_parallel_degree=4\n"
                     "option.low_cpu_mem_usage=TRUE\noption.rolling_batch=lmi-dist\noption.max_rolling_batch_size=64\n"
                     "option.model_loading_timeout=900\noption.model_id=s3://sagemaker-us-east-1-111122223333/%s\n"
                     "option.paged_attention=true\n" % prefix).encode()
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                info = tarfile.TarInfo("chat_llama2_13b_hf/serving.properties")
                info.size = len(props)
                tar.addfile(info, io.BytesIO(props))
            s3.put_object(Bucket="sagemaker-us-east-1-111122223333", Key="code/model.tar.gz", Body=buf.getvalue())
            with ControlPlane(env=env) as cp:
                sm, smr = cp.sm(), cp.rt()
                sm.create_model(ModelName="Llama-2-13b-chat-lmi-streaming-2023-12-01-10-20-30-123",
                                ExecutionRoleArn=ROLE, PrimaryContainer={
                                    "Image": LMI_IMAGE,
                                    "ModelDataUrl": "s3://sagemaker-us-east-1-111122223333/code/model.tar.gz",
                                    "Environment": {"MODEL_LOADING_TIMEOUT": "3600"}})
                sm.create_endpoint_config(
                    EndpointConfigName="Llama-2-13b-chat-lmi-streaming-2023-12-01-10-20-30-123-config",
                    ProductionVariants=[{"VariantName": "variant1",
                                         "ModelName": "Llama-2-13b-chat-lmi-streaming-2023-12-01-10-20-30-123",
                                         "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1,
                                         "ModelDataDownloadTimeoutInSeconds": 3600,
                                         "ContainerStartupHealthCheckTimeoutInSeconds": 3600}])
                ep = "Llama-2-13b-chat-lmi-streaming-2023-12--2023-12-01-10-20-30-456"
                sm.create_endpoint(EndpointName=ep,
                                   EndpointConfigName="Llama-2-13b-chat-lmi-streaming-2023-12-01-10-20-30-123-config")
                status = "Creating"
                t0 = time.monotonic()
                while status == "Creating" and time.monotonic() - t0 < 120:
                    time.sleep(0.2)
                    d = sm.describe_endpoint(EndpointName=ep)
                    status = d["EndpointStatus"]
                self.assertEqual(status, "InService", d.get("FailureReason"))
                r = smr.invoke_endpoint_with_response_stream(
                    EndpointName=ep, ContentType="application/json",
                    Body=json.dumps({"inputs": "What is Amazon SageMaker?", "parameters": {"max_new_tokens": 8}}))
                lines = [json.loads(x) for x in LineIterator(r["Body"]) if x.strip()]
                self.assertIn("generated_text", lines[-1])
                sm.delete_endpoint(EndpointName=ep)
                sm.get_waiter("endpoint_deleted").wait(EndpointName=ep, WaiterConfig={"Delay": 1})
        finally:
            moto_proc.terminate()
            moto_proc.wait(10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
