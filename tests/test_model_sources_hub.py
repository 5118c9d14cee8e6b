"""Models from a Hugging Face Hub, through the CLI a user types: `lmstream download` and `serve`
against tests/lmstest/hub_server.py on loopback (a Hub host plus a second "CDN" host for LFS
files). Covers the huggingface_hub cache layout (both ways), HF_HUB_OFFLINE, the token reaching
only the Hub host, revisions by tag and commit, resume after a dropped connection, checksum
failures, stalls, two concurrent downloads, progress on a pseudo-terminal, GGUF selection, and the
gated / missing repo / revision / file / .bin-only messages. Python stdlib only."""
import hashlib
import json
import os
import pty
import select
import shutil
import subprocess
import tempfile
import time
import unittest

from lmstest import Server, binary, cached_model, make_test_model
from lmstest.hub_server import HubServer, git_blob_sha1

TOKEN = "hf_test_token_123"


def sha256_file(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class HubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-hub-test-")
        cls.model_dir = make_test_model(os.path.join(cls.tmp, "tiny"), "hf", "micro", "f32", tokenizer=True,
                                        extra=["--shards", "2"])
        cls.files = {n: os.path.join(cls.model_dir, n) for n in sorted(os.listdir(cls.model_dir))}
        cls.hub = HubServer().start()
        cls.sha_v1 = cls.hub.add_repo("org/tiny", dict(cls.files, **{"README.md": b"first\n"}), tags=["v1"])
        cls.sha_main = cls.hub.add_repo("org/tiny", dict(cls.files, **{"README.md": b"second\n"}))
        cls.hub.add_repo("org/gated", {"config.json": b"{}", "model.safetensors": cls.files[
            "model-00001-of-00002.safetensors"]}, gated_token=TOKEN)
        cls.hub.add_repo("org/binonly", {"config.json": b"{}", "pytorch_model.bin": b"\0" * 100})
        q8 = cached_model("gguf", "micro", "q8_0", tokenizer=True)
        q4 = cached_model("gguf", "micro", "q4_0", tokenizer=True)
        cls.hub.add_repo("org/tiny-GGUF", {"tiny-Q8_0.gguf": q8, "tiny-Q4_0.gguf": q4, "README.md": b"gguf\n"})
        cls.q8 = q8

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, home=None, **extra):
        e = dict(os.environ)
        for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE",
                  "HUGGINGFACE_HUB_CACHE", "HF_MODEL_ID", "HF_MODEL_REVISION", "TRANSFORMERS_OFFLINE"):
            e.pop(k, None)
        e.update(self.hub.env())
        e["HF_HOME"] = home or tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def download(self, *args, env, timeout=120):
        return subprocess.run([binary(), "download"] + list(args), env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def ok(self, r):
        self.assertEqual(r.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr))
        return r.stdout.strip()

    def fails(self, r, *needles):
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)
        return r.stderr

    def generate(self, srv):
        st, _, body = srv.post_json("/generate", {"inputs": "Hello there", "parameters": {
            "max_new_tokens": 12, "do_sample": False, "details": False}})
        self.assertEqual(st, 200, body)
        return json.loads(body)["generated_text"]

    def check_layout(self, cache, repo, commit, names):
        root = os.path.join(cache, "models--" + repo.replace("/", "--"))
        with open(os.path.join(root, "refs", "main")) as f:
            self.assertEqual(f.read(), self.sha_main)
        snap = os.path.join(root, "snapshots", commit)
        for n in names:
            p = os.path.join(snap, n)
            self.assertTrue(os.path.islink(p), p)
            target = os.readlink(p)
            src = self.files[n]
            with open(src, "rb") as f:
                data = f.read()
            blob = hashlib.sha256(data).hexdigest() if n.endswith(".safetensors") else git_blob_sha1(data)
            self.assertEqual(target, "../../blobs/" + blob)
            with open(p, "rb") as f:
                self.assertEqual(f.read(), data)
        leftovers = [b for b in os.listdir(os.path.join(root, "blobs")) if not b.endswith(".lock")]
        self.assertFalse([b for b in leftovers if "incomplete" in b], leftovers)
        return snap

    # --- download, layout, token, serve, offline
    def test_download_serve_offline(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.clear_log()
        r = self.download("org/tiny", env=self.env(home, HF_TOKEN=TOKEN))
        path = self.ok(r)
        cache = os.path.join(home, "hub")
        model_names = [n for n in self.files]
        snap = self.check_layout(cache, "org/tiny", self.sha_main, model_names)
        self.assertEqual(path, snap)
        self.assertFalse(os.path.exists(os.path.join(snap, "README.md")))  # TGI's choice of files
        self.assertIn("check=size,sha256", r.stderr)
        self.assertIn("check=size,git-sha1", r.stderr)
        log = list(self.hub.requests)
        hub_reqs = [x for x in log if x["server"] == "hub"]
        cdn_reqs = [x for x in log if x["server"] == "cdn"]
        self.assertTrue(hub_reqs and cdn_reqs)
        self.assertTrue(all(x["authorization"] == "Bearer " + TOKEN for x in hub_reqs), hub_reqs)
        self.assertTrue(all(x["authorization"] is None for x in cdn_reqs), cdn_reqs)
        heads = [x for x in hub_reqs if x["method"] == "HEAD"]
        self.assertTrue(heads and all(x["accept_encoding"] == "identity" for x in heads))
        self.assertTrue(all("/resolve/%s/" % self.sha_main in x["path"] for x in heads))  # pinned to the commit

        # The same model from the Hub (HF_MODEL_ID) and from the local directory: same text.
        with Server(model="", env=dict(self.env(home), HF_MODEL_ID="org/tiny")) as s:
            hub_text = self.generate(s)
            st, _, body = s.request("GET", "/info")
            self.assertEqual(json.loads(body)["model_id"], "org/tiny")
        with Server(model=self.model_dir) as s:
            self.assertEqual(self.generate(s), hub_text)

        # A second start offline makes no request at all.
        n = self.hub.count()
        with Server(model="org/tiny", env=self.env(home, HF_HUB_OFFLINE="1")) as s:
            self.assertEqual(self.generate(s), hub_text)
        # LMI's option.model_id names it too.
        props = os.path.join(home, "serving.properties")
        with open(props, "w") as f:
            f.write("engine=Python\noption.model_id=org/tiny\n")
        with Server(model="", args=["--properties", props], env=self.env(home, HF_HUB_OFFLINE="1")) as s:
            self.assertEqual(self.generate(s), hub_text)
            self.assertIn("model org/tiny revision main from the cache (offline)", s.read_log())
        self.assertEqual(self.hub.count(), n)
        r = self.download("org/nothere", env=self.env(home, HF_HUB_OFFLINE="1"))
        self.fails(r, "HF_HUB_OFFLINE", "org/nothere", "not in the cache")
        self.assertEqual(self.hub.count(), n)

    def test_hand_made_cache_is_used_as_is(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        root = os.path.join(home, "hub", "models--someone--handmade")
        commit = "0123456789abcdef0123456789abcdef01234567"
        os.makedirs(os.path.join(root, "refs"))
        os.makedirs(os.path.join(root, "blobs"))
        os.makedirs(os.path.join(root, "snapshots", commit))
        with open(os.path.join(root, "refs", "main"), "w") as f:
            f.write(commit)
        for n, src in self.files.items():
            with open(src, "rb") as f:
                data = f.read()
            etag = hashlib.sha256(data).hexdigest() if n.endswith(".safetensors") else git_blob_sha1(data)
            shutil.copy(src, os.path.join(root, "blobs", etag))
            os.symlink("../../blobs/" + etag, os.path.join(root, "snapshots", commit, n))
        n0 = self.hub.count()
        path = self.ok(self.download("someone/handmade", env=self.env(home, HF_HUB_OFFLINE="1")))
        self.assertEqual(path, os.path.join(root, "snapshots", commit))
        # The cache is found through HF_HUB_CACHE too, and the model runs from it.
        r = subprocess.run([binary(), "generate", "--model", "someone/handmade", "--prompt", "Hello", "-n", "4",
                            "--threads", "1"],
                           env=self.env(tempfile.mkdtemp(dir=self.tmp), HF_HUB_OFFLINE="1",
                                        HF_HUB_CACHE=os.path.join(home, "hub")),
                           capture_output=True, text=True, timeout=120)
        self.ok(r)
        self.assertEqual(self.hub.count(), n0)

    def test_revision_by_tag_and_commit(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        p1 = self.ok(self.download("org/tiny", "--revision", "v1", "--include", "README.md", env=self.env(home)))
        self.assertTrue(p1.endswith("/snapshots/" + self.sha_v1), p1)
        with open(os.path.join(p1, "README.md")) as f:
            self.assertEqual(f.read(), "first\n")
        with open(os.path.join(home, "hub", "models--org--tiny", "refs", "v1")) as f:
            self.assertEqual(f.read(), self.sha_v1)
        p2 = self.ok(self.download("org/tiny", "--include", "README.md", env=self.env(home, HF_MODEL_REVISION=self.sha_v1)))
        self.assertEqual(p2, p1)
        p3 = self.ok(self.download("org/tiny", "--include", "README.md", env=self.env(home)))
        self.assertTrue(p3.endswith("/snapshots/" + self.sha_main))
        with open(os.path.join(p3, "README.md")) as f:
            self.assertEqual(f.read(), "second\n")

    def test_local_dir(self):
        d = os.path.join(self.tmp, "local-out")
        p = self.ok(self.download("org/tiny", "--local-dir", d, env=self.env()))
        self.assertEqual(p, d)
        for n, src in self.files.items():
            self.assertEqual(sha256_file(os.path.join(d, n)), sha256_file(src))
        n0 = self.hub.count("cdn")
        self.ok(self.download("org/tiny", "--local-dir", d, env=self.env()))
        self.assertEqual(self.hub.count("cdn"), n0)  # already there: nothing fetched again

    def test_renamed_repo_and_server_errors_retried(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.renames["oldorg/tiny"] = "org/tiny"
        self.hub.clear_log()
        self.hub.fail_next = 2
        try:
            r = self.download("oldorg/tiny", env=self.env(home, LMSTREAM_DOWNLOAD_CONNECTIONS=1))
        finally:
            self.hub.renames.clear()
            self.hub.fail_next = 0
        path = self.ok(r)
        # Cached under the name asked for, as huggingface_hub does.
        self.assertEqual(path, os.path.join(home, "hub", "models--oldorg--tiny", "snapshots", self.sha_main))
        for n, src in self.files.items():
            self.assertEqual(sha256_file(os.path.join(path, n)), sha256_file(src))
        heads = [x["path"] for x in self.hub.requests if x["method"] == "HEAD"]
        self.assertTrue(any(p.startswith("/oldorg/tiny/resolve/") for p in heads), heads)
        self.assertTrue(any(p.startswith("/org/tiny/resolve/") for p in heads), heads)
        self.assertEqual(r.stderr.count("HTTP 503"), 2, r.stderr)
        self.assertIn("retrying", r.stderr)

    # --- faults
    def test_dropped_connection_resumes_and_verifies(self):
        shard = "model-00002-of-00002.safetensors"
        want = sha256_file(self.files[shard])
        # In one run: the connection drops mid-part; the retry asks for the rest of that part.
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.clear_log()
        self.hub.drop_once_after = 600_000  # only the 1 MiB parts of the shards are that long
        r = self.download("org/tiny", env=self.env(home, LMSTREAM_DOWNLOAD_PART_SIZE="1MiB",
                                                   LMSTREAM_DOWNLOAD_CONNECTIONS=1))
        snap = self.ok(r)
        self.assertIsNone(self.hub.drop_once_after)
        self.assertIn("retrying from byte", r.stderr)
        ranges = [x["range"] for x in self.hub.requests if x["server"] == "cdn"]
        self.assertIn("bytes=600000-1048575", ranges)
        self.assertEqual(sha256_file(os.path.join(snap, shard)), want)

        # Across runs: no retries, so the first run fails and leaves its parts; the second resumes.
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.drop_once_after = 3 * 1048576 + 5000
        env = self.env(home, LMSTREAM_DOWNLOAD_PART_SIZE="1MiB", LMSTREAM_DOWNLOAD_CONNECTIONS=1,
                       LMSTREAM_DOWNLOAD_RETRIES=0)
        # Only the big files go through the CDN; drop the first shard's 4th part.
        self.hub.drop_once_after = None
        self.ok(self.download("org/tiny", "--include", "*.json", "--include", "tokenizer.model", env=env))
        self.hub.clear_log()
        self.hub.drop_once_after = None
        orig_rate = self.hub.rate
        # Drop after three whole parts: the 1 MiB parts are separate GETs, so arm it on the 4th.
        seen = []

        def arm():
            while len([x for x in self.hub.requests if x["server"] == "cdn"]) < 4:
                time.sleep(0.002)
        self.hub.rate = 8 << 20  # slow enough to arm the fault between parts
        import threading
        t = threading.Thread(target=lambda: (arm(), setattr(self.hub, "drop_once_after", 1000)))
        t.start()
        r1 = self.download("org/tiny", env=env)
        t.join()
        self.hub.rate = orig_rate
        self.fails(r1, "gave up after 1 tries")
        blobs = os.path.join(home, "hub", "models--org--tiny", "blobs")
        self.assertTrue([b for b in os.listdir(blobs) if b.endswith(".incomplete")], os.listdir(blobs))
        self.hub.clear_log()
        r2 = self.download("org/tiny", env=dict(env, LMSTREAM_DOWNLOAD_RETRIES="3"))
        snap = self.ok(r2)
        self.assertIn("resuming", r2.stderr)
        first_cdn = [x["range"] for x in self.hub.requests if x["server"] == "cdn"][0]
        self.assertNotEqual(first_cdn, "bytes=0-1048575")  # the finished parts are not fetched again
        for n, src in self.files.items():
            self.assertEqual(sha256_file(os.path.join(snap, n)), sha256_file(src))
        self.assertFalse([b for b in os.listdir(blobs) if "incomplete" in b])

    def test_server_without_ranges(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.ignore_range = True
        try:
            r = self.download("org/tiny", env=self.env(home, LMSTREAM_DOWNLOAD_PART_SIZE="1MiB"))
        finally:
            self.hub.ignore_range = False
        snap = self.ok(r)
        self.assertIn("the server ignores Range; fetching it whole", r.stderr)
        for n, src in self.files.items():
            self.assertEqual(sha256_file(os.path.join(snap, n)), sha256_file(src))

    def test_corrupted_bytes_fail_the_checksum(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        shard = "model-00001-of-00002.safetensors"
        sha = sha256_file(self.files[shard])
        self.hub.corrupt.add(sha)
        try:
            r = self.download("org/tiny", env=self.env(home))
        finally:
            self.hub.corrupt.discard(sha)
        self.fails(r, "checksum mismatch for " + shard, "sha256 expected " + sha)
        root = os.path.join(home, "hub", "models--org--tiny")
        self.assertFalse(os.path.exists(os.path.join(root, "blobs", sha)))
        self.assertFalse(os.path.lexists(os.path.join(root, "snapshots", self.sha_main, shard)))
        self.assertFalse([b for b in os.listdir(os.path.join(root, "blobs")) if "incomplete" in b])
        self.ok(self.download("org/tiny", env=self.env(home)))  # and a clean server heals it
        self.assertEqual(sha256_file(os.path.join(root, "blobs", sha)), sha)

    def test_stall_times_out_and_serve_is_503_meanwhile(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.stall_after, self.hub.stall_seconds = 100_000, 20
        try:
            t0 = time.monotonic()
            r = self.download("org/tiny", env=self.env(home, HF_HUB_DOWNLOAD_TIMEOUT=1, LMSTREAM_DOWNLOAD_RETRIES=1))
            took = time.monotonic() - t0
            self.fails(r, "without a byte", "gave up after 2 tries")
            self.assertLess(took, 15)
            # serve: /ping is 503 while downloading; MODEL_LOADING_TIMEOUT ends the attempt.
            s = Server(model="org/tiny", env=self.env(home, MODEL_LOADING_TIMEOUT=3, HF_HUB_DOWNLOAD_TIMEOUT=60))
            s.start(wait=False)
            try:
                saw = None
                t0 = time.monotonic()
                while time.monotonic() - t0 < 2.5 and saw is None:
                    try:
                        saw = s.request("GET", "/ping", timeout=1)[0]
                        h = s.request("GET", "/health", timeout=1)[0]
                    except OSError:
                        time.sleep(0.05)
                self.assertEqual(saw, 503)
                self.assertEqual(h, 503)
                rc = s.proc.wait(timeout=30)
                self.assertNotEqual(rc, 0)
                self.assertIn("did not download and load within model_loading_timeout (3 s", s.read_log())
            finally:
                s.__exit__(None, None, None)
            # LMSTREAM_DOWNLOAD_TIMEOUT (the control plane's ModelDataDownloadTimeoutInSeconds)
            # cancels the download itself, with its own message.
            s = Server(model="org/tiny", env=self.env(home, LMSTREAM_DOWNLOAD_TIMEOUT=2, HF_HUB_DOWNLOAD_TIMEOUT=60))
            s.start(wait=False)
            try:
                t0 = time.monotonic()
                rc = s.proc.wait(timeout=30)
                self.assertNotEqual(rc, 0)
                self.assertLess(time.monotonic() - t0, 15)
                self.assertIn("did not download within 2 s (LMSTREAM_DOWNLOAD_TIMEOUT", s.read_log())
            finally:
                s.__exit__(None, None, None)
        finally:
            self.hub.stall_after = None

    def test_two_concurrent_downloads_make_one_cache(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.clear_log()
        self.hub.rate = 6 << 20
        env = self.env(home, LMSTREAM_DOWNLOAD_PART_SIZE="1MiB", LMSTREAM_DOWNLOAD_CONNECTIONS=4)
        try:
            procs = [subprocess.Popen([binary(), "download", "org/tiny"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
            outs = [p.communicate(timeout=120) for p in procs]
        finally:
            self.hub.rate = None
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(outs[0][0], outs[1][0])
        self.check_layout(os.path.join(home, "hub"), "org/tiny", self.sha_main, list(self.files))
        # Each shard's bytes crossed the wire once.
        cdn = [x["range"] for x in self.hub.requests if x["server"] == "cdn"]
        fetched = sum(int(b) - int(a) + 1 for a, b in (r[len("bytes="):].split("-") for r in cdn))
        shards = sum(os.path.getsize(p) for n, p in self.files.items() if n.endswith(".safetensors"))
        self.assertEqual(fetched, shards, cdn)

    def test_progress_bar_on_a_terminal(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.hub.rate = 8 << 20
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([binary(), "download", "org/tiny"], env=self.env(home, LMSTREAM_DOWNLOAD_CONNECTIONS=1),
                                 stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
            os.close(slave)
            buf = b""
            while True:
                rd, _, _ = select.select([master], [], [], 60)
                if not rd:
                    break
                try:
                    b = os.read(master, 65536)
                except OSError:
                    break
                if not b:
                    break
                buf += b
            out = p.stdout.read().decode()
            p.stdout.close()
            p.wait(timeout=60)
        finally:
            self.hub.rate = None
            os.close(master)
        self.assertEqual(p.returncode, 0, buf.decode(errors="replace"))
        text = buf.decode(errors="replace")
        self.assertIn("\r", text)
        self.assertRegex(text, r"model-00001-of-00002\.safetensors \[#+-*\] +\d+% [\d.]+ [KM]iB/[\d.]+ MiB "
                               r"[\d.]+ [KM]?i?B/s ETA [\d:?]+ \| total \d/\d+ files")
        self.assertTrue(out.strip().endswith(self.sha_main))

    # --- GGUF and the error messages
    def test_gguf_choice(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        p = self.ok(self.download("org/tiny-GGUF:Q8_0", env=self.env(home)))
        self.assertTrue(p.endswith("/tiny-Q8_0.gguf"), p)
        self.assertEqual(sha256_file(p), sha256_file(self.q8))
        p = self.ok(self.download("org/tiny-GGUF", "--gguf-file", "tiny-Q4_0.gguf", env=self.env(home)))
        self.assertTrue(p.endswith("/tiny-Q4_0.gguf"), p)
        self.fails(self.download("org/tiny-GGUF", env=self.env(home)), "several GGUF files",
                   "org/tiny-GGUF:QUANT")
        self.fails(self.download("org/tiny-GGUF:Q2_K", env=self.env(home)), "no GGUF file for quantisation 'Q2_K'")
        self.fails(self.download("org/tiny-GGUF", "--gguf-file", "nope.gguf", env=self.env(home)),
                   "--gguf-file 'nope.gguf' is not a GGUF file of repository 'org/tiny-GGUF'")
        with Server(model="org/tiny-GGUF:Q8_0", env=self.env(home, HF_HUB_OFFLINE=1)) as s:
            with Server(model=self.q8) as ref:
                self.assertEqual(self.generate(s), self.generate(ref))

    def test_error_messages(self):
        home = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        self.fails(self.download("org/gated", env=self.env(home)),
                   "cannot access gated repository 'org/gated'", "HTTP 401", "Set HF_TOKEN (or HUGGING_FACE_HUB_TOKEN)",
                   "You must be authenticated")
        self.fails(self.download("org/gated", env=self.env(home, HF_TOKEN="hf_wrong")),
                   "cannot access gated repository 'org/gated'", "HTTP 403", "has no access")
        self.ok(self.download("org/gated", env=self.env(home, HUGGING_FACE_HUB_TOKEN=TOKEN)))
        home2 = tempfile.mkdtemp(prefix="hfhome-", dir=self.tmp)
        with open(os.path.join(home2, "token"), "w") as f:
            f.write(TOKEN + "\n")
        self.ok(self.download("org/gated", env=self.env(home2)))  # the token file under HF_HOME
        self.fails(self.download("org/missing", env=self.env(home)), "repository 'org/missing' not found",
                   "Check the id")
        self.fails(self.download("org/tiny", "--revision", "nope", env=self.env(home)),
                   "revision 'nope' not found in repository 'org/tiny'", "--revision or HF_MODEL_REVISION")
        self.fails(self.download("org/tiny", "--include", "*.nothing", env=self.env(home)),
                   "no file of repository 'org/tiny' at revision 'main' matches --include *.nothing")
        self.fails(self.download("org/binonly", env=self.env(home)),
                   "'org/binonly' at revision 'main' has only PyTorch .bin weights (pytorch_model.bin)")
        self.hub.ghosts.add(("org/tiny", "config.json"))  # listed, but the file itself is missing
        try:
            self.fails(self.download("org/tiny", env=self.env(home)),
                       "file 'config.json' not found in repository 'org/tiny' at revision '%s'" % self.sha_main,
                       "HTTP 404")
        finally:
            self.hub.ghosts.clear()
        r = subprocess.run([binary(), "serve", "--model", "org/missing", "--port", "0"], env=self.env(home),
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("repository 'org/missing' not found", r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
