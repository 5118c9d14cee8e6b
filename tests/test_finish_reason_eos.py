"""EOS as the last allowed token gets the same finish reason everywhere: `lmstream generate`
(stderr), `generate --prompts --jsonl`, TGI `/generate` (details.finish_reason) and OpenAI
`/v1/chat/completions` (finish_reason). As in TGI's StoppingCriteria, max_new_tokens is checked
before EOS, so that is `length`; EOS before the limit is `eos_token` (OpenAI: `stop`). The model
is made with `make-test-model --favor-token 2`, so EOS (id 2) is the greedy choice at every
step. Python stdlib only; it starts its server with lmstest.Server and does not test anything else
about the routes."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from lmstest import Server, binary, make_test_model

EOS = 2


def run(*args, stdin=None):
    return subprocess.run([binary(), *args], input=stdin, capture_output=True, text=True, timeout=300)


def post(srv, path, obj):
    """(status, parsed JSON body) of a POST to `srv` (a lmstest.Server)."""
    st, _, data = srv.post_json(path, obj)
    try:
        return st, json.loads(data) if data else None
    except ValueError:
        return st, data


class EosFinishReasonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-eos-")
        cls.model = os.path.join(cls.tmp, "eos")
        make_test_model(cls.model, "hf", "micro", "f32", tokenizer=True, extra=("--favor-token", str(EOS)))

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

    def routes(self, n, finish_reason, openai_finish_reason):
        """Checks /generate and /v1/chat/completions with a limit of n new tokens: both generate
        one token, with these finish reasons."""
        with Server(model=self.model) as srv:
            st, j = post(srv, "/generate", {"inputs": "Hello there", "parameters": {"max_new_tokens": n, "details": True}})
            self.assertEqual(st, 200, j)
            self.assertEqual(j["details"]["finish_reason"], finish_reason)
            self.assertEqual(j["details"]["generated_tokens"], 1)
            st, j = post(srv, "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                                                      "max_tokens": n})
            self.assertEqual(st, 200, j)
            self.assertEqual(j["choices"][0]["finish_reason"], openai_finish_reason)
            self.assertEqual(j["usage"]["completion_tokens"], 1)

    def test_eos_as_last_allowed_token_is_length_everywhere(self):
        self.assertEqual(self.cli(1), ("length", [EOS]))
        self.assertEqual(self.jsonl(1), ("length", 1))
        self.routes(1, "length", "length")

    def test_eos_before_the_limit_is_eos_everywhere(self):
        self.assertEqual(self.cli(4), ("eos_token", [EOS]))
        self.assertEqual(self.jsonl(4), ("eos_token", 1))
        self.routes(4, "eos_token", "stop")  # OpenAI's name for eos_token


if __name__ == "__main__":
    unittest.main(verbosity=2)
