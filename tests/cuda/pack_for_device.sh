#!/usr/bin/env bash
# Run HERE (the build machine): builds herd_cuda_tests with the cuda preset and packs the binary
# plus the shared libraries the GPU machine may lack into build/device-cuda/ (ignored by git, so
# it travels only when named in the device tool's `carry`). Not packed: glibc's libraries and
# libgcc_s (the device image has them) and cuBLASLt (541 MB, over the 64 MiB carry limit; the
# device image's CUDA 13 provides it, run_on_device.sh finds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
# BUILD_DIR: an already configured CUDA build with tests (default: the cuda preset's).
build="${BUILD_DIR:-build/cuda}"
if [ -z "${BUILD_DIR:-}" ]; then cmake --preset cuda >/dev/null; fi
cmake --build "$build" --target herd_cuda_tests -j2
out=build/device-cuda
rm -rf "$out"
mkdir -p "$out/lib"
cp "$build/tests/cuda/herd_cuda_tests" "$out/"
ldd "$out/herd_cuda_tests" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  while read -r name path; do
    case "$name" in
      libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libgcc_s.so.* | \
        libcublasLt.so.* | libnccl.so.*) continue ;;  # NCCL: 190 MB, found there (run_on_device.sh)
    esac
    cp -L "$path" "$out/lib/$name"
  done
ls -l "$out" "$out/lib"
du -sh "$out"
