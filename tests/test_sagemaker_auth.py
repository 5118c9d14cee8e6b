"""Authentication of `lmstream serve` with real AWS clients over loopback: SigV4 (service
sagemaker) on /endpoints/* with keys from flags and a credentials file (several profiles), each
rejection code botocore surfaces (wrong secret, unknown key, expired timestamp, tampered body,
missing signature, wrong region), the bearer API key on the other routes, and the awscli
`sagemaker-runtime invoke-endpoint` command writing its outfile. Needs python3 with boto3 and aws."""
import datetime
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from unittest import mock

try:
    import boto3
    from botocore.config import Config
    import botocore.auth
    import botocore.exceptions
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as e:
    raise SystemExit("boto3/botocore are required for this test (pyenv python3): %s" % e)

from lmstest import Server, binary, raw_post  # noqa: E402
from lmstest.aws import ENDPOINT, sagemaker_client as client  # noqa: E402

KEY, SECRET = "AKIDLMSTREAMTEST1", "secret-one/abc+def"
KEY2, SECRET2 = "AKIDLMSTREAMTEST2", "secret-two"
API_KEY = "api-key-123"
BODY = json.dumps({"inputs": "Hello", "parameters": {"do_sample": False, "max_new_tokens": 4}})


def signed_headers(port, body, key, secret, region="us-east-1", when=None):
    """Headers of a POST to /endpoints/ENDPOINT/invocations signed by botocore's SigV4Auth."""
    url = "http://127.0.0.1:%d/endpoints/%s/invocations" % (port, ENDPOINT)
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    auth = botocore.auth.SigV4Auth(Credentials(key, secret), "sagemaker", region)
    if when is None:
        auth.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    h = dict(req.headers.items())
    h["Host"] = "127.0.0.1:%d" % port
    return h


class SigV4AndApiKey(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lms-sm-auth-")
        creds = os.path.join(cls.dir, "credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n"
                    "# a second key\n[other]\naws_access_key_id=%s\naws_secret_access_key=%s\n"
                    % ("AKIDFILEDEFAULT", "file-secret", KEY2, SECRET2))
        cls.server = Server(["--endpoint-name", ENDPOINT, "--aws-access-key-id", KEY, "--region", "us-east-1",
                             "--aws-credentials-file", creds],
                            env={"LMSTREAM_AWS_SECRET_ACCESS_KEY": SECRET, "LMSTREAM_API_KEY": API_KEY}).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def invoke(self, key, secret, **kw):
        return client(self.server, key, secret).invoke_endpoint(
            EndpointName=ENDPOINT, ContentType="application/json", Body=kw.pop("body", BODY), **kw)

    def assertRejected(self, fn, code, status=403):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn()
        self.assertEqual(cm.exception.response["Error"]["Code"], code, cm.exception.response)
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], status)
        return cm.exception.response["Error"]["Message"]

    def test_right_keys_work(self):
        for key, secret in ((KEY, SECRET), (KEY2, SECRET2), ("AKIDFILEDEFAULT", "file-secret")):
            r = self.invoke(key, secret)
            self.assertEqual(len(json.loads(r["Body"].read())), 1)
        r = client(self.server, KEY, SECRET).invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT, ContentType="application/json",
            Body=json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 3}, "stream": True}))
        self.assertEqual(sum(1 for ev in r["Body"] if "PayloadPart" in ev), 3)

    def test_wrong_secret(self):
        self.assertRejected(lambda: self.invoke(KEY, "wrong"), "InvalidSignatureException")

    def test_unknown_key(self):
        self.assertRejected(lambda: self.invoke("AKIDUNKNOWN", SECRET), "UnrecognizedClientException")

    def test_wrong_region(self):
        c = boto3.client("sagemaker-runtime", endpoint_url="http://127.0.0.1:%d" % self.server.port,
                      region_name="eu-west-1", aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                      config=Config(retries={"max_attempts": 1}))
        self.assertRejected(lambda: c.invoke_endpoint(EndpointName=ENDPOINT, ContentType="application/json",
                                                      Body=BODY), "InvalidSignatureException")

    def test_expired_timestamp_with_boto3(self):
        old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        with mock.patch("botocore.auth.get_current_datetime", return_value=old):
            msg = self.assertRejected(lambda: self.invoke(KEY, SECRET), "InvalidSignatureException")
        self.assertIn("expired", msg.lower())
        # Within the 15-minute window it is accepted.
        recent = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
        with mock.patch("botocore.auth.get_current_datetime", return_value=recent):
            self.invoke(KEY, SECRET)

    def test_tampered_body(self):
        h = signed_headers(self.server.port, BODY.encode(), KEY, SECRET)
        tampered = BODY.replace("Hello", "Jello").encode()
        st, hdrs, chunks = raw_post(self.server, "/endpoints/%s/invocations" % ENDPOINT, tampered, h)
        self.assertEqual(st, 403)
        self.assertEqual(hdrs["x-amzn-errortype"], "InvalidSignatureException")
        self.assertIn("message", json.loads(b"".join(chunks)))
        st, _, _ = raw_post(self.server, "/endpoints/%s/invocations" % ENDPOINT, BODY.encode(), h)
        self.assertEqual(st, 200)

    def test_old_signature_by_hand(self):
        when = datetime.datetime.utcnow() - datetime.timedelta(hours=2)
        h = signed_headers(self.server.port, BODY.encode(), KEY, SECRET, when=when)
        st, hdrs, _ = raw_post(self.server, "/endpoints/%s/invocations" % ENDPOINT, BODY.encode(), h)
        self.assertEqual(st, 403)
        self.assertEqual(hdrs["x-amzn-errortype"], "InvalidSignatureException")

    def test_missing_signature(self):
        st, hdrs, _ = raw_post(self.server, "/endpoints/%s/invocations" % ENDPOINT, BODY.encode())
        self.assertEqual(st, 403)
        self.assertEqual(hdrs["x-amzn-errortype"], "IncompleteSignatureException")
        # A bearer key is not a SigV4 signature.
        st, hdrs, _ = raw_post(self.server, "/endpoints/%s/invocations" % ENDPOINT, BODY.encode(),
                               {"Authorization": "Bearer " + API_KEY})
        self.assertEqual(st, 403)

    def test_unknown_endpoint_after_auth(self):
        self.assertRejected(lambda: client(self.server, KEY, SECRET).invoke_endpoint(
            EndpointName="nope", ContentType="application/json", Body=BODY), "ValidationError", 400)

    def test_bearer_key_on_other_routes(self):
        for path in ("/generate", "/invocations"):
            st, _, b = self.server.post_json(path, json.loads(BODY))
            self.assertEqual(st, 401, path)
            self.assertIn("API key", json.loads(b)["error"])
            st, _, _ = self.server.request("POST", path, BODY, {"Content-Type": "application/json",
                                                                 "Authorization": "Bearer wrong"})
            self.assertEqual(st, 401)
            st, _, _ = self.server.request("POST", path, BODY, {"Content-Type": "application/json",
                                                                 "Authorization": "Bearer " + API_KEY})
            self.assertEqual(st, 200, path)
        self.assertEqual(self.server.request("GET", "/info")[0], 401)
        self.assertEqual(self.server.request("GET", "/info", headers={"Authorization": "Bearer " + API_KEY})[0],
                         200)
        for probe in ("/ping", "/health"):
            self.assertEqual(self.server.request("GET", probe)[0], 200, probe)

    def test_awscli_invoke_endpoint(self):
        aws = shutil.which("aws")
        if not aws:
            self.fail("awscli (aws) not found on PATH")
        out = os.path.join(self.dir, "out.json")
        cfg = os.path.join(self.dir, "aws-config")
        open(cfg, "w").close()
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY2, AWS_SECRET_ACCESS_KEY=SECRET2,
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=cfg,
                   AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.dir, "none"), AWS_MAX_ATTEMPTS="1")
        env.pop("AWS_PROFILE", None)
        # AWS CLI v2 treats blobs as base64 unless told otherwise; v1 (what pip installs) sends
        # --body as given and has no --cli-binary-format.
        v = subprocess.run([aws, "--version"], capture_output=True, text=True, timeout=60)
        binary_format = ["--cli-binary-format", "raw-in-base64-out"] if "aws-cli/2" in v.stdout + v.stderr else []
        r = subprocess.run([aws, "sagemaker-runtime", "invoke-endpoint",
                            "--endpoint-url", "http://127.0.0.1:%d" % self.server.port,
                            "--endpoint-name", ENDPOINT, "--content-type", "application/json",
                            "--body", BODY] + binary_format + [out],
                           capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["ContentType"], "application/json")
        with open(out) as f:
            self.assertIn("generated_text", json.load(f)[0])
        # With a wrong secret the CLI reports the server's error code.
        env["AWS_SECRET_ACCESS_KEY"] = "wrong"
        r = subprocess.run([aws, "sagemaker-runtime", "invoke-endpoint",
                            "--endpoint-url", "http://127.0.0.1:%d" % self.server.port,
                            "--endpoint-name", ENDPOINT, "--body", BODY] + binary_format + [out],
                           capture_output=True, text=True, timeout=120, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("InvalidSignatureException", r.stderr)


class StartupChecks(unittest.TestCase):
    def test_half_a_key_is_refused(self):
        s = Server(["--aws-access-key-id", KEY])
        s.start(wait=False)
        try:
            rc = s.proc.wait(timeout=30)
        finally:
            s.__exit__(None, None, None)
        self.assertNotEqual(rc, 0)
        self.assertIn("--aws-secret-access-key", s.read_log())

    def test_bad_credentials_file_is_refused(self):
        d = tempfile.mkdtemp(prefix="lms-sm-auth-")
        p = os.path.join(d, "credentials")
        with open(p, "w") as f:
            f.write("[default]\naws_access_key_id = AKIDONLY\n")
        s = Server(["--aws-credentials-file", p])
        s.start(wait=False)
        try:
            rc = s.proc.wait(timeout=30)
        finally:
            s.__exit__(None, None, None)
            shutil.rmtree(d, ignore_errors=True)
        self.assertNotEqual(rc, 0)
        self.assertIn("credentials", s.read_log())

    def test_warns_without_auth_on_non_loopback(self):
        for host, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
            s = Server([])
            cmd = [binary(), "serve", "--host", host, "--port", str(s.port), "--threads", "1",
                   "--model", s.model]
            with tempfile.TemporaryFile() as log:
                p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=s.env)
                try:
                    deadline = time.monotonic() + 60
                    text = ""
                    while time.monotonic() < deadline and "listening on" not in text:
                        self.assertIsNone(p.poll(), text)
                        time.sleep(0.05)
                        log.seek(0)
                        text = log.read().decode("utf-8", "replace")
                finally:
                    p.kill()
                    p.wait(timeout=10)
            self.assertIn("listening on", text)
            self.assertEqual("no authentication configured" in text, warned, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
