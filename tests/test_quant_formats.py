# interpreter: /usr/bin/python3
# Every block-quantized format lmstream loads (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K .. Q6_K) decoded
# by lmstream (`lmstream dump-tensor`, plain and through the kernels' repacked layout) against the
# independent float64 numpy decoders of tests/reference/dequant.py, written from the documented
# layouts. Blocks: random bytes with finite random fp16 scales (every code value occurs, both
# signs of the scales), and edge blocks: all-zero, extreme fp16 scales (65504, -65504, the
# smallest subnormal), and blocks whose code bytes are all 0x00, all 0xFF or count through 0..255.
# Tolerance: lmstream decodes in float32 (d * s * q - dmin * m, each product rounded once), the
# reference exactly in float64: |diff| <= 4e-7 x a bound on the element's terms (term_bound).
# Also: a make-test-model file of each K-quant type decodes identically through lmstream and the
# reference GGUF reader, and an unsupported type (IQ4_XS) is refused naming the tensor and type.
import os
import struct
import subprocess
import sys
import tempfile
import unittest

try:
    import numpy as np
except ImportError:
    np = None

from lmstest import binary_path, make_test_model, reference_dir

sys.path.insert(0, reference_dir())
BINARY = binary_path()

# name -> (ggml id, elements per block, bytes per block, byte offsets of fp16 fields)
FORMATS = {
    "q4_0": (2, 32, 18, (0,)),
    "q4_1": (3, 32, 20, (0, 2)),
    "q5_0": (6, 32, 22, (0,)),
    "q5_1": (7, 32, 24, (0, 2)),
    "q8_0": (8, 32, 34, (0,)),
    "q2_k": (10, 256, 84, (80, 82)),
    "q3_k": (11, 256, 110, (108,)),
    "q4_k": (12, 256, 144, (0, 2)),
    "q5_k": (13, 256, 176, (0, 2)),
    "q6_k": (14, 256, 210, (208,)),
}


def gguf_bytes(tensors, alignment=32):
    """A GGUF v3 file with no metadata and the given (name, ggml type, rows, cols, data) tensors."""
    def s(t):
        b = t.encode()
        return struct.pack("<Q", len(b)) + b
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 0)
    infos, data = b"", b""
    for name, ty, rows, cols, raw in tensors:
        infos += s(name) + struct.pack("<IqqIQ", 2, cols, rows, ty, len(data))
        data += raw + b"\0" * (-len(raw) % alignment)
    out = head + infos
    return out + b"\0" * (-len(out) % alignment) + data


def finite_f16(rng, count):
    """Random fp16 bit patterns, non-finite ones replaced by random finite values."""
    h = rng.integers(0, 1 << 16, size=count, dtype=np.uint32)
    bad = (h & 0x7C00) == 0x7C00
    h[bad] &= 0xBBFF  # clear an exponent bit
    return h.astype(np.uint16)


def random_blocks(rng, fmt, nblocks):
    _, _, size, f16s = FORMATS[fmt]
    b = rng.integers(0, 256, size=(nblocks, size), dtype=np.uint8)
    for o in f16s:
        b[:, o:o + 2] = finite_f16(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    return b


def edge_blocks(fmt):
    _, _, size, f16s = FORMATS[fmt]
    rows = []
    for scale in (0x7BFF, 0xFBFF, 0x0001, 0x3C00, 0x0000):  # 65504, -65504, 2^-24, 1, 0
        for fill in ("zero", "ones", "count", "count_rev"):
            b = np.zeros(size, dtype=np.uint8)
            if fill == "ones":
                b[:] = 0xFF
            elif fill == "count":
                b[:] = np.arange(size) % 256
            elif fill == "count_rev":
                b[:] = 255 - (np.arange(size) * 7) % 256
            for o in f16s:
                b[o:o + 2] = np.array([scale], dtype="<u2").view(np.uint8)
            rows.append(b)
    rows.append(np.zeros(size, dtype=np.uint8))  # the all-zero block
    return np.stack(rows)


def term_bound(fmt, raw, n):
    """Per element, a bound on |d s q| + |dmin m|, the magnitudes float32 rounds: every product in
    a block is at most 2x the block's largest |value| (the q = 0 and q = max elements of a block
    bound the scale and min terms), so 2 * max|block| is used for all its elements."""
    from dequant import decode
    vals = np.abs(decode(FORMATS[fmt][0], raw, n))
    per = FORMATS[fmt][1]
    blk = vals.reshape(-1, per).max(axis=1, keepdims=True)
    return np.broadcast_to(blk * 2 + 1e-30, (n // per, per)).reshape(n)


@unittest.skipIf(np is None, "numpy is not installed")
class QuantFormats(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def dump(self, path, name, packed):
        out = os.path.join(self.tmp.name, "dump.f32")
        args = [BINARY, "dump-tensor", path, name, "-o", out] + (["--packed"] if packed else [])
        p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return np.fromfile(out, dtype="<f4").astype(np.float64)

    def check_blocks(self, fmt, blocks, label, rows):
        from dequant import decode
        ty, per, size, _ = FORMATS[fmt]
        nb = blocks.shape[0]
        cols = nb // rows * per
        raw = blocks[: rows * (nb // rows)].tobytes()
        n = rows * cols
        path = os.path.join(self.tmp.name, f"{fmt}_{label}.gguf")
        with open(path, "wb") as f:
            f.write(gguf_bytes([("w", ty, rows, cols, raw)]))
        ref = decode(ty, raw, n)
        tol = 4e-7 * term_bound(fmt, raw, n)
        for packed in (False, True):
            got = self.dump(path, "w", packed)
            self.assertEqual(got.shape, ref.shape)
            err = np.abs(got - ref)
            worst = int(np.argmax(err - tol))
            self.assertTrue(np.all(err <= tol),
                            f"{fmt} {label} packed={packed}: element {worst} lmstream {got[worst]!r} "
                            f"reference {ref[worst]!r}")
        return ref

    def test_random_blocks(self):
        rng = np.random.default_rng(1)
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                # 40 rows (a partial last group of the packed layout) x 2 blocks.
                ref = self.check_blocks(fmt, random_blocks(rng, fmt, 80), "random", 40)
                self.assertGreater(np.count_nonzero(ref), ref.size // 2)

    def test_edge_blocks(self):
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                blocks = edge_blocks(fmt)
                ref = self.check_blocks(fmt, blocks, "edge", blocks.shape[0])
                self.assertTrue(np.all(np.isfinite(ref)))
                self.assertTrue(np.all(ref[-FORMATS[fmt][1]:] == 0))  # the all-zero block

    def test_every_code_value_decodes_distinctly(self):
        # With d = 1 (and min 0, unit sub-block scales where the format has them) the decoded
        # values of count-through blocks must take every value of the code range.
        from dequant import decode
        expect = {"q4_0": 16, "q4_1": 16, "q5_0": 32, "q5_1": 32, "q8_0": 256, "q6_k": 64,
                  "q4_k": 16, "q5_k": 32, "q2_k": 4, "q3_k": 8}
        rng = np.random.default_rng(2)
        for fmt, count in expect.items():
            with self.subTest(fmt=fmt):
                ty, per, size, f16s = FORMATS[fmt]
                b = rng.integers(0, 256, size=(64, size), dtype=np.uint8)
                for o in f16s:
                    b[:, o:o + 2] = np.array([0x3C00 if o == f16s[0] else 0], dtype="<u2").view(np.uint8)
                if fmt in ("q4_k", "q5_k"):  # scales: every 6-bit scale 1, min 0
                    b[:, 4:16] = 0
                    b[:, 4:8] = 1
                    b[:, 12:16] = 1
                elif fmt == "q2_k":
                    b[:, 0:16] = 1
                elif fmt == "q3_k":  # u = 33 -> scale 1: low nibble 1, high bits 2
                    b[:, 96:104] = 0x11
                    b[:, 104:108] = 0xAA
                elif fmt == "q6_k":
                    b[:, 192:208] = 1
                ref = self.check_blocks(fmt, b, "codes", 16)
                self.assertEqual(len(np.unique(ref)), count, fmt)

    def test_make_test_model_k_quants_load_and_decode(self):
        from gguf_reader import GGUFFile
        for fmt in ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_1", "q5_0", "q5_1"):
            with self.subTest(fmt=fmt):
                path = os.path.join(self.tmp.name, f"model_{fmt}.gguf")
                make_test_model(path, "gguf", shape="micro-k", dtype=fmt, seed=3)
                r = GGUFFile(path)
                w = r.tensor("blk.0.ffn_down.weight")
                got = self.dump(path, "blk.0.ffn_down.weight", True).reshape(w.shape)
                self.assertLessEqual(float(np.max(np.abs(got - w))), 4e-7 * float(np.max(np.abs(w))) * 2)
                # Gaussian-like test weights keep their scale: the decode is not degenerate.
                self.assertGreater(float(np.std(w)), 0)

    def test_unsupported_type_is_refused_naming_tensor_and_type(self):
        path = os.path.join(self.tmp.name, "iq4xs.gguf")
        with open(path, "wb") as f:
            f.write(gguf_bytes([("blk.0.attn_q.weight", 23, 2, 256, b"\0" * 272)]))
        p = subprocess.run([BINARY, "dump-tensor", path, "blk.0.attn_q.weight", "-o",
                            os.path.join(self.tmp.name, "x")], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("tensor 'blk.0.attn_q.weight' has unsupported tensor type 23 (IQ4_XS)", p.stderr)


if __name__ == "__main__":
    unittest.main()
