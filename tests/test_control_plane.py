"""`lmstream control-plane` driven by boto3's `sagemaker` and `sagemaker-runtime` clients (and
awscli) on one endpoint_url: the seed notebooks' TGI and LMI cells as written (create_model ->
create_endpoint_config -> create_endpoint -> InService -> invoke_endpoint_with_response_stream
read with LineIterator -> describe_endpoint_config -> delete all three -> describe_endpoint raises
ValidationException), both botocore waiters, every error path of the reference with code and
message, list paging/sorting/filters, the memory budget (ResourceLimitExceeded), endpoints that
fail (unknown image, bad model file) and SigV4. Needs python3 with boto3 (pyenv 3.11)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

try:
    import boto3  # noqa: F401
    import botocore.exceptions
except ImportError as e:  # these tests must not pass without boto3
    raise SystemExit("boto3/botocore are required for this test (pyenv python3): %s" % e)

from lmstest import binary, micro_model, python_client_dir  # noqa: E402
from lmstest.control import LMI_IMAGE, ROLE, SEED_TGI_ENV, TGI_IMAGE, ControlPlane, model_4k  # noqa: E402

sys.path.insert(0, python_client_dir())
from lmstream_client import LineIterator  # noqa: E402

ACCOUNT = "123456789012"
ARN = "arn:aws:sagemaker:us-east-1:%s:" % ACCOUNT
ClientError = botocore.exceptions.ClientError


def tcp_sockets():
    """inode -> (local port, remote port, state) of every IPv4 TCP socket (/proc/net/tcp)."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            out[cols[9]] = (int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16), cols[3])
    return out


def fd_targets(pid):
    """What each open descriptor of PID points at (/proc/PID/fd), as readlink gives it."""
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue  # closed meanwhile
    return out


def socket_inodes(pid):
    return {t[8:-1] for t in fd_targets(pid) if t.startswith("socket:[")}


def upstream_connections(plane_pid, worker_pid):
    """The control plane's TCP connections to the worker's listening port, with their states."""
    socks = tcp_sockets()
    [port] = {socks[i][0] for i in socket_inodes(worker_pid) if i in socks and socks[i][2] == "0A"}
    return [socks[i][2] for i in socket_inodes(plane_pid) if i in socks and socks[i][1] == port]


def name_from_base(base, stamp="2023-12-01-10-20-30-123"):
    """sagemaker.utils.name_from_base: base trimmed to 39 characters + '-' + a timestamp."""
    return base[:63 - len(stamp) - 1] + "-" + stamp


def tgi_text(body):
    text = ""
    for line in LineIterator(body):
        if line.startswith(b"data:"):
            ev = json.loads(line[5:])
            assert "error" not in ev, ev
            if not ev["token"]["special"]:
                text += ev["token"]["text"]
    return text


def error_of(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("no error from %s" % fn)


def simple_model(sm, name, model_path, image=TGI_IMAGE, env=None):
    e = {"HF_MODEL_ID": model_path}
    e.update(env or {})
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "Environment": e})


def simple_config(sm, name, model, count=1, variant="AllTraffic"):
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": variant, "ModelName": model, "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": count}])


def wait_status(sm, name, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] not in ("Creating", "Updating", "Deleting"):
            return d
        time.sleep(0.1)
    raise AssertionError("endpoint %s still %s" % (name, d["EndpointStatus"]))


class SeedTgiFlow(unittest.TestCase):
    """The TGI notebook's cells, with --wait-for-in-service: the first describe is final."""

    def test_seed_tgi_flow(self):
        tmp = tempfile.mkdtemp()
        model_path = model_4k(tmp)
        with ControlPlane(["--wait-for-in-service"]) as cp:
            sm, smr = cp.sm(), cp.rt()
            model_name = name_from_base("Llama-2-13b-chat-tgi-streaming")
            env = dict(SEED_TGI_ENV, HF_MODEL_ID=model_path)
            r = sm.create_model(ModelName=model_name, ExecutionRoleArn=ROLE,
                                PrimaryContainer={"Image": TGI_IMAGE, "Environment": env})
            self.assertEqual(r["ModelArn"], ARN + "model/" + model_name.lower())
            config_name = model_name + "-config"
            sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": model_name, "InstanceType": "ml.g5.12xlarge",
                "InitialInstanceCount": 1, "ContainerStartupHealthCheckTimeoutInSeconds": 300}])
            endpoint_name = name_from_base(model_name)
            self.assertEqual(len(endpoint_name), 63)
            self.assertIn("--", endpoint_name)
            r = sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
            self.assertEqual(r["EndpointArn"], ARN + "endpoint/" + endpoint_name.lower())
            # The notebook's loop: `while status == "Creating": sleep(60)` exits on its first poll.
            d = sm.describe_endpoint(EndpointName=endpoint_name)
            self.assertEqual(d["EndpointStatus"], "InService", d.get("FailureReason"))
            self.assertEqual(d["EndpointName"], endpoint_name)
            pv = d["ProductionVariants"][0]
            self.assertEqual((pv["VariantName"], pv["CurrentInstanceCount"], pv["DesiredInstanceCount"],
                              pv["CurrentWeight"]), ("AllTraffic", 1, 1, 1.0))
            self.assertEqual(pv["DeployedImages"][0]["SpecifiedImage"], TGI_IMAGE)
            self.assertGreaterEqual(d["LastModifiedTime"], d["CreationTime"])

            body = {"inputs": "<s>[INST] What is Amazon SageMaker? [/INST]",
                    "parameters": {"max_new_tokens": 12, "do_sample": False, "temperature": 0.6, "top_p": 0.9,
                                   "stop": ["</s>"]}, "stream": True}
            resp = smr.invoke_endpoint_with_response_stream(
                EndpointName=endpoint_name, Body=json.dumps(body), ContentType="application/json",
                CustomAttributes="accept_eula=true")
            self.assertEqual(resp["InvokedProductionVariant"], "AllTraffic")
            text = tgi_text(resp["Body"])
            self.assertTrue(text)
            # Greedy: the stream's text equals InvokeEndpoint's for the same request.
            greedy = {"inputs": body["inputs"], "parameters": {"max_new_tokens": 12}}
            text = tgi_text(smr.invoke_endpoint_with_response_stream(
                EndpointName=endpoint_name, Body=json.dumps(dict(greedy, stream=True)),
                ContentType="application/json")["Body"])
            out = json.loads(smr.invoke_endpoint(EndpointName=endpoint_name, Body=json.dumps(greedy),
                                                 ContentType="application/json")["Body"].read())
            self.assertEqual(out[0]["generated_text"], greedy["inputs"] + text)
            # One after another, the three invocations went over one kept-alive connection to
            # the worker, which stays open (ESTABLISHED, state 01) for the next.
            [worker] = cp.worker_pids()
            self.assertEqual(upstream_connections(cp.proc.pid, worker), ["01"])
            # The worker inherited none of the control plane's sockets or files (its listening
            # socket, clients' connections, the state database): only stdio comes through exec.
            def open_files(pid):
                return {t for t in fd_targets(pid) if t.startswith("socket:") or (
                    t.startswith("/") and not t.startswith("/dev/") and not t.endswith(".log"))}
            plane_files = open_files(cp.proc.pid)
            self.assertTrue(any(t.startswith("socket:") for t in plane_files))
            self.assertEqual(open_files(worker) & plane_files, set())

            # Clean-up cell.
            cfg = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
            self.assertEqual(cfg["ProductionVariants"][0]["ModelName"], model_name)
            self.assertEqual(cfg["ProductionVariants"][0]["InitialVariantWeight"], 1.0)
            self.assertIs(cfg["EnableNetworkIsolation"], False)
            sm.delete_endpoint(EndpointName=endpoint_name)
            sm.delete_endpoint_config(EndpointConfigName=config_name)
            sm.delete_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
            sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint_name,
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            code, msg = error_of(sm.describe_endpoint, EndpointName=endpoint_name)
            self.assertEqual(code, "ValidationException")
            self.assertEqual(msg, 'Could not find endpoint "%sendpoint/%s".' % (ARN, endpoint_name.lower()))
            self.assertEqual(cp.worker_pids(), [])  # the worker is gone
        shutil.rmtree(tmp, ignore_errors=True)


class Plane(unittest.TestCase):
    """One control plane (no --wait-for-in-service) for the LMI flow, waiters and errors."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-cp-test-")
        cls.cp = ControlPlane().start()
        cls.sm, cls.smr = cls.cp.sm(), cls.cp.rt()
        cls.model = micro_model()

    @classmethod
    def tearDownClass(cls):
        cls.cp.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_seed_lmi_flow(self):
        sm, smr = self.sm, self.smr
        # model.tar.gz's layout: a top-level folder holding the seed's serving.properties.
        data = os.path.join(self.tmp, "lmi-model-data")
        os.makedirs(os.path.join(data, "chat_llama2_13b_hf"))
        with open(os.path.join(data, "chat_llama2_13b_hf", "serving.properties"), "w") as f:
            f.write("engine = MPI\noption.entryPoint=djl_python.huggingface\noption.tensor_parallel_degree=4\n"
                    "option.low_cpu_mem_usage=TRUE\noption.rolling_batch=lmi-dist\n"
                    "option.max_rolling_batch_size=64\noption.model_loading_timeout=900\n"
                    "option.model_id=%s\noption.paged_attention=true\n" % self.model)
        model_name = name_from_base("Llama-2-13b-chat-lmi-streaming")
        sm.create_model(ModelName=model_name, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": LMI_IMAGE, "ModelDataUrl": data, "Environment": {"MODEL_LOADING_TIMEOUT": "3600"}})
        config_name = model_name + "-config"
        sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[{
            "VariantName": "variant1", "ModelName": model_name, "InstanceType": "ml.g5.12xlarge",
            "InitialInstanceCount": 1, "ModelDataDownloadTimeoutInSeconds": 3600,
            "ContainerStartupHealthCheckTimeoutInSeconds": 3600,
            "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}])
        endpoint_name = name_from_base(model_name)
        sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
        d = sm.describe_endpoint(EndpointName=endpoint_name)
        self.assertEqual(d["EndpointStatus"], "Creating")
        self.assertEqual(d["ProductionVariants"][0]["VariantStatus"][0]["Status"], "Creating")
        status = d["EndpointStatus"]
        while status == "Creating":  # the notebook sleeps 60 s per poll
            time.sleep(0.2)
            status = sm.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"]
        self.assertEqual(status, "InService", sm.describe_endpoint(EndpointName=endpoint_name).get("FailureReason"))
        body = {"inputs": "<s>[INST] What is Amazon SageMaker? [/INST]", "parameters": {"max_new_tokens": 10}}
        resp = smr.invoke_endpoint_with_response_stream(EndpointName=endpoint_name, Body=json.dumps(body),
                                                        ContentType="application/json")
        self.assertEqual(resp["InvokedProductionVariant"], "variant1")
        lines = [json.loads(line) for line in LineIterator(resp["Body"]) if line.strip()]
        self.assertTrue(lines and "generated_text" in lines[-1], lines)  # LMI's json formatter
        with open(os.path.join(self.cp.state_dir, "logs", endpoint_name + ".variant1.1.log")) as f:
            log = f.read()
        self.assertIn("serving.properties", log)
        cfg = sm.describe_endpoint_config(EndpointConfigName=config_name)
        sm.delete_endpoint(EndpointName=endpoint_name)
        sm.delete_endpoint_config(EndpointConfigName=config_name)
        sm.delete_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
        sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        code, msg = error_of(sm.describe_endpoint, EndpointName=endpoint_name)
        self.assertEqual((code, msg), ("ValidationException",
                                       'Could not find endpoint "%sendpoint/%s".' % (ARN, endpoint_name.lower())))

    def test_waiters(self):
        sm = self.sm
        simple_model(sm, "waiter-model", self.model)
        simple_config(sm, "waiter-cfg", "waiter-model")
        sm.create_endpoint(EndpointName="waiter-ep", EndpointConfigName="waiter-cfg")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="waiter-ep", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self.assertEqual(sm.describe_endpoint(EndpointName="waiter-ep")["EndpointStatus"], "InService")
        sm.delete_endpoint(EndpointName="waiter-ep")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="waiter-ep", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        # A missing endpoint: ValidationException is the in-service waiter's failure acceptor.
        with self.assertRaises(botocore.exceptions.WaiterError) as ctx:
            sm.get_waiter("endpoint_in_service").wait(EndpointName="waiter-ep", WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.assertIn("ValidationException", str(ctx.exception))
        # A Failed endpoint: terminal failure for endpoint_in_service.
        simple_model(sm, "waiter-bad-image", self.model, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-container:1")
        simple_config(sm, "waiter-bad-cfg", "waiter-bad-image")
        sm.create_endpoint(EndpointName="waiter-bad", EndpointConfigName="waiter-bad-cfg")
        with self.assertRaises(botocore.exceptions.WaiterError) as ctx:
            sm.get_waiter("endpoint_in_service").wait(EndpointName="waiter-bad", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self.assertIn('we matched expected path: "Failed"', str(ctx.exception))
        d = sm.describe_endpoint(EndpointName="waiter-bad")
        self.assertIn('The image "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-container:1"', d["FailureReason"])
        self.assertIn("not one lmstream can stand in for", d["FailureReason"])
        # A Failed endpoint accepts only DeleteEndpoint.
        code, msg = error_of(sm.update_endpoint, EndpointName="waiter-bad", EndpointConfigName="waiter-cfg")
        self.assertEqual(code, "ValidationException")
        self.assertIn("Failed", msg)
        sm.delete_endpoint(EndpointName="waiter-bad")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="waiter-bad", WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    def test_bad_model_file_fails_naming_it(self):
        sm = self.sm
        bad = os.path.join(self.tmp, "broken-model.gguf")
        with open(bad, "wb") as f:
            f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)
        simple_model(sm, "broken", bad)
        simple_config(sm, "broken-cfg", "broken")
        sm.create_endpoint(EndpointName="broken-ep", EndpointConfigName="broken-cfg")
        d = wait_status(sm, "broken-ep")
        self.assertEqual(d["EndpointStatus"], "Failed")
        reason = d["FailureReason"]
        self.assertTrue(reason.startswith("The primary container for production variant AllTraffic did not pass the "
                                          "ping health check. Please check CloudWatch logs for this endpoint."), reason)
        self.assertIn(bad, reason)
        self.assertLessEqual(len(reason), 1024)
        code, msg = error_of(self.smr.invoke_endpoint, EndpointName="broken-ep", Body=b"{}", ContentType="application/json")
        self.assertEqual((code, msg), ("ValidationError", "Endpoint broken-ep of account %s not found." % ACCOUNT))
        sm.delete_endpoint(EndpointName="broken-ep")

    def test_not_found_and_duplicates(self):
        sm = self.sm
        cases = [
            (sm.describe_model, {"ModelName": "Nope"}, 'Could not find model "%smodel/nope".'),
            (sm.delete_model, {"ModelName": "nope"}, 'Could not find model "%smodel/nope".'),
            (sm.describe_endpoint_config, {"EndpointConfigName": "nope"},
             'Could not find endpoint configuration "%sendpoint-config/nope".'),
            (sm.delete_endpoint_config, {"EndpointConfigName": "nope"},
             'Could not find endpoint configuration "%sendpoint-config/nope".'),
            (sm.describe_endpoint, {"EndpointName": "nope"}, 'Could not find endpoint "%sendpoint/nope".'),
            (sm.delete_endpoint, {"EndpointName": "nope"}, 'Could not find endpoint "%sendpoint/nope".'),
            (sm.update_endpoint, {"EndpointName": "nope", "EndpointConfigName": "x"},
             'Could not find endpoint "%sendpoint/nope".'),
            (sm.create_endpoint, {"EndpointName": "e1", "EndpointConfigName": "nope"},
             'Could not find endpoint configuration "%sendpoint-config/nope".'),
            (sm.create_endpoint_config, {"EndpointConfigName": "c1", "ProductionVariants": [
                {"VariantName": "v", "ModelName": "nope", "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": 1}]},
             'Could not find model "%smodel/nope".'),
        ]
        for fn, kw, msg in cases:
            with self.subTest(fn=fn.__name__):
                self.assertEqual(error_of(fn, **kw), ("ValidationException", msg % ARN))
        simple_model(sm, "Dup-Model", self.model)
        code, msg = error_of(simple_model, sm, "dup-model", self.model)  # names are case-insensitive
        self.assertEqual((code, msg), ("ValidationException",
                                       'Cannot create already existing model "%smodel/dup-model".' % ARN))
        self.assertEqual(sm.describe_model(ModelName="dup-model")["ModelName"], "Dup-Model")
        simple_config(sm, "dup-cfg", "Dup-Model")
        self.assertEqual(error_of(simple_config, sm, "DUP-cfg", "Dup-Model"),
                         ("ValidationException",
                          'Cannot create already existing endpoint configuration "%sendpoint-config/dup-cfg".' % ARN))
        # An endpoint that stays Creating (its load held until a gate file exists): Update/Delete are
        # refused while it does.
        gate = os.path.join(self.tmp, "slow-load-gate")
        sm.create_model(ModelName="slow-model", PrimaryContainer={"Image": TGI_IMAGE, "Environment": {
            "HF_MODEL_ID": self.model, "LMSTREAM_TEST_LOAD_GATE": gate}})
        simple_config(sm, "slow-cfg", "slow-model")
        sm.create_endpoint(EndpointName="dup-ep", EndpointConfigName="slow-cfg")
        self.assertEqual(error_of(sm.create_endpoint, EndpointName="Dup-Ep", EndpointConfigName="dup-cfg"),
                         ("ValidationException", 'Cannot create already existing endpoint "%sendpoint/dup-ep".' % ARN))
        in_progress = ("ValidationException", 'Cannot update in-progress endpoint "%sendpoint/dup-ep".' % ARN)
        self.assertEqual(error_of(sm.delete_endpoint, EndpointName="dup-ep"), in_progress)
        self.assertEqual(error_of(sm.update_endpoint, EndpointName="dup-ep", EndpointConfigName="dup-cfg"), in_progress)
        code, msg = error_of(self.smr.invoke_endpoint, EndpointName="dup-ep", Body=b"{}", ContentType="application/json")
        self.assertEqual((code, msg), ("ValidationError", "Endpoint dup-ep of account %s not found." % ACCOUNT))
        self.assertEqual(sm.describe_endpoint(EndpointName="dup-ep")["EndpointStatus"], "Creating")
        open(gate, "w").close()
        self.assertEqual(wait_status(sm, "dup-ep")["EndpointStatus"], "InService")
        # Deleting the config and the model an endpoint uses is allowed; it keeps running.
        sm.delete_endpoint_config(EndpointConfigName="slow-cfg")
        sm.delete_model(ModelName="slow-model")
        r = self.smr.invoke_endpoint(EndpointName="dup-ep", ContentType="application/json",
                                     Body=json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 2}}))
        self.assertEqual(r["InvokedProductionVariant"], "AllTraffic")
        sm.delete_endpoint(EndpointName="dup-ep")

    def test_validation_messages(self):
        sm = self.sm
        pat = r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"
        self.assertEqual(error_of(simple_model, sm, "bad_name!", self.model), (
            "ValidationException", "1 validation error detected: Value 'bad_name!' at 'modelName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: " + pat))
        long_name = "a" * 64
        self.assertEqual(error_of(simple_model, sm, long_name, self.model), (
            "ValidationException", "1 validation error detected: Value '%s' at 'modelName' failed to satisfy "
            "constraint: Member must have length less than or equal to 63" % long_name))
        code, msg = error_of(sm.create_model, ModelName="x.y", ExecutionRoleArn="not-a-role-arn-at-all-x",
                             PrimaryContainer={"Image": TGI_IMAGE})
        self.assertTrue(msg.startswith("2 validation errors detected: Value 'x.y' at 'modelName'"), msg)
        self.assertIn("; Value 'not-a-role-arn-at-all-x' at 'executionRoleArn' failed to satisfy constraint", msg)
        # Endpoint names: upper case, '--' and 63 characters are fine; a trailing '-' is not.
        self.assertEqual(error_of(sm.describe_endpoint, EndpointName="ends-with-"), (
            "ValidationException", "1 validation error detected: Value 'ends-with-' at 'endpointName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"))
        simple_model(sm, "val-model", self.model)
        code, msg = error_of(sm.create_endpoint_config, EndpointConfigName="val-cfg", ProductionVariants=[
            {"VariantName": "v1", "ModelName": "val-model", "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": 1},
            {"VariantName": "v2", "ModelName": "val-model", "InstanceType": "ml.bogus", "InitialInstanceCount": 1,
             "ContainerStartupHealthCheckTimeoutInSeconds": 4000}])
        self.assertEqual(code, "ValidationException")
        self.assertTrue(msg.startswith("2 validation errors detected: Value 'ml.bogus' at "
                                       "'productionVariants.2.member.instanceType' failed to satisfy constraint: "
                                       "Member must satisfy enum value set: [ml.t2.medium, ml.t2.large,"), msg)
        self.assertIn("ml.g5.12xlarge", msg)
        self.assertIn("; Value '4000' at 'productionVariants.2.member.containerStartupHealthCheckTimeoutInSeconds' "
                      "failed to satisfy constraint: Member must have value less than or equal to 3600", msg)
        code, msg = error_of(sm.create_model, ModelName="env-model", PrimaryContainer={
            "Image": TGI_IMAGE, "Environment": {"BAD-KEY": "x"}})
        self.assertEqual(code, "ValidationException")
        self.assertIn("at 'primaryContainer.environment'", msg)
        # Raw wire: unknown operation, a body that is not JSON.
        for target, body, want in [("SageMaker.CreateTrainingJob", b"{}", "UnknownOperationException"),
                                   ("SageMaker.ListModels", b"{not json", "SerializationException")]:
            req = urllib.request.Request(self.cp.url + "/", data=body, method="POST", headers={
                "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
            with self.assertRaises(urllib.error.HTTPError) as ctx:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(ctx.exception.code, 400)
            self.assertEqual(json.loads(ctx.exception.read())["__type"], want)

    def test_lists(self):
        sm = self.sm
        names = ["list-b", "list-a", "list-c"]
        for n in names:
            simple_model(sm, n, self.model)
            time.sleep(0.01)
        r = sm.list_models(NameContains="list-", MaxResults=2)
        self.assertEqual([m["ModelName"] for m in r["Models"]], ["list-c", "list-a"])  # newest first
        r2 = sm.list_models(NameContains="list-", MaxResults=2, NextToken=r["NextToken"])
        self.assertEqual([m["ModelName"] for m in r2["Models"]], ["list-b"])
        self.assertNotIn("NextToken", r2)
        r = sm.list_models(NameContains="LIST", SortBy="Name", SortOrder="Ascending")
        self.assertEqual([m["ModelName"] for m in r["Models"]], ["list-a", "list-b", "list-c"])
        created = sm.describe_model(ModelName="list-a")["CreationTime"]
        self.assertEqual(sm.list_models(NameContains="list", CreationTimeBefore=created.timestamp() - 5)["Models"], [])
        r = sm.list_models(NameContains="list", CreationTimeAfter=created.timestamp() - 5,
                           CreationTimeBefore=created.timestamp() + 5)
        self.assertEqual(len(r["Models"]), 3)
        pages = sm.get_paginator("list_models").paginate(NameContains="list", PaginationConfig={"PageSize": 1})
        self.assertEqual(sorted(m["ModelName"] for p in pages for m in p["Models"]), sorted(names))
        simple_config(sm, "list-cfg", "list-a")
        self.assertEqual([c["EndpointConfigName"] for c in
                          sm.list_endpoint_configs(NameContains="list-cfg")["EndpointConfigs"]], ["list-cfg"])
        r = sm.list_endpoints(StatusEquals="Failed", NameContains="zzz")
        self.assertEqual(r["Endpoints"], [])
        code, msg = error_of(sm.list_models, NextToken="forged")
        self.assertEqual(code, "ValidationException")
        code, msg = error_of(sm.list_endpoints, SortBy="Size")
        self.assertEqual(code, "ValidationException")
        self.assertIn("Member must satisfy enum value set: [Name, CreationTime, Status]", msg)

    def test_awscli(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="x",
                   AWS_DEFAULT_REGION="us-east-1")
        base = ["aws", "sagemaker", "--endpoint-url", self.cp.url, "--region", "us-east-1", "--output", "json"]
        r = subprocess.run(base + ["create-model", "--model-name", "cli-model", "--execution-role-arn", ROLE,
                                   "--primary-container", json.dumps({"Image": TGI_IMAGE,
                                                                      "Environment": {"HF_MODEL_ID": self.model}})],
                           capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["ModelArn"], ARN + "model/cli-model")
        r = subprocess.run(base + ["describe-model", "--model-name", "cli-model"], capture_output=True, text=True,
                           env=env, timeout=60)
        self.assertEqual(json.loads(r.stdout)["PrimaryContainer"]["Environment"]["HF_MODEL_ID"], self.model)
        r = subprocess.run(base + ["describe-endpoint", "--endpoint-name", "nope"], capture_output=True, text=True,
                           env=env, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('(ValidationException) when calling the DescribeEndpoint operation: Could not find endpoint '
                      '"%sendpoint/nope".' % ARN, r.stderr)


class Limits(unittest.TestCase):
    def test_memory_budget_refuses(self):
        with ControlPlane(["--memory-budget", "200MiB", "--worker-kv-memory", "128MiB"]) as cp:
            sm = cp.sm()
            simple_model(sm, "m", micro_model())
            simple_config(sm, "one", "m", count=1)
            simple_config(sm, "two", "m", count=2)
            code, msg = error_of(sm.create_endpoint, EndpointName="big", EndpointConfigName="two")
            self.assertEqual(code, "ResourceLimitExceeded")
            self.assertIn("'memory for endpoint workers' is 200 MiB, with current utilization of 0 MiB", msg)
            with self.assertRaises(sm.exceptions.ResourceLimitExceeded):
                sm.create_endpoint(EndpointName="big", EndpointConfigName="two")
            sm.create_endpoint(EndpointName="small", EndpointConfigName="one")  # fits
            code, msg = error_of(sm.create_endpoint, EndpointName="small2", EndpointConfigName="one")
            self.assertEqual(code, "ResourceLimitExceeded")
            per_worker = (os.path.getsize(micro_model()) + (128 << 20)) >> 20  # weights + KV
            self.assertIn("current utilization of %d MiB" % per_worker, msg)

    def test_sigv4(self):
        with ControlPlane(["--aws-access-key-id", "AKIDCONTROL", "--aws-secret-access-key", "s3cret"]) as cp:
            good = cp.sm(key="AKIDCONTROL", secret="s3cret")
            self.assertEqual(good.list_models()["Models"], [])
            code, _ = error_of(cp.sm(key="AKIDCONTROL", secret="wrong").list_models)
            self.assertEqual(code, "InvalidSignatureException")
            code, _ = error_of(cp.sm(key="AKIDOTHER", secret="s3cret").list_models)
            self.assertEqual(code, "UnrecognizedClientException")
            code, _ = error_of(cp.rt(key="AKIDCONTROL", secret="wrong").invoke_endpoint, EndpointName="x",
                               Body=b"{}", ContentType="application/json")
            self.assertEqual(code, "InvalidSignatureException")
            code, msg = error_of(cp.rt(key="AKIDCONTROL", secret="s3cret").invoke_endpoint, EndpointName="x",
                                 Body=b"{}", ContentType="application/json")
            self.assertEqual((code, msg), ("ValidationError", "Endpoint x of account %s not found." % ACCOUNT))


def thread_slices_ns(pid):
    """{tid: se.slice} from /proc/PID/task/*/sched; empty where the kernel does not report it."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/sched" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("se.slice"):
                        out[tid] = int(line.split(":")[1])
        except OSError:
            pass
    return out


class IoSlice(unittest.TestCase):
    """--io-slice-us: every io thread of the proxy asks the kernel for that fair-class slice."""

    def test_io_threads_get_the_slice_and_still_stream(self):
        with ControlPlane(["--io-slice-us", "250"]) as cp:
            slices = thread_slices_ns(cp.proc.pid)
            if not slices:
                self.skipTest("this kernel reports no se.slice in /proc/PID/task/*/sched (Linux < 6.12)")
            self.assertGreaterEqual(sum(1 for v in slices.values() if v == 250000), 4, slices)  # 4 io threads
            self.assertNotIn("default slice was used", cp.read_log())
            sm = cp.sm()
            simple_model(sm, "m", micro_model())
            simple_config(sm, "c", "m")
            sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
            wait_status(sm, "e")
            body = {"inputs": "hello", "parameters": {"max_new_tokens": 8}}
            text = tgi_text(cp.rt().invoke_endpoint_with_response_stream(
                EndpointName="e", ContentType="application/json", Body=json.dumps(dict(body, stream=True)))["Body"])
            out = json.loads(cp.rt().invoke_endpoint(EndpointName="e", Body=json.dumps(body),
                                                     ContentType="application/json")["Body"].read())
            self.assertTrue(text)
            self.assertEqual(out[0]["generated_text"], "hello" + text)

    def test_out_of_range_is_refused(self):
        d = tempfile.mkdtemp(prefix="lms-cp-")
        try:
            for bad in ("50", "100001", "-1"):
                r = subprocess.run([binary(), "control-plane", "--state-dir", d, "--port", "0",
                                    "--io-slice-us", bad], capture_output=True, text=True, timeout=30)
                self.assertNotEqual(r.returncode, 0, bad)
                self.assertIn("--io-slice-us: %s us is out of range: use 0 (the kernel's default) or 100..100000"
                              % bad, r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


def nice_of(pid):
    """The nice value of PID (/proc/PID/stat, the 19th field)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


class WorkerNice(unittest.TestCase):
    """--worker-nice N: every worker runs N nicer than the control plane, and still answers."""

    def test_workers_are_nicer_and_still_stream(self):
        with ControlPlane(["--worker-nice", "5"]) as cp:
            sm = cp.sm()
            simple_model(sm, "m", micro_model())
            simple_config(sm, "c", "m", count=2)
            sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
            wait_status(sm, "e")
            workers = cp.worker_pids()
            self.assertEqual(len(workers), 2)
            base = nice_of(cp.proc.pid)
            self.assertEqual([nice_of(w) for w in workers], [min(base + 5, 19)] * 2)
            body = {"inputs": "hello", "parameters": {"max_new_tokens": 8}}
            text = tgi_text(cp.rt().invoke_endpoint_with_response_stream(
                EndpointName="e", ContentType="application/json", Body=json.dumps(dict(body, stream=True)))["Body"])
            self.assertTrue(text)

    def test_out_of_range_is_refused(self):
        d = tempfile.mkdtemp(prefix="lms-cp-")
        try:
            for bad in ("20", "-1"):
                r = subprocess.run([binary(), "control-plane", "--state-dir", d, "--port", "0",
                                    "--worker-nice", bad], capture_output=True, text=True, timeout=30)
                self.assertNotEqual(r.returncode, 0, bad)
                self.assertIn("--worker-nice", r.stderr)
                self.assertIn(bad, r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
