// /v1/completions through the official openai package: text and token-id prompts, lists of
// prompts, echo, logprobs, streaming with usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { server } from '../lib/env.mjs';

const MAIN = server('MAIN');
const client = () => new OpenAI({ baseURL: `${MAIN.http}/v1`, apiKey: 'unused', maxRetries: 0 });
const BOS = 256;  // <|begin_of_text|> of the built-in tokenizer (vocab 512: 256 bytes + specials)
const bytes = (s) => [...Buffer.from(s, 'utf8')];

test('completions: text prompt', { skip: MAIN.skip }, async () => {
  const r = await client().completions.create({
    model: MAIN.model, prompt: 'Once upon a time', max_tokens: 9, temperature: 0, ignore_eos: true,
  });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  // BOS + one byte token per character (the tiny vocabulary has no merges).
  assert.equal(r.usage.prompt_tokens, 1 + 'Once upon a time'.length);
  assert.equal(r.usage.completion_tokens, 9);
});

test('completions: token-id prompt equals the same text', { skip: MAIN.skip }, async () => {
  const ask = (prompt) => client().completions.create({
    model: MAIN.model, prompt, max_tokens: 6, temperature: 0, ignore_eos: true, logprobs: 0,
  });
  const byText = await ask('The dog ran');
  const byIds = await ask([BOS, ...bytes('The dog ran')]);
  assert.equal(byIds.usage.prompt_tokens, byText.usage.prompt_tokens);
  assert.deepEqual(byIds.choices[0].logprobs.tokens, byText.choices[0].logprobs.tokens);
});

test('completions: a list of prompts numbers choices prompt by prompt', { skip: MAIN.skip }, async () => {
  const r = await client().completions.create({
    model: MAIN.model, prompt: ['first prompt', 'second'], n: 2, max_tokens: 3, temperature: 0,
    ignore_eos: true,
  });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
  assert.equal(r.usage.completion_tokens, 12);
  // Each prompt counts once however many samples it has (as OpenAI counts n).
  assert.equal(r.usage.prompt_tokens, (1 + 'first prompt'.length) + (1 + 'second'.length));
});

test('completions: echo returns the prompt before the completion', { skip: MAIN.skip }, async () => {
  const prompt = 'The cat sat';
  const plain = await client().completions.create({
    model: MAIN.model, prompt, max_tokens: 5, temperature: 0, ignore_eos: true,
  });
  const echoed = await client().completions.create({
    model: MAIN.model, prompt, max_tokens: 5, temperature: 0, ignore_eos: true, echo: true,
  });
  assert.equal(echoed.choices[0].text, prompt + plain.choices[0].text);
});

test('completions: echo of a token-id prompt decodes it', { skip: MAIN.skip }, async () => {
  const r = await client().completions.create({
    model: MAIN.model, prompt: bytes('hello'), max_tokens: 2, temperature: 0, echo: true,
  });
  assert.ok(r.choices[0].text.startsWith('hello'), r.choices[0].text);
});

test('completions: logprobs with echo cover prompt and completion', { skip: MAIN.skip }, async () => {
  const prompt = 'abc';
  const r = await client().completions.create({
    model: MAIN.model, prompt, max_tokens: 4, temperature: 0, ignore_eos: true, echo: true,
    logprobs: 2,
  });
  const lp = r.choices[0].logprobs;
  const n = 1 + prompt.length + 4;  // BOS + prompt bytes + completion
  assert.equal(lp.tokens.length, n);
  assert.equal(lp.token_logprobs.length, n);
  assert.equal(lp.top_logprobs.length, n);
  assert.equal(lp.text_offset.length, n);
  // Prompt tokens have no logprob (OpenAI sends null for them); completion tokens do.
  for (let i = 0; i < 1 + prompt.length; ++i) assert.equal(lp.token_logprobs[i], null);
  for (let i = 1 + prompt.length; i < n; ++i) {
    assert.ok(lp.token_logprobs[i] <= 0);
    assert.ok(Object.keys(lp.top_logprobs[i]).length >= 1);
    assert.ok(Object.keys(lp.top_logprobs[i]).length <= 2);
  }
  for (let i = 1; i < n; ++i) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1]);
});

test('completions: streaming with include_usage', { skip: MAIN.skip }, async () => {
  const stream = await client().completions.create({
    model: MAIN.model, prompt: 'Once', max_tokens: 8, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 8);
  assert.equal(last.usage.prompt_tokens, 5);
  const finishes = chunks.flatMap((c) => c.choices).filter((c) => c.finish_reason);
  assert.deepEqual(finishes.map((c) => c.finish_reason), ['length']);
  for (const c of chunks) assert.equal(c.object, 'text_completion');
});
