#!/usr/bin/env bash
# K-quant benchmark (issue 13): TinyLlama-shaped Q4_K_M and Q6_K files, both made by llama.cpp's own
# llama-quantize from one F16 GGUF (make-test-model --dtype f16, the file bench/f16.sh uses), then
# bench/engine.sh (pp512, tg128, resident memory against file + KV + 150 MB) and bench/batched.sh
# (16 sequences) on each, so both engines read the very same bytes. Each appends its own table to
# bench/RESULTS.md, naming the file it ran.
# Usage (from the repo root): bench/kquants.sh   [env: ROUNDS=3 THREADS=2 TYPES="Q4_K_M Q6_K"
#                                                   SKIP_BATCHED=1 LMSTREAM=path]
set -euo pipefail
source bench/lib.sh

need_peer
[[ -x "${LLAMA_QUANTIZE:-}" ]] || die "llama-quantize missing (${LLAMA_QUANTIZE:-unset}); re-run bench/peer-setup.sh"
need_lmstream bench make-test-model
TYPES="${TYPES:-Q4_K_M Q6_K}"

mkdir -p "$MODELS_DIR"
F16="$MODELS_DIR/tinyllama-f16.gguf"
if [[ ! -e "$F16" ]]; then
  log "making $F16"
  "$LMSTREAM" make-test-model "$F16.tmp" --format gguf --shape tinyllama --dtype f16 \
    --tokenizer "$TOKENIZER" >&2 || { rm -f "$F16.tmp"; die "make-test-model failed"; }
  mv "$F16.tmp" "$F16"
fi

for t in $TYPES; do
  lower="$(echo "$t" | tr 'A-Z' 'a-z')"
  out="$MODELS_DIR/tinyllama-$lower-llamacpp.gguf"
  if [[ ! -s "$out" || "$out" -ot "$F16" ]]; then
    log "llama-quantize $(basename "$F16") -> $(basename "$out") ($t)"
    "$LLAMA_QUANTIZE" "$F16" "$out.tmp" "$t" "$THREADS" >"$out.log" 2>&1 ||
      { tail -20 "$out.log" >&2; rm -f "$out.tmp"; die "llama-quantize $t failed"; }
    mv "$out.tmp" "$out"
  fi
  log "== $t: bench/engine.sh"
  MODEL="$out" bash bench/engine.sh
  if [[ "${SKIP_BATCHED:-0}" != 1 ]]; then
    log "== $t: bench/batched.sh"
    MODEL="$out" bash bench/batched.sh
  fi
done
