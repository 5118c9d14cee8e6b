#!/usr/bin/env bash
# Prefix-caching benchmark (issue 14): streaming TTFT of a request that shares a ~1,000-token
# system prompt with an earlier one (bench/prefix_ttft.py), against
#   - lmstream serve (prefix caching on, the default),
#   - lmstream serve --prefix-caching off,
#   - llama.cpp's llama-server with cache_prompt, the second request on a different slot (-np 2,
#     id_slot 0 then 1): llama-server reuses only a slot's own previous prompt;
# and, on traffic with no shared prefixes (bench/loadgen.py, 8 clients, distinct prompts), the
# aggregate streamed tok/s of lmstream with caching on vs off. Same model and threads, interleaved
# rounds (fresh servers each), medians. Records the host's THP setting. Appends to bench/RESULTS.md.
# Usage (from the repo root): bench/prefix.sh   [env: ROUNDS=3 THREADS=2 TRIALS=3 MODEL=path
#   SKIP_PEER=1 to leave llama-server out, SIDES="peer on" to choose the TTFT sides, TPUT=0 to skip
#   the throughput runs]
set -euo pipefail
source bench/lib.sh
source bench/server_lib.sh

TRIALS="${TRIALS:-3}"
CLIENTS="${CLIENTS:-8}"
GEN=32
[[ "${SKIP_PEER:-0}" == 1 ]] || need_peer
need_lmstream serve
MODEL="${MODEL:-$(ensure_model tinyllama)}"
[[ -s "$MODEL" ]] || die "model $MODEL missing"
THP="$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unavailable)"

WORK="$(mktemp -d)"
trap 'stop_servers; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# Two slots of 2,048 tokens each for llama-server.
peer_cmd() { echo "${LLAMA_SERVER:-llama-server}" -m "$MODEL" -t "$THREADS" -tb "$THREADS" -np 2 -c 4096 --host 127.0.0.1 --port "$1"; }
us_cmd() { echo "$LMSTREAM" serve --model "$MODEL" --threads "$THREADS" --host 127.0.0.1 --port "$1" --prefix-caching "$2"; }

# start NAME PORT : the server for side NAME (peer | on | off), waited for.
start() {
  local name="$1" port="$2"
  # shellcheck disable=SC2046 # word splitting of the command is intended (no spaces in paths)
  if [[ "$name" == peer ]]; then
    start_server "$WORK/$name.log" $(peer_cmd "$port")
    wait_ready "$port" /health || { tail -20 "$WORK/$name.log" >&2; die "llama-server did not come up"; }
  else
    start_server "$WORK/$name.log" $(us_cmd "$port" "$name")
    wait_ready "$port" /health /ping || { tail -20 "$WORK/$name.log" >&2; die "lmstream serve did not come up"; }
  fi
}

# ttft_side NAME ROUND : shared-prefix TTFT trials; appends "NAME b_p50 a_p50 prompt cached" to $WORK/ttft.
ttft_side() {
  local name="$1" round="$2" port proto=tgi
  [[ "$name" == peer ]] && proto=llama
  port="$(free_port)"
  log "TTFT round $round/$ROUNDS: $name (port $port)"
  start "$name" "$port"
  timeout "$STEP_TIMEOUT" "$PY" bench/prefix_ttft.py --proto "$proto" --port "$port" --trials "$TRIALS" \
    --system-words "${SYSTEM_WORDS:-662}" --tag-base $((round * 100)) >"$WORK/t.json" || { cat "$WORK/t.json" >&2; stop_servers; die "$name TTFT failed"; }
  stop_servers
  "$PY" - "$WORK/t.json" "$name" >>"$WORK/ttft" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
fmt = lambda v: "/".join(str(int(x)) for x in v if x is not None) or "n/a"
print(sys.argv[2], o["ttft_b_p50_s"], o["ttft_a_p50_s"], fmt(o["prompt_tokens"]), fmt(o["cached_tokens"]),
      " ".join(f"{x:.3g}" for x in o["ttft_b_all_s"]))
EOF
}

# tput_side NAME ROUND : loadgen over distinct prompts; appends "NAME agg_tok_s ttft_p50" to $WORK/tput.
tput_side() {
  local name="$1" round="$2" port
  port="$(free_port)"
  log "throughput round $round/$ROUNDS: caching $name (port $port)"
  start "$name" "$port"
  run_loadgen "$WORK/lg.json" --proto tgi --port "$port" --clients "$CLIENTS" \
    --new-tokens "$GEN" --tag-base $((round * 1000)) || { stop_servers; die "$name load failed"; }
  stop_servers
  echo "$name $(json_field "$WORK/lg.json" agg_tok_s) $(json_field "$WORK/lg.json" ttft_p50_s)" >>"$WORK/tput"
}

: >"$WORK/ttft"
: >"$WORK/tput"
# SIDES: which TTFT sides run (peer on off); TPUT=0 skips the no-shared-prefix throughput runs.
SIDES="${SIDES:-peer on off}"
[[ "${SKIP_PEER:-0}" == 1 ]] && SIDES="${SIDES//peer/}"
for ((r = 1; r <= ROUNDS; r++)); do
  for side in $SIDES; do ttft_side "$side" "$r"; done
  if [[ "${TPUT:-1}" == 1 ]]; then
    tput_side off "$r"
    tput_side on "$r"
  fi
done

med() { awk -v s="$1" -v c="$3" '$1 == s {print $c}' "$WORK/$2" | median_in; }
col() { awk -v s="$1" -v c="$3" '$1 == s {printf "%s ", $c}' "$WORK/$2"; }
rounds_of() { awk -v s="$1" '$1 == s {for (i = 6; i <= NF; i++) printf "%s ", $i}' "$WORK/ttft"; }
short() { local s="$*"; s="${s//$BENCH_ROOT\//}"; echo "${s//$(dirname "${LLAMA_SERVER:-x}")\//}"; }
on_b="$(med on ttft 2)" off_b="$(med off ttft 2)" peer_b="$(med peer ttft 2)"
on_a="$(med on ttft 3)" off_a="$(med off ttft 3)" peer_a="$(med peer ttft 3)"
t_on="$(med on tput 2)" t_off="$(med off tput 2)"
tt_on="$(med on tput 3)" tt_off="$(med off tput 3)"

append_results <<EOF
## prefix caching: TTFT with a shared ~1,000-token system prompt — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc)
- transparent huge pages: \`$THP\`
- lmstream commit: $(commit_desc); peer: $([[ "${SKIP_PEER:-0}" == 1 ]] && echo "not run (SKIP_PEER=1)" || peer_desc)
- model: $(short "$MODEL"); threads $THREADS; $ROUNDS interleaved rounds (fresh servers each), $TRIALS trials per round, median of the per-round medians
- each trial: a fresh system prompt (distinct per trial), request A = system + question 1, then request B = system + another question; TTFT(B) = request sent → first streamed token; 8 new tokens, greedy
- lmstream: \`$(short "$(us_cmd PORT on)")\` / \`… --prefix-caching off\` + POST /generate_stream
- llama.cpp: \`$(short "$(peer_cmd PORT)")\` + POST /completion with \`cache_prompt: true\`, A on \`id_slot\` 0, B on \`id_slot\` 1
- prompt tokens of B (server-reported; lmstream from /metrics queries) — on: $(col on ttft 4)/ peer: $(col peer ttft 4); tokens of B served from a cache — lmstream on: $(col on ttft 5)/ llama.cpp (timings.cache_n): $(col peer ttft 5)

(on / off ≤ 0.10 means ≥ 10× lower TTFT; on / llama.cpp ≤ 0.20 means ≥ 5× lower.)

| metric | lmstream (cache on) | lmstream (cache off) | llama.cpp (other slot) | on / off | on / llama.cpp |
|---|---|---|---|---|---|
| TTFT of B, s | $(fmt "$on_b") | $(fmt "$off_b") | $(fmt "$peer_b") | **$(ratio "$on_b" "$off_b")** | **$(ratio "$on_b" "$peer_b")** |
| TTFT of A (nothing cached), s | $(fmt "$on_a") | $(fmt "$off_a") | $(fmt "$peer_a") | $(ratio "$on_a" "$off_a") | $(ratio "$on_a" "$peer_a") |

Per-trial TTFT(B) s — on: $(rounds_of on)/ off: $(rounds_of off)/ llama.cpp: $(rounds_of peer)

No shared prefixes ($CLIENTS streaming clients, distinct ~130-token prompts, $GEN new tokens, bench/loadgen.py):

| metric | cache on | cache off | on / off |
|---|---|---|---|
| aggregate streamed tok/s | $(fmt "$t_on") | $(fmt "$t_off") | **$(ratio "$t_on" "$t_off")** |
| TTFT p50 s | $(fmt "$tt_on") | $(fmt "$tt_off") | $(ratio "$tt_on" "$tt_off") |

Per-round tok/s — on: $(col on tput 2)/ off: $(col off tput 2)
EOF
