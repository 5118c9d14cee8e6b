"""The /ui playground page in a real headless Chromium (Debian's chromium + chromedriver, driven
through WebDriver by lmstest.browser) against a real `lmstream serve --api-key`: the page and the
GET / redirect are public while the API stays guarded; an answer grows in several updates; the
TTFB and first-token figures agree with the access log; TGI, OpenAI and the SageMaker event stream
all work (and the page's event-stream decoder passes api.md's worked example); Stop cancels on the
server; markup in a prompt and in model output (from a small fake endpoint this test serves in
front of the server) is shown literally and never runs; no console errors and no request leaves
the server's origin; the network TTFB (Resource Timing) is shown. Saves a screenshot to
BUILD/web-ui.png. What the page adds to TTFB over a command-line client is measured by
bench/web_ttfb.py."""
import http.client
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

import lmstest
from lmstest.browser import Browser
from lmstest.playground import ask, last_entry, server_first_byte_ms, set_field

KEY = "web-ui-test-key"
XSS_PROMPT = 'look: <script>window.__xss="prompt"</script> <img src=x onerror="window.__xss=\'img\'">'
XSS_TOKENS = ['<script>window.__xss="model"</script>', ' <img src=x onerror="window.__xss=\'model-img\'">', " &amp; <b>b</b>"]
# api.md §3.3: a PayloadPart with payload "hi\n".
WORKED_EXAMPLE = ("0000006c000000592b57ac75"
                  "0b3a6576656e742d7479706507000b5061796c6f616450617274"
                  "0d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d"
                  "0d3a6d6573736167652d747970650700056576656e74" "68690a" "1afd11e3")

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


class FakeEndpoint(http.server.BaseHTTPRequestHandler):
    """In front of the real server: forwards GETs (the page, /info, /metrics), answers
    POST /generate_stream with crafted TGI events whose token texts are markup."""
    upstream = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        c = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
        c.request("GET", self.path, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        c.close()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/generate_stream":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i, t in enumerate(XSS_TOKENS):
            last = i == len(XSS_TOKENS) - 1
            ev = {"token": {"id": 100 + i, "text": t, "logprob": -0.5, "special": False},
                  "generated_text": "".join(XSS_TOKENS) if last else None,
                  "details": {"finish_reason": "length", "generated_tokens": 3, "seed": None} if last else None}
            self.wfile.write(b"data:" + json.dumps(ev).encode() + b"\n\n")
            self.wfile.flush()
            time.sleep(0.02)
        self.close_connection = True


def http_checks(srv):
    st, h, body = srv.request("GET", "/ui")
    csp = h.get("Content-Security-Policy", "")
    check(st == 200 and h.get("Content-Type", "").startswith("text/html") and b'src="ui/app.js"' in body, "GET /ui serves the page")
    check("script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp and "default-src 'none'" in csp,
          "strict CSP: " + csp)
    check(h.get("X-Content-Type-Options") == "nosniff", "nosniff")
    st, h, _ = srv.request("GET", "/ui/app.js")
    check(st == 200 and h.get("Content-Type", "").startswith("text/javascript"), "GET /ui/app.js is JavaScript")
    check(srv.request("GET", "/ui/missing.js")[0] == 404, "unknown page file: 404")
    st, h, _ = srv.request("GET", "/ui/")
    check(st == 302 and h.get("Location") == "../ui", "GET /ui/ redirects to the page (its files are named relative to /ui)")
    st, h, _ = srv.request("GET", "/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    check(st == 302 and h.get("Location") == "/ui", "a browser's GET / redirects to /ui (without the key)")
    check(srv.request("GET", "/", headers={"Accept": "*/*"})[0] == 401, "an API client's GET / still needs the key")
    check(srv.request("GET", "/", headers={"Authorization": "Bearer " + KEY})[0] == 200, "an API client's GET / with the key: 200 as before")
    check(srv.request("GET", "/info")[0] == 401, "/info stays guarded")


def decoder_check(b):
    r = b.js_async("""
      var done = arguments[arguments.length - 1], hex = arguments[0];
      import('/ui/eventstream.js').then(function (m) {
        var bytes = new Uint8Array(hex.match(/../g).map(function (x) { return parseInt(x, 16); }));
        var d = new m.EventStreamDecoder(), msgs = [];
        for (var i = 0; i < bytes.length; i++) msgs = msgs.concat(d.push(bytes.subarray(i, i + 1)));
        var bad = bytes.slice(); bad[bytes.length - 6] ^= 1; var err = '';
        try { new m.EventStreamDecoder().push(bad); } catch (e) { err = e.message; }
        done({n: msgs.length, headers: msgs[0] && msgs[0].headers, payload: msgs[0] && new TextDecoder().decode(msgs[0].payload),
              err: err, len: bytes.length});
      }, function (e) { done({fail: String(e)}); });
    """, WORKED_EXAMPLE)
    check(r.get("len") == 108 and r.get("n") == 1 and r.get("payload") == "hi\n" and
          r["headers"].get(":event-type") == "PayloadPart", "the page's event-stream decoder reads api.md's example byte by byte: %s" % r)
    check("CRC" in r.get("err", ""), "a flipped payload bit fails the message CRC: %r" % r.get("err"))


def main():
    model = lmstest.cached_model("gguf", "small", "q8_0", tokenizer=True)  # ~3 ms a token: a visible stream
    out_png = os.path.join(lmstest.build_dir(), "web-ui.png")
    with lmstest.Server(args=["--api-key", KEY], model=model) as srv, Browser(1400, 1300) as b:
        http_checks(srv)
        b.logs("performance")  # the browser's own start-up pages, before the test opens ours
        origin = "http://127.0.0.1:%d" % srv.port

        # The page is public; without the key it says so and does not poll.
        b.get(origin + "/")
        check(b.js("return location.pathname") == "/ui", "the browser landed on /ui")
        b.wait("return /API key/.test(document.getElementById('model').textContent)", what="the key prompt")
        early = [e for e in b.logs("browser") if e["level"] == "SEVERE"]
        check(all("401" in e["message"] for e in early), "before the key only the expected 401s: %s" % early)
        b.type("#apikey", KEY)
        set_field(b, "#apikey", KEY)
        b.get(origin + "/ui")  # a reload keeps the key (sessionStorage) and starts clean
        check(b.js("return sessionStorage.getItem('lmstream.apiKey')") == KEY and
              b.js("return localStorage.length") == 0 and "lmstream" not in b.js("return document.cookie"),
              "the key is in sessionStorage only")
        b.wait("return document.getElementById('srv-kv').textContent !== '–'", what="the server panel")
        panel = b.js("return ['srv-queue','srv-running','srv-kv','srv-inflight'].map(function(i){return document.getElementById(i).textContent})")
        check(panel[0] == "0" and panel[1] == "0" and "blocks" in panel[2], "server panel from /metrics: %s" % panel)
        check("endpoint" in b.js("return document.getElementById('model').textContent"), "model and endpoint from /info")
        decoder_check(b)

        # TGI: a prompt with markup; the answer grows in several updates; timing vs the access log.
        set_field(b, "#max_new_tokens", "96")  # ~0.3 s of stream: several updates even on a loaded machine
        b.js("""window.__updates = []; window.__xss = undefined;
                new MutationObserver(function () {
                  var m = [...document.querySelectorAll('.msg.assistant')].pop();
                  if (m) window.__updates.push([m.dataset.state, m.querySelector('.body').textContent.length]);
                }).observe(document.getElementById('history'), {childList: true, subtree: true, attributes: true});""")
        a = ask(b, XSS_PROMPT)
        ups = b.js("return window.__updates")
        growing = sorted({n for s, n in ups if s == "streaming" and n > 0})
        check(a["state"] == "done" and a["tokens"] > 10, "TGI answer complete: %d tokens (%s)" % (a["tokens"], a["finish"]))
        check(len(growing) >= 3, "the answer grew in %d separate updates before it was complete" % len(growing))
        user = b.js("return document.querySelector('.msg.user .body').textContent")
        check(user == XSS_PROMPT, "the prompt appears literally")
        check(b.js("return document.querySelectorAll('#history img, #history script, #history b').length") == 0 and
              b.js("return window.__xss") is None, "nothing in the prompt ran or became an element")
        e = last_entry(srv, "/generate_stream")
        ref = server_first_byte_ms(e)
        check(abs(a["ttfb"] - ref) < 50, "TTFB shown %.2f ms vs access log %.2f ms (first write since submission)" % (a["ttfb"], ref))
        check(abs(a["ttft"] - ref) < 50, "first token shown %.2f ms vs access log %.2f ms" % (a["ttft"], ref))
        # Hover a token: its id and logprob.
        tok = b.find(".msg.assistant .tok")
        b.cmd("POST", "/actions", {"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                                                "actions": [{"type": "pointerMove", "duration": 0, "origin": {lmstest.browser.ELEMENT: tok}, "x": 0, "y": 0}]}]})
        insp = b.wait("var t=document.getElementById('inspector').textContent; return /id \\d+/.test(t) && /logprob -?\\d/.test(t) && t",
                      what="the token inspector")
        check(True, "hovering a token shows " + insp)
        body = b.find(".msg.assistant .body")
        b.cmd("POST", "/element/%s/click" % body, {})
        b.cmd("POST", "/actions", {"actions": [{"type": "key", "id": "kb", "actions": [
            {"type": "keyDown", "value": "\ue014"}, {"type": "keyUp", "value": "\ue014"},
            {"type": "keyDown", "value": "\ue014"}, {"type": "keyUp", "value": "\ue014"}]}]})
        check(b.js("return document.querySelectorAll('.tok.sel').length") == 1, "arrow keys select tokens from the keyboard")

        # OpenAI (a second turn of the same chat) and the SageMaker event stream.
        set_field(b, "#system", "Be brief.")
        set_field(b, "#api", "openai")
        before = srv.access_log()[-1]["id"]
        a = ask(b, "And a second question?")
        e = last_entry(srv, "/v1/chat/completions", before)
        check(a["state"] == "done" and a["tokens"] > 0 and e and e["status"] == 200,
              "OpenAI stream: %d tokens, access log %s" % (a["tokens"], e and e["route"]))
        # Its tokens carry their logprobs too (the page asks for logprobs; OpenAI sends no ids).
        b.js("var t=[...document.querySelectorAll('.msg.assistant')].pop().querySelector('.tok');"
             "t.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))")
        insp = b.wait("var t=document.getElementById('inspector').textContent; return /logprob -?\\d/.test(t) && t",
                      what="an OpenAI token's logprob in the inspector")
        check(True, "hovering an OpenAI token shows " + insp)
        check(b.js("return !document.getElementById('srv-prefix-row').hidden") and
              "%" in b.js("return document.getElementById('srv-prefix').textContent"),
              "the server panel shows the prefix-cache hit ratio: " + b.js("return document.getElementById('srv-prefix').textContent"))
        set_field(b, "#api", "sagemaker")
        before = srv.access_log()[-1]["id"]
        a = ask(b, "Third, through SageMaker.")
        e = last_entry(srv, "/endpoints/invocations-response-stream", before)
        check(a["state"] == "done" and a["tokens"] > 10 and e and e["status"] == 200,
              "SageMaker event stream: %d tokens, access log %s %s" % (a["tokens"], e and e["route"], a["error"]))
        b.screenshot(out_png)
        check(os.path.getsize(out_png) > 10000, "screenshot saved: " + out_png)

        # Stop: the fetch is aborted and the server logs the cancellation.
        set_field(b, "#api", "tgi")
        set_field(b, "#max_new_tokens", "700")
        b.click("#clear")
        before = srv.access_log()[-1]["id"]
        b.type("#prompt", "A long answer, please.")
        b.click("#send")
        b.wait("var m=document.querySelector('.msg.assistant'); return m && m.querySelectorAll('.tok').length >= 5", what="tokens")
        st = b.js("var m=document.querySelector('.msg.assistant'); document.getElementById('stop').click();"
                  "return [m.dataset.state, m.querySelectorAll('.tok').length]")
        print("at Stop:", st)
        b.wait("return document.querySelector('.msg.assistant').dataset.state === 'stopped'", what="the page to stop")
        e = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10 and not e:
            e = last_entry(srv, "/generate_stream", before)
            time.sleep(0.05)
        check(e is not None and e["finish"] == "cancelled" and e["generated_tokens"] < 700,
              "Stop: the server logged %s" % (e and {k: e[k] for k in ("status", "finish", "generated_tokens")}))

        # The page's network TTFB (Resource Timing) is shown, and it lies between the server's own
        # first write and the page's whole TTFB. How much the page adds over a command-line
        # client is a speed figure, measured by bench/web_ttfb.py, not here.
        set_field(b, "#max_new_tokens", "4")
        set_field(b, "#temperature", "")
        set_field(b, "#system", "")
        b.click("#clear")
        a = ask(b, "Hello")
        net = a["net"]
        first_write = server_first_byte_ms(last_entry(srv, "/generate_stream"))
        check(net is not None and 0 < net <= a["ttfb"] + 0.2,
              "network TTFB %s ms shown, within the page's TTFB %.2f ms" % (net, a["ttfb"]))
        # The response head goes out when the stream starts, so the page's first byte comes no later
        # than the server's first body write (plus loopback slack); on a quick machine they coincide,
        # on a loaded one (a sanitizer build beside other tests) the head leads the first token.
        check(net is not None and net <= first_write + 50,
              "network TTFB %s ms is no later than the access log's first write %.2f ms" % (net, first_write))

        # Model output with markup, from the fake endpoint in front of the server.
        FakeEndpoint.upstream = srv.port
        fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeEndpoint)
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        fake_origin = "http://127.0.0.1:%d" % fake.server_address[1]
        try:
            b.get(fake_origin + "/ui")
            b.wait("return /API key/.test(document.getElementById('model').textContent)", what="the key prompt")
            early = [e for e in b.logs("browser") if e["level"] == "SEVERE"]
            check(all("401" in e["message"] for e in early), "before the key only the expected 401s: %s" % early)
            b.type("#apikey", KEY)
            set_field(b, "#apikey", KEY)
            b.wait("return document.getElementById('srv-kv').textContent !== '–'", what="the panel through the fake endpoint")
            b.js("window.__xss = undefined")
            a = ask(b, "show me markup")
            check(a["text"] == "".join(XSS_TOKENS), "model output appears literally: %r" % a["text"])
            time.sleep(0.2)
            check(b.js("return document.querySelectorAll('#history img, #history script, #history b').length") == 0 and
                  b.js("return window.__xss") is None, "nothing in the model output ran or became an element")
        finally:
            fake.shutdown()

        errors = [e for e in b.logs("browser") if e["level"] == "SEVERE"]
        check(not errors, "no console errors: %s" % errors)
        urls = set()
        for entry in b.logs("performance"):
            m = json.loads(entry["message"])["message"]
            # Requests of our pages (the browser's own new-tab page, chrome://, is not ours).
            if m.get("method") == "Network.requestWillBeSent" and not m["params"].get("documentURL", "").startswith("chrome://"):
                urls.add(m["params"]["request"]["url"])
        foreign = [u for u in urls if urllib.parse.urlsplit(u).netloc not in (urllib.parse.urlsplit(origin).netloc,
                                                                              urllib.parse.urlsplit(fake_origin).netloc)]
        check(urls and not foreign, "%d distinct URLs requested, none outside the server: %s" % (len(urls), foreign))
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("all web UI checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
