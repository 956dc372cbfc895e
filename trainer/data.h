// Training data: reading it, tokenizing it, and cutting it into batches.
//
// Two kinds of file:
//   * chat: OpenAI fine-tuning JSONL, one {"messages": [{"role", "content"},
//     ...]} object per line, rendered with the model's chat template
//     (tokenizer.chat_template, else the built-in "chatml"); only the
//     assistant messages' tokens (their content and the template's end of
//     turn) are targets, as OpenAI and TRL's assistant-only loss do. A
//     message may carry "weight": 0 to take it out of the loss (OpenAI's
//     field).
//     Assistant turns are found by rendering prefixes of the conversation:
//     the messages before turn i with the generation prompt end where its
//     answer starts, the messages through i end where its turn ends. When
//     every such rendering is a prefix of the whole conversation's (chatml,
//     Llama 3, DeepSeek V3, ...), a line is one example. When it is not
//     (Qwen3 drops earlier turns' thinking and gives the last one an empty
//     <think></think>; Hunyuan keeps only an earlier turn's <answer>), a
//     line gives one example per assistant turn in the loss, in order:
//     the conversation through that turn, rendered as inference renders
//     it while generating that turn, with only that turn as targets. Each
//     keeps the line's number and must fit seq_len (else an error, or with
//     skip_bad that example alone is left out and counted). A template for
//     which even the last turn's prompt is not a prefix of its rendering
//     is an error ("not prefix-stable"). No enable_thinking is passed, as
//     inference by default: Qwen3's targets include the empty think block
//     that it generates with thinking on.
//   * text: plain UTF-8 text for pre-training; documents are separated by a
//     blank line, each gets BOS (when the vocabulary adds it) and EOS, and
//     every token is a target. A document longer than seq_len is cut into
//     pieces of seq_len tokens, each its own example; each piece starts with
//     the previous one's last token (a piece's first token has nothing to be
//     predicted from), so every token but the document's first is a target
//     exactly once.
// Kind: by extension (.jsonl chat, anything else text) unless given.
//
// Every line of a JSONL file is checked before training starts; a bad one
// is an InvalidArgument error "FILE:LINE: reason" (not JSON, no messages,
// unknown role, content not a string, no assistant message, longer than the
// sequence, ...). With skip_bad the line is left out and counted instead.
//
// Packing: examples are packed whole, in the shuffled order, into rows of
// seq_len tokens (first fit; an example longer than seq_len is an error,
// or skipped with skip_bad); each keeps its own positions and attention
// (Batch::doc). The rest of a row is padding (target -1).
//
// Shuffling: a seeded permutation per epoch (SplitMix64-driven Fisher-Yates,
// the same on every platform). The eval split takes a seeded, fixed subset
// of examples before any shuffling, so it never changes with the epoch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tokenizer/tokenizer.h"
#include "trainer/model.h"

namespace yuan::train {

enum class DataKind { kAuto, kChat, kText };

struct DataOptions {
  DataKind kind = DataKind::kAuto;
  int64_t seq_len = 256;
  bool skip_bad = false;         // leave out bad lines / too-long examples, counting them
  double eval_fraction = 0.0;    // share of examples held out, in [0, 0.5]
  int64_t eval_min = 1;          // at least this many when eval_fraction > 0
  uint64_t seed = 0;
  // The chat template's source (Jinja); empty: the model's, else chatml.
  std::string chat_template;
};

// One tokenized example.
struct Example {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss_mask;  // 1: predict this token (from the one before it)
  int64_t line = 0;                // source line (chat) or document number (text)
};

struct Dataset {
  std::vector<Example> train;
  std::vector<Example> eval;
  int64_t n_skipped = 0;        // bad lines / examples left out with skip_bad
  std::string content_hash;     // FNV-1a 64 of the file's bytes, 16 hex digits (provenance)
};

// Reads and tokenizes `path`. `gguf` supplies the chat template and special
// tokens (bos/eos strings). Also accepts an eval file: LoadDataset of it with
// eval_fraction 0 and use .train as the eval set.
absl::StatusOr<Dataset> LoadDataset(const std::string& path, const Tokenizer& tokenizer,
                                    const GgufFile& gguf, const DataOptions& options);

// Packs examples into rows of seq_len (see above). order: indices into
// `examples`, in the order to pack them. The batches come out in order, each
// with rows_per_batch rows (the last may have fewer).
std::vector<Batch> PackBatches(const std::vector<Example>& examples,
                               const std::vector<int64_t>& order, int64_t seq_len,
                               int64_t rows_per_batch);

// The permutation of [0, n) for `epoch` under `seed`.
std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace yuan::train
