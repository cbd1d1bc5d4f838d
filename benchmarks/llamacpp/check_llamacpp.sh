#!/usr/bin/env bash
# Smoke test of the llama.cpp peer (no timing): convert herd's tiny model,
# check llama.cpp's greedy tokens equal herd's (this is what validates the
# Q/K permutation and rope_freqs), then drive llama-server with a few
# `herd bench serve` requests.
#
# usage: check_llamacpp.sh [HERD_BIN (build/cpu/herd)] [PORT (8091)]
# env:   LLAMA_CPP_DIR (/work/llama.cpp)  SHAPE (tiny)  N (16 greedy tokens)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
HERD=${1:-build/cpu/herd}
PORT=${2:-8091}
SHAPE=${SHAPE:-tiny}
N=${N:-16}
LLAMA_CPP_DIR=${LLAMA_CPP_DIR:-/work/llama.cpp}
export LLAMA_CPP_DIR
WORK=$(mktemp -d)
server_pid=
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$HERD" make-model --shape "$SHAPE" --output "$WORK/m" --threads 1 >/dev/null
/usr/bin/python3 "$HERE/convert_to_gguf.py" --model "$WORK/m" --output "$WORK/m.gguf"

# Token ids rather than text: the tiny vocab decodes to raw bytes.
bos=$(jq .bos_token_id "$WORK/m/config.json")
ids="$bos,$(printf 'The quick brown fox' | "$HERD" tokenize --tokenizer "$WORK/m" | tr -d '[]')"
herd_greedy=$("$HERD" logits --model "$WORK/m" --prompt-ids "$ids" --greedy "$N" --threads 1 |
  jq -c .greedy)

THREADS=1 SLOTS=4 "$HERE/serve_llamacpp.sh" "$WORK/m.gguf" "$PORT" >"$WORK/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.5
done
llama_greedy=$(curl -sf "http://127.0.0.1:$PORT/completion" -H 'Content-Type: application/json' \
  -d "{\"prompt\": [$ids], \"n_predict\": $N, \"temperature\": 0, \"ignore_eos\": true,
       \"return_tokens\": true, \"cache_prompt\": false}" | jq -c .tokens)
echo "prompt ids:   [$ids]"
echo "herd greedy:  $herd_greedy"
echo "llama greedy: $llama_greedy"
[[ $herd_greedy == "$llama_greedy" ]] && echo "greedy tokens: MATCH" || { echo "greedy tokens: DIFFER"; status=1; }

"$HERD" bench serve --base-url "http://127.0.0.1:$PORT" --model m --tokenizer "$WORK/m" \
  --input-len 32 --output-len 16 --num-prompts 8 --max-concurrency 4 --json "${BENCH_JSON:-/dev/null}"
exit "${status:-0}"
