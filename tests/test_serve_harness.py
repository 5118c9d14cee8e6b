"""Smoke tests of `lmstream serve` through the lmstest harness: /ping, keep-alive, 404/405, /info,
/tokenize, /metrics, OpenAI routes, loading state, access log. Python stdlib only."""
import array
import json
import math
import os
import subprocess
import tempfile
import time
import unittest

from lmstest import Server, binary, micro_model


class SmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.s.stop()
        cls.s.__exit__(None, None, None)
        assert rc == 0, "exit code %s" % rc

    def test_ping_health_info(self):
        for p in ("/ping", "/health", "/"):
            st, _, body = self.s.request("GET", p)
            self.assertEqual(st, 200, p)
        st, _, body = self.s.request("GET", "/info")
        info = json.loads(body)
        self.assertEqual(info["max_concurrent_requests"], 128)
        self.assertEqual(info["max_stop_sequences"], 4)
        self.assertEqual(info["api"], "tgi")
        self.assertEqual(info["model_device_type"], "cpu")

    def test_unknown_route_and_method(self):
        self.assertEqual(self.s.request("GET", "/nope")[0], 404)
        self.assertEqual(self.s.request("GET", "/generate")[0], 405)

    def test_503_while_loading_then_200(self):
        # Loading held until a gate file exists (test-only knob): the port answers at once, /ping and
        # /health say 503 and generation routes refuse with 503, then, the gate opened, /ping turns
        # 200 and generation works.
        gate = tempfile.mktemp(prefix="lms-load-gate-")
        srv = Server(env={"LMSTREAM_TEST_LOAD_GATE": gate}).start(wait=False)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    st, _, body = srv.request("GET", "/ping", timeout=2)
                    break
                except OSError:
                    self.assertLess(time.monotonic(), deadline, "server never listened")
                    time.sleep(0.02)
            self.assertEqual(st, 503, body)
            self.assertEqual(json.loads(body)["error_type"], "healthcheck")
            st, _, _ = srv.request("GET", "/health")
            self.assertEqual(st, 503)
            st, _, body = srv.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
            self.assertEqual(st, 503, body)
            self.assertIn(b"loading", body)
            st, _, _ = srv.post_json("/invocations", {"inputs": "Hi"})
            self.assertEqual(st, 503)
            open(gate, "w").close()
            srv.wait_ready()
            st, _, body = srv.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
            self.assertEqual(st, 200, body)
        finally:
            srv.stop()
            if os.path.exists(gate):
                os.unlink(gate)

    def test_keep_alive_reuses_connection(self):
        c = self.s.conn()
        for _ in range(3):
            c.request("POST", "/generate", body=json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 2}}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn("generated_text", json.loads(r.read()))
        sock = c.sock
        c.request("GET", "/ping")
        r = c.getresponse()
        r.read()
        self.assertIs(c.sock, sock)  # same TCP connection
        c.close()

    def test_keep_alive_many_rounds(self):
        # Regression: a read left pending while the previous response was written must not lose
        # the next request's bytes (it once stalled a keep-alive connection until the 30 s read
        # timeout, about once in a hundred rounds on a busy machine).
        c = self.s.conn()
        for i in range(300):
            t0 = time.time()
            c.request("POST", "/generate", body=json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 1}}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            c.request("GET", "/ping")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200, f"round {i}")
            self.assertLess(time.time() - t0, 5, f"round {i} stalled")
        c.close()

    def test_kv_cache_memory_budget_sizes_the_pool(self):
        # micro model: 2 layers x 2 KV heads x 16 dims x (K and V) x 2 bytes (f16) = 256 B/token.
        with Server(args=["--kv-cache-memory", "8MiB"]) as s:
            st, _, body = s.request("GET", "/info")
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(body)["max_batch_total_tokens"], 8 * 1024 * 1024 // 256)
            st, _, body = s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 3}})
            self.assertEqual(st, 200, body)

    def test_generate_details(self):
        st, h, body = self.s.post_json("/generate", {"inputs": "Hello", "parameters": {"max_new_tokens": 4, "details": True, "top_n_tokens": 2}})
        self.assertEqual(st, 200, body)
        j = json.loads(body)
        d = j["details"]
        self.assertEqual(d["generated_tokens"], 4)
        self.assertEqual(d["finish_reason"], "length")
        self.assertIsNone(d["seed"])
        self.assertEqual(len(d["tokens"]), 4)
        self.assertEqual("".join(t["text"] for t in d["tokens"]), j["generated_text"])
        self.assertEqual(len(d["top_tokens"][0]), 2)
        self.assertEqual(h.get("x-generated-tokens"), "4")

    def test_decoder_input_details_gives_prompt_logprobs(self):
        text = "Hello world, how are you"
        st, _, body = self.s.post_json("/generate", {"inputs": text, "parameters": {"max_new_tokens": 2, "decoder_input_details": True}})
        self.assertEqual(st, 200, body)
        prefill = json.loads(body)["details"]["prefill"]
        st, _, tb = self.s.post_json("/tokenize", {"inputs": text})
        self.assertEqual(st, 200, tb)
        ids = [t["id"] for t in json.loads(tb)]
        self.assertEqual([t["id"] for t in prefill], ids)
        self.assertIsNone(prefill[0]["logprob"])
        # Each logprob is the log-softmax of the model's logits one position earlier, as the
        # `lmstream logits` CLI computes them (f32 KV there, f16 in the server: close, not equal).
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "logits.f32")
            r = subprocess.run([binary(), "logits", "--model", micro_model(), "--tokens", ",".join(map(str, ids)),
                                "-o", out], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            flat = array.array("f")
            with open(out, "rb") as f:
                flat.frombytes(f.read())
        vocab = len(flat) // len(ids)
        for i in range(1, len(ids)):
            row = flat[(i - 1) * vocab:i * vocab]
            m = max(row)
            want = row[ids[i]] - m - math.log(sum(math.exp(v - m) for v in row))
            self.assertAlmostEqual(prefill[i]["logprob"], want, delta=2e-2, msg="prompt token %d" % i)
        # Streaming cannot carry them: TGI's 422.
        st, _, body = self.s.post_json("/generate_stream", {"inputs": text, "parameters": {"decoder_input_details": True}})
        self.assertIn(b"not supported when streaming", body)

    def test_compat_returns_array_and_full_text(self):
        st, _, body = self.s.post_json("/", {"inputs": "Hello", "parameters": {"max_new_tokens": 3}})
        self.assertEqual(st, 200)
        j = json.loads(body)
        self.assertIsInstance(j, list)
        self.assertTrue(j[0]["generated_text"].startswith("Hello"))  # return_full_text defaults true on /
        st, _, body = self.s.post_json("/invocations", {"inputs": "Hello", "parameters": {"max_new_tokens": 3, "return_full_text": False}})
        self.assertFalse(json.loads(body)[0]["generated_text"].startswith("Hello"))

    def test_tokenize(self):
        st, _, body = self.s.post_json("/tokenize", {"inputs": "Hello world"})
        self.assertEqual(st, 200)
        toks = json.loads(body)
        self.assertEqual(toks[0]["id"], 1)
        self.assertEqual((toks[0]["start"], toks[0]["stop"]), (0, 0))
        self.assertEqual("".join(t["text"] for t in toks), "Hello world")

    def test_openai_chat_stream_and_not(self):
        req = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
               "max_tokens": 5, "temperature": 0}
        st, _, body = self.s.post_json("/v1/chat/completions", req)
        self.assertEqual(st, 200, body)
        full = json.loads(body)
        self.assertEqual(full["object"], "chat.completion")
        self.assertEqual(full["usage"]["completion_tokens"], 5)
        st, h, chunks = self.s.stream("/v1/chat/completions", dict(req, stream=True))
        data = b"".join(c for _, c in chunks)
        events = [e for e in data.split(b"\n\n") if e]
        self.assertEqual(events[-1], b"data: [DONE]")
        text = ""
        for e in events[:-1]:
            j = json.loads(e[len(b"data: "):])
            self.assertEqual(j["object"], "chat.completion.chunk")
            text += j["choices"][0]["delta"].get("content", "")
        self.assertEqual(text, full["choices"][0]["message"]["content"])  # greedy: same text
        self.assertEqual(json.loads(events[-2][6:])["choices"][0]["finish_reason"], "length")

    def test_openai_completions_and_models(self):
        st, _, body = self.s.post_json("/v1/completions", {"model": "m", "prompt": "Hello", "max_tokens": 3, "temperature": 0})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["object"], "text_completion")
        st, _, chunks = self.s.stream("/v1/completions", {"model": "m", "prompt": "Hello", "max_tokens": 3, "stream": True})
        self.assertTrue(b"".join(c for _, c in chunks).endswith(b"data: [DONE]\n\n"))
        st, _, body = self.s.post_json("/v1/completions", {"model": "m", "prompt": "Hello", "suffix": "x"})
        self.assertEqual(st, 422)
        st, _, body = self.s.request("GET", "/v1/models")
        self.assertEqual(json.loads(body)["data"][0]["object"], "model")

    def test_metrics_names(self):
        self.s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
        m = self.s.metrics()
        for name in ("tgi_request_count", "tgi_request_success", 'tgi_request_failure{err="validation"}',
                     "tgi_queue_size", "tgi_batch_current_size", "lmstream_kv_blocks_used", "lmstream_kv_blocks_free",
                     "tgi_request_duration_count", "tgi_request_queue_duration_count",
                     "tgi_request_input_length_count", "tgi_request_generated_tokens_count",
                     "tgi_request_mean_time_per_token_duration_count", "lmstream_time_to_first_token_seconds_count"):
            self.assertIn(name, m)
        self.assertGreaterEqual(m["tgi_request_success"], 1)

    def test_access_log_line(self):
        self.s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
        time.sleep(0.1)
        entries = [e for e in self.s.access_log() if e["route"] == "/generate"]
        self.assertTrue(entries)
        e = entries[-1]
        for k in ("id", "route", "status", "input_tokens", "generated_tokens", "queue_ms", "ttft_ms", "total_ms"):
            self.assertIn(k, e)
        self.assertEqual(e["generated_tokens"], 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
