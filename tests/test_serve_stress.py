"""`lmstream serve` under stress, over loopback: 64 concurrent streams with 16 clients
disconnecting midway (the others complete intact; afterwards no KV blocks in use, nothing
running); 429 past MAX_CONCURRENT_REQUESTS while admitted streams go on; SIGTERM drains in-flight
streams and exits 0, cancelling what outlives --shutdown-grace; TGI environment settings and
flags honoured (asserted on /info)."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from lmstest import SANITIZED, Server, binary, micro_model, sse_events


def open_stream(port, obj, path="/generate_stream"):
    body = json.dumps(obj).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    return s


def read_chunked_events(s, stop_after=None):
    """Reads a chunked SSE response; returns (status, list of event JSON texts, complete?)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, [], False
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ")[1])
    body, data = b"", rest
    events = []
    while True:
        while True:
            i = data.find(b"\r\n")
            if i < 0:
                break
            size = int(data[:i], 16)
            if len(data) < i + 2 + size + 2:
                break
            if size == 0:
                return status, sse_events(body) if body else [], True
            body += data[i + 2:i + 2 + size]
            data = data[i + 2 + size + 2:]
        if stop_after is not None and body.count(b"\n\n") >= stop_after:
            return status, [], False
        d = s.recv(65536)
        if not d:
            return status, [], False
        data += d


def wait_idle(server, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        m = server.metrics()
        if (m["lmstream_kv_blocks_used"] == 0 and m["lmstream_requests_running"] == 0 and m["tgi_queue_size"] == 0
                and m["lmstream_requests_in_flight"] == 0):
            return m
        if time.monotonic() > deadline:
            raise AssertionError("server not idle: %s" % {k: v for k, v in m.items() if "bucket" not in k})
        time.sleep(0.05)


class ConcurrencyTest(unittest.TestCase):
    def test_64_streams_16_disconnect(self):
        n, quitters, new = (16, 4, 16) if SANITIZED else (64, 16, 32)
        # 2 ms per engine step (test-only pacing): the streams overlap on any machine.
        with Server(args=["--threads", "2"], env={"LMSTREAM_TEST_STEP_DELAY_MS": "2"}) as srv:
            results = {}

            # Quitters ask for far more tokens than the others, so they cannot finish before the
            # server notices they left (the micro model makes a token in well under a millisecond).
            quit_new = 200

            def client(i):
                quits = i % (n // quitters) == 0
                s = open_stream(srv.port, {"inputs": "Story number %d:" % i,
                                           "parameters": {"max_new_tokens": quit_new if quits else new, "details": True,
                                                          "ignore_eos": True, "seed": i, "do_sample": True, "top_k": 20}})
                try:
                    if quits:
                        results[i] = ("quit",) + read_chunked_events(s, stop_after=3)
                        s.close()  # abrupt disconnect mid-stream
                    else:
                        results[i] = ("full",) + read_chunked_events(s)
                finally:
                    s.close()

            ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(timeout=300)
            self.assertEqual(len(results), n)
            full = 0
            for i, (kind, status, events, complete) in results.items():
                self.assertEqual(status, 200)
                if kind == "quit":
                    continue
                full += 1
                self.assertTrue(complete, i)
                evs = [json.loads(e) for e in events]
                final = evs[-1]
                self.assertNotIn("error", final)
                # Intact: every token event present, texts add up to the final text.
                self.assertEqual(final["details"]["generated_tokens"], len(evs))
                # Texts add up to the final text; a generation that ends inside a UTF-8 character has
                # U+FFFD in generated_text for the bytes no token event could show (as TGI).
                joined = "".join(e["token"]["text"] for e in evs if not e["token"]["special"])
                gt = final["generated_text"]
                self.assertTrue(gt.startswith(joined) and set(gt[len(joined):]) <= {"\ufffd"}, (joined, gt))
            self.assertEqual(full, n - quitters)
            m = wait_idle(srv)
            self.assertEqual(m['tgi_request_failure{err="dropped"}'], quitters)
            self.assertEqual(m["tgi_request_success"], n - quitters)
            # The abandoned requests stopped early (cancelled at the next step, not run to the end).
            time.sleep(0.2)
            dropped = [e for e in srv.access_log() if e["route"] == "/generate_stream" and e["finish"] == "cancelled"]
            self.assertEqual(len(dropped), quitters)
            for e in dropped:
                self.assertLess(e["generated_tokens"], quit_new)

    def test_429_past_limit_while_admitted_streams_go_on(self):
        # 5 ms per engine step (test-only pacing): the three admitted streams last at least 0.5 s,
        # however fast the machine, while the rejected requests are answered at once.
        with Server(args=["--max-concurrent-requests", "3"], env={"LMSTREAM_TEST_STEP_DELAY_MS": "5"}) as srv:
            new = 100
            streams = [open_stream(srv.port, {"inputs": "Long story %d" % i, "parameters": {"max_new_tokens": new, "ignore_eos": True}})
                       for i in range(3)]
            # Wait until all three are admitted and producing.
            firsts = []
            for s in streams:
                buf = b""
                while b"data:" not in buf:
                    buf += s.recv(65536)
                firsts.append(buf)
            for _ in range(5):
                t0 = time.monotonic()
                st, h, body = srv.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
                self.assertLess(time.monotonic() - t0, 1.0)
                self.assertEqual(st, 429)
                self.assertEqual(json.loads(body), {"error": "Model is overloaded", "error_type": "overloaded"})
                st, h, chunks = srv.stream("/generate_stream", {"inputs": "Hi"})
                self.assertEqual(st, 200)
                self.assertEqual([json.loads(e) for e in sse_events(b"".join(c for _, c in chunks))],
                                 [{"error": "Model is overloaded", "error_type": "overloaded"}])
                st, _, _ = srv.post_json("/v1/completions", {"model": "m", "prompt": "Hi"})
                self.assertEqual(st, 429)
            # The admitted streams finish intact.
            for s, first in zip(streams, firsts):
                rest = b""
                while not rest.endswith(b"0\r\n\r\n"):
                    d = s.recv(65536)
                    if not d:
                        break
                    rest += d
                s.close()
                data = first + rest
                body = data.split(b"\r\n\r\n", 1)[1]
                # de-chunk
                out, i = b"", 0
                while True:
                    j = body.index(b"\r\n", i)
                    size = int(body[i:j], 16)
                    if size == 0:
                        break
                    out += body[j + 2:j + 2 + size]
                    i = j + 2 + size + 2
                evs = [json.loads(e) for e in sse_events(out)]
                self.assertIsNotNone(evs[-1]["generated_text"])
                self.assertNotIn("error", evs[-1])
            m = wait_idle(srv)
            self.assertGreaterEqual(m['tgi_request_failure{err="overloaded"}'], 10)
            # Permits came back: a new request is admitted.
            self.assertEqual(srv.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})[0], 200)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_drains_in_flight_stream_then_exits_0(self):
        srv = Server(args=["--shutdown-grace", "30"]).start()
        try:
            s = open_stream(srv.port, {"inputs": "Once", "parameters": {"max_new_tokens": 40}})
            buf = b""
            while b"data:" not in buf:
                buf += s.recv(65536)
            srv.proc.send_signal(signal.SIGTERM)
            while not buf.endswith(b"0\r\n\r\n"):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            s.close()
            self.assertTrue(b'"generated_text":"' in buf and b'"error"' not in buf, buf[-200:])
            self.assertEqual(srv.proc.wait(timeout=30), 0)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        finally:
            srv.__exit__(None, None, None)

    def test_grace_expiry_cancels_and_exits_0(self):
        srv = Server(args=["--shutdown-grace", "0"]).start()
        try:
            s = open_stream(srv.port, {"inputs": "Once", "parameters": {"max_new_tokens": 240}})
            buf = b""
            while b"data:" not in buf:
                buf += s.recv(65536)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGINT)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            s.close()
            self.assertEqual(srv.proc.wait(timeout=30), 0)
            self.assertLess(time.monotonic() - t0, 10)
            self.assertTrue(buf.endswith(b'data:{"error":"Incomplete generation","error_type":"incomplete_generation"}\n\n\r\n0\r\n\r\n'),
                            buf[-200:])
        finally:
            srv.__exit__(None, None, None)


    def test_exit_with_connections_in_every_state_is_clean(self):
        # Connections in every state when the grace runs out: idle keep-alive, a request half
        # sent, a stream read by its client, a stream its client stopped reading, a request that
        # just finished. serve still exits 0, and (under ASan) leaves nothing allocated: the
        # connections are closed and their exchanges released before the backend goes, so no
        # engine thread outlives serve() (a stopped io_context used to keep connection and
        # exchange holding each other, LeakSanitizer's exit status 23).
        for sig in (signal.SIGTERM, None):
            with self.subTest(signal="SIGTERM" if sig else "SIGTERM twice"):
                srv = Server(args=["--shutdown-grace", "0"]).start()
                socks = []
                try:
                    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
                    idle.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertIn(b"200 OK", idle.recv(65536))
                    half = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
                    half.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in")
                    read = open_stream(srv.port, {"inputs": "Once", "parameters": {"max_new_tokens": 240}})
                    stalled = open_stream(srv.port, {"inputs": "Upon", "parameters": {"max_new_tokens": 240}})
                    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                    socks += [idle, half, read, stalled]
                    buf = b""
                    while b"data:" not in buf:
                        buf += read.recv(65536)
                    for _ in range(3):  # requests that end just as the signal comes
                        socks.append(open_stream(srv.port, {"inputs": "Hi", "parameters": {"max_new_tokens": 1}},
                                                 path="/generate"))
                    srv.proc.send_signal(signal.SIGTERM)
                    if sig is None:
                        srv.proc.send_signal(signal.SIGTERM)
                    self.assertEqual(srv.proc.wait(timeout=60), 0, srv.read_log()[-3000:])
                    log = srv.read_log()
                    self.assertNotIn("Sanitizer", log)
                    self.assertNotIn("still referenced", log)
                finally:
                    for s in socks:
                        s.close()
                    srv.__exit__(None, None, None)


class SettingsTest(unittest.TestCase):
    def test_tgi_env_honoured_and_flags_win(self):
        env = {"MAX_CONCURRENT_REQUESTS": "7", "MAX_INPUT_LENGTH": "100", "MAX_TOTAL_TOKENS": "200",
               "MAX_STOP_SEQUENCES": "2", "MAX_TOP_N_TOKENS": "3", "MAX_BATCH_PREFILL_TOKENS": "300",
               "MAX_BATCH_TOTAL_TOKENS": "4096", "SM_NUM_GPUS": "1"}
        with Server(env=env) as srv:
            info = json.loads(srv.request("GET", "/info")[2])
            self.assertEqual(info["max_concurrent_requests"], 7)
            self.assertEqual(info["max_input_length"], 100)
            self.assertEqual(info["max_total_tokens"], 200)
            self.assertEqual(info["max_stop_sequences"], 2)
            self.assertEqual(info["max_top_n_tokens"], 3)
            self.assertEqual(info["max_batch_prefill_tokens"], 300)
            self.assertEqual(info["max_batch_total_tokens"], 4096)
            st, _, body = srv.post_json("/generate", {"inputs": "x", "parameters": {"stop": ["a", "b", "c"]}})
            self.assertEqual(json.loads(body)["error"], "Input validation error: `stop` supports up to 2 stop sequences. Given: 3")
        with Server(env=env, args=["--max-concurrent-requests", "9", "--max-input-length", "50"]) as srv:
            info = json.loads(srv.request("GET", "/info")[2])
            self.assertEqual(info["max_concurrent_requests"], 9)
            self.assertEqual(info["max_input_length"], 50)
            self.assertEqual(info["max_total_tokens"], 200)

    def test_hf_model_id_and_sagemaker_port(self):
        srv = Server(model="", env={"HF_MODEL_ID": micro_model()})
        srv.start()
        try:
            self.assertEqual(json.loads(srv.request("GET", "/info")[2])["model_id"], micro_model())
        finally:
            srv.__exit__(None, None, None)

    def test_num_shard_is_a_clear_startup_error(self):
        r = subprocess.run([binary(), "serve", "--model", micro_model(), "--port", "0"],
                           env=dict(os.environ, NUM_SHARD="2"), capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("NUM_SHARD", r.stderr)
        self.assertIn("tensor parallelism", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
