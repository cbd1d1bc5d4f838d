#!/usr/bin/env bash
# Run THERE (the GPU machine, repository root, with build/device-cuda carried): runs the packed
# herd_cuda_tests against the device's cuBLASLt, logging to $OUT when set. Arguments go to the
# test binary (e.g. --gtest_filter='CudaAttention*'). With SANITIZE=1 the run goes through
# compute-sanitizer's memcheck (slow: narrow it with a filter). HERD_DEVICE_PKG names another
# package folder with the same layout (benchmarks/gpu/device_session.sh uses .device); CUBLASLT
# names the libcublasLt.so.13 to use.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
pkg="${HERD_DEVICE_PKG:-build/device-cuda}"
out="${OUT:-/tmp}"
[ -x "$pkg/herd_cuda_tests" ] || { echo "missing $pkg/herd_cuda_tests: run tests/cuda/pack_for_device.sh here and carry $pkg"; exit 2; }

# cuBLASLt 13: the CUDA toolkit's copy, else the one in PyTorch's nvidia wheels.
lt="${CUBLASLT:-}"
[ -n "$lt" ] || lt=$(ldconfig -p 2>/dev/null | awk '/libcublasLt\.so\.13 / {print $NF; exit}')
if [ -z "$lt" ]; then
  lt=$(find /usr/local/cuda*/ /usr/lib /opt /usr/local/lib -name 'libcublasLt.so.13*' 2>/dev/null | head -1)
fi
[ -n "$lt" ] || { echo "libcublasLt.so.13 not found on this machine"; exit 2; }
lt_dir=$(dirname "$lt")
# NCCL 2 (not packed: 190 MB): NCCL_LIB, else the system's, else PyTorch's nvidia-nccl wheel.
nc="${NCCL_LIB:-}"
[ -n "$nc" ] || nc=$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 / {print $NF; exit}')
[ -n "$nc" ] || nc=$(find /usr/local/cuda*/ /usr/lib /opt /usr/local/lib -name 'libnccl.so.2*' 2>/dev/null | head -1)
[ -n "$nc" ] || nc=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so.2"))' 2>/dev/null)
[ -f "$nc" ] || { echo "libnccl.so.2 not found on this machine"; exit 2; }
export LD_LIBRARY_PATH="$PWD/$pkg/lib:$lt_dir:$(dirname "$nc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "cuBLASLt: $lt"
echo "NCCL: $nc"
ldd "$pkg/herd_cuda_tests" | grep -E "not found|cublas|nccl|cudart|hwy|stdc" || true

runner=()
if [ "${SANITIZE:-0}" = 1 ]; then runner=(compute-sanitizer --tool memcheck --error-exitcode 99); fi
"${runner[@]}" "$pkg/herd_cuda_tests" --gtest_output="xml:$out/cuda_tests.xml" "$@" 2>&1 |
  tee "$out/cuda_tests.log"
exit "${PIPESTATUS[0]}"
