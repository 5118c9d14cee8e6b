"""The CLI and the logs explain themselves: one version (`lmstream --version` = /info's version =
invoke's User-Agent), `lmstream help [COMMAND]`, an unknown command answered with the closest
names, `-m` for --model, `serve --host localhost`, a rejected request's reason in the access
log, a 413 stating the limit, `Allow` on a 405, and counters typed as counters in /metrics.
Python stdlib only."""
import json
import re
import subprocess
import unittest

from lmstest import SANITIZED, Server, binary, free_port, micro_model


def run(*args):
    r = subprocess.run([binary()] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


class CliTest(unittest.TestCase):
    def test_help_and_unknown_commands(self):
        rc, out, _ = run("help")
        self.assertEqual(rc, 0)
        for c in ("serve", "invoke", "generate", "tokenize", "make-test-model"):
            self.assertIn(c, out)
        rc, out, _ = run("help", "serve")
        self.assertEqual(rc, 0)
        self.assertIn("--max-concurrent-requests", out)
        rc, out, err = run("serv")
        self.assertEqual(rc, 2)
        self.assertIn("error: unknown command 'serv'; did you mean 'serve'?", err)
        self.assertIn("commands: ", err)
        rc, _, err = run("frobnicate")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command 'frobnicate'", err)
        self.assertNotIn("did you mean", err)
        rc, _, err = run("help", "nope")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command 'nope'", err)

    def test_short_model_flag(self):
        p = subprocess.run([binary(), "tokenize", "-m", micro_model()], input="Hello", capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("[1,"), p.stdout)


class ServeLogsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(["-m", micro_model(), "--endpoint-name", "ep"], model="", env={"PAYLOAD_LIMIT": "2000"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_one_version(self):
        rc, out, _ = run("--version")
        self.assertEqual(rc, 0)
        version = out.strip().split()[-1]
        self.assertRegex(version, r"^\d+\.\d+\.\d+$")
        st, _, b = self.s.request("GET", "/info")
        self.assertEqual(json.loads(b)["version"], version)

    def test_rejected_reason_in_access_log(self):
        st, _, _ = self.s.post_json("/generate", {"inputs": "Hi", "parameters": {"temperature": -1}})
        self.assertEqual(st, 422)
        st, _, _ = self.s.post_json("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                             "tools": []})
        self.assertEqual(st, 400)
        # Each line is written when its own exchange ends, on whichever I/O thread served it, so
        # lines of two connections may land in either order: wait for both.
        entries = self.s.access_log_until(
            lambda es: any(e["path"] == "/v1/chat/completions" and e["status"] == 400 for e in es)
            and any(e["path"] == "/generate" and e["status"] == 422 for e in es))
        gen = [e for e in entries if e["path"] == "/generate" and e["status"] == 422]
        self.assertTrue(gen, entries)
        self.assertEqual(gen[-1]["error"],
                         "validation: Input validation error: `temperature` must be strictly positive")
        chat = [e for e in entries if e["path"] == "/v1/chat/completions" and e["status"] == 400]
        self.assertIn("`tools` is not supported", chat[-1]["error"])
        ok = [e for e in entries if e["status"] == 200 and e["path"] != "/info"]
        self.assertTrue(all("error" not in e for e in ok), ok)

    def test_every_refusal_has_a_reason_in_the_access_log(self):
        # Refusals no route handler names itself: the reader's 413, the route table's 404 and
        # 405, /tokenize's bad body; each access line with a status >= 400 says why.
        self.assertEqual(self.s.post_json("/generate", {"inputs": "x" * 5000})[0], 413)
        self.assertEqual(self.s.request("GET", "/no-such-route")[0], 404)
        self.assertEqual(self.s.request("GET", "/generate")[0], 405)
        st, _, _ = self.s.request("POST", "/tokenize", b"{not json", {"Content-Type": "application/json"})
        self.assertGreaterEqual(st, 400)
        want = (("/generate", 413), ("/no-such-route", 404), ("/generate", 405), ("/tokenize", st))
        entries = self.s.access_log_until(
            lambda es: all(any(e["path"] == p and e["status"] == s for e in es) for p, s in want))
        refused = [e for e in entries if e["status"] >= 400]
        for path, status in want:
            hits = [e for e in refused if e["path"] == path and e["status"] == status]
            self.assertTrue(hits, (path, status, entries))
        for e in refused:
            self.assertTrue(e.get("error"), e)
            self.assertNotIn("{", e["error"][:1], e)  # the message, not the JSON body
        self.assertIn("2000", [e for e in refused if e["status"] == 413][-1]["error"])

    def test_413_states_the_limit(self):
        st, _, b = self.s.post_json("/generate", {"inputs": "x" * 5000})
        self.assertEqual(st, 413)
        self.assertIn("limited to 2000 bytes (PAYLOAD_LIMIT)", b.decode())

    def test_405_has_allow(self):
        st, h, _ = self.s.request("GET", "/generate")
        self.assertEqual(st, 405)
        self.assertEqual(h.get("Allow"), "POST")
        st, h, _ = self.s.request("DELETE", "/invocations")
        self.assertEqual((st, h.get("Allow")), (405, "POST"))

    def test_counters_typed_as_counters(self):
        self.s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
        st, _, b = self.s.request("GET", "/metrics")
        text = b.decode()
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        for name, kind in types.items():
            if name.endswith("_total") or name in ("tgi_request_count", "tgi_request_success", "tgi_request_failure"):
                self.assertEqual(kind, "counter", name)
        self.assertEqual(types["lmstream_engine_steps_total"], "counter")


class GuardRefusalTest(unittest.TestCase):
    def test_auth_guard_refusal_is_logged_with_its_reason(self):
        with Server(["-m", micro_model()], model="", env={"LMSTREAM_API_KEY": "k-123"}) as s:
            st, _, _ = s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
            self.assertEqual(st, 401)
            bad = [e for e in s.access_log_until(lambda es: any(e["path"] == "/generate" for e in es)) if e["path"] == "/generate"]
            self.assertEqual(bad[-1]["status"], 401, bad)
            self.assertTrue(bad[-1].get("error"), bad)


class LogOptionsTest(unittest.TestCase):
    def test_json_lines_and_level(self):
        with Server(["--log-format", "json", "--log-level", "debug"],
                    env={"MAX_BATCH_SIZE": "8", "LMSTREAM_TEST_LOAD_DELAY_MS": "1"}) as s:
            s.request("GET", "/ping")
            s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
            s.post_json("/generate", {"inputs": "Hi", "parameters": {"top_k": -1}})
            s.stop()
            lines = [l for l in s.read_log().splitlines() if l.strip()]
        # Every line lmstream writes is one JSON object. (A sanitized build's runtime may add a
        # line of its own; such lines are shown, and must not be lmstream's text format.)
        other = [l for l in lines if not l.startswith("{")]
        for l in other:
            print("not JSON:", repr(l[:200]))
            self.assertNotRegex(l, r"^(\[\d{4}-|\[lmstream\]|warning: |note: |error: )")
        if not SANITIZED:
            self.assertEqual(other, [])
        objs = [json.loads(l) for l in lines if l.startswith("{")]
        # Every line has a timestamp, the configuration's own messages (written before the
        # server starts) included.
        self.assertTrue(all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", o["time"]) for o in objs), objs)
        self.assertTrue(any(o.get("level") == "warning" and "LMSTREAM_TEST_LOAD_DELAY_MS=1" in o.get("message", "")
                            for o in objs), objs)
        access = [o["access"] for o in objs if "access" in o]
        self.assertTrue(any(a["path"] == "/ping" for a in access))  # debug level: probes too
        bad = [a for a in access if a["path"] == "/generate" and a["status"] == 422]
        self.assertIn("`top_k` must be strictly positive", bad[0]["error"])
        self.assertTrue(all(o["level"] in ("trace", "debug", "info", "warning", "error", "critical")
                            for o in objs), objs)
        with Server(["--log-level", "warn"]) as s:
            s.post_json("/generate", {"inputs": "Hi", "parameters": {"max_new_tokens": 2}})
            self.assertEqual(s.access_log(), [])
        s = Server(["--log-format", "xml"])
        with self.assertRaises(AssertionError) as cm:
            s.start()
        s.log.close()
        self.assertIn("--log-format: 'xml' is not text or json", str(cm.exception))


class HostTest(unittest.TestCase):
    def test_host_localhost(self):
        self.serve_and_ping(["--host", "localhost"], {}, "127.0.0.1")

    def test_tgi_hostname_is_the_bind_address(self):
        # TGI's launcher listens on HOSTNAME; 127.0.0.2 is loopback too, so only a server that
        # honours it answers there and not on 127.0.0.1.
        port = self.serve_and_ping([], {"HOSTNAME": "127.0.0.2"}, "127.0.0.2", check_other="127.0.0.1")
        self.assertIsInstance(port, int)

    def serve_and_ping(self, args, env, address, check_other=None):
        import os
        import socket
        import tempfile
        import time
        import urllib.request
        port = free_port()
        # The log goes to a file: a pipe nobody reads fills up with /ping's access lines while a
        # slow (sanitized) build loads, and then blocks the server's logging.
        log = tempfile.TemporaryFile()
        p = subprocess.Popen([binary(), "serve", "--port", str(port), "-m", micro_model(), "--threads", "1"] + args,
                             stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ, **env))

        def log_text():
            log.seek(0)
            return log.read().decode(errors="replace")
        try:
            t0 = time.monotonic()
            while True:
                self.assertIsNone(p.poll(), "serve --host localhost exited: %s" % log_text())
                try:
                    with urllib.request.urlopen("http://%s:%d/ping" % (address, port), timeout=2) as r:
                        self.assertEqual(r.status, 200)
                        break
                except OSError:
                    self.assertLess(time.monotonic() - t0, 60, log_text())
                    time.sleep(0.1)
            if check_other:
                with self.assertRaises(ConnectionRefusedError):
                    socket.create_connection((check_other, port), timeout=2).close()
            return port
        finally:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError("serve did not exit within 30 s of SIGTERM:\n" + log_text())
            log.close()


if __name__ == "__main__":
    unittest.main()
