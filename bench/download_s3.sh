#!/usr/bin/env bash
# The S3 half of bench/download.sh (which runs it at its end; it also runs on its own): download
# throughput from moto's S3 server on loopback, lmstream vs curl, side by side in one run
# (curl, lmstream, lmstream with LMSTREAM_DOWNLOAD_FSYNC=0, curl, ...):
#   `lmstream download s3://bench/big.safetensors` (SigV4-signed HeadObject + GetObject, written
#   to .incomplete, fsync'd, renamed into the lmstream cache) vs `curl -o` of a presigned URL of
#   the same object. Target: >= 0.9x curl's throughput.
# moto materialises the whole object for every GET, ranged or not (s3/responses.py
# _handle_range_header slices the full value), so N ranged parts cost it N whole-object copies:
# lmstream is run with one part (LMSTREAM_DOWNLOAD_PART_SIZE = the object's size) to measure the
# client, not moto's range emulation. The object is uploaded with boto3's upload_file (multipart,
# as the SageMaker SDK does), so its ETag is not an MD5 and only the size is verified.
# Env: ROUNDS (3), S3_SIZE_MIB (1024). Large files live under $BENCH_TMP (default /tmp).
set -euo pipefail
source bench/lib.sh
need_lmstream download
command -v curl >/dev/null || die "curl is needed"
"$PY" -c 'import boto3, moto' 2>/dev/null || die "$PY needs boto3 and moto (the pyenv python3)"
S3_SIZE_MIB="${S3_SIZE_MIB:-1024}"
BENCH_TMP="${BENCH_TMP:-/tmp}"
work="$(mktemp -d "$BENCH_TMP/lms-bench-s3.XXXXXX")"
moto_pid=""
cleanup() {
  [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
endpoint="http://127.0.0.1:$port"
"$PY" -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for i in $(seq 300); do
  curl -s -o /dev/null "$endpoint/moto-api/" && break
  sleep 0.1
done
export AWS_ENDPOINT_URL_S3="$endpoint" AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench \
  AWS_REGION=us-east-1

log "uploading a ${S3_SIZE_MIB} MiB object to moto"
head -c "$((S3_SIZE_MIB << 20))" /dev/urandom >"$work/big.safetensors"
presigned="$("$PY" - "$endpoint" "$work/big.safetensors" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
s3.create_bucket(Bucket="bench")
s3.upload_file(sys.argv[2], "bench", "big.safetensors")
print(s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "big.safetensors"},
                                ExpiresIn=3600))
PY
)"

now() { date +%s.%N; }
t_lms() {
  rm -rf "$work/cache"
  sync
  local t0 t1
  t0="$(now)"
  LMSTREAM_CACHE="$work/cache" LMSTREAM_DOWNLOAD_PART_SIZE="${S3_SIZE_MIB}MiB" \
    timeout "$STEP_TIMEOUT" "$LMSTREAM" download s3://bench/big.safetensors --quiet >"$work/lms.out"
  t1="$(now)"
  "$PY" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1"
}
t_curl() {
  rm -f "$work/curl.out"
  sync
  local t0 t1
  t0="$(now)"
  timeout "$STEP_TIMEOUT" curl -sS -o "$work/curl.out" "$presigned"
  t1="$(now)"
  "$PY" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1"
}
mibs() { "$PY" -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' "$1" "$2"; }

log "${S3_SIZE_MIB} MiB from moto's S3: lmstream download vs curl -o (presigned URL), ${ROUNDS} rounds"
t_lms >/dev/null  # warm-up
cmp -s "$work/big.safetensors" "$(cat "$work/lms.out")" || die "lmstream's copy differs"
t_curl >/dev/null
cmp -s "$work/big.safetensors" "$work/curl.out" || die "curl's copy differs"
lms=() crl=() nfs=()
for r in $(seq "$ROUNDS"); do
  crl+=("$(mibs "$S3_SIZE_MIB" "$(t_curl)")")
  lms+=("$(mibs "$S3_SIZE_MIB" "$(t_lms)")")
  nfs+=("$(mibs "$S3_SIZE_MIB" "$(LMSTREAM_DOWNLOAD_FSYNC=0 t_lms)")")
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

append_results <<MD
## download from moto's S3 (loopback) — $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(machine_desc)
- lmstream commit: $(commit_desc); peer: $(curl --version | head -1 | cut -d' ' -f1-2); server: moto $("$PY" -c 'import moto; print(moto.__version__)') (\`python3 -m moto.server\`, no signature checking), object uploaded with boto3 upload_file (multipart: the ETag is no MD5, so the size is what lmstream verifies)
- lmstream: \`LMSTREAM_CACHE=<fresh> LMSTREAM_DOWNLOAD_PART_SIZE=${S3_SIZE_MIB}MiB lmstream download s3://bench/big.safetensors --quiet\` (signed HEAD + one signed GET, .incomplete, fsync, rename); one part because moto copies the whole object for every ranged GET; curl: \`curl -sS -o FILE <presigned URL>\`; ${ROUNDS} interleaved rounds (curl, lmstream, lmstream FSYNC=0, ...), median

| metric | lmstream | curl | ratio us/peer |
|---|---|---|---|
| ${S3_SIZE_MIB} MiB, MiB/s (default: fsync before rename) | $(fmt "$lms_med") | $(fmt "$crl_med") | **$(ratio "$lms_med" "$crl_med")** |
| ${S3_SIZE_MIB} MiB, MiB/s, \`LMSTREAM_DOWNLOAD_FSYNC=0\` (no flush, like curl) | $(fmt "$nfs_med") | $(fmt "$crl_med") | **$(ratio "$nfs_med" "$crl_med")** |

Median of the per-round ratios lmstream/curl: $(fmt "$(median "${pair_lms[@]}")") (rounds: ${pair_lms[*]}); with FSYNC=0: $(fmt "$(median "${pair_nfs[@]}")") (rounds: ${pair_nfs[*]})

Per-round MiB/s — curl: $(fmt_list "${crl[@]}") / lmstream: $(fmt_list "${lms[@]}") / lmstream FSYNC=0: $(fmt_list "${nfs[@]}")
MD
