// llama.cpp decoding N concurrent sequences in one context, batched, on this
// machine: the yardstick for `yuan serve`'s continuous batching
// (bench/serve-bench.mjs) when llama-server itself is not at hand (it is not
// packaged for Debian 12). node-llama-cpp's prebuilt CPU llama.cpp gathers
// the pending tokens of all sequences into one llama_decode per step, as
// llama-server's slots do; HTTP is left out, so this slightly favours it.
//
//   cd bench/llama-cpp && npm install && node batch-bench.mjs -t 2 MODEL
//
// Method as ../shared/golden/llama-server-bench.md: for N in 1,4,8,16, each
// sequence a different prompt of 32 random token ids, 128 greedy tokens (EOS
// ignored), one untimed warm-up wave then W waves; aggregate = generated
// tokens / wave wall time (prefill included), TTFT = start -> first token,
// ITL = gaps between one sequence's tokens; medians over waves, p50/p99 over
// all requests.
import {getLlama} from "node-llama-cpp";

const args = process.argv.slice(2);
let threads = 2, waves = 4, promptTokens = 32, maxTokens = 128;
let ns = [1, 4, 8, 16];
let modelPath = null;
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "-t") threads = Number(args[++i]);
  else if (args[i] === "--waves") waves = Number(args[++i]);
  else if (args[i] === "--n") ns = args[++i].split(",").map(Number);
  else if (args[i] === "--max-tokens") maxTokens = Number(args[++i]);
  else if (args[i] === "--prompt-tokens") promptTokens = Number(args[++i]);
  else modelPath = args[i];
}
if (!modelPath) {
  console.error("usage: node batch-bench.mjs [-t 2] [--n 1,4,8,16] [--waves 4] MODEL");
  process.exit(2);
}

// A small seeded generator: the same prompts on every run.
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const median = (xs) => quantile(xs, 0.5);

const llama = await getLlama({gpu: false, build: "never", logLevel: "warn"});
const model = await llama.loadModel({modelPath});
console.log(`llama.cpp (node-llama-cpp) batched decoding, ${modelPath.split("/").pop()}, ` +
            `${threads} threads, prompt ${promptTokens}, ${maxTokens} tokens, ${waves} waves`);
console.log("| N streams | aggregate tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |");
console.log("|---:|---:|---:|---:|---:|---:|");
for (const n of ns) {
  const ctx = await model.createContext({
    sequences: n, contextSize: n * (promptTokens + maxTokens + 16), batchSize: 512, threads});
  const seqs = [];
  for (let i = 0; i < n; ++i) seqs.push(ctx.getSequence());
  const rates = [], ttft = [], itl = [];
  for (let w = 0; w <= waves; ++w) {
    const t0 = performance.now();
    const oneWave = await Promise.all(seqs.map(async (seq) => {
      const prompt = [];
      for (let i = 0; i < promptTokens; ++i) prompt.push(100 + Math.floor(rand() * 29900));
      const times = [];
      for await (const _ of seq.evaluate(prompt, {temperature: 0})) {
        times.push(performance.now());
        if (times.length >= maxTokens) break;
      }
      return times;
    }));
    const wall = (performance.now() - t0) / 1000;
    if (w > 0) {
      let total = 0;
      for (const times of oneWave) {
        total += times.length;
        ttft.push(times[0] - t0);
        for (let i = 1; i < times.length; ++i) itl.push(times[i] - times[i - 1]);
      }
      rates.push(total / wall);
    }
    for (const seq of seqs) await seq.clearHistory();
  }
  console.log(`| ${n} | ${median(rates).toFixed(0)} | ${quantile(ttft, 0.5).toFixed(0)} | ` +
              `${quantile(ttft, 0.99).toFixed(0)} | ${quantile(itl, 0.5).toFixed(1)} | ` +
              `${quantile(itl, 0.99).toFixed(1)} |`);
  await ctx.dispose();
}
await model.dispose();
