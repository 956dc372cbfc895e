// Tokenizer::FromGguf: reads the `tokenizer.ggml.*` metadata that llama.cpp's
// converters write and builds the matching tokenizer.
#include "runtime/tokenizer/tokenizer.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/core/status.h"
#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/spm.h"

namespace yuan {
namespace {

// char arrays rather than std::string_view: Debian's Abseil is built with its
// own absl::string_view, which StrCat does not convert from std::string_view.
constexpr char kModelKey[] = "tokenizer.ggml.model";
constexpr char kTokensKey[] = "tokenizer.ggml.tokens";
constexpr char kScoresKey[] = "tokenizer.ggml.scores";
constexpr char kTypesKey[] = "tokenizer.ggml.token_type";
constexpr char kMergesKey[] = "tokenizer.ggml.merges";
constexpr char kPreKey[] = "tokenizer.ggml.pre";

bool IsIntegerType(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

std::string Describe(const GgufValue& v) {
  if (v.type != GgufType::kArray) return std::string(GgufTypeName(v.type));
  return absl::StrCat("array of ", Sv(GgufTypeName(v.elem_type)));
}

// Reads an optional token id. Absent, or the "unset" marker that llama.cpp's
// converters write (-1, stored as uint32 0xFFFFFFFF), gives `fallback` when it
// is inside the vocabulary and -1 otherwise; any other value must be an id.
absl::StatusOr<int32_t> ReadTokenId(const GgufFile& file, const char* key, int32_t fallback,
                                    size_t n_vocab) {
  const GgufValue* v = file.Find(key);
  const int32_t dflt = fallback >= 0 && static_cast<size_t>(fallback) < n_vocab ? fallback : -1;
  if (v == nullptr) return dflt;
  if (!v->is_integer()) {
    return FormatError(absl::StrCat(key, " must be an integer, got ", Describe(*v)));
  }
  YUAN_ASSIGN_OR_RETURN(const int64_t id, file.GetInt(key));
  if (id == -1 || (v->type == GgufType::kUint32 && id == 0xFFFFFFFFll)) return dflt;
  if (id < 0 || static_cast<uint64_t>(id) >= n_vocab) {
    return FormatError(
        absl::StrCat(key, " = ", id, " is outside the vocabulary of ", n_vocab, " tokens"));
  }
  return static_cast<int32_t>(id);
}

absl::StatusOr<std::vector<std::string>> ReadTokens(const GgufFile& file) {
  const GgufValue* tokens = file.Find(kTokensKey);
  if (tokens == nullptr) return FormatError(absl::StrCat(kTokensKey, " is missing"));
  if (tokens->type != GgufType::kArray || tokens->elem_type != GgufType::kString ||
      tokens->strings.size() != tokens->array_size) {
    return FormatError(
        absl::StrCat(kTokensKey, " must be an array of strings, got ", Describe(*tokens)));
  }
  if (tokens->array_size == 0) return FormatError(absl::StrCat(kTokensKey, " is empty"));
  if (tokens->array_size > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return FormatError(absl::StrCat(kTokensKey, " has ", tokens->array_size, " entries"));
  }
  std::vector<std::string> out;
  out.reserve(tokens->strings.size());
  for (const std::string_view s : tokens->strings) out.emplace_back(s);
  return out;
}

absl::StatusOr<std::vector<TokenType>> ReadTypes(const GgufFile& file, size_t n) {
  std::vector<TokenType> out;
  if (const GgufValue* types = file.Find(kTypesKey); types != nullptr) {
    if (types->type != GgufType::kArray || !IsIntegerType(types->elem_type)) {
      return FormatError(
          absl::StrCat(kTypesKey, " must be an array of int32, got ", Describe(*types)));
    }
    if (types->array_size != n) {
      return FormatError(absl::StrCat(kTypesKey, " has ", types->array_size, " entries but ",
                                      kTokensKey, " has ", n));
    }
    out.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = types->ArrayInt(i);
      // Unknown values are "undefined", as in llama.cpp.
      out[i] = t >= 0 && t <= static_cast<int64_t>(TokenType::kByte) ? static_cast<TokenType>(t)
                                                                     : TokenType::kUndefined;
    }
  } else {
    out.assign(n, TokenType::kNormal);
  }
  return out;
}

// Like llama.cpp, find end-of-turn / end-of-message tokens by their text
// when the metadata does not name them (older conversions of chat models),
// and treat them as control tokens so they never print.
void GuessEogTokens(const std::vector<std::string>& tokens, std::vector<TokenType>* types,
                    int32_t* eot, int32_t* eom) {
  for (size_t i = 0; i < tokens.size() && (*eot < 0 || *eom < 0); ++i) {
    const std::string& t = tokens[i];
    bool hit = false;
    if (*eot < 0 && (t == "<|eot_id|>" || t == "<|im_end|>" || t == "<|end|>" ||
                     t == "<end_of_turn>" || t == "<|endoftext|>" || t == "<|end_of_text|>" ||
                     t == "<EOT>" || t == "_<EOT>" || t == "<end_of_utterance>")) {
      *eot = static_cast<int32_t>(i);
      hit = true;
    } else if (*eom < 0 && t == "<|eom_id|>") {
      *eom = static_cast<int32_t>(i);
      hit = true;
    }
    if (hit && (*types)[i] != TokenType::kControl) (*types)[i] = TokenType::kControl;
  }
}

absl::StatusOr<BpeVocab> ReadBpeVocab(const GgufFile& file) {
  BpeVocab vocab;
  YUAN_ASSIGN_OR_RETURN(vocab.tokens, ReadTokens(file));
  const size_t n = vocab.tokens.size();
  YUAN_ASSIGN_OR_RETURN(vocab.types, ReadTypes(file, n));

  const GgufValue* merges = file.Find(kMergesKey);
  if (merges == nullptr) return FormatError(absl::StrCat(kMergesKey, " is missing"));
  if (merges->type != GgufType::kArray || merges->elem_type != GgufType::kString ||
      merges->strings.size() != merges->array_size) {
    return FormatError(
        absl::StrCat(kMergesKey, " must be an array of strings, got ", Describe(*merges)));
  }
  vocab.merges.reserve(merges->strings.size());
  for (const std::string_view m : merges->strings) vocab.merges.emplace_back(m);

  if (file.Find(kPreKey) == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(kPreKey,
                     " is missing: the byte-level BPE pre-tokenizer is unknown (llama.cpp would "
                     "fall back to its 'default' rule, which we do not implement)"));
  }
  YUAN_ASSIGN_OR_RETURN(const std::string_view pre, file.GetString(kPreKey));
  YUAN_ASSIGN_OR_RETURN(vocab.pre, BpePreTokenizerFromName(pre, &vocab.ignore_merges));

  // llama.cpp's defaults for gpt2-style vocabularies: no unk; BOS added only
  // for the llama3 family unless the file says otherwise.
  YUAN_ASSIGN_OR_RETURN(vocab.bos, ReadTokenId(file, "tokenizer.ggml.bos_token_id", -1, n));
  YUAN_ASSIGN_OR_RETURN(vocab.eos, ReadTokenId(file, "tokenizer.ggml.eos_token_id", -1, n));
  YUAN_ASSIGN_OR_RETURN(vocab.unk, ReadTokenId(file, "tokenizer.ggml.unknown_token_id", -1, n));
  YUAN_ASSIGN_OR_RETURN(vocab.eot, ReadTokenId(file, "tokenizer.ggml.eot_token_id", -1, n));
  YUAN_ASSIGN_OR_RETURN(vocab.eom, ReadTokenId(file, "tokenizer.ggml.eom_token_id", -1, n));
  const bool default_bos = vocab.pre == BpePreTokenizer::kLlama3 && vocab.bos >= 0;
  YUAN_ASSIGN_OR_RETURN(vocab.add_bos, file.GetBool("tokenizer.ggml.add_bos_token", default_bos));
  YUAN_ASSIGN_OR_RETURN(vocab.add_eos, file.GetBool("tokenizer.ggml.add_eos_token", false));
  GuessEogTokens(vocab.tokens, &vocab.types, &vocab.eot, &vocab.eom);
  return vocab;
}

absl::StatusOr<SpmVocab> ReadSpmVocab(const GgufFile& file) {
  SpmVocab vocab;
  YUAN_ASSIGN_OR_RETURN(vocab.tokens, ReadTokens(file));
  const size_t n = vocab.tokens.size();

  if (const GgufValue* scores = file.Find(kScoresKey); scores != nullptr) {
    // llama.cpp accepts f32 and i32 scores; any numeric element type is read.
    const bool numeric =
        scores->type == GgufType::kArray &&
        (scores->elem_type == GgufType::kFloat32 || scores->elem_type == GgufType::kFloat64 ||
         IsIntegerType(scores->elem_type));
    if (!numeric) {
      return FormatError(
          absl::StrCat(kScoresKey, " must be an array of float32, got ", Describe(*scores)));
    }
    if (scores->array_size != n) {
      return FormatError(absl::StrCat(kScoresKey, " has ", scores->array_size, " entries but ",
                                      kTokensKey, " has ", n));
    }
    vocab.scores.resize(n);
    for (size_t i = 0; i < n; ++i) vocab.scores[i] = static_cast<float>(scores->ArrayFloat(i));
  }

  YUAN_ASSIGN_OR_RETURN(vocab.types, ReadTypes(file, n));

  // llama.cpp's defaults for the llama vocabulary: <unk>=0, <s>=1, </s>=2.
  YUAN_ASSIGN_OR_RETURN(vocab.bos, ReadTokenId(file, "tokenizer.ggml.bos_token_id", 1, n));
  YUAN_ASSIGN_OR_RETURN(vocab.eos, ReadTokenId(file, "tokenizer.ggml.eos_token_id", 2, n));
  YUAN_ASSIGN_OR_RETURN(vocab.unk, ReadTokenId(file, "tokenizer.ggml.unknown_token_id", 0, n));
  YUAN_ASSIGN_OR_RETURN(vocab.eot, ReadTokenId(file, "tokenizer.ggml.eot_token_id", -1, n));
  YUAN_ASSIGN_OR_RETURN(vocab.eom, ReadTokenId(file, "tokenizer.ggml.eom_token_id", -1, n));

  YUAN_ASSIGN_OR_RETURN(vocab.add_bos, file.GetBool("tokenizer.ggml.add_bos_token", true));
  YUAN_ASSIGN_OR_RETURN(vocab.add_eos, file.GetBool("tokenizer.ggml.add_eos_token", false));
  YUAN_ASSIGN_OR_RETURN(vocab.add_space_prefix,
                        file.GetBool("tokenizer.ggml.add_space_prefix", true));

  GuessEogTokens(vocab.tokens, &vocab.types, &vocab.eot, &vocab.eom);
  return vocab;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file) {
  if (file.Find(kModelKey) == nullptr) {
    return FormatError(absl::StrCat(kModelKey, " is missing: the file has no tokenizer"));
  }
  YUAN_ASSIGN_OR_RETURN(const std::string_view model, file.GetString(kModelKey));
  if (model == "gpt2") {
    YUAN_ASSIGN_OR_RETURN(BpeVocab vocab, ReadBpeVocab(file));
    YUAN_ASSIGN_OR_RETURN(std::unique_ptr<BpeTokenizer> tok,
                          BpeTokenizer::Create(std::move(vocab)));
    return std::unique_ptr<Tokenizer>(std::move(tok));
  }
  if (model != "llama") {
    return absl::UnimplementedError(absl::StrCat(
        "tokenizer model '", Sv(model), "' (", kModelKey,
        ") is not supported yet; supported: 'llama' (SentencePiece), 'gpt2' (byte-level BPE)"));
  }
  YUAN_ASSIGN_OR_RETURN(SpmVocab vocab, ReadSpmVocab(file));
  YUAN_ASSIGN_OR_RETURN(std::unique_ptr<SpmTokenizer> tok, SpmTokenizer::Create(std::move(vocab)));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

}  // namespace yuan
