"""Driving the /ui playground page in a Browser (lmstest.browser) and reading the server's access
log beside it: ask a question and wait for the whole answer, set a form field, find a route's last
access-log entry, and the server's own first-byte time. Used by tests/test_web_ui.py and
bench/web_ttfb.py."""


def ask(b, text):
    """Types TEXT into the prompt, sends it, waits for the answer to end; returns its state, text,
    token count and the page's TTFB / first-token / network-TTFB figures (ms)."""
    n = b.js("return document.querySelectorAll('.msg.assistant').length")
    b.type("#prompt", text)
    b.click("#send")
    b.wait("return document.querySelectorAll('.msg.assistant').length > %d" % n, what="the answer to start")
    b.wait("var m=[...document.querySelectorAll('.msg.assistant')].pop(); return m.dataset.state !== 'streaming'",
           timeout=60, what="the answer to end")
    return b.js("var m=[...document.querySelectorAll('.msg.assistant')].pop();"
                "var ms=function(id){var v=document.getElementById(id).dataset.ms; return v === undefined ? null : +v;};"
                "return {state: m.dataset.state, finish: m.dataset.finish || '', text: m.querySelector('.body').textContent,"
                " error: (m.querySelector('.error') || {}).textContent || '', tokens: m.querySelectorAll('.tok').length,"
                " ttfb: ms('lat-ttfb'), ttft: ms('lat-ttft'), net: ms('lat-net')}")


def set_field(b, css, value):
    b.js("var e=document.querySelector(arguments[0]); e.value=arguments[1];"
         "e.dispatchEvent(new Event('change', {bubbles: true}))", css, value)


def last_entry(srv, route_prefix, after=0):
    """The newest access-log entry of a route whose id is above AFTER, or None."""
    for e in reversed(srv.access_log()):
        if e["id"] > after and e["route"].startswith(route_prefix):
            return e
    return None


def server_first_byte_ms(e):
    """The first body chunk's write, in ms since the request was submitted (access log)."""
    return e["ttft_ms"] + (e["first_write_mono"] - e["first_token_mono"]) * 1000.0
