// llama.cpp's pp/tg on the same GGUF files and thread count as `yuan bench`,
// through node-llama-cpp's prebuilt CPU build of llama.cpp (npm), since
// llama-bench itself is not packaged for Debian 12:
//
//   cd bench/llama-cpp && npm install && node bench.mjs -t 2 -r 5 MODEL...
//
// Method as llama-bench: one untimed warm-up, then per repetition ppN =
// evaluate N random tokens (BOS first) in a fresh context with batch 512,
// and tgN = N single-token steps from an empty context; with -d D both
// start from D random tokens already evaluated (untimed; "@ dD", as
// llama-bench's --n-depth and `yuan bench -d`). tg here includes
// node-llama-cpp's per-token overhead (an async iteration and sampling), so
// it slightly understates llama.cpp's own tg.
//
// -fa auto|1|0 is llama-bench's flash-attention switch, passed to
// node-llama-cpp's `flashAttention`; "auto" (the default, as in llama.cpp)
// leaves the choice to llama.cpp, whose CPU backend takes flash attention:
// with node-llama-cpp 3.22.1 its log says "flash_attn = auto" and the
// graph's attention nodes are FLASH_ATTN_EXT (checked with logLevel
// "debug"), the numerics yuan's attention follows.
import {getLlama} from "node-llama-cpp";

const args = process.argv.slice(2);
let threads = 2, reps = 5, pp = 512, tg = 128, depth = 0, fa = "auto";
const models = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "-t") threads = Number(args[++i]);
  else if (args[i] === "-r") reps = Number(args[++i]);
  else if (args[i] === "-p") pp = Number(args[++i]);
  else if (args[i] === "-n") tg = Number(args[++i]);
  else if (args[i] === "-d") depth = Number(args[++i]);
  else if (args[i] === "-fa") fa = args[++i];
  else models.push(args[i]);
}
if (models.length === 0 || !["auto", "0", "1"].includes(fa)) {
  console.error("usage: node bench.mjs [-t THREADS] [-r REPS] [-p 512] [-n 128] [-d 0] [-fa auto|1|0] MODEL...");
  process.exit(2);
}
const flashAttention = fa === "auto" ? undefined : fa === "1";

const stats = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  const s = [...xs].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `${mean.toFixed(2)} ± ${sd.toFixed(2)} | ${median.toFixed(2)}`;
};

const llama = await getLlama({gpu: false, build: "never", logLevel: "warn"});
console.log(`| model | backend | threads | test | t/s | median |`);
console.log(`| :-- | --: | --: | --: | --: | --: |`);
for (const file of models) {
  const model = await llama.loadModel({modelPath: file});
  const res = {pp: [], tg: []};
  for (let r = 0; r <= reps; ++r) {  // r == 0: warm-up
    const ctx = await model.createContext({
      contextSize: depth + pp + tg + 16, batchSize: 512, threads,
      ...(flashAttention === undefined ? {} : {flashAttention}),
    });
    const seq = ctx.getSequence();
    const random = (n, bos) => {
      const t = bos ? [1] : [];
      while (t.length < n) t.push(3 + Math.floor(Math.random() * 31990));
      return t;
    };
    const fill = async () => {
      if (depth > 0) await seq.evaluateWithoutGeneratingNewTokens(random(depth, true));
    };
    await fill();
    const toks = random(pp, depth === 0);
    let t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(toks);
    const ppRate = pp / ((performance.now() - t0) / 1000);
    await seq.clearHistory();
    await fill();
    let n = 0;
    t0 = performance.now();
    for await (const _ of seq.evaluate([1], {temperature: 0})) {
      if (++n >= tg) break;
    }
    const tgRate = tg / ((performance.now() - t0) / 1000);
    if (r > 0) {
      res.pp.push(ppRate);
      res.tg.push(tgRate);
    }
    await ctx.dispose();
  }
  const name = file.split("/").pop();
  const at = (depth > 0 ? ` @ d${depth}` : "") + (fa === "auto" ? "" : ` fa=${fa}`);
  console.log(`| ${name} | llama.cpp CPU | ${threads} | pp${pp}${at} | ${stats(res.pp)} |`);
  console.log(`| ${name} | llama.cpp CPU | ${threads} | tg${tg}${at} | ${stats(res.tg)} |`);
  await model.dispose();
}
