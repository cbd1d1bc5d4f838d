// Error statuses as the openai package sees them: it must raise its own error classes, with
// the fields it reads from an OpenAI-style error body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { API_KEY, MAX_BODY_BYTES, server } from '../lib/env.mjs';
import { waitFor, waitIdle } from '../lib/metrics.mjs';

const MAIN = server('MAIN');
const KEYED = server('KEYED');
const SMALL = server('SMALL');
// maxRetries: 0, or the SDK would retry 429 and connection errors on its own.
const sdk = (srv, apiKey = 'unused') =>
  new OpenAI({ baseURL: `${srv.http}/v1`, apiKey, maxRetries: 0 });
const messages = [{ role: 'user', content: 'hello' }];

test('400: BadRequestError naming the param', { skip: MAIN.skip }, async () => {
  await assert.rejects(
    sdk(MAIN).chat.completions.create({ model: MAIN.model, messages, temperature: -1 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}`);
      assert.equal(err.status, 400);
      assert.equal(err.param, 'temperature');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
  await assert.rejects(
    sdk(MAIN).completions.create({ model: MAIN.model, prompt: 'x', max_tokens: 0 }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'max_tokens');
  await assert.rejects(
    sdk(MAIN).chat.completions.create({ model: MAIN.model, messages: [] }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'messages');
});

test('400: prompt longer than the context names the lengths', { skip: MAIN.skip }, async () => {
  const models = [];
  for await (const m of sdk(MAIN).models.list()) models.push(m);
  const maxLen = models[0].max_model_len;
  assert.ok(maxLen > 0);
  await assert.rejects(
    sdk(MAIN).completions.create({ model: MAIN.model, prompt: Array(maxLen + 5).fill(65), max_tokens: 1 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.param, 'prompt');
      assert.match(err.message, new RegExp(`${maxLen}`));
      return true;
    });
});

test('404: NotFoundError for an unknown model', { skip: MAIN.skip }, async () => {
  await assert.rejects(
    sdk(MAIN).chat.completions.create({ model: 'no-such-model', messages }),
    (err) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found');
});

test('401: AuthenticationError without the right key', { skip: KEYED.skip }, async () => {
  for (const key of ['wrong-key', `${API_KEY}x`]) {
    await assert.rejects(
      sdk(KEYED, key).chat.completions.create({ model: KEYED.model, messages, max_tokens: 1 }),
      (err) => {
        assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}`);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_api_key');
        return true;
      });
  }
  await assert.rejects(sdk(KEYED, 'wrong').models.list(), OpenAI.AuthenticationError);
  // The right key works, and /health needs none.
  const r = await sdk(KEYED, API_KEY).chat.completions.create({ model: KEYED.model, messages, max_tokens: 2 });
  assert.equal(r.choices.length, 1);
  assert.equal((await fetch(`${KEYED.http}/health`)).status, 200);
  assert.equal((await fetch(`${KEYED.http}/metrics`)).status, 401);
});

test('413: body larger than --max-body-bytes', { skip: MAIN.skip || !MAX_BODY_BYTES }, async () => {
  const big = 'x'.repeat(MAX_BODY_BYTES + 1000);
  await assert.rejects(
    sdk(MAIN).completions.create({ model: MAIN.model, prompt: big, max_tokens: 1 }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 413);
      assert.equal(err.code, 'request_too_large');
      return true;
    });
});

// A streaming completion that runs until aborted: ignore_eos and a large max_tokens; logprobs
// make every token produce an SSE chunk (the tiny model often samples special tokens, which
// have no text).
async function startLongStream(srv, signal) {
  const res = await fetch(`${srv.http}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: srv.model, prompt: 'a long story', max_tokens: 3000, ignore_eos: true,
                           stream: true, logprobs: 0 }),
    signal,
  });
  assert.equal(res.status, 200);
  return res;
}

test('429: RateLimitError once the waiting queue is full', { skip: SMALL.skip }, async () => {
  // SMALL runs one sequence at a time and lets one wait: A runs, B waits, the third is refused.
  const ctl = new AbortController();
  try {
    const a = await startLongStream(SMALL, ctl.signal);
    await a.body.getReader().read();  // A is running: it has produced a chunk
    const b = fetch(`${SMALL.http}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: SMALL.model, prompt: 'b', max_tokens: 3000, ignore_eos: true, stream: true }),
      signal: ctl.signal,
    }).catch(() => {});
    await waitFor(SMALL.http, (m) => m.herd_num_requests_waiting === 1, 'B to be waiting');
    await assert.rejects(
      sdk(SMALL).chat.completions.create({ model: SMALL.model, messages, max_tokens: 1 }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}`);
        assert.equal(err.status, 429);
        assert.equal(err.type, 'rate_limit_error');
        return true;
      });
    ctl.abort();
    await b;
  } finally {
    ctl.abort();
  }
  // Both long requests were aborted when their clients went away; the pool is whole again.
  await waitIdle(SMALL.http);
  const r = await sdk(SMALL).completions.create({ model: SMALL.model, prompt: 'x', max_tokens: 1 });
  assert.equal(r.choices.length, 1);
});
