// A client that goes away mid-stream: the server must notice (its next SSE write fails), abort
// the engine request and give its KV blocks back. Checked on /metrics with a bounded poll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { server } from '../lib/env.mjs';
import { metrics, waitIdle } from '../lib/metrics.mjs';

const MAIN = server('MAIN');
const MAX_TOKENS = 3500;  // with the chat template, still within the 4096-token context

for (const route of ['/v1/chat/completions', '/v1/completions']) {
  test(`HTTP client disconnect mid-stream aborts the request (${route})`, { skip: MAIN.skip }, async () => {
    await waitIdle(MAIN.http);
    const before = await metrics(MAIN.http);
    const body = { model: MAIN.model, max_tokens: MAX_TOKENS, ignore_eos: true, temperature: 0, stream: true };
    // logprobs: every token then writes a chunk, also the special tokens that have no text.
    if (route === '/v1/chat/completions') Object.assign(body, { messages: [{ role: 'user', content: 'go' }], logprobs: true });
    else Object.assign(body, { prompt: 'go', logprobs: 0 });
    const ctl = new AbortController();
    const res = await fetch(`${MAIN.http}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: ctl.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const reader = res.body.getReader();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 3) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the stream ended before it was aborted');
      text += new TextDecoder().decode(value);
    }
    const mid = await metrics(MAIN.http);
    assert.equal(mid.herd_num_requests_running, 1);
    assert.ok(mid.herd_kv_cache_usage_ratio > 0);
    ctl.abort();
    await reader.closed.catch(() => {});
    const after = await waitIdle(MAIN.http);
    assert.equal(after['herd_request_success_total{abort}'], before['herd_request_success_total{abort}'] + 1);
    const generated = after.herd_generation_tokens_total - before.herd_generation_tokens_total;
    assert.ok(generated < MAX_TOKENS, `${generated} tokens: the request ran to the end`);
  });
}

// A non-streaming request whose client goes away: the server reads the socket while the engine
// runs, so the hang-up aborts the request (its KV blocks are freed) instead of it running to
// max_tokens.
for (const route of ['/v1/chat/completions', '/v1/completions']) {
  test(`HTTP client disconnect during a non-streaming request aborts it (${route})`, { skip: MAIN.skip }, async () => {
    await waitIdle(MAIN.http);
    const before = await metrics(MAIN.http);
    const body = { model: MAIN.model, max_tokens: MAX_TOKENS, ignore_eos: true, temperature: 0 };
    if (route === '/v1/chat/completions') body.messages = [{ role: 'user', content: 'go' }];
    else body.prompt = 'go';
    const ctl = new AbortController();
    const pending = fetch(`${MAIN.http}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: ctl.signal,
    }).catch((e) => e);
    // Bounded poll until the engine runs it and holds KV blocks.
    let mid;
    for (let i = 0; i < 400; i++) {
      mid = await metrics(MAIN.http);
      if (mid.herd_num_requests_running === 1 && mid.herd_kv_cache_usage_ratio > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(mid.herd_num_requests_running, 1);
    ctl.abort();
    const err = await pending;
    assert.equal(err.name, 'AbortError');
    const after = await waitIdle(MAIN.http);
    assert.equal(after['herd_request_success_total{abort}'], before['herd_request_success_total{abort}'] + 1);
    assert.equal(after.herd_kv_cache_usage_ratio, 0);
    const generated = after.herd_generation_tokens_total - before.herd_generation_tokens_total;
    assert.ok(generated < MAX_TOKENS, `${generated} tokens: the request ran to the end`);
  });
}
