"""boto3 helpers for the SageMaker tests (needs boto3: the pyenv python3)."""
import boto3
from botocore.config import Config

# The endpoint name the SageMaker tests give `lmstream serve --endpoint-name`.
ENDPOINT = "my-ep"


def sagemaker_client(server, key="AKIDEXAMPLE", secret="not-checked"):
    """A sagemaker-runtime client for `server` (a lmstest.Server): one attempt, bounded waits."""
    return boto3.client("sagemaker-runtime", endpoint_url="http://127.0.0.1:%d" % server.port,
                        region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, read_timeout=60, connect_timeout=10))
