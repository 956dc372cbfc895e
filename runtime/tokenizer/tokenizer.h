// Text <-> token ids. One interface for every vocabulary family:
// SentencePiece-style BPE (llama / spm, spm.h) and byte-level BPE (gpt2-style:
// llama3, qwen2, deepseek, bpe.h), from GGUF metadata or a Hugging Face
// tokenizer.json (tokenizer_json.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/gguf.h"

namespace yuan {

// llama.cpp's token attributes / GGUF `tokenizer.ggml.token_type` values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct EncodeOptions {
  bool add_bos = true;        // prepend BOS when the vocabulary asks for it (add_bos_token)
  bool parse_special = false;  // recognise control/user-defined token text such as "<s>"
  // The text continues text already tokenized (a session appending to its
  // context): no space prefix is added to its start.
  bool continuation = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Builds the tokenizer named by `tokenizer.ggml.model` ("llama" or
  // "gpt2"); FormatError for missing / inconsistent vocabulary metadata,
  // Unimplemented for a model family or pre-tokenizer without support.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);

  // Builds the tokenizer a Hugging Face tokenizer.json describes, reading
  // tokenizer_config.json beside it when there is one (BOS/EOS, add_bos).
  // NotFound when the file cannot be read; otherwise as TokenizerJsonToGgufKvs
  // (tokenizer_json.h) and FromGguf.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromTokenizerJson(const std::string& path);

  virtual std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options) const = 0;

  // The bytes token `id` stands for when it follows other text: "▁" becomes a
  // space, byte tokens <0xNN> become that byte, control tokens are empty
  // unless `render_special`. Out-of-range ids give "".
  virtual std::string TokenToPiece(int32_t id, bool render_special = false) const = 0;

  // Concatenated pieces. When the ids start with BOS (or the vocabulary
  // never adds one) the single leading space that Encode's space prefix
  // added is dropped, so Decode(Encode(s)) == s with the default options;
  // a continuation without BOS keeps its leading space, as streamed text must.
  virtual std::string Decode(const std::vector<int32_t>& ids, bool render_special = false) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos() const = 0;  // -1 when the vocabulary has none
  virtual int32_t eos() const = 0;
  // End of generation: EOS and any other token the vocabulary marks as such (eot, eom).
  virtual bool IsEog(int32_t id) const = 0;
  virtual TokenType Type(int32_t id) const = 0;
  // The token's text as stored in the vocabulary (with "▁", "<0x0A>" etc.).
  virtual std::string_view Text(int32_t id) const = 0;
};

}  // namespace yuan
