"""The code blocks of README.md and python/README.md run as written, so they cannot rot: fenced
```sh blocks with bash (-e, pipefail), ```python blocks with this interpreter (boto3), in order,
from a scratch directory holding `build` (the build tree), a copy of `python/` and the Llama 2
tokenizer at `path/to/tokenizer.model` (the path the text uses). A ```sh serve block's command is
started in the background and waited for (/ping) before the next block, and stopped at the end.
Not run: ```sh setup (scripts/demo, scripts/test: they build and run this suite) and ```text
(transcripts, diagrams). Declared changes to what the reader types: ports 8080 and 8081 (the
control plane's) become free ports (parallel test runs), pip installs into a scratch PIP_TARGET (the machine is left as it was), and
the environment holds AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY=test, as the text tells the reader.
Each block must exit 0, and blocks are checked for what they show (tokens, events, text)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from lmstest import build_dir, free_port, source_dir, tokenizer_path

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)
RUN_KINDS = {"sh", "sh serve", "python"}
SKIP_KINDS = {"sh setup", "text"}


def blocks(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for m in FENCE.finditer(text):
        kind = m.group(1).strip()
        if kind not in RUN_KINDS | SKIP_KINDS:
            raise AssertionError("%s: a ```%s block: mark it sh, sh serve, python, sh setup or text" % (path, kind))
        out.append((kind, m.group(2)))
    return out


class ReadmeExamplesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lms-readme-")
        os.symlink(build_dir(), os.path.join(self.tmp, "build"))
        shutil.copytree(os.path.join(source_dir(), "python"), os.path.join(self.tmp, "python"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
        os.makedirs(os.path.join(self.tmp, "path", "to"))
        os.symlink(tokenizer_path(), os.path.join(self.tmp, "path", "to", "tokenizer.model"))
        self.port = free_port()
        self.port2 = free_port()
        site = os.path.join(self.tmp, "site")
        self.env = dict(os.environ)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "HF_MODEL_ID",
                  "MESSAGES_API_ENABLED", "PORT", "SAGEMAKER_BIND_TO_PORT"):
            self.env.pop(k, None)
        self.env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", PIP_TARGET=site,
                        PYTHONPATH=site, PIP_DISABLE_PIP_VERSION_CHECK="1",
                        AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull,
                        PATH=os.path.dirname(sys.executable) + os.pathsep + self.env.get("PATH", ""))
        self.servers = []

    def tearDown(self):
        for p, log in self.servers:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wait_ready(self, proc, log_path, port):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90:
            if proc.poll() is not None:
                with open(log_path) as f:
                    raise AssertionError("the sh serve block exited (%s):\n%s" % (proc.returncode, f.read()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("the sh serve block's server was not ready in 90 s")

    def run_file(self, rel):
        ran = []
        for n, (kind, code) in enumerate(blocks(os.path.join(source_dir(), rel))):
            if kind in SKIP_KINDS:
                continue
            port = self.port2 if "8081" in code else self.port
            code = code.replace("8080", str(self.port)).replace("8081", str(self.port2))
            where = "%s block %d (```%s):\n%s" % (rel, n, kind, code)
            if kind == "sh serve":
                log_path = os.path.join(self.tmp, "serve-%d.log" % n)
                log = open(log_path, "wb")
                p = subprocess.Popen(["bash", "-c", "exec " + code.strip()], cwd=self.tmp, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                self.servers.append((p, log))
                self.wait_ready(p, log_path, port)
                ran.append((kind, code, "", ""))
                continue
            cmd = ["bash", "-e", "-o", "pipefail", "-c", code] if kind == "sh" else [sys.executable, "-c", code]
            r = subprocess.run(cmd, cwd=self.tmp, env=self.env, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, "%s\nstdout:\n%s\nstderr:\n%s" % (where, r.stdout, r.stderr))
            ran.append((kind, code, r.stdout, r.stderr))
        return ran

    def test_readme(self):
        ran = self.run_file("README.md")
        by = lambda needle: [x for x in ran if needle in x[1]]  # noqa: E731
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "out", "small.gguf")))
        tok = by("tokenize")[0]
        self.assertRegex(tok[2], r"(?m)^\[1,(\d+,)*\d+\]$")  # the token ids, after the chat answer
        jsonl = by("--jsonl")[0]
        self.assertEqual(len({line.split('"request":')[1].split(",")[0] for line in jsonl[2].splitlines()
                              if '"request":' in line}), 2, jsonl[2][:500])
        self.assertIn("data:", by("curl")[0][2])
        boto = by("import boto3")[0]
        self.assertIn("data:", boto[2])  # the TGI events as PayloadParts
        self.assertGreater(len(boto[2].splitlines()[-1]), 0)  # the dialog's answer
        inv = by("lmstream invoke")[0]
        self.assertRegex(inv[3], r"stats: ttfb_ms=")
        self.assertEqual(len([x for x in ran if x[0] == "sh serve"]), 2)  # serve, control-plane
        cp = by("create_endpoint_config")[0]
        self.assertEqual(cp[2].splitlines()[0], "InService", cp[2][:300])
        self.assertIn("data:", cp[2])  # the TGI events through the control plane's runtime route

    def test_python_readme(self):
        ran = self.run_file("python/README.md")
        self.assertTrue(os.path.isdir(os.path.join(self.tmp, "site", "lmstream_client")))
        py = [x for x in ran if x[0] == "python"][0]
        self.assertTrue(py[2].strip(), "print_response_stream printed nothing")


if __name__ == "__main__":
    unittest.main()
