// herd.v1.Herd and grpc.health.v1 through @grpc/grpc-js, with stubs that @grpc/proto-loader
// builds from proto/ at run time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_KEY, server } from '../lib/env.mjs';
import { bearer, collect, grpc, healthClient, herdClient, unary } from '../lib/grpc.mjs';
import { metrics, waitFor, waitIdle } from '../lib/metrics.mjs';

const MAIN = server('MAIN');
const KEYED = server('KEYED');
const SMALL = server('SMALL');
const skipMain = MAIN.skip || (!MAIN.grpc && 'MAIN has no gRPC port (herd built without gRPC?)');
const { status: Status } = grpc;  // grpc-js names the status-code enum `status`

// A client per test, closed afterwards so that node can exit.
async function withClient(address, fn, make = herdClient) {
  const c = make(address);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

// A generation that runs until it is stopped: no EOS, most of the context.
const LONG = { temperature: 0, ignore_eos: true, max_tokens: 3500, logprobs: 0 };

test('grpc health: SERVING', { skip: skipMain }, async () => {
  await withClient(MAIN.grpc, async (h) => {
    const r = await unary(h, 'Check', { service: '' });
    assert.equal(r.status, 'SERVING');
  }, healthClient);
});

test('grpc ModelInfo, Tokenize and Detokenize', { skip: skipMain }, async () => {
  await withClient(MAIN.grpc, async (c) => {
    const info = await unary(c, 'ModelInfo', {});
    assert.equal(info.model_name, MAIN.model);
    assert.equal(info.vocab_size, 512);
    assert.equal(info.bos_id, 256);
    assert.ok(info.max_model_len > 0);
    assert.equal(Number(info.hidden_size), 64);
    const tok = await unary(c, 'Tokenize', { text: 'hello world' });
    assert.deepEqual(tok.ids, [256, ...Buffer.from('hello world')]);
    assert.equal(tok.max_model_len, info.max_model_len);
    const noBos = await unary(c, 'Tokenize', { text: 'hi', add_bos: false });
    assert.deepEqual(noBos.ids, [...Buffer.from('hi')]);
    const detok = await unary(c, 'Detokenize', { ids: noBos.ids });
    assert.equal(detok.text, 'hi');
    await assert.rejects(unary(c, 'Detokenize', { ids: [100000] }),
                         (e) => e.code === Status.INVALID_ARGUMENT);
  });
});

test('grpc Generate streams deltas; the last carries finish reason and usage', { skip: skipMain }, async () => {
  await withClient(MAIN.grpc, async (c) => {
    const msgs = await collect(c.Generate({ text: 'Once upon a time', params: { max_tokens: 12, temperature: 0, ignore_eos: true } }));
    assert.ok(msgs.length >= 2, `${msgs.length} messages`);
    const last = msgs.at(-1);
    assert.equal(last.finish_reason, 'length');
    assert.equal(last.usage.completion_tokens, 12);
    assert.equal(last.usage.prompt_tokens, 1 + 'Once upon a time'.length);
    for (const m of msgs.slice(0, -1)) {
      assert.equal(m.finish_reason, '');
      assert.equal(m.usage ?? null, null);  // proto3 optional: unset reads as undefined
    }
    assert.equal(msgs.reduce((n, m) => n + m.token_ids.length, 0), 12);
    for (const m of msgs) assert.equal(m.request_id, msgs[0].request_id);
    // The same prompt as token ids gives the same tokens (greedy).
    const ids = [256, ...Buffer.from('Once upon a time')];
    const again = await collect(c.Generate({ token_ids: { ids }, params: { max_tokens: 12, temperature: 0, ignore_eos: true } }));
    assert.deepEqual(again.flatMap((m) => m.token_ids), msgs.flatMap((m) => m.token_ids));
  });
});

test('grpc Generate with n=2 and logprobs', { skip: skipMain }, async () => {
  await withClient(MAIN.grpc, async (c) => {
    const msgs = await collect(c.Generate({ text: 'x', params: { n: 2, max_tokens: 4, temperature: 1, seed: 3, ignore_eos: true, logprobs: 2 } }));
    const byIndex = [0, 1].map((i) => msgs.filter((m) => m.index === i));
    for (const ms of byIndex) {
      assert.equal(ms.reduce((n, m) => n + m.token_ids.length, 0), 4);
      assert.equal(ms.filter((m) => m.finish_reason === 'length').length, 1);
      for (const lp of ms.flatMap((m) => m.logprobs)) {
        assert.ok(lp.logprob <= 0);
        assert.equal(lp.top.length, 2);
      }
    }
    assert.equal(msgs.at(-1).usage.completion_tokens, 8);
  });
});

test('grpc Generate rejects bad parameters with INVALID_ARGUMENT', { skip: skipMain }, async () => {
  await withClient(MAIN.grpc, async (c) => {
    await assert.rejects(collect(c.Generate({ text: 'x', params: { temperature: -1 } })),
                         (e) => e.code === Status.INVALID_ARGUMENT && /temperature/.test(e.details));
  });
});

test('grpc cancel mid-stream aborts the engine request and frees its KV blocks', { skip: skipMain }, async () => {
  await waitIdle(MAIN.http);
  const before = await metrics(MAIN.http);
  await withClient(MAIN.grpc, async (c) => {
    const call = c.Generate({ text: 'a very long story', params: LONG });
    const outcome = new Promise((resolve) => {
      call.on('error', resolve);
      call.on('end', () => resolve(null));
    });
    let seen = 0;
    await new Promise((resolve) => call.on('data', () => { if (++seen === 3) resolve(); }));
    const mid = await metrics(MAIN.http);
    assert.equal(mid.herd_num_requests_running, 1);
    assert.ok(mid.herd_kv_cache_usage_ratio > 0);
    call.cancel();
    const err = await outcome;
    assert.equal(err?.code, Status.CANCELLED);
  });
  const after = await waitIdle(MAIN.http);
  assert.equal(after['herd_request_success_total{abort}'], before['herd_request_success_total{abort}'] + 1);
  const generated = after.herd_generation_tokens_total - before.herd_generation_tokens_total;
  assert.ok(generated < LONG.max_tokens, `${generated} tokens: the request ran to the end`);
});

test('grpc deadline exceeded aborts the engine request', { skip: skipMain }, async () => {
  await waitIdle(MAIN.http);
  const before = await metrics(MAIN.http);
  await withClient(MAIN.grpc, async (c) => {
    // Long enough for the call to reach the server and start generating, far shorter than
    // the generation.
    const call = c.Generate({ text: 'another long story', params: LONG }, new grpc.Metadata(), { deadline: Date.now() + 1000 });
    await assert.rejects(collect(call), (e) => e.code === Status.DEADLINE_EXCEEDED);
  });
  const after = await waitIdle(MAIN.http);
  const generated = after.herd_generation_tokens_total - before.herd_generation_tokens_total;
  assert.ok(generated < LONG.max_tokens, `${generated} tokens: the request ran to the end`);
  assert.equal(after['herd_request_success_total{abort}'], before['herd_request_success_total{abort}'] + 1);
});

test('grpc UNAUTHENTICATED without the key on the keyed server', { skip: KEYED.skip || !KEYED.grpc }, async () => {
  await withClient(KEYED.grpc, async (c) => {
    await assert.rejects(unary(c, 'ModelInfo', {}), (e) => e.code === Status.UNAUTHENTICATED);
    await assert.rejects(unary(c, 'ModelInfo', {}, { metadata: bearer('wrong') }),
                         (e) => e.code === Status.UNAUTHENTICATED);
    await assert.rejects(collect(c.Generate({ text: 'x', params: { max_tokens: 1 } })),
                         (e) => e.code === Status.UNAUTHENTICATED);
    const info = await unary(c, 'ModelInfo', {}, { metadata: bearer(API_KEY) });
    assert.equal(info.model_name, KEYED.model);
    const msgs = await collect(c.Generate({ text: 'x', params: { max_tokens: 2 } }, bearer(API_KEY)));
    assert.ok(msgs.at(-1).usage.completion_tokens >= 1);
  });
  // Health checks need no key (load balancers probe without one).
  await withClient(KEYED.grpc, async (h) => {
    assert.equal((await unary(h, 'Check', { service: '' })).status, 'SERVING');
  }, healthClient);
});

test('grpc RESOURCE_EXHAUSTED once the waiting queue is full', { skip: SMALL.skip || !SMALL.grpc }, async () => {
  await waitIdle(SMALL.http);
  await withClient(SMALL.grpc, async (c) => {
    const a = c.Generate({ text: 'a', params: LONG });
    const aDone = collect(a).catch((e) => e);
    await new Promise((resolve) => a.once('data', resolve));  // A runs
    const b = c.Generate({ text: 'b', params: LONG });
    const bDone = collect(b).catch((e) => e);
    await waitFor(SMALL.http, (m) => m.herd_num_requests_waiting === 1, 'B to be waiting');
    await assert.rejects(collect(c.Generate({ text: 'c', params: { max_tokens: 1 } })),
                         (e) => e.code === Status.RESOURCE_EXHAUSTED);
    a.cancel();
    b.cancel();
    assert.equal((await aDone).code, Status.CANCELLED);
    assert.equal((await bDone).code, Status.CANCELLED);
  });
  await waitIdle(SMALL.http);
});
