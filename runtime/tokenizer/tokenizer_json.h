// Hugging Face tokenizer.json -> GGUF tokenizer metadata, as llama.cpp's
// convert_hf_to_gguf.py writes it, so that one code path (Tokenizer::FromGguf)
// builds every tokenizer.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/model/gguf.h"

namespace yuan {

// Translates the text of a tokenizer.json (and, optionally, of the
// tokenizer_config.json beside it; pass "" when there is none) into GGUF
// `tokenizer.*` metadata. The result has only `kvs` and `keep_alive` filled
// (no tensors, empty path); the kvs' strings live in keep_alive, so a caller
// that assembles a bigger GgufParts moves both vectors over:
//
//   YUAN_ASSIGN_OR_RETURN(GgufParts tok, TokenizerJsonToGgufKvs(json, config));
//   for (GgufKv& kv : tok.kvs) parts.kvs.push_back(std::move(kv));
//   for (auto& k : tok.keep_alive) parts.keep_alive.push_back(std::move(k));
//
// Keys written:
//   tokenizer.ggml.model        "gpt2" (byte-level BPE) or "llama" (SentencePiece-style
//                               BPE: byte_fallback, "▁" normalizer, e.g. Llama 2)
//   tokenizer.ggml.pre          gpt2 only: "llama-bpe", "qwen2", "deepseek-v3" or "gpt-2",
//                               detected from the pre_tokenizer's split regexes
//   tokenizer.ggml.tokens       id order, holes filled with "[PAD<i>]" (unused)
//   tokenizer.ggml.token_type   normal / control (special added tokens) / user-defined
//                               (other added tokens) / byte (<0xNN>) / unknown / unused
//   tokenizer.ggml.merges       gpt2 only, "left right" in rank order
//   tokenizer.ggml.scores       llama only: -(rank of the first merge producing the piece)
//   tokenizer.ggml.add_space_prefix  llama only
//   tokenizer.ggml.{bos,eos,unknown,padding}_token_id, add_bos_token, add_eos_token
//   tokenizer.chat_template     from tokenizer_config.json (the "default" one of a list)
//
// Errors: FormatError naming the field for malformed JSON or missing / mistyped
// fields; Unimplemented naming the model type or pre-tokenizer we do not
// support (e.g. WordPiece, Unigram, an unknown split regex). Never throws.
absl::StatusOr<GgufParts> TokenizerJsonToGgufKvs(std::string_view tokenizer_json,
                                                 std::string_view tokenizer_config_json);

}  // namespace yuan
