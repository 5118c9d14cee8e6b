"""`lmstream invoke` as against real SageMaker: HTTPS through the one libcurl client to a local TLS
server (a TLS-terminating relay in front of `lmstream serve`, its certificate signed by a
self-signed CA made here with openssl), trusted through --ca-bundle or AWS_CA_BUNDLE; SigV4 with
keys from the environment or from an AWS_PROFILE of the shared credentials/config files;
--region alone deriving https://runtime.sagemaker.{region}.amazonaws.com (reached through an
HTTPS_PROXY CONNECT tunnel to the relay, the certificate naming that host); the event stream
decoded; a wrong CA a clear error; --custom-attributes sent on every route and never defaulted.
Python stdlib + the openssl CLI."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from lmstest import Server, binary

N = 10
PROMPT = "Hello"
EP = "tls-ep"
REGION = "eu-west-3"
RUNTIME_HOST = "runtime.sagemaker.%s.amazonaws.com" % REGION
KEY_ID, SECRET = "AKIDTLSTEST", "tls/s3cret+"
CLIENT_ENV_DROP = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                   "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_SHARED_CREDENTIALS_FILE",
                   "AWS_CONFIG_FILE", "LMSTREAM_API_KEY", "http_proxy", "https_proxy", "HTTP_PROXY",
                   "HTTPS_PROXY", "no_proxy", "NO_PROXY", "ALL_PROXY", "all_proxy")


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), r.stderr))


def make_ca_and_cert(d, name):
    """A self-signed CA `name`-ca.pem and a server certificate for 127.0.0.1, localhost and
    RUNTIME_HOST signed by it; returns (ca path, cert path, key path)."""
    ca_key, ca = name + "-ca.key", name + "-ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
            "-subj", "/CN=lmstream test CA %s" % name, cwd=d)
    key, csr, crt = name + ".key", name + ".csr", name + ".pem"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:%s\n" % RUNTIME_HOST)
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days", "2",
            "-extfile", name + ".ext", cwd=d)
    return os.path.join(d, ca), os.path.join(d, crt), os.path.join(d, key)


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Relay:
    """Listens on a loopback port; each connection is relayed to `target` port, TLS-terminated when
    `tls_ctx` is given (the TLS server), or after an HTTP CONNECT (the proxy)."""

    def __init__(self, target, tls_ctx=None, connect_proxy=False):
        self.target, self.ctx, self.proxy = target, tls_ctx, connect_proxy
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connects = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        try:
            if self.proxy:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                self.connects.append(head.split(b"\r\n")[0].decode())
                c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            elif self.ctx:
                c = self.ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()
            return
        u = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        pipe(c, u)

    def close(self):
        self.sock.close()


class InvokeHttpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lms-tls-")
        cls.ca, crt, key = make_ca_and_cert(cls.tmp, "good")
        cls.wrong_ca, _, _ = make_ca_and_cert(cls.tmp, "other")
        cls.server = Server(["--endpoint-name", EP, "--aws-access-key-id", KEY_ID, "--aws-secret-access-key", SECRET,
                             "--region", REGION, "--require-eula"]).start()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        cls.tls = Relay(cls.server.port, tls_ctx=ctx)
        cls.proxy = Relay(cls.tls.port, connect_proxy=True)
        st, _, b = cls.server.post_json("/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": N}})
        assert st == 200, b
        cls.expected = json.loads(b)["generated_text"]
        assert cls.expected

    @classmethod
    def tearDownClass(cls):
        cls.tls.close()
        cls.proxy.close()
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def invoke(self, *args, env=None, keys=True):
        e = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_DROP}
        e["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.tmp, "no-credentials")
        e["AWS_CONFIG_FILE"] = os.path.join(self.tmp, "no-config")
        if keys:
            e.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION=REGION)
        e.update(env or {})
        r = subprocess.run([binary(), "invoke", "--prompt", PROMPT, "--max-new-tokens", str(N)] + list(args),
                           capture_output=True, env=e, timeout=120)
        return r.returncode, r.stdout.decode(), r.stderr.decode("utf-8", "replace")

    def url(self):
        return "https://127.0.0.1:%d" % self.tls.port

    def assert_ok(self, *args, env=None, keys=True):
        rc, out, err = self.invoke(*args, env=env, keys=keys)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, self.expected, err)

    def test_https_signed_event_stream_with_ca_bundle(self):
        eula = ("--custom-attributes", "accept_eula=true")
        self.assert_ok("--endpoint-url", self.url(), "--ca-bundle", self.ca, "--endpoint", EP, "--stream", *eula)
        self.assert_ok("--endpoint-url", self.url(), "--ca-bundle", self.ca, "--endpoint", EP, *eula)
        self.assert_ok("--endpoint-url", self.url(), "--endpoint", EP, "--stream", *eula,
                       env={"AWS_CA_BUNDLE": self.ca})

    def test_wrong_ca_is_a_clear_error(self):
        rc, out, err = self.invoke("--endpoint-url", self.url(), "--ca-bundle", self.wrong_ca, "--endpoint", EP,
                                   "--stream", "--custom-attributes", "accept_eula=true")
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, "")
        self.assertIn("error: TLS with 127.0.0.1", err)
        self.assertIn("trusting the CA bundle '%s'" % self.wrong_ca, err)
        # The system bundle does not trust the test CA either.
        rc, _, err = self.invoke("--endpoint-url", self.url(), "--endpoint", EP, "--stream")
        self.assertNotEqual(rc, 0)
        self.assertIn("trusting the system CA bundle", err)

    def test_region_derives_the_runtime_url_and_profile_keys_sign(self):
        creds = os.path.join(self.tmp, "credentials")
        config = os.path.join(self.tmp, "config")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = AKIDNOTTHISONE\naws_secret_access_key = x\n"
                    "[work]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (KEY_ID, SECRET))
        with open(config, "w") as f:
            f.write("[profile work]\nregion = %s\n" % REGION)
        env = {"AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": config, "AWS_PROFILE": "work",
               "HTTPS_PROXY": "http://127.0.0.1:%d" % self.proxy.port, "https_proxy": "http://127.0.0.1:%d" % self.proxy.port,
               "AWS_CA_BUNDLE": self.ca}
        before = len(self.proxy.connects)
        self.assert_ok("--endpoint", EP, "--stream", "--custom-attributes", "accept_eula=true", env=env, keys=False)
        self.assertEqual(self.proxy.connects[before:], ["CONNECT %s:443 HTTP/1.1" % RUNTIME_HOST])
        # --region on the command line, keys from --profile.
        env.pop("AWS_PROFILE")
        self.assert_ok("--endpoint", EP, "--region", REGION, "--profile", "work", "--custom-attributes",
                       "accept_eula=true", env=env, keys=False)
        # The default profile's keys are not the server's: a clear 403.
        rc, _, err = self.invoke("--endpoint", EP, "--region", REGION, "--custom-attributes", "accept_eula=true",
                                 env=env, keys=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("HTTP 403", err)
        # The server checks the region of the signature's scope.
        rc, _, err = self.invoke("--endpoint-url", self.url(), "--ca-bundle", self.ca, "--endpoint", EP,
                                 "--region", "us-east-1", "--custom-attributes", "accept_eula=true")
        self.assertNotEqual(rc, 0)
        self.assertIn("HTTP 403", err)
        # No endpoint URL and no region: told what to give.
        rc, _, err = self.invoke("--endpoint", EP, keys=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("give --endpoint-url URL, or --endpoint NAME with a region", err)
        rc, _, err = self.invoke("--endpoint", EP, "--profile", "missing", keys=False)
        self.assertIn("AWS profile 'missing' (--profile) is in neither", err)

    def test_custom_attributes_on_every_route_never_defaulted(self):
        http = "http://127.0.0.1:%d" % self.server.port
        for route in ((), ("--stream",), ("--endpoint", EP), ("--endpoint", EP, "--stream")):
            rc, _, err = self.invoke("--endpoint-url", http, *route)
            self.assertNotEqual(rc, 0, route)
            self.assertIn("accept_eula=true", err, route)  # the licence gate's message
            self.assert_ok("--endpoint-url", http, "--custom-attributes", "accept_eula=true", *route)


if __name__ == "__main__":
    unittest.main()
