# Sourced by the shell tests that start `herd serve --port 0` in the background.
# server_port LOG [TRIES]: waits up to TRIES x 50 ms (default 200: 10 s) for the server's
# "listening on http://127.0.0.1:PORT" line in LOG and prints PORT; prints nothing when the
# line never came (the caller fails with its own message and logs).
server_port() {
  local log=$1 tries=${2:-200} p=
  for _ in $(seq "$tries"); do
    p=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log" | head -1)
    [ -n "$p" ] && break
    sleep 0.05
  done
  echo "$p"
}
