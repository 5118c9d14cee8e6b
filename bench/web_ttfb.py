#!/usr/bin/env python3
"""What the /ui playground page adds to the server's time to first byte, against a command-line
client streaming the same request (issue 16: <= 1 ms). One `lmstream serve` (the embedded demo
model unless MODEL= is given), one headless Chromium on its /ui page; rounds alternate page, CLI,
page, CLI, ... with the same TGI /generate_stream request (4 new tokens, greedy).

For each request, the server's access log gives its own first body write (ms since the request
was submitted). The page's figure is its Resource Timing entry, requestStart -> responseStart
(the wire and the server, measured by the browser); the CLI's is http.client from sending the
request on an open connection to its first body byte. Each side's overhead is its figure minus
the server's first write for the same request; the result is the difference of the medians.
The page's whole JavaScript-observed TTFB (which adds Chromium's renderer <-> network-process
dispatch, not the page's doing) is reported beside it.
Usage (from the repo root, after a Release build): bench/web_ttfb.py [ROUNDS=30 env]
Appends a section to bench/RESULTS.md."""
import datetime
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("LMSTREAM_SOURCE_DIR", ROOT)
os.environ.setdefault("LMSTREAM_BUILD_DIR", os.path.join(ROOT, "build"))
os.environ.setdefault("LMSTREAM_BINARY", os.environ.get("LMSTREAM", os.path.join(ROOT, "build", "cli", "lmstream")))

from lmstest.browser import Browser  # noqa: E402
from lmstest.playground import ask, last_entry, server_first_byte_ms, set_field  # noqa: E402
from lmstest.server import Server  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "30"))
THREADS = os.environ.get("THREADS", "2")
MODEL = os.environ.get("MODEL")


def cli_ttfb(srv, body):
    c = srv.conn()
    c.connect()
    t0 = time.perf_counter()
    c.request("POST", "/generate_stream", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    first = r.read1(65536)
    t1 = time.perf_counter()
    while r.read1(65536):
        pass
    c.close()
    assert first.startswith(b"data:"), first[:100]
    return (t1 - t0) * 1000.0


def thp():
    try:
        return open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
    except OSError:
        return "unknown"


def main():
    args = ["--threads", THREADS] + (["--model", MODEL] if MODEL else [])
    page_net, page_js, cli = [], [], []
    with Server(args=args) as srv:
        b = Browser()
        try:
            b.get("http://127.0.0.1:%d/ui" % srv.port)
            b.wait("return /lmstream|demo|model/i.test(document.getElementById('model').textContent)", what="the page")
            set_field(b, "#max_new_tokens", "4")
            set_field(b, "#temperature", "")
            set_field(b, "#system", "")
            body = {"inputs": "[INST] Hello [/INST]", "parameters": {"max_new_tokens": 4}}
            for i in range(ROUNDS + 1):
                b.click("#clear")
                a = ask(b, "Hello")
                fw = server_first_byte_ms(last_entry(srv, "/generate_stream"))
                t = cli_ttfb(srv, body)
                fw_cli = server_first_byte_ms(last_entry(srv, "/generate_stream"))
                if i == 0:
                    continue  # warm-up
                page_net.append(a["net"] - fw)
                page_js.append(a["ttfb"] - fw)
                cli.append(t - fw_cli)
        finally:
            b.quit()
    pn, pj, c = statistics.median(page_net), statistics.median(page_js), statistics.median(cli)
    added = pn - c
    verdict = "met" if added <= 1.0 else "NOT met"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""
## /ui page TTFB overhead vs a command-line client — {now}

`bench/web_ttfb.py` (ROUNDS={ROUNDS}, THREADS={THREADS}, model {MODEL or 'embedded demo'}); host THP: `{thp()}`.
Overheads are each side's TTFB minus the server's own first body write (access log) for the same request, medians:

| side | overhead over the server's first write |
|---|---|
| page, Resource Timing (requestStart → responseStart) | {pn:.3f} ms |
| command-line client (http.client, open connection) | {c:.3f} ms |
| **page adds** | **{added:+.3f} ms** (target ≤ 1 ms: {verdict}) |
| page, JavaScript-observed (fetch() → first chunk; adds Chromium's own IPC) | {pj:.3f} ms |
"""
    print(section)
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
        f.write(section)
    return 0 if added <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
