# Generation and batch invariance for every weight type added with the K-quants (Q2_K .. Q6_K,
# Q4_1, Q5_0, Q5_1), through the CLI a user runs: a micro-k model (every matrix width a multiple
# of 256, so every matrix really is of the type) made by `lmstream make-test-model --dtype T`,
# then `lmstream generate --prompts FILE` with 6 prompts of different lengths run one at a time
# (--parallel 1) and all together (--parallel 6). Each request's greedy token ids must be the same
# both ways (a row's matmul result never depends on the batch), and every request must generate
# its max_new_tokens tokens with finite logprobs.
import json
import math
import os
import subprocess
import tempfile
import unittest

from lmstest import binary_path, make_test_model

BINARY = binary_path()
TYPES = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_1", "q5_0", "q5_1")
PROMPTS = ["Hello", "The quick brown fox jumps over the lazy dog", "a", "1 2 3 4 5 6 7 8 9 10",
           "Once upon a time, in a land far away, there lived", "Why?"]
NEW = 10


class KQuantEngine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.prompts = os.path.join(cls.tmp.name, "prompts.txt")
        with open(cls.prompts, "w") as f:
            for p in PROMPTS:
                f.write(json.dumps({"prompt": p, "max_new_tokens": NEW, "ignore_eos": True}) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def generate(self, model, parallel):
        p = subprocess.run([BINARY, "generate", "--model", model, "--prompts", self.prompts, "--jsonl",
                            "--parallel", str(parallel), "--threads", "2"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        ids = {}
        done = {}
        for line in p.stdout.splitlines():
            o = json.loads(line)
            if "finish_reason" in o:
                done[o["request"]] = o
            else:
                ids.setdefault(o["request"], []).append(o["id"])
                self.assertTrue(math.isfinite(o["logprob"]), o)
        self.assertEqual(sorted(done), list(range(len(PROMPTS))), p.stdout[-2000:])
        for r, o in done.items():
            self.assertNotIn("error", o)
            self.assertEqual(o["generated_tokens"], NEW, o)
            self.assertEqual(len(ids[r]), NEW)
        return ids

    def test_generation_and_batch_invariance_per_type(self):
        for t in TYPES:
            with self.subTest(type=t):
                path = os.path.join(self.tmp.name, f"{t}.gguf")
                make_test_model(path, "gguf", shape="micro-k", dtype=t, seed=41)
                solo = self.generate(path, 1)
                batched = self.generate(path, len(PROMPTS))
                self.assertEqual(solo, batched, f"{t}: batched generation differs from solo runs")
                # Not degenerate: the requests do not all produce one repeated token.
                self.assertGreater(len({i for r in solo.values() for i in r}), 1, t)


if __name__ == "__main__":
    unittest.main()
