#!/usr/bin/env bash
# Tests herd serve with clients nobody here wrote: the official `openai` npm package and
# @grpc/grpc-js + @grpc/proto-loader (node's built-in test runner), then runs the README's curl
# and JavaScript examples against the same server so that they stay true.
#
# usage: tests/npm/run.sh HERD_BINARY
# Starts four servers on free ports (herd picks them: --port 0 --grpc-port 0):
#   MAIN   tiny model, no API key, 1 MiB body limit
#   KEYED  same model, --api-key
#   SMALL  same model, --max-num-seqs 1 --max-waiting 1 (for 429 / RESOURCE_EXHAUSTED)
#   TOOLS  tiny model with lib/tool_tokenizer.mjs's tokenizer (deterministic tool calls)
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 HERD_BINARY" >&2
  exit 2
fi
HERD=$(realpath "$1")
[ -x "$HERD" ] || { echo "$0: $1 is not an executable" >&2; exit 2; }
export HERD_BINARY=$HERD  # tests that start their own server (chat_injection.test.mjs)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/herd-npm.XXXXXX")
PIDS=()

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/*.err; do
      [ -f "$f" ] || continue
      echo "--- last lines of $(basename "$f") ---" >&2
      tail -n 20 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

cd "$HERE"
if [ ! -d node_modules ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi

echo "== models"
"$HERD" make-model --shape tiny --output "$WORK/tiny"
node lib/tool_tokenizer.mjs "$WORK/tiny" "$WORK/tool-tokenizer"
"$HERD" make-model --shape tiny --tokenizer "$WORK/tool-tokenizer" --output "$WORK/tiny-tools"

API_KEY="npm-test-key-$RANDOM$RANDOM"
MAX_BODY=1048576

# start NAME MODEL_DIR [serve flags...]: starts a server, waits for /health, exports
# HERD_<NAME>_URL, HERD_<NAME>_GRPC and HERD_<NAME>_MODEL.
start() {
  local name=$1 model=$2
  shift 2
  # Small KV pools: four servers share this machine.
  "$HERD" serve --model "$model" --port 0 --grpc-port 0 --kv-cache-gb 0.05 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  local pid=$! http="" grpc=""
  for _ in $(seq 1 300); do
    http=$(sed -n 's|^listening on \(http://[^ ]*\)$|\1|p' "$WORK/$name.out")
    grpc=$(sed -n 's|^grpc listening on \([^ ]*\)$|\1|p' "$WORK/$name.out")
    [ -n "$http" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "herd serve ($name) exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$http" ] || { echo "herd serve ($name) did not start" >&2; exit 1; }
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$http/health" && break
    sleep 0.1
  done
  curl -sf -o /dev/null "$http/health" || { echo "herd serve ($name): /health not 200" >&2; exit 1; }
  export "HERD_${name}_URL=$http" "HERD_${name}_GRPC=$grpc" "HERD_${name}_MODEL=$(basename "$model")"
  echo "$name: $http grpc $grpc"
}

echo "== servers"
start MAIN "$WORK/tiny" --max-body-bytes "$MAX_BODY"
start KEYED "$WORK/tiny" --api-key "$API_KEY"
start SMALL "$WORK/tiny" --max-num-seqs 1 --max-waiting 1
start TOOLS "$WORK/tiny-tools"
export HERD_API_KEY=$API_KEY HERD_MAX_BODY_BYTES=$MAX_BODY HERD_MODEL_NAME=tiny

echo "== node --test"
# One file at a time: several tests read engine-wide counters on /metrics. Node before 20.10
# lacks --test-concurrency; there each file gets its own run.
if node --test-concurrency=1 -e '' 2>/dev/null; then
  node --test --test-concurrency=1 test/*.test.mjs
else
  failed=0
  for f in test/*.test.mjs; do node --test "$f" || failed=1; done
  [ $failed -eq 0 ]
fi

echo "== README examples"
# The examples are run as they are in docs/examples, from a copy beside this package's
# node_modules (ES modules resolve packages from the importing file's folder).
mkdir -p "$WORK/examples"
cp "$ROOT"/docs/examples/*.mjs "$WORK/examples/"
ln -s "$HERE/node_modules" "$WORK/examples/node_modules"
export HERD_URL=$HERD_MAIN_URL HERD_GRPC=$HERD_MAIN_GRPC HERD_MODEL=tiny
export HERD_PROTO=$ROOT/proto/herd/v1/herd.proto
# expect LOG PATTERN: the example's output must show it got through (a reply, usage, the end).
expect() {
  grep -q -- "$2" "$WORK/$1" || { echo "$1 lacks '$2':" >&2; cat "$WORK/$1" >&2; exit 1; }
}
bash "$ROOT/docs/examples/curl.sh" >"$WORK/curl.log"
expect curl.log '"object":"chat.completion"'
expect curl.log 'data: \[DONE\]'
expect curl.log '"object":"text_completion"'
echo "curl.sh: ok"
node "$WORK/examples/openai_chat.mjs" >"$WORK/openai_chat.log"
expect openai_chat.log 'completion_tokens'
echo "openai_chat.mjs: ok"
node "$WORK/examples/grpc_generate.mjs" >"$WORK/grpc_generate.log"
expect grpc_generate.log 'finish_reason='
echo "grpc_generate.mjs: ok"
# The Python SDK is not installable here (no Debian package; PyPI is out of reach), so
# openai_chat.py is only parsed, not run.
if command -v python3 >/dev/null; then
  python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$ROOT/docs/examples/openai_chat.py"
  echo "openai_chat.py: parses (not run: the openai Python package is not installed)"
fi
echo "== all passed"
