#!/usr/bin/env bash
# herd serve and a failed engine step (issue 14 item 5): with the fault-injection hook
# HERD_TEST_FAIL_STEP_AFTER=N every engine step after N fails as a device fault would. The
# in-flight request ends with an error (never a truncated success), the server notices that
# the engine is unhealthy, drains and exits with status 3 so that an orchestrator restarts it.
#   tests/cli/serve_engine_fault.sh HERD_BINARY
set -euo pipefail
source "$(dirname "$0")/../lib/server_port.sh"
herd=$1
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$work/log" 2>/dev/null || true; exit 1; }

"$herd" make-model --shape tiny --output "$work/m" >/dev/null 2>&1

HERD_TEST_FAIL_STEP_AFTER=3 "$herd" serve --model "$work/m" --port 0 --grpc-port -1 \
  --shutdown-timeout 10 >"$work/log" 2>&1 &
pid=$!
port=$(server_port "$work/log")
[ -n "$port" ] || fail "server did not start"

# A streamed request for 50 tokens: three steps run, then the fourth fails.
curl -sN --max-time 20 "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"m","prompt":"hi","max_tokens":50,"stream":true,"ignore_eos":true,"temperature":0}' \
  >"$work/stream" || true
grep -q '"error"' "$work/stream" || { cat "$work/stream"; fail "the failed request got no error event"; }
if grep -q '"finish_reason":"length"' "$work/stream"; then fail "the failed request finished as a success"; fi

# The server exits by itself, non-zero (3), within a few health polls.
rc=0
for _ in $(seq 300); do
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.05
done
kill -0 "$pid" 2>/dev/null && fail "server still running after the engine failed"
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 3 ] || fail "exit status $rc after an engine fault (want 3)"
grep -q 'engine unhealthy' "$work/log" || fail "the log does not say why it exits"
echo "PASS: an engine fault ends the request with an error and herd serve exits 3"
