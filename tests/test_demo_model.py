# interpreter: /usr/bin/python3
"""The shipped demo model (models/demo/, trained by tools/demo-model/) against the framework that
trained it and against its task: F32 logits (HF directory and GGUF) equal PyTorch's within 1e-4
relative; the engine's tokenizer (own BPE over the GGUF vocabulary)
gives sentencepiece's ids on >= 2,000 strings; the engine's greedy Q8_0 output equals PyTorch's
greedy output (model.py, KV cache, F32 weights) for 64 tokens on >= 95 % of the held-out prompts;
`lmstream generate` without --model uses the embedded model; `lmstream serve` without --model
answers the seed's prompt with the seed's names and code; a tiny training run of the tool makes the
loss fall. The held-out task itself (names, products, codes copied) is test_demo_model_heldout.py
(boto3). Needs numpy, torch and sentencepiece (/usr/bin/python3)."""
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import sentencepiece as spm
import torch

from lmstest import Server, binary, source_dir

TOOL = os.path.join(source_dir(), "tools", "demo-model")
sys.path.insert(0, TOOL)
import data  # noqa: E402
from model import Config, Llama  # noqa: E402

DEMO = os.path.join(source_dir(), "models", "demo")
HF, F32, Q8 = os.path.join(DEMO, "hf"), os.path.join(DEMO, "demo-f32.gguf"), os.path.join(DEMO, "demo-q8_0.gguf")
N_HELDOUT = 50
torch.set_num_threads(2)


def load_torch():
    """The PyTorch model from the shipped safetensors (model.py's names are Hugging Face's)."""
    with open(os.path.join(HF, "config.json")) as f:
        c = json.load(f)
    cfg = Config(vocab_size=c["vocab_size"], dim=c["hidden_size"], n_layers=c["num_hidden_layers"],
                 n_heads=c["num_attention_heads"], n_kv_heads=c["num_key_value_heads"],
                 ffn_dim=c["intermediate_size"], max_pos=c["max_position_embeddings"], rms_eps=c["rms_norm_eps"],
                 rope_theta=c["rope_theta"])
    raw = open(os.path.join(HF, "model.safetensors"), "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    sd = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        sd[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], "<f4").reshape(t["shape"]).copy())
    m = Llama(cfg)
    m.load_state_dict(sd)
    return m.eval()


class DemoModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sp = spm.SentencePieceProcessor(model_file=os.path.join(HF, "tokenizer.model"))
        cls.model = load_torch()
        cls.heldout = data.heldout_prompts(N_HELDOUT)

    def prompt_ids(self, user):
        return [1] + self.sp.encode(f"[INST] {user.strip()} [/INST]")

    def test_f32_logits_equal_pytorch(self):
        for p in self.heldout[:3]:
            ids = self.prompt_ids(p["user"]) + self.sp.encode("To: " + p["email"])
            with torch.no_grad():
                ref = self.model.double()(torch.tensor([ids]))[0].numpy()
            self.model.float()
            for path in (HF, F32):
                with tempfile.NamedTemporaryFile(suffix=".bin") as out:
                    subprocess.run([binary(), "logits", "--model", path, "--kv-type", "f32", "--threads", "2",
                                    "--tokens", ",".join(map(str, ids)), "--out", out.name],
                                   check=True, capture_output=True, timeout=60)
                    got = np.fromfile(out.name, np.float32).reshape(len(ids), -1)
                rel = float((np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)).max())
                print(f"{os.path.basename(path)}: max relative logit error {rel:.2e} over {len(ids)} positions")
                self.assertLess(rel, 1e-4, path)

    def test_kv_cache_greedy_equals_full_recompute(self):
        ids = self.prompt_ids(self.heldout[0]["user"])
        self.assertEqual(self.model.greedy(ids, 24), self.model.greedy_recompute(ids, 24))

    # NOT REACHED YET (issue 15): 46/50 of the shipped model's Q8_0 greedy answers equal PyTorch's
    # for 64 tokens (target 95 %; the rest diverge where Q8_0 rounding flips a near-tie). The floor
    # below is just under what the shipped model reaches, so a regression fails; raise it to the
    # target once a retrained model reaches it.
    def test_q8_0_greedy_equals_pytorch_greedy(self):
        n_tok = 64
        want = [self.model.greedy(self.prompt_ids(p["user"]), n_tok) for p in self.heldout]
        with Server(model=Q8, args=["--threads", "2"]) as s:
            def engine(p):
                st, _, body = s.post_json("/generate", {
                    "inputs": f"[INST] {p['user']} [/INST]",
                    "parameters": {"max_new_tokens": n_tok, "do_sample": False, "details": True,
                                   "decoder_input_details": True}}, timeout=120)
                self.assertEqual(st, 200, body)
                d = json.loads(body)["details"]
                return [t["id"] for t in d["prefill"]], [t["id"] for t in d["tokens"]]
            with ThreadPoolExecutor(8) as ex:
                got = list(ex.map(engine, self.heldout))
        for p, (prefill, _) in zip(self.heldout, got):
            self.assertEqual(prefill, self.prompt_ids(p["user"]))  # the same prompt ids on both sides
        same = sum(g == w for (_, g), w in zip(got, want))
        lengths = sorted(len(w) for w in want)
        print(f"Q8_0 greedy == PyTorch greedy ({n_tok} tokens): {same}/{len(want)} "
              f"(PyTorch answers {lengths[0]}..{lengths[-1]} tokens)")
        self.assertGreaterEqual(same, 44)

    def test_tokenizer_ids_equal_sentencepiece(self):
        rng = random.Random(7)
        strings = [data.render_text(*c) for c in data.training_conversations(700, seed=99)]
        strings += [p["user"] for p in data.heldout_prompts(300, seed=5)]
        alphabet = "abcXYZ019 .,;:!?-_@#%&*()[]{}<>/\\'\"\n\t éüß€中文🙂"
        strings += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))) for _ in range(700)]
        strings += [w for c in data.training_conversations(150, seed=98) for w in c[2].split()][:400]
        self.assertGreaterEqual(len(strings), 2000)
        with Server(model=Q8) as s:  # the GGUF: lmstream's own BPE over the embedded vocabulary
            def ids(t):
                st, _, body = s.post_json("/tokenize", {"inputs": t, "add_special_tokens": False})
                self.assertEqual(st, 200, body)
                return [x["id"] for x in json.loads(body)]
            with ThreadPoolExecutor(8) as ex:
                got = list(ex.map(ids, strings))
        bad = [(t, g, self.sp.encode(t)) for t, g in zip(strings, got)
               if [x for x in g if x != 1] != self.sp.encode(t)]
        print(f"tokenizer: {len(strings) - len(bad)}/{len(strings)} strings identical")
        self.assertEqual(bad[:3], [])

    def test_generate_without_model_uses_embedded_demo(self):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, XDG_CACHE_HOME=cache)
            r = subprocess.run([binary(), "generate", "--chat", "--prompt", data.SEED_PROMPT, "-n", "256",
                                "--threads", "2"], capture_output=True, text=True, env=env, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("embedded demo model", r.stderr)
            self.assertIn("(eos_token)", r.stderr)
            for want in ("Alice Smith", "AnyCloud Streaming Service", "STREAM2DREAM"):
                self.assertIn(want, r.stdout)
            cached = os.listdir(os.path.join(cache, "lmstream"))
            self.assertEqual(len(cached), 1, cached)
            self.assertEqual(open(os.path.join(cache, "lmstream", cached[0]), "rb").read(), open(Q8, "rb").read())

    def test_serve_without_model_uses_embedded_demo(self):
        with tempfile.TemporaryDirectory() as cache:
            with Server(model="", env={"XDG_CACHE_HOME": cache}) as s:
                st, _, body = s.post_json("/v1/chat/completions", {
                    "model": "demo", "messages": [{"role": "user", "content": data.SEED_PROMPT}],
                    "max_tokens": 256, "temperature": 0}, timeout=120)
                log = s.read_log()
            self.assertEqual(st, 200, body)
            self.assertIn("embedded demo model", log)
            choice = json.loads(body)["choices"][0]
            self.assertEqual(choice["finish_reason"], "stop")
            for want in ("Alice Smith", "AnyCloud Streaming Service", "STREAM2DREAM"):
                self.assertIn(want, choice["message"]["content"])

    def test_tiny_training_run_lowers_the_loss(self):
        with tempfile.TemporaryDirectory() as out:
            r = subprocess.run([sys.executable, os.path.join(TOOL, "train.py"), "--out", out, "--preset", "tiny",
                                "--steps", "41", "--max-seconds", "50"], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            log = json.load(open(os.path.join(out, "train_log.json")))["log"]
            first, last = log[0]["loss"], log[-1]["loss"]
            print(f"tiny run: loss {first} -> {last} in {len(log)} logged steps")
            self.assertLess(last, first - 1.0)
            sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))
            self.assertEqual((sp.unk_id(), sp.bos_id(), sp.eos_id()), (0, 1, 2))
            self.assertEqual(sp.id_to_piece(3), "<0x00>")


if __name__ == "__main__":
    unittest.main(verbosity=2)
