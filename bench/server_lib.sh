# Helpers for the server benchmarks (sourced after bench/lib.sh): start a server in the
# background, wait until it answers, stop it (and everything started here on exit), run loadgen.
# shellcheck shell=bash

SERVER_PIDS=()
SERVER_READY_TIMEOUT="${SERVER_READY_TIMEOUT:-180}"

stop_servers() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server LOGFILE CMD... : runs CMD in the background; its pid goes into SERVER_PIDS.
start_server() {
  local logf="$1"; shift
  "$@" >"$logf" 2>&1 &
  SERVER_PIDS+=("$!")
}

# wait_ready PORT PATH... : until GET on one of the paths answers 200 (or the server died / timeout).
wait_ready() {
  local port="$1"; shift
  local deadline=$((SECONDS + SERVER_READY_TIMEOUT)) path pid="${SERVER_PIDS[-1]}"
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    for path in "$@"; do
      if "$PY" -c 'import http.client,sys
c=http.client.HTTPConnection("127.0.0.1",int(sys.argv[1]),timeout=2); c.request("GET",sys.argv[2])
sys.exit(0 if c.getresponse().status==200 else 1)' "$port" "$path" 2>/dev/null; then
        return 0
      fi
    done
    sleep 0.5
  done
  return 1
}

# run_loadgen OUTFILE ARGS... : loadgen.py's one JSON line into OUTFILE, bounded in time.
run_loadgen() {
  local out="$1"; shift
  timeout "$STEP_TIMEOUT" "$PY" "$BENCH_ROOT/bench/loadgen.py" "$@" >"$out" ||
    { cat "$out" >&2; return 1; }
}

# json_field FILE KEY : a field of the one JSON object in FILE.
json_field() { "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print("n/a" if v is None else v)' "$1" "$2"; }
