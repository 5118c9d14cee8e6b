# Shared helpers for the bench/*.sh harnesses (sourced, not run): locating lmstream and the
# llama.cpp peer tools, making the test models, describing the machine/commit, medians, and
# appending to bench/RESULTS.md.
# shellcheck shell=bash

[[ -f bench/lib.sh && -f CMakeLists.txt ]] || { echo "run from the repo root" >&2; exit 2; }

BENCH_ROOT="$(pwd)"
LMSTREAM="${LMSTREAM:-$BENCH_ROOT/build/cli/lmstream}"
TOKENIZER="${TOKENIZER:-$BENCH_ROOT/../shared/testdata/llama2-tokenizer.model}"
MODELS_DIR="$BENCH_ROOT/bench/models"
RESULTS="${RESULTS:-$BENCH_ROOT/bench/RESULTS.md}"   # point elsewhere for trial runs
ROUNDS="${ROUNDS:-3}"          # interleaved rounds per side; the median is reported
THREADS="${THREADS:-2}"
STEP_TIMEOUT="${STEP_TIMEOUT:-900}"   # seconds; bound on any single measured command
PY="${PY:-python3}"            # stdlib only
BENCH_LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"   # other jobs on the box skew both sides

die() { echo "error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

# Requires a Release build of lmstream (the scripts never build it themselves).
need_lmstream() {
  [[ -x "$LMSTREAM" ]] || die "lmstream binary not found at $LMSTREAM; build it with:
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build --target lmstream"
  local sub
  for sub in "$@"; do
    "$LMSTREAM" "$sub" --help >/dev/null 2>&1 || die "lmstream has no working '$sub' subcommand yet"
  done
}

# Loads LLAMA_BENCH / LLAMA_BATCHED_BENCH / LLAMA_SERVER / PEER_* from bench/peer/tools.env.
need_peer() {
  local env="$BENCH_ROOT/bench/peer/tools.env"
  [[ -f "$env" ]] || die "peer not set up; run bench/peer-setup.sh first"
  # shellcheck disable=SC1090
  source "$env"
  local v
  for v in LLAMA_BENCH LLAMA_BATCHED_BENCH LLAMA_SERVER; do
    [[ -x "${!v:-}" ]] || die "peer tool $v missing (${!v:-unset}); re-run bench/peer-setup.sh"
  done
}

# ensure_model SHAPE -> prints the path of bench/models/<shape>-q8_0.gguf, making it if absent.
ensure_model() {
  local shape="$1" path="$MODELS_DIR/$1-q8_0.gguf"
  if [[ ! -s "$path" ]]; then
    [[ -f "$TOKENIZER" ]] || die "tokenizer not found at $TOKENIZER"
    mkdir -p "$MODELS_DIR"
    log "making $path"
    "$LMSTREAM" make-test-model "$path.tmp" --format gguf --shape "$shape" --dtype q8_0 \
      --tokenizer "$TOKENIZER" >&2 || { rm -f "$path.tmp"; die "make-test-model failed"; }
    mv "$path.tmp" "$path"
  fi
  echo "$path"
}

machine_desc() {
  local cpu flags
  cpu="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  flags="$(grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "${cpu:-unknown CPU}, nproc $(nproc), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), ${flags% }; THP \`$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unavailable)\`; load average at start ${BENCH_LOAD_START:-?}, at end $(cut -d' ' -f1-3 /proc/loadavg)"
}

commit_desc() {
  local c
  c="$(git rev-parse --short HEAD 2>/dev/null || echo "no-commit")"
  [[ -z "$(git status --porcelain 2>/dev/null | head -1)" ]] || c="$c (dirty tree)"
  echo "$c"
}

peer_desc() { echo "llama.cpp ${PEER_COMMIT:-?} via ${PEER_VERSION:-?}, ${PEER_KIND:-?}${PEER_ISA_FLAGS:+, built with $PEER_ISA_FLAGS (llama.cpp#20824)}"; }

# median of numbers given as arguments (prints "n/a" when none); median_in: of numbers on stdin.
median() { "$PY" -c 'import sys,statistics as s; v=[float(x) for x in sys.argv[1:]]; print(s.median(v) if v else "n/a")' "$@"; }
median_in() { "$PY" -c 'import sys,statistics as s; v=[float(x) for x in sys.stdin.read().split()]; print(s.median(v) if v else "n/a")'; }

# ratio A B -> A/B with 2 decimals ("n/a" if either is missing or B is 0).
ratio() { "$PY" -c 'import sys
try: a,b=float(sys.argv[1]),float(sys.argv[2]); print(f"{a/b:.2f}" if b else "n/a")
except ValueError: print("n/a")' "$1" "$2"; }

# fmt X -> X rounded for a table: 1 decimal from 100, 2 from 1, else 3 significant digits
# (passes "n/a" through).
fmt() { "$PY" -c 'import sys
try: x=float(sys.argv[1]); print(f"{x:.1f}" if abs(x)>=100 else f"{x:.2f}" if abs(x)>=1 else f"{x:.3g}")
except ValueError: print(sys.argv[1])' "$1"; }

# fmt_list X... -> the values rounded to 3 significant digits, space separated.
fmt_list() { "$PY" -c 'import sys; print(" ".join(f"{float(x):.3g}" for x in sys.argv[1:]))' "$@"; }

# max RSS in bytes from a /usr/bin/time -v log.
time_maxrss_bytes() { awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2*1024}' "$1"; }

# Ensures bench/RESULTS.md exists with its header, then appends stdin to it and echoes it.
append_results() {
  if [[ ! -f "$RESULTS" ]]; then
    cat >"$RESULTS" <<'EOF'
# Benchmark results: lmstream vs llama.cpp, measured side by side

Each section was appended by one run of a bench/*.sh script (see bench/README.md) on the machine it
names. Columns:

- **lmstream** / **llama.cpp**: the median over the interleaved rounds (peer, us, peer, us, ...) of
  that run; both sides use the same model file, the same thread count and the same prompt/generation
  lengths.
- **ratio us/peer**: lmstream ÷ llama.cpp. For throughputs (tok/s) higher is better for us when > 1;
  for times (TTFT) and memory, lower is better for us when < 1.
- **command**: what was run for each side (paths shortened).
- Memory rows compare lmstream's resident set with its budget: model file size + KV bytes + 150 MB.
- The machine line gives the load average at start and end: on this shared 2-core box a load well
  above 2 means other jobs competed, which hurts llama.cpp's spinning thread pool more than
  lmstream (see bench/README.md); such sections flatter lmstream.

Only figures actually measured are recorded here; ratios from different runs are not comparable
(the machine is shared and noisy), only the ratio within one section is.
EOF
  fi
  local tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  { echo; cat "$tmp"; } >>"$RESULTS"
  cat "$tmp"
  rm -f "$tmp"
}
