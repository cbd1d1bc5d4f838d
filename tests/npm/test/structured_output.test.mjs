// Structured outputs (issue 15) through the official openai package, checked by an
// independent validator (ajv), not by herd's own grammar. The MAIN server's tiny model has
// random weights: unconstrained it writes garbage, so every reply that finishes ("stop") being
// valid JSON of the schema is the constraint's doing. Many seeds x a suite of schemas; replies
// cut by max_tokens ("length") cannot be complete values and are only counted.
import Ajv from 'ajv';
import assert from 'node:assert/strict';
import {test} from 'node:test';
import OpenAI from 'openai';

import {server} from '../lib/env.mjs';

const MAIN = server('MAIN');
const client = () => new OpenAI({baseURL: `${MAIN.http}/v1`, apiKey: 'unused', maxRetries: 0});
const ajv = new Ajv({strict: true, allErrors: true});
const messages = [{role: 'user', content: 'Reply in JSON.'}];

const SCHEMAS = {
  nested_object: {
    type: 'object',
    properties: {
      ok: {type: 'boolean'},
      id: {type: 'integer'},
      owner: {
        type: 'object',
        properties: {level: {enum: ['low', 'mid', 'high']}, score: {type: 'number'}},
        required: ['level', 'score'],
        additionalProperties: false,
      },
    },
    required: ['ok', 'id', 'owner'],
    additionalProperties: false,
  },
  array_of_numbers: {type: 'array', items: {type: 'number'}, minItems: 1, maxItems: 5},
  enums_and_const: {
    type: 'object',
    properties: {kind: {const : 'point'}, color: {enum: ['red', 'green', 'blue', 7, null]}},
    required: ['kind', 'color'],
    additionalProperties: false,
  },
  any_of: {
    type: 'object',
    properties: {
      v: {
        anyOf: [
          {type: 'integer'}, {type: 'null'}, {type: 'array', items: {type: 'boolean'}, maxItems: 3}
        ]
      },
    },
    required: ['v'],
    additionalProperties: false,
  },
  optional_and_nullable: {
    type: 'object',
    properties: {a: {type: ['integer', 'null']}, b: {type: 'boolean'}},
    required: ['b'],
  },
  unicode_string: {
    type: 'object',
    properties: {s: {type: 'string'}},
    required: ['s'],
    additionalProperties: false,
  },
  recursive_defs: {
    $defs: {
      node: {
        type: 'object',
        properties: {
          n: {type: 'integer'},
          kids: {type: 'array', items: {$ref: '#/$defs/node'}, maxItems: 2}
        },
        required: ['n', 'kids'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  },
};

const SEEDS = [1, 2, 3, 4, 5, 6];

for (const [name, schema] of Object.entries(SCHEMAS)) {
  test(`structured: ${name}: every finished reply validates (ajv)`, {skip: MAIN.skip}, async () => {
    const validate = ajv.compile(schema);
    let finished = 0;
    for (const seed of SEEDS) {
      const r = await client().chat.completions.create({
        model: MAIN.model,
        messages,
        seed,
        n: 2,
        temperature: 1,
        max_tokens: 400,
        response_format: {type: 'json_schema', json_schema: {name, schema, strict: true}},
      });
      for (const c of r.choices) {
        if (c.finish_reason === 'length') continue;
        assert.equal(c.finish_reason, 'stop');
        finished++;
        const value = JSON.parse(c.message.content);
        assert.ok(
            validate(value),
            `${name} seed ${seed}: ${c.message.content}\n${ajv.errorsText(validate.errors)}`);
        if (schema.properties) {
          // Properties come in the schema's order (not sorted), as OpenAI writes them.
          const order = Object.keys(schema.properties);
          const keys = Object.keys(value);
          assert.deepEqual(keys, order.filter((k) => keys.includes(k)), c.message.content);
        }
      }
    }
    assert.ok(finished > 0, `${name}: no reply finished within max_tokens`);
  });
}

test('structured: json_object mode yields JSON objects', {skip: MAIN.skip}, async () => {
  let finished = 0;
  for (const seed of SEEDS) {
    const r = await client().chat.completions.create({
      model: MAIN.model,
      messages,
      seed,
      temperature: 1,
      max_tokens: 300,
      response_format: {type: 'json_object'},
    });
    const c = r.choices[0];
    if (c.finish_reason !== 'stop') continue;
    finished++;
    const v = JSON.parse(c.message.content);
    assert.equal(typeof v, 'object');
    assert.ok(v !== null && !Array.isArray(v), c.message.content);
  }
  assert.ok(finished > 0);
});

test(
    'structured: streaming deltas join into a valid value; seeded replies repeat',
    {skip: MAIN.skip}, async () => {
      const schema = SCHEMAS.nested_object;
      const validate = ajv.compile(schema);
      const body = {
        model: MAIN.model,
        messages,
        seed: 11,
        temperature: 1,
        max_tokens: 400,
        response_format: {type: 'json_schema', json_schema: {name: 'n', schema}},
      };
      const stream = await client().chat.completions.create({...body, stream: true});
      let text = '';
      let finish = null;
      for await (const chunk of stream) {
        for (const ch of chunk.choices) {
          text += ch.delta?.content ?? '';
          finish = ch.finish_reason ?? finish;
        }
      }
      const once = await client().chat.completions.create(body);
      assert.equal(once.choices[0].message.content, text);
      if (finish === 'stop') assert.ok(validate(JSON.parse(text)), text);
    });

test('structured: /v1/completions honours response_format', {skip: MAIN.skip}, async () => {
  const schema = SCHEMAS.enums_and_const;
  const validate = ajv.compile(schema);
  let finished = 0;
  for (const seed of SEEDS) {
    const r = await client().completions.create({
      model: MAIN.model,
      prompt: 'JSON:',
      seed,
      temperature: 1,
      max_tokens: 200,
      response_format: {type: 'json_schema', json_schema: {name: 'c', schema}},
    });
    const c = r.choices[0];
    if (c.finish_reason !== 'stop') continue;
    finished++;
    assert.ok(validate(JSON.parse(c.text)), c.text);
  }
  assert.ok(finished > 0);
});

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: {
        type: 'object',
        properties: {unit: {enum: ['c', 'f']}, days: {type: 'integer'}},
        required: ['unit', 'days'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'set_alarm',
      parameters: {
        type: 'object',
        properties: {on: {type: 'boolean'}, zone: {enum: ['home', 'work']}},
        required: ['on', 'zone'],
        additionalProperties: false,
      },
    },
  },
];
const paramValidators =
    Object.fromEntries(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));

test(
    'structured: tool_choice "required" always yields a tool call', {skip: MAIN.skip}, async () => {
      for (const seed of SEEDS) {
        const r = await client().chat.completions.create({
          model: MAIN.model,
          messages,
          tools,
          tool_choice: 'required',
          seed,
          n: 2,
          temperature: 1,
          max_tokens: 200,
        });
        for (const c of r.choices) {
          assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c.message));
          assert.equal(c.message.tool_calls.length, 1);
          const call = c.message.tool_calls[0].function;
          assert.ok(call.name in paramValidators, call.name);
          const args = JSON.parse(call.arguments);
          assert.ok(paramValidators[call.name](args), `${call.name} ${call.arguments}`);
        }
      }
    });

test('structured: a named tool_choice calls that function', {skip: MAIN.skip}, async () => {
  for (const seed of SEEDS.slice(0, 3)) {
    const r = await client().chat.completions.create({
      model: MAIN.model,
      messages,
      tools,
      seed,
      temperature: 1,
      max_tokens: 200,
      tool_choice: {type: 'function', function: {name: 'set_alarm'}},
    });
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.tool_calls[0].function.name, 'set_alarm');
    assert.ok(paramValidators.set_alarm(JSON.parse(c.message.tool_calls[0].function.arguments)));
  }
});

test(
    'structured: an unsupported schema is a 400 naming the keyword', {skip: MAIN.skip},
    async () => {
      const cases = [
        [{type: 'string', pattern: '^a'}, /pattern/],
        [{type: 'object', properties: {x: {type: 'string', format: 'email'}}}, /format/],
        [{oneOf: [{type: 'string'}]}, /oneOf/],
        [{$ref: '#'}, /recurses/],
      ];
      for (const [schema, re] of cases) {
        await assert.rejects(
            client().chat.completions.create({
              model: MAIN.model,
              messages,
              max_tokens: 5,
              response_format: {type: 'json_schema', json_schema: {name: 'bad', schema}},
            }),
            (err) => {
              assert.equal(err.status, 400);
              assert.match(err.message, re);
              return true;
            });
      }
      const badTool =
          [{type: 'function', function: {name: 'f', parameters: {type: 'string', maxLength: 3}}}];
      await assert.rejects(
          client().chat.completions.create({
            model: MAIN.model,
            messages,
            tools: badTool,
            tool_choice: 'required',
            max_tokens: 5
          }),
          (err) => err.status === 400 && /maxLength/.test(err.message) && err.param === 'tools');
    });
