#!/usr/bin/env bash
# Cold start from a warm cache (issue 11): process start -> the readiness route answers 200, for
# the same GGUF file: `lmstream serve --model M` to GET /ping 200 against `llama-server -m M` to
# GET /health 200. The file is read once first, so both sides start from the page cache; each
# start is a fresh process, polled every 5 ms; rounds alternate peer, us, peer, us, ...
# Usage (from the repo root): bench/cold_start.sh   [env: ROUNDS=5 THREADS=2 MODEL=path]
set -euo pipefail
source bench/lib.sh
ROUNDS="${ROUNDS:-5}"
need_peer
need_lmstream serve
MODEL="${MODEL:-$(ensure_model tinyllama)}"
[[ -s "$MODEL" ]] || die "model $MODEL missing"
cat "$MODEL" >/dev/null   # warm the page cache

# time_to_ready PATH CMD... : seconds from spawning CMD (its port given as {PORT}) to PATH 200.
time_to_ready() {
  "$PY" - "$@" <<'PY'
import http.client, socket, subprocess, sys, time
path, cmd = sys.argv[1], sys.argv[2:]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cmd = [a.replace("{PORT}", str(port)) for a in cmd]
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while time.perf_counter() - t0 < 300:
        if p.poll() is not None:
            sys.exit("exited with %s: %s" % (p.returncode, " ".join(cmd)))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            if c.getresponse().status == 200:
                print("%.4f" % (time.perf_counter() - t0))
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

peer=() us=()
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS"
  peer+=("$(time_to_ready /health "$LLAMA_SERVER" -m "$MODEL" -t "$THREADS" --port '{PORT}' --host 127.0.0.1 -c 4096)")
  us+=("$(time_to_ready /ping "$LMSTREAM" serve --model "$MODEL" --threads "$THREADS" --port '{PORT}')")
done
mp="$(median "${peer[@]}")" mu="$(median "${us[@]}")"
append_results <<EOF

## cold start from a warm cache (process start → ready) — $(date -u '+%Y-%m-%d %H:%M UTC')

$(machine_desc); host THP: \`$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)\`; commit $(commit_desc); $(peer_desc).
Model \`$(basename "$MODEL")\` ($(du -hL "$MODEL" | cut -f1)), page cache warm, ROUNDS=$ROUNDS interleaved, fresh process each time.

| | lmstream (\`serve\` → /ping 200) | llama.cpp (\`llama-server\` → /health 200) | ratio us/peer (target ≤ 1.0) |
|---|---|---|---|
| seconds, median | $(fmt "$mu") | $(fmt "$mp") | $(ratio "$mu" "$mp") |
| every round | $(fmt_list "${us[@]}") | $(fmt_list "${peer[@]}") | |
EOF
