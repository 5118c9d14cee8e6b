# Models from S3 and from model.tar.gz archives, through the CLI a user types, against moto's S3
# server started here on loopback (pyenv python3: boto3 + moto). boto3 uploads (a) a model.tar.gz
# holding a Hugging Face model directory and a serving.properties, (b) a GGUF object, (c) a
# prefix of loose files, (d) a model.tar.gz holding only a serving.properties whose
# option.model_id points to that prefix (the seed's LMI flow). `serve --model s3://...` and
# `HF_MODEL_ID=s3://... serve` must serve each with the same greedy text as the model served from
# its local path; a second start must fetch nothing (moto's request log says so); a local
# model.tar.gz serves too. Failures exit with their own message: a wrong secret, an unknown key id
# and a key without permission (on a second moto with signature checking on), a missing key, a
# missing bucket, and a '../' archive entry.
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import urllib.request

import boto3
from botocore.config import Config

from lmstest import Server, binary, cached_model, free_port, micro_model

KEY, SECRET = "AKIDEXAMPLE", "moto-does-not-check-this"
PROMPT = "The quick brown fox"


def start_moto(tmp, name, env=None):
    port = free_port()
    e = dict(os.environ)
    e.update(env or {})
    with open(os.path.join(tmp, name + ".log"), "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=e)
    url = "http://127.0.0.1:%d" % port
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError("moto exited: " + open(log.name, errors="replace").read())
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            return proc, url, log.name
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("moto did not start")


def s3_client(url, key=KEY, secret=SECRET):
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def generate(server):
    st, _, body = server.request("POST", "/generate", json.dumps(
        {"inputs": PROMPT, "parameters": {"max_new_tokens": 12, "do_sample": False}}),
        {"Content-Type": "application/json"})
    assert st == 200, (st, body)
    return json.loads(body)["generated_text"]


def tar_dir(path, src, extra=None, top=None):
    """A gzip'd tar of src's files at its root (or under top/), plus extra {name: bytes}."""
    with tarfile.open(path, "w:gz") as t:
        for name in sorted(os.listdir(src)):
            t.add(os.path.join(src, name), arcname=name if top is None else top + "/" + name)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


class S3Models(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        binary()
        cls.tmp = tempfile.mkdtemp(prefix="lms_s3_models_")
        cls.moto, cls.url, cls.moto_log = start_moto(cls.tmp, "moto")
        cls.hf = cached_model("hf", "micro", "f16", tokenizer=True)
        cls.gguf = micro_model()
        s3 = s3_client(cls.url)
        s3.create_bucket(Bucket="models")
        props = b"engine=Python\noption.model_id=/opt/ml/model\noption.max_rolling_batch_size=8\n"
        cls.archive = tar_dir(os.path.join(cls.tmp, "model.tar.gz"), cls.hf, {"serving.properties": props})
        s3.upload_file(cls.archive, "models", "lmi/model.tar.gz")
        s3.upload_file(cls.gguf, "models", "gguf/micro-q8_0.gguf")
        for name in sorted(os.listdir(cls.hf)):
            s3.upload_file(os.path.join(cls.hf, name), "models", "loose/llama/" + name)
        s3.put_object(Bucket="models", Key="loose/llama/", Body=b"")  # a console "folder" key
        for name in sorted(os.listdir(cls.hf)):  # one directory below the prefix (DJL's rule)
            s3.upload_file(os.path.join(cls.hf, name), "models", "nested/chat_llama2/" + name)
        pointer = os.path.join(cls.tmp, "pointer.tar.gz")
        with tarfile.open(pointer, "w:gz") as t:
            data = b"engine=Python\noption.model_id=s3://models/loose/llama/\n"
            info = tarfile.TarInfo("chat_llama2/serving.properties")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        s3.upload_file(pointer, "models", "pointer/model.tar.gz")
        with Server(model=cls.hf) as s:
            cls.hf_text = generate(s)
        with Server(model=cls.gguf) as s:
            cls.gguf_text = generate(s)

    @classmethod
    def tearDownClass(cls):
        cls.moto.terminate()
        cls.moto.wait(timeout=10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, cache, url=None, secret=SECRET, key=KEY):
        return {"AWS_ENDPOINT_URL_S3": url or self.url, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_REGION": "us-east-1", "LMSTREAM_CACHE": os.path.join(self.tmp, cache),
                "HOME": self.tmp, "AWS_PROFILE": ""}

    def serve_text(self, spec, cache, via_env=False):
        if via_env:
            s = Server(model="", env=dict(self.env(cache), HF_MODEL_ID=spec))
        else:
            s = Server(model=spec, env=self.env(cache))
        with s:
            text = generate(s)
            log = s.read_log()
        return text, log

    def moto_requests(self):
        with open(self.moto_log, errors="replace") as f:
            return [l for l in f.read().splitlines() if '"GET /' in l or '"HEAD /' in l]

    def test_archive_object_with_serving_properties(self):
        text, log = self.serve_text("s3://models/lmi/model.tar.gz", "c-archive")
        self.assertEqual(text, self.hf_text)
        self.assertIn("option.model_id=/opt/ml/model is not a path here", log)
        # The archive was unpacked into the cache, and the .tar.gz itself not kept.
        found = [r for r, _, fs in os.walk(os.path.join(self.tmp, "c-archive")) if "config.json" in fs]
        self.assertEqual(len(found), 1, found)
        self.assertTrue(os.path.isfile(os.path.join(found[0], "serving.properties")))
        self.assertFalse(any(f.endswith(".tar.gz") for _, _, fs in os.walk(os.path.join(self.tmp, "c-archive"))
                             for f in fs))

    def test_gguf_object_via_hf_model_id_and_second_start_fetches_nothing(self):
        text, _ = self.serve_text("s3://models/gguf/micro-q8_0.gguf", "c-gguf", via_env=True)
        self.assertEqual(text, self.gguf_text)
        before = len(self.moto_requests())
        text2, log = self.serve_text("s3://models/gguf/micro-q8_0.gguf", "c-gguf")
        self.assertEqual(text2, self.gguf_text)
        again = self.moto_requests()[before:]
        self.assertTrue(again, "no request at all: the ETag was not checked")
        self.assertFalse([l for l in again if '"GET /' in l], again)  # one HEAD, no GET

    def test_prefix_of_loose_files_with_and_without_slash(self):
        text, _ = self.serve_text("s3://models/loose/llama/", "c-prefix")
        self.assertEqual(text, self.hf_text)
        before = len(self.moto_requests())
        text2, log = self.serve_text("s3://models/loose/llama", "c-prefix", via_env=True)
        self.assertEqual(text2, self.hf_text)
        self.assertIn("already in the cache", log)
        again = self.moto_requests()[before:]
        # A HEAD of the object 'loose/llama' (none: so it is a prefix), then the listing; no file GET.
        self.assertFalse([l for l in again if '"GET /models/loose/llama/' in l], again)
        # A prefix whose files sit in its one sub-directory.
        text3, _ = self.serve_text("s3://models/nested/", "c-prefix")
        self.assertEqual(text3, self.hf_text)

    def test_serving_properties_pointing_to_a_prefix(self):
        text, log = self.serve_text("s3://models/pointer/model.tar.gz", "c-pointer", via_env=True)
        self.assertEqual(text, self.hf_text)
        self.assertIn("option.model_id=s3://models/loose/llama/", log)

    def test_serving_properties_file_naming_an_s3_object(self):
        # LMI style: no --model, option.model_id in the serving.properties given with --properties.
        props = os.path.join(self.tmp, "lmi-serving.properties")
        with open(props, "w") as f:
            f.write("engine=Python\noption.model_id=s3://models/gguf/micro-q8_0.gguf\n")
        with Server(model="", args=["--properties", props], env=self.env("c-props")) as s:
            self.assertEqual(generate(s), self.gguf_text)

    def download(self, env, *args):
        e = dict(os.environ)
        e.update(env)
        r = subprocess.run([binary(), "download", *args], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, errors="replace", env=e, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout.strip(), r.stderr

    def test_download_multipart_object_in_ranges_and_local_dirs(self):
        # > 8 MiB through boto3's upload_file: a multipart upload, whose ETag is not an MD5.
        big = os.path.join(self.tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(9 << 20))
        s3 = s3_client(self.url)
        s3.upload_file(big, "models", "blobs/big.bin")
        self.assertTrue(s3.head_object(Bucket="models", Key="blobs/big.bin")["ETag"].endswith('-2"'))
        env = dict(self.env("c-dl"), LMSTREAM_DOWNLOAD_PART_SIZE="1MiB", LMSTREAM_DOWNLOAD_CONNECTIONS="4")
        path, err = self.download(env, "s3://models/blobs/big.bin")
        with open(path, "rb") as a, open(big, "rb") as b:
            self.assertTrue(a.read() == b.read(), "downloaded bytes differ")
        self.assertIn("check=size", err)
        self.assertNotIn("md5", err)  # a multipart ETag is no checksum
        gets = [l for l in self.moto_requests() if '"GET /models/blobs/big.bin' in l]
        self.assertGreaterEqual(len(gets), 9, gets)  # one signed ranged GET per 1 MiB part
        # A prefix and an archive into --local-dir: the files land exactly there.
        loose = os.path.join(self.tmp, "local-loose")
        path, _ = self.download(env, "s3://models/loose/llama/", "--local-dir", loose)
        self.assertEqual(path, loose)
        self.assertEqual(sorted(os.listdir(loose)), sorted(os.listdir(self.hf)))
        for name in os.listdir(self.hf):
            with open(os.path.join(loose, name), "rb") as a, open(os.path.join(self.hf, name), "rb") as b:
                self.assertTrue(a.read() == b.read(), name)
        only = os.path.join(self.tmp, "local-only")
        path, _ = self.download(env, "s3://models/loose/llama/", "--include", "*.json", "--local-dir", only)
        self.assertEqual(sorted(os.listdir(only)), sorted(n for n in os.listdir(self.hf) if n.endswith(".json")))
        unpacked = os.path.join(self.tmp, "local-unpacked")
        path, _ = self.download(env, "s3://models/lmi/model.tar.gz", "--local-dir", unpacked)
        self.assertEqual(path, unpacked)
        self.assertTrue(os.path.isfile(os.path.join(unpacked, "config.json")))
        self.assertTrue(os.path.isfile(os.path.join(unpacked, "serving.properties")))

    def test_aws_profile_from_the_shared_files(self):
        # Only AWS_PROFILE: the keys from ~/.aws/credentials, region and endpoint from ~/.aws/config.
        home = os.path.join(self.tmp, "home-profile")
        os.makedirs(os.path.join(home, ".aws"), exist_ok=True)
        with open(os.path.join(home, ".aws", "credentials"), "w") as f:
            f.write("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = x\n"
                    "[moto]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (KEY, SECRET))
        with open(os.path.join(home, ".aws", "config"), "w") as f:
            f.write("[profile moto]\nregion = eu-west-1\nendpoint_url = %s\n" % self.url)
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        e.update({"HOME": home, "AWS_PROFILE": "moto", "LMSTREAM_CACHE": os.path.join(self.tmp, "c-profile")})
        r = subprocess.run([binary(), "download", "s3://models/gguf/micro-q8_0.gguf"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", env=e, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(r.stdout.strip(), "rb") as a, open(self.gguf, "rb") as b:
            self.assertTrue(a.read() == b.read())
        self.assertIn("from " + self.url, r.stderr)
        e["AWS_PROFILE"] = "nosuch"
        r = subprocess.run([binary(), "download", "s3://models/gguf/micro-q8_0.gguf"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", env=e, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("AWS profile 'nosuch' (from AWS_PROFILE) is in neither", r.stderr)

    def test_concurrent_downloads_share_one_cache_entry(self):
        env = self.env("c-concurrent")
        e = dict(os.environ)
        e.update(env)
        procs = [subprocess.Popen([binary(), "download", "s3://models/lmi/model.tar.gz", "--quiet"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=e) for _ in range(3)]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        paths = {out.strip() for out, _ in outs}
        self.assertEqual(len(paths), 1, outs)
        path = paths.pop()
        self.assertEqual(sorted(os.listdir(path)), sorted(os.listdir(self.hf) + ["serving.properties"]))
        for name in os.listdir(self.hf):
            with open(os.path.join(path, name), "rb") as a, open(os.path.join(self.hf, name), "rb") as b:
                self.assertTrue(a.read() == b.read(), name)
        # One model directory, no temporary or partial leftovers beside it.
        entry = os.path.dirname(path)
        self.assertEqual(os.listdir(entry), ["model"])

    def test_local_archive(self):
        text, _ = self.serve_text(self.archive, "c-local")
        self.assertEqual(text, self.hf_text)

    def run_serve(self, env, model="", timeout=60):
        e = dict(os.environ)
        e.pop("HF_MODEL_ID", None)
        e.update(env)
        args = [binary(), "serve", "--host", "127.0.0.1", "--port", str(free_port())]
        if model:
            args += ["--model", model]
        r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                           env=e, timeout=timeout)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        self.assertNotIn("Segmentation", out)
        return out

    def test_missing_key_and_missing_bucket(self):
        out = self.run_serve(self.env("c-err"), "s3://models/gguf/nope.gguf")
        self.assertIn("s3://models/gguf/nope.gguf: no such object in bucket 'models'", out)
        self.assertIn("(NoSuchKey)", out)
        out = self.run_serve(dict(self.env("c-err"), HF_MODEL_ID="s3://no-such-bucket/m/"))
        self.assertIn("bucket 'no-such-bucket' does not exist", out)
        self.assertIn("(NoSuchBucket)", out)

    def test_wrong_secret_with_signature_checking_on(self):
        # moto enforces SigV4 and IAM after the first N actions (reference/model-sources.md §5.6).
        proc, url, _ = start_moto(self.tmp, "moto-auth", {"INITIAL_NO_AUTH_ACTION_COUNT": "7"})
        try:
            boto_env = s3_client(url)
            iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                               aws_secret_access_key=SECRET)
            boto_env.create_bucket(Bucket="models")
            boto_env.upload_file(self.gguf, "models", "gguf/micro-q8_0.gguf")
            iam.create_user(UserName="reader")
            iam.put_user_policy(UserName="reader", PolicyName="s3", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
            k = iam.create_access_key(UserName="reader")["AccessKey"]
            iam.create_user(UserName="nobody")  # no policy: may do nothing
            k2 = iam.create_access_key(UserName="nobody")["AccessKey"]
            good = self.env("c-auth", url, k["SecretAccessKey"], k["AccessKeyId"])
            good["LMSTREAM_DOWNLOAD_PART_SIZE"] = "1MiB"  # several ranged GETs, each signed
            # The right secret works with checking on ...
            with Server(model="s3://models/gguf/micro-q8_0.gguf", env=good) as s:
                self.assertEqual(generate(s), self.gguf_text)
            # ... a wrong one is refused with its own message, and so is an unknown key id.
            out = self.run_serve(dict(good, AWS_SECRET_ACCESS_KEY="wrong", LMSTREAM_CACHE=self.tmp + "/c-auth2"),
                                 "s3://models/gguf/micro-q8_0.gguf")
            self.assertIn("(SignatureDoesNotMatch)", out)
            self.assertIn("the secret key does not belong to access key " + k["AccessKeyId"], out)
            out = self.run_serve(dict(good, AWS_ACCESS_KEY_ID="AKIDNOSUCHKEY", LMSTREAM_CACHE=self.tmp + "/c-auth3"),
                                 "s3://models/gguf/micro-q8_0.gguf")
            self.assertIn("access key AKIDNOSUCHKEY from environment (AWS_ACCESS_KEY_ID) is not known", out)
            # A known key without permission.
            out = self.run_serve(dict(good, AWS_ACCESS_KEY_ID=k2["AccessKeyId"], AWS_SECRET_ACCESS_KEY=k2["SecretAccessKey"],
                                      LMSTREAM_CACHE=self.tmp + "/c-auth4"), "s3://models/gguf/micro-q8_0.gguf")
            self.assertIn("s3://models/gguf/micro-q8_0.gguf: access denied", out)
            self.assertIn("(AccessDenied); the key needs s3:GetObject on the object", out)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    def test_dotdot_archive_entry_is_refused(self):
        evil = os.path.join(self.tmp, "evil.tar.gz")
        tar_dir(evil, self.hf, {"../escaped.txt": b"x"})
        out = self.run_serve(self.env("c-evil"), evil)
        self.assertIn("refusing entry '../escaped.txt': '..' would leave the model directory", out)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "c-evil", "archives", "escaped.txt")))
        for root, _, files in os.walk(os.path.join(self.tmp, "c-evil")):
            self.assertFalse(files, (root, files))  # nothing was written


if __name__ == "__main__":
    unittest.main()
