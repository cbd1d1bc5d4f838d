#!/usr/bin/env bash
# Issue #4 load figure: N concurrent streaming connections held on loopback. Starts `herd serve`
# on the tiny model with room for N running requests, drives N simultaneous streaming
# completions with `herd bench serve --max-concurrency N`, samples the established TCP
# connections to the server and its running-request gauge every 0.25 s, and prints the peaks
# next to the benchmark's own table (failed requests must be 0).
#   benchmarks/concurrent_streams.sh [HERD_BINARY] [N]
set -euo pipefail
herd=${1:-build/cpu/herd}
n=${2:-1000}
port=${PORT:-8321}
work=$(mktemp -d)
trap 'kill $server_pid 2>/dev/null || true; kill $sampler_pid 2>/dev/null || true; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

"$herd" make-model --shape tiny --output "$work/tiny" >/dev/null 2>&1
"$herd" serve --model "$work/tiny" --port "$port" --grpc-port 0 --max-num-seqs "$n" \
  --max-waiting "$n" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.1; done

(
  while true; do
    c=$(ss -Htn state established "( sport = :$port )" | wc -l)
    r=$(curl -s "localhost:$port/metrics" | awk '/^herd_num_requests_running/ {print $2}')
    echo "$c ${r:-0}"
    sleep 0.25
  done
) >"$work/samples" &
sampler_pid=$!

cmd="$herd bench serve --base-url http://127.0.0.1:$port --model tiny --num-prompts $n \
--input-len 32 --output-len 256 --request-rate inf --max-concurrency $n"
echo "command: $cmd"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
$cmd 2>&1 | sed -n '/Serving Benchmark Result/,$p'
kill $sampler_pid
echo "peak established connections to the server: $(sort -n "$work/samples" | tail -1 | cut -d' ' -f1)"
echo "peak requests running at once:              $(sort -k2 -n "$work/samples" | tail -1 | cut -d' ' -f2)"
