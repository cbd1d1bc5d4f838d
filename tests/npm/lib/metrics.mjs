// GET /metrics (Prometheus text) as { name -> value } for the series herd exports, and a
// bounded poll for "the engine is idle and every KV block is back in the pool".
import { sleep } from './env.mjs';

export async function metrics(baseUrl, headers = {}) {
  const res = await fetch(`${baseUrl}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const out = {};
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    // name{labels} value: keep the name, and finished_reason for the per-reason counter.
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/);
    if (!m) continue;
    const reason = m[2]?.match(/finished_reason="([^"]+)"/);
    const code = m[2]?.match(/code="([^"]+)"/);
    let key = m[1];
    if (reason) key += `{${reason[1]}}`;
    else if (code) key += `{${code[1]}}`;
    else if (m[2]?.includes('le=')) continue;  // histogram buckets: not needed here
    out[key] = Number(m[3]);
  }
  return out;
}

// Polls until nothing runs or waits and KV usage is 0; returns the last sample. Fails after
// `attempts` polls (the bound is generous: the check is that it gets there, not how fast).
export async function waitIdle(baseUrl, { headers = {}, attempts = 300, everyMs = 100 } = {}) {
  let m;
  for (let i = 0; i < attempts; ++i) {
    m = await metrics(baseUrl, headers);
    if (m.herd_num_requests_running === 0 && m.herd_num_requests_waiting === 0 &&
        m.herd_kv_cache_usage_ratio === 0)
      return m;
    await sleep(everyMs);
  }
  throw new Error(`server not idle after ${attempts} polls: running=${m.herd_num_requests_running} ` +
                  `waiting=${m.herd_num_requests_waiting} kv=${m.herd_kv_cache_usage_ratio}`);
}

// Polls until pred(metrics) holds; returns the sample that satisfied it.
export async function waitFor(baseUrl, pred, what, { headers = {}, attempts = 300, everyMs = 50 } = {}) {
  let m;
  for (let i = 0; i < attempts; ++i) {
    m = await metrics(baseUrl, headers);
    if (pred(m)) return m;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(m)}`);
}
