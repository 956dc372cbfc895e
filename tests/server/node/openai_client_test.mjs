// Drives a running `yuan serve` with the official OpenAI Node client:
//   node tests/server/node/openai_client_test.mjs http://127.0.0.1:PORT/v1 [API_KEY]
// Prints one line per check; exits 0 when all pass, 1 otherwise.
// (tests/server/serve_node_test.cpp starts the server and runs this.)
import OpenAI from 'openai';

const baseURL = process.argv[2];
const apiKey = process.argv[3] || 'no-key';
if (!baseURL) {
  console.error('usage: node openai_client_test.mjs BASE_URL [API_KEY]');
  process.exit(2);
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
let failures = 0;
let checks = 0;

function check(cond, what) {
  checks++;
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}`);
  }
}

async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

const models = await client.models.list().catch((e) => {
  console.log(`FAIL models.list: ${e}`);
  process.exit(1);
});
const model = models.data[0].id;

await step('models.list', async () => {
  check(models.data.length === 1, 'models.list returns one model');
  check(models.data[0].object === 'model', 'the model object is "model"');
  check(models.data[0].owned_by === 'yuan', 'owned_by is "yuan"');
});

const messages = [
  { role: 'system', content: 'You are brief.' },
  { role: 'user', content: 'Tell me a story about a cat.' },
];
// ignore_eos (an extension) keeps the length fixed on a random model.
const greedy = { model, messages, max_tokens: 12, temperature: 0, ignore_eos: true };

let plain = null;
await step('chat', async () => {
  plain = await client.chat.completions.create(greedy);
  check(plain.object === 'chat.completion', 'chat: object is chat.completion');
  check(plain.id.startsWith('chatcmpl-'), 'chat: id starts with chatcmpl-');
  check(plain.model === model, 'chat: model is the served name');
  check(plain.choices.length === 1, 'chat: one choice');
  check(plain.choices[0].message.role === 'assistant', 'chat: role assistant');
  check(typeof plain.choices[0].message.content === 'string', 'chat: content is a string');
  check(plain.choices[0].finish_reason === 'length', 'chat: finish_reason length');
  check(plain.usage.completion_tokens === 12, 'chat: usage.completion_tokens 12');
  check(plain.usage.total_tokens === plain.usage.prompt_tokens + 12, 'chat: usage.total_tokens adds up');
});

await step('chat stream', async () => {
  const stream = await client.chat.completions.create({
    ...greedy,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.role) role = choice.delta.role;
      if (choice.delta.content) text += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  check(chunks >= 3, `chat stream: ${chunks} chunks`);
  check(role === 'assistant', 'chat stream: first delta has role assistant');
  check(finish === 'length', 'chat stream: finish_reason length');
  check(plain !== null && text === plain.choices[0].message.content, 'chat stream: text equals the non-streamed reply');
  check(usage !== null && usage.completion_tokens === 12, 'chat stream: usage chunk');
});

await step('completions', async () => {
  const c = await client.completions.create({
    model,
    prompt: 'Once upon a time',
    max_tokens: 8,
    temperature: 0,
    ignore_eos: true,
  });
  check(c.object === 'text_completion', 'completions: object is text_completion');
  check(c.choices.length === 1 && typeof c.choices[0].text === 'string', 'completions: one text choice');
  check(c.choices[0].finish_reason === 'length', 'completions: finish_reason length');
  check(c.usage.completion_tokens === 8, 'completions: usage.completion_tokens 8');

  const s = await client.completions.create({
    model,
    prompt: 'Once upon a time',
    max_tokens: 8,
    temperature: 0,
    ignore_eos: true,
    stream: true,
  });
  let text = '';
  for await (const chunk of s) for (const ch of chunk.choices) text += ch.text;
  check(text === c.choices[0].text, 'completions stream: text equals the non-streamed one');
});

await step('errors', async () => {
  for (const [what, extra] of [
    ['n=0', { n: 0 }],
    ['max_tokens=-1', { max_tokens: -1 }],
  ]) {
    try {
      await client.chat.completions.create({ ...greedy, ...extra });
      check(false, `error ${what}: should throw`);
    } catch (e) {
      check(e instanceof OpenAI.BadRequestError, `error ${what}: BadRequestError (got ${e && e.constructor && e.constructor.name})`);
      check(e.status === 400, `error ${what}: status 400`);
      check(typeof e.message === 'string' && e.message.includes(extra.n !== undefined ? "'n'" : "'max_tokens'"),
            `error ${what}: message names the field: ${e.message}`);
      check(e.type === 'invalid_request_error', `error ${what}: type invalid_request_error`);
    }
  }
  if (process.argv[3]) {
    const wrong = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
    try {
      await wrong.models.list();
      check(false, 'wrong API key: should throw');
    } catch (e) {
      check(e instanceof OpenAI.AuthenticationError, 'wrong API key: AuthenticationError');
    }
  }
});

console.log(`${checks - failures}/${checks} checks passed${failures ? `, ${failures} failed` : ''}`);
process.exit(failures === 0 ? 0 : 1);
