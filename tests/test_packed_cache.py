"""The packed-weight cache through `lmstream serve` (engine/packed_cache.*), on a private copy of the
micro q8_0 model with LMSTREAM_PACKED_CACHE=on and a fresh LMSTREAM_CACHE: the first start packs
and writes the cache file (log lines), the second maps it ("hit") and gives the same greedy tokens;
a corrupted byte in the payload, a truncated file and a changed model file are each detected (their
own log line), repacked and rewritten, never served; LMSTREAM_PACKED_CACHE=off and the default
(auto: small models are not cached) write nothing; a bad LMSTREAM_PACKED_CACHE value is a clear
error. Python stdlib only."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from lmstest import Server, binary, make_test_model, micro_model

PAYLOAD_OFFSET = 2 << 20  # where the packed matrices start in a cache file


class PackedCacheTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lms-packed-")
        self.model = os.path.join(self.dir, "model.gguf")
        shutil.copyfile(micro_model(), self.model)
        self.cache = os.path.join(self.dir, "cache")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def serve(self, mode="on", wait_written=False):
        """Starts serve, generates greedily, stops it; returns (cache log line, generated text)."""
        env = {"LMSTREAM_CACHE": self.cache, "LMSTREAM_PACKED_CACHE": mode}
        env.pop("LMSTREAM_PACKED_CACHE_DIR", None)
        with Server(model=self.model, env=env) as s:
            st, _, body = s.post_json("/generate", {"inputs": "The capital of France is",
                                                    "parameters": {"max_new_tokens": 12, "do_sample": False}})
            self.assertEqual(st, 200, body)
            text = json.loads(body)["generated_text"]
            if wait_written:
                t0 = time.monotonic()
                while "packed-weight cache: wrote" not in s.read_log() and time.monotonic() - t0 < 30:
                    time.sleep(0.05)
            log = s.read_log()
        m = re.search(r"; packed-weight cache: (.*?); KV pool", log)
        self.assertIsNotNone(m, log)
        return m.group(1), text, log

    def files(self):
        return sorted(glob.glob(os.path.join(self.cache, "packed", "*")))

    def test_hit_corrupt_truncated_stale(self):
        first, text, log = self.serve(wait_written=True)
        self.assertIn("miss", first)
        self.assertIn("no cache file yet", first)
        self.assertIn("packed-weight cache: wrote", log)
        files = self.files()
        self.assertEqual(len(files), 1, files)
        self.assertTrue(files[0].endswith(".lmpack"), files)

        second, text2, _ = self.serve()
        self.assertTrue(second.startswith("hit, mapped " + files[0]), second)
        self.assertEqual(text2, text)

        # One flipped byte in the middle of the payload: a checksum failure, repacked, rewritten.
        size = os.path.getsize(files[0])
        with open(files[0], "r+b") as f:
            f.seek(PAYLOAD_OFFSET + (size - PAYLOAD_OFFSET) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x40]))
        third, text3, log = self.serve(wait_written=True)
        self.assertIn("corrupt (chunk 0 fails its checksum)", third)
        self.assertEqual(text3, text)
        self.assertIn("packed-weight cache: wrote", log)
        fourth, text4, _ = self.serve()
        self.assertTrue(fourth.startswith("hit"), fourth)
        self.assertEqual(text4, text)

        # Truncated.
        with open(files[0], "r+b") as f:
            f.truncate(size - 100)
        fifth, text5, _ = self.serve(wait_written=True)
        self.assertIn("truncated", fifth)
        self.assertEqual(text5, text)
        self.assertTrue(self.serve()[0].startswith("hit"))

        # The model file replaced by another model: stale, never served; what the new model says.
        other = os.path.join(self.dir, "other.gguf")
        make_test_model(other, "gguf", "micro", "q8_0", tokenizer=True, seed=7)
        os.replace(other, self.model)
        sixth, text6, _ = self.serve(wait_written=True)
        self.assertIn("stale", sixth)
        off, text_off, _ = self.serve(mode="off")
        self.assertEqual(off, "off")
        self.assertEqual(text6, text_off)
        self.assertNotEqual(text6, text)
        seventh, text7, _ = self.serve()
        self.assertTrue(seventh.startswith("hit"), seventh)
        self.assertEqual(text7, text_off)
        self.assertEqual(len(self.files()), 1, self.files())

    def test_off_and_auto_write_nothing(self):
        state, _, _ = self.serve(mode="off")
        self.assertEqual(state, "off")
        state, _, _ = self.serve(mode="auto")
        self.assertIn("not used (packed weights under 256 MiB)", state)
        self.assertEqual(self.files(), [])

    def test_bad_setting(self):
        env = dict(os.environ, LMSTREAM_PACKED_CACHE="sometimes", LMSTREAM_CACHE=self.cache)
        r = subprocess.run([binary(), "serve", "--model", self.model, "--port", "0", "--threads", "1"],
                           env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('LMSTREAM_PACKED_CACHE must be on, off or auto, not "sometimes"', r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
