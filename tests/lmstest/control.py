"""A running `lmstream control-plane` for tests: a state directory, a free loopback port, /ping
waited for, its log captured, boto3 `sagemaker` and `sagemaker-runtime` clients on the same
endpoint_url, and the image URIs the seed notebooks use. Needs boto3 (pyenv python3)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

from . import models, paths
from .server import SERVER_ENV_DROP, free_port

# sagemaker.image_uris.retrieve(...) for the seed's versions (reference/control-plane.md §5.1).
TGI_IMAGE = ("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:"
             "2.0.1-tgi1.0.3-gpu-py39-cu118-ubuntu20.04")
LMI_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.25.0-deepspeed0.11.0-cu118"
ROLE = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole-20230101T000000"
# The TGI notebook's Environment (HF_MODEL_ID is filled in by the test).
SEED_TGI_ENV = {"SM_NUM_GPUS": "4", "MAX_INPUT_LENGTH": "2048", "MAX_TOTAL_TOKENS": "4096",
                "MAX_BATCH_TOTAL_TOKENS": "8192", "HUGGING_FACE_HUB_TOKEN": "hf_not_needed"}


def model_4k(dest_dir):
    """A copy of the micro HF test model (Llama 2 tokenizer) whose config declares a 4096-token
    context, so the seed's MAX_INPUT_LENGTH 2048 / MAX_TOTAL_TOKENS 4096 are valid for it."""
    src = models.cached_model("hf", "micro", "f32", tokenizer=True)
    dst = os.path.join(dest_dir, "micro-4k")
    shutil.copytree(src, dst)
    p = os.path.join(dst, "config.json")
    with open(p) as f:
        cfg = json.load(f)
    cfg["max_position_embeddings"] = 4096
    with open(p, "w") as f:
        json.dump(cfg, f)
    return dst


class ControlPlane:
    """`lmstream control-plane` on a free port. Use as a context manager."""

    def __init__(self, args=(), state_dir=None, env=None, port=None):
        self.port = port or free_port()
        self.own_state = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="lms-cp-")
        self.args = list(args)
        self.env = dict(os.environ)
        for k in SERVER_ENV_DROP:
            self.env.pop(k, None)
        self.env.update(env or {})
        self.log_path = os.path.join(self.state_dir, "control-plane.log")
        self.proc = None
        self.url = "http://127.0.0.1:%d" % self.port

    def start(self):
        cmd = [paths.binary(), "control-plane", "--state-dir", self.state_dir, "--port", str(self.port),
               "--worker-threads", "1", "--drain-grace", "10"] + self.args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            if self.proc.poll() is not None:
                raise AssertionError("control plane exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("control plane not up within 30 s:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def client(self, service, key="AKIDEXAMPLE", secret="not-checked", retries=1):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": retries}, read_timeout=120, connect_timeout=10))

    def sm(self, **kw):
        return self.client("sagemaker", **kw)

    def rt(self, **kw):
        return self.client("sagemaker-runtime", **kw)

    def metrics_text(self):
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            return r.read().decode()

    def worker_pids(self):
        """pid of every live `lmstream serve` child of the control plane."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("control plane did not exit within %ss" % timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            self.log.close()
            if self.own_state and not exc[0]:
                shutil.rmtree(self.state_dir, ignore_errors=True)
        return False
