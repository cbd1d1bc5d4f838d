// herd serve with the official OpenAI JavaScript SDK (npm install openai).
// HERD_URL=http://127.0.0.1:8000 HERD_MODEL=tiny node docs/examples/openai_chat.mjs
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: `${process.env.HERD_URL ?? 'http://127.0.0.1:8000'}/v1`,
  apiKey: process.env.HERD_API_KEY ?? 'none',  // herd checks it only when started with --api-key
});
const model = process.env.HERD_MODEL ?? 'tiny';

const reply = await client.chat.completions.create({
  model,
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Write a haiku about herds.' },
  ],
  max_tokens: 32,
});
console.log(reply.choices[0].message.content);
console.log(reply.usage);

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: 'Count to five.' }],
  max_tokens: 16,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  process.stdout.write(chunk.choices[0]?.delta?.content ?? '');
  if (chunk.usage) console.log('\n', chunk.usage);
}
