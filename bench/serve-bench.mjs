#!/usr/bin/env node
// Benchmarks an OpenAI-compatible server under concurrency, the way
// ../shared/golden/llama-server-bench.md measured llama.cpp's server: for each
// N, N concurrent streaming POST /v1/completions, each a different prompt of
// random token ids, max_tokens fixed, temperature 0, ignore_eos; one
// discarded warm-up wave, then W measured waves.
//   aggregate tok/s = generated tokens of a wave / its wall time (median of waves)
//   TTFT = send -> first chunk with text;  ITL = gaps between consecutive
//   text chunks of one request (p50/p99 over all requests of all waves).
// Node 20, no dependencies:
//   node bench/serve-bench.mjs --url http://127.0.0.1:8080 --n 1,4,8,16 --waves 4
// Failed requests (HTTP error, error event, no tokens, network) are counted
// and reported in the table; they never stop the run.

const USAGE = `usage: node bench/serve-bench.mjs [--url http://127.0.0.1:8080] [--n 1,4,8,16]
       [--waves 4] [--max-tokens 128] [--prompt-tokens 32] [--seed 1] [--model NAME]
       [--timeout-s 600]`;

function parseArgs(argv) {
  const opts = {
    url: 'http://127.0.0.1:8080', n: [1, 4, 8, 16], waves: 4, maxTokens: 128,
    promptTokens: 32, seed: 1, model: '', timeoutS: 600,
  };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    const int = (v, min) => {
      const x = Number(v);
      if (!Number.isInteger(x) || x < min) throw new Error(`${arg}: expected an integer >= ${min}`);
      return x;
    };
    switch (arg) {
      case '--url': opts.url = value().replace(/\/+$/, ''); break;
      case '--n': opts.n = value().split(',').filter((s) => s !== '').map((s) => int(s, 1)); break;
      case '--waves': opts.waves = int(value(), 1); break;
      case '--max-tokens': opts.maxTokens = int(value(), 1); break;
      case '--prompt-tokens': opts.promptTokens = int(value(), 1); break;
      case '--seed': opts.seed = int(value(), 0); break;
      case '--model': opts.model = value(); break;
      case '--timeout-s': opts.timeoutS = int(value(), 1); break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown argument ${arg}`);
    }
  }
  if (opts.n.length === 0) throw new Error('--n: empty list');
  return opts;
}

// mulberry32: a small seeded PRNG, so every run sends the same prompts.
function makeRng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomPrompt(rng, length) {
  const ids = [];
  for (let i = 0; i < length; ++i) ids.push(100 + Math.floor(rng() * (30000 - 100)));
  return ids;
}

// Linear interpolation between closest ranks; NaN for no data.
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
const median = (values) => percentile(values, 0.5);

async function modelName(opts) {
  try {
    const res = await fetch(`${opts.url}/v1/models`, { signal: AbortSignal.timeout(10000) });
    if (!res.ok) return `(GET /v1/models: HTTP ${res.status})`;
    const body = await res.json();
    return body?.data?.[0]?.id ?? body?.models?.[0]?.name ?? '(no model listed)';
  } catch (e) {
    return `(GET /v1/models failed: ${e.cause?.code ?? e.message})`;
  }
}

// One streaming completion. Resolves (never rejects) to
// { ok, error, tokens, ttftMs, gapsMs }.
async function streamOne(opts, model, prompt) {
  const result = { ok: false, error: '', tokens: 0, ttftMs: NaN, gapsMs: [] };
  const body = {
    prompt, max_tokens: opts.maxTokens, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  };
  if (model) body.model = model;
  const sent = performance.now();
  let last = NaN;
  let textChunks = 0;
  let usageTokens = null;
  let done = false;
  try {
    const res = await fetch(`${opts.url}/v1/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutS * 1000),
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      result.error = `HTTP ${res.status} ${text.slice(0, 120)}`.trim();
      return result;
    }
    const decoder = new TextDecoder();
    let buffer = '';
    // Server-sent events: blank-line separated, "data:" lines carry JSON.
    const onEvent = (event) => {
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') { done = true; continue; }
        let obj;
        try { obj = JSON.parse(data); } catch { result.error ||= 'unparsable event'; continue; }
        if (obj.error) { result.error ||= `error event: ${JSON.stringify(obj.error).slice(0, 120)}`; continue; }
        if (obj.usage && Number.isFinite(obj.usage.completion_tokens)) {
          usageTokens = obj.usage.completion_tokens;
        }
        const text = obj.choices?.[0]?.text ?? obj.choices?.[0]?.delta?.content ?? '';
        if (text !== '') {
          const now = performance.now();
          if (textChunks === 0) result.ttftMs = now - sent;
          else result.gapsMs.push(now - last);
          last = now;
          ++textChunks;
        }
      }
    };
    for await (const piece of res.body) {
      buffer += decoder.decode(piece, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const sep = buffer.slice(cut).match(/^\r?\n\r?\n/)[0].length;
        onEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + sep);
      }
    }
    if (buffer.trim() !== '') onEvent(buffer);
  } catch (e) {
    result.error ||= `${e.name === 'TimeoutError' ? 'timeout' : 'network'}: ${e.cause?.code ?? e.message}`;
  }
  result.tokens = usageTokens ?? textChunks;
  if (!result.error && !done) result.error = 'stream ended without [DONE]';
  if (!result.error && result.tokens === 0) result.error = 'no tokens generated';
  result.ok = !result.error;
  return result;
}

// N requests at once; the wave's wall time runs from the first send to the
// last response's end. Tokens of failed requests still count (they were
// generated), but the failures are reported.
async function wave(opts, model, rng, n) {
  const prompts = Array.from({ length: n }, () => randomPrompt(rng, opts.promptTokens));
  const start = performance.now();
  const results = await Promise.all(prompts.map((p) => streamOne(opts, model, p)));
  const wallS = (performance.now() - start) / 1000;
  const tokens = results.reduce((sum, r) => sum + r.tokens, 0);
  return { results, wallS, tokS: tokens / wallS };
}

const fmt = (x, digits) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const listed = await modelName(opts);
  const model = opts.model || (listed.startsWith('(') ? '' : listed);
  console.log(`model: ${listed}`);
  console.log(`server: ${opts.url}; ${opts.promptTokens}-token prompts (random ids, seed ${opts.seed}), ` +
              `max_tokens ${opts.maxTokens}, temperature 0, ignore_eos; 1 warm-up + ${opts.waves} waves`);
  console.log('');
  const rows = [];
  const rng = makeRng(opts.seed);
  for (const n of opts.n) {
    const warm = await wave(opts, model, rng, n);
    const warmFailed = warm.results.filter((r) => !r.ok).length;
    const waves = [];
    for (let w = 0; w < opts.waves; ++w) waves.push(await wave(opts, model, rng, n));
    const all = waves.flatMap((w) => w.results);
    const failed = all.filter((r) => !r.ok);
    const ttft = all.map((r) => r.ttftMs).filter(Number.isFinite);
    const gaps = all.flatMap((r) => r.gapsMs);
    const tokS = waves.map((w) => w.tokS);
    rows.push({
      n, tokS: median(tokS), minTokS: Math.min(...tokS), maxTokS: Math.max(...tokS),
      ttft50: percentile(ttft, 0.5), ttft99: percentile(ttft, 0.99),
      itl50: percentile(gaps, 0.5), itl99: percentile(gaps, 0.99),
      failed: failed.length, total: all.length, warmFailed,
      errors: [...new Set([...failed, ...warm.results.filter((r) => !r.ok)].map((r) => r.error))],
    });
    const row = rows[rows.length - 1];
    console.error(`N=${n}: ${fmt(row.tokS, 1)} tok/s (waves ${tokS.map((x) => fmt(x, 1)).join(', ')}), ` +
                  `${row.failed}/${row.total} failed`);
  }
  console.log('| N streams | aggregate tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | failed |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.n} | ${fmt(r.tokS, 0)} | ${fmt(r.ttft50, 0)} | ${fmt(r.ttft99, 0)} | ` +
                `${fmt(r.itl50, 1)} | ${fmt(r.itl99, 1)} | ${r.failed}/${r.total} |`);
  }
  console.log('');
  for (const r of rows) {
    const spread = r.minTokS > 0 ? (100 * (r.maxTokS - r.minTokS)) / r.minTokS : NaN;
    console.log(`N=${r.n}: waves ${fmt(r.minTokS, 1)}..${fmt(r.maxTokS, 1)} tok/s (spread ${fmt(spread, 0)} %)` +
                (r.warmFailed ? `; warm-up: ${r.warmFailed} failed` : ''));
    for (const e of r.errors) console.log(`  error: ${e}`);
  }
  const anyFailed = rows.some((r) => r.failed > 0);
  process.exitCode = anyFailed ? 1 : 0;
}

main().catch((e) => {
  console.error(`serve-bench: ${e.stack ?? e}`);
  process.exitCode = 1;
});
