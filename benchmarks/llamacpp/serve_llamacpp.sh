#!/usr/bin/env bash
# Start llama-server as the peer of `herd serve` for `herd bench serve`.
#
# usage: serve_llamacpp.sh MODEL.gguf [PORT (8080)] [extra llama-server flags...]
# env:   LLAMA_CPP_DIR (/work/llama.cpp)  THREADS (2)  SLOTS (16)  SLOT_CTX (256)
#
# Slots and context are sized for the CPU benchmark (128 prompt + 64 output
# tokens per request): SLOTS sequences of SLOT_CTX tokens each, so the server
# admits up to SLOTS concurrent requests, like herd's --max-num-seqs.
set -euo pipefail
GGUF=${1:?usage: serve_llamacpp.sh MODEL.gguf [PORT] [flags...]}
PORT=${2:-8080}
shift $(( $# >= 2 ? 2 : 1 ))
LLAMA_CPP_DIR=${LLAMA_CPP_DIR:-/work/llama.cpp}
THREADS=${THREADS:-2}
SLOTS=${SLOTS:-16}
SLOT_CTX=${SLOT_CTX:-256}
# --alias: the model name clients send; the file's stem, like herd's served name.
exec "$LLAMA_CPP_DIR/build/bin/llama-server" -m "$GGUF" --alias "$(basename "$GGUF" .gguf)" \
  --host 127.0.0.1 --port "$PORT" \
  -t "$THREADS" -tb "$THREADS" -np "$SLOTS" -c $((SLOTS * SLOT_CTX)) --cont-batching \
  --no-webui "$@"
