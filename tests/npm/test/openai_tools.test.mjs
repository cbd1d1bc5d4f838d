// Tool calls through the official openai package. The TOOLS server's tiny model has the
// tokenizer of lib/tool_tokenizer.mjs: four extra vocabulary entries that together spell a
// Llama 3.1 JSON tool call. logit_bias ranks them (and <|eom_id|>) above everything else in
// order, and repetition_penalty 1e9 takes each out once used (herd applies the bias first, and
// the penalty divides a positive logit), so greedy decoding writes exactly that call: the
// server's parser, its tool_calls body and its streamed tool_calls deltas are tested on real
// model output, with no server-side shortcut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { server } from '../lib/env.mjs';
import { collect, herdClient } from '../lib/grpc.mjs';
import { FIRST_ID, TOOL_CALL_PIECES } from '../lib/tool_tokenizer.mjs';

const TOOLS = server('TOOLS');
const client = () => new OpenAI({ baseURL: `${TOOLS.http}/v1`, apiKey: 'unused', maxRetries: 0 });
const EOM = 264;  // <|eom_id|>: an end-of-sequence id of the built-in layout, never in a prompt
const VOCAB = 512;

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
const question = [{ role: 'user', content: 'What is the weather in Paris?' }];

// Bias 100, 80, 60, 40 for the pieces, 20 for <|eom_id|>, -100 for every other token.
const ladder = new Map(TOOL_CALL_PIECES.map((_, i) => [FIRST_ID + i, 100 - 20 * i]));
ladder.set(EOM, 100 - 20 * TOOL_CALL_PIECES.length);
const logit_bias = Object.fromEntries(
  Array.from({ length: VOCAB }, (_, id) => [id, ladder.get(id) ?? -100]));
const steer = { temperature: 0, logit_bias, repetition_penalty: 1e9, max_tokens: 16 };

test('tools: the steering tokens never occur in the prompt', { skip: TOOLS.skip }, async () => {
  // The repetition penalty also applies to prompt tokens: the steering needs them absent.
  const res = await fetch(`${TOOLS.http}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: TOOLS.model, messages: question, tools }),
  });
  const { tokens } = await res.json();
  assert.ok(tokens.length > 0);
  for (const id of ladder.keys()) assert.ok(!tokens.includes(id), `token ${id} is in the prompt`);
});

test('tools: non-streaming reply parsed into tool_calls', { skip: TOOLS.skip }, async () => {
  const r = await client().chat.completions.create({ model: TOOLS.model, messages: question, tools, ...steer });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.content, null);
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_[0-9A-Za-z]{24}$/);
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof call.function.arguments, 'string');  // JSON text, as OpenAI sends it
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  assert.equal(r.usage.completion_tokens, TOOL_CALL_PIECES.length + 1);
});

test('tools: streamed tool_calls deltas with index and id', { skip: TOOLS.skip }, async () => {
  const stream = await client().chat.completions.create({
    model: TOOLS.model, messages: question, tools, ...steer, stream: true,
    stream_options: { include_usage: true },
  });
  const deltas = [];
  let finish = null;
  let content = '';
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      for (const d of ch.delta.tool_calls ?? []) deltas.push(d);
      content += ch.delta.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(content, '');  // the JSON is not also streamed as text
  assert.equal(deltas.length, 1);
  assert.equal(deltas[0].index, 0);
  assert.match(deltas[0].id, /^call_/);
  assert.equal(deltas[0].type, 'function');
  assert.equal(deltas[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(deltas[0].function.arguments), { city: 'Paris' });
});

test('tools: the same output without tools stays plain text', { skip: TOOLS.skip }, async () => {
  const r = await client().chat.completions.create({ model: TOOLS.model, messages: question, ...steer });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'stop');
  assert.equal(c.message.tool_calls, undefined);
  assert.equal(c.message.content, TOOL_CALL_PIECES.join(''));
});

test('tools: tool_choice "none" leaves the call as text', { skip: TOOLS.skip }, async () => {
  const r = await client().chat.completions.create({
    model: TOOLS.model, messages: question, tools, tool_choice: 'none', ...steer,
  });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, TOOL_CALL_PIECES.join(''));
});

test('tools: round trip, the tool result goes back and a reply comes out', { skip: TOOLS.skip }, async () => {
  const first = await client().chat.completions.create({ model: TOOLS.model, messages: question, tools, ...steer });
  const call = first.choices[0].message.tool_calls[0];
  const conversation = [
    ...question,
    first.choices[0].message,  // the assistant message with tool_calls, exactly as received
    { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature_c: 21, sky: 'clear' }) },
  ];
  // The server renders the call and its result into the prompt (Llama 3.1 ipython turn).
  const tok = await (await fetch(`${TOOLS.http}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: TOOLS.model, messages: conversation, tools, return_token_strs: false }),
  })).json();
  const prompt = (await (await fetch(`${TOOLS.http}/detokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: TOOLS.model, tokens: tok.tokens }),
  })).json()).prompt;
  assert.ok(prompt.includes('"name": "get_weather", "parameters": {"city": "Paris"}'), prompt);
  assert.ok(prompt.includes('<|start_header_id|>ipython<|end_header_id|>\n\n{"temperature_c":21,"sky":"clear"}<|eot_id|>'), prompt);
  // Unsteered, the random model answers with something that is not a call.
  const second = await client().chat.completions.create({
    model: TOOLS.model, messages: conversation, tools, max_tokens: 8, temperature: 0,
  });
  const c = second.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
  assert.equal(c.message.tool_calls, undefined);
  assert.equal(second.usage.prompt_tokens, tok.tokens.length);
});

test('tools: gRPC Chat returns the parsed call in the final response', { skip: TOOLS.skip || !TOOLS.grpc }, async () => {
  const herd = herdClient(TOOLS.grpc);
  try {
    const call = herd.Chat({
      messages: question.map((m) => ({ role: m.role, content: m.content })),
      tools_json: JSON.stringify(tools),
      params: {
        temperature: 0, repetition_penalty: 1e9, max_tokens: 16,
        logit_bias: Object.fromEntries(Object.entries(logit_bias).map(([k, v]) => [Number(k), v])),
      },
    });
    const msgs = await collect(call);
    const last = msgs.at(-1);
    assert.equal(last.finish_reason, 'tool_calls');
    assert.equal(last.tool_calls.length, 1);
    assert.equal(last.tool_calls[0].name, 'get_weather');
    assert.deepEqual(JSON.parse(last.tool_calls[0].arguments), { city: 'Paris' });
    assert.equal(last.usage.completion_tokens, TOOL_CALL_PIECES.length + 1);
  } finally {
    herd.close();
  }
});
