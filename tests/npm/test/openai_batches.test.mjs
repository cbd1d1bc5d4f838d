// The Files and Batch APIs (herd serve --state-dir) seen through the official openai client:
// files.create, batches.create / retrieve / list / cancel, files.content, and a server killed
// (SIGKILL) mid-batch and started again on the same state folder, which resumes the batch and
// completes it with exactly one output line per custom_id. The test starts its own servers
// (HERD_BINARY, exported by run.sh) on a tiny model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { sleep } from '../lib/env.mjs';

const HERD = process.env.HERD_BINARY ?? '';
const skip = HERD ? false : 'HERD_BINARY not set: run tests/npm/run.sh HERD_BINARY';

let work = '';
let model = '';
const procs = [];

// Starts herd serve on `stateDir`; resolves to { proc, client }.
async function startServer(stateDir) {
  const env = { ...process.env };
  delete env.HERD_API_KEY;
  // One batch request at a time: batches last long enough to cancel or kill mid-way.
  const proc = spawn(HERD, ['serve', '--model', model, '--port', '0', '--grpc-port', '-1',
    '--kv-cache-gb', '0.05', '--state-dir', stateDir, '--batch-max-in-flight', '1'],
  { stdio: ['ignore', 'pipe', 'pipe'], env });
  procs.push(proc);
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  let url = '';
  for (let i = 0; i < 600 && !url; ++i) {
    const m = out.match(/^listening on (http:\/\/\S+)$/m);
    if (m) url = m[1];
    else await sleep(100);
    assert.equal(proc.exitCode, null, `herd serve exited: ${err}`);
  }
  assert.ok(url, `herd serve did not start: ${err}`);
  return { proc, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 }) };
}

function requests(n, maxTokens) {
  let text = '';
  for (let i = 0; i < n; ++i) {
    text += JSON.stringify({
      custom_id: `req-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'tiny', messages: [{ role: 'user', content: `count ${i}` }],
        max_tokens: maxTokens, ignore_eos: true, temperature: 0 },
    }) + '\n';
  }
  return text;
}

async function waitFor(client, id, pred, what) {
  let b;
  for (let i = 0; i < 1200; ++i) {
    b = await client.batches.retrieve(id);
    if (pred(b)) return b;
    await sleep(50);
  }
  assert.fail(`batch never ${what}: ${JSON.stringify(b)}`);
}

async function outputLines(client, fileId) {
  const text = await (await client.files.content(fileId)).text();
  return text.trim().split('\n').map((l) => JSON.parse(l));
}

before(() => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-batches-'));
  model = path.join(work, 'tiny');
  const mk = spawnSync(HERD, ['make-model', '--shape', 'tiny', '--output', model], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
});

after(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('files.create, batches.create/retrieve/list, files.content', { skip }, async () => {
  const { proc, client } = await startServer(path.join(work, 'state-a'));
  try {
    const input = requests(4, 3);
    const file = await client.files.create({ file: await toFile(Buffer.from(input), 'in.jsonl'), purpose: 'batch' });
    assert.equal(file.object, 'file');
    assert.equal(file.purpose, 'batch');
    assert.equal(file.bytes, Buffer.byteLength(input));
    assert.equal(await (await client.files.content(file.id)).text(), input);

    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions',
      completion_window: '24h', metadata: { purpose: 'test' } });
    assert.equal(created.object, 'batch');
    assert.ok(['validating', 'in_progress', 'finalizing', 'completed'].includes(created.status));
    const done = await waitFor(client, created.id, (b) => b.status === 'completed', 'completed');
    assert.deepEqual(done.request_counts, { total: 4, completed: 4, failed: 0 });
    assert.equal(done.error_file_id, null);
    const lines = await outputLines(client, done.output_file_id);
    assert.deepEqual(lines.map((l) => l.custom_id).sort(), ['req-0', 'req-1', 'req-2', 'req-3']);
    for (const l of lines) {
      assert.match(l.id, /^batch_req_/);
      assert.equal(l.error, null);
      assert.equal(l.response.status_code, 200);
      assert.equal(l.response.body.object, 'chat.completion');
      assert.equal(l.response.body.usage.completion_tokens, 3);
    }
    const ids = [];
    for await (const b of client.batches.list({ limit: 10 })) ids.push(b.id);
    assert.ok(ids.includes(created.id));
    const files = [];
    for await (const f of client.files.list()) files.push(f.id);
    assert.ok(files.includes(file.id) && files.includes(done.output_file_id));
  } finally {
    proc.kill('SIGTERM');
  }
});

test('batches.cancel stops a running batch', { skip }, async () => {
  const { proc, client } = await startServer(path.join(work, 'state-b'));
  try {
    const file = await client.files.create({ file: await toFile(Buffer.from(requests(40, 200)), 'in.jsonl'), purpose: 'batch' });
    const b = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitFor(client, b.id, (x) => x.status === 'in_progress', 'started');
    const c = await client.batches.cancel(b.id);
    assert.ok(['cancelling', 'cancelled'].includes(c.status), c.status);
    const end = await waitFor(client, b.id, (x) => x.status === 'cancelled', 'cancelled');
    assert.ok(end.request_counts.completed < 40);
    assert.ok(end.cancelled_at >= end.created_at);
    await assert.rejects(client.batches.retrieve('batch_missing'), (e) => e.status === 404);
  } finally {
    proc.kill('SIGTERM');
  }
});

test('a server killed mid-batch resumes it after a restart', { skip }, async () => {
  const state = path.join(work, 'state-c');
  const n = 24;
  let { proc, client } = await startServer(state);
  const file = await client.files.create({ file: await toFile(Buffer.from(requests(n, 64)), 'in.jsonl'), purpose: 'batch' });
  const b = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  await waitFor(client, b.id, (x) => x.request_counts.completed >= 2, 'answered 2 requests');
  proc.kill('SIGKILL');
  await new Promise((resolve) => proc.once('exit', resolve));

  ({ proc, client } = await startServer(state));
  try {
    const resumed = await client.batches.retrieve(b.id);
    assert.ok(resumed.request_counts.completed < n, 'the batch finished before the kill');
    const done = await waitFor(client, b.id, (x) => x.status === 'completed', 'completed after the restart');
    assert.equal(done.request_counts.completed, n);
    const ids = (await outputLines(client, done.output_file_id)).map((l) => l.custom_id);
    assert.equal(ids.length, n);
    assert.equal(new Set(ids).size, n);
  } finally {
    proc.kill('SIGTERM');
  }
});
