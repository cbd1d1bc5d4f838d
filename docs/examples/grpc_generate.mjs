// herd's gRPC API with @grpc/grpc-js and @grpc/proto-loader (npm install @grpc/grpc-js
// @grpc/proto-loader): stream a generation from herd.v1.Herd/Generate.
// HERD_GRPC=127.0.0.1:50051 HERD_PROTO=proto/herd/v1/herd.proto node docs/examples/grpc_generate.mjs
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const protoPath = process.env.HERD_PROTO ?? new URL('../../proto/herd/v1/herd.proto', import.meta.url).pathname;
const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, defaults: true, oneofs: true });
const { herd } = grpc.loadPackageDefinition(def);
const client = new herd.v1.Herd(process.env.HERD_GRPC ?? '127.0.0.1:50051', grpc.credentials.createInsecure());

const metadata = new grpc.Metadata();
if (process.env.HERD_API_KEY) metadata.set('authorization', `Bearer ${process.env.HERD_API_KEY}`);

const call = client.Generate(
  { text: 'Once upon a time', params: { max_tokens: 32, temperature: 0.8 } },
  metadata,
  { deadline: Date.now() + 30_000 },  // past the deadline the server aborts the request
);
call.on('data', (r) => {
  process.stdout.write(r.text);
  if (r.finish_reason) console.log(`\n[finish_reason=${r.finish_reason}]`);
  if (r.usage) console.log(r.usage);
});
call.on('error', (err) => {
  console.error(`gRPC error: ${err.code} ${err.details}`);
  process.exitCode = 1;
});
call.on('end', () => client.close());
