// Makes a tokenizer directory for a tiny model that can be steered into a tool call.
//
// Why: the tiny model has random weights and a 512-token byte-level vocabulary (256 bytes +
// 256 special tokens), so no bias on single bytes can make it write `{"name": ...}` in order:
// JSON repeats bytes (quotes), and the only order-dependent sampling control, the repetition
// penalty, cannot let a byte come back. This tokenizer is herd's built-in one with a few
// reserved special ids turned into ordinary vocabulary entries, each a distinct piece of a
// Llama 3.1 JSON tool call. They have no merges, so encoding never produces them (they never
// occur in a prompt); a test biases them in order (logit_bias) and a huge repetition_penalty
// removes each once used, so greedy decoding writes exactly the call, then <|eom_id|>.
//
// Usage: node lib/tool_tokenizer.mjs BUILTIN_MODEL_DIR OUT_DIR
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The pieces, in the order the model is made to emit them; their ids start at FIRST_ID.
export const TOOL_CALL_PIECES = [
  '{"name": "get_weather", ',
  '"parameters": ',
  '{"city": "Paris"',
  '}}',
];
export const FIRST_ID = 400;

// GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to U+0100 onwards.
function byteToText() {
  const keep = [];
  for (let b = 0x21; b <= 0x7e; ++b) keep.push(b);
  for (let b = 0xa1; b <= 0xac; ++b) keep.push(b);
  for (let b = 0xae; b <= 0xff; ++b) keep.push(b);
  const map = new Map();
  let extra = 0;
  for (let b = 0; b < 256; ++b)
    map.set(b, String.fromCodePoint(keep.includes(b) ? b : 256 + extra++));
  return map;
}

export function makeToolTokenizer(builtinDir, outDir) {
  const tj = JSON.parse(fs.readFileSync(path.join(builtinDir, 'tokenizer.json'), 'utf8'));
  const b2t = byteToText();
  const ids = TOOL_CALL_PIECES.map((_, i) => FIRST_ID + i);
  const before = tj.added_tokens.length;
  tj.added_tokens = tj.added_tokens.filter((t) => !ids.includes(t.id));
  if (tj.added_tokens.length !== before - ids.length)
    throw new Error(`ids ${ids} are not all special tokens in ${builtinDir}`);
  TOOL_CALL_PIECES.forEach((piece, i) => {
    const text = [...Buffer.from(piece, 'utf8')].map((b) => b2t.get(b)).join('');
    if (text in tj.model.vocab) throw new Error(`'${piece}' is already in the vocabulary`);
    tj.model.vocab[text] = ids[i];
  });
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'tokenizer.json'), JSON.stringify(tj));
  fs.copyFileSync(path.join(builtinDir, 'tokenizer_config.json'),
                  path.join(outDir, 'tokenizer_config.json'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.length !== 4) {
    console.error('usage: node lib/tool_tokenizer.mjs BUILTIN_MODEL_DIR OUT_DIR');
    process.exit(2);
  }
  makeToolTokenizer(process.argv[2], process.argv[3]);
}
