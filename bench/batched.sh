#!/usr/bin/env bash
# Rolling-batch benchmark (issue "rolling batch"): aggregate decode speed with 16 and 32 concurrent
# sequences (128-token prompts, 32 new tokens each) of lmstream vs llama.cpp's llama-batched-bench,
# same TinyLlama-shaped GGUF Q8_0 model and thread count, interleaved rounds, medians.
# Appends a table to bench/RESULTS.md.
# Usage (from the repo root): bench/batched.sh   [env: ROUNDS=3 THREADS=2 MODEL=path LMSTREAM=path
#   PEER_LEVELS="16 32" US_LEVELS=1,4,16,32,64]
set -euo pipefail
source bench/lib.sh

PROMPT=128
GEN=32
read -r -a PEER_LEVELS <<<"${PEER_LEVELS:-16 32}"
US_LEVELS="${US_LEVELS:-1,4,16,32,64}"
need_peer
need_lmstream bench
MODEL="${MODEL:-$(ensure_model tinyllama)}"
[[ -s "$MODEL" ]] || die "model $MODEL missing"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# -c: 32 sequences x (128 + 32) = 5120 cells fit in 8192; each sequence has its own prompt (no -pps),
# decode steps batch one token of every sequence (llama-batched-bench's default pattern), and
# speed_tg = sequences x 32 / decode time is the aggregate decode speed.
peer_cmd=("$LLAMA_BATCHED_BENCH" -m "$MODEL" -t "$THREADS" -tb "$THREADS" -c 8192 -b 2048 -ub 512
          -npp "$PROMPT" -ntg "$GEN" -npl "$(IFS=,; echo "${PEER_LEVELS[*]}")")
us_cmd=("$LMSTREAM" bench --model "$MODEL" --threads "$THREADS" --prompt-tokens "$PROMPT"
        --gen-tokens "$GEN" --concurrency "$US_LEVELS" --json)

# results accumulate as lines "side level decode prefill ttft" in $WORK/all
: >"$WORK/all"
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS: llama-batched-bench"
  timeout "$STEP_TIMEOUT" "${peer_cmd[@]}" >"$WORK/peer.out" 2>&1 ||
    { tail -20 "$WORK/peer.out" >&2; die "llama-batched-bench failed"; }
  "$PY" - "$WORK/peer.out" "${PEER_LEVELS[@]}" >>"$WORK/all" <<'EOF'
import sys
want = {int(x) for x in sys.argv[2:]}
got = set()
# the markdown table (its --output-format jsonl mode drops the last row in this version):
# | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 10 and cells[0].isdigit():
        pl, speed_pp, speed_tg = int(cells[2]), float(cells[5]), float(cells[7])
        print("peer", pl, speed_tg, speed_pp, "n/a")
        got.add(pl)
if got != want: sys.exit(f"llama-batched-bench reported levels {sorted(got)}, wanted {sorted(want)}")
EOF

  log "round $r/$ROUNDS: lmstream bench --concurrency $US_LEVELS"
  timeout "$STEP_TIMEOUT" "${us_cmd[@]}" >"$WORK/us.out" 2>"$WORK/us.err" ||
    { tail -20 "$WORK/us.err" >&2; die "lmstream bench failed"; }
  "$PY" - "$WORK/us.out" "$US_LEVELS" >>"$WORK/all" <<'EOF'
import json, sys
want = {int(x) for x in sys.argv[2].split(",")}
got = set()
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        o = json.loads(line)
        print("us", o["concurrency"], o["decode_tok_s"], o.get("prefill_tok_s", "n/a"), o.get("ttft_s", "n/a"))
        got.add(o["concurrency"])
if got != want: sys.exit(f"lmstream bench reported levels {sorted(got)}, wanted {sorted(want)}")
EOF
done

# median per (side, level, column): col 3 decode, 4 prefill, 5 ttft
med() { awk -v s="$1" -v l="$2" -v c="$3" '$1 == s && $2 == l && $c != "n/a" {print $c}' "$WORK/all" | median_in; }
rounds_of() { awk -v s="$1" -v l="$2" '$1 == s && $2 == l {printf "%.1f ", $3}' "$WORK/all"; }
short() { local s="$*"; s="${s//$BENCH_ROOT\//}"; echo "${s//$(dirname "$LLAMA_BATCHED_BENCH")\//}"; }

rows=""
for lvl in ${US_LEVELS//,/ }; do
  us_d="$(med us "$lvl" 3)" us_p="$(med us "$lvl" 4)" us_t="$(med us "$lvl" 5)"
  if [[ " ${PEER_LEVELS[*]} " == *" $lvl "* ]]; then
    pe_d="$(med peer "$lvl" 3)" pe_p="$(med peer "$lvl" 4)"
    rows+="| $lvl | $(fmt "$us_d") | $(fmt "$pe_d") | **$(ratio "$us_d" "$pe_d")** | $(fmt "$us_p") | $(fmt "$pe_p") | $(ratio "$us_p" "$pe_p") | $(fmt "$us_t") |"$'\n'
  else
    rows+="| $lvl | $(fmt "$us_d") | – | – | $(fmt "$us_p") | – | – | $(fmt "$us_t") |"$'\n'
  fi
done
per_round=""
for lvl in "${PEER_LEVELS[@]}"; do
  per_round+="B=$lvl llama.cpp: $(rounds_of peer "$lvl")/ lmstream: $(rounds_of us "$lvl")· "
done

append_results <<EOF
## rolling batch (concurrent sequences) — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc)
- lmstream commit: $(commit_desc); peer: $(peer_desc)
- model: $(short "$MODEL"); threads $THREADS; prompt $PROMPT tokens (distinct per sequence), $GEN new tokens each; $ROUNDS interleaved rounds, median
- llama.cpp: \`$(short "${peer_cmd[@]}")\`
- lmstream: \`$(short "${us_cmd[@]}")\`
- decode tok/s = aggregate over all sequences (llama.cpp: speed_tg = B·$GEN / decode time; lmstream: its decode_tok_s)

| sequences | lmstream decode tok/s | llama.cpp decode tok/s | decode ratio us/peer | lmstream prefill tok/s | llama.cpp prefill tok/s | prefill ratio | lmstream TTFT s |
|---|---|---|---|---|---|---|---|
${rows%$'\n'}

Per-round decode tok/s — ${per_round% · }
EOF
