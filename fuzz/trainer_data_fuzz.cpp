// libFuzzer target for the trainer's readers of user files: LoadDataset
// (trainer/data.cpp: OpenAI chat JSONL rendered with a chat template, and
// plain text) and ReadLossCsv (trainer/log.cpp). Any bytes must load or give
// an error, never crash, hang or leak. What loads must keep data.h's
// promises (every example fits seq_len, its first token is never a target,
// ...), and PackBatches must put exactly its targets into rows; a CSV that
// reads must write back and read again to the same rows, and plot.
//   cmake --preset fuzz && cmake --build --preset fuzz --target trainer_data_fuzz
//   ./build/fuzz/fuzz/trainer_data_fuzz -dict=fuzz/trainer_data.dict \
//       -max_total_time=60 <a scratch copy of fuzz/corpus/trainer_data>
//
// The first input byte picks the mode; the rest is the file:
//   bits 0-1  0: chat JSONL, the model's template (ChatML, in the GGUF)
//             1: chat JSONL, the built-in template bits 6-7 name
//             2: plain text   3: loss CSV
//   bit 2     skip_bad
//   bits 3-4  seq_len: 2, 7, 48 or 1024
//   bit 5     the second vocabulary: no BOS added, no space prefix, no
//             template in the GGUF (so the built-in ChatML)
//   bits 6-7  (modes 0, 2) eval_fraction 0, 0, 0.2 or 0.5; rows per batch 1-4
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/chat/chat_template.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "trainer/data.h"
#include "trainer/log.h"

namespace {

using namespace yuan;
using namespace yuan::train;

void Require(bool cond) {
  if (!cond) __builtin_trap();
}

// YUAN_FUZZ_VERBOSE=1 prints what each input gave (to check the seeds).
void Say(const std::string& what) {
  static const bool verbose = std::getenv("YUAN_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "trainer_data_fuzz: %s\n", what.c_str());
}

// A model file with only a vocabulary: a SentencePiece ("llama") one with
// <unk> <s> </s>, the 256 byte tokens, a few word pieces and ChatML's
// control tokens, so that parse_special, byte fallback and the templates'
// special text all run.
struct Vocab {
  std::vector<uint8_t> bytes;  // FromBuffer keeps pointers into these
  std::unique_ptr<GgufFile> gguf;
  std::unique_ptr<Tokenizer> tokenizer;
};

Vocab MakeVocab(bool second) {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);
  }
  for (const char* piece :
       {"\xE2\x96\x81", "e", "t", "a", "o", "n", "\xE2\x96\x81t", "he", "\xE2\x96\x81the",
        "\xE2\x96\x81" "a", "in", "an", "\xE2\x96\x81" "and", "user", "assistant", "system",
        "\xE4\xB8\xAD", "\n", "{\"", "\":"}) {
    tokens.push_back(piece);
    types.push_back(1);
  }
  for (const char* special : {"<|im_start|>", "<|im_end|>"}) {
    tokens.push_back(special);
    types.push_back(3);
  }
  tokens.push_back("<tool_call>");
  types.push_back(4);
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddFloat32Array("tokenizer.ggml.scores", scores);
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  w.AddUint32("tokenizer.ggml.bos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eos_token_id", 2);
  w.AddUint32("tokenizer.ggml.unknown_token_id", 0);
  if (second) {
    w.AddBool("tokenizer.ggml.add_bos_token", false);
    w.AddBool("tokenizer.ggml.add_space_prefix", false);
  } else {
    w.AddBool("tokenizer.ggml.add_bos_token", true);
    absl::StatusOr<std::string> chatml = BuiltinChatTemplate("chatml");
    Require(chatml.ok());
    w.AddString("tokenizer.chat_template", *chatml);
  }
  Vocab v;
  v.bytes = w.Serialize();
  auto gguf = GgufFile::FromBuffer(v.bytes.data(), v.bytes.size());
  Require(gguf.ok());
  v.gguf = *std::move(gguf);
  auto tok = Tokenizer::FromGguf(*v.gguf);
  Require(tok.ok());
  v.tokenizer = *std::move(tok);
  return v;
}

const Vocab& GetVocab(bool second) {
  static const Vocab first_vocab = MakeVocab(false);
  static const Vocab second_vocab = MakeVocab(true);
  return second ? second_vocab : first_vocab;
}

// One scratch directory per process, in memory when /dev/shm exists, reused
// by every input (the file names carry the extension LoadDataset's kAuto
// reads).
struct Scratch {
  std::string dir;
  Scratch() {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && base == "/tmp") base = t;
    std::string templ = base + "/yuan_trainer_data_fuzz.XXXXXX";
    Require(mkdtemp(templ.data()) != nullptr);
    dir = templ;
  }
  ~Scratch() {
    for (const char* name : {"/data.jsonl", "/data.txt", "/loss.csv", "/loss.png", "/again.csv"}) {
      std::remove((dir + name).c_str());
    }
    rmdir(dir.c_str());
  }
};

const std::string& ScratchDir() {
  static const Scratch scratch;
  return scratch.dir;
}

void WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  Require(f != nullptr);
  Require(size == 0 || std::fwrite(data, 1, size, f) == size);
  Require(std::fclose(f) == 0);
}

bool SameDouble(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

void CheckExample(const Example& ex, int64_t seq_len, int32_t n_vocab, bool chat) {
  Require(!ex.tokens.empty());
  Require(ex.tokens.size() == ex.loss_mask.size());
  Require(static_cast<int64_t>(ex.tokens.size()) <= seq_len);
  Require(ex.loss_mask[0] == 0);
  for (const int32_t t : ex.tokens) Require(t >= 0 && t < n_vocab);
  for (const uint8_t m : ex.loss_mask) Require(m == 0 || m == 1);
  if (chat) {
    Require(std::count(ex.loss_mask.begin(), ex.loss_mask.end(), 1) > 0);
  } else {
    // A text piece has at least two tokens, all but the first targets.
    Require(ex.tokens.size() >= 2);
    Require(std::count(ex.loss_mask.begin(), ex.loss_mask.end(), 1) ==
            static_cast<int64_t>(ex.tokens.size()) - 1);
  }
}

// Packs `examples` and checks the rows: sizes, padding, and exactly the
// examples' targets (the first token of each is never one).
void CheckPacking(const std::vector<Example>& examples, int64_t seq_len, int64_t rows_per_batch,
                  uint64_t seed) {
  const int64_t n = static_cast<int64_t>(examples.size());
  const std::vector<int64_t> order = ShuffledOrder(n, seed, 1);
  Require(static_cast<int64_t>(order.size()) == n);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < n; ++i) Require(sorted[i] == i);

  int64_t want_targets = 0, want_tokens = 0;
  for (const Example& ex : examples) {
    want_targets += std::count(ex.loss_mask.begin() + 1, ex.loss_mask.end(), 1);
    want_tokens += static_cast<int64_t>(ex.tokens.size());
  }
  const std::vector<Batch> batches = PackBatches(examples, order, seq_len, rows_per_batch);
  int64_t got_targets = 0, got_rows = 0;
  for (const Batch& b : batches) {
    Require(b.n_rows >= 1 && b.n_rows <= rows_per_batch && b.seq_len == seq_len);
    const size_t cells = static_cast<size_t>(b.n_rows * seq_len);
    Require(b.tokens.size() == cells && b.targets.size() == cells);
    Require(b.doc.empty() || b.doc.size() == cells);
    for (const int32_t t : b.targets) {
      Require(t >= -1);
      if (t >= 0) ++got_targets;
    }
    got_rows += b.n_rows;
  }
  Require(got_targets == want_targets);
  Require(got_rows * seq_len >= want_tokens);
  for (size_t i = 0; i + 1 < batches.size(); ++i) Require(batches[i].n_rows == rows_per_batch);

  // Another caller's order (indices out of range, repeats) and a shorter
  // seq_len (examples cut) must not crash either.
  std::vector<int64_t> odd = order;
  odd.push_back(-1);
  odd.push_back(n);
  if (n > 0) odd.push_back(order[0]);
  (void)PackBatches(examples, odd, std::max<int64_t>(seq_len / 2, 1), rows_per_batch);
}

void FuzzDataset(uint8_t mode, const uint8_t* data, size_t size) {
  const int kind_bits = mode & 3;
  const bool chat = kind_bits != 2;
  const bool second = (mode & 0x20) != 0;
  const Vocab& vocab = GetVocab(second);
  static constexpr int64_t kSeqLens[] = {2, 7, 48, 1024};
  static constexpr const char* kTemplates[] = {"llama3", "qwen3", "deepseek_v3", "hunyuan"};
  static constexpr double kEvalFractions[] = {0.0, 0.0, 0.2, 0.5};

  DataOptions options;
  options.seq_len = kSeqLens[(mode >> 3) & 3];
  options.skip_bad = (mode & 4) != 0;
  options.seed = mode;
  if (kind_bits == 1) {
    options.chat_template = kTemplates[mode >> 6];
    options.kind = DataKind::kChat;
  } else {
    options.eval_fraction = kEvalFractions[mode >> 6];
    options.kind = DataKind::kAuto;  // by the extension
  }
  const std::string path = ScratchDir() + (chat ? "/data.jsonl" : "/data.txt");
  WriteFile(path, data, size);

  absl::StatusOr<Dataset> ds = LoadDataset(path, *vocab.tokenizer, *vocab.gguf, options);
  if (!ds.ok()) {
    Require(!ds.status().message().empty());
    Say(ds.status().ToString());
    return;
  }
  Say(absl::StrCat(ds->train.size(), " train + ", ds->eval.size(), " eval examples, ",
                   ds->n_skipped, " skipped"));
  Require(!ds->train.empty());
  Require(ds->content_hash.size() == 16);
  if (!options.skip_bad) Require(ds->n_skipped == 0);
  if (options.eval_fraction == 0.0) Require(ds->eval.empty());
  const int32_t n_vocab = vocab.tokenizer->n_vocab();
  for (const Example& ex : ds->train) CheckExample(ex, options.seq_len, n_vocab, chat);
  for (const Example& ex : ds->eval) CheckExample(ex, options.seq_len, n_vocab, chat);
  const int64_t rows_per_batch = 1 + (mode >> 6);
  CheckPacking(ds->train, options.seq_len, rows_per_batch, mode);
  CheckPacking(ds->eval, options.seq_len, rows_per_batch, mode);
}

void SameRows(const std::vector<LogRow>& a, const std::vector<LogRow>& b) {
  Require(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    Require(a[i].step == b[i].step && a[i].tokens == b[i].tokens);
    Require(SameDouble(a[i].epoch, b[i].epoch) && SameDouble(a[i].loss, b[i].loss));
    Require(a[i].eval_loss.has_value() == b[i].eval_loss.has_value());
    if (a[i].eval_loss) Require(SameDouble(*a[i].eval_loss, *b[i].eval_loss));
    Require(SameDouble(a[i].lr, b[i].lr) && SameDouble(a[i].grad_norm, b[i].grad_norm));
    Require(SameDouble(a[i].tokens_per_s, b[i].tokens_per_s));
    Require(SameDouble(a[i].elapsed_s, b[i].elapsed_s));
  }
}

void FuzzLossCsv(const uint8_t* data, size_t size) {
  const std::string path = ScratchDir() + "/loss.csv";
  WriteFile(path, data, size);
  absl::StatusOr<std::vector<LogRow>> rows = ReadLossCsv(path);
  if (!rows.ok()) {
    Require(!rows.status().message().empty());
    Say(rows.status().ToString());
    return;
  }
  Say(absl::StrCat(rows->size(), " CSV rows"));
  // The writer's shortest round-trip numbers read back to the same rows.
  const std::string again = ScratchDir() + "/again.csv";
  Require(WriteLossCsv(again, *rows).ok());
  absl::StatusOr<std::vector<LogRow>> reread = ReadLossCsv(again);
  Require(reread.ok());
  SameRows(*rows, *reread);
  // Any values read (huge, tiny, infinite, NaN) must plot; the smallest
  // size keeps an input cheap.
  if (!rows->empty()) Require(WriteLossPlot(ScratchDir() + "/loss.png", *rows, 160, 120).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  if ((mode & 3) == 3) {
    FuzzLossCsv(data + 1, size - 1);
  } else {
    FuzzDataset(mode, data + 1, size - 1);
  }
  return 0;
}
