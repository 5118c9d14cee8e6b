#!/usr/bin/env bash
# All-reduce micro-benchmark (issue 17): dist::Comm::allreduce_sum = MPI_Allreduce (fp32, in place)
# for hidden x rows floats, hidden in {2048, 4096, 5120, 8192} (TinyLlama, 7B, 13B, 70B), rows in
# {1, 16, 64} (decode batch) and 512 (a prefill chunk), at 2 and 4 ranks on this host over the
# shared-memory BTL (vader). Compared paths: OpenMPI's default algorithm choice against forced
# recursive doubling (3) and ring (4) (coll_tuned_allreduce_algorithm). Prints JSON lines and a
# markdown table. Usage: bench/allreduce.sh [env: BUILD=build RANKS="2 4" ITERS=200]
set -euo pipefail
BUILD="${BUILD:-build}"
BIN="$BUILD/bench/allreduce_bench"
[[ -x "$BIN" ]] || { echo "build the allreduce_bench target first ($BIN)" >&2; exit 1; }
RANKS="${RANKS:-2 4}"
ITERS="${ITERS:-200}"
MPI=(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader --mca pml ob1
     --mca btl_vader_single_copy_mechanism none)
declare -A ALGO=([default]="" [recursive_doubling]="--mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 3"
                 [ring]="--mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 4")
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
for np in $RANKS; do
  for a in default recursive_doubling ring; do
    # shellcheck disable=SC2086
    nice -n 10 "${MPI[@]}" ${ALGO[$a]} -np "$np" "$BIN" "$ITERS" | sed "s/^{/{\"algo\": \"$a\", /" | tee -a "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\n| ranks | hidden | rows | KiB | default µs | rec. doubling µs | ring µs |")
print("|---|---|---|---|---|---|---|")
key = lambda r: (r["ranks"], r["hidden"], r["rows"])
by = {}
for r in rows:
    by.setdefault(key(r), {})[r["algo"]] = r
for k in sorted(by):
    d = by[k]
    f = lambda a: "%.1f" % d[a]["median_us"] if a in d else "-"
    print("| %d | %d | %d | %.0f | %s | %s | %s |" % (k[0], k[1], k[2], d["default"]["bytes"] / 1024,
          f("default"), f("recursive_doubling"), f("ring")))
PY
