// /v1/chat/completions and /v1/models through the official openai package. The tiny model has
// random weights: the tests check structure, counts and finish reasons, never the words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { server } from '../lib/env.mjs';

const MAIN = server('MAIN');
const client = () => new OpenAI({ baseURL: `${MAIN.http}/v1`, apiKey: 'unused', maxRetries: 0 });
const messages = [
  { role: 'system', content: 'You are a storyteller.' },
  { role: 'user', content: 'Tell me a story about a little dog.' },
];

test('models.list names the served model', { skip: MAIN.skip }, async () => {
  const ids = [];
  for await (const m of client().models.list()) ids.push(m);
  assert.equal(ids.length, 1);
  assert.equal(ids[0].id, MAIN.model);
  assert.equal(ids[0].object, 'model');
});

test('models.retrieve returns the served model; another id is a 404', { skip: MAIN.skip }, async () => {
  const m = await client().models.retrieve(MAIN.model);
  assert.equal(m.id, MAIN.model);
  assert.equal(m.object, 'model');
  await assert.rejects(client().models.retrieve('not-this-model'), OpenAI.NotFoundError);
});

test('chat: non-streaming completion with usage', { skip: MAIN.skip }, async () => {
  const r = await client().chat.completions.create({
    model: MAIN.model, messages, max_tokens: 12, temperature: 0, ignore_eos: true,
  });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, MAIN.model);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  // ignore_eos: the model cannot stop early, so it runs into max_tokens.
  assert.equal(c.finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat: content given as a list of text parts', { skip: MAIN.skip }, async () => {
  const parts = [{ type: 'text', text: 'Tell me a story' }, { type: 'text', text: 'about a dog.' }];
  const r = await client().chat.completions.create({
    model: MAIN.model, messages: [{ role: 'user', content: parts }], max_tokens: 3, temperature: 0,
  });
  assert.equal(r.choices.length, 1);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
});

test('chat: greedy decoding is reproducible', { skip: MAIN.skip }, async () => {
  const ask = () => client().chat.completions.create({
    model: MAIN.model, messages, max_tokens: 8, temperature: 0, ignore_eos: true, logprobs: true,
  });
  const [a, b] = [await ask(), await ask()];
  const tokens = (r) => r.choices[0].logprobs.content.map((e) => e.token);
  assert.deepEqual(tokens(a), tokens(b));
});

test('chat: streaming with stream_options.include_usage', { skip: MAIN.skip }, async () => {
  const stream = await client().chat.completions.create({
    model: MAIN.model, messages, max_tokens: 10, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 3, `only ${chunks.length} chunks`);
  for (const ch of chunks) {
    assert.equal(ch.object, 'chat.completion.chunk');
    assert.equal(ch.id, chunks[0].id);
  }
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  // Every chunk but the last has usage null; the last has no choices and the totals.
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 10);
  assert.ok(last.usage.prompt_tokens > 0);
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + 10);
  for (const ch of chunks.slice(0, -1)) assert.equal(ch.usage, null);
  const finishes = chunks.flatMap((ch) => ch.choices).filter((c) => c.finish_reason);
  assert.equal(finishes.length, 1);
  assert.equal(finishes[0].finish_reason, 'length');
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
});

test('chat: streaming without include_usage sends no usage chunk', { skip: MAIN.skip }, async () => {
  const stream = await client().chat.completions.create({
    model: MAIN.model, messages, max_tokens: 4, temperature: 0, stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  for (const ch of chunks) {
    assert.equal(ch.usage, undefined);
    assert.equal(ch.choices.length, 1);
  }
  assert.ok(['stop', 'length'].includes(chunks.at(-1).choices[0].finish_reason));
});

test('chat: n=3 gives three choices', { skip: MAIN.skip }, async () => {
  const r = await client().chat.completions.create({
    model: MAIN.model, messages, n: 3, max_tokens: 6, temperature: 1, seed: 7, ignore_eos: true,
  });
  assert.equal(r.choices.length, 3);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.choices) {
    assert.equal(c.message.role, 'assistant');
    assert.equal(c.finish_reason, 'length');
  }
  assert.equal(r.usage.completion_tokens, 18);
});

test('chat: n=3 streaming delivers every index', { skip: MAIN.skip }, async () => {
  const stream = await client().chat.completions.create({
    model: MAIN.model, messages, n: 3, max_tokens: 5, temperature: 1, seed: 7, ignore_eos: true,
    stream: true,
  });
  const finished = new Map();
  for await (const chunk of stream)
    for (const c of chunk.choices) if (c.finish_reason) finished.set(c.index, c.finish_reason);
  assert.deepEqual([...finished.keys()].sort(), [0, 1, 2]);
  for (const reason of finished.values()) assert.equal(reason, 'length');
});

test('chat: logprobs with top_logprobs', { skip: MAIN.skip }, async () => {
  const r = await client().chat.completions.create({
    model: MAIN.model, messages, max_tokens: 6, temperature: 0, ignore_eos: true, logprobs: true,
    top_logprobs: 3,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 6);  // one entry per generated token
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0);
    assert.ok(Array.isArray(e.bytes));
    assert.equal(e.top_logprobs.length, 3);
    // Alternatives come most likely first, and greedy picked the most likely one.
    for (let k = 1; k < 3; ++k) assert.ok(e.top_logprobs[k - 1].logprob >= e.top_logprobs[k].logprob);
    assert.ok(Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-6);
  }
});

test('chat: streamed logprobs cover every generated token', { skip: MAIN.skip }, async () => {
  const stream = await client().chat.completions.create({
    model: MAIN.model, messages, max_tokens: 7, temperature: 0, ignore_eos: true, logprobs: true,
    top_logprobs: 2, stream: true,
  });
  let entries = 0;
  for await (const chunk of stream)
    for (const c of chunk.choices) {
      for (const e of c.logprobs?.content ?? []) {
        assert.equal(e.top_logprobs.length, 2);
        ++entries;
      }
    }
  assert.equal(entries, 7);
});

test('chat: max_completion_tokens', { skip: MAIN.skip }, async () => {
  const r = await client().chat.completions.create({
    model: MAIN.model, messages, max_completion_tokens: 5, temperature: 0, ignore_eos: true,
  });
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(r.choices[0].finish_reason, 'length');
});

// Only printable ASCII bytes may be sampled, so the text is plain and a stop string cut from
// it is found again by the second, identical (greedy) run.
const ASCII_ONLY = Object.fromEntries(
  Array.from({ length: 512 }, (_, id) => [id, id >= 32 && id < 127 ? 0 : -100]).filter(([, b]) => b));

test('chat: stop sequence ends the reply before it', { skip: MAIN.skip }, async () => {
  const ask = (extra) => client().chat.completions.create({
    model: MAIN.model, messages, max_tokens: 24, temperature: 0, logit_bias: ASCII_ONLY, ...extra,
  });
  const full = (await ask({})).choices[0].message.content;
  assert.ok(full.length >= 8, `greedy reply too short to cut a stop string from: '${full}'`);
  const stop = full.slice(4, 6);
  const r = await ask({ stop: [stop] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
});
