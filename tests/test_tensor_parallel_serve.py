# Lockstep serving with tensor parallelism: `mpirun -np 2 lmstream serve` (rank 0 owns HTTP, the
# scheduler, the one KV block allocator and sampling; rank 1 executes the step plans rank 0
# broadcasts). Checked through real clients against a single-process server on the same model:
# TGI SSE, LMI, the SageMaker event stream through boto3 and OpenAI answers are the same text;
# /info shows the degree and each rank's shard; a client that disconnects mid-stream leaves no KV
# block in use and the ranks keep serving; SIGTERM ends every rank with 0; `kill -9` of rank 1
# during a stream ends the stream, /ping fails and every process is gone, non-zero, within 10 s.
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmstest import aws, models, paths  # noqa: E402
from lmstest.http import sse_events  # noqa: E402
from lmstest.server import Server  # noqa: E402

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "--mca", "btl",
          "self,vader", "--mca", "pml", "ob1", "--mca", "btl_vader_single_copy_mechanism", "none"]


class TpServer(Server):
    """`mpirun -np N lmstream serve ...` on a free port."""

    def __init__(self, np_, args=(), env=None, model=None):
        super().__init__(args, env=env, model=model)
        self.np = np_

    def start(self, wait=True):
        cmd = MPIRUN + ["-np", str(self.np), paths.binary(), "serve", "--host", "127.0.0.1", "--port",
                        str(self.port), "--threads", "1", "--model", self.model] + self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready(timeout=120)
        return self

    def rank_pids(self):
        """{rank: pid} of this job's lmstream processes (children of mpirun)."""
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.proc.pid:
                    continue
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
                if b"OMPI_COMM_WORLD_RANK" in env:
                    out[int(env[b"OMPI_COMM_WORLD_RANK"])] = int(d)
            except (OSError, ValueError, IndexError):
                pass
        return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


GREEDY = {"do_sample": False, "max_new_tokens": 24, "details": False}
PROMPTS = ["Tell me a story", "The capital of France is", "def fib(n):", "Once upon a time"]


class TpStreaming(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        model = models.micro_model()
        cls.ref = Server(["--endpoint-name", aws.ENDPOINT], model=model).start()
        cls.tp = TpServer(2, ["--endpoint-name", aws.ENDPOINT], model=model).start()

    @classmethod
    def tearDownClass(cls):
        try:
            # SIGTERM to rank 0 (the server): it drains, sends the SHUTDOWN plan, and every rank
            # and mpirun exit 0. (SIGTERM to mpirun itself tears the job down with status 1.)
            os.kill(cls.tp.rank_pids()[0], signal.SIGTERM)
            rc = cls.tp.proc.wait(timeout=30)
            assert rc == 0, "mpirun exited %s after SIGTERM:\n%s" % (rc, cls.tp.read_log()[-3000:])
        finally:
            cls.tp.__exit__(None, None, None)
            cls.ref.__exit__(None, None, None)

    def generate(self, server, prompt):
        st, _, body = server.post_json("/generate", {"inputs": prompt, "parameters": GREEDY})
        self.assertEqual(st, 200, body)
        return json.loads(body)["generated_text"]

    def test_info_shows_degree_and_shards(self):
        info = json.loads(self.tp.request("GET", "/info")[2])
        self.assertEqual(info["tensor_parallel_degree"], 2)
        self.assertEqual(len(info["shards"]), 2)
        self.assertIn("rank 0/2: heads 0-1 of 4", info["shards"][0])
        self.assertIn("rank 1/2: heads 2-3 of 4", info["shards"][1])
        ref = json.loads(self.ref.request("GET", "/info")[2])
        self.assertEqual(ref["tensor_parallel_degree"], 1)
        self.assertEqual(ref["shards"], [])

    def test_tgi_sse_matches_single_process(self):
        for p in PROMPTS:
            want = self.generate(self.ref, p)
            st, hdrs, chunks = self.tp.stream("/generate_stream", {"inputs": p, "parameters": GREEDY})
            self.assertEqual(st, 200)
            events = [json.loads(e) for e in sse_events(b"".join(c for _, c in chunks))]
            self.assertEqual(len(events), 24)
            self.assertEqual(events[-1]["generated_text"], want)
            self.assertEqual("".join(e["token"]["text"] for e in events if not e["token"]["special"]), want)

    def test_concurrent_requests_match_single_process(self):
        want = {p: self.generate(self.ref, p) for p in PROMPTS}
        got = {}

        def one(p):
            got[p] = self.generate(self.tp, p)
        ts = [threading.Thread(target=one, args=(p,)) for p in PROMPTS]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(got, want)

    def test_sagemaker_event_stream_through_boto3(self):
        def invoke(server):
            r = aws.sagemaker_client(server).invoke_endpoint_with_response_stream(
                EndpointName=aws.ENDPOINT, ContentType="application/json",
                Body=json.dumps({"inputs": PROMPTS[0], "parameters": GREEDY, "stream": True}))
            self.assertEqual(r["ResponseMetadata"]["HTTPHeaders"]["content-type"],
                             "application/vnd.amazon.eventstream")
            buf = b""
            for ev in r["Body"]:
                buf += ev.get("PayloadPart", {}).get("Bytes", b"")
            events = [json.loads(e) for e in sse_events(buf)]
            self.assertEqual(len(events), 24)
            return events[-1]["generated_text"]
        want = invoke(self.ref)
        self.assertIn(self.generate(self.ref, PROMPTS[0]), want)
        self.assertEqual(invoke(self.tp), want)

    def test_openai_completion_matches_single_process(self):
        body = {"model": "tgi", "prompt": PROMPTS[1], "max_tokens": 24, "temperature": 0}
        a = json.loads(self.ref.post_json("/v1/completions", body)[2])
        b = json.loads(self.tp.post_json("/v1/completions", body)[2])
        self.assertEqual(b["choices"][0]["text"], a["choices"][0]["text"])

    def test_disconnect_leaves_no_kv_block_in_use(self):
        s = socket.create_connection(("127.0.0.1", self.tp.port), timeout=30)
        body = json.dumps({"inputs": PROMPTS[0], "parameters": {"max_new_tokens": 200, "do_sample": False}}).encode()
        s.sendall(b"POST /generate_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while got.count(b"data:") < 3:
            got += s.recv(4096)
        s.close()  # gone mid-stream: the sequence simply stops appearing in the step plans
        deadline = time.monotonic() + 15
        while True:
            m = self.tp.metrics()
            if m["lmstream_kv_blocks_used"] == 0 and m["lmstream_requests_running"] == 0:
                break
            self.assertLess(time.monotonic(), deadline, m)
            time.sleep(0.1)
        # Both ranks are still in lockstep: the next request is served correctly.
        self.assertEqual(self.generate(self.tp, PROMPTS[2]), self.generate(self.ref, PROMPTS[2]))


class TpLmi(unittest.TestCase):
    def test_lmi_answer_matches_single_process(self):
        model = models.micro_model()
        with Server(["--api", "lmi"], model=model) as ref, TpServer(2, ["--api", "lmi"], model=model) as tp:
            req = {"inputs": PROMPTS[3], "parameters": {"max_new_tokens": 24, "do_sample": False}}
            a = ref.post_json("/invocations", req)
            b = tp.post_json("/invocations", req)
            self.assertEqual(b[0], 200, b[2])
            self.assertEqual(json.loads(b[2])["generated_text"], json.loads(a[2])["generated_text"])


class TpSelfLaunch(unittest.TestCase):
    def test_tensor_parallel_flag_starts_its_own_ranks(self):
        # Not under mpirun: lmstream runs itself under mpirun -np 2 (as DJL's frontend does).
        with Server(["--tensor-parallel", "2"], model=models.micro_model()) as s:
            info = json.loads(s.request("GET", "/info")[2])
            self.assertEqual(info["tensor_parallel_degree"], 2)
            self.assertEqual(len(info["shards"]), 2)
            self.assertIn("mpirun", self.children(s.proc.pid))
            # SIGTERM to lmstream goes on to mpirun, which ends every rank (with status 1).
            self.assertIsNotNone(s.stop(signal.SIGTERM, timeout=30))

    @staticmethod
    def children(pid):
        names = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        st = f.read()
                    if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                        names.append(st.split("(", 1)[1].split(")", 1)[0])
                except (OSError, ValueError, IndexError):
                    pass
        return " ".join(names)


class TpFaults(unittest.TestCase):
    def test_kill_rank_1_during_a_stream(self):
        env = {"LMSTREAM_TEST_STEP_DELAY_MS": "30"}  # a stream long enough to kill into
        with TpServer(2, env=env, model=models.micro_model()) as tp:
            ranks = tp.rank_pids()
            self.assertEqual(sorted(ranks), [0, 1], ranks)
            s = socket.create_connection(("127.0.0.1", tp.port), timeout=30)
            body = json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 200, "do_sample": False}}).encode()
            s.sendall(b"POST /generate_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            got = b""
            while got.count(b"data:") < 3:
                got += s.recv(4096)
            t0 = time.monotonic()
            os.kill(ranks[1], signal.SIGKILL)
            # The stream ends (connection closed or an error event), well before its 200 tokens.
            s.settimeout(10)
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
            except OSError:
                pass
            s.close()
            self.assertLess(got.count(b"data:"), 200)
            self.assertFalse(got.endswith(b"0\r\n\r\n") and b'"generated_text":"' in got.rsplit(b"data:", 1)[-1],
                             "the stream finished normally")
            # /ping fails and every process is gone, non-zero, within 10 s.
            ping_failed = False
            while time.monotonic() - t0 < 10:
                try:
                    st, _, _ = tp.request("GET", "/ping", timeout=1)
                    if st != 200:
                        ping_failed = True
                except OSError:
                    ping_failed = True
                if ping_failed and tp.proc.poll() is not None and not any(alive(p) for p in ranks.values()):
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - t0
            self.assertTrue(ping_failed)
            self.assertIsNotNone(tp.proc.poll(), "mpirun still running after 10 s:\n" + tp.read_log()[-2000:])
            self.assertNotEqual(tp.proc.returncode, 0)
            self.assertFalse([r for r, p in ranks.items() if alive(p)], "ranks still alive")
            self.assertLess(elapsed, 10.0)
            print("kill -9 rank 1: every process gone in %.1f s, mpirun exit %s" % (elapsed, tp.proc.returncode))


if __name__ == "__main__":
    unittest.main(verbosity=2)
