// llama.cpp's next-token probabilities along a given continuation, against
// the top log-probabilities yuan reported for it: an independent check of
// yuan's arithmetic on a GGUF file (e.g. after adding a quantization type).
// bench/crosscheck-llama-cpp.sh runs it; by hand:
//
//   node logprobs.mjs MODEL PROMPT YUAN_COMPLETION.json
//
// YUAN_COMPLETION.json is `yuan serve`'s answer to /v1/completions with
// "logprobs": 5 and "temperature": 0 for PROMPT. llama.cpp evaluates BOS,
// PROMPT and yuan's tokens (teacher-forced, so one differing pick does not
// derail the rest) and gives each position's full distribution; for every
// token in yuan's top 5 this prints yuan's probability / llama.cpp's, then
// the largest |log p difference|.
import fs from "fs";
import {getLlama} from "node-llama-cpp";

const [file, text, answer] = process.argv.slice(2);
if (!answer) {
  console.error("usage: node logprobs.mjs MODEL PROMPT YUAN_COMPLETION.json");
  process.exit(2);
}
const logprobs = JSON.parse(fs.readFileSync(answer, "utf8")).choices[0].logprobs;
const llama = await getLlama({gpu: false, build: "never", logLevel: "warn"});
const model = await llama.loadModel({modelPath: file});
const ctx = await model.createContext({contextSize: 1024, threads: 2});
const seq = ctx.getSequence();

// yuan reports token texts; map them back to ids through the vocabulary
// (SentencePiece pieces with their U+2581 as a space, else the token's text)
const idOf = new Map();
const pieces = model.fileInfo.metadata.tokenizer.ggml.tokens;
for (let id = 0; id < pieces.length; ++id) idOf.set(pieces[id].replaceAll("\u2581", " "), id);
for (let id = 0; id < pieces.length; ++id) {
  const text = model.detokenize([id], true);
  if (!idOf.has(text)) idOf.set(text, id);
}
const id = (piece) => {
  const i = idOf.get(piece);
  if (i === undefined) throw new Error(`no token for ${JSON.stringify(piece)}`);
  return i;
};

const prompt = [model.tokens.bos, ...model.tokenize(text, true)];
const want = {generateNext: {probabilities: true}};
const input = [...prompt.slice(0, -1), [prompt[prompt.length - 1], want]];
for (const piece of logprobs.tokens.slice(0, -1)) input.push([id(piece), want]);
const out = (await seq.controlledEvaluate(input)).filter((r) => r?.next?.probabilities);

let worst = 0;
out.forEach((r, k) => {
  const row = Object.entries(logprobs.top_logprobs[k]).map(([piece, lp]) => {
    const p = r.next.probabilities.get(id(piece)) ?? 0;
    worst = Math.max(worst, Math.abs(Math.log(p) - lp));
    return `${id(piece)}:${Math.exp(lp).toPrecision(4)}/${p.toPrecision(4)}`;
  });
  console.log(`step ${k}: ${row.join(" ")}`);
});
console.log(`largest |log p(yuan) - log p(llama.cpp)| over yuan's top 5 at ${out.length} steps: ${worst.toExponential(2)}`);
