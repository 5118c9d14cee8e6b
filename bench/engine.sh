#!/usr/bin/env bash
# Core engine benchmark (issue "core engine"): single-sequence prefill (512-token prompt) and decode
# (128 tokens) speed of lmstream vs llama.cpp's llama-bench on the same TinyLlama-shaped GGUF Q8_0
# model with the same thread count, interleaved rounds, medians; plus lmstream's resident memory
# against its budget (file size + KV bytes + 150 MB). Appends a table to bench/RESULTS.md.
# Usage (from the repo root): bench/engine.sh   [env: ROUNDS=3 THREADS=2 MODEL=path LMSTREAM=path]
set -euo pipefail
source bench/lib.sh

PROMPT=512
GEN=128
need_peer
need_lmstream bench
MODEL="${MODEL:-$(ensure_model tinyllama)}"
[[ -s "$MODEL" ]] || die "model $MODEL missing"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

peer_cmd=("$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p "$PROMPT" -n "$GEN" -r 1 -o json)
us_cmd=("$LMSTREAM" bench --model "$MODEL" --threads "$THREADS" --prompt-tokens "$PROMPT"
        --gen-tokens "$GEN" --json)

peer_pp=() peer_tg=() peer_rss=() us_pp=() us_tg=() us_ttft=() us_rss=() us_rss_ext=()
us_kv="" us_model_bytes="" us_kernels=""

for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS: llama-bench"
  /usr/bin/time -v -o "$WORK/peer.time" timeout "$STEP_TIMEOUT" "${peer_cmd[@]}" \
    >"$WORK/peer.json" 2>"$WORK/peer.err" || { cat "$WORK/peer.err" >&2; die "llama-bench failed"; }
  read -r pp tg < <("$PY" - "$WORK/peer.json" "$PROMPT" "$GEN" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1])); p, g = int(sys.argv[2]), int(sys.argv[3])
pp = [r["avg_ts"] for r in rows if r["n_prompt"] == p and r["n_gen"] == 0]
tg = [r["avg_ts"] for r in rows if r["n_prompt"] == 0 and r["n_gen"] == g]
if not pp or not tg: sys.exit("llama-bench JSON lacks pp/tg rows")
print(pp[0], tg[0])
EOF
  )
  peer_pp+=("$pp") peer_tg+=("$tg") peer_rss+=("$(time_maxrss_bytes "$WORK/peer.time")")

  log "round $r/$ROUNDS: lmstream bench"
  /usr/bin/time -v -o "$WORK/us.time" timeout "$STEP_TIMEOUT" "${us_cmd[@]}" \
    >"$WORK/us.json" 2>"$WORK/us.err" || { cat "$WORK/us.err" >&2; die "lmstream bench failed"; }
  read -r pp tg ttft rss kv mb kern < <("$PY" - "$WORK/us.json" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith("{")]
if not lines: sys.exit("lmstream bench printed no JSON object")
o = json.loads(lines[-1])
print(*(o[k] for k in ("prefill_tok_s", "decode_tok_s", "ttft_s", "rss_bytes", "kv_bytes", "model_bytes")),
      o.get("kernels", "?"))
EOF
  )
  us_pp+=("$pp") us_tg+=("$tg") us_ttft+=("$ttft") us_rss+=("$rss")
  us_rss_ext+=("$(time_maxrss_bytes "$WORK/us.time")")
  us_kv="$kv" us_model_bytes="$mb" us_kernels="$kern"
done

m_peer_pp="$(median "${peer_pp[@]}")" m_peer_tg="$(median "${peer_tg[@]}")"
m_us_pp="$(median "${us_pp[@]}")" m_us_tg="$(median "${us_tg[@]}")" m_us_ttft="$(median "${us_ttft[@]}")"
m_us_rss="$(median "${us_rss[@]}")" m_us_rss_ext="$(median "${us_rss_ext[@]}")"
m_peer_rss="$(median "${peer_rss[@]}")"
file_bytes="$(stat -c %s "$MODEL")"
budget=$((file_bytes + us_kv + 150 * 1000 * 1000))
mib() { "$PY" -c 'import sys; print(f"{float(sys.argv[1])/1048576:.0f} MiB")' "$1"; }
verdict() { "$PY" -c 'import sys; print("within" if float(sys.argv[1]) <= float(sys.argv[2]) else "OVER")' "$1" "$2"; }
short() { local s="$*"; s="${s//$BENCH_ROOT\//}"; echo "${s//$(dirname "$LLAMA_BENCH")\//}"; }

append_results <<EOF
## engine (single sequence) — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc)
- lmstream commit: $(commit_desc), kernels $us_kernels; peer: $(peer_desc)
- model: $(short "$MODEL") ($(mib "$file_bytes"), lmstream reports model_bytes $us_model_bytes, kv_bytes $us_kv)
- threads $THREADS, prompt $PROMPT, generate $GEN; $ROUNDS interleaved rounds, median
- llama.cpp: \`$(short "${peer_cmd[@]}")\`
- lmstream: \`$(short "${us_cmd[@]}")\`

| metric | lmstream | llama.cpp | ratio us/peer |
|---|---|---|---|
| prefill tok/s (pp$PROMPT) | $(fmt "$m_us_pp") | $(fmt "$m_peer_pp") | $(ratio "$m_us_pp" "$m_peer_pp") |
| decode tok/s (tg$GEN) | $(fmt "$m_us_tg") | $(fmt "$m_peer_tg") | $(ratio "$m_us_tg" "$m_peer_tg") |
| TTFT s (lmstream only) | $(fmt "$m_us_ttft") | – | – |
| max RSS, /usr/bin/time -v | $(mib "$m_us_rss_ext") | $(mib "$m_peer_rss") | $(ratio "$m_us_rss_ext" "$m_peer_rss") |
| lmstream RSS, self-reported | $(mib "$m_us_rss") | – | – |
| lmstream RSS budget (file + KV + 150 MB) | $(mib "$budget"): self-reported $(verdict "$m_us_rss" "$budget"), external $(verdict "$m_us_rss_ext" "$budget") | – | – |

Per-round tok/s — llama.cpp pp: $(fmt_list "${peer_pp[@]}"); tg: $(fmt_list "${peer_tg[@]}") · lmstream pp: $(fmt_list "${us_pp[@]}"); tg: $(fmt_list "${us_tg[@]}")
EOF
