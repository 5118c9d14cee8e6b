#!/usr/bin/env bash
# Cold start from a warm cache (issue 11): process start -> the readiness route answers 200, for
# the same GGUF file: `lmstream serve --model M` to GET /ping 200 against `llama-server -m M` to
# GET /health 200. The file is read once first, so both sides start from the page cache; each
# start is a fresh process, polled every 5 ms; rounds alternate peer, us, us without the cache, ...
# lmstream's packed-weight cache (engine/packed_cache.h) lives in a fresh directory of this run: one
# priming start writes it (a first start of the model), then every `us` start maps it; the
# `LMSTREAM_PACKED_CACHE=off` starts repack into the huge-page arena as a first start does.
# Usage (from the repo root): bench/cold_start.sh   [env: ROUNDS=5 THREADS=2 MODEL=path]
set -euo pipefail
source bench/lib.sh
ROUNDS="${ROUNDS:-5}"
need_peer
need_lmstream serve
MODEL="${MODEL:-$(ensure_model tinyllama)}"
[[ -s "$MODEL" ]] || die "model $MODEL missing"
cat "$MODEL" >/dev/null   # warm the page cache
CACHE_DIR="$(mktemp -d)"
trap 'rm -rf "$CACHE_DIR"' EXIT
export LMSTREAM_PACKED_CACHE=on LMSTREAM_PACKED_CACHE_DIR="$CACHE_DIR"

# time_to_ready PATH CMD... : seconds from spawning CMD (its port given as {PORT}) to PATH 200.
time_to_ready() {
  "$PY" - "$@" <<'PY'
import http.client, os, socket, subprocess, sys, tempfile, time
path, cmd = sys.argv[1], sys.argv[2:]
# PRIME=1: after ready, wait for the packed-weight cache to be written (its log line).
prime = os.environ.get("PRIME") == "1"
logf = tempfile.TemporaryFile()
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cmd = [a.replace("{PORT}", str(port)) for a in cmd]
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
try:
    while time.perf_counter() - t0 < 300:
        if p.poll() is not None:
            sys.exit("exited with %s: %s" % (p.returncode, " ".join(cmd)))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            if c.getresponse().status == 200:
                print("%.4f" % (time.perf_counter() - t0))
                while prime and time.perf_counter() - t0 < 600:
                    logf.seek(0)
                    out = logf.read()
                    if b"packed-weight cache: wrote" in out:
                        break
                    if b"packed-weight cache: not written" in out:
                        sys.exit("the packed-weight cache was not written")
                    time.sleep(0.1)
                break
        except OSError:
            pass
        time.sleep(0.005)
    else:
        sys.exit("not ready in 300 s")
finally:
    p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
PY
}

log "priming start: writes the packed-weight cache"
PRIME=1 time_to_ready /ping "$LMSTREAM" serve --model "$MODEL" --threads "$THREADS" --port '{PORT}' >/dev/null
peer=() us=() off=()
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS"
  peer+=("$(time_to_ready /health "$LLAMA_SERVER" -m "$MODEL" -t "$THREADS" --port '{PORT}' --host 127.0.0.1 -c 4096)")
  us+=("$(time_to_ready /ping "$LMSTREAM" serve --model "$MODEL" --threads "$THREADS" --port '{PORT}')")
  off+=("$(LMSTREAM_PACKED_CACHE=off time_to_ready /ping "$LMSTREAM" serve --model "$MODEL" --threads "$THREADS" --port '{PORT}')")
done
mp="$(median "${peer[@]}")" mu="$(median "${us[@]}")" mo="$(median "${off[@]}")"
pair=()
for ((r = 0; r < ROUNDS; r++)); do pair+=("$(ratio "${us[$r]}" "${peer[$r]}")"); done
append_results <<EOF

## cold start from a warm cache (process start → ready) — $(date -u '+%Y-%m-%d %H:%M UTC')

$(machine_desc); host THP: \`$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)\`; commit $(commit_desc); $(peer_desc).
Model \`$(basename "$MODEL")\` ($(du -hL "$MODEL" | cut -f1)), page cache warm, ROUNDS=$ROUNDS interleaved, fresh process each time.

| | lmstream (\`serve\` → /ping 200, packed-weight cache hit) | llama.cpp (\`llama-server\` → /health 200) | ratio us/peer (target ≤ 1.0) | lmstream, \`LMSTREAM_PACKED_CACHE=off\` (repacks) |
|---|---|---|---|---|
| seconds, median | $(fmt "$mu") | $(fmt "$mp") | $(ratio "$mu" "$mp") | $(fmt "$mo") |
| every round | $(fmt_list "${us[@]}") | $(fmt_list "${peer[@]}") | per round: $(fmt_list "${pair[@]}") | $(fmt_list "${off[@]}") |
EOF
