#!/usr/bin/env bash
# Builds the benchmark peer (llama.cpp) under bench/peer/ from the source that the npm package
# node-llama-cpp ships as a git bundle: llama-bench, llama-batched-bench, llama-server and
# llama-quantize (bench/kquants.sh makes its K-quant files with it), CPU only,
# Release, -DGGML_NATIVE=ON. Idempotent: re-running skips finished steps. Falls back to the
# prebuilt binaries of @node-llama-cpp/linux-x64 if the source build fails.
# On CPUs with AMX (Sapphire Rapids and later) the AMX matmul is compiled out unless PEER_AMX=1:
# this llama.cpp's ggml_backend_amx_mul_mat faults on our Q8_0 models (llama.cpp issue #20824,
# open without a fix; dspy's CI dropped the AMX variant for the same crash), so the peer measured
# is llama.cpp's AVX-512/VNNI path, the fastest configuration of it that runs.
# Prints the tool paths; also writes them to bench/peer/tools.env for the other bench scripts.
# Usage (from the repo root): bench/peer-setup.sh
set -euo pipefail

NLC_VERSION="${NLC_VERSION:-3.22.1}"
ROOT="$(pwd)"
[[ -f "$ROOT/bench/peer-setup.sh" ]] || { echo "run from the repo root" >&2; exit 2; }
PEER="$ROOT/bench/peer"
PKG="$PEER/node_modules/node-llama-cpp"
SRC="$PEER/src"
BUILD="$PEER/build"
TOOLS=(llama-bench llama-batched-bench llama-server llama-quantize)
mkdir -p "$PEER"

# 1. npm package, pinned. --ignore-scripts: its postinstall would try to download/build on its own;
# optional deps are skipped (the CUDA/Vulkan ones are hundreds of MB) except the CPU linux-x64 one.
if [[ ! -f "$PKG/package.json" ]] || ! grep -q "\"version\": \"$NLC_VERSION\"" "$PKG/package.json"; then
  echo "== npm install node-llama-cpp@$NLC_VERSION into $PEER"
  [[ -f "$PEER/package.json" ]] || echo '{"name":"lmstream-bench-peer","private":true}' >"$PEER/package.json"
  (cd "$PEER" && timeout 900 npm install --no-audit --no-fund --ignore-scripts --omit=optional \
      "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/linux-x64@$NLC_VERSION")
fi

# 2. llama.cpp source from the bundle inside the package.
if [[ ! -f "$SRC/CMakeLists.txt" ]]; then
  BUNDLE="$(find "$PKG" -name '*.bundle' -print -quit || true)"
  if [[ -z "$BUNDLE" ]]; then
    echo "no llama.cpp git bundle found in $PKG" >&2
  else
    echo "== cloning llama.cpp from $BUNDLE"
    rm -rf "$SRC"
    git -c advice.detachedHead=false clone --quiet "$BUNDLE" "$SRC"
  fi
fi

# 3. Build only the tools we need.
built_ok=1
if [[ -f "$SRC/CMakeLists.txt" ]]; then
  ISA_FLAGS=""
  if [[ "${PEER_AMX:-0}" != 1 ]] && grep -qw amx_int8 /proc/cpuinfo; then
    ISA_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  fi
  for t in "${TOOLS[@]}"; do [[ -x "$BUILD/bin/$t" ]] || built_ok=0; done
  [[ "$(cat "$BUILD/.isa-flags" 2>/dev/null || echo none)" == "$ISA_FLAGS" ]] || built_ok=0
  if (( ! built_ok )); then
    echo "== building ${TOOLS[*]} in $BUILD (takes a while on 2 cores)"
    if nice cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
         -DLLAMA_CURL=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENCL=OFF \
         -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON \
         -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
         -DCMAKE_C_FLAGS="$ISA_FLAGS" -DCMAKE_CXX_FLAGS="$ISA_FLAGS" \
         >"$PEER/cmake-configure.log" 2>&1 &&
       nice cmake --build "$BUILD" -j2 --target "${TOOLS[@]}" >"$PEER/cmake-build.log" 2>&1; then
      built_ok=1
      echo "$ISA_FLAGS" >"$BUILD/.isa-flags"
    else
      echo "source build failed; see $PEER/cmake-*.log" >&2
    fi
  fi
else
  built_ok=0
fi

# 4. Record where the tools are (source build, else prebuilt fallback).
{
  echo "# written by bench/peer-setup.sh"
  echo "PEER_VERSION=node-llama-cpp@$NLC_VERSION"
  if (( built_ok )); then
    echo "PEER_KIND=source-build"
    tag="$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$PKG/llama/llama.cpp.info.json" 2>/dev/null || true)"
    echo "PEER_COMMIT='$(git -C "$SRC" log -1 --format='%h, %cs' 2>/dev/null || echo unknown), tag ${tag:-?}'"
    echo "PEER_ISA_FLAGS='$(cat "$BUILD/.isa-flags" 2>/dev/null)'"
    echo "LLAMA_BENCH=$BUILD/bin/llama-bench"
    echo "LLAMA_BATCHED_BENCH=$BUILD/bin/llama-batched-bench"
    echo "LLAMA_SERVER=$BUILD/bin/llama-server"
    echo "LLAMA_QUANTIZE=$BUILD/bin/llama-quantize"
  else
    PRE="$PEER/node_modules/@node-llama-cpp/linux-x64"
    echo "PEER_KIND=prebuilt(@node-llama-cpp/linux-x64)"
    echo "PEER_COMMIT=unknown"
    for t in "${TOOLS[@]}"; do
      p="$(find "$PRE" -type f -name "$t" -print -quit 2>/dev/null || true)"
      v="$(echo "$t" | tr 'a-z-' 'A-Z_')"
      echo "$v=${p:-MISSING}"
    done
  fi
} >"$PEER/tools.env"

cat "$PEER/tools.env"
# shellcheck disable=SC1091
source "$PEER/tools.env"
for v in LLAMA_BENCH LLAMA_BATCHED_BENCH LLAMA_SERVER; do
  [[ -x "${!v}" ]] || { echo "peer tool $v not available (${!v})" >&2; exit 1; }
done
