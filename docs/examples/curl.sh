#!/usr/bin/env bash
# herd serve with curl: chat, streaming chat, completions. Start a server first, e.g.
#   herd make-model --shape tiny --output /tmp/tiny && herd serve --model /tmp/tiny
# then: HERD_URL=http://127.0.0.1:8000 HERD_MODEL=tiny bash docs/examples/curl.sh
set -euo pipefail
URL=${HERD_URL:-http://127.0.0.1:8000}
MODEL=${HERD_MODEL:-tiny}
AUTH=()
if [ -n "${HERD_API_KEY:-}" ]; then AUTH=(-H "Authorization: Bearer $HERD_API_KEY"); fi

# Chat completion (one JSON body back).
curl -sS --fail-with-body "$URL/v1/chat/completions" "${AUTH[@]}" \
  -H 'Content-Type: application/json' \
  -d '{"model": "'"$MODEL"'",
       "messages": [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "Write a haiku about herds."}],
       "max_tokens": 32, "temperature": 0.7}'
echo

# The same, streamed as server-sent events ("data: {...}" lines, then "data: [DONE]");
# the last chunk before [DONE] carries the token usage.
curl -sS --fail-with-body -N "$URL/v1/chat/completions" "${AUTH[@]}" \
  -H 'Content-Type: application/json' \
  -d '{"model": "'"$MODEL"'",
       "messages": [{"role": "user", "content": "Count to five."}],
       "max_tokens": 16, "stream": true, "stream_options": {"include_usage": true}}'

# Plain completion of a text prompt.
curl -sS --fail-with-body "$URL/v1/completions" "${AUTH[@]}" \
  -H 'Content-Type: application/json' \
  -d '{"model": "'"$MODEL"'", "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0}'
echo
