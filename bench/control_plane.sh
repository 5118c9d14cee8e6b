#!/usr/bin/env bash
# Control-plane overhead: one endpoint of `lmstream control-plane` (one worker), streamed through
# the control plane's runtime route (POST /endpoints/{name}/invocations-response-stream, proxied)
# vs straight to the worker's own identical route, interleaved rounds (bench/control_plane_load.py):
# TTFB p50 added, mean inter-token gap added, aggregate tokens/s with 8 clients (ratio). Run for the
# micro model (engine step ~µs: the proxy's cost per token is all there is) and the TinyLlama-shaped
# model (a real step). Then Create -> InService (CreateEndpoint with --wait-for-in-service) vs
# `lmstream serve` alone until /ping answers 200, TinyLlama-shaped model, warm page cache.
# Usage (from the repo root): bench/control_plane.sh
#   [env: ROUNDS=3 THREADS=2 IO_SLICE_US=N (--io-slice-us; unset = the control plane's default)
#    WORKER_NICE=N (--worker-nice; unset = 0)
#    SKIP_STARTUP=1 (only the proxy part)]
set -euo pipefail
source bench/lib.sh
source bench/server_lib.sh
need_lmstream control-plane serve
MICRO="$(ensure_model micro)"
TINY="$(ensure_model tinyllama)"
WORK="$(mktemp -d)"
trap 'stop_servers; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
KV=268435456  # bytes of KV cache per worker (the control plane's default, 256MiB)
TGI_IMAGE="763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.0.1-tgi1.0.3-gpu-py39-cu118-ubuntu20.04"

# cp_call PORT OP JSON : one control-plane operation through boto3; prints the seconds it took.
cp_call() {
  "$PY" - "$@" <<'EOF'
import boto3, json, sys, time
port, op, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sm = boto3.client("sagemaker", endpoint_url="http://127.0.0.1:" + port, region_name="us-east-1",
                  aws_access_key_id="a", aws_secret_access_key="b")
t0 = time.monotonic()
getattr(sm, op)(**body)
dt = time.monotonic() - t0
if op == "create_endpoint":
    d = sm.describe_endpoint(EndpointName=body["EndpointName"])
    assert d["EndpointStatus"] == "InService", d
print(dt)
EOF
}

start_plane() {  # start_plane STATEDIR : sets PLANE_PORT (not run in $(...): SERVER_PIDS must
  # keep the control plane's pid, or stop_servers leaves it and its workers running)
  PLANE_PORT="$(free_port)"
  start_server "$WORK/cp.log" "$LMSTREAM" control-plane --state-dir "$1" --port "$PLANE_PORT" \
    --worker-threads "$THREADS" --worker-kv-memory "$KV" --wait-for-in-service \
    ${IO_SLICE_US:+--io-slice-us "$IO_SLICE_US"} ${WORKER_NICE:+--worker-nice "$WORKER_NICE"}
  wait_ready "$PLANE_PORT" /ping || { tail -20 "$WORK/cp.log" >&2; die "control plane did not come up"; }
}

deploy() {  # deploy PORT NAME MODEL : model + config + endpoint, InService on return
  cp_call "$1" create_model "{\"ModelName\":\"$2\",\"PrimaryContainer\":{\"Image\":\"$TGI_IMAGE\",\"Environment\":{\"HF_MODEL_ID\":\"$3\"}}}" >/dev/null
  cp_call "$1" create_endpoint_config "{\"EndpointConfigName\":\"$2\",\"ProductionVariants\":[{\"VariantName\":\"AllTraffic\",\"ModelName\":\"$2\",\"InstanceType\":\"ml.g5.2xlarge\",\"InitialInstanceCount\":1}]}" >/dev/null
  cp_call "$1" create_endpoint "{\"EndpointName\":\"$2\",\"EndpointConfigName\":\"$2\"}"
}

worker_port() { grep -o "worker $1/AllTraffic/1 started: pid [0-9]*, port [0-9]*" "$WORK/cp.log" | tail -1 | awk '{print $NF}'; }

load() {  # load NAME CPPORT CLIENTS REQS TOKENS OUT
  local wp; wp="$(worker_port "$1")"
  timeout "$STEP_TIMEOUT" "$PY" bench/control_plane_load.py \
    --direct "http://127.0.0.1:$wp/endpoints/$1/invocations-response-stream" \
    --proxied "http://127.0.0.1:$2/endpoints/$1/invocations-response-stream" \
    --clients "$3" --requests-per-client "$4" --new-tokens "$5" --rounds "$ROUNDS" \
    --worker-log "$WORK/state/logs/$1.AllTraffic.1.log" >"$6"
}

get() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])' "$@"; }

log "streaming through the control plane vs straight to the worker"
start_plane "$WORK/state"
deploy "$PLANE_PORT" micro "$MICRO" >/dev/null
deploy "$PLANE_PORT" tiny "$TINY" >/dev/null
load micro "$PLANE_PORT" 1 10 64 "$WORK/m1.json"
load micro "$PLANE_PORT" 8 4 64 "$WORK/m8.json"
load tiny "$PLANE_PORT" 1 10 16 "$WORK/t1.json"
load tiny "$PLANE_PORT" 8 6 16 "$WORK/t8.json"
stop_servers

startup_table="(start-up not measured: SKIP_STARTUP=1)"
if [[ "${SKIP_STARTUP:-0}" != 1 ]]; then
  log "Create -> InService vs serve alone to /ping 200 (TinyLlama-shaped, warm cache)"
  cat "$TINY" >/dev/null  # warm the page cache
  timeout "$STEP_TIMEOUT" "$PY" bench/control_plane_startup.py --lmstream "$LMSTREAM" --model "$TINY" \
    --threads "$THREADS" --kv "$KV" --rounds "$ROUNDS" >"$WORK/start.json"
  serve_s="$("$PY" -c 'import json,statistics,sys; print(statistics.median(json.load(open(sys.argv[1]))["serve_s"]))' "$WORK/start.json")"
  plane_s="$("$PY" -c 'import json,statistics,sys; print(statistics.median(json.load(open(sys.argv[1]))["plane_s"]))' "$WORK/start.json")"
  starts="$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("serve " + " ".join("%.2f" % x for x in d["serve_s"]) + " / plane " + " ".join("%.2f" % x for x in d["plane_s"]))' "$WORK/start.json")"
  startup_table="$(cat <<EOF2
| start-up, TinyLlama-shaped q8_0, warm cache | seconds (median of $ROUNDS) |
|---|---|
| \`lmstream serve --kv-cache-memory $KV\` start -> /ping 200 | $(fmt "$serve_s") |
| CreateEndpoint (--wait-for-in-service, worker KV $KV) -> InService | $(fmt "$plane_s") |
| ratio | $(ratio "$plane_s" "$serve_s") |

Per-round start-up seconds (interleaved, bench/control_plane_startup.py): $starts
EOF2
)"
fi

row() {  # row LABEL FILE
  local d p
  d="$(get "$2" direct ttfb_p50_s)"; p="$(get "$2" proxied ttfb_p50_s)"
  local dg pg dt pt
  dg="$(get "$2" direct gap_mean_s)"; pg="$(get "$2" proxied gap_mean_s)"
  dt="$(get "$2" direct tokens_per_s)"; pt="$(get "$2" proxied tokens_per_s)"
  local do po
  do="$(get "$2" direct outside_s)"; po="$(get "$2" proxied outside_s)"
  local pr prs
  pr="$("$PY" -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["pair_ratio_median"])' "$2")"
  prs="$("$PY" -c 'import json,sys; print(" ".join("%.2f" % x for x in json.load(open(sys.argv[1]))["pair_ratios"]))' "$2")"
  echo "| $1 | $(fmt "$("$PY" -c "print(($d)*1e3)")") | $(fmt "$("$PY" -c "print(($p)*1e3)")") | $(fmt "$("$PY" -c "print(($p-$d)*1e3)")") | $(fmt "$("$PY" -c "print(($po-$do)*1e3)")") | $(fmt "$("$PY" -c "print(($pg-$dg)*1e3)")") | $(fmt "$dt") | $(fmt "$pt") | $(ratio "$pt" "$dt") | $pr ($prs) | $(get "$2" proxied errors) |"
}
append_results <<EOF
## control plane: runtime proxy overhead and Create -> InService — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc)
- lmstream commit: $(commit_desc); \`bench/control_plane.sh\` (ROUNDS=$ROUNDS, THREADS=$THREADS, control plane \`--io-slice-us ${IO_SLICE_US:-default} --worker-nice ${WORKER_NICE:-0}\`)
- direct = POST /endpoints/{name}/invocations-response-stream on the worker's own port; proxied = the same through \`lmstream control-plane\` (same worker); bench/control_plane.sh's load client (event-stream, one PayloadPart per token), interleaved rounds, median
- TTFB = request sent -> first PayloadPart complete; gap = mean time between token PayloadParts; added = proxied − direct
- TTFB added outside the engine = added (mean client TTFB − mean of the worker's own access-log \`ttft_ms\`, request received -> first token): what the path to and from the worker adds, without the luck of which engine step a request joins (with 8 clients a request that misses the first step waits a whole prefill step, on either side, which moves the p50)

- ratio = median proxied tok/s ÷ median direct tok/s; per-round ratio = median over rounds of (proxied ÷ direct within the round), the rounds listed

| model, clients × requests × new tokens | TTFB direct ms | TTFB proxied ms | TTFB added ms (p50) | TTFB added outside the engine ms | gap added ms | tok/s direct | tok/s proxied | ratio | per-round ratio (rounds) | proxied errors |
|---|---|---|---|---|---|---|---|---|---|---|
$(row "micro, 1×10×64" "$WORK/m1.json")
$(row "micro, 8×4×64" "$WORK/m8.json")
$(row "tinyllama, 1×10×16" "$WORK/t1.json")
$(row "tinyllama, 8×6×16" "$WORK/t8.json")

$startup_table
EOF
