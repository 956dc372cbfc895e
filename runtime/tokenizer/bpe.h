// Byte-level BPE tokenizer (llama.cpp's "gpt2" vocabulary type; Hugging Face
// `tokenizers` BPE with a ByteLevel pre-tokenizer): Llama 3, Qwen2/3,
// DeepSeek V3 and friends.
//
// Encoding: added / special tokens are split out first (leftmost, longest),
// the rest is cut into pre-tokens by the model's pre-tokenizer (hand-written
// scanners over code points that reproduce the models' split regexes), each
// pre-token's bytes are spelled with GPT-2's byte->unicode table, and pairs
// are merged by merge rank (lowest first, leftmost on ties).
//
// A BpeTokenizer is immutable after Create: every method is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/tokenizer/tokenizer.h"

namespace yuan {

// The pre-tokenizers (split rules) we implement, by llama.cpp's
// `tokenizer.ggml.pre` names.
enum class BpePreTokenizer {
  kGpt2,        // "gpt-2": 's|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,      // "llama-bpe": (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|...
  kQwen2,       // "qwen2": the llama3 rule with single digits (\p{N})
  kDeepseekV3,  // "deepseek-v3": digits{1,3}, then CJK/kana runs, then a llama3-like rule
};

// Maps a `tokenizer.ggml.pre` value to a pre-tokenizer. Unimplemented naming
// the value when we do not know it. Also sets *ignore_merges as llama.cpp
// does for that name (true for the llama3 family).
absl::StatusOr<BpePreTokenizer> BpePreTokenizerFromName(std::string_view name,
                                                        bool* ignore_merges = nullptr);
// The canonical `tokenizer.ggml.pre` name.
std::string_view BpePreTokenizerName(BpePreTokenizer pre);

// Splits `text` into pre-tokens (views into `text`, in order, covering it
// exactly). Bytes that are not valid UTF-8 are one "character" each, of no
// Unicode category. Exposed for tests.
std::vector<std::string_view> PreTokenize(BpePreTokenizer pre, std::string_view text);

// GPT-2's byte <-> unicode spelling: printable Latin-1 bytes stand for
// themselves, the others for U+0100.. in order ("Ġ" is a space).
std::string_view ByteToUnicode(uint8_t byte);  // UTF-8 of the code point
int UnicodeToByte(uint32_t code_point);        // the byte, or -1

// The vocabulary as stored in GGUF (`tokenizer.ggml.*`, model "gpt2").
struct BpeVocab {
  std::vector<std::string> tokens;  // byte-level spelling; added tokens as plain text
  std::vector<TokenType> types;     // empty -> all kNormal
  std::vector<std::string> merges;  // "left right", rank = index
  BpePreTokenizer pre = BpePreTokenizer::kLlama3;
  bool ignore_merges = false;  // a pre-token that is a whole token is not merged (llama3)
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t unk = -1;
  int32_t eot = -1;
  int32_t eom = -1;
  bool add_bos = false;
  bool add_eos = false;
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Validates the vocabulary (lengths, special ids, merges naming tokens);
  // FormatError naming the GGUF key at fault.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(BpeVocab vocab);

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options) const override;
  std::string TokenToPiece(int32_t id, bool render_special = false) const override;
  // Concatenated pieces; byte-level text has no space prefix to undo, so
  // Decode(Encode(s)) == s for any bytes s (parse_special off, and no
  // user-defined token text in s).
  std::string Decode(const std::vector<int32_t>& ids, bool render_special = false) const override;

  int32_t n_vocab() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos() const override { return vocab_.bos; }
  int32_t eos() const override { return vocab_.eos; }
  bool IsEog(int32_t id) const override;
  TokenType Type(int32_t id) const override;
  std::string_view Text(int32_t id) const override;

  const BpeVocab& vocab() const { return vocab_; }
  int32_t Find(std::string_view text) const;

 private:
  BpeTokenizer() = default;
  absl::Status Init();
  // BPE on one pre-token; appends ids.
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  BpeVocab vocab_;
  absl::flat_hash_map<std::string_view, int32_t> text_to_id_;  // views into vocab_.tokens
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_token_{};  // id of each byte's one-character token, or -1
  // Control / user-defined / unknown tokens, longest first, grouped by
  // their first byte.
  std::array<std::vector<int32_t>, 256> special_by_byte_;
};

}  // namespace yuan
