"""Every OpenAI request parameter of /v1/chat/completions and /v1/completions is honoured or
refused by name, driven by Python's urllib as an OpenAI client would send it: logprobs and
top_logprobs equal /generate's details, echo with the prompt's logprobs equal TGI's prefill,
stream_options.include_usage puts the usage in the last chunk, n and best_of give their choices
(each the seeded draw it stands for), logit_bias bans and forces tokens, presence_penalty and
frequency_penalty equal the logit_bias they stand for, stop, seed, max_completion_tokens, list and
token-id prompts, /v1/models; unsupported parameters answer 400 in OpenAI's error shape with
error.param naming them. Python stdlib only."""
import json
import unittest
import urllib.error
import urllib.request

from lmstest import Server

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
PROMPT = "Hello world, this is"


class OpenAiParamsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server().start()
        cls.base = "http://127.0.0.1:%d" % cls.server.port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def post(self, path, body):
        """(status, parsed JSON or raw bytes) through urllib."""
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def ok(self, path, body):
        st, j = self.post(path, body)
        self.assertEqual(st, 200, j)
        return j

    def stream_chunks(self, path, body):
        st, raw = self.post(path, dict(body, stream=True))
        self.assertEqual(st, 200, raw)
        events = [e for e in raw.split(b"\n\n") if e]
        self.assertEqual(events[-1], b"data: [DONE]")
        return [json.loads(e[len(b"data: "):]) for e in events[:-1]]

    def generate(self, inputs, **params):
        return self.ok("/generate", {"inputs": inputs, "parameters": dict(details=True, **params)})

    def tokenize(self, text):
        st, _, raw = self.server.post_json("/tokenize", {"inputs": text})
        self.assertEqual(st, 200)
        return [t["id"] for t in json.loads(raw)]

    def completion(self, **kw):
        body = {"model": "m", "prompt": PROMPT, "max_tokens": 6, "temperature": 0}
        body.update(kw)
        return self.ok("/v1/completions", body)

    # ---- logprobs

    def test_completion_logprobs_equal_generate_details(self):
        g = self.generate(PROMPT, max_new_tokens=6, top_n_tokens=3)
        c = self.completion(logprobs=3)
        lp = c["choices"][0]["logprobs"]
        toks = [t for t in g["details"]["tokens"] if not t["special"]]
        self.assertEqual(lp["tokens"], [t["text"] for t in toks])
        for want, got in zip(toks, lp["token_logprobs"]):
            self.assertAlmostEqual(want["logprob"], got, places=4)
        for k, (top_want, top_got) in enumerate(zip(g["details"]["top_tokens"], lp["top_logprobs"])):
            for t in top_want:
                self.assertAlmostEqual(top_got[t["text"]], t["logprob"], places=4)
        self.assertEqual(lp["text_offset"][0], 0)
        self.assertEqual(lp["text_offset"][1], len(lp["tokens"][0]))
        self.assertEqual(c["choices"][0]["text"], g["generated_text"])

    def test_chat_logprobs_and_top_logprobs(self):
        c = self.ok("/v1/chat/completions", {"model": "m", "messages": MSGS, "max_tokens": 6, "temperature": 0,
                                             "logprobs": True, "top_logprobs": 2})
        content = c["choices"][0]["logprobs"]["content"]
        text = c["choices"][0]["message"]["content"]
        self.assertEqual("".join(e["token"] for e in content), text)
        for e in content:
            self.assertEqual(bytes(e["bytes"]), e["token"].encode())
            self.assertEqual(len(e["top_logprobs"]), 2)
            # Greedy: the chosen token is the best alternative.
            self.assertAlmostEqual(e["top_logprobs"][0]["logprob"], e["logprob"], places=5)
            self.assertLessEqual(e["top_logprobs"][1]["logprob"], e["logprob"])
        # Without logprobs the field is null.
        self.assertIsNone(self.ok("/v1/chat/completions", {"model": "m", "messages": MSGS, "max_tokens": 2,
                                                           "temperature": 0})["choices"][0]["logprobs"])
        # Streaming: each token's chunk carries its logprobs.
        chunks = self.stream_chunks("/v1/chat/completions", {"model": "m", "messages": MSGS, "max_tokens": 6,
                                                             "temperature": 0, "logprobs": True})
        streamed = [e for ch in chunks if ch["choices"] and ch["choices"][0]["logprobs"]
                    for e in ch["choices"][0]["logprobs"]["content"]]
        self.assertEqual([e["token"] for e in streamed], [e["token"] for e in content])
        for a, b in zip(streamed, content):
            self.assertAlmostEqual(a["logprob"], b["logprob"], places=5)

    def test_echo_with_prompt_logprobs_equal_prefill(self):
        g = self.ok("/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": 3, "decoder_input_details": True}})
        c = self.completion(max_tokens=3, echo=True, logprobs=0)
        ch = c["choices"][0]
        self.assertEqual(ch["text"], PROMPT + g["generated_text"])
        lp = ch["logprobs"]
        prefill = [p for p in g["details"]["prefill"] if p["id"] != 1]  # BOS is not listed
        gen = [t for t in g["details"]["tokens"] if not t["special"]]
        self.assertEqual(len(lp["tokens"]), len(prefill) + len(gen))
        for p, got in zip(prefill, lp["token_logprobs"]):
            self.assertAlmostEqual(p["logprob"], got, places=4)
        # Streaming echo sends the prompt first.
        chunks = self.stream_chunks("/v1/completions", {"model": "m", "prompt": PROMPT, "max_tokens": 3,
                                                        "temperature": 0, "echo": True})
        self.assertEqual("".join(c["choices"][0]["text"] for c in chunks), PROMPT + g["generated_text"])

    # ---- usage in the stream

    def test_stream_options_include_usage(self):
        body = {"model": "m", "messages": MSGS, "max_tokens": 5, "temperature": 0}
        full = self.ok("/v1/chat/completions", body)
        chunks = self.stream_chunks("/v1/chat/completions", dict(body, stream_options={"include_usage": True}))
        last = chunks[-1]
        self.assertEqual(last["choices"], [])
        self.assertEqual(last["usage"], full["usage"])
        self.assertTrue(all(c["usage"] is None for c in chunks[:-1]))
        plain = self.stream_chunks("/v1/chat/completions", body)
        self.assertTrue(all("usage" not in c for c in plain))
        chunks = self.stream_chunks("/v1/completions", {"model": "m", "prompt": PROMPT, "max_tokens": 4,
                                                        "stream_options": {"include_usage": True}})
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 4)

    # ---- n, best_of, seed

    def test_n_gives_choices_each_its_seeded_draw(self):
        body = {"model": "m", "messages": MSGS, "max_tokens": 6, "temperature": 1.0, "seed": 77}
        two = self.ok("/v1/chat/completions", dict(body, n=2))
        self.assertEqual([c["index"] for c in two["choices"]], [0, 1])
        one0 = self.ok("/v1/chat/completions", body)["choices"][0]["message"]["content"]
        one1 = self.ok("/v1/chat/completions", dict(body, seed=78))["choices"][0]["message"]["content"]
        self.assertEqual([c["message"]["content"] for c in two["choices"]], [one0, one1])
        self.assertEqual(two["usage"]["completion_tokens"], 12)
        # The same seed twice is the same draw.
        self.assertEqual(self.ok("/v1/chat/completions", body)["choices"][0]["message"]["content"], one0)

    def test_best_of_returns_the_best_mean_logprob(self):
        base = {"temperature": 1.0, "max_tokens": 5, "logprobs": 0}
        cands = [self.completion(seed=500 + k, **base)["choices"][0] for k in range(3)]

        def mean(c):
            lps = c["logprobs"]["token_logprobs"]
            return sum(lps) / len(lps)
        best = max(cands, key=mean)
        got = self.completion(seed=500, best_of=3, **base)
        self.assertEqual(len(got["choices"]), 1)
        self.assertEqual(got["choices"][0]["text"], best["text"])
        self.assertEqual(got["usage"]["completion_tokens"], 15)  # all best_of sequences count

    # ---- penalties and logit_bias

    def test_logit_bias_bans_and_forces_tokens(self):
        plain = self.completion(logprobs=0)["choices"][0]
        ids = [t["id"] for t in self.generate(PROMPT, max_new_tokens=6)["details"]["tokens"]]
        banned = self.completion(logprobs=0, logit_bias={str(ids[0]): -100})["choices"][0]
        self.assertNotEqual(banned["logprobs"]["tokens"][0], plain["logprobs"]["tokens"][0])
        # Banning every token the greedy answer used: none of them appears any more.
        ban_all = {str(i): -100 for i in set(ids)}
        out = self.completion(logprobs=0, logit_bias=ban_all)["choices"][0]
        self.assertFalse(set(out["logprobs"]["tokens"]) & set(plain["logprobs"]["tokens"]), out)
        # +100 on one token makes every token that token.
        hello = self.tokenize("Hello")[1]
        forced = self.completion(logprobs=0, logit_bias={str(hello): 100})["choices"][0]
        toks = forced["logprobs"]["tokens"]
        self.assertEqual(len(toks), 6)
        self.assertEqual(toks, [toks[0]] * 6)
        self.assertEqual(toks[0].strip(), "Hello")
        st, j = self.post("/v1/completions", {"prompt": "x", "logit_bias": {"99999999": 1}})
        self.assertEqual((st, j["error"]["param"]), (400, "logit_bias"))

    def first_step(self, **kw):
        c = self.completion(max_tokens=1, logprobs=5, **kw)["choices"][0]["logprobs"]
        return c["tokens"][0], c["token_logprobs"][0], c["top_logprobs"][0]

    def test_presence_and_frequency_penalty_equal_their_logit_bias(self):
        ids = self.tokenize(PROMPT)  # BOS included, as /v1/completions encodes it
        counts = {}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        for kw, bias in (({"presence_penalty": 1.5}, {str(i): -1.5 for i in counts}),
                         ({"frequency_penalty": 0.7}, {str(i): -0.7 * n for i, n in counts.items()})):
            a = self.first_step(**kw)
            b = self.first_step(logit_bias=bias)
            self.assertEqual(a[0], b[0], kw)
            self.assertAlmostEqual(a[1], b[1], places=4)
            for t, lp in a[2].items():
                self.assertAlmostEqual(lp, b[2][t], places=4)
            self.assertNotEqual(a[:2], self.first_step()[:2], kw)  # and it does change the step

    # ---- stop, max_completion_tokens, prompts

    def test_stop_and_max_completion_tokens(self):
        full = self.completion(max_tokens=8)["choices"][0]["text"]
        cut = full[len(full) // 2:][:3]
        self.assertTrue(cut.strip(), full)
        got = self.completion(max_tokens=8, stop=[cut])["choices"][0]
        self.assertEqual(got["finish_reason"], "stop")
        self.assertEqual(got["text"], full[:full.index(cut)])
        c = self.ok("/v1/chat/completions", {"model": "m", "messages": MSGS, "max_tokens": 9,
                                             "max_completion_tokens": 3, "temperature": 0})
        self.assertEqual(c["usage"]["completion_tokens"], 3)

    def test_list_and_token_id_prompts(self):
        a = self.completion(prompt="Hello")["choices"][0]["text"]
        b = self.completion(prompt="The cat")["choices"][0]["text"]
        both = self.completion(prompt=["Hello", "The cat"])
        self.assertEqual([(c["index"], c["text"]) for c in both["choices"]], [(0, a), (1, b)])
        ids = self.tokenize("Hello")
        self.assertEqual(self.completion(prompt=ids)["choices"][0]["text"], a)
        two = self.completion(prompt=[ids, self.tokenize("The cat")])
        self.assertEqual([c["text"] for c in two["choices"]], [a, b])
        self.assertEqual(two["usage"]["prompt_tokens"], len(ids) + len(self.tokenize("The cat")))
        st, j = self.post("/v1/completions", {"prompt": [1, 10 ** 7]})
        self.assertEqual((st, j["error"]["param"]), (400, "prompt"))

    def test_models(self):
        with urllib.request.urlopen(self.base + "/v1/models", timeout=30) as r:
            j = json.loads(r.read())
        self.assertEqual(j["object"], "list")
        self.assertEqual(j["data"][0]["object"], "model")
        self.assertTrue(j["data"][0]["id"])

    # ---- refused by name

    def test_unsupported_parameters_are_400_naming_them(self):
        chat = {"model": "m", "messages": MSGS}
        cases = [
            ("/v1/chat/completions", "tools", [{"type": "function", "function": {"name": "f"}}]),
            ("/v1/chat/completions", "tool_choice", "auto"),
            ("/v1/chat/completions", "response_format", {"type": "json_object"}),
            ("/v1/chat/completions", "functions", [{"name": "f"}]),
            ("/v1/chat/completions", "parallel_tool_calls", True),
            ("/v1/chat/completions", "frobnicate", 1),
            ("/v1/chat/completions", "echo", True),
            ("/v1/completions", "response_format", {"type": "json_object"}),
            ("/v1/completions", "top_logprobs", 2),
            ("/v1/completions", "frobnicate", 1),
        ]
        for path, key, value in cases:
            body = dict(chat) if "chat" in path else {"model": "m", "prompt": PROMPT}
            body[key] = value
            st, j = self.post(path, body)
            self.assertEqual(st, 400, (path, key, j))
            err = j["error"]
            self.assertEqual(err["param"], key, (path, key))
            self.assertEqual(err["type"], "invalid_request_error")
            self.assertIn(key, err["message"])
        # Streaming more than one choice is refused by name too.
        st, j = self.post("/v1/chat/completions", dict(chat, n=2, stream=True, temperature=1))
        self.assertEqual((st, j["error"]["param"]), (400, "n"))
        st, j = self.post("/v1/completions", {"prompt": ["a", "b"], "stream": True})
        self.assertEqual((st, j["error"]["param"]), (400, "prompt"))
        # And the server still answers.
        self.assertEqual(len(self.completion(max_tokens=1)["choices"]), 1)


if __name__ == "__main__":
    unittest.main()
