// herd.v1.Herd and grpc.health.v1.Health clients, generated at run time by @grpc/proto-loader
// from the .proto files in the repository (no generated code checked in).
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { REPO_ROOT } from './env.mjs';

const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function load(relPath) {
  const def = protoLoader.loadSync(path.join(REPO_ROOT, 'proto', relPath), {
    ...LOAD_OPTIONS,
    includeDirs: [path.join(REPO_ROOT, 'proto')],
  });
  return grpc.loadPackageDefinition(def);
}

const herdPkg = load('herd/v1/herd.proto');
const healthPkg = load('grpc/health/v1/health.proto');

export function herdClient(address) {
  return new herdPkg.herd.v1.Herd(address, grpc.credentials.createInsecure());
}

export function healthClient(address) {
  return new healthPkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

export function bearer(key) {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${key}`);
  return md;
}

// A unary call as a promise.
export function unary(client, method, request, { metadata = new grpc.Metadata(), deadline } = {}) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, deadline ? { deadline } : {}, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

// Reads a server stream to its end: { messages, status } or rejects with the call's error.
export function collect(call) {
  return new Promise((resolve, reject) => {
    const messages = [];
    call.on('data', (m) => messages.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(messages));
  });
}

export { grpc };
