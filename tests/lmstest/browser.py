"""Headless Debian Chromium driven through chromedriver's W3C WebDriver HTTP API with urllib (no
selenium): start/quit, navigate, find, type, click, run scripts, screenshots, and the browser and
performance (DevTools Network) logs. Raises AssertionError naming the missing package when
chromium or chromedriver is not installed (scripts/bootstrap installs both)."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from .server import free_port

CHROMIUM = "/usr/bin/chromium"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Browser:
    def __init__(self, width=1400, height=1000):
        driver = shutil.which("chromedriver")
        if not driver or not os.path.exists(CHROMIUM):
            raise AssertionError("chromium and chromium-driver are needed (scripts/bootstrap installs them)")
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="lms-chromium-")
        self.log = open(os.path.join(self.profile, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen([driver, "--port=%d" % self.port], stdout=self.log, stderr=subprocess.STDOUT)
        self.base = "http://127.0.0.1:%d" % self.port
        t0 = time.monotonic()
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 20:
                raise AssertionError("chromedriver did not start")
            time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--user-data-dir=" + os.path.join(self.profile, "p"),
                "--window-size=%d,%d" % (width, height)]
        caps = {"browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"}}
        self.sid = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}}, timeout=60)["sessionId"]

    def _call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError("webdriver %s %s: %s" % (method, path, e.read().decode(errors="replace")[:2000]))

    def cmd(self, method, path, body=None, timeout=30):
        return self._call(method, "/session/%s%s" % (self.sid, path), body, timeout)

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def find(self, css):
        return self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text, clear=True):
        e = self.find(css)
        if clear:
            self.cmd("POST", "/element/%s/clear" % e, {})
        self.cmd("POST", "/element/%s/value" % e, {"text": text})

    def click(self, css):
        self.cmd("POST", "/element/%s/click" % self.find(css), {})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.cmd("POST", "/execute/async", {"script": script, "args": list(args)}, timeout=60)

    def wait(self, script, timeout=30, what="condition"):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            v = self.js(script)
            if v:
                return v
            time.sleep(0.02)
        raise AssertionError("timed out waiting for %s" % what)

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def logs(self, kind):
        """Entries of the 'browser' (console) or 'performance' (DevTools events) log since the last call."""
        return self.cmd("POST", "/se/log", {"type": kind})

    def quit(self):
        try:
            self.cmd("DELETE", "", timeout=20)
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
        return False
