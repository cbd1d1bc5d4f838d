#!/usr/bin/env bash
# Serving side by side (issue 16): herd serve and llama-server on the same weights (the herd
# checkpoint and its GGUF from convert_to_gguf.py), same threads, driven by the same client
# (herd bench serve, prompts built from the checkpoint's tokenizer on the client). The servers
# run one at a time, alternating per concurrency level so that both see the same machine load.
#
# usage: benchmarks/llamacpp/compare_serve.sh MODEL_DIR MODEL.gguf [concurrency...]
#   env: HERD (build/cpu/herd), THREADS (2), INPUT_LEN (128), OUTPUT_LEN (64),
#        PROMPTS_PER_USER (4: num-prompts = 4 x concurrency, at least 8),
#        ENGINES ("herd llama.cpp"; e.g. ENGINES=herd HERD_CPU_MATMUL=fp32 for herd's fp32 kernel)
set -euo pipefail
MODEL_DIR=${1:?usage: compare_serve.sh MODEL_DIR MODEL.gguf [concurrency...]}
GGUF=${2:?usage: compare_serve.sh MODEL_DIR MODEL.gguf [concurrency...]}
shift 2
LEVELS=("$@")
[ $# -eq 0 ] && LEVELS=(1 4 16)
HERD=${HERD:-build/cpu/herd}
THREADS=${THREADS:-2}
INPUT_LEN=${INPUT_LEN:-128}
OUTPUT_LEN=${OUTPUT_LEN:-64}
PER_USER=${PROMPTS_PER_USER:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
PORT_HERD=18000
PORT_LLAMA=18080

wait_ready() {  # both servers answer /health with 200 once the model is loaded
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server on port $1 did not become ready" >&2
  return 1
}

echo "command: $0 $MODEL_DIR $GGUF ${LEVELS[*]}"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) hardware threads, $THREADS threads per server"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "herd: HERD_CPU_MATMUL=${HERD_CPU_MATMUL:-auto}; llama.cpp: $("${LLAMA_CPP_DIR:-/work/llama.cpp}/build/bin/llama-server" --version 2>&1 | grep -m1 version || true)"

for c in "${LEVELS[@]}"; do
  n=$((c * PER_USER < 8 ? 8 : c * PER_USER))
  for engine in ${ENGINES:-herd llama.cpp}; do
    if [ "$engine" = herd ]; then
      "$HERD" serve --model "$MODEL_DIR" --port $PORT_HERD --grpc-port -1 --threads "$THREADS" \
        --max-num-seqs 16 >/tmp/compare_serve_herd.log 2>&1 &
      port=$PORT_HERD
    else
      "$HERE/serve_llamacpp.sh" "$GGUF" $PORT_LLAMA >/tmp/compare_serve_llama.log 2>&1 &
      port=$PORT_LLAMA
    fi
    pid=$!
    wait_ready $port
    echo "== $engine, concurrency $c, $n prompts, $INPUT_LEN in / $OUTPUT_LEN out"
    "$HERD" bench serve --base-url "http://127.0.0.1:$port" --model "$(basename "$MODEL_DIR")" \
      --tokenizer "$MODEL_DIR" --input-len "$INPUT_LEN" --output-len "$OUTPUT_LEN" \
      --num-prompts "$n" --max-concurrency "$c" --seed 1 || echo "(bench serve failed)"
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
