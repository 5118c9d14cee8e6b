# interpreter: /usr/bin/python3
"""`lmstream tokenize` against Debian's python3-sentencepiece on the Llama-2 tokenizer, for a model
written in both formats (GGUF: embedded vocabulary; HF: tokenizer.model), with and without BOS,
and with --parse-special."""
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import sentencepiece as spm
except ImportError:  # reported as a failure in setUpClass
    spm = None

from lmstest import SANITIZED, binary_path, cached_model, tokenizer_path

BINARY = binary_path()
TOKENIZER = tokenizer_path(required=False)


def corpus(n):
    """n deterministic, varied strings (valid UTF-8: the oracle takes str)."""
    fixed = ["", " ", "  ", "\n", "\t", "Hello world", " Hello world", "Hello world ", "a  b   c",
             "line one\nline two\n\n", "</s>", "<s>", "<unk>", "<0x0A>", "\u2581", "\u2581x\u2581",
             "caf\u00e9", "cafe\u0301", "\u4f60\u597d\uff0c\u4e16\u754c", "\u3053\u3093\u306b\u3061\u306f",
             "\U0001F600", "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466",
             "\U0001F1EF\U0001F1F5", "x" * 300, "def f(x):\n    return x ** 2\n", "3.14159 1,000,000",
             "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440", "\x00nul", "\ufffd", "\U0010FFFF",
             "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"]
    rng = random.Random(1234)
    words = ("the of and to in is that for it as was with be by on not this are or from at which but "
             "Hello World Llama tokenizer streaming don't O'Brien e.g. unbelievable").split()
    pieces = [lambda: rng.choice(words), lambda: " " + rng.choice(words), lambda: rng.choice(".,!?;:()[]{}<>/\\\"'-_=+*&#@%$"),
              lambda: rng.choice([" ", "  ", "\n", "\t", "\n\n", " \n", "    "]),
              lambda: str(rng.randrange(100000)),
              lambda: rng.choice(["<s>", "</s>", "<unk>", "<0x0A>", "\u2581", "[INST]"]),
              lambda: "".join(chr(rng.randrange(*r)) for r in [rng.choice(
                  [(0xC0, 0x180), (0x300, 0x370), (0x410, 0x450), (0x4E00, 0xA000), (0xAC00, 0xD7A4),
                   (0x3041, 0x3097), (0x1F600, 0x1F650), (0x20000, 0x2A6E0), (0x600, 0x6FF)])] * rng.randrange(1, 4)),
              lambda: "\U0001F469\u200d\U0001F4BB" if rng.random() < 0.5 else "\U0001F44D\U0001F3FD"]
    out = list(fixed)
    while len(out) < n:
        out.append("".join(rng.choice(pieces)() for _ in range(rng.randrange(1, 15))))
    return out[:n]


class TokenizeCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = []
        if spm is None:
            missing.append("python module sentencepiece (Debian python3-sentencepiece)")
        if not BINARY or not os.path.isfile(BINARY):
            missing.append("LMSTREAM_BINARY (the lmstream executable), got %r" % BINARY)
        if not os.path.isfile(TOKENIZER):
            missing.append("the Llama-2 tokenizer at %s" % TOKENIZER)
        if missing:
            raise RuntimeError("cannot run: missing " + "; ".join(missing))
        cls.sp = spm.SentencePieceProcessor(model_file=TOKENIZER)
        cls.tmp = tempfile.mkdtemp(prefix="lms-tok-")
        cls.models = {}
        for fmt in ("gguf", "hf"):
            cls.models[fmt] = cached_model(fmt, "micro", "f32", tokenizer=TOKENIZER)  # read-only

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def tokenize(self, model, text, *flags):
        r = subprocess.run([BINARY, "tokenize", "--model", model, *flags], input=text.encode("utf-8"),
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            return "exit %d: %s" % (r.returncode, r.stderr.decode("utf-8", "replace"))
        out = r.stdout.decode()
        self.assertTrue(out.endswith("\n") and out.count("\n") == 1, "not one line: %r" % out)
        return json.loads(out)

    def compare(self, cases):
        """cases: (format, text, flags, expected ids); all run, then every mismatch reported."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(lambda c: self.tokenize(self.models[c[0]], c[1], *c[2]), cases))
        bad = ["%s %s %r: want %s got %s" % (c[0], " ".join(c[2]), c[1][:80], c[3], g)
               for c, g in zip(cases, got) if g != c[3]]
        self.assertFalse(bad, "%d of %d differ:\n%s" % (len(bad), len(cases), "\n".join(bad[:10])))

    def test_matches_sentencepiece(self):
        texts = corpus(50 if SANITIZED else 150)
        cases = []
        for fmt in ("gguf", "hf"):
            for i, t in enumerate(texts):
                ids = self.sp.encode(t)
                cases.append((fmt, t, (), [self.sp.bos_id()] + ids))
                if i % 5 == 0:
                    cases.append((fmt, t, ("--no-bos",), ids))
        self.compare(cases)

    def test_parse_special(self):
        cases = []
        for fmt in ("gguf", "hf"):
            cases += [
                # Every piece of text on its own, with the dummy prefix (TGI's tokenizer.json does so).
                (fmt, "<s>Hello", ("--parse-special", "--no-bos"), [1] + self.sp.encode("Hello")),
                (fmt, "<s>[INST] hi [/INST]", ("--parse-special", "--no-bos"), [1] + self.sp.encode("[INST] hi [/INST]")),
                (fmt, "Hello</s>", ("--parse-special",), [1] + self.sp.encode("Hello") + [2]),
                (fmt, "Hi</s><unk> world", ("--parse-special", "--no-bos"),
                 self.sp.encode("Hi") + [2, 0] + self.sp.encode(" world")),
                (fmt, "Hello</s>", (), [1] + self.sp.encode("Hello</s>")),
            ]
        self.compare(cases)

    def test_bad_model_is_a_clear_error(self):
        r = subprocess.run([BINARY, "tokenize", "--model", os.path.join(self.tmp, "nope.gguf")],
                           input=b"hi", capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(r.stderr.decode().startswith("error: "), r.stderr)
        self.assertIn("nope.gguf", r.stderr.decode())
        self.assertEqual(r.stdout, b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
