"""A running `lmstream serve` for tests: started on a free loopback port (the micro test model
unless told otherwise), waited for with /ping, its output captured to a log file, and killed on
teardown; every wait is bounded. Python stdlib only."""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

from . import models, paths

# Server settings read from the environment that a test's own environment must not leak in.
SERVER_ENV_DROP = ("HF_MODEL_ID", "MAX_CONCURRENT_REQUESTS", "MAX_INPUT_LENGTH", "MAX_TOTAL_TOKENS", "PORT",
                   "SAGEMAKER_BIND_TO_PORT", "NUM_SHARD", "SM_NUM_GPUS", "PREFIX_CACHING",
                   "OPTION_ENABLE_PREFIX_CACHING")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A running `lmstream serve`. Use as a context manager."""

    def __init__(self, args=(), env=None, model=None, cwd=None):
        self.port = free_port()
        self.log_path = tempfile.mktemp(prefix="lms-serve-", suffix=".log")
        self.args = list(args)
        self.env = dict(os.environ)
        for k in SERVER_ENV_DROP:
            self.env.pop(k, None)
        self.env.update(env or {})
        self.model = model if model is not None else models.micro_model()
        self.proc = None
        self.log = None

    def start(self, wait=True):
        cmd = [paths.binary(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if "--threads" not in self.args:
            cmd += ["--threads", "1"]
        if self.model:
            cmd += ["--model", self.model]
        cmd += self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
            try:
                st, _, _ = self.request("GET", "/ping", timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server not ready within %ss:\n%s" % (timeout, self.read_log()))

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def access_log(self):
        out = []
        for line in self.read_log().splitlines():
            i = line.find("access {")
            if i >= 0:
                out.append(json.loads(line[i + len("access "):]))
        return out

    def access_log_until(self, done, timeout=10):
        """The access log once done(entries) holds (or at the timeout): a line is written when its
        exchange ends, just after the answer's last bytes reached the client."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.access_log()
            if done(entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.02)

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                headers = dict(headers or {})
                headers.setdefault("Content-Type", "application/json")
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def post_json(self, path, obj, timeout=60):
        return self.request("POST", path, obj, timeout=timeout)

    def stream(self, path, obj, timeout=60):
        """POST and return (status, headers, [(monotonic receive time, bytes), ...])."""
        c = self.conn(timeout)
        try:
            c.request("POST", path, body=json.dumps(obj), headers={"Content-Type": "application/json"})
            r = c.getresponse()
            chunks = []
            while True:
                b = r.read1(65536)
                if not b:
                    break
                chunks.append((time.monotonic(), b))
            return r.status, dict(r.getheaders()), chunks
        finally:
            c.close()

    def metrics(self):
        st, _, body = self.request("GET", "/metrics")
        assert st == 200
        m = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            k, v = line.rsplit(" ", 1)
            m[k] = float(v)
        return m

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            tail = "\n".join(self.read_log().splitlines()[-40:])
            raise AssertionError("server did not exit within %ss after %s; its log ends:\n%s" % (timeout, sig, tail))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        finally:
            if self.log:
                self.log.close()
        return False
