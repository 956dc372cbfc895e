// SentencePiece-style tokenizer (llama.cpp's "spm" vocabulary type): score-
// driven merging of adjacent pieces with byte fallback. It reproduces
// llama.cpp's llm_tokenizer_spm id for id (see docs/tokenizers.md for the few
// places where it deliberately differs).
//
// The tokenizer is built from a plain SpmVocab so that it can be tested
// without a GGUF file; Tokenizer::FromGguf fills one from the metadata.
// An SpmTokenizer is immutable after Create: every method is safe to call
// from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tokenizer/tokenizer.h"

namespace yuan {

// The vocabulary as stored in GGUF (`tokenizer.ggml.*`). Ids are indices into
// `tokens`; a special id of -1 means "none".
struct SpmVocab {
  std::vector<std::string> tokens;  // piece texts, with "▁" for space and <0xNN> byte tokens
  std::vector<float> scores;        // empty -> all 0; else one per token
  std::vector<TokenType> types;     // empty -> all kNormal; else one per token
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t unk = -1;
  int32_t eot = -1;
  int32_t eom = -1;
  bool add_bos = true;           // Encode(add_bos=true) prepends BOS
  bool add_eos = false;          // Encode(add_bos=true) appends EOS
  bool add_space_prefix = true;  // a space is prepended to text that starts a sequence
};

class SpmTokenizer final : public Tokenizer {
 public:
  // Validates the vocabulary: array lengths, special ids in range, no
  // duplicate piece, byte tokens spelled <0xNN>, BOS/EOS present when they
  // are to be added. Errors are FormatError naming the GGUF key at fault.
  static absl::StatusOr<std::unique_ptr<SpmTokenizer>> Create(SpmVocab vocab);

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options) const override;
  std::string TokenToPiece(int32_t id, bool render_special = false) const override;
  std::string Decode(const std::vector<int32_t>& ids, bool render_special = false) const override;

  int32_t n_vocab() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos() const override { return vocab_.bos; }
  int32_t eos() const override { return vocab_.eos; }
  bool IsEog(int32_t id) const override;
  TokenType Type(int32_t id) const override;
  std::string_view Text(int32_t id) const override;

  int32_t unk() const { return vocab_.unk; }
  int32_t eot() const { return vocab_.eot; }
  int32_t eom() const { return vocab_.eom; }
  float Score(int32_t id) const;
  const SpmVocab& vocab() const { return vocab_; }
  // The id whose text is exactly `piece`, or -1.
  int32_t Find(std::string_view piece) const;

 private:
  SpmTokenizer() = default;
  absl::Status Init();

  // One span of the input after special-token partitioning.
  struct Fragment {
    int32_t token = -1;     // >= 0: a special token matched in the text
    std::string_view text;  // otherwise: raw text to tokenize
  };
  std::vector<Fragment> Partition(std::string_view text, bool parse_special) const;
  // The merge algorithm proper on one raw fragment; appends ids to `out`.
  void EncodeFragment(std::string_view raw, bool space_prefix, std::vector<int32_t>* out) const;

  SpmVocab vocab_;
  // Keys view into vocab_.tokens, which is never resized after Init.
  std::unordered_map<std::string_view, int32_t> piece_to_id_;
  // Byte fallback per byte value: <0xNN>, else the one-byte piece, else unk, else -1.
  std::array<int32_t, 256> byte_fallback_{};
  std::vector<int16_t> byte_value_;  // per id: the byte a kByte token stands for, else -1
  // Control / user-defined / unknown tokens, longest text first (the order
  // llama.cpp's tokenizer_st_partition matches them in).
  std::vector<int32_t> special_ids_;
  size_t max_piece_len_ = 0;
};

// Splits `s` at `offset` into one "character": a whole UTF-8 sequence when the
// lead byte's continuation bytes are really there, else the single byte.
// Exposed for tests.
size_t SpmCharLength(std::string_view s, size_t offset);

}  // namespace yuan
