"""Automatic prefix caching through HTTP against a real `lmstream serve` (the micro model): a
multi-turn chat through /v1/chat/completions whose second turn resends the first, so it prefills
only the tokens after the cached part (usage.prompt_tokens_details.cached_tokens and /metrics'
prefix-cache counters agree); the same conversation with --prefix-caching off gives the same
outputs and no hits; different cache_salt values never share blocks (no hits in /metrics), the
same salt does; cache_salt on the TGI and LMI routes too; /info shows the setting; a bad
cache_salt or a bad PREFIX_CACHING value is a clear error. Python stdlib only."""
import json
import subprocess
import unittest

from lmstest import Server, binary, micro_model

BLOCK = 16  # the engine's KV block size
SYSTEM = ("You are a careful assistant for a travel agency. Answer in one short sentence, name the "
          "city first, never invent prices, and say when you do not know. ") * 3


def chat(srv, messages, salt=None, max_tokens=12):
    body = {"model": "m", "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    if salt is not None:
        body["cache_salt"] = salt
    st, _, raw = srv.post_json("/v1/chat/completions", body)
    assert st == 200, raw
    return json.loads(raw)


def prefix_metrics(srv):
    m = srv.metrics()
    return {k: m[k] for k in ("lmstream_prefix_cache_queries_total", "lmstream_prefix_cache_hits_total",
                              "lmstream_prefix_cache_blocks", "lmstream_prefix_cache_enabled",
                              "lmstream_prefix_cache_hit_ratio", "lmstream_prefix_cache_evictions_total")}


def conversation(srv, salt=None):
    """Two turns; returns [(reply text, usage, metrics delta)] per turn."""
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Where is the Eiffel tower?"}]
    out = []
    for nxt in ("And the Colosseum?", None):
        before = prefix_metrics(srv)
        r = chat(srv, msgs, salt)
        after = prefix_metrics(srv)
        delta = {k: after[k] - before[k] for k in ("lmstream_prefix_cache_queries_total",
                                                   "lmstream_prefix_cache_hits_total")}
        text = r["choices"][0]["message"]["content"]
        out.append((text, r["usage"], delta))
        if nxt:
            msgs += [{"role": "assistant", "content": text}, {"role": "user", "content": nxt}]
    return out


class PrefixCacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--threads", "2"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_second_turn_prefills_only_after_the_cached_part(self):
        (t1, u1, d1), (t2, u2, d2) = conversation(self.srv, salt="multi-turn")
        self.assertEqual(u1["prompt_tokens_details"]["cached_tokens"], 0)
        self.assertEqual(d1["lmstream_prefix_cache_queries_total"], u1["prompt_tokens"])
        self.assertEqual(d1["lmstream_prefix_cache_hits_total"], 0)
        # The second turn's prompt begins with the first turn's prompt token for token (the chat
        # format encodes each turn on its own), so at least all of its full blocks are cached;
        # never the whole prompt (its last token is computed for its logits).
        cached = u2["prompt_tokens_details"]["cached_tokens"]
        self.assertGreater(u2["prompt_tokens"], u1["prompt_tokens"])
        self.assertGreaterEqual(cached, u1["prompt_tokens"] // BLOCK * BLOCK)
        self.assertLess(cached, u2["prompt_tokens"])
        self.assertEqual(cached % BLOCK, 0)
        self.assertGreater(u1["prompt_tokens"], 3 * BLOCK)
        # The server's counters agree: it looked up the whole prompt and took `cached` tokens.
        self.assertEqual(d2["lmstream_prefix_cache_queries_total"], u2["prompt_tokens"])
        self.assertEqual(d2["lmstream_prefix_cache_hits_total"], cached)
        m = prefix_metrics(self.srv)
        self.assertEqual(m["lmstream_prefix_cache_enabled"], 1)
        self.assertGreater(m["lmstream_prefix_cache_blocks"], 0)
        self.assertGreater(m["lmstream_prefix_cache_hit_ratio"], 0)

        # Same conversation, cache off: identical replies, no hits, nothing cached.
        with Server(["--threads", "2", "--prefix-caching", "off"]) as off:
            (o1, v1, e1), (o2, v2, e2) = conversation(off, salt="multi-turn")
            self.assertEqual((o1, o2), (t1, t2))
            self.assertEqual(v2["prompt_tokens"], u2["prompt_tokens"])
            self.assertEqual(v2["prompt_tokens_details"]["cached_tokens"], 0)
            self.assertEqual(e1["lmstream_prefix_cache_queries_total"] + e2["lmstream_prefix_cache_queries_total"], 0)
            m = prefix_metrics(off)
            self.assertEqual(m["lmstream_prefix_cache_enabled"], 0)
            self.assertEqual(m["lmstream_prefix_cache_blocks"], 0)
            st, _, info = off.request("GET", "/info")
            self.assertEqual(json.loads(info)["prefix_caching"], False)
        st, _, info = self.srv.request("GET", "/info")
        self.assertEqual(json.loads(info)["prefix_caching"], True)

    def test_different_salts_never_share(self):
        msgs = [{"role": "system", "content": SYSTEM + " Tenant test."}, {"role": "user", "content": "Hello?"}]
        before = prefix_metrics(self.srv)
        a = chat(self.srv, msgs, salt="tenant-a")
        b = chat(self.srv, msgs, salt="tenant-b")
        c = chat(self.srv, msgs)  # no salt: a namespace of its own too
        mid = prefix_metrics(self.srv)
        self.assertEqual(mid["lmstream_prefix_cache_hits_total"], before["lmstream_prefix_cache_hits_total"])
        for r in (a, b, c):
            self.assertEqual(r["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
            self.assertEqual(r["choices"][0]["message"]["content"], a["choices"][0]["message"]["content"])
        d = chat(self.srv, msgs, salt="tenant-a")  # the same salt again shares
        self.assertGreater(d["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        self.assertEqual(d["choices"][0]["message"]["content"], a["choices"][0]["message"]["content"])

    def test_salt_on_tgi_and_lmi_routes_and_bad_values(self):
        prompt = SYSTEM + " Question: which river runs through Paris?"
        body = {"inputs": prompt, "parameters": {"max_new_tokens": 6, "details": True, "cache_salt": "t1"}}
        before = prefix_metrics(self.srv)["lmstream_prefix_cache_hits_total"]
        st, _, r1 = self.srv.post_json("/generate", body)
        self.assertEqual(st, 200, r1)
        body["parameters"]["cache_salt"] = "t2"
        st, _, r2 = self.srv.post_json("/generate", body)
        self.assertEqual(st, 200, r2)
        self.assertEqual(prefix_metrics(self.srv)["lmstream_prefix_cache_hits_total"], before)
        body["parameters"]["cache_salt"] = "t1"
        st, _, r3 = self.srv.post_json("/generate", body)
        hits = prefix_metrics(self.srv)["lmstream_prefix_cache_hits_total"]
        self.assertGreater(hits, before)
        self.assertEqual(json.loads(r1)["generated_text"], json.loads(r3)["generated_text"])
        # Bad salts are rejected with a clear message on each route.
        st, _, raw = self.srv.post_json("/generate", {"inputs": "x", "parameters": {"cache_salt": 5}})
        self.assertEqual(st, 422, raw)
        self.assertIn(b"cache_salt", raw)
        st, _, raw = self.srv.post_json("/v1/chat/completions",
                                        {"messages": [{"role": "user", "content": "x"}], "cache_salt": ""})
        self.assertEqual(st, 400, raw)
        self.assertIn(b"cache_salt", raw)

    def test_lmi_route_shares_with_same_salt(self):
        with Server(["--threads", "2", "--api", "lmi"]) as lmi:
            body = {"inputs": SYSTEM + " Which is the capital of Italy?",
                    "parameters": {"max_new_tokens": 5, "cache_salt": "lmi"}}
            st, _, a = lmi.post_json("/invocations", body)
            self.assertEqual(st, 200, a)
            st, _, b = lmi.post_json("/invocations", body)
            self.assertEqual(st, 200, b)
            self.assertEqual(a, b)
            self.assertGreater(prefix_metrics(lmi)["lmstream_prefix_cache_hits_total"], 0)
            body["parameters"]["cache_salt"] = ["not", "a", "string"]
            st, _, raw = lmi.post_json("/invocations", body)
            self.assertIn(b"cache_salt", raw)

    def test_bad_prefix_caching_setting_is_a_clear_start_up_error(self):
        p = subprocess.run([binary(), "serve", "--model", micro_model(), "--port", "0"],
                           env={"PREFIX_CACHING": "sometimes", "PATH": "/usr/bin:/bin"},
                           capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"PREFIX_CACHING: 'sometimes' is not on or off", p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main()
