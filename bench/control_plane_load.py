#!/usr/bin/env python3
"""Streaming load for bench/control_plane.sh: InvokeEndpointWithResponseStream requests (TGI
payload, event-stream answer) sent alternately to two URLs of the same endpoint (straight to a
worker, and through `lmstream control-plane`), measuring per request the time to the first
PayloadPart, the gaps between PayloadParts, and with --clients N the aggregate tokens/s.
Unsigned plain HTTP over loopback; stdlib only. Prints one JSON object per side."""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def read_messages(resp):
    """Yields (monotonic time, event type) for each event-stream message as it is complete."""
    buf = b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            return
        now = time.monotonic()
        buf += chunk
        while len(buf) >= 12:
            total = int.from_bytes(buf[0:4], "big")
            if len(buf) < total:
                break
            hlen = int.from_bytes(buf[4:8], "big")
            headers = buf[12:12 + hlen]
            kind = b"exception" if b"exception" in headers else b"event"
            buf = buf[total:]
            yield now, kind


def one_request(url, body, barrier=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    if barrier is not None:  # connect first, then all clients send together
        c.connect()
        barrier.wait()
    t0 = time.monotonic()
    c.request("POST", u.path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError("%s: HTTP %d %r" % (url, r.status, r.read()[:200]))
    times = []
    for t, kind in read_messages(r):
        if kind != b"event":
            raise RuntimeError("stream error from %s" % url)
        times.append(t)
    c.close()
    return t0, times


def access_lines(path, offset=0):
    """(the worker's access-log records after byte offset, the new offset); serve logs one
    `access {json}` line per request."""
    if not path:
        return [], 0
    out = []
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    for line in data[:end].decode(errors="replace").splitlines():
        i = line.find("access {")
        if i >= 0:
            try:
                out.append(json.loads(line[i + 7:]))
            except ValueError:
                pass
    return out, offset + end


def run_side(url, clients, requests, new_tokens, tag, worker_log=None):
    res, lock, errors = [], threading.Lock(), []
    _, log_offset = access_lines(worker_log)
    # The clients' first requests leave together: connected beforehand and released by a barrier
    # (otherwise thread start-up spreads them over 8-15 ms, and the engine's first step takes
    # whichever have arrived).
    start_line = threading.Barrier(clients, timeout=60)

    def client(ci):
        for i in range(requests):
            # The tag is digits only (one token each), the same count on both sides: the two
            # sides' prompts must cost the worker the same prefill ("direct"/"proxied" as words
            # made the proxied prompts 2 tokens longer, about 10 ms of TinyLlama prefill each).
            body = json.dumps({"inputs": "Benchmark prompt %d %d %s" % (ci, i, tag),
                               "parameters": {"max_new_tokens": new_tokens}, "stream": True})
            try:
                out = one_request(url, body, start_line if i == 0 and clients > 1 else None)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                continue
            with lock:
                res.append(out)
    start = time.monotonic()
    ts = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - start
    ttfb = [times[0] - t0 for t0, times in res if times]
    gaps = [b - a for _, times in res for a, b in zip(times[1:-1], times[2:-1])]  # tokens only
    tokens = sum(max(0, len(times) - 1) for _, times in res)
    # Time to first byte outside the worker's engine: the clients' mean TTFB minus the mean time
    # the worker itself logged from receiving each request to its first token (ttft_ms). Means
    # need no matching of records to requests, and they cancel what batching luck does to both
    # (with 8 clients, whether a request made the engine's first step moves its TTFB by a whole
    # prefill step, on either side).
    outside = None
    if worker_log and ttfb:
        recs = []
        for _ in range(50):  # the worker logs a request when it completes; wait for all of them
            new, log_offset = access_lines(worker_log, log_offset)
            recs += [a for a in new if a.get("ttft_ms", -1) >= 0]
            if len(recs) >= len(ttfb):
                break
            time.sleep(0.02)
        if recs:
            outside = statistics.mean(ttfb) - statistics.mean(a["ttft_ms"] for a in recs) / 1e3
    return {"requests": len(res), "errors": errors, "ttfb_p50_s": statistics.median(ttfb) if ttfb else None,
            "outside_s": outside,
            "gap_mean_s": statistics.mean(gaps) if gaps else None,
            "gap_p50_s": statistics.median(gaps) if gaps else None,
            "tokens_per_s": tokens / wall if wall > 0 else None, "wall_s": wall}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--direct", required=True, help="worker URL of .../invocations-response-stream")
    ap.add_argument("--proxied", required=True, help="control-plane URL of the same")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests-per-client", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker-log", help="the worker's log file (for the TTFB outside its engine)")
    a = ap.parse_args()
    run_side(a.direct, 1, 2, 4, "990")
    run_side(a.proxied, 1, 2, 4, "991")
    out = {"direct": [], "proxied": []}
    for r in range(a.rounds):
        for side in ("direct", "proxied") if r % 2 == 0 else ("proxied", "direct"):
            url = a.direct if side == "direct" else a.proxied
            tag = "%02d%d" % (r, 0 if side == "direct" else 1)
            out[side].append(run_side(url, a.clients, a.requests_per_client, a.new_tokens, tag, a.worker_log))
    summary = {}
    for side, runs in out.items():
        summary[side] = {k: statistics.median(x[k] for x in runs)
                         for k in ("ttfb_p50_s", "gap_mean_s", "gap_p50_s", "tokens_per_s")}
        outs = [x["outside_s"] for x in runs if x["outside_s"] is not None]
        summary[side]["outside_s"] = statistics.median(outs) if outs else None
        summary[side]["errors"] = sum(len(x["errors"]) for x in runs)
        summary[side]["requests"] = sum(x["requests"] for x in runs)
    # The two sides of one round ran back to back under the same host load: the median of the
    # per-round ratios is the figure least moved by the host's swings (and by which engine step
    # a burst's requests happen to join).
    pairs = [p["tokens_per_s"] / d["tokens_per_s"] for d, p in zip(out["direct"], out["proxied"])
             if d["tokens_per_s"] and p["tokens_per_s"]]
    summary["pair_ratios"] = pairs
    summary["pair_ratio_median"] = statistics.median(pairs) if pairs else None
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
