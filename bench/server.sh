#!/usr/bin/env bash
# Serving benchmark (issue "serve"): 8 concurrent streaming clients (bench/loadgen.py), each sending
# one distinct ~130-token prompt for 32 new tokens, against llama.cpp's llama-server (/completion)
# and `lmstream serve` (TGI /generate_stream), same model and threads, interleaved rounds (each
# round starts a fresh server), medians. Reports TTFT p50/p90 and aggregate streamed tokens/s.
# Appends a table to bench/RESULTS.md. Servers started here are stopped on exit.
# Usage (from the repo root): bench/server.sh   [env: ROUNDS=3 THREADS=2 CLIENTS=8 MODEL=path]
set -euo pipefail
source bench/lib.sh
source bench/server_lib.sh

CLIENTS="${CLIENTS:-8}"
GEN=32
need_peer
need_lmstream serve
MODEL="${MODEL:-$(ensure_model tinyllama)}"
[[ -s "$MODEL" ]] || die "model $MODEL missing"

WORK="$(mktemp -d)"
trap 'stop_servers; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# -c: llama-server splits the context among its -np slots: 4096 / 8 = 512 tokens per slot.
peer_cmd() { echo "$LLAMA_SERVER" -m "$MODEL" -t "$THREADS" -tb "$THREADS" -np "$CLIENTS" -c $((CLIENTS * 512)) --host 127.0.0.1 --port "$1"; }
us_cmd() { echo "$LMSTREAM" serve --model "$MODEL" --threads "$THREADS" --host 127.0.0.1 --port "$1"; }

# one_side NAME PROTO ROUND : start the server, run the load, stop it; appends a row to $WORK/all.
one_side() {
  local name="$1" proto="$2" round="$3" port
  port="$(free_port)"
  log "round $round/$ROUNDS: $name (port $port)"
  # shellcheck disable=SC2046 # word splitting of the command is intended (no spaces in paths)
  if [[ "$name" == peer ]]; then
    start_server "$WORK/$name.log" $(peer_cmd "$port")
    wait_ready "$port" /health || { tail -20 "$WORK/$name.log" >&2; die "llama-server did not come up"; }
  else
    start_server "$WORK/$name.log" $(us_cmd "$port")
    wait_ready "$port" /health /ping || { tail -20 "$WORK/$name.log" >&2; die "lmstream serve did not come up"; }
  fi
  run_loadgen "$WORK/lg.json" --proto "$proto" --port "$port" --clients "$CLIENTS" \
    --new-tokens "$GEN" --tag-base $((round * 1000)) || { stop_servers; die "$name load failed"; }
  stop_servers
  echo "$name $(json_field "$WORK/lg.json" ttft_p50_s) $(json_field "$WORK/lg.json" ttft_p90_s)" \
       "$(json_field "$WORK/lg.json" agg_tok_s) $(json_field "$WORK/lg.json" tokens_per_request)" \
       "$(json_field "$WORK/lg.json" prompt_tokens | tr -d ' ' | sed 's/^\[\]$/n\/a/')" >>"$WORK/all"
}

: >"$WORK/all"
for ((r = 1; r <= ROUNDS; r++)); do
  one_side peer llama "$r"
  one_side us tgi "$r"
done

med() { awk -v s="$1" -v c="$2" '$1 == s {print $c}' "$WORK/all" | median_in; }
rounds_of() { awk -v s="$1" -v c="$2" '$1 == s {printf "%.3g ", $c}' "$WORK/all"; }
short() { local s="$*"; s="${s//$BENCH_ROOT\//}"; echo "${s//$(dirname "$LLAMA_SERVER")\//}"; }
u50="$(med us 2)" p50="$(med peer 2)" u90="$(med us 3)" p90="$(med peer 3)"
ut="$(med us 4)" pt="$(med peer 4)" un="$(med us 5)" pn="$(med peer 5)"

append_results <<EOF
## serve ($CLIENTS concurrent streaming clients) — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc)
- lmstream commit: $(commit_desc); peer: $(peer_desc)
- model: $(short "$MODEL"); threads $THREADS; $CLIENTS clients x 1 request, distinct prompts of ~130 tokens (server-reported prompt tokens: llama.cpp $(awk '$1=="peer"{print $6}' "$WORK/all" | sort -u | tr '\n' ' ')/ lmstream $(awk '$1=="us"{print $6}' "$WORK/all" | sort -u | tr '\n' ' ')), $GEN new tokens, greedy; 1 warm-up request per server; $ROUNDS interleaved rounds (fresh server each), median
- llama.cpp: \`$(short "$(peer_cmd PORT)")\` + POST /completion
- lmstream: \`$(short "$(us_cmd PORT)")\` + POST /generate_stream
- TTFT = request sent → first token event received; aggregate tok/s = token events received by all clients ÷ (last token − first request sent)

| metric | lmstream | llama.cpp | ratio us/peer |
|---|---|---|---|
| TTFT p50 s | $(fmt "$u50") | $(fmt "$p50") | $(ratio "$u50" "$p50") |
| TTFT p90 s | $(fmt "$u90") | $(fmt "$p90") | $(ratio "$u90" "$p90") |
| aggregate streamed tok/s | $(fmt "$ut") | $(fmt "$pt") | **$(ratio "$ut" "$pt")** |
| tokens per request | $(fmt "$un") | $(fmt "$pn") | – |

Per-round aggregate tok/s — llama.cpp: $(rounds_of peer 4)/ lmstream: $(rounds_of us 4)
EOF
