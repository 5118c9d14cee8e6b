# Bad model files through the CLI: each corrupted GGUF file / HF directory must make
# `lmstream tokenize --model BAD` exit non-zero with a clear message naming the file and the
# problem, and never crash (no signal, no sanitizer report). Python stdlib only.
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

from lmstest import binary, cached_model


def run(*args, timeout=120):
    return subprocess.run([binary(), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout)


def tensor_info(data: bytes, name: str) -> int:
    """Offset just past the tensor name in the GGUF tensor-info table (-> n_dims)."""
    key = struct.pack("<Q", len(name)) + name.encode()
    at = data.rfind(key)
    assert at >= 0, name
    return at + len(key)


class BadModels(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        binary()  # AssertionError when LMSTREAM_BINARY is not an executable
        cls.tmp = tempfile.mkdtemp(prefix="lms_bad_models_")
        cls.gguf = cached_model("gguf", "micro", "q8_0")  # read-only: the bad ones are copies
        cls.hf = cached_model("hf", "micro", "f16")
        with open(cls.gguf, "rb") as f:
            cls.good = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    def expect_bad(self, path, needle, name_in_message=None):
        r = run("tokenize", "--model", path)
        msg = r.stderr
        self.assertGreater(r.returncode, 0, f"exit status {r.returncode} (negative = signal); stderr: {msg}")
        self.assertNotIn("AddressSanitizer", msg)
        self.assertNotIn("runtime error:", msg)
        self.assertNotIn("Segmentation", msg)
        self.assertIn("error:", msg)
        self.assertIn(needle, msg)
        self.assertIn(name_in_message or path, msg)

    # ---- GGUF ----
    def write_gguf(self, data: bytes, name="bad.gguf"):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def test_good_models_load(self):
        for p in (self.gguf, self.hf):
            r = run("tokenize", "--model", p)
            self.assertGreaterEqual(r.returncode, 0, r.stderr)
            self.assertNotIn(p, r.stderr, r.stderr)

    def test_gguf_truncated(self):
        self.expect_bad(self.write_gguf(self.good[: len(self.good) // 2]), "truncated")

    def test_gguf_wrong_magic(self):
        self.expect_bad(self.write_gguf(b"GGUX" + self.good[4:]), "bad magic")

    def test_gguf_offset_out_of_range(self):
        d = bytearray(self.good)
        at = tensor_info(d, "output.weight") + 4 + 16 + 4
        d[at:at + 8] = struct.pack("<Q", 1 << 62)
        self.expect_bad(self.write_gguf(bytes(d)), "out of range")

    def test_gguf_unknown_tensor_type(self):
        d = bytearray(self.good)
        at = tensor_info(d, "blk.0.attn_k.weight") + 4 + 16
        d[at:at + 4] = struct.pack("<I", 99)
        self.expect_bad(self.write_gguf(bytes(d)), "unsupported tensor type 99")

    def test_gguf_missing_tensor(self):
        d = bytearray(self.good)
        at = tensor_info(d, "blk.1.ffn_up.weight") - len("ffn_up.weight")
        d[at:at + 6] = b"ffn_uq"
        self.expect_bad(self.write_gguf(bytes(d)), "missing tensor 'blk.1.ffn_up.weight'")

    def test_gguf_shape_mismatch(self):
        d = bytearray(self.good)
        at = tensor_info(d, "blk.0.attn_q.weight") + 4 + 8
        d[at:at + 8] = struct.pack("<q", 32)
        self.expect_bad(self.write_gguf(bytes(d)), "shape mismatch for tensor 'blk.0.attn_q.weight'")

    def test_gguf_unsupported_architecture(self):
        d = bytearray(self.good)
        at = d.find(b"general.architecture") + len("general.architecture") + 4 + 8
        d[at:at + 5] = b"gpt2x"
        self.expect_bad(self.write_gguf(bytes(d)), "unsupported architecture 'gpt2x'")

    # ---- Hugging Face ----
    def hf_copy(self, name):
        p = os.path.join(self.tmp, name)
        shutil.rmtree(p, ignore_errors=True)
        shutil.copytree(self.hf, p)
        return p

    def edit_header(self, d, edit):
        st = os.path.join(d, "model.safetensors")
        with open(st, "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        h = json.loads(data[8:8 + n])
        edit(h)
        hs = json.dumps(h).encode()
        with open(st, "wb") as f:
            f.write(struct.pack("<Q", len(hs)) + hs + data[8 + n:])
        return st

    def test_hf_truncated(self):
        d = self.hf_copy("hf_trunc")
        st = os.path.join(d, "model.safetensors")
        with open(st, "r+b") as f:
            f.truncate(5000)
        self.expect_bad(d, "out of range", st)

    def test_hf_wrong_magic(self):  # safetensors has no magic: a garbage header length
        d = self.hf_copy("hf_magic")
        st = os.path.join(d, "model.safetensors")
        with open(st, "r+b") as f:
            f.write(b"\xff" * 8)
        self.expect_bad(d, "absurd", st)

    def test_hf_offset_out_of_range(self):
        d = self.hf_copy("hf_off")
        st = self.edit_header(d, lambda h: h["model.norm.weight"].update(data_offsets=[1 << 50, (1 << 50) + 128]))
        self.expect_bad(d, "out of range", st)

    def test_hf_unknown_dtype(self):
        d = self.hf_copy("hf_dtype")
        st = self.edit_header(d, lambda h: h["model.norm.weight"].update(dtype="F17"))
        self.expect_bad(d, "unknown dtype 'F17'", st)

    def test_hf_missing_tensor(self):
        d = self.hf_copy("hf_missing")

        def edit(h):
            h["model.layers.1.mlp.upp_proj.weight"] = h.pop("model.layers.1.mlp.up_proj.weight")
        self.edit_header(d, edit)
        self.expect_bad(d, "missing tensor 'model.layers.1.mlp.up_proj.weight'")

    def test_hf_shape_mismatch(self):
        d = self.hf_copy("hf_shape")
        self.edit_header(d, lambda h: h["model.layers.0.mlp.down_proj.weight"].update(shape=[192, 64]))
        self.expect_bad(d, "shape mismatch for tensor 'model.layers.0.mlp.down_proj.weight'")

    def test_hf_unsupported_architecture(self):
        d = self.hf_copy("hf_arch")
        cfg = os.path.join(d, "config.json")
        with open(cfg) as f:
            c = json.load(f)
        c["architectures"], c["model_type"] = ["MistralForCausalLM"], "mistral"
        with open(cfg, "w") as f:
            json.dump(c, f)
        self.expect_bad(d, "unsupported architecture 'MistralForCausalLM'", cfg)


if __name__ == "__main__":
    unittest.main()
