"""TGI validation over HTTP (api.md §1.3, §1.7): every rule with its status code and TGI's error
JSON, axum's body rejections (415 / 400 / 422 plain text), 413 for oversized bodies, validation
errors as SSE events on streaming routes, and 200 malformed or hostile requests (bad JSON, wrong
types, huge numbers, NaN, invalid UTF-8, oversized bodies, garbage framing, slow senders) that leave
the server serving."""
import json
import socket
import threading
import time
import unittest

from lmstest import Server, sse_events

V = "Input validation error: "

# (parameters, message) in TGI's order. Server limits: MAX_INPUT_LENGTH=64, MAX_TOTAL_TOKENS=96.
RULES = [
    ({"best_of": 2}, "you must use sampling when `best_of` is > 1"),
    ({"best_of": 3, "do_sample": True}, "`best_of` must be > 0 and <= 2. Given: 3"),
    ({"temperature": 0}, "`temperature` must be strictly positive"),
    ({"temperature": -1.5}, "`temperature` must be strictly positive"),
    ({"repetition_penalty": 0.0}, "`repetition_penalty` must be strictly positive"),
    ({"frequency_penalty": 2.5}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
    ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
    ({"top_p": 0}, "`top_p` must be > 0.0 and < 1.0"),
    ({"typical_p": 1.0}, "`typical_p` must be > 0.0 and < 1.0"),
    ({"top_k": 0}, "`top_k` must be strictly positive"),
    ({"top_k": -3}, "`top_k` must be strictly positive"),
    ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
    ({"best_of": 2, "do_sample": True, "seed": 3}, "`seed` must not be set when `best_of` > 1"),
    ({"top_n_tokens": 6}, "`top_n_tokens` must be >= 0 and <= 5. Given: 6"),
    ({"truncate": 0}, "`truncate` must be strictly positive and less than 64. Given: 0"),
    ({"truncate": 65}, "`truncate` must be strictly positive and less than 64. Given: 65"),
    ({"max_new_tokens": 95}, "`inputs` tokens + `max_new_tokens` must be <= 96. Given: 2 `inputs` tokens and 95 `max_new_tokens`"),
    ({"grammar": {"type": "regex", "value": "a+"}}, "grammar is not supported"),
]


class ValidationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(env={"MAX_INPUT_LENGTH": "64", "MAX_TOTAL_TOKENS": "96"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.__exit__(None, None, None)

    def check(self, params, message, inputs="Hi"):
        st, h, body = self.s.post_json("/generate", {"inputs": inputs, "parameters": params})
        self.assertEqual(st, 422, (params, body))
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), {"error": V + message, "error_type": "validation"})
        self.assertEqual(body, json.dumps({"error": V + message, "error_type": "validation"}, separators=(",", ":"),
                                          ensure_ascii=False).encode())

    def test_every_rule(self):
        for params, message in RULES:
            self.check(params, message)

    def test_empty_inputs_and_input_length(self):
        self.check({}, "`inputs` cannot be empty", inputs="")
        long = "hello " * 100  # > 64 tokens, max_new_tokens 20: total check first
        st, _, body = self.s.post_json("/generate", {"inputs": long, "parameters": {"max_new_tokens": 1}})
        self.assertEqual(st, 422)
        msg = json.loads(body)["error"]
        self.assertTrue(msg.startswith(V + "`inputs` tokens + `max_new_tokens` must be <= 96. Given: "), msg)
        mid = "hello " * 70  # 72 tokens + 1 <= 96 but > 64 input tokens
        st, _, body = self.s.post_json("/generate", {"inputs": mid, "parameters": {"max_new_tokens": 1}})
        self.assertEqual(json.loads(body)["error"], V + "`inputs` must have less than 64 tokens. Given: 72")
        # truncate keeps the last tokens and lets it through
        st, _, body = self.s.post_json("/generate", {"inputs": mid, "parameters": {"max_new_tokens": 1, "truncate": 10, "details": True}})
        self.assertEqual(st, 200, body)

    def test_order_first_failure_wins(self):
        self.check({"temperature": 0, "top_p": 1.0, "top_k": 0}, "`temperature` must be strictly positive")
        self.check({"top_p": 1.0, "top_k": 0, "max_new_tokens": 0}, "`top_p` must be > 0.0 and < 1.0")

    def test_stream_errors_are_sse_events(self):
        st, h, chunks = self.s.stream("/generate_stream", {"inputs": "Hi", "parameters": {"top_k": 0}})
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "text/event-stream")
        ev = sse_events(b"".join(c for _, c in chunks))
        self.assertEqual([json.loads(e) for e in ev], [{"error": V + "`top_k` must be strictly positive", "error_type": "validation"}])
        st, h, chunks = self.s.stream("/generate_stream", {"inputs": "Hi", "parameters": {"best_of": 2, "do_sample": True}})
        self.assertEqual(json.loads(sse_events(b"".join(c for _, c in chunks))[0])["error"],
                         V + "`best_of` != 1 is not supported when streaming tokens")
        st, h, chunks = self.s.stream("/", {"inputs": "Hi", "stream": True, "parameters": {"decoder_input_details": True}})
        self.assertEqual(json.loads(sse_events(b"".join(c for _, c in chunks))[0])["error"],
                         V + "`decoder_input_details` == true is not supported when streaming tokens")

    def test_axum_rejections(self):
        st, h, body = self.s.request("POST", "/generate", body=b'{"inputs":"Hi"}', headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 415)
        self.assertEqual(body, b"Expected request with `Content-Type: application/json`")
        st, _, body = self.s.request("POST", "/generate", body=b'{"inputs":', headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        self.assertTrue(body.startswith(b"Failed to parse the request body as JSON"))
        for bad in ({"inputs": ["a"]}, {"parameters": {}}, {"inputs": "x", "parameters": {"max_new_tokens": -1}},
                    {"inputs": "x", "parameters": {"max_new_tokens": 5000000000}},
                    {"inputs": "x", "parameters": {"max_new_tokens": None}}, {"inputs": "x", "parameters": {"do_sample": "yes"}},
                    {"inputs": "x", "parameters": {"stop": "a"}}, {"inputs": "x", "parameters": {"top_k": 1.5}},
                    {"inputs": "x", "parameters": {"temperature": "hot"}}, {"inputs": "x", "parameters": []}, [1, 2]):
            st, h, body = self.s.post_json("/generate", bad)
            self.assertEqual(st, 422, (bad, body))
            self.assertTrue(body.startswith(b"Failed to deserialize the JSON body into the target type: "), body)

    def test_body_too_large(self):
        big = b'{"inputs":"' + b"a" * (7 * 1024 * 1024) + b'"}'
        try:
            st, _, body = self.s.request("POST", "/generate", body=big, headers={"Content-Type": "application/json"})
            self.assertEqual(st, 413)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered 413 and closed before the upload finished
        self.assertEqual(self.s.request("GET", "/ping")[0], 200)

    def test_hostile_requests_leave_server_serving(self):
        port = self.s.port
        n = 0

        def raw(data, read=True, close_write=False):
            nonlocal n
            n += 1
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                s.sendall(data)
                if close_write:
                    s.shutdown(socket.SHUT_WR)
                if read:
                    s.settimeout(10)
                    try:
                        return s.recv(65536)
                    except (socket.timeout, ConnectionResetError):
                        return b""
            finally:
                s.close()

        def post(body, ctype=b"application/json", path=b"/generate"):
            return raw(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctype +
                       b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

        bodies = [b"", b"{", b"null", b"[]", b"123", b'"x"', b'{"inputs":NaN}', b'{"inputs":"x","parameters":{"temperature":NaN}}',
                  b'{"inputs":"x","parameters":{"temperature":Infinity}}', b'{"inputs":"x","parameters":{"temperature":1e999}}',
                  b'{"inputs":"x","parameters":{"max_new_tokens":1e30}}', b'{"inputs":"x","parameters":{"seed":-1}}',
                  b'{"inputs":"x","parameters":{"seed":184467440737095516150}}', b'{"inputs":"\xff\xfe"}',
                  b'{"inputs":"\xc3"}', b'{"inputs":"\\ud800"}', b'{"inputs":"x","parameters":{"truncate":99999999999999}}',
                  b'{"inputs":"x","parameters":{"top_n_tokens":4294967296}}', b'{"inputs":"x","parameters":{"stop":[1,2]}}',
                  b'{"inputs":"x","parameters":{"best_of":18446744073709551615,"do_sample":true}}',
                  b'{"inputs":' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"inputs":"x","parameters":{"max_new_tokens":4294967295}}',
                  b'{"inputs":"' + b"\\u0000" * 100 + b'","parameters":{"max_new_tokens":1}}',
                  b'{"inputs":"</s><s><unk>","parameters":{"max_new_tokens":1}}', b'\x00\x01\x02', b'{"a":' * 100]
        paths = [b"/generate", b"/generate_stream", b"/", b"/invocations", b"/tokenize", b"/v1/chat/completions", b"/v1/completions"]
        for b in bodies:
            for p in paths:
                r = post(b, path=p)
                self.assertTrue(r.startswith(b"HTTP/1.1 "), (b[:40], p, r[:80]))
        # Broken framing and protocol abuse.
        garbage = [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"a" * 20000 + b"\r\n\r\n",
                   b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                   b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
                   b"POST /generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n",
                   b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
                   b"\r\n\r\n\r\n", b"GET /ping\r\n\r\n", b"GET /%00%ff HTTP/1.1\r\nHost: x\r\n\r\n",
                   b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"]
        for g in garbage:
            raw(g)
        # Half-sent requests whose senders vanish.
        for _ in range(10):
            raw(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inputs\"", read=False)
        # Client closes while a stream is running.
        for _ in range(5):
            raw(b"POST /generate_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 52\r\n\r\n"
                b'{"inputs":"Hi","parameters":{"max_new_tokens":50}}\r\n', read=False)
        self.assertGreaterEqual(n, 200)
        # A slow sender: a byte at a time, still answered.
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        for ch in b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n":
            s.sendall(bytes([ch]))
            time.sleep(0.005)
        self.assertTrue(s.recv(1024).startswith(b"HTTP/1.1 200"))
        s.close()
        # Still serving, with nothing left running.
        st, _, body = self.s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 3}})
        self.assertEqual(st, 200, body)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = self.s.metrics()
            if m["lmstream_kv_blocks_used"] == 0 and m["lmstream_requests_running"] == 0:
                break
            time.sleep(0.05)
        self.assertEqual(m["lmstream_kv_blocks_used"], 0)
        self.assertEqual(self.s.proc.poll(), None)


class HalfSentRequestTest(unittest.TestCase):
    def test_half_sent_requests_do_not_block_others(self):
        with Server() as s:
            socks = []
            for _ in range(20):
                sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
                sock.sendall(b"POST /generate HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
                socks.append(sock)
            t0 = time.monotonic()
            st, _, body = s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
            self.assertEqual(st, 200)
            self.assertLess(time.monotonic() - t0, 5)
            for sock in socks:
                sock.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
