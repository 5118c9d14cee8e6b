#!/usr/bin/env bash
# Server overhead per streamed token: with the micro test model (engine step ~ tens of µs, so the
# serving path dominates) compares the gap between consecutive streamed tokens that one client
# sees from `lmstream serve` with the engine's own per-token decode step from `lmstream bench`:
#   overhead = mean inter-token gap over SSE  -  1 / decode_tok_s   (same model, threads, lengths)
# The same is measured for llama.cpp (llama-server vs llama-bench tg) as a reference.
# Single client, sequential requests, greedy; interleaved rounds, medians. Appends to RESULTS.md.
# Usage (from the repo root): bench/server_overhead.sh   [env: ROUNDS=3 THREADS=2 MODEL=path]
set -euo pipefail
source bench/lib.sh
source bench/server_lib.sh

GEN=64
PROMPT_WORDS=14   # ~16 Llama-2 tokens with BOS
PROMPT=16
REQS=5
need_peer
need_lmstream bench serve
MODEL="${MODEL:-$(ensure_model micro)}"
[[ -s "$MODEL" ]] || die "model $MODEL missing"

WORK="$(mktemp -d)"
trap 'stop_servers; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

lg_args=(--clients 1 --requests-per-client "$REQS" --new-tokens "$GEN" --prompt-words "$PROMPT_WORDS")
: >"$WORK/all"   # lines: side step_s gap_s tokens_per_request
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS: llama-bench tg$GEN + llama-server"
  timeout "$STEP_TIMEOUT" "$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p 0 -n "$GEN" -r 3 -o json \
    >"$WORK/pb.json" 2>"$WORK/pb.err" || { cat "$WORK/pb.err" >&2; die "llama-bench failed"; }
  pstep="$("$PY" -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1])) if x["n_gen"]>0]; print(1/r[0]["avg_ts"])' "$WORK/pb.json")"
  port="$(free_port)"
  start_server "$WORK/peer.log" "$LLAMA_SERVER" -m "$MODEL" -t "$THREADS" -tb "$THREADS" -np 1 -c 512 \
    --host 127.0.0.1 --port "$port"
  wait_ready "$port" /health || { tail -20 "$WORK/peer.log" >&2; die "llama-server did not come up"; }
  run_loadgen "$WORK/pl.json" --proto llama --port "$port" --tag-base $((r * 1000)) "${lg_args[@]}" ||
    die "load on llama-server failed"
  stop_servers
  echo "peer $pstep $(json_field "$WORK/pl.json" inter_token_s) $(json_field "$WORK/pl.json" tokens_per_request)" >>"$WORK/all"

  log "round $r/$ROUNDS: lmstream bench + lmstream serve"
  timeout "$STEP_TIMEOUT" "$LMSTREAM" bench --model "$MODEL" --threads "$THREADS" --prompt-tokens "$PROMPT" \
    --gen-tokens "$GEN" --concurrency 1,1,1,1,1,1 --json >"$WORK/ub.json" 2>"$WORK/ub.err" ||
    { cat "$WORK/ub.err" >&2; die "lmstream bench failed"; }
  # Six runs of one sequence in one process: the first warms up, the median of the rest counts.
  ustep="$("$PY" -c 'import json,statistics,sys; l=[json.loads(x) for x in open(sys.argv[1]) if x.startswith("{")]; print(1/statistics.median(x["decode_tok_s"] for x in l[1:]))' "$WORK/ub.json")"
  port="$(free_port)"
  start_server "$WORK/us.log" "$LMSTREAM" serve --model "$MODEL" --threads "$THREADS" --host 127.0.0.1 --port "$port"
  wait_ready "$port" /health /ping || { tail -20 "$WORK/us.log" >&2; die "lmstream serve did not come up"; }
  run_loadgen "$WORK/ul.json" --proto tgi --port "$port" --tag-base $((r * 1000)) "${lg_args[@]}" ||
    die "load on lmstream serve failed"
  stop_servers
  echo "us $ustep $(json_field "$WORK/ul.json" inter_token_s) $(json_field "$WORK/ul.json" tokens_per_request)" >>"$WORK/all"
done

us_() { awk -v s="$1" -v c="$2" '$1 == s {print $c * 1e6}' "$WORK/all" | median_in; }
over() { awk -v s="$1" '$1 == s {print ($3 - $2) * 1e6}' "$WORK/all" | median_in; }
tpr() { awk -v s="$1" '$1 == s {print $4}' "$WORK/all" | median_in; }
append_results <<EOF
## server overhead per streamed token (micro model, 1 client) — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc)
- lmstream commit: $(commit_desc); peer: $(peer_desc)
- model: ${MODEL#"$BENCH_ROOT"/}; threads $THREADS; 1 client, $REQS sequential requests of ~$PROMPT prompt tokens and $GEN new tokens (greedy); $ROUNDS interleaved rounds, median
- engine step = 1 / decode tok/s of \`lmstream bench --prompt-tokens $PROMPT --gen-tokens $GEN --concurrency 1,1,1,1,1,1\` (median of runs 2–6; each decode step includes the greedy argmax) (llama.cpp: \`llama-bench -p 0 -n $GEN -r 3\`);
  streamed gap = mean time between consecutive token events seen by bench/loadgen.py; overhead = gap − step (includes HTTP/SSE framing, detokenization, scheduling hand-off, and the Python client's own parsing, equally for both)

| µs per token | lmstream | llama.cpp | ratio us/peer |
|---|---|---|---|
| engine step | $(fmt "$(us_ us 2)") | $(fmt "$(us_ peer 2)") | $(ratio "$(us_ us 2)" "$(us_ peer 2)") |
| streamed inter-token gap | $(fmt "$(us_ us 3)") | $(fmt "$(us_ peer 3)") | $(ratio "$(us_ us 3)" "$(us_ peer 3)") |
| **server overhead** (gap − step) | $(fmt "$(over us)") | $(fmt "$(over peer)") | $(ratio "$(over us)" "$(over peer)") |
| tokens per request | $(fmt "$(tpr us)") | $(fmt "$(tpr peer)") | – |
EOF
