#!/usr/bin/env bash
# Tensor-parallel benchmark (issue 17), one run on this host: decode tok/s and prefill tok/s of
# `lmstream bench` at TP=1 (one process, THREADS threads) and TP=2 (mpirun -np 2, THREADS/2
# threads per rank: the same cores), each rank's resident memory against its budget
# (1/N of the weights + the replicated embedding + 150 MB), and the all-reduce latency of one
# decode step's message (hidden x 1 fp32, bench/allreduce_bench) with what the 2 x layers
# all-reduces of a step cost. Prints a markdown block; append it to bench/RESULTS.md by hand.
# Usage (repo root): bench/tp.sh   [env: MODEL=path THREADS=2 PROMPT=128 GEN=32]
set -euo pipefail
source bench/lib.sh
need_lmstream bench
MODEL="${MODEL:-$(ensure_model tinyllama)}"
PROMPT="${PROMPT:-128}"
GEN="${GEN:-32}"
AR="$BENCH_ROOT/build/bench/allreduce_bench"
[[ -x "$AR" ]] || die "build the allreduce_bench target first"
MPI=(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader --mca pml ob1
     --mca btl_vader_single_copy_mechanism none)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
half=$(( THREADS / 2 > 0 ? THREADS / 2 : 1 ))

log "TP=1: $THREADS threads"
nice -n 10 "$LMSTREAM" bench --model "$MODEL" --threads "$THREADS" --prompt-tokens "$PROMPT" \
  --gen-tokens "$GEN" --json >"$WORK/tp1.json" 2>"$WORK/tp1.err" || { cat "$WORK/tp1.err" >&2; die "TP=1 failed"; }
log "TP=2: 2 ranks x $half thread(s)"
nice -n 10 "${MPI[@]}" -np 2 "$LMSTREAM" bench --model "$MODEL" --threads "$half" --prompt-tokens "$PROMPT" \
  --gen-tokens "$GEN" --json >"$WORK/tp2.json" 2>"$WORK/tp2.err" || { cat "$WORK/tp2.err" >&2; die "TP=2 failed"; }
log "all-reduce, 2 ranks"
nice -n 10 "${MPI[@]}" -np 2 "$AR" 200 >"$WORK/ar.json"

"$PY" - "$WORK" "$MODEL" <<'PY'
import json, os, re, subprocess, sys
work, model = sys.argv[1], sys.argv[2]
tp1 = json.loads(open(os.path.join(work, "tp1.json")).read().splitlines()[-1])
tp2 = json.loads(open(os.path.join(work, "tp2.json")).read().splitlines()[-1])
err2 = open(os.path.join(work, "tp2.err")).read()
ranks = {0: tp2["rss_bytes"] / 2**20}
for m in re.finditer(r"rank (\d+): resident ([\d.]+) MiB", err2):
    ranks[int(m.group(1))] = float(m.group(2))
ar = [json.loads(l) for l in open(os.path.join(work, "ar.json")) if l.startswith("{")]
size = os.path.getsize(model)
# The shape from the file name's shape (make-test-model tinyllama: 2048 hidden, 22 layers, 32000 vocab, q8_0).
H, L, V = 2048, 22, 32000
emb = V * H * 34 // 32  # q8_0 embedding rows, replicated (only looked-up rows become resident)
budget = size / 2 / 2**20 + emb / 2**20 + 150
dec = [r for r in ar if r["hidden"] == H and r["rows"] == 1][0]
step_ar_ms = 2 * L * dec["median_us"] / 1000
print("### Tensor parallelism on this host (bench/tp.sh, %s, prompt %s, gen %s)\n" % (os.path.basename(model), tp1["prompt_tokens"], tp1["gen_tokens"]))
print("| | threads | prefill tok/s | decode tok/s | resident MiB per rank | budget MiB |")
print("|---|---|---|---|---|---|")
print("| TP=1 | %d | %.1f | %.2f | %.0f | %.0f |" % (tp1["threads"], tp1["prefill_tok_s"], tp1["decode_tok_s"], tp1["rss_bytes"] / 2**20, size / 2**20 + 150))
print("| TP=2 | 2 x %d | %.1f | %.2f | %s | %.0f |" % (tp2["threads"], tp2["prefill_tok_s"], tp2["decode_tok_s"],
      " / ".join("%.0f" % ranks[r] for r in sorted(ranks)), budget))
print()
print("All-reduce of one decode step's message (%d x 1 fp32 = %d KiB, 2 ranks, vader): median %.1f us, p90 %.1f us;"
      " a step's %d all-reduces: %.2f ms of a %.1f ms TP=2 decode step (%.0f %%)." % (
          H, dec["bytes"] // 1024, dec["median_us"], dec["p90_us"], 2 * L, step_ar_ms,
          1000 / tp2["decode_tok_s"], 100 * step_ar_ms / (1000 / tp2["decode_tok_s"])))
print("Load average at start: %s" % open("/proc/loadavg").read().split()[:3])
PY
