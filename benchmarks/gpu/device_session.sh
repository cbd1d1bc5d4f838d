#!/usr/bin/env bash
# One device call that tests, compares and times herd's CUDA path (issue 13 Part A).
#
#   benchmarks/gpu/device_session.sh pack     HERE: builds the cuda preset's herd,
#       herd_cuda_tests, bench_tokenizer and bench_cuda_linear, and fills .device/ (git-ignored) with them, the
#       shared libraries the device image lacks (ldd; not glibc, libgcc_s, the CUDA driver or
#       cuBLASLt), and the test data the session needs from ../shared (which does not travel).
#   benchmarks/gpu/device_session.sh run      THERE (the device tool, carry [".device"]):
#       every step below with its own time limit inside one overall budget (SESSION_BUDGET_S,
#       default 480 s), logs to $OUT/session.log, results to $OUT/summary.json.
#   benchmarks/gpu/device_session.sh run --dry-run   HERE, no GPU: the same script logic on
#       the tiny-128k model only (CPU herd, short greedy), and a clear SKIP line for every GPU
#       step. .ci/run runs this so the script cannot rot.
#
# Steps of `run`, in order of value (a step that does not fit the time left is skipped, said
# so in the log and the summary):
#   env        nvidia-smi, ldd of the carried binaries, python/torch/transformers versions
#   cuda_tests tests/cuda/run_on_device.sh (all of herd_cuda_tests, FP8 GEMM tests included),
#              limit 150 s
#   fp8_gemm   bench_cuda_linear: FP8 vs BF16 GEMM time, 8B and 405B-per-TP8-rank FFN shapes
#   models     herd make-model tiny-128k (Meta's Llama 3 tokenizer) and llama3.2-1b (random)
#   logits     hf_compare.py logits: herd cpu + cuda vs transformers fp32 + bf16, both models
#   tokenizer  hf_compare.py tokenizer: tokenizers vs herd tokenize, encode MB/s
#   roofline   hf_compare.py roofline: device-to-device copy GB/s, bf16 GEMM TFLOP/s
#   bench_1b   herd bench offline --device cuda, then transformers generate, llama3.2-1b
#   bench_8b   the same on a random llama3-8b (made there), when time allows
#   sanitizer  compute-sanitizer memcheck on a small gtest filter, when time allows
#   summarize  summary.json + the table printed last (the device tool returns the tail)
#
# Files in $OUT (the device tool returns at most 8): session.log, summary.json,
# cuda_tests.xml, sanitizer.log, fp8_gemm.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
pkg=.device

die() {
  echo "device_session: $*" >&2
  exit 2
}

# ------------------------------------------------------------------------------------ pack
pack() {
  local build="${BUILD_DIR:-build/cuda}"
  if [ -z "${BUILD_DIR:-}" ]; then cmake --preset cuda >/dev/null; fi
  cmake --build "$build" --target herd herd_cuda_tests bench_tokenizer bench_cuda_linear -j2
  rm -rf "$pkg"
  mkdir -p "$pkg/lib" "$pkg/testdata/llama3-tokenizer"
  cp "$build/herd" "$pkg/"
  cp "$build/tests/cuda/herd_cuda_tests" "$pkg/"
  cp "$build/benchmarks/bench_tokenizer" "$build/benchmarks/bench_cuda_linear" "$pkg/"
  # Debug sections are not needed there (compute-sanitizer reports without line numbers).
  strip --strip-debug "$pkg/herd" "$pkg/herd_cuda_tests" "$pkg/bench_tokenizer" "$pkg/bench_cuda_linear"
  local b
  for b in herd herd_cuda_tests bench_tokenizer bench_cuda_linear; do
    ldd "$pkg/$b" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
  done | sort -u | while read -r name path; do
    case "$name" in
      # glibc and the toolchain runtime the image has; the driver's libcuda (must be the
      # device's own); cuBLASLt (541 MB) and NCCL (190 MB): over the carry limit, the device's
      # CUDA 13 or PyTorch's nvidia wheels provide them (find_cublaslt / find_nccl there).
      libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libgcc_s.so.* | \
        ld-linux*.so.* | libcuda.so.* | libcublasLt.so.* | libcublas.so.* | libnccl.so.*) continue ;;
    esac
    cp -L "$path" "$pkg/lib/$name"
  done
  strip --strip-debug "$pkg"/lib/*.so* 2>/dev/null || true
  local td=../shared/testdata
  [ -f "$td/llama3-tokenizer/tokenizer.json" ] || die "$td/llama3-tokenizer not found"
  cp "$td/llama3-tokenizer/tokenizer.json" "$td/llama3-tokenizer/tokenizer_config.json" \
    "$pkg/testdata/llama3-tokenizer/"
  cp "$td/tokenizer-vectors/llama3-bpe.inp" "$td/tokenizer-vectors/llama3-bpe.out" \
    "$td/README.md" "$pkg/testdata/"
  [ -f ../shared/ARCHITECTURE.md ] && cp ../shared/ARCHITECTURE.md "$pkg/testdata/"
  # The device tool carries the tracked tree + the carried paths, 64 MiB in all.
  local tree_kb pkg_kb
  tree_kb=$(git ls-files -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  pkg_kb=$(du -sk "$pkg" | cut -f1)
  ls -l "$pkg" "$pkg/lib"
  echo "packed $pkg: ${pkg_kb} KiB; tracked tree ${tree_kb} KiB; total $((pkg_kb + tree_kb)) KiB (limit 65536)"
  [ $((pkg_kb + tree_kb)) -lt 65536 ] || die "over the device tool's 64 MiB carry limit"
}

# ------------------------------------------------------------------------------------- run
dry=0
budget="${SESSION_BUDGET_S:-480}"
t_start=$(date +%s)
out=""
work=""
steps=""

left() { echo $((budget - ($(date +%s) - t_start))); }

# inner N: the budget a Python step gets for its own loop, N or less so that it writes its
# JSON before the step's timeout (the time left minus 15 s) would kill it.
inner() {
  local l
  l=$(($(left) - 30))
  [ "$1" -le "$l" ] && l=$1
  [ "$l" -ge 10 ] || l=10
  echo "$l"
}

# record STEP STATUS SECONDS NOTE
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$steps"; }

skip() {
  echo "SKIP $1: $2"
  record "$1" skipped 0 "$2"
}

# step NAME LIMIT_S MIN_LEFT_S cmd...: runs cmd under `timeout` (the smaller of LIMIT_S and
# the time left minus a reserve for the summary) when at least MIN_LEFT_S remain.
step() {
  local name=$1 limit=$2 need=$3
  shift 3
  local l
  l=$(left)
  if [ "$l" -lt "$need" ]; then
    skip "$name" "out of time ($l s left, needs $need s)"
    return 0
  fi
  [ "$limit" -le $((l - 15)) ] || limit=$((l - 15))
  echo
  echo "=== [$(($(date +%s) - t_start))s] $name (limit ${limit}s): $*"
  local t0 rc=0
  t0=$(date +%s)
  # bash -c: the command may be one of this script's functions (exported below).
  timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@" || rc=$?
  local dt=$(($(date +%s) - t0)) status=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    status=timeout
  elif [ "$rc" != 0 ]; then
    status="fail($rc)"
  fi
  echo "=== $name: $status in ${dt}s"
  record "$name" "$status" "$dt" "$*"
}

env_report() {
  echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit \
    --format=csv,noheader || echo "nvidia-smi: not available"
  echo "herd's libraries: $herd_libs"
  local b
  for b in herd herd_cuda_tests bench_tokenizer bench_cuda_linear; do
    echo "ldd $b:"
    LD_LIBRARY_PATH="$herd_libs" ldd "$pkg/$b" |
      grep -E "not found|cublas|nccl|cudart|stdc\+\+|grpc|protobuf|hwy|pcre" || true
  done
  if LD_LIBRARY_PATH="$herd_libs" ldd "$pkg/herd" | grep -q "not found"; then
    echo "herd has unresolved libraries: every herd step will fail"
    return 1
  fi
  python3 - <<'EOF' || true
import importlib
for m in ("numpy", "torch", "transformers", "tokenizers"):
    try:
        mod = importlib.import_module(m)
        extra = ""
        if m == "torch":
            extra = f" cuda={mod.version.cuda} gpu={mod.cuda.is_available()}"
        print(f"{m} {mod.__version__}{extra}")
    except Exception as e:
        print(f"{m}: not importable ({e})")
EOF
}

find_cublaslt() {
  local lt
  lt=$(ldconfig -p 2>/dev/null | awk '/libcublasLt\.so\.13 / {print $NF; exit}')
  if [ -z "$lt" ]; then
    lt=$(find /usr/local/cuda*/ /usr/lib /opt /usr/local/lib -name 'libcublasLt.so.13*' 2>/dev/null |
      head -1 || true)
  fi
  if [ -z "$lt" ]; then
    # PyTorch's nvidia-cublas wheel
    lt=$(python3 -c 'import nvidia.cublas, os; d = os.path.join(list(nvidia.cublas.__path__)[0], "lib"); print(d + "/libcublasLt.so.13")' 2>/dev/null || true)
    [ -f "$lt" ] || lt=""
  fi
  echo "$lt"
}

# NCCL 2 (herd links it for multi-GPU communicators): the system's, else PyTorch's nvidia-nccl
# wheel. Empty when absent (env_report then shows herd's unresolved library).
find_nccl() {
  local nc
  nc=$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 / {print $NF; exit}')
  if [ -z "$nc" ]; then
    nc=$(find /usr/local/cuda*/ /usr/lib /opt /usr/local/lib -name 'libnccl.so.2*' 2>/dev/null |
      head -1 || true)
  fi
  if [ -z "$nc" ]; then
    nc=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so.2"))' 2>/dev/null || true)
    [ -f "$nc" ] || nc=""
  fi
  echo "$nc"
}

make_model() { # NAME SHAPE [extra...]
  local name=$1 shape=$2
  shift 2
  if [ -f "$work/$name/config.json" ]; then
    echo "$work/$name exists"
    return 0
  fi
  "$work/bin/herd" make-model --shape "$shape" --output "$work/$name" --seed 1 "$@"
}

wait_for_8b() {
  while [ ! -f "$work/make_8b.rc" ]; do sleep 2; done
  cat "$work/make_8b.log"
  return "$(cat "$work/make_8b.rc")"
}

sanitize() {
  local rc=0
  mkdir -p "$work/sanitizer"
  SANITIZE=1 OUT="$work/sanitizer" HERD_DEVICE_PKG="$pkg" tests/cuda/run_on_device.sh \
    --gtest_filter='CudaElementwise*:CudaMemory*:*CudaAttentionGqa.DecodeAcrossBlockBoundaries*:CudaAttention.KvWriteMatchesCpu' >"$out/sanitizer.log" 2>&1 ||
    rc=$?
  tail -40 "$out/sanitizer.log"
  return "$rc"
}

cuda_tests() {
  local rc=0
  mkdir -p "$work/cuda_tests"
  OUT="$work/cuda_tests" HERD_DEVICE_PKG="$pkg" tests/cuda/run_on_device.sh || rc=$?
  cp "$work/cuda_tests/cuda_tests.xml" "$out/" 2>/dev/null || true
  # The nMSE margins of every check, for the README.
  grep -E "nmse" "$work/cuda_tests/cuda_tests.log" | head -200 || true
  return "$rc"
}

run() {
  [ "${1:-}" = "--dry-run" ] && dry=1
  [ -x "$pkg/herd" ] || die "missing $pkg/herd: run 'benchmarks/gpu/device_session.sh pack' here and carry .device"
  out="${OUT:-/tmp/herd-device-out}"
  work="${SESSION_WORK:-/tmp/herd-device-work}"
  mkdir -p "$out" "$work"
  steps="$work/steps.tsv"
  : >"$steps"
  # Everything from here goes to the log too.
  exec > >(tee -a "$out/session.log") 2>&1

  local lt gpu=1 why=""
  lt=$(find_cublaslt)
  export CUBLASLT="$lt"
  local nc
  nc=$(find_nccl)
  export NCCL_LIB="$nc"
  # Test knobs (not for the device): SESSION_FORCE_GPU=1 takes the GPU branch without a GPU
  # (its GPU steps then fail, which shows the flow), SESSION_SHAPE_1B / _8B shrink the models.
  SHAPE_1B="${SESSION_SHAPE_1B:-llama3.2-1b}"
  SHAPE_8B="${SESSION_SHAPE_8B:-llama3-8b}"
  export pkg out work SHAPE_8B
  export -f env_report cuda_tests sanitize make_model wait_for_8b
  export PATH="$PATH:/usr/local/cuda/bin"
  # The carried libraries (libstdc++, OpenSSL, zlib, ...) are for herd only: Python and torch
  # must keep the image's. So herd and bench_tokenizer run through wrappers in $work/bin that
  # set LD_LIBRARY_PATH for themselves; run_on_device.sh sets its own.
  herd_libs="$root/$pkg/lib${lt:+:$(dirname "$lt")}${nc:+:$(dirname "$nc")}"
  mkdir -p "$work/bin"
  local b
  for b in herd bench_tokenizer bench_cuda_linear; do
    # shellcheck disable=SC2016  # $LD_LIBRARY_PATH and $@ are the wrapper's, at its run time
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' \
      "$herd_libs" "$root/$pkg/$b" >"$work/bin/$b"
    chmod +x "$work/bin/$b"
  done
  export herd_libs
  if [ "$dry" = 1 ]; then
    gpu=0
    why="--dry-run"
  elif [ "${SESSION_FORCE_GPU:-0}" = 1 ]; then
    why="SESSION_FORCE_GPU=1"
  elif ! nvidia-smi -L >/dev/null 2>&1; then
    gpu=0
    why="nvidia-smi finds no GPU"
  fi
  echo "device_session run: budget ${budget}s, gpu=$gpu ${why:+($why)}, out=$out, work=$work"
  local herd="$work/bin/herd" py=benchmarks/gpu/hf_compare.py td="$pkg/testdata"
  local tok="$td/llama3-tokenizer"
  local hf_ok=1
  python3 -c 'import torch, transformers' 2>/dev/null || hf_ok=0

  step env 30 20 env_report

  # The llama3-8b checkpoint (16 GB) is written in the background while the tests and the
  # comparisons run (none of them is a timing); bench_8b waits for it.
  local make8_pid=""
  if [ "$gpu" = 1 ]; then
    echo "background: herd make-model --shape llama3-8b -> $work/l8b (log $work/make_8b.log)"
    # timeout (own process group) bounds it, and a kill of its pid reaches herd too.
    # shellcheck disable=SC2016
    timeout -k 5 "$budget" bash -c 'rc=0
      make_model l8b "$SHAPE_8B" --threads 8 >"$work/make_8b.log" 2>&1 || rc=$?
      echo "$rc" >"$work/make_8b.rc"' &
    make8_pid=$!
  fi

  if [ "$gpu" = 1 ]; then
    step cuda_tests 150 60 cuda_tests
    step fp8_gemm 60 40 "$work/bin/bench_cuda_linear" --min-ms 10 --json "$out/fp8_gemm.jsonl"
  else
    # Without a GPU the suite still runs: GPU tests skip with the reason, the CPU-side plan
    # checks run (cuBLASLt must still be loadable).
    step cuda_tests_no_gpu 60 30 cuda_tests
    step fp8_gemm_no_gpu 20 10 "$work/bin/bench_cuda_linear"
    echo "SKIP (no GPU): herd_cuda_tests' GPU tests reported SKIPPED above"
  fi

  step model_tiny128k 60 20 make_model tiny128k tiny-128k --tokenizer "$tok"
  if [ "$gpu" = 1 ]; then
    step model_1b 90 60 make_model l1b "$SHAPE_1B" --tokenizer "$tok" --threads 16
  else
    skip model_1b "no GPU: the llama3.2-1b comparison runs only on the device"
  fi

  local devs=cpu greedy=8
  if [ "$gpu" = 1 ]; then
    devs=cpu,cuda
    greedy=64
  else
    echo "SKIP (no GPU): herd --device cuda; greedy shortened to $greedy tokens"
  fi
  [ "$hf_ok" = 1 ] || echo "SKIP (no torch/transformers here): the Hugging Face side of logits, roofline and the peer"
  step logits_tiny128k 90 30 python3 "$py" logits --herd "$herd" --model "$work/tiny128k" \
    --name tiny128k --text "$td/README.md" --devices "$devs" --greedy "$greedy" \
    --work "$work" --out "$work/part_logits_tiny128k.json"
  if [ "$gpu" = 1 ]; then
    step logits_1b 150 90 python3 "$py" logits --herd "$herd" --model "$work/l1b" \
      --name l1b --text "$td/README.md" --devices "$devs" --greedy "$greedy" \
      --work "$work" --out "$work/part_logits_l1b.json"
  fi

  local corpus=("$td/README.md")
  [ -f "$td/ARCHITECTURE.md" ] && corpus+=("$td/ARCHITECTURE.md")
  step tokenizer 90 30 python3 "$py" tokenizer --herd "$herd" --tokenizer "$tok" \
    --cases "$td/llama3-bpe.inp" --corpus "${corpus[@]}" --bench-tokenizer "$work/bin/bench_tokenizer" \
    --out "$work/part_tokenizer.json"

  if [ "$gpu" = 1 ]; then
    step roofline 60 30 python3 "$py" roofline --out "$work/part_roofline.json"
    step herdbench_l1b 120 60 python3 "$py" herdbench --herd "$herd" --model "$work/l1b" \
      --name l1b --budget-s "$(inner 105)" --out "$work/part_herdbench_l1b.json"
    step peer_l1b 100 60 python3 "$py" peer --model "$work/l1b" --name l1b --budget-s "$(inner 85)" \
      --out "$work/part_peer_l1b.json"
    step model_8b_wait 120 200 wait_for_8b
    if [ -f "$work/make_8b.rc" ] && [ "$(cat "$work/make_8b.rc")" = 0 ]; then
      step herdbench_l8b 120 150 python3 "$py" herdbench --herd "$herd" --model "$work/l8b" \
        --name l8b --kv-cache-gb 40 --budget-s "$(inner 105)" --out "$work/part_herdbench_l8b.json"
      step peer_l8b 100 90 python3 "$py" peer --model "$work/l8b" --name l8b --budget-s "$(inner 85)" \
        --out "$work/part_peer_l8b.json"
    fi
    if command -v compute-sanitizer >/dev/null; then
      step sanitizer 120 70 sanitize
    else
      skip sanitizer "compute-sanitizer not found on PATH (nor in /usr/local/cuda/bin)"
    fi
    if [ -n "$make8_pid" ] && kill -0 "$make8_pid" 2>/dev/null; then
      echo "stopping the unfinished llama3-8b make-model (pid $make8_pid)"
      kill "$make8_pid" 2>/dev/null || true
    fi
  else
    skip roofline "no GPU"
    # The herd bench step's logic on the CPU: one tiny batch, so the parsing and the summary
    # are exercised; its numbers are CPU numbers and labelled so.
    step herdbench_tiny128k_cpu 60 30 python3 "$py" herdbench --herd "$herd" \
      --model "$work/tiny128k" --name tiny128k --device cpu --batches 1,2 --prompt-len 16 \
      --new 5 --prefill 64 --kv-cache-gb 0.5 --budget-s 50 --out "$work/part_herdbench_tiny128k.json"
    skip "bench_1b/bench_8b/peer" "no GPU: herd --device cuda and transformers on the GPU"
    skip sanitizer "no GPU: compute-sanitizer needs one"
  fi

  echo
  echo "=== [$(($(date +%s) - t_start))s] summarize"
  python3 "$py" summarize --work "$work" --steps "$steps" --out "$out/summary.json"
  echo "device_session: done in $(($(date +%s) - t_start))s; files in $out: $(find "$out" -maxdepth 1 -type f -printf '%f ')"
  # Failures of individual steps are in the summary; the session itself succeeded if it got
  # here. --dry-run fails when any step that ran failed, so CI catches a broken script.
  if [ "$dry" = 1 ] && grep -qP '\t(fail|timeout)' "$steps"; then
    echo "device_session: a dry-run step failed"
    return 1
  fi
}

case "${1:-}" in
  pack) pack ;;
  run)
    shift
    run "$@"
    ;;
  *) die "usage: $0 pack | run [--dry-run]" ;;
esac
