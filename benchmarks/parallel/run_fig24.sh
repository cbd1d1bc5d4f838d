#!/usr/bin/env bash
# The Llama 3 paper's Fig. 24 on this machine: throughput vs latency with and without
# micro-batching in a 2-stage pipeline (one thread per rank), for a prefill-heavy and a
# decode-heavy workload at a few batch sizes; plus tensor parallelism (TP 2, one thread per
# rank) against one process with two threads on decode. Random llama3.2-1b-shaped BF16
# weights (herd make-model), made once under OUT.
#
#   [ROUNDS=1] benchmarks/parallel/run_fig24.sh [BUILD_DIR=build/cpu] [OUT=build/fig24]
#
# ROUNDS=N runs the whole set N times in the same order; each point is tagged with its round
# and plot_fig24.py takes every ratio within a round and prints the median over the rounds
# with each round's value (this VM's step times drift by up to 4x: one round is not a result).
#
# Set HERD_TRACE_STEPS=1 (and pass -x HERD_TRACE_STEPS to mpirun) to see per rank and plan
# where a pipeline waits. Writes OUT/points.jsonl (one JSON point per line), OUT/fig24.svg (plot_fig24.py) and prints
# the ratios the issue asks for (micro-batching gain per batch size, TP 2 / 1 process).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/cpu}
OUT=${2:-build/fig24}
SHAPE=${SHAPE:-llama3.2-1b}
PREFILL_BATCHES=${PREFILL_BATCHES:-2,4,8}
DECODE_BATCHES=${DECODE_BATCHES:-1,2,4,8}
ROUNDS=${ROUNDS:-1}
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Same flags as the tests (tests/parallel/CMakeLists.txt says why each).
MPIRUN=(mpirun --oversubscribe --bind-to none --mca btl self,vader
        --mca btl_vader_single_copy_mechanism none)
BENCH="$BUILD/benchmarks/bench_parallel"
MODEL="$OUT/model-$SHAPE"
if [ ! -f "$MODEL/config.json" ]; then
  "$BUILD/herd" make-model --shape "$SHAPE" --output "$MODEL" --dtype bf16 --seed 1
fi
POINTS="$OUT/points.jsonl"
: > "$POINTS"
LOG="$OUT/log.txt"
: > "$LOG"

run() {  # run NP ARGS...: one configuration; JSON lines to POINTS, everything to LOG
  local np=$1; shift
  echo "+ np=$np $*" | tee -a "$LOG"
  if [ "$np" = 1 ]; then
    "$BENCH" --model "$MODEL" "$@" 2>>"$LOG"
  else
    "${MPIRUN[@]}" -np "$np" "$BENCH" --model "$MODEL" "$@" 2>>"$LOG"
  fi | tee -a "$LOG" | grep '^{' | sed "s/^{/{\"round\": $ROUND, /" >> "$POINTS"
}

# Prefill: whole 256-token prompts per plan (no per-sequence chunk cap), 512 tokens per plan,
# so a micro-batch is as compute-bound as the full batch (the CPU GEMM loses efficiency below
# a few hundred rows). B prompts make B/2 plans with 1 micro-batch; with 2, each plan takes
# ceil(B / 2) prompts within the 512 tokens: 2 plans at batch 2 and 4, 4 at batch 8, so the
# ideal gain (2P stage-times vs P + 1 with two in flight) is 1.33x / 1.33x / 1.6x.
PREFILL=(--workload prefill --batch-sizes "$PREFILL_BATCHES" --input-len 256
         --max-num-batched-tokens 512 --long-prefill-token-threshold 0)
DECODE=(--workload decode --batch-sizes "$DECODE_BATCHES" --input-len 16 --output-len 32)
for ROUND in $(seq 1 "$ROUNDS"); do
  echo "== round $ROUND of $ROUNDS, $(date -u '+%F %H:%M') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
  for mb in 1 2; do
    run 2 --pp 2 --micro-batches $mb --threads 1 "${PREFILL[@]}"
    run 2 --pp 2 --micro-batches $mb --threads 1 "${DECODE[@]}"
  done
  run 2 --tp 2 --threads 1 "${DECODE[@]}"
  # Peers in the same run: one process with one thread (what one rank can do) and with two
  # (both cores in one process: the ceiling any 2-rank layout is measured against).
  run 1 --threads 1 "${PREFILL[@]}"
  run 1 --threads 2 "${PREFILL[@]}"
  run 1 --threads 2 "${DECODE[@]}"
done

python3 benchmarks/parallel/plot_fig24.py "$POINTS" "$OUT/fig24.svg" | tee -a "$LOG"
echo "log: $LOG, points: $POINTS, plot: $OUT/fig24.svg"
