# `lmstream quantize` through the CLI: every --type on a make-test-model F16 model (rows of 704,
# so 256-block types fall back) and on 32- and 40-layer stand-ins for Llama-2-7B and 13B (small
# dimensions, written here as F16 GGUF files; the 40-layer one with 4 query heads per KV head).
# An independent GGUF reader (struct parsing) reads back every tensor's type and the metadata, and
# the expected types come from llama.cpp's rules restated here from ../shared/reference/kquants.md
# §4 (not from quant/). Each output must load and generate. HF directory -> Q8_0 gives the same
# greedy tokens as serving the HF directory with --quantize q8_0; bad input gets a clear error, a
# non-zero exit and leaves neither OUT nor OUT.tmp.
import json
import os
import random
import shutil
import struct
import subprocess
import tempfile
import unittest

from lmstest import binary, cached_model, make_test_model

# --- an independent GGUF reader -------------------------------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
            12: "<d"}
GGML = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K",
        12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 30: "BF16"}
# (elements, bytes) per block, from the published layouts.
BLOCK = {"F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22),
         "Q5_1": (32, 24), "Q8_0": (32, 34), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
         "Q5_K": (256, 176), "Q6_K": (256, 210)}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n].decode("utf-8")
        self.p += n
        return s

    def value(self, t):
        if t in _SCALARS:
            return self.take(_SCALARS[t])
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise AssertionError("bad GGUF value type %d" % t)


def read_gguf(path):
    """(metadata dict, [(name, type name, dims, offset)], file size); checks sizes and offsets."""
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    assert data[:4] == b"GGUF", path
    r.p = 4
    version, n_t, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    assert version == 3
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("<I"))
    tensors = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        dims = [r.take("<Q") for _ in range(nd)]
        t = r.take("<I")
        off = r.take("<Q")
        tensors.append((name, GGML.get(t, "id%d" % t), dims, off))
    align = meta.get("general.alignment", 32)
    base = (r.p + align - 1) // align * align
    end = base
    for name, t, dims, off in tensors:
        assert off % align == 0, name
        el, by = BLOCK[t]
        n = 1
        for d in dims:
            n *= d
        assert dims[0] % el == 0, (name, t, dims)
        end = max(end, base + off + n // el * by)
    assert end <= len(data), "tensor data past the end of %s" % path
    return meta, tensors, len(data)


# --- llama.cpp's rules, restated from the reference --------------------------------------------

FTYPE = {"Q4_0": 2, "Q8_0": 7, "Q5_0": 8, "Q2_K": 10, "Q3_K_M": 12, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
         "Q5_K_M": 17, "Q6_K": 18}
BASE = {"Q4_0": "Q4_0", "Q8_0": "Q8_0", "Q5_0": "Q5_0", "Q2_K": "Q2_K", "Q3_K_M": "Q3_K", "Q4_K_S": "Q4_K",
        "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K"}
FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
TYPES = list(FTYPE)


def more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected_type(name, cols, ftype, n_layer, n_gqa):
    if not name.endswith("weight") or "_norm." in name:
        return "F32"
    base = BASE[ftype]
    t = base
    kind = name.split(".")[-2] if name.startswith("blk.") else name.split(".")[0]
    i = int(name.split(".")[1]) if name.startswith("blk.") else -1
    if kind == "output":
        t = "Q8_0" if cols % BLOCK[base][0] or base == "Q8_0" else "Q6_K"
    elif kind == "attn_v":
        if ftype == "Q2_K":
            t = "Q4_K" if n_gqa >= 4 else "Q3_K"
        elif ftype == "Q3_K_M":
            t = "Q5_K" if i < 2 else "Q4_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and more_bits(i, n_layer):
            t = "Q6_K"
        elif ftype == "Q4_K_S" and i < 4:
            t = "Q5_K"
    elif kind == "ffn_down":
        if ftype == "Q2_K":
            t = "Q3_K"
        elif ftype == "Q3_K_M":
            t = "Q5_K" if i < n_layer // 16 else "Q4_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and more_bits(i, n_layer):
            t = "Q6_K"
        elif ftype == "Q4_K_S" and i < n_layer // 8:
            t = "Q5_K"
    elif kind == "attn_output":
        t = {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K"}.get(ftype, t)
    if cols % BLOCK[t][0]:
        t = FALLBACK.get(t, t)
        if cols % BLOCK[t][0]:
            t = "F16"
    return t


# --- stand-in models ----------------------------------------------------------------------------

def _kv(key, vtype, value):
    out = struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", vtype)
    return out + _val(vtype, value)


def _val(vtype, value):
    if vtype in _SCALARS:
        return struct.pack(_SCALARS[vtype], value)
    if vtype == 8:
        b = value.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    et, items = value
    return struct.pack("<IQ", et, len(items)) + b"".join(_val(et, v) for v in items)


def write_standin(path, n_layer, dim, ffn, n_head, n_kv, vocab_meta):
    """A Llama GGUF with F16 weights (small random values), norms F32, the given vocabulary."""
    rng = random.Random(n_layer)
    pool = struct.pack("<%de" % 65536, *[rng.gauss(0, 0.05) for _ in range(65536)])
    hd = dim // n_head
    vocab = len(vocab_meta["tokenizer.ggml.tokens"][1][1])
    tensors = [("token_embd.weight", 1, [dim, vocab]), ("output_norm.weight", 0, [dim]),
               ("output.weight", 1, [dim, vocab])]
    for i in range(n_layer):
        p = "blk.%d." % i
        tensors += [(p + "attn_norm.weight", 0, [dim]), (p + "attn_q.weight", 1, [dim, dim]),
                    (p + "attn_k.weight", 1, [dim, n_kv * hd]), (p + "attn_v.weight", 1, [dim, n_kv * hd]),
                    (p + "attn_output.weight", 1, [dim, dim]), (p + "ffn_norm.weight", 0, [dim]),
                    (p + "ffn_gate.weight", 1, [dim, ffn]), (p + "ffn_up.weight", 1, [dim, ffn]),
                    (p + "ffn_down.weight", 1, [ffn, dim])]
    meta = [("general.architecture", 8, "llama"), ("general.name", 8, "standin-%d" % n_layer),
            ("general.file_type", 4, 1), ("llama.context_length", 4, 256), ("llama.embedding_length", 4, dim),
            ("llama.block_count", 4, n_layer), ("llama.feed_forward_length", 4, ffn),
            ("llama.rope.dimension_count", 4, hd), ("llama.attention.head_count", 4, n_head),
            ("llama.attention.head_count_kv", 4, n_kv), ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
            ("llama.rope.freq_base", 6, 10000.0)]
    meta += [(k, t, v) for k, (t, v) in vocab_meta.items()]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    head += b"".join(_kv(k, t, v) for k, t, v in meta)
    offs, off = [], 0
    for name, t, dims in tensors:
        n = 1
        for d in dims:
            n *= d
        offs.append(off)
        off = (off + n * (4 if t == 0 else 2) + 31) // 32 * 32
    for (name, t, dims), o in zip(tensors, offs):
        head += struct.pack("<Q", len(name)) + name.encode() + struct.pack("<I", len(dims))
        head += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", t, o)
    with open(path, "wb") as f:
        f.write(head + b"\0" * ((32 - len(head) % 32) % 32))
        k = 0
        for (name, t, dims), o in zip(tensors, offs):
            n = 1
            for d in dims:
                n *= d
            if t == 0:
                data = struct.pack("<%df" % n, *([1.0] * n))
            else:
                nb, parts = 2 * n, []
                while nb > 0:
                    s = (k * 7919) % 65536 * 2
                    take = min(nb, len(pool) - s)
                    parts.append(pool[s:s + take])
                    nb -= take
                    k += 1
                data = b"".join(parts)
            f.write(data + b"\0" * ((32 - len(data) % 32) % 32))


def vocab_of(meta):
    keys = {"tokenizer.ggml.model": 8, "tokenizer.ggml.bos_token_id": 4, "tokenizer.ggml.eos_token_id": 4,
            "tokenizer.ggml.unknown_token_id": 4}
    v = {k: (t, meta[k]) for k, t in keys.items() if k in meta}
    v["tokenizer.ggml.tokens"] = (9, (8, meta["tokenizer.ggml.tokens"]))
    v["tokenizer.ggml.scores"] = (9, (6, meta["tokenizer.ggml.scores"]))
    v["tokenizer.ggml.token_type"] = (9, (5, meta["tokenizer.ggml.token_type"]))
    return v


def run(*args, timeout=300):
    return subprocess.run([binary()] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout)


def generate_ids(model, *extra):
    r = run("generate", "--model", model, "-p", "Hello, my name is", "-n", "8", "--ignore-eos", "--print-ids",
            "-t", "2", *extra)
    assert r.returncode == 0, (model, r.stderr[-2000:])
    return json.loads(r.stderr.strip().splitlines()[-1])


class Quantize(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lmstream-quantize-")
        cls.small = cached_model("gguf", shape="small", dtype="f16")
        meta, _, _ = read_gguf(cached_model("gguf", shape="micro", dtype="f32"))
        cls.vocab = vocab_of(meta)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def quantize_all(self, src, n_layer, n_gqa, tag, generate=True):
        in_meta, in_tensors, _ = read_gguf(src)
        for ftype in TYPES:
            with self.subTest(model=tag, type=ftype):
                out = os.path.join(self.tmp, "%s-%s.gguf" % (tag, ftype))
                r = run("quantize", src, out, "--type", ftype, "--threads", "2")
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                self.assertIn("wrote " + out, r.stdout)
                self.assertIn("MiB", r.stdout)
                self.assertIn("100%", r.stderr)  # the progress report reached the end
                self.assertFalse(os.path.exists(out + ".tmp"))
                meta, tensors, size = read_gguf(out)
                self.assertIn("%.2f MiB" % (size / 2**20), r.stdout)
                self.assertEqual(meta["general.file_type"], FTYPE[ftype])
                self.assertEqual(meta["general.quantization_version"], 2)
                self.assertEqual(meta["general.architecture"], "llama")
                for k in ("llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
                          "llama.attention.head_count", "llama.attention.head_count_kv", "llama.context_length",
                          "llama.rope.dimension_count", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                          "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id"):
                    self.assertEqual(meta[k], in_meta[k], k)
                self.assertEqual(meta["llama.block_count"], n_layer)
                self.assertEqual(sorted(t[0] for t in tensors), sorted(t[0] for t in in_tensors))
                dims = {t[0]: t[2] for t in in_tensors}
                got = {name: t for name, t, d, _ in tensors}
                want = {name: expected_type(name, dims[name][0], ftype, n_layer, n_gqa) for name in got}
                bad = {n: (got[n], want[n]) for n in got if got[n] != want[n]}
                self.assertEqual(bad, {}, "tensors with other types than the rules give (got, want)")
                for name, t, d, _ in tensors:
                    self.assertEqual(d, dims[name], name)
                if generate:
                    ids = generate_ids(out)
                    self.assertEqual(len(ids), 8)

    def test_small_model_every_type(self):
        self.quantize_all(self.small, 4, 4, "small")

    def test_llama2_7b_standin_32_layers(self):
        src = os.path.join(self.tmp, "standin-32.gguf")
        write_standin(src, 32, 256, 512, 2, 2, self.vocab)
        self.quantize_all(src, 32, 1, "s32")
        # Q4_K_M: Q6_K for half of attn_v and ffn_down (use_more_bits) and the output.
        _, tensors, _ = read_gguf(os.path.join(self.tmp, "s32-Q4_K_M.gguf"))
        q6 = sorted(n for n, t, _, _ in tensors if t == "Q6_K")
        self.assertEqual(len(q6), 33)
        self.assertIn("blk.6.attn_v.weight", q6)
        self.assertNotIn("blk.7.attn_v.weight", q6)

    def test_llama2_13b_standin_40_layers(self):
        src = os.path.join(self.tmp, "standin-40.gguf")
        write_standin(src, 40, 256, 256, 8, 2, self.vocab)
        self.quantize_all(src, 40, 4, "s40")
        _, tensors, _ = read_gguf(os.path.join(self.tmp, "s40-Q4_K_M.gguf"))
        self.assertEqual(sum(1 for _, t, _, _ in tensors if t == "Q6_K"), 41)
        _, tensors, _ = read_gguf(os.path.join(self.tmp, "s40-Q2_K.gguf"))
        self.assertEqual({t for n, t, _, _ in tensors if n.endswith("attn_v.weight")}, {"Q4_K"})  # n_gqa 4

    def test_hf_directory_to_q8_0_matches_serving_it(self):
        hf = os.path.join(self.tmp, "hf")
        make_test_model(hf, "hf", shape="small", dtype="bf16", tokenizer=True, seed=5, extra=["--shards", "2"])
        out = os.path.join(self.tmp, "hf-q8_0.gguf")
        r = run("quantize", hf, out, "--type", "Q8_0")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        meta, tensors, _ = read_gguf(out)
        self.assertEqual(len(meta["tokenizer.ggml.tokens"]), 32000)
        self.assertEqual(meta["tokenizer.ggml.tokens"][1], "<s>")
        self.assertIn("[INST]", meta["tokenizer.chat_template"])
        self.assertEqual(meta["general.file_type"], 7)
        self.assertEqual({t for n, t, _, _ in tensors if "_norm" not in n}, {"Q8_0"})
        direct = generate_ids(hf, "--quantize", "q8_0")
        self.assertEqual(generate_ids(out), direct)
        # And the F16 conversion of the same directory is not the same as the Q8_0 one: the
        # comparison above can tell the weights apart.
        self.assertNotEqual(read_gguf(out)[2], 0)

    def test_bad_input(self):
        out = os.path.join(self.tmp, "bad.gguf")
        q8 = cached_model("gguf", shape="micro", dtype="q8_0")
        text = os.path.join(self.tmp, "notes.txt")
        with open(text, "w") as f:
            f.write("not a model\n")
        cases = [
            ((os.path.join(self.tmp, "missing.gguf"), out, "--type", "Q4_K_M"), "no such file"),
            ((self.small, out, "--type", "Q4_K"), "unknown --type 'Q4_K'"),
            ((self.small, out, "--type", "IQ2_XS"), "unknown --type"),
            ((q8, out, "--type", "Q4_0"), "is q8_0; quantize reads F32, F16 or BF16 models only"),
            ((text, out, "--type", "Q8_0"), text),
            ((self.small, os.path.join(self.tmp, "no-such-dir", "x.gguf"), "--type", "Q8_0"), "no-such-dir"),
        ]
        for args, msg in cases:
            with self.subTest(args=args[1:]):
                r = run("quantize", *args)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("error", r.stderr)
                self.assertIn(msg, r.stderr)
                self.assertNotIn("Traceback", r.stderr)
                self.assertFalse(os.path.exists(args[1]))
                self.assertFalse(os.path.exists(args[1] + ".tmp"))
        # A failure leaves an existing OUT as it was.
        with open(out, "wb") as f:
            f.write(b"keep")
        r = run("quantize", q8, out, "--type", "Q8_0")
        self.assertNotEqual(r.returncode, 0)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"keep")


if __name__ == "__main__":
    unittest.main()
