"""EOS as the last allowed token gets the same finish reason everywhere: `lmstream generate`
(stderr), `generate --prompts --jsonl`, TGI `/generate` (details.finish_reason) and OpenAI
`/v1/chat/completions` (finish_reason). As in TGI's StoppingCriteria, max_new_tokens is checked
before EOS, so that is `length`; EOS before the limit is `eos_token` (OpenAI: `stop`). The model
is made with `make-test-model --favor-token 2`, so EOS (id 2) is the greedy choice at every
step. Python stdlib only; it starts its own server (a few lines copied, not imported from
another test) and does not test anything else about the routes."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

EOS = 2


def binary():
    b = os.environ.get("LMSTREAM_BINARY")
    if not b or not os.path.exists(b):
        raise AssertionError("LMSTREAM_BINARY is not set or does not exist: %r" % b)
    return b


def tokenizer_path():
    src = os.environ.get("LMSTREAM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
    p = os.path.join(src, "..", "shared", "testdata", "llama2-tokenizer.model")
    if not os.path.exists(p):
        raise AssertionError("shared tokenizer missing: %s" % p)
    return p


def run(*args, stdin=None):
    return subprocess.run([binary(), *args], input=stdin, capture_output=True, text=True, timeout=300)


class Server:
    """`lmstream serve` on a free loopback port, ready once /ping answers; killed on exit."""

    def __init__(self, model):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.model = model

    def __enter__(self):
        env = dict(os.environ)
        for k in ("HF_MODEL_ID", "MAX_CONCURRENT_REQUESTS", "MAX_INPUT_LENGTH", "MAX_TOTAL_TOKENS", "PORT",
                  "SAGEMAKER_BIND_TO_PORT", "NUM_SHARD", "SM_NUM_GPUS"):
            env.pop(k, None)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--threads", "1", "--model", self.model],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError("server exited: %s" % self.log.read().decode("utf-8", "replace"))
            try:
                if self.post("/ping", None, "GET")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server not ready within 60 s")

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()
        return False

    def post(self, path, obj, method="POST"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            body = None if obj is None else json.dumps(obj)
            c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, data
        finally:
            c.close()


class EosFinishReasonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-eos-")
        cls.model = os.path.join(cls.tmp, "eos")
        r = run("make-test-model", cls.model, "--format", "hf", "--shape", "micro", "--dtype", "f32",
                "--tokenizer", tokenizer_path(), "--favor-token", str(EOS))
        if r.returncode != 0:
            raise AssertionError("make-test-model failed: %s" % r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cli(self, n, *extra):
        """(finish reason, generated ids) of `lmstream generate`."""
        r = run("generate", "--model", self.model, "--prompt", "Hello there", "--max-new-tokens", str(n),
                "--print-ids", "--threads", "1", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"generated (\d+) \((\w+)\)", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        return m.group(2), json.loads(r.stderr.strip().splitlines()[-1])

    def jsonl(self, n):
        r = run("generate", "--model", self.model, "--prompts", "/dev/stdin", "--jsonl", "--max-new-tokens",
                str(n), "--threads", "1", stdin="Hello there\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        finals = [j for j in map(json.loads, r.stdout.splitlines()) if "finish_reason" in j]
        self.assertEqual(len(finals), 1, r.stdout)
        return finals[0]["finish_reason"], finals[0]["generated_tokens"]

    def test_the_model_answers_eos_at_once(self):
        self.assertEqual(self.cli(3, "--ignore-eos")[1], [EOS, EOS, EOS])

    def test_eos_as_last_allowed_token_is_length_everywhere(self):
        self.assertEqual(self.cli(1), ("length", [EOS]))
        self.assertEqual(self.jsonl(1), ("length", 1))
        with Server(self.model) as srv:
            st, j = srv.post("/generate", {"inputs": "Hello there", "parameters": {"max_new_tokens": 1, "details": True}})
            self.assertEqual(st, 200, j)
            self.assertEqual(j["details"]["finish_reason"], "length")
            self.assertEqual(j["details"]["generated_tokens"], 1)
            st, j = srv.post("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                                                     "max_tokens": 1})
            self.assertEqual(st, 200, j)
            self.assertEqual(j["choices"][0]["finish_reason"], "length")
            self.assertEqual(j["usage"]["completion_tokens"], 1)

    def test_eos_before_the_limit_is_eos_everywhere(self):
        self.assertEqual(self.cli(4), ("eos_token", [EOS]))
        self.assertEqual(self.jsonl(4), ("eos_token", 1))
        with Server(self.model) as srv:
            st, j = srv.post("/generate", {"inputs": "Hello there", "parameters": {"max_new_tokens": 4, "details": True}})
            self.assertEqual(st, 200, j)
            self.assertEqual(j["details"]["finish_reason"], "eos_token")
            self.assertEqual(j["details"]["generated_tokens"], 1)
            st, j = srv.post("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                                                     "max_tokens": 4})
            self.assertEqual(st, 200, j)
            self.assertEqual(j["choices"][0]["finish_reason"], "stop")  # OpenAI's name for eos_token
            self.assertEqual(j["usage"]["completion_tokens"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
