"""`lmstream invoke` against a real `lmstream serve` (micro model): TGI /generate_stream and
/generate, /invocations in TGI and LMI mode, and the SageMaker /endpoints/NAME routes (event stream)
unsigned, SigV4-signed and bearer-keyed. For a greedy request, stdout must equal the text /generate
returns; errors (unreachable port, unknown endpoint, bad signature, validation, mid-stream failure)
must give a clear message on stderr and a non-zero exit. Python stdlib only."""
import http.server
import json
import os
import re
import struct
import subprocess
import threading
import unittest
import zlib

from lmstest import Server, binary, free_port

N = 12
PROMPT = "Hello"
EP = "test-ep"
CLIENT_ENV_DROP = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                   "AWS_DEFAULT_REGION", "AWS_PROFILE", "LMSTREAM_API_KEY", "AWS_CA_BUNDLE")
SERVER_ENV_DROP = ("LMSTREAM_API_KEY", "LMSTREAM_AWS_ACCESS_KEY_ID", "LMSTREAM_AWS_SECRET_ACCESS_KEY",
                   "LMSTREAM_ENDPOINT_NAME", "LMSTREAM_REQUIRE_EULA", "LMSTREAM_TEST_FAIL_AFTER_TOKENS")
STATS = re.compile(r"^stats: ttfb_ms=[\d.]+ ttft_ms=[\d.]+ tokens(\(text chunks\))?=(\d+) tokens_per_s=[\d.]+ "
                   r"total_ms=[\d.]+$", re.M)


def start_server(args=(), env=None):
    s = Server(args=list(args) + ["--endpoint-name", EP])
    for k in SERVER_ENV_DROP:
        s.env.pop(k, None)
    s.env.update(env or {})
    return s.start()


def invoke(port, *args, env=None, timeout=120):
    e = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_DROP}
    # No shared AWS files of the machine's user: keys come only from what a test gives.
    e["AWS_SHARED_CREDENTIALS_FILE"] = e["AWS_CONFIG_FILE"] = os.devnull
    e.update(env or {})
    cmd = [binary(), "invoke", "--endpoint-url", "http://127.0.0.1:%d" % port] + list(args)
    r = subprocess.run(cmd, capture_output=True, env=e, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8", "replace")


def generate_text(server, inputs=PROMPT, n=N, headers=None):
    st, _, body = server.request("POST", "/generate", {"inputs": inputs, "parameters": {"max_new_tokens": n}},
                                 headers=headers)
    if st != 200:
        raise AssertionError("/generate answered %s: %r" % (st, body))
    text = json.loads(body)["generated_text"]
    if not text:
        raise AssertionError("/generate returned no text; the comparison would be vacuous")
    return text


def es_message(payload, corrupt_crc=False):
    """One event-stream PayloadPart message, framed by hand (api.md §3.3) with zlib's CRC32."""
    headers = b""
    for name, value in ((":event-type", "PayloadPart"), (":content-type", "application/octet-stream"),
                        (":message-type", "event")):
        n, v = name.encode(), value.encode()
        headers += bytes([len(n)]) + n + bytes([7]) + struct.pack(">H", len(v)) + v
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    msg = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    crc = zlib.crc32(msg) ^ (1 if corrupt_crc else 0)
    return msg + struct.pack(">I", crc)


class CorruptStreamTest(unittest.TestCase):
    """A server (stdlib http.server) whose event stream carries a good PayloadPart, then one with a
    corrupt message CRC: invoke prints the first part's text, then a clear CRC error, exit != 0."""

    def test_corrupt_crc_is_a_clear_error(self):
        first = b'data:{"token":{"id":1,"text":" Hello","logprob":0,"special":false},"generated_text":null,"details":null}\n\n'
        second = b'data:{"token":{"id":2,"text":" world","logprob":0,"special":false},"generated_text":null,"details":null}\n\n'

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = es_message(first) + es_message(second, corrupt_crc=True)
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("X-Amzn-SageMaker-Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            rc, out, err = invoke(srv.server_address[1], "--endpoint", EP, "--stream", "--prompt", "x", timeout=60)
        finally:
            srv.shutdown()
            srv.server_close()
        self.assertNotEqual(rc, 0, (out, err))
        self.assertEqual(out, " Hello")
        self.assertIn("error: ", err)
        self.assertIn("CRC", err.upper())


class _Base(unittest.TestCase):
    server_args = ()
    generate_headers = None

    @classmethod
    def setUpClass(cls):
        cls.s = start_server(cls.server_args)
        cls.expected = generate_text(cls.s, headers=cls.generate_headers)

    @classmethod
    def tearDownClass(cls):
        cls.s.__exit__(None, None, None)

    def run_ok(self, *args, env=None):
        rc, out, err = invoke(self.s.port, *args, env=env)
        self.assertEqual(rc, 0, "invoke %s failed: %s" % (args, err))
        return out, err

    def assert_text(self, *args, env=None):
        out, err = self.run_ok("--prompt", PROMPT, "--max-new-tokens", str(N), *args, env=env)
        self.assertEqual(out, self.expected, "args %s, stderr %s" % (args, err))
        return err

    def assert_fails(self, *args, contains=(), env=None):
        rc, out, err = invoke(self.s.port, *args, env=env)
        self.assertNotEqual(rc, 0, "expected a failure for %s; stdout %r" % (args, out))
        self.assertIn("error: ", err)
        for c in contains:
            self.assertIn(c, err)
        return out, err


class TgiModeTest(_Base):
    def test_generate_stream(self):
        self.assert_text("--api", "tgi", "--stream")

    def test_generate(self):
        self.assert_text("--api", "tgi")

    def test_invocations_auto_detected(self):
        self.assert_text("--stream")   # SSE from /invocations
        self.assert_text()             # TGI's JSON array from /invocations

    def test_stats_line(self):
        err = self.assert_text("--api", "tgi", "--stream", "--stats")
        m = STATS.search(err)
        self.assertIsNotNone(m, err)
        self.assertEqual(int(m.group(2)), N)  # one SSE event per token

    def test_sagemaker_stream_and_not_unsigned(self):
        self.assert_text("--endpoint", EP, "--stream")
        self.assert_text("--endpoint", EP)
        self.assert_text("--endpoint", EP, "--stream", "--api", "tgi")

    def test_payload_file(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"inputs": PROMPT, "parameters": {"max_new_tokens": N}, "stream": True}, f)
        try:
            out, _ = self.run_ok("--payload", f.name, "--endpoint", EP, "--stream")
            self.assertEqual(out, self.expected)
        finally:
            os.unlink(f.name)

    def test_chat_prompt(self):
        prompt = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"
        want = generate_text(self.s, prompt)
        out, _ = self.run_ok("--api", "tgi", "--stream", "--system", "Be brief.", "--prompt", "Hi",
                             "--max-new-tokens", str(N))
        self.assertEqual(out, want)

    def test_unknown_endpoint(self):
        self.assert_fails("--endpoint", "nope", "--stream", "--prompt", PROMPT, contains=("HTTP 4", "nope"))

    def test_validation_error(self):
        self.assert_fails("--api", "tgi", "--stream", "--prompt", PROMPT, "--temperature", "0",
                          contains=("strictly positive",))
        self.assert_fails("--api", "tgi", "--prompt", PROMPT, "--temperature", "0",
                          contains=("HTTP 422", "strictly positive"))

    def test_unreachable_port_and_bad_urls(self):
        port = free_port()
        rc, out, err = invoke(port, "--prompt", PROMPT, timeout=30)
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot connect to 127.0.0.1:%d" % port, err)
        r = subprocess.run([binary(), "invoke", "--endpoint-url", "ftp://127.0.0.1:1", "--prompt", "x"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("the endpoint URL must start with http:// or https://", r.stderr)
        self.assert_fails("--endpoint", "bad_name!", "--prompt", PROMPT, contains=("invalid endpoint name",))


class LmiModeTest(_Base):
    server_args = ("--api", "lmi")

    def test_invocations_lmi(self):
        self.assert_text("--api", "lmi")
        self.assert_text("--api", "lmi", "--stream")

    def test_invocations_auto_detected(self):
        self.assert_text()

    def test_sagemaker_stream_and_not_unsigned(self):
        self.assert_text("--endpoint", EP, "--stream")
        self.assert_text("--endpoint", EP, "--stream", "--api", "lmi")
        self.assert_text("--endpoint", EP)

    def test_stats_line(self):
        err = self.assert_text("--endpoint", EP, "--stream", "--stats")
        self.assertIsNotNone(STATS.search(err), err)


class SignedTest(_Base):
    server_args = ("--aws-access-key-id", "AKIDLMSTREAMTEST", "--aws-secret-access-key", "s3cr3t/key+")
    KEYS = {"AWS_ACCESS_KEY_ID": "AKIDLMSTREAMTEST", "AWS_SECRET_ACCESS_KEY": "s3cr3t/key+"}

    def test_signed_stream_and_not(self):
        self.assert_text("--endpoint", EP, "--stream", env=self.KEYS)
        self.assert_text("--endpoint", EP, env=self.KEYS)
        self.assert_text("--endpoint", EP, "--stream", "--region", "eu-west-1", env=self.KEYS)
        self.assert_text("--endpoint", EP, "--stream", env=dict(self.KEYS, AWS_REGION="ap-south-1"))

    def test_wrong_secret_and_unsigned_are_refused(self):
        bad = dict(self.KEYS, AWS_SECRET_ACCESS_KEY="wrong")
        self.assert_fails("--endpoint", EP, "--stream", "--prompt", PROMPT, env=bad,
                          contains=("HTTP 403", "InvalidSignatureException"))
        self.assert_fails("--endpoint", EP, "--stream", "--prompt", PROMPT, contains=("HTTP 403",))


class SignedLmiTest(SignedTest):
    server_args = SignedTest.server_args + ("--api", "lmi")


class BearerKeyTest(_Base):
    server_args = ("--api-key", "k-123")
    generate_headers = {"Authorization": "Bearer k-123"}

    def test_api_key(self):
        self.assert_text("--api", "tgi", "--stream", "--api-key", "k-123")
        self.assert_text("--endpoint", EP, "--stream", env={"LMSTREAM_API_KEY": "k-123"})
        self.assert_fails("--api", "tgi", "--stream", "--prompt", PROMPT, contains=("HTTP 401",))


class MidStreamFailureTest(unittest.TestCase):
    """The server fails every request after 3 tokens: the text so far is printed, then the error."""

    def check(self, api, *args, contains):
        s = start_server(("--api", api), env={"LMSTREAM_TEST_FAIL_AFTER_TOKENS": "3"})
        try:
            rc, out, err = invoke(s.port, "--prompt", PROMPT, "--max-new-tokens", str(N), *args)
        finally:
            s.__exit__(None, None, None)
        self.assertNotEqual(rc, 0, "stdout %r stderr %r" % (out, err))
        self.assertIn("error: ", err)
        self.assertIn(contains, err)
        self.assertTrue(out, "the text generated before the failure should have been printed")
        return out

    def test_tgi_error_event(self):
        self.check("tgi", "--api", "tgi", "--stream", contains="server error")

    def test_sagemaker_model_stream_error(self):
        self.check("tgi", "--endpoint", EP, "--stream", contains="ModelStreamError")

    def test_lmi_error_chunk(self):
        self.check("lmi", "--api", "lmi", contains="424")


if __name__ == "__main__":
    unittest.main(verbosity=2)
