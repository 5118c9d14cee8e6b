#!/usr/bin/env bash
# Download throughput on loopback, lmstream vs curl, side by side in one run (A B A B ...):
#  1. a 1 GiB LFS file from the test Hub server (tests/lmstest/hub_server.py, sendfile):
#     `lmstream download` (API + HEAD + parallel ranged GETs, sha256-verified, fsync'd, renamed
#     into the HF cache) vs `curl -o` of the same CDN URL; target >= 0.9x curl's throughput;
#  2. the same server capping each connection's rate: 8 parallel ranged connections vs 1;
#     target >= 1.8x.
# Appends a section to bench/RESULTS.md (with the host's transparent_hugepage setting).
# Large files live under $BENCH_TMP (default /tmp) and are deleted at the end.
# Env: ROUNDS (3), SIZE_MIB (1024), CAP_MIB_S (per-connection cap, 40), CAP_SIZE_MIB (256).
# The S3 side (moto's server) is bench/download_s3.sh, run at the end.
set -euo pipefail
source bench/lib.sh
need_lmstream download
command -v curl >/dev/null || die "curl is needed"
SIZE_MIB="${SIZE_MIB:-1024}"
CAP_MIB_S="${CAP_MIB_S:-40}"
CAP_SIZE_MIB="${CAP_SIZE_MIB:-256}"
BENCH_TMP="${BENCH_TMP:-/tmp}"
work="$(mktemp -d "$BENCH_TMP/lms-bench-download.XXXXXX")"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

log "making a ${SIZE_MIB} MiB file"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/big.safetensors"
head -c "$((CAP_SIZE_MIB << 20))" "$work/big.safetensors" >"$work/capped.safetensors"

# start_hub NAME [--rate B/S] FILE: starts a test Hub; sets HUB_ENDPOINT and HUB_URL (the CDN URL).
start_hub() {
  local name="$1"
  shift
  PYTHONPATH="$BENCH_ROOT/tests" "$PY" -m lmstest.hub_server --repo "org/$name" "$@" >"$work/$name.json" &
  pids+=($!)
  local i
  for i in $(seq 600); do
    [[ -s "$work/$name.json" ]] && break
    sleep 0.1
  done
  [[ -s "$work/$name.json" ]] || die "test Hub did not start"
  HUB_ENDPOINT="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$work/$name.json")"
  HUB_URL="$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(list(d["files"].values())[0])' "$work/$name.json")"
}

now() { date +%s.%N; }
# t_lms REPO [--connections N]: seconds for a cold `lmstream download` into a fresh cache.
t_lms() {
  local repo="$1"
  shift
  rm -rf "$work/hf"
  sync
  local t0 t1
  t0="$(now)"
  HF_HOME="$work/hf" HF_ENDPOINT="$HUB_ENDPOINT" timeout "$STEP_TIMEOUT" \
    "$LMSTREAM" download "$repo" --include '*.safetensors' --quiet "$@" >"$work/lms.out"
  t1="$(now)"
  "$PY" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1"
}
t_curl() {
  rm -f "$work/curl.out"
  sync
  local t0 t1
  t0="$(now)"
  timeout "$STEP_TIMEOUT" curl -sS -o "$work/curl.out" "$HUB_URL"
  t1="$(now)"
  "$PY" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1"
}
mibs() { "$PY" -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' "$1" "$2"; }

log "1. ${SIZE_MIB} MiB from the test Hub: lmstream download vs curl -o, ${ROUNDS} rounds"
start_hub big "$work/big.safetensors"
t_lms org/big >/dev/null  # warm-up (page cache of the source file)
cmp -s "$work/big.safetensors" "$(cat "$work/lms.out")/big.safetensors" || die "lmstream's copy differs"
lms=() crl=() nfs=()
for r in $(seq "$ROUNDS"); do
  crl+=("$(mibs "$SIZE_MIB" "$(t_curl)")")
  lms+=("$(mibs "$SIZE_MIB" "$(t_lms org/big)")")
  nfs+=("$(mibs "$SIZE_MIB" "$(LMSTREAM_DOWNLOAD_FSYNC=0 t_lms org/big)")")
  log "round $r: curl ${crl[-1]} MiB/s, lmstream ${lms[-1]} MiB/s, lmstream without fsync ${nfs[-1]} MiB/s"
done
lms_med="$(median "${lms[@]}")"
crl_med="$(median "${crl[@]}")"
nfs_med="$(median "${nfs[@]}")"
# Pairwise (same round) ratios: robust to the machine's speed drifting between rounds.
pair_lms=() pair_nfs=()
for i in "${!crl[@]}"; do
  pair_lms+=("$(ratio "${lms[$i]}" "${crl[$i]}")")
  pair_nfs+=("$(ratio "${nfs[$i]}" "${crl[$i]}")")
done

log "2. ${CAP_SIZE_MIB} MiB, server caps each connection at ${CAP_MIB_S} MiB/s: 8 connections vs 1"
start_hub capped --rate "$((CAP_MIB_S << 20))" "$work/capped.safetensors"
p8=() p1=()
for r in $(seq "$ROUNDS"); do
  p1+=("$(mibs "$CAP_SIZE_MIB" "$(t_lms org/capped --connections 1)")")
  p8+=("$(mibs "$CAP_SIZE_MIB" "$(t_lms org/capped --connections 8)")")
  log "round $r: 1 connection ${p1[-1]} MiB/s, 8 connections ${p8[-1]} MiB/s"
done
p1_med="$(median "${p1[@]}")"
p8_med="$(median "${p8[@]}")"

append_results <<MD
## download from the test Hub (loopback) — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc); transparent_hugepage: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo n/a)
- lmstream commit: $(commit_desc); peer: $(curl --version | head -1 | cut -d' ' -f1-2)
- server: tests/lmstest/hub_server.py (Python http.server, sendfile), LFS file behind a 302 to a second host:port; files under $BENCH_TMP
- lmstream: \`HF_HOME=<fresh> HF_ENDPOINT=<hub> lmstream download org/big --include '*.safetensors' --quiet\` (repo info + HEAD + 8 connections of ranged GETs, 32 MiB parts then 4 MiB at the end, sha256 verified, fsync, rename into the HF cache); curl: \`curl -sS -o FILE <CDN URL>\` (no verification, no fsync); ${ROUNDS} interleaved rounds (curl, lmstream, ...), median

| metric | lmstream | curl | ratio us/peer |
|---|---|---|---|
| ${SIZE_MIB} MiB, MiB/s (default: fsync before rename) | $(fmt "$lms_med") | $(fmt "$crl_med") | **$(ratio "$lms_med" "$crl_med")** |
| ${SIZE_MIB} MiB, MiB/s, \`LMSTREAM_DOWNLOAD_FSYNC=0\` (no flush, like curl) | $(fmt "$nfs_med") | $(fmt "$crl_med") | **$(ratio "$nfs_med" "$crl_med")** |

| ${CAP_SIZE_MIB} MiB, server capped at ${CAP_MIB_S} MiB/s per connection | 8 connections | 1 connection | ratio 8/1 |
|---|---|---|---|
| MiB/s | $(fmt "$p8_med") | $(fmt "$p1_med") | **$(ratio "$p8_med" "$p1_med")** |

Median of the per-round ratios lmstream/curl: $(fmt "$(median "${pair_lms[@]}")") (rounds: ${pair_lms[*]}); with FSYNC=0: $(fmt "$(median "${pair_nfs[@]}")") (rounds: ${pair_nfs[*]})

Per-round MiB/s — curl: $(fmt_list "${crl[@]}") / lmstream: $(fmt_list "${lms[@]}") / lmstream FSYNC=0: $(fmt_list "${nfs[@]}") / capped 1 conn: $(fmt_list "${p1[@]}") / capped 8 conn: $(fmt_list "${p8[@]}")
MD

# The S3 half: moto's server, lmstream download s3:// vs curl of a presigned URL.
bash bench/download_s3.sh
