// Where the servers that run.sh started are. Each test file reads what it needs through
// server(); a server that is not configured (node --test run by hand) skips those tests with a
// message saying how to run them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const API_KEY = process.env.HERD_API_KEY ?? '';
export const MODEL = process.env.HERD_MODEL_NAME ?? '';
export const MAX_BODY_BYTES = Number(process.env.HERD_MAX_BODY_BYTES ?? 0);

// name: MAIN (no key), KEYED (--api-key), SMALL (--max-num-seqs 1 --max-waiting 1), TOOLS
// (tiny model with the tool-call tokenizer of lib/tool_tokenizer.mjs).
export function server(name) {
  const http = process.env[`HERD_${name}_URL`];
  const grpc = process.env[`HERD_${name}_GRPC`];
  const model = process.env[`HERD_${name}_MODEL`] ?? MODEL;
  return { http, grpc, model, skip: http ? false : `HERD_${name}_URL not set: run tests/npm/run.sh HERD_BINARY` };
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
