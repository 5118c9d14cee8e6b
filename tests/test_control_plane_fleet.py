"""Endpoints of `lmstream control-plane` as supervised, replicated workers, through boto3:
InitialInstanceCount=2 under 16 concurrent streams (both workers serve), `kill -9` of a worker
mid-stream (only its streams end, with ModelStreamError; it is restarted; the endpoint stays
InService and new requests succeed), variant weights and TargetVariant, blue/green UpdateEndpoint
under 8 continuously streaming clients (zero failures) and a failing update that leaves the old
configuration serving, a control plane restart that brings its endpoints back, and /metrics with
endpoint/variant labels. Needs python3 with boto3 (pyenv 3.11)."""
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest

try:
    import botocore.exceptions
except ImportError as e:
    raise SystemExit("boto3/botocore are required for this test (pyenv python3): %s" % e)

from lmstest import python_client_dir, micro_model  # noqa: E402
from lmstest.control import TGI_IMAGE, ControlPlane  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, python_client_dir())
from lmstream_client import LineIterator  # noqa: E402


def stream_text(smr, endpoint, tokens=8, **kw):
    """One InvokeEndpointWithResponseStream; returns (variant, text). Raises on a stream error."""
    body = {"inputs": "Hello there", "parameters": {"max_new_tokens": tokens}, "stream": True}
    r = smr.invoke_endpoint_with_response_stream(EndpointName=endpoint, Body=json.dumps(body),
                                                 ContentType="application/json", **kw)
    text = ""
    for line in LineIterator(r["Body"]):
        if line.startswith(b"data:"):
            ev = json.loads(line[5:])
            if "error" in ev:
                raise AssertionError(ev)
            text += ev["token"]["text"]
    return r["InvokedProductionVariant"], text


def metric_values(text, name):
    """{(endpoint, variant, instance): value} of a metric's samples."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line[:line.rindex("}")]))
            out[(labels.get("endpoint"), labels.get("variant"), labels.get("instance"))] = float(line.rsplit(" ", 1)[1])
    return out


def create(sm, name, variants, env=None):
    """A model per distinct variant model, a config, an endpoint; returns the config name."""
    e = {"HF_MODEL_ID": micro_model()}
    e.update(env or {})
    for v in variants:
        try:
            sm.create_model(ModelName=v["ModelName"], PrimaryContainer={"Image": TGI_IMAGE, "Environment": dict(
                e, **v.pop("env", {}))})
        except botocore.exceptions.ClientError as err:
            if "already existing" not in str(err):
                raise
        v.setdefault("InstanceType", "ml.g5.2xlarge")
        v.setdefault("InitialInstanceCount", 1)
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    return name


def delete_quietly(sm, name):
    """Cleanup: delete the endpoint if a failed test left it, and wait until its workers are gone."""
    try:
        sm.delete_endpoint(EndpointName=name)
    except botocore.exceptions.ClientError:
        pass  # already deleted (the test's own last step), or never created
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def wait_settled(sm, name, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] not in ("Creating", "Updating"):
            return d
        time.sleep(0.1)
    raise AssertionError("%s not settled: %s" % (name, d))


class Fleet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cp = ControlPlane(["--wait-for-in-service"]).start()
        cls.sm, cls.smr = cls.cp.sm(), cls.cp.rt()

    @classmethod
    def tearDownClass(cls):
        cls.cp.__exit__(None, None, None)

    def test_two_instances_kill9_and_restart(self):
        sm, smr = self.sm, self.smr
        # Engine pacing keeps streams open long enough to overlap (and to be cut by the kill).
        create(sm, "two-cfg", [{"VariantName": "AllTraffic", "ModelName": "paced", "InitialInstanceCount": 2,
                                "env": {"LMSTREAM_TEST_STEP_DELAY_MS": "25"}}])
        sm.create_endpoint(EndpointName="two", EndpointConfigName="two-cfg")
        self.addCleanup(delete_quietly, sm, "two")
        d = sm.describe_endpoint(EndpointName="two")
        self.assertEqual(d["EndpointStatus"], "InService", d.get("FailureReason"))
        self.assertEqual(d["ProductionVariants"][0]["CurrentInstanceCount"], 2)
        results, errors = [], []

        def one(tokens=16):
            try:
                results.append(stream_text(smr, "two", tokens))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        ts = [threading.Thread(target=one) for _ in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 16)
        served = metric_values(self.cp.metrics_text(), "tgi_request_success")
        per_instance = {k[2]: v for k, v in served.items() if k[0] == "two"}
        self.assertEqual(set(per_instance), {"1", "2"}, served)
        self.assertTrue(all(v >= 3 for v in per_instance.values()), per_instance)  # least busy spreads them
        self.assertEqual(sum(per_instance.values()), 16)

        # kill -9 one worker while 8 streams run; meanwhile new requests keep coming.
        pids = self.cp.worker_pids()
        self.assertEqual(len(pids), 2)
        results.clear()
        errors.clear()
        ts = [threading.Thread(target=one, args=(60,)) for _ in range(8)]
        for t in ts:
            t.start()
        time.sleep(0.6)
        text = self.cp.metrics_text()
        victim = [k for k, v in metric_values(text, "lmstream_control_plane_worker_pid").items() if v == pids[0]][0]
        on_victim = metric_values(text, "lmstream_control_plane_worker_outstanding_requests")[victim]
        os.kill(pids[0], signal.SIGKILL)
        fresh = []
        for _ in range(6):  # new requests during the restart all succeed (the live worker takes them)
            fresh.append(stream_text(smr, "two", 2))
            self.assertEqual(sm.describe_endpoint(EndpointName="two")["EndpointStatus"], "InService")
        for t in ts:
            t.join(60)
        self.assertEqual(len(fresh), 6)
        self.assertEqual(len(results) + len(errors), 8)
        self.assertGreaterEqual(on_victim, 1)
        self.assertEqual(len(errors), on_victim)  # exactly the streams on the killed worker ended
        self.assertGreaterEqual(len(results), 1)  # the other worker's streams finished
        for e in errors:
            self.assertIsInstance(e, botocore.exceptions.EventStreamError)
            self.assertEqual(e.response["Error"]["Code"], "ModelStreamError")
            self.assertIn("interrupted", e.response["Error"]["Message"])
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            up = metric_values(self.cp.metrics_text(), "lmstream_control_plane_worker_up")
            if [v for k, v in up.items() if k[0] == "two"] == [1.0, 1.0]:
                break
            time.sleep(0.2)
        restarts = metric_values(self.cp.metrics_text(), "lmstream_control_plane_worker_restarts_total")
        self.assertEqual(sorted(v for k, v in restarts.items() if k[0] == "two"), [0.0, 1.0])
        self.assertEqual(len(self.cp.worker_pids()), 2)
        self.assertNotIn(pids[0], self.cp.worker_pids())
        self.assertEqual(stream_text(smr, "two", 2)[0], "AllTraffic")
        log = ""
        for i in (1, 2):
            with open(os.path.join(self.cp.state_dir, "logs", "two.AllTraffic.%d.log" % i)) as f:
                log += f.read()
        self.assertEqual(log.count("=== lmstream control-plane: starting worker"), 3)
        sm.delete_endpoint(EndpointName="two")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="two", WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    def test_weights_and_target_variant(self):
        sm, smr = self.sm, self.smr
        create(sm, "wv-cfg", [{"VariantName": "Main", "ModelName": "wv", "InitialVariantWeight": 1},
                              {"VariantName": "Canary", "ModelName": "wv", "InitialVariantWeight": 0.0}])
        sm.create_endpoint(EndpointName="wv", EndpointConfigName="wv-cfg")
        self.assertEqual(sm.describe_endpoint(EndpointName="wv")["EndpointStatus"], "InService")
        self.assertEqual({stream_text(smr, "wv", 1)[0] for _ in range(8)}, {"Main"})
        self.assertEqual(stream_text(smr, "wv", 1, TargetVariant="Canary")[0], "Canary")
        r = smr.invoke_endpoint(EndpointName="wv", TargetVariant="Canary", ContentType="application/json",
                                Body=json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 1}}))
        self.assertEqual(r["InvokedProductionVariant"], "Canary")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            stream_text(smr, "wv", 1, TargetVariant="Nope")
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ValidationError")
        text = self.cp.metrics_text()
        self.assertRegex(text, r'tgi_request_count\{endpoint="wv",variant="Canary",instance="1"\} 2')
        self.assertRegex(text, r'tgi_request_count\{endpoint="wv",variant="Main",instance="1"\} 8')
        self.assertEqual(text.count("# TYPE tgi_request_count "), 1)
        sm.delete_endpoint(EndpointName="wv")
        # Weights 3:1 split the traffic (60 requests: both variants answer, the heavier more often).
        create(sm, "split-cfg", [{"VariantName": "Heavy", "ModelName": "wv", "InitialVariantWeight": 3},
                                 {"VariantName": "Light", "ModelName": "wv", "InitialVariantWeight": 1}])
        sm.create_endpoint(EndpointName="split", EndpointConfigName="split-cfg")
        body = json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 1}})
        got = [smr.invoke_endpoint(EndpointName="split", ContentType="application/json", Body=body)
               ["InvokedProductionVariant"] for _ in range(60)]
        self.assertGreater(got.count("Light"), 0, got)
        self.assertGreater(got.count("Heavy"), got.count("Light"), got)
        self.assertEqual(got.count("Heavy") + got.count("Light"), 60)
        sm.delete_endpoint(EndpointName="split")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="split", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        sm.get_waiter("endpoint_deleted").wait(EndpointName="wv", WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    def test_blue_green_update_under_load(self):
        sm, smr = self.sm, self.smr
        create(sm, "bg-blue", [{"VariantName": "Blue", "ModelName": "bg",
                                "env": {"LMSTREAM_TEST_STEP_DELAY_MS": "10"}}])
        create(sm, "bg-green", [{"VariantName": "Green", "ModelName": "bg"}])
        bad_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, bad_dir, True)
        bad = os.path.join(bad_dir, "not-a-model.gguf")
        with open(bad, "wb") as f:
            f.write(b"this is not a GGUF file")
        create(sm, "bg-bad", [{"VariantName": "Broken", "ModelName": "bg-bad", "env": {"HF_MODEL_ID": bad}}])
        sm.create_endpoint(EndpointName="bg", EndpointConfigName="bg-blue")
        self.addCleanup(delete_quietly, sm, "bg")  # a failure here must not leave workers to the next test
        self.assertEqual(sm.describe_endpoint(EndpointName="bg")["EndpointStatus"], "InService")
        stop = threading.Event()
        seen, failures, count = [], [], [0]

        def client():
            c = self.cp.rt()
            while not stop.is_set():
                try:
                    variant, text = stream_text(c, "bg", 6)
                    seen.append(variant)
                    count[0] += 1
                except Exception as e:  # noqa: BLE001
                    failures.append(repr(e))
        ts = [threading.Thread(target=client) for _ in range(8)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-green")
        self.assertIn(sm.describe_endpoint(EndpointName="bg")["EndpointStatus"], ("Updating", "InService"))
        d = wait_settled(sm, "bg")
        self.assertEqual((d["EndpointStatus"], d["EndpointConfigName"]), ("InService", "bg-green"))
        self.assertEqual([v["VariantName"] for v in d["ProductionVariants"]], ["Green"])
        time.sleep(1.0)
        n_after_green = len(seen)
        # A new configuration that fails leaves the old one serving.
        sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-bad")
        d = wait_settled(sm, "bg")
        self.assertEqual((d["EndpointStatus"], d["EndpointConfigName"]), ("InService", "bg-green"))
        self.assertIn('Updating to endpoint configuration "bg-bad" failed', d["FailureReason"])
        self.assertIn(bad, d["FailureReason"])
        # Enough requests after the switch to show that only Green answers them (bounded wait: a
        # loaded machine streams slowly).
        deadline = time.monotonic() + 60
        while len(seen) < n_after_green + 32 and time.monotonic() < deadline and not failures:
            time.sleep(0.05)
        stop.set()
        for t in ts:
            t.join(60)
        self.assertEqual(failures, [])
        self.assertGreater(count[0], 16)
        self.assertIn("Blue", seen)
        self.assertIn("Green", seen)
        self.assertNotIn("Broken", seen)
        self.assertGreaterEqual(len(seen), n_after_green + 32)
        self.assertEqual(set(seen[n_after_green + 16:]), {"Green"})
        self.assertEqual(len(self.cp.worker_pids()), 1)  # blue stopped after draining, the broken one too
        sm.delete_endpoint(EndpointName="bg")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="bg", WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    def test_delete_lets_inflight_streams_finish(self):
        sm, smr = self.sm, self.smr
        create(sm, "del-cfg", [{"VariantName": "AllTraffic", "ModelName": "del-paced",
                                "env": {"LMSTREAM_TEST_STEP_DELAY_MS": "40"}}])
        sm.create_endpoint(EndpointName="del", EndpointConfigName="del-cfg")
        out, errors = [], []

        def one():
            try:
                out.append(stream_text(smr, "del", 30))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        ts = [threading.Thread(target=one) for _ in range(3)]
        for t in ts:
            t.start()
        time.sleep(0.4)
        sm.delete_endpoint(EndpointName="del")
        self.assertEqual(sm.describe_endpoint(EndpointName="del")["EndpointStatus"], "Deleting")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:  # no new requests while deleting
            stream_text(smr, "del", 1)
        self.assertEqual(ctx.exception.response["Error"]["Message"], "Endpoint del of account 123456789012 not found.")
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(out), 3)  # the streams in flight finished
        sm.get_waiter("endpoint_deleted").wait(EndpointName="del", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self.assertEqual(self.cp.worker_pids(), [])

    def test_restart_brings_endpoints_back(self):
        state = tempfile.mkdtemp(prefix="lms-cp-restart-")
        with ControlPlane(state_dir=state) as cp:
            sm = cp.sm()
            create(sm, "rs-cfg", [{"VariantName": "AllTraffic", "ModelName": "rs"}])
            sm.create_endpoint(EndpointName="Restart-Me", EndpointConfigName="rs-cfg")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="Restart-Me", WaiterConfig={"Delay": 1})
            before = sm.describe_endpoint(EndpointName="Restart-Me")
            self.assertEqual(cp.stop(), 0)  # SIGTERM: workers stop with it
            self.assertEqual(cp.worker_pids() if cp.proc.poll() is None else [], [])
        self.assertTrue(os.path.isfile(os.path.join(state, "state.db")))
        with ControlPlane(state_dir=state) as cp:
            sm = cp.sm()
            self.assertIn(sm.describe_endpoint(EndpointName="Restart-Me")["EndpointStatus"], ("Creating", "InService"))
            sm.get_waiter("endpoint_in_service").wait(EndpointName="Restart-Me", WaiterConfig={"Delay": 1})
            after = sm.describe_endpoint(EndpointName="Restart-Me")
            self.assertEqual((after["EndpointArn"], after["CreationTime"]), (before["EndpointArn"], before["CreationTime"]))
            self.assertEqual(sm.describe_model(ModelName="rs")["ModelName"], "rs")
            self.assertEqual(sm.describe_endpoint_config(EndpointConfigName="rs-cfg")["EndpointConfigName"], "rs-cfg")
            self.assertEqual(stream_text(cp.rt(), "Restart-Me", 3)[0], "AllTraffic")
            sm.delete_endpoint(EndpointName="Restart-Me")
            sm.get_waiter("endpoint_deleted").wait(EndpointName="Restart-Me", WaiterConfig={"Delay": 1})
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
