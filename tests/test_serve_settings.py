"""Every TGI environment name and LMI serving.properties key `lmstream serve` claims is honoured
with the peer's meaning (shown in /info and in what requests get) or refused at start-up with a
message naming it: MAX_BEST_OF, MAX_BATCH_SIZE, PAYLOAD_LIMIT, MAX_CONCURRENT_REQUESTS,
MAX_STOP_SEQUENCES, MAX_TOP_N_TOKENS, MAX_INPUT_LENGTH / MAX_TOTAL_TOKENS, QUANTIZE /
HF_MODEL_QUANTIZE, DTYPE, MAX_WAITING_TOKENS, WAITING_SERVED_RATIO, MESSAGES_API_ENABLED,
MAX_CLIENT_BATCH_SIZE, VALIDATION_WORKERS, TRUST_REMOTE_CODE;
option.max_model_len, option.quantize, option.enable_streaming, option.trust_remote_code,
option.max_rolling_batch_prefill_tokens and unknown keys (warned once, with the key). Python
stdlib only."""
import json
import os
import shutil
import tempfile
import threading
import unittest

from lmstest import Server, cached_model, micro_model


def info(server):
    st, _, b = server.request("GET", "/info")
    assert st == 200, (st, b)
    return json.loads(b)


def refused(env=None, args=(), model=None):
    """The log of a server that must refuse to start."""
    s = Server(list(args), env=env, model=model)
    try:
        s.start()
    except AssertionError as e:
        s.log.close()
        return str(e)
    s.stop()
    raise AssertionError("the server started with %r %r" % (env, args))


def generate(server, params, inputs="Hello"):
    return server.post_json("/generate", {"inputs": inputs, "parameters": params})


class EnvironmentNamesTest(unittest.TestCase):
    def test_max_best_of(self):
        with Server(env={"MAX_BEST_OF": "1"}) as s:
            self.assertEqual(info(s)["max_best_of"], 1)
            st, _, b = generate(s, {"best_of": 2, "do_sample": True, "max_new_tokens": 2})
            self.assertEqual(st, 422)
            self.assertIn("`best_of` != 1 is not allowed for this endpoint", json.loads(b)["error"])
        with Server(env={"MAX_BEST_OF": "3"}) as s:
            self.assertEqual(info(s)["max_best_of"], 3)
            st, _, b = generate(s, {"best_of": 3, "do_sample": True, "max_new_tokens": 2, "details": True})
            self.assertEqual(st, 200, b)
            self.assertEqual(len(json.loads(b)["details"]["best_of_sequences"]), 2)
            st, _, b = generate(s, {"best_of": 4, "do_sample": True, "max_new_tokens": 2})
            self.assertIn("`best_of` must be > 0 and <= 3. Given: 4", json.loads(b)["error"])
        self.assertIn("MAX_BEST_OF: '0' is not", refused({"MAX_BEST_OF": "0"}))

    def test_max_batch_size_caps_the_running_batch(self):
        # With one sequence per batch the second request waits for the whole first one (5 steps
        # of at least 30 ms); with the default it joins the running batch at once.
        def queue_times(env):
            with Server(env=dict(env, LMSTREAM_TEST_STEP_DELAY_MS="30")) as s:
                out = {}

                def one(k, delay):
                    if delay:
                        threading.Event().wait(0.05)
                    st, h, b = generate(s, {"max_new_tokens": 5})
                    assert st == 200, b
                    out[k] = int(h["x-queue-time"])
                ts = [threading.Thread(target=one, args=(k, k == 1)) for k in (0, 1)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                return info(s)["max_batch_size"], out[1]
        size, waited = queue_times({"MAX_BATCH_SIZE": "1"})
        self.assertEqual(size, 1)
        self.assertGreaterEqual(waited, 80)
        size, waited = queue_times({})
        self.assertEqual(size, 64)
        self.assertLess(waited, 80)

    def test_payload_limit(self):
        with Server(env={"PAYLOAD_LIMIT": "1000"}) as s:
            self.assertEqual(info(s)["payload_limit"], 1000)
            st, _, _ = generate(s, {"max_new_tokens": 1}, inputs="x" * 5000)
            self.assertEqual(st, 413)
            st, _, _ = generate(s, {"max_new_tokens": 1}, inputs="x" * 500)
            self.assertEqual(st, 200)
        with Server() as s:
            self.assertEqual(info(s)["payload_limit"], 6 * 1024 * 1024)
            st, _, _ = generate(s, {"max_new_tokens": 1}, inputs="x " * 2500)
            self.assertNotEqual(st, 413)

    def test_max_concurrent_requests(self):
        with Server(env={"MAX_CONCURRENT_REQUESTS": "1", "LMSTREAM_TEST_STEP_DELAY_MS": "30"}) as s:
            self.assertEqual(info(s)["max_concurrent_requests"], 1)
            first = {}

            def long_one():
                first["r"] = generate(s, {"max_new_tokens": 10})
            t = threading.Thread(target=long_one)
            t.start()
            threading.Event().wait(0.1)
            st, _, b = generate(s, {"max_new_tokens": 1})
            t.join()
            self.assertEqual(st, 429, b)
            self.assertEqual(json.loads(b)["error_type"], "overloaded")
            self.assertEqual(first["r"][0], 200)

    def test_max_stop_sequences_and_top_n_tokens(self):
        with Server(env={"MAX_STOP_SEQUENCES": "1", "MAX_TOP_N_TOKENS": "2"}) as s:
            i = info(s)
            self.assertEqual((i["max_stop_sequences"], i["max_top_n_tokens"]), (1, 2))
            st, _, b = generate(s, {"stop": ["a", "b"], "max_new_tokens": 1})
            self.assertIn("`stop` supports up to 1 stop sequences. Given: 2", json.loads(b)["error"])
            st, _, b = s.post_json("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                            "stop": ["a", "b"]})
            self.assertEqual(st, 422)
            st, _, b = generate(s, {"top_n_tokens": 3, "max_new_tokens": 1})
            self.assertIn("`top_n_tokens` must be >= 0 and <= 2. Given: 3", json.loads(b)["error"])

    def test_input_and_total_tokens(self):
        with Server(env={"MAX_INPUT_LENGTH": "10", "MAX_TOTAL_TOKENS": "20"}) as s:
            i = info(s)
            self.assertEqual((i["max_input_length"], i["max_total_tokens"]), (10, 20))
            st, _, b = generate(s, {"max_new_tokens": 1}, inputs="one two three four five six seven eight nine ten")
            self.assertEqual(st, 422)
            self.assertIn("`inputs` must have less than 10 tokens", json.loads(b)["error"])

    def test_quantize(self):
        f32 = cached_model("gguf", "micro", "f32", tokenizer=True)
        for name in ("QUANTIZE", "HF_MODEL_QUANTIZE"):
            with Server(env={name: "q8_0"}, model=f32) as s:
                i = info(s)
                self.assertEqual((i["quantize"], i["model_dtype"]), ("q8_0", "q8_0"))
            log = refused({name: "bitsandbytes"}, model=f32)
            self.assertIn(name + ": 'bitsandbytes' is not a type weights can be converted to at load", log)
        with Server(model=f32) as s:
            self.assertEqual((info(s)["quantize"], info(s)["model_dtype"]), (None, "f32"))

    def test_max_client_batch_size(self):
        with Server() as s:
            self.assertEqual(info(s)["max_client_batch_size"], 4)  # TGI's default
        with Server(env={"MAX_CLIENT_BATCH_SIZE": "2"}) as s:
            self.assertEqual(info(s)["max_client_batch_size"], 2)
            st, _, b = s.post_json("/v1/completions", {"prompt": ["a", "b"], "max_tokens": 1})
            self.assertEqual((st, len(json.loads(b)["choices"])), (200, 2), b)
            st, _, b = s.post_json("/v1/completions", {"prompt": ["a", "b", "c"], "max_tokens": 1})
            err = json.loads(b)["error"]
            self.assertEqual((st, err["param"]), (400, "prompt"), b)
            self.assertIn("at most 2 are allowed per request (max_client_batch_size", err["message"])
            dialog = [{"role": "user", "content": "Hi"}]
            st, _, b = s.post_json("/invocations", {"inputs": [dialog] * 2, "parameters": {"max_new_tokens": 1}})
            self.assertEqual((st, len(json.loads(b))), (200, 2), b)
            st, _, b = s.post_json("/invocations", {"inputs": [dialog] * 3, "parameters": {"max_new_tokens": 1}})
            self.assertEqual(st, 422, b)
            self.assertIn("a batch of 3 dialogs exceeds max_client_batch_size (2", b.decode())
        self.assertIn("MAX_CLIENT_BATCH_SIZE: '0' is not", refused({"MAX_CLIENT_BATCH_SIZE": "0"}))

    def test_trust_remote_code(self):
        with Server(env={"TRUST_REMOTE_CODE": "true"}) as s:
            self.assertIn("TRUST_REMOTE_CODE=true: accepted; no model code is loaded", s.read_log())

    def test_refused_names(self):
        self.assertIn("VALIDATION_WORKERS=2: cannot be honoured", refused({"VALIDATION_WORKERS": "2"}))
        self.assertIn("DTYPE=bfloat16: cannot be honoured", refused({"DTYPE": "bfloat16"}))
        self.assertIn("MAX_WAITING_TOKENS=5: cannot be honoured", refused({"MAX_WAITING_TOKENS": "5"}))
        self.assertIn("WAITING_SERVED_RATIO=0.3: cannot be honoured", refused({"WAITING_SERVED_RATIO": "0.3"}))
        self.assertIn("MESSAGES_API_ENABLED: 'yes please' is not true or false",
                      refused({"MESSAGES_API_ENABLED": "yes please"}))


class PropertiesKeysTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-props-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def model_dir(self, name, props, model=None):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        shutil.copy(model or micro_model(), os.path.join(d, "m.gguf"))
        with open(os.path.join(d, "serving.properties"), "w") as f:
            f.write(props)
        return d

    def serve(self, d):
        return Server(model=os.path.join(d, "m.gguf"), args=["--properties", os.path.join(d, "serving.properties")])

    def test_honoured_keys_and_unknown_warned_once(self):
        f32 = cached_model("gguf", "micro", "f32", tokenizer=True)
        d = self.model_dir("ok", "engine=MPI\noption.max_model_len=100\noption.quantize=q8_0\n"
                                 "option.enable_streaming=true\noption.trust_remote_code=true\n"
                                 "option.max_rolling_batch_prefill_tokens=600\noption.frobnicate=1\n", f32)
        with self.serve(d) as s:
            i = info(s)
            self.assertEqual(i["max_total_tokens"], 100)
            self.assertEqual((i["quantize"], i["model_dtype"]), ("q8_0", "q8_0"))
            self.assertEqual(i["max_batch_prefill_tokens"], 600)
            log = s.read_log()
            self.assertEqual(log.count("unknown key 'option.frobnicate'"), 1, log)
            self.assertIn("option.trust_remote_code=true: accepted", log)
            self.assertIn("option.enable_streaming=true: accepted", log)
            # max_model_len limits the request budget as MAX_TOTAL_TOKENS does.
            st, _, b = s.post_json("/invocations", {"inputs": "Hello", "parameters": {"max_new_tokens": 2}})
            self.assertEqual(st, 200, b)

    def test_refused_and_warned_keys(self):
        d = self.model_dir("awq", "option.quantize=awq\n")
        log = refused(args=["--properties", os.path.join(d, "serving.properties")], model=os.path.join(d, "m.gguf"))
        self.assertIn("option.quantize: 'awq' is not a type weights can be converted to at load", log)
        d = self.model_dir("stream", "option.enable_streaming=sometimes\n")
        log = refused(args=["--properties", os.path.join(d, "serving.properties")], model=os.path.join(d, "m.gguf"))
        self.assertIn("option.enable_streaming: 'sometimes' is not true, false or huggingface", log)
        d = self.model_dir("nostream", "option.enable_streaming=false\n")
        with self.serve(d) as s:
            self.assertIn("option.enable_streaming=false: cannot be honoured", s.read_log())


if __name__ == "__main__":
    unittest.main()
