#!/usr/bin/env bash
# Build llama.cpp (CPU only) as the peer engine for herd's CPU benchmarks.
#
# usage: build_llamacpp.sh [DEST]        (default DEST=/work/llama.cpp)
# env:   NLC_DIR   where the node-llama-cpp tarball lives   (default /tmp/nlc)
#        JOBS      parallel compile jobs                    (default 2)
#        LLAMACPP_CPU=native|explicit  force the CPU flag choice (default: auto)
#        BUILD_DIR  build folder (default DEST/build), e.g. for a second flag set
#        CONFIGURE_ONLY=1  stop after cmake's configure step
#
# Only the Debian and npm registries are reachable from the benchmark VMs, so
# the llama.cpp source comes from the git bundle that the npm package
# node-llama-cpp ships (package/llama/gitRelease.bundle).
set -euo pipefail

DEST=${1:-/work/llama.cpp}
NLC_VERSION=3.22.1
NLC_DIR=${NLC_DIR:-/tmp/nlc}
JOBS=${JOBS:-2}
BUILD_DIR=${BUILD_DIR:-$DEST/build}
TGZ=$NLC_DIR/node-llama-cpp-$NLC_VERSION.tgz

mkdir -p "$NLC_DIR"
if [[ ! -f $TGZ ]]; then
  (cd "$NLC_DIR" && npm pack "node-llama-cpp@$NLC_VERSION")
fi

if [[ ! -d $DEST/.git ]]; then
  tmp=$(mktemp -d)
  tar -xzf "$TGZ" -C "$tmp" package/llama/gitRelease.bundle
  git -c advice.detachedHead=false clone -q "$tmp/package/llama/gitRelease.bundle" "$DEST"
  rm -rf "$tmp"
fi
# The bundle is a single squashed commit without tags: the hash is the version.
echo "llama.cpp commit: $(git -C "$DEST" rev-parse HEAD) ($(git -C "$DEST" log -1 --format=%ci))"
echo "llama.cpp source: node-llama-cpp@$NLC_VERSION gitRelease.bundle"

# CPU flags.  -march=native is what llama.cpp users normally run, but one of
# our VM types advertises AMX in cpuid and then faults on tile instructions;
# native (and ggml's runtime variant picking) would use AMX there.  So: native
# only where cpuid has no AMX; otherwise the explicit x86 flags cpuid lists,
# with AMX always off.
has() { grep -qw "$1" /proc/cpuinfo; }
onoff() { if has "$1"; then echo ON; else echo OFF; fi; }
mode=${LLAMACPP_CPU:-auto}
if [[ $mode == auto ]]; then
  if has amx_tile; then mode=explicit; else mode=native; fi
fi
if [[ $mode == native ]]; then
  cpu_flags=(-DGGML_NATIVE=ON)
else
  cpu_flags=(-DGGML_NATIVE=OFF
    -DGGML_SSE42="$(onoff sse4_2)" -DGGML_AVX="$(onoff avx)" -DGGML_AVX2="$(onoff avx2)"
    -DGGML_FMA="$(onoff fma)" -DGGML_F16C="$(onoff f16c)" -DGGML_BMI2="$(onoff bmi2)"
    -DGGML_AVX_VNNI="$(onoff avx_vnni)"
    -DGGML_AVX512="$(onoff avx512f)" -DGGML_AVX512_VBMI="$(onoff avx512vbmi)"
    -DGGML_AVX512_VNNI="$(onoff avx512_vnni)" -DGGML_AVX512_BF16="$(onoff avx512_bf16)"
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
fi
echo "CPU flags ($mode): ${cpu_flags[*]}"

# No network at build or run time: no OpenSSL/HTTPS model downloads, no web UI
# fetched from Hugging Face, no OpenMP fetched from LLVM.  No GPU backends.
cmake -S "$DEST" -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DGGML_OPENMP_FETCH=OFF \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF \
  "${cpu_flags[@]}"

[[ ${CONFIGURE_ONLY:-0} == 1 ]] && exit 0

# nice + few jobs: the benchmark VMs have 2 cores that are usually busy.
nice -n 19 cmake --build "$BUILD_DIR" -j "$JOBS" --target \
  llama-bench llama-server llama-cli llama-completion llama-simple

ls -l "$BUILD_DIR"/bin/llama-{bench,server,cli,completion,simple}
"$BUILD_DIR/bin/llama-bench" --version 2>&1 | tail -n 2 || true
