#!/usr/bin/env bash
# herd serve and SIGTERM (issue #4): the server stops accepting at once, lets an in-flight
# stream finish when it can before --shutdown-timeout, aborts what is left at the deadline, and
# exits 0 either way.   tests/cli/serve_sigterm.sh HERD_BINARY
set -euo pipefail
source "$(dirname "$0")/../lib/server_port.sh"
herd=$1
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$work"/log* 2>/dev/null || true; exit 1; }

"$herd" make-model --shape tiny --output "$work/m" >/dev/null 2>&1

# Starts a server with the given --shutdown-timeout; sets $pid and $port.
start() {
  local log="$work/log$1"
  "$herd" serve --model "$work/m" --port 0 --grpc-port 0 --shutdown-timeout "$1" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=$(server_port "$log")
  [ -n "$port" ] || fail "server did not start"
}

# Streams a completion of max_tokens tokens into $1 in the background; sets $curl_pid.
stream() {
  curl -sN "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"m\",\"prompt\":\"hi\",\"max_tokens\":$2,\"stream\":true,\"ignore_eos\":true,\"temperature\":0}" \
    >"$1" &
  curl_pid=$!
  for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
  fail "no streamed data"
}

# 1. Generous deadline: the in-flight stream completes normally.
start 60
stream "$work/s1" 2000
kill -TERM "$pid"
sleep 0.5
if curl -s --max-time 2 "http://127.0.0.1:$port/health" >/dev/null; then
  fail "a new connection was accepted after SIGTERM"
fi
wait "$curl_pid" || true
grep -q '"finish_reason":"length"' "$work/s1" || fail "in-flight stream did not finish (deadline 60 s)"
grep -q '^data: \[DONE\]' "$work/s1" || fail "in-flight stream lacks [DONE]"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "exit status $rc after a drained SIGTERM"

# 2. Short deadline: the stream is cut at the deadline and the server still exits 0.
start 0.3
stream "$work/s2" 4000
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM with a 0.3 s deadline"
wait "$curl_pid" || true
if grep -q '"finish_reason":"length"' "$work/s2"; then fail "4000-token stream was not cut at the deadline"; fi
echo "PASS: SIGTERM drains in-flight streams, refuses new connections, aborts at the deadline, exits 0"
