#!/usr/bin/env bash
# Issue 14 item 7: inter-token latency of running streams while 8k-token prompts arrive.
# Starts `herd serve` on the tiny make-model model (its config.json's max_position_embeddings
# raised from 4096 to 16384 so that 8k-token prompts fit: the tiny model has no learned
# positions, RoPE is computed for any position), then runs two `herd bench serve` clients at
# once: streams of 128 tokens (32-token prompts) arriving at 8/s for 10 s, at most 4 at once,
# and, one second later (the streams' client has run its initial test request), 8000-token
# prompts (16 output tokens) back to back, one at a time (the client's initial test request
# and 4 more). Prints both clients' results; the streams' ITL is the figure of interest.
#   [CLIENT=HERD_BINARY_FOR_BENCH] benchmarks/long_prompt_itl.sh [HERD_BINARY] [extra serve flags...]
# (CLIENT: the herd whose `bench serve` measures; default HERD_BINARY. The "before" figures in
# RESULTS.md ran the base commit's server with this commit's client, which also prints Max.)
set -euo pipefail
herd=${1:-build/cpu/herd}
shift || true
client=${CLIENT:-$herd}
port=${PORT:-8323}
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill $server_pid 2>/dev/null; [ -n "${KEEP:-}" ] && cp -r "$work" /tmp/engine_bench_work; rm -rf "$work"' EXIT

"$herd" make-model --shape tiny --output "$work/tiny" >/dev/null 2>&1
sed -i 's/"max_position_embeddings": *4096/"max_position_embeddings": 16384/' "$work/tiny/config.json"
grep -q '"max_position_embeddings": *16384' "$work/tiny/config.json" || { echo "config patch failed"; exit 1; }
"$herd" serve --model "$work/tiny" --port "$port" --grpc-port -1 --threads 2 \
  --max-model-len 9000 "$@" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.1; done

streams="$client bench serve --base-url http://127.0.0.1:$port --model tiny --num-prompts 80 \
--input-len 32 --output-len 128 --request-rate 8 --max-concurrency 4 --seed 1"
long="$client bench serve --base-url http://127.0.0.1:$port --model tiny --num-prompts 4 \
--input-len 8000 --output-len 16 --request-rate inf --max-concurrency 1 --seed 2"
echo "server: $herd serve --model tiny(max_position_embeddings 16384) --threads 2 --max-model-len 9000 $*"
echo "streams: $streams"
echo "long prompts (1 s later): $long"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) vCPU"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
$streams >"$work/streams.out" 2>&1 &
streams_pid=$!
sleep 1
$long >"$work/long.out" 2>&1
wait $streams_pid
echo "--- streams"
sed -n '/Serving Benchmark Result/,$p' "$work/streams.out"
echo "--- long prompts"
sed -n '/Serving Benchmark Result/,$p' "$work/long.out" | grep -E "Successful|Failed|TTFT|E2E"
