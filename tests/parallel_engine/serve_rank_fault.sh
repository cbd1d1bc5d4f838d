#!/usr/bin/env bash
# A parallel herd serve (mpirun -np 2, two pipeline stages) and a rank that fails:
#  1. hang: the worker rank is stopped (SIGSTOP). Rank 0 gets no tokens within --comm-timeout,
#     the request in flight ends with an error, /health turns 503 naming the silent rank, and
#     the whole job ends (MPI_Abort) with a non-zero status and one clear message.
#  2. death: the worker rank is killed (SIGKILL) mid-request; mpirun ends every rank and says
#     which one died. Both within a bounded time, no rank left behind.
#   tests/parallel_engine/serve_rank_fault.sh HERD_BINARY MPIEXEC [MPIEXEC FLAGS...]
set -euo pipefail
source "$(dirname "$0")/../lib/server_port.sh"
herd=$1
shift
mpirun=("$@")
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- job log"; cat "$work/log" 2>/dev/null || true; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$herd" make-model --shape tiny --output "$work/m" >/dev/null 2>&1

start() {
  "${mpirun[@]}" -np 2 "$herd" serve --model "$work/m" --port 0 --grpc-port -1 -pp 2 \
    --threads 1 --comm-timeout 3 --shutdown-timeout 5 >"$work/log" 2>&1 &
  pid=$!
  port=$(server_port "$work/log" 600)
  [ -n "$port" ] || fail "the parallel server did not start"
  curl -sf "http://127.0.0.1:$port/health" >/dev/null || fail "/health not 200 at start"
  # The worker: the herd process of this job whose environment says MPI rank 1.
  worker=
  for p in $(pgrep -f "$work/m"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
      worker=$p
    fi
  done
  [ -n "$worker" ] || fail "no rank-1 process found"
}

wait_end() {  # wait_end SECONDS: the job must end within that time, non-zero
  for _ in $(seq $(($1 * 20))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && fail "the job still runs $1 s after the rank failed"
  rc=0
  wait "$pid" || rc=$?
  pid=
  [ "$rc" -ne 0 ] || fail "the job exited 0 after a rank failed"
  if pgrep -f "$work/m" >/dev/null; then fail "a rank outlived the job"; fi
}

# 1. A hung rank.
start
curl -s "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"m","prompt":"hi","max_tokens":4,"temperature":0}' >/dev/null \
  || fail "a request before the fault failed"
kill -STOP "$worker"
curl -s --max-time 30 "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"m","prompt":"hi","max_tokens":50,"temperature":0,"ignore_eos":true}' \
  >"$work/reply" || true
grep -q '"error"' "$work/reply" || { cat "$work/reply"; fail "the request in flight got no error"; }
health=$(curl -s -o "$work/health" -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
[ "$health" = 503 ] || [ "$health" = 000 ] || fail "/health answered $health after the hang"
kill -CONT "$worker" 2>/dev/null || true
wait_end 30
grep -Eq 'rank 0: .*rank 1.*(no answer|within)|no tokens from rank 1' "$work/log" \
  || fail "the log does not name the silent rank"
grep -q 'Broken promise' "$work/log" && fail "a plan in flight was dropped instead of failed"
echo "PASS: a hung rank fails the request, turns /health 503 and ends the job"

# 2. A dead rank.
start
curl -s --max-time 30 "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"m","prompt":"hi","max_tokens":2000,"temperature":0,"ignore_eos":true}' \
  >"$work/reply" 2>&1 &
sleep 0.5
kill -9 "$worker"
wait_end 30
grep -Eiq 'rank 1|process rank 1|exited on signal 9' "$work/log" || fail "the log does not say rank 1 died"
echo "PASS: a killed rank ends every rank of the job"
