#!/usr/bin/env python3
"""Streaming load generator for bench/server.sh and bench/server_overhead.sh (stdlib only).

N client threads each send R streaming requests (one at a time) with a distinct ~130-token prompt
and read the Server-Sent-Events stream, timing: time to first token (first token event received),
the arrival time of every token event, and the number of token events. Two wire protocols:

  llama  llama.cpp llama-server: POST /completion {"prompt","n_predict","stream":true,...};
         events `data: {...}` carry "content" and the running "tokens_predicted"; the last one
         has "stop": true.
  tgi    lmstream serve (TGI): POST /generate_stream {"inputs","parameters":{"max_new_tokens"}};
         events `data:{...}` carry "token": {"text": ...}; every such event is one token.

Both sides decode greedily (llama: temperature 0; TGI: do_sample false is its default).
Prints one JSON object: ttft_p50_s, ttft_p90_s, tokens, wall_s, agg_tok_s, inter_token_s (mean gap
between consecutive token events within a request), requests, errors, prompt_tokens (as reported
by the server when it says).
"""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time

WORDS = ("the quick brown fox jumps over the lazy dog while a small bird sings in the old tree "
         "near the river and children play with a red ball on the green grass under the warm "
         "summer sun").split()


def make_prompt(tag: int, n_words: int) -> str:
    """A distinct prompt per request (so no prefix cache can serve it) of ~n_words tokens."""
    body = " ".join(WORDS[(tag * 7 + i) % len(WORDS)] for i in range(n_words))
    return f"Story {tag}: {body}"


def request_body(proto: str, prompt: str, n_new: int) -> dict:
    if proto == "llama":
        return {"prompt": prompt, "n_predict": n_new, "stream": True, "temperature": 0,
                "cache_prompt": False}
    return {"inputs": prompt, "parameters": {"max_new_tokens": n_new}}


def sse_events(resp):
    """Yields the JSON payload of every `data:` line of an SSE response as it arrives."""
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            continue
        yield json.loads(payload)


def one_request(host, port, proto, prompt, n_new, timeout):
    """Returns dict(t0, ttft, times, prompt_tokens) or raises on any protocol/HTTP error."""
    path = "/completion" if proto == "llama" else "/generate_stream"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        body = json.dumps(request_body(proto, prompt, n_new))
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                      "Accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {resp.read(300)!r}")
        times, prompt_tokens = [], None
        for ev in sse_events(resp):
            if "error" in ev:
                raise RuntimeError(f"server error event: {ev['error']}")
            if proto == "llama":
                # A token whose text ends in a partial UTF-8 sequence gets no event of its own
                # (its text goes out with the next one), so count by the running
                # "tokens_predicted" the events carry.
                now = time.perf_counter()
                seen = len(times)
                total = ev.get("tokens_predicted", seen + (0 if ev.get("stop") else 1))
                times.extend([now] * max(0, total - seen))
                if ev.get("stop"):
                    prompt_tokens = ev.get("tokens_evaluated", prompt_tokens)
                    break
            else:
                if "token" in ev:
                    times.append(time.perf_counter())
                if ev.get("details") and isinstance(ev["details"], dict):
                    prompt_tokens = ev["details"].get("prompt_tokens", prompt_tokens)
                if ev.get("generated_text") is not None:
                    break
        if not times:
            raise RuntimeError("stream ended without any token event")
        return {"t0": t0, "ttft": times[0] - t0, "times": times, "prompt_tokens": prompt_tokens}
    finally:
        conn.close()


def quantile(values, q):
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proto", choices=("llama", "tgi"), required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests-per-client", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--prompt-words", type=int, default=114,
                    help="prompt length in words; 114 words = 128-133 Llama-2 tokens incl. BOS")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured requests sent first")
    ap.add_argument("--timeout", type=float, default=300.0, help="per-request socket timeout, s")
    ap.add_argument("--tag-base", type=int, default=0, help="offset making prompts distinct across runs")
    a = ap.parse_args()
    if a.clients < 1 or a.requests_per_client < 1 or a.new_tokens < 1:
        ap.error("clients, requests-per-client and new-tokens must be >= 1")

    for w in range(a.warmup):
        try:
            one_request(a.host, a.port, a.proto,
                        make_prompt(a.tag_base + 100000 + w, a.prompt_words), a.new_tokens,
                        a.timeout)
        except Exception as e:  # noqa: BLE001 - reported as the run's failure
            print(json.dumps({"error": f"warm-up request failed: {type(e).__name__}: {e}"}))
            return 1

    results, errors, lock = [], [], threading.Lock()
    start = threading.Barrier(a.clients)

    def client(c):
        start.wait()
        for r in range(a.requests_per_client):
            tag = a.tag_base + c * a.requests_per_client + r
            try:
                res = one_request(a.host, a.port, a.proto, make_prompt(tag, a.prompt_words),
                                  a.new_tokens, a.timeout)
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    if not results:
        print(json.dumps({"error": "no request succeeded", "errors": errors[:5]}))
        return 1
    ttfts = sorted(r["ttft"] for r in results)
    tokens = sum(len(r["times"]) for r in results)
    wall = max(r["times"][-1] for r in results) - min(r["t0"] for r in results)
    gaps = [b - a_ for r in results for a_, b in zip(r["times"], r["times"][1:])]
    prompt_tokens = sorted({r["prompt_tokens"] for r in results if r["prompt_tokens"] is not None})
    print(json.dumps({
        "proto": a.proto, "clients": a.clients, "requests": len(results), "errors": len(errors),
        "error_samples": errors[:3], "ttft_p50_s": statistics.median(ttfts),
        "ttft_p90_s": quantile(ttfts, 0.9), "tokens": tokens,
        "tokens_per_request": tokens / len(results), "wall_s": wall, "agg_tok_s": tokens / wall,
        "inter_token_s": statistics.fmean(gaps) if gaps else None,
        "prompt_tokens": prompt_tokens,
    }))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
