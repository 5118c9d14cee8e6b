# interpreter: /usr/bin/python3
# Self-check of the float64 reference (tests/reference/) that does not use lmstream: number-format
# decoders on hand-made blocks, RoPE layout equivalence under the HF<->Meta row permutation, a
# second (complex-number) RoPE implementation, causality, and GGUF/HF reader round trips.
import os
import struct
import sys
import tempfile
import unittest

try:
    import numpy as np
except ImportError:  # pragma: no cover - reported as a failure below
    np = None

from lmstest import reference_dir

sys.path.insert(0, reference_dir())


class RefSelfCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if np is None:
            raise AssertionError("numpy is missing for this interpreter; run with /usr/bin/python3")
        global dequant, llama_ref, ref_writers
        import dequant
        import llama_ref
        import ref_writers

    # ---- number formats ----

    def test_q8_0_hand_block(self):
        qs = [-128, -127, -1, 0, 1, 2, 100, 127] * 4
        raw = struct.pack("<H", 0x3800) + struct.pack("<32b", *qs)  # d = 0.5
        got = dequant.dequant_q8_0(raw + raw, 64)
        want = [q * 0.5 for q in qs] * 2
        self.assertEqual(got.tolist(), want)

    def test_q4_0_hand_block(self):
        lo = [(3 * j) % 16 for j in range(16)]
        hi = [(15 - j) % 16 for j in range(16)]
        raw = struct.pack("<H", 0xC000) + bytes(lo[j] | (hi[j] << 4) for j in range(16))  # d = -2
        got = dequant.dequant_q4_0(raw, 32)
        want = [(v - 8) * -2.0 for v in lo] + [(v - 8) * -2.0 for v in hi]
        self.assertEqual(got.tolist(), want)

    def test_float_formats(self):
        self.assertEqual(dequant.f16_to_f64(struct.pack("<3H", 0x3C00, 0xC000, 0x0001)).tolist(),
                         [1.0, -2.0, 2.0 ** -24])
        self.assertEqual(dequant.bf16_to_f64(struct.pack("<3H", 0x3F80, 0xC040, 0x3EAA)).tolist(),
                         [1.0, -3.0, struct.unpack("<f", struct.pack("<I", 0x3EAA0000))[0]])

    def test_quantizers_roundtrip_within_half_step(self):
        rng = np.random.default_rng(3)
        x = rng.standard_normal(32 * 8).astype(np.float32)
        q8 = dequant.dequant_q8_0(ref_writers.quant_q8_0(x), x.size)
        d8 = np.abs(x.reshape(-1, 32)).max(axis=1) / 127
        # half a step, plus the f16 rounding of d (2^-11 relative) times |q| <= 127
        self.assertTrue(np.all(np.abs(q8 - x).reshape(-1, 32) <= d8[:, None] * (0.5 + 127 * 2.0 ** -11)))
        q4 = dequant.dequant_q4_0(ref_writers.quant_q4_0(x), x.size)
        d4 = np.abs(x.reshape(-1, 32)).max(axis=1) / 8
        self.assertTrue(np.all(np.abs(q4 - x).reshape(-1, 32) <= d4[:, None] * 1.01))

    # ---- forward pass ----

    def _model(self, w, layout):
        L = llama_ref.Layer
        hd = w["dim"] // w["n_heads"]
        layers = []
        for lw in w["layers"]:
            wq, wk = lw["wq"], lw["wk"]
            if layout == llama_ref.HALF_SPLIT:
                wq = ref_writers.meta_to_hf_rows(wq, w["n_heads"])
                wk = ref_writers.meta_to_hf_rows(wk, w["n_kv_heads"])
            f = lambda a: a.astype(np.float64)  # noqa: E731
            layers.append(L(f(lw["attn_norm"]), f(wq), f(wk), f(lw["wv"]), f(lw["wo"]), f(lw["ffn_norm"]),
                            f(lw["w_gate"]), f(lw["w_up"]), f(lw["w_down"])))
        return llama_ref.LlamaModel(w["n_heads"], w["n_kv_heads"], hd, 1e-5, 10000.0, layout,
                                    w["tok"].astype(np.float64), layers, w["out_norm"].astype(np.float64),
                                    w["output"].astype(np.float64))

    def test_rope_layouts_equivalent_under_permutation(self):
        w = ref_writers.random_meta_weights(np.random.default_rng(1))
        toks = [1, 5, 9, 3, 0, 39, 17, 17, 2, 8, 11, 30]
        a = llama_ref.forward(self._model(w, llama_ref.INTERLEAVED), toks)
        b = llama_ref.forward(self._model(w, llama_ref.HALF_SPLIT), toks)
        self.assertLess(np.abs(a - b).max(), 1e-12 * np.abs(a).max())
        # Without the permutation the two layouts must disagree (the test can fail).
        wrong = self._model(w, llama_ref.INTERLEAVED)
        wrong.rope_layout = llama_ref.HALF_SPLIT
        self.assertGreater(np.abs(llama_ref.forward(wrong, toks) - a).max(), 1e-3 * np.abs(a).max())

    def test_rope_matches_meta_complex_formulation(self):
        rng = np.random.default_rng(2)
        T, H, hd, theta = 7, 3, 8, 500.0
        x = rng.standard_normal((T, H, hd))
        got = llama_ref.rope(x, np.arange(T), theta, llama_ref.INTERLEAVED)
        # Meta: freqs = 1/theta^(arange(0,hd,2)/hd); x viewed as complex pairs times polar(1, pos*freq)
        freqs = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
        cis = np.exp(1j * np.outer(np.arange(T), freqs))  # [T, hd/2]
        xc = x[..., 0::2] + 1j * x[..., 1::2]
        yc = xc * cis[:, None, :]
        want = np.stack([yc.real, yc.imag], axis=-1).reshape(T, H, hd)
        self.assertLess(np.abs(got - want).max(), 1e-12)
        # Relative-position property: <rope(q,m), rope(k,n)> depends only on m - n.
        q, k = rng.standard_normal(hd), rng.standard_normal(hd)
        for layout in (llama_ref.INTERLEAVED, llama_ref.HALF_SPLIT):
            r = lambda v, p: llama_ref.rope(v[None, None, :], np.array([p]), theta, layout)[0, 0]  # noqa: E731
            self.assertAlmostEqual(r(q, 5) @ r(k, 2), r(q, 13) @ r(k, 10), places=10)

    def test_causal_prefix_and_first_position(self):
        w = ref_writers.random_meta_weights(np.random.default_rng(4), n_kv_heads=1)
        m = self._model(w, llama_ref.INTERLEAVED)
        toks = [4, 8, 15, 16, 23, 3, 7]
        full = llama_ref.forward(m, toks)
        self.assertLess(np.abs(llama_ref.forward(m, toks[:3]) - full[:3]).max(), 1e-12)
        # Position 0 attends only to itself: attention output = v, RoPE at angle 0 is the identity.
        h = m.tok_embd[toks[0]]
        for L in m.layers:
            a = llama_ref.rms_norm(h, L.attn_norm, m.rms_eps)
            v = L.wv @ a
            h = h + L.wo @ np.tile(v, m.n_heads)  # one kv head shared by all query heads
            f = llama_ref.rms_norm(h, L.ffn_norm, m.rms_eps)
            g = L.w_gate @ f
            h = h + L.w_down @ (g / (1 + np.exp(-g)) * (L.w_up @ f))
        want = m.output @ llama_ref.rms_norm(h, m.out_norm, m.rms_eps)
        self.assertLess(np.abs(full[0] - want).max(), 1e-12)

    # ---- readers ----

    def test_gguf_and_hf_readers_agree(self):
        w = ref_writers.random_meta_weights(np.random.default_rng(5))
        toks = [1, 2, 3, 10, 20, 30, 39]
        want = llama_ref.forward(self._model(w, llama_ref.INTERLEAVED), toks)
        with tempfile.TemporaryDirectory() as d:
            ref_writers.write_gguf(os.path.join(d, "m.gguf"), w, alignment=64)
            ref_writers.write_hf(os.path.join(d, "hf1"), w)
            ref_writers.write_hf(os.path.join(d, "hf3"), w, shards=3)
            for p in ("m.gguf", "hf1", "hf3"):
                got = llama_ref.forward(llama_ref.load(os.path.join(d, p)), toks)
                self.assertLess(np.abs(got - want).max(), 1e-6 * np.abs(want).max(), p)
            # tied output, bf16 / f16 storage: decoded weights equal the rounded originals exactly
            ref_writers.write_hf(os.path.join(d, "tied"), w, dtype="BF16", tied=True)
            m = llama_ref.load(os.path.join(d, "tied"))
            self.assertIs(m.output, m.tok_embd)
            bf = (w["tok"].view(np.uint32).astype(np.uint64))
            bf = (((bf + 0x7FFF + ((bf >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
            self.assertTrue(np.array_equal(m.tok_embd, bf.astype(np.float64)))
            ref_writers.write_gguf(os.path.join(d, "f16.gguf"), w, ttype=ref_writers.F16)
            m = llama_ref.load(os.path.join(d, "f16.gguf"))
            self.assertTrue(np.array_equal(m.layers[1].wk, w["layers"][1]["wk"].astype(np.float16).astype(np.float64)))

    def test_gguf_quantized_tensors(self):
        w = ref_writers.random_meta_weights(np.random.default_rng(6), dim=32, ffn=64)
        with tempfile.TemporaryDirectory() as d:
            for tt, tol in ((ref_writers.Q8_0, (0.5 + 127 * 2.0 ** -11) / 127), (ref_writers.Q4_0, 1.0 / 8)):
                p = os.path.join(d, f"q{tt}.gguf")
                ref_writers.write_gguf(p, w, ttype=tt)
                m = llama_ref.load(p)
                x = w["layers"][0]["w_gate"]
                err = np.abs(m.layers[0].w_gate - x).reshape(-1, 32).max(axis=1)
                amax = np.abs(x).reshape(-1, 32).max(axis=1)
                self.assertTrue(np.all(err <= amax * tol * 1.01), tt)
                self.assertEqual(m.layers[0].w_gate.shape, x.shape)
                self.assertTrue(np.array_equal(m.layers[0].attn_norm, w["layers"][0]["attn_norm"]))

    def test_bad_files_rejected(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.gguf")
            for blob in (b"GGUX" + b"\0" * 20, b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + b"\x05\0\0"):
                with open(p, "wb") as f:
                    f.write(blob)
                with self.assertRaises(dequant.FormatError):
                    llama_ref.load(p)

    def test_cli(self):
        w = ref_writers.random_meta_weights(np.random.default_rng(7))
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.gguf")
            ref_writers.write_gguf(p, w)
            out = os.path.join(d, "l.npy")
            self.assertEqual(llama_ref.main([p, "--tokens", "1,2,3", "--out", out]), 0)
            self.assertEqual(np.load(out).shape, (3, w["vocab"]))
            self.assertEqual(llama_ref.main([p, "--tokens", "1,99999", "--out", out]), 1)
            m = llama_ref.load(p)
            chain = llama_ref.greedy(m, [1, 2], 3)
            logits = llama_ref.forward(m, [1, 2] + chain)
            self.assertEqual(chain, [int(np.argmax(logits[i])) for i in (1, 2, 3)])

    def test_activation_quantization(self):
        x = np.array([[127.0, -63.5, 0.49, -0.5, 1.5] + [0.0] * 27, [0.0] * 32])
        y = llama_ref.q8_0_roundtrip(x)  # d = 1: round half away from zero; all-zero block stays 0
        self.assertEqual(y[0, :5].tolist(), [127.0, -64.0, 0.0, -1.0, 2.0])
        self.assertEqual(y[1].tolist(), [0.0] * 32)
        margins = []
        llama_ref.q8_0_roundtrip(x, margins)
        self.assertEqual(margins[0].tolist(), [0.0, 0.5])
        w = ref_writers.random_meta_weights(np.random.default_rng(8), dim=32, ffn=64)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "q.gguf")
            ref_writers.write_gguf(p, w, ttype=ref_writers.Q8_0)
            m = llama_ref.load(p)
            self.assertEqual(len(m.quantized), 2 * 7 + 1)
            toks = [1, 2, 3, 4]
            exact, aq = llama_ref.forward(m, toks), llama_ref.forward(m, toks, act_quant=True)
            rel = np.abs(exact - aq).max() / np.abs(exact).max()
            self.assertTrue(0 < rel < 0.2, rel)


if __name__ == "__main__":
    unittest.main(verbosity=2)
