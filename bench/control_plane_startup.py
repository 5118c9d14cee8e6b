#!/usr/bin/env python3
"""Start-up for bench/control_plane.sh: interleaved rounds of (a) `lmstream serve` started until
GET /ping answers 200 and (b) CreateEndpoint through a running `lmstream control-plane
--wait-for-in-service` (boto3) until it answers, with the endpoint InService; the same model,
threads and KV budget on both sides. Both use the packed-weight cache (engine/packed_cache.h) in a
fresh directory of this run, written first by one priming `serve` start (a model's first start), so
every timed start maps it. Prints {"serve_s": [...], "plane_s": [...]}."""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import boto3

TGI = ("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:"
       "2.0.1-tgi1.0.3-gpu-py39-cu118-ubuntu20.04")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ping(port, proc, timeout=600):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit("process exited with %s" % proc.returncode)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit("no /ping 200 within %s s" % timeout)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lmstream", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--kv", default="268435456")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    out = {"serve_s": [], "plane_s": []}
    work = tempfile.mkdtemp(prefix="lms-cp-startup-")
    log = open(os.path.join(work, "log"), "wb")
    os.environ["LMSTREAM_PACKED_CACHE"] = "on"
    os.environ["LMSTREAM_PACKED_CACHE_DIR"] = os.path.join(work, "packed")
    try:
        prime_log = os.path.join(work, "prime.log")
        with open(prime_log, "wb") as pl:
            port = free_port()
            p = subprocess.Popen([a.lmstream, "serve", "--model", a.model, "--threads", a.threads, "--host",
                                  "127.0.0.1", "--port", str(port), "--kv-cache-memory", a.kv],
                                 stdout=pl, stderr=subprocess.STDOUT)
            wait_ping(port, p)
            t0 = time.monotonic()
            while b"packed-weight cache: wrote" not in open(prime_log, "rb").read():
                if time.monotonic() - t0 > 600 or b"packed-weight cache: not written" in open(prime_log, "rb").read():
                    raise SystemExit("the packed-weight cache was not written")
                time.sleep(0.1)
            p.terminate()
            p.wait(60)
        for r in range(a.rounds):
            port = free_port()
            t0 = time.monotonic()
            p = subprocess.Popen([a.lmstream, "serve", "--model", a.model, "--threads", a.threads, "--host",
                                  "127.0.0.1", "--port", str(port), "--kv-cache-memory", a.kv],
                                 stdout=log, stderr=subprocess.STDOUT)
            wait_ping(port, p)
            out["serve_s"].append(time.monotonic() - t0)
            p.terminate()
            p.wait(60)
            port = free_port()
            p = subprocess.Popen([a.lmstream, "control-plane", "--state-dir", os.path.join(work, "s%d" % r), "--port",
                                  str(port), "--worker-threads", a.threads, "--worker-kv-memory", a.kv,
                                  "--wait-for-in-service"], stdout=log, stderr=subprocess.STDOUT)
            wait_ping(port, p)
            sm = boto3.client("sagemaker", endpoint_url="http://127.0.0.1:%d" % port, region_name="us-east-1",
                              aws_access_key_id="a", aws_secret_access_key="b")
            sm.create_model(ModelName="m", PrimaryContainer={"Image": TGI, "Environment": {"HF_MODEL_ID": a.model}})
            sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.2xlarge",
                "InitialInstanceCount": 1}])
            t0 = time.monotonic()
            sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
            out["plane_s"].append(time.monotonic() - t0)
            status = sm.describe_endpoint(EndpointName="e")["EndpointStatus"]
            if status != "InService":
                raise SystemExit("endpoint %s" % status)
            p.terminate()
            p.wait(60)
    finally:
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
