#!/usr/bin/env bash
# F16/BF16 benchmark (issue 13): lmstream bench on a TinyLlama-shaped F16 GGUF (and, with HF=1, the
# same weights as Hugging Face F16 and BF16 safetensors directories) against llama.cpp's llama-bench
# on the same F16 GGUF, interleaved rounds, medians; plus the bandwidth bound measured in the same
# run: file bytes / read bandwidth (a `dd` of the page-cached file to /dev/null, median of rounds).
# Appends a table to bench/RESULTS.md, with the host's THP setting.
# Usage (from the repo root): bench/f16.sh
#   [env: ROUNDS=3 THREADS=2 PROMPT=512 GEN=128 US_PROMPT=64 US_GEN=32 HF=1 LLAMA_BENCH=path]
set -euo pipefail
source bench/lib.sh

PROMPT="${PROMPT:-512}"
GEN="${GEN:-128}"
US_PROMPT="${US_PROMPT:-$PROMPT}"
US_GEN="${US_GEN:-$GEN}"
HF="${HF:-1}"
LLAMA_BENCH="${LLAMA_BENCH:-$BENCH_ROOT/bench/peer/build/bin/llama-bench}"
[[ -x "$LLAMA_BENCH" ]] || LLAMA_BENCH="$BENCH_ROOT/../main/bench/peer/build/bin/llama-bench"
[[ -x "$LLAMA_BENCH" ]] || die "llama-bench not found (set LLAMA_BENCH)"
need_lmstream bench make-test-model

mkdir -p "$MODELS_DIR"
make_model() {  # make_model PATH FORMAT DTYPE
  if [[ ! -e "$1" ]]; then
    log "making $1"
    "$LMSTREAM" make-test-model "$1.tmp" --format "$2" --shape tinyllama --dtype "$3" \
      --tokenizer "$TOKENIZER" >&2 || { rm -rf "$1.tmp"; die "make-test-model failed"; }
    mv "$1.tmp" "$1"
  fi
}
GGUF="$MODELS_DIR/tinyllama-f16.gguf"
make_model "$GGUF" gguf f16
MODELS=("$GGUF")
if [[ "$HF" == 1 ]]; then
  make_model "$MODELS_DIR/tinyllama-f16-hf" hf f16
  make_model "$MODELS_DIR/tinyllama-bf16-hf" hf bf16
  MODELS+=("$MODELS_DIR/tinyllama-f16-hf" "$MODELS_DIR/tinyllama-bf16-hf")
fi
FILE_BYTES="$(stat -L -c %s "$GGUF")"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Read bandwidth: the page-cached file copied to /dev/null (after one warming pass).
read_bw() {
  dd if="$GGUF" of=/dev/null bs=4M 2>&1 | "$PY" -c 'import re,sys
t=sys.stdin.read(); m=re.search(r"(\d+) bytes.*copied, ([\d.]+) s", t)
print(int(m.group(1))/float(m.group(2)))'
}
read_bw >/dev/null

declare -A us_pp us_tg
peer_pp=() peer_tg=() bw=()
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS: read bandwidth"
  bw+=("$(read_bw)")
  log "round $r/$ROUNDS: llama-bench"
  timeout "$STEP_TIMEOUT" "$LLAMA_BENCH" -m "$GGUF" -t "$THREADS" -p "$PROMPT" -n "$GEN" -r 1 -o json \
    >"$WORK/peer.json" 2>"$WORK/peer.err" || { cat "$WORK/peer.err" >&2; die "llama-bench failed"; }
  read -r pp tg < <("$PY" - "$WORK/peer.json" "$PROMPT" "$GEN" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1])); p, g = int(sys.argv[2]), int(sys.argv[3])
pp = [r["avg_ts"] for r in rows if r["n_prompt"] == p and r["n_gen"] == 0]
tg = [r["avg_ts"] for r in rows if r["n_prompt"] == 0 and r["n_gen"] == g]
print(pp[0] if pp else "n/a", tg[0] if tg else "n/a")
PYEOF
  )
  peer_pp+=("$pp") peer_tg+=("$tg")
  for m in "${MODELS[@]}"; do
    log "round $r/$ROUNDS: lmstream bench $(basename "$m")"
    timeout "$STEP_TIMEOUT" "$LMSTREAM" bench --model "$m" --threads "$THREADS" \
      --prompt-tokens "$US_PROMPT" --gen-tokens "$US_GEN" --json >"$WORK/us.json" 2>"$WORK/us.err" ||
      { cat "$WORK/us.err" >&2; die "lmstream bench failed"; }
    read -r pp tg < <("$PY" - "$WORK/us.json" <<'PYEOF'
import json, sys
o = json.loads([l for l in open(sys.argv[1]) if l.strip().startswith("{")][-1])
print(o["prefill_tok_s"], o["decode_tok_s"])
PYEOF
    )
    us_pp[$m]+="$pp " us_tg[$m]+="$tg "
  done
done

m_bw="$(median "${bw[@]}")"
bound="$("$PY" -c "print($m_bw / $FILE_BYTES)")"
m_peer_pp="$(median "${peer_pp[@]}")" m_peer_tg="$(median "${peer_tg[@]}")"
{
  echo
  echo "## F16/BF16 weights in place (issue 13) — $(date -u '+%Y-%m-%d %H:%M') UTC"
  echo
  echo "$(machine_desc); host THP: \`$(cat /sys/kernel/mm/transparent_hugepage/enabled)\`; commit $(commit_desc); llama-bench $LLAMA_BENCH."
  echo "TinyLlama-shaped random model (make-test-model --shape tinyllama), F16 GGUF $FILE_BYTES bytes; ROUNDS=$ROUNDS, THREADS=$THREADS;"
  echo "llama-bench \`-p $PROMPT -n $GEN -t $THREADS\`; lmstream \`bench --prompt-tokens $US_PROMPT --gen-tokens $US_GEN\`."
  echo "Read bandwidth (dd of the page-cached GGUF to /dev/null, median): $(fmt "$("$PY" -c "print($m_bw/1e9)")") GB/s → bandwidth bound $(fmt "$bound") tok/s."
  echo
  echo "| model | lmstream prefill tok/s | llama.cpp pp$PROMPT (F16 GGUF) | ratio | lmstream decode tok/s | llama.cpp tg$GEN | ratio | decode / bandwidth bound |"
  echo "|---|---|---|---|---|---|---|---|"
  for m in "${MODELS[@]}"; do
    # shellcheck disable=SC2086
    p="$(median ${us_pp[$m]})" t="$(median ${us_tg[$m]})"
    echo "| $(basename "$m") | $(fmt "$p") | $(fmt "$m_peer_pp") | $(ratio "$p" "$m_peer_pp") | $(fmt "$t") | $(fmt "$m_peer_tg") | $(ratio "$t" "$m_peer_tg") | $(ratio "$t" "$bound") |"
  done
  echo
  echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
} | append_results
