#!/usr/bin/env python3
"""Shared-system-prompt TTFT client for bench/prefix.sh (stdlib only).

Each trial builds a fresh ~N-token system prompt (distinct per trial, so no earlier trial can
serve it), sends request A = system + question 1 (streaming, waits for the end), then request
B = system + question 2 (streaming) and times B's first token: B shares A's system prompt, so a
server with a prefix cache prefills only B's own tail. Prints one JSON object: ttft_b_p50_s,
ttft_b_all_s, ttft_a_p50_s, prompt_tokens (as the server reports, when it does), cached_tokens
(lmstream: from /metrics deltas; llama: timings.cache_n of B), trials.

  tgi    lmstream serve: POST /generate_stream {"inputs", "parameters": {"max_new_tokens"}}
  llama  llama-server: POST /completion {"prompt", "n_predict", "stream": true,
         "cache_prompt": true, "id_slot": 0 for A, 1 for B} (B on a different slot than A)
"""

import argparse
import http.client
import json
import statistics
import time

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu one two "
         "three four five six seven eight nine zero red green blue yellow black white").split()


def system_prompt(tag, n_words):
    # Every word equally often (stride 5 is coprime with the 42 words), shifted by the trial's tag:
    # distinct prefixes of a near-constant token count.
    return f"System {tag}: " + " ".join(WORDS[(tag + i * 5) % len(WORDS)] for i in range(n_words))


def stream(host, port, proto, prompt, n_new, slot, timeout):
    path = "/completion" if proto == "llama" else "/generate_stream"
    if proto == "llama":
        body = {"prompt": prompt, "n_predict": n_new, "stream": True, "temperature": 0,
                "cache_prompt": True, "id_slot": slot}
    else:
        body = {"inputs": prompt, "parameters": {"max_new_tokens": n_new}}
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        t0 = time.perf_counter()
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {r.read(300)!r}")
        ttft, last = None, None
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if not payload or payload == b"[DONE]":
                continue
            ev = json.loads(payload)
            if "error" in ev:
                raise RuntimeError(f"server error: {ev['error']}")
            if ttft is None and (ev.get("token") or ev.get("content")):
                ttft = time.perf_counter() - t0
            last = ev
        return ttft, last
    finally:
        conn.close()


def metrics(host, port):
    c = http.client.HTTPConnection(host, port, timeout=30)
    try:
        c.request("GET", "/metrics")
        out = {}
        for line in c.getresponse().read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", choices=("tgi", "llama"), required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--system-words", type=int, default=662)
    ap.add_argument("--new-tokens", type=int, default=8)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--tag-base", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    ttft_a, ttft_b, prompt_tokens, cached = [], [], [], []
    for t in range(a.trials):
        sys_p = system_prompt(a.tag_base + t, a.system_words)
        qa = sys_p + "\nQuestion: which letter comes after alpha?\nAnswer:"
        qb = sys_p + "\nQuestion: name a colour from the list.\nAnswer:"
        before = metrics(a.host, a.port) if a.proto == "tgi" else {}
        ta, _ = stream(a.host, a.port, a.proto, qa, a.new_tokens, 0, a.timeout)
        mid = metrics(a.host, a.port) if a.proto == "tgi" else {}
        tb, last = stream(a.host, a.port, a.proto, qb, a.new_tokens, 1, a.timeout)
        ttft_a.append(ta)
        ttft_b.append(tb)
        if a.proto == "tgi":
            after = metrics(a.host, a.port)
            key = "lmstream_prefix_cache_hits_total"
            cached.append(after.get(key, 0) - mid.get(key, 0))
            q = "lmstream_prefix_cache_queries_total"
            if q in after and after[q] > mid.get(q, 0):
                prompt_tokens.append(after[q] - mid[q])
        else:
            tm = (last or {}).get("timings") or {}
            cached.append(tm.get("cache_n"))
            if tm.get("prompt_n") is not None and tm.get("cache_n") is not None:
                prompt_tokens.append(tm["prompt_n"] + tm["cache_n"])
    print(json.dumps({
        "ttft_b_p50_s": statistics.median(ttft_b), "ttft_b_all_s": ttft_b,
        "ttft_a_p50_s": statistics.median(ttft_a), "prompt_tokens": prompt_tokens,
        "cached_tokens": cached, "trials": a.trials}))


if __name__ == "__main__":
    main()
