"""Requests signed by the real boto3/botocore clients verify with our C++ SigV4 verifier
(aws/sigv4.cc), and the wrong ones fail with the code boto3 users will see (wrong secret,
unknown key, expired, tampered body, missing headers, region pin, session tokens). The other way
round: requests our signer signed carry exactly the Authorization botocore computes.

boto3 requests are captured at botocore's before-send hook (what would go on the wire, Host added
as urllib3 adds it), written to cases.json, and checked by the gtest BotocoreFixture.SigV4 in
aws_tests, which runs only when LMSTREAM_SIGV4_FIXTURE_DIR is set and writes results.json."""
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock
from urllib.parse import urlsplit

try:
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
except ImportError as e:  # reported as a failure in setUpClass
    boto3 = None
    IMPORT_ERROR = e

from lmstest import build_binary  # noqa: E402

KEY, SECRET = "AKIDLMSTREAMTEST", "s3cr3t/with+chars"
KEY2, SECRET2 = "AKIDSECOND", "another-secret"
TEMP_KEY, TEMP_SECRET, TOKEN = "ASIATEMPKEY", "temp-secret", "FwoGZXIvYXdzEJr//////////token=="
ENDPOINT = "http://127.0.0.1:8080"


class Captured(Exception):
    pass


def capture(service, call, access_key, secret, token=None, region="us-east-1"):
    """Runs one boto3 call and returns the request it would have sent (never sends it)."""
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret,
                                    aws_session_token=token, region_name=region)
    client = session.client(service, endpoint_url=ENDPOINT,
                            config=Config(retries={"max_attempts": 1}))
    seen = {}

    def before_send(request, **kwargs):
        parts = urlsplit(request.url)
        headers = [["Host", parts.netloc]]
        headers += [[k, v.decode() if isinstance(v, bytes) else v]
                    for k, v in request.headers.items()]
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        seen["case"] = {"method": request.method, "path": parts.path, "query": parts.query,
                        "headers": headers, "body_hex": body.hex(), "now": time.time()}
        raise Captured()

    client.meta.events.register("before-send", before_send)
    try:
        call(client)
    except Captured:
        return seen["case"]
    raise AssertionError("boto3 call finished without reaching before-send")


def stream_call(client):
    client.invoke_endpoint_with_response_stream(
        EndpointName="llama-2-7b-chat", ContentType="application/json",
        CustomAttributes="accept_eula=true",
        Body=json.dumps({"inputs": "<s>[INST] Héllo  there [/INST]",
                         "parameters": {"max_new_tokens": 64, "stop": ["</s>"]},
                         "stream": True}))


def invoke_call(client):
    client.invoke_endpoint(EndpointName="ep-1", ContentType="application/json",
                           Accept="application/json", Body=b'{"inputs": "x"}')


class SigV4AgainstBotocore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if boto3 is None:
            raise AssertionError(f"boto3/botocore are required for this test: {IMPORT_ERROR}")
        cls.binary = build_binary("aws", "aws_tests")

        rt = "sagemaker-runtime"
        good = capture(rt, stream_call, KEY, SECRET)
        verify = {
            "stream_ok": good,
            "invoke_ok": capture(rt, invoke_call, KEY, SECRET),
            "second_key_ok": capture(rt, stream_call, KEY2, SECRET2, region="eu-west-1"),
            "control_plane_ok": capture(
                "sagemaker", lambda c: c.describe_endpoint(EndpointName="ep-1"), KEY, SECRET),
            "session_token_ok": capture(rt, stream_call, TEMP_KEY, TEMP_SECRET, token=TOKEN),
            "session_token_wrong": capture(rt, stream_call, TEMP_KEY, TEMP_SECRET,
                                           token=TOKEN + "x"),
            "wrong_secret": capture(rt, stream_call, KEY, "not-the-secret"),
            "unknown_key": capture(rt, stream_call, "AKIDNOBODY", SECRET),
            "expired": dict(good, now=good["now"] + 16 * 60),
            "not_yet_valid": dict(good, now=good["now"] - 16 * 60),
            "tampered_body": dict(good, body_hex=good["body_hex"].replace(
                "Hi".encode().hex(), "Hi!".encode().hex()) + "20"),
            "missing_authorization": dict(good, headers=[h for h in good["headers"]
                                                         if h[0].lower() != "authorization"]),
            "missing_date": dict(good, headers=[h for h in good["headers"]
                                                if h[0].lower() != "x-amz-date"]),
            "other_host": dict(good, headers=[["Host", "127.0.0.1:9999"] if h[0] == "Host" else h
                                              for h in good["headers"]]),
            "region_pinned_ok": dict(good, region="us-east-1"),
            "region_pinned_other": dict(good, region="eu-west-1"),
        }
        cls.expected = {
            "stream_ok": "ok", "invoke_ok": "ok", "second_key_ok": "ok",
            "control_plane_ok": "ok", "session_token_ok": "ok", "region_pinned_ok": "ok",
            "session_token_wrong": "UnrecognizedClientException",
            "wrong_secret": "InvalidSignatureException",
            "unknown_key": "UnrecognizedClientException",
            "expired": "InvalidSignatureException",
            "not_yet_valid": "InvalidSignatureException",
            "tampered_body": "InvalidSignatureException",
            "missing_authorization": "IncompleteSignatureException",
            "missing_date": "IncompleteSignatureException",
            "other_host": "InvalidSignatureException",
            "region_pinned_other": "InvalidSignatureException",
        }
        cls.sign_cases = {
            "plain": {"credentials": {"access_key_id": KEY, "secret_access_key": SECRET}},
            "session": {"credentials": {"access_key_id": TEMP_KEY,
                                        "secret_access_key": TEMP_SECRET,
                                        "session_token": TOKEN}},
        }
        now = int(time.time())
        sign = []
        for name, extra in cls.sign_cases.items():
            sign.append(dict(extra, name=name, method="POST",
                             path="/endpoints/my-ep/invocations-response-stream", query="",
                             headers=[["Host", "127.0.0.1:8080"],
                                      ["Content-Type", "application/json"],
                                      ["X-Amzn-SageMaker-Custom-Attributes", "accept_eula=true"],
                                      ["User-Agent", "lmstream-invoke"]],
                             body_hex='{"inputs": "hi"}'.encode().hex(), now=now,
                             region="us-west-2"))
        cls.sign_now = now
        cases = {
            "store": [{"access_key_id": KEY, "secret_access_key": SECRET},
                      {"access_key_id": KEY2, "secret_access_key": SECRET2},
                      {"access_key_id": TEMP_KEY, "secret_access_key": TEMP_SECRET,
                       "session_token": TOKEN}],
            "verify": [dict(case, name=name) for name, case in verify.items()],
            "sign": sign,
        }
        cls.tmp = tempfile.TemporaryDirectory()
        with open(os.path.join(cls.tmp.name, "cases.json"), "w") as f:
            json.dump(cases, f)
        env = dict(os.environ, LMSTREAM_SIGV4_FIXTURE_DIR=cls.tmp.name)
        run = subprocess.run([cls.binary, "--gtest_filter=BotocoreFixture.SigV4"], env=env,
                             capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise AssertionError(f"aws_tests failed:\n{run.stdout}\n{run.stderr}")
        with open(os.path.join(cls.tmp.name, "results.json")) as f:
            cls.results = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_each_case_has_the_expected_outcome(self):
        for name, want in self.expected.items():
            with self.subTest(name):
                got = self.results["verify"][name]
                self.assertEqual(got["outcome"], want, got["message"])
                if want != "ok":
                    self.assertTrue(got["message"], "an error needs a message")

    def test_expired_message_names_the_window(self):
        self.assertIn("Signature expired", self.results["verify"]["expired"]["message"])

    def test_our_signer_matches_botocore(self):
        for name, case in self.sign_cases.items():
            with self.subTest(name):
                ours = dict((k.lower(), v) for k, v in self.results["sign"][name]["headers"])
                creds = case["credentials"]
                req = AWSRequest(method="POST",
                                 url="http://127.0.0.1:8080/endpoints/my-ep/"
                                     "invocations-response-stream",
                                 data=b'{"inputs": "hi"}',
                                 headers={"Content-Type": "application/json",
                                          "X-Amzn-SageMaker-Custom-Attributes":
                                              "accept_eula=true",
                                          "User-Agent": "lmstream-invoke"})
                when = datetime.datetime.fromtimestamp(self.sign_now, datetime.timezone.utc)
                with mock.patch("botocore.auth.get_current_datetime",
                                return_value=when.replace(tzinfo=None)):
                    SigV4Auth(Credentials(creds["access_key_id"], creds["secret_access_key"],
                                          creds.get("session_token")),
                              "sagemaker", "us-west-2").add_auth(req)
                self.assertEqual(ours["authorization"], req.headers["Authorization"])
                self.assertEqual(ours["x-amz-date"], req.headers["X-Amz-Date"])
                if "session_token" in creds:
                    self.assertEqual(ours["x-amz-security-token"], creds["session_token"])


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
