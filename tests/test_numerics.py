# interpreter: /usr/bin/python3
# Numerics of the real lmstream binary against the independent float64 reference
# (tests/reference/llama_ref.py): logits at every prompt position for GGUF and HF test models in
# every weight type, with and without GQA, chunked and unchunked prefill; and greedy generation
# that must agree between the same weights written as GGUF and as an HF directory.
# Error metric per position: max|engine - ref| / max|ref|; each case reports its worst position.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import numpy as np
except ImportError:
    np = None

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
BINARY = os.environ.get("LMSTREAM_BINARY", "")
SANITIZED = os.environ.get("LMSTREAM_SANITIZED") == "1"

# Tolerances (max relative error per position, see header):
#  f32: weights identical to the reference's, engine works in float32 -> accumulated f32 rounding.
#  f16/bf16: the reference decodes the same rounded weights, so only activation rounding (and an f16
#    KV cache) differs from float64 -> 1e-3.
#  q8_0/q4_0: compared with the dequantized weights; the engine may also quantize activations to
#    8 bits for the dot products (llama.cpp style) -> 2e-2.
TOL = {"f32": 1e-4, "f16": 1e-3, "bf16": 1e-3, "q8_0": 2e-2, "q4_0": 2e-2}

# (name, format, shape, dtype, gqa, seed, prompt length, chunk sizes (None = whole prompt), kv type)
CASES = [
    ("gguf_f32_gqa", "gguf", "micro", "f32", True, 11, 33, [None, 5], "f32"),
    ("gguf_f32_nogqa", "gguf", "micro", "f32", False, 12, 20, [None, 7], "f32"),
    ("hf_f32_gqa", "hf", "micro", "f32", True, 11, 33, [None, 8], "f32"),
    ("hf_f32_nogqa", "hf", "micro", "f32", False, 13, 17, [None, 1], "f32"),
    ("gguf_f16_gqa", "gguf", "micro", "f16", True, 14, 24, [None, 6], None),
    ("hf_f16_nogqa", "hf", "micro", "f16", False, 15, 16, [None, 4], "f16"),
    ("gguf_bf16_nogqa", "gguf", "micro", "bf16", False, 16, 14, [None, 3], None),
    ("hf_bf16_gqa", "hf", "micro", "bf16", True, 17, 28, [None, 9], None),
    ("gguf_q8_0_gqa", "gguf", "micro", "q8_0", True, 18, 30, [None, 7], "f32"),
    ("gguf_q8_0_nogqa", "gguf", "micro", "q8_0", False, 19, 12, [None, 5], None),
    ("gguf_q4_0_gqa", "gguf", "micro", "q4_0", True, 20, 26, [None, 11], "f32"),
    ("gguf_q4_0_nogqa", "gguf", "micro", "q4_0", False, 21, 13, [None, 4], None),
    ("gguf_small_f32", "gguf", "small", "f32", True, 22, 40, [None, 16], "f32"),
]
if SANITIZED:  # sanitizer builds are ~10x slower: one case per weight type and format, short prompts
    CASES = [(n, f, s, d, g, seed, min(length, 14), chunks[-1:], kv)
             for (n, f, s, d, g, seed, length, chunks, kv) in CASES
             if n in ("gguf_f32_gqa", "hf_f32_nogqa", "hf_bf16_gqa", "gguf_f16_gqa", "gguf_q8_0_gqa",
                      "gguf_q4_0_nogqa")]

RESULTS = []  # (case, variant, worst error, position, tolerance)


def run(args, timeout=300):
    p = subprocess.run([BINARY] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"`lmstream {' '.join(args)}` exited {p.returncode}:\n"
                             f"{p.stderr.decode(errors='replace')[-2000:]}")
    return p


def rel_errors(engine, ref):
    """max|engine - ref| / max|ref| at each position."""
    return np.abs(engine - ref).max(axis=1) / np.abs(ref).max(axis=1)


class Numerics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if np is None:
            raise AssertionError("numpy is not importable by this interpreter; run with /usr/bin/python3")
        if not BINARY or not os.access(BINARY, os.X_OK):
            raise AssertionError(f"LMSTREAM_BINARY={BINARY!r} is not an executable lmstream binary")
        global llama_ref
        import llama_ref
        cls.tmp = tempfile.mkdtemp(prefix="lms_numerics_")
        cls.models, cls.refs = {}, {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)
        if RESULTS:
            print("\nworst max-relative error per case (max|engine-ref|/max|ref| over positions):")
            for case, variant, err, pos, tol in RESULTS:
                print(f"  {case:18s} {variant:22s} {err:10.3e} at pos {pos:3d}  (tol {tol:.0e})")

    def model(self, fmt, shape, dtype, gqa, seed):
        key = (fmt, shape, dtype, gqa, seed)
        if key not in self.models:
            out = os.path.join(self.tmp, "_".join(str(k) for k in key) + (".gguf" if fmt == "gguf" else ""))
            args = ["make-test-model", out, "--format", fmt, "--shape", shape, "--dtype", dtype, "--seed", str(seed)]
            run(args + ([] if gqa else ["--no-gqa"]))
            self.models[key] = out
            self.refs[key] = llama_ref.load(out)
        return self.models[key], self.refs[key]

    def engine_logits(self, path, tokens, vocab, chunk=None, kv=None, threads=None):
        out = os.path.join(self.tmp, "logits.f32")
        args = ["logits", "--model", path, "--tokens", ",".join(map(str, tokens)), "--out", out]
        args += ["--chunk", str(chunk)] if chunk else []
        args += ["--kv-type", kv] if kv else []
        args += ["--threads", str(threads)] if threads else []
        run(args)
        raw = np.fromfile(out, dtype="<f4")
        self.assertEqual(raw.size, len(tokens) * vocab,
                         f"logits file has {raw.size} floats, expected {len(tokens)} x {vocab}")
        return raw.reshape(len(tokens), vocab).astype(np.float64)

    def check_case(self, name, fmt, shape, dtype, gqa, seed, length, chunks, kv):
        path, ref_model = self.model(fmt, shape, dtype, gqa, seed)
        vocab = ref_model.tok_embd.shape[0]
        rng = np.random.default_rng(seed)
        tokens = [1] + rng.integers(3, vocab, size=length - 1).tolist()
        ref = llama_ref.forward(ref_model, tokens)
        self.assertTrue(np.all(np.isfinite(ref)), "reference logits are not finite")
        for i, chunk in enumerate(chunks):
            threads = 2 if i == len(chunks) - 1 else None
            eng = self.engine_logits(path, tokens, vocab, chunk=chunk, kv=kv, threads=threads)
            self.assertTrue(np.all(np.isfinite(eng)), f"{name}: engine logits are not finite")
            err = rel_errors(eng, ref)
            worst = int(err.argmax())
            variant = f"chunk={chunk or 'all'} kv={kv or 'default'}" + (" t=2" if threads else "")
            RESULTS.append((name, variant, float(err[worst]), worst, TOL[dtype]))
            print(f"{name} [{variant}] n={len(tokens)}: worst {err[worst]:.3e} at position {worst}, "
                  f"median {np.median(err):.3e}", flush=True)
            self.assertLessEqual(
                err[worst], TOL[dtype],
                f"{name} [{variant}]: max relative error {err[worst]:.3e} at position {worst} "
                f"(token {tokens[worst]}) exceeds {TOL[dtype]:.0e}; per position: "
                + " ".join(f"{e:.1e}" for e in err))

    # ---- greedy generation: GGUF and HF copies of the same weights ----

    def test_greedy_same_for_gguf_and_hf(self):
        seed, n_new = 31, 8 if SANITIZED else 16
        gguf, ref_g = self.model("gguf", "micro", "f32", True, seed)
        hf, ref_h = self.model("hf", "micro", "f32", True, seed)
        # The two files hold the same weights (rows of Wq/Wk permuted in HF): the reference must agree.
        probe = [1, 2, 3, 4, 5, 6, 7, 8]
        a, b = llama_ref.forward(ref_g, probe), llama_ref.forward(ref_h, probe)
        self.assertLess(np.abs(a - b).max(), 1e-9 * np.abs(a).max(),
                        "make-test-model wrote different weights as GGUF and HF for the same seed")
        outs, ids = [], []
        for path in (gguf, hf):
            p = run(["generate", "--model", path, "--prompt", "Hello", "--max-new-tokens", str(n_new),
                     "--seed", "1", "--print-ids"])
            outs.append(p.stdout)
            ids.append(json.loads(p.stderr.decode().strip().splitlines()[-1]))
        self.assertEqual(outs[0], outs[1], "generate printed different text for the GGUF and HF copies")
        self.assertEqual(ids[0], ids[1], "generate produced different ids for the GGUF and HF copies")
        self.assertGreater(len(ids[0]), 0, "generate produced no tokens")
        self.check_greedy_against_reference(gguf, ref_g, ids[0])

    def check_greedy_against_reference(self, path, ref_model, generated):
        """Each id `generate` produced must be the reference's argmax given everything before it
        (greedy fed back), and the engine's own `logits` must have the same argmax there."""
        prompt = self.prompt_ids(path, "Hello")
        seq = list(prompt)
        vocab = ref_model.tok_embd.shape[0]
        eng = self.engine_logits(path, seq + generated, vocab, kv="f32")
        ref = llama_ref.forward(ref_model, seq + generated)
        checked = 0
        for i, tok in enumerate(generated):
            pos = len(prompt) - 1 + i
            top2 = np.sort(ref[pos])[-2:]
            if top2[1] - top2[0] < 10 * TOL["f32"] * np.abs(ref[pos]).max():
                break  # a near-tie: float32 may legitimately pick the other token from here on
            self.assertEqual(int(np.argmax(ref[pos])), tok,
                             f"generate's token {i} is {tok}, reference greedy says {int(np.argmax(ref[pos]))}")
            self.assertEqual(int(np.argmax(eng[pos])), tok, f"`logits` argmax disagrees with generate at step {i}")
            checked += 1
        self.assertGreaterEqual(checked, len(generated) // 2,
                                f"only {checked} greedy steps were clear of near-ties; choose another seed")

    def prompt_ids(self, path, text):
        """BOS + SentencePiece encoding of text with the model's tokenizer (the shared llama2 one)."""
        import sentencepiece  # Debian's python3-sentencepiece
        sp_path = os.path.join(os.environ.get("LMSTREAM_SOURCE_DIR", os.path.join(HERE, "..")),
                               "..", "shared", "testdata", "llama2-tokenizer.model")
        sp = sentencepiece.SentencePieceProcessor(model_file=sp_path)
        return [1] + sp.encode(text)


def _make_test(case):
    def test(self):
        self.check_case(*case)
    test.__name__ = f"test_{case[0]}"
    test.__doc__ = f"logits of {case[0]} against the float64 reference"
    return test


for _case in CASES:
    setattr(Numerics, f"test_{_case[0]}", _make_test(_case))

if __name__ == "__main__":
    unittest.main(verbosity=2)
