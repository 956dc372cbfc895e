#include "runtime/tokenizer/tokenizer_json.h"

#include <cstdio>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/status.h"
#include "runtime/tokenizer/tokenizer.h"

namespace yuan {
namespace {

using Json = nlohmann::json;

// The split regexes of the pre-tokenizers we implement, as they appear in
// the models' tokenizer.json files.
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kDeepseekV3Regex0 = R"(\p{N}{1,3})";
constexpr std::string_view kDeepseekV3Regex1 =
    "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+";
constexpr std::string_view kDeepseekV3Regex2 =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}"
    "\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kSpace = "\xE2\x96\x81";  // "▁"

// Owns the strings and arrays that the GgufKvs point into.
class KvBuilder {
 public:
  void String(const char* key, std::string value) {
    auto owned = std::make_shared<std::string>(std::move(value));
    GgufKv kv;
    kv.key = key;
    kv.value.type = GgufType::kString;
    kv.value.str = *owned;
    Push(std::move(kv), owned);
  }
  void Uint32(const char* key, uint32_t value) {
    GgufKv kv;
    kv.key = key;
    kv.value.type = GgufType::kUint32;
    kv.value.u = value;
    kv.value.i = value;
    Push(std::move(kv), nullptr);
  }
  void Bool(const char* key, bool value) {
    GgufKv kv;
    kv.key = key;
    kv.value.type = GgufType::kBool;
    kv.value.u = value ? 1 : 0;
    kv.value.i = value ? 1 : 0;
    Push(std::move(kv), nullptr);
  }
  void StringArray(const char* key, std::vector<std::string> values) {
    auto owned = std::make_shared<std::vector<std::string>>(std::move(values));
    GgufKv kv;
    kv.key = key;
    kv.value.type = GgufType::kArray;
    kv.value.elem_type = GgufType::kString;
    kv.value.array_size = owned->size();
    kv.value.strings.reserve(owned->size());
    for (const std::string& s : *owned) kv.value.strings.emplace_back(s);
    Push(std::move(kv), owned);
  }
  void Int32Array(const char* key, std::vector<int32_t> values) {
    auto owned = std::make_shared<std::vector<int32_t>>(std::move(values));
    GgufKv kv;
    kv.key = key;
    kv.value.type = GgufType::kArray;
    kv.value.elem_type = GgufType::kInt32;
    kv.value.array_size = owned->size();
    kv.value.array_data = reinterpret_cast<const uint8_t*>(owned->data());
    Push(std::move(kv), owned);
  }
  void Float32Array(const char* key, std::vector<float> values) {
    auto owned = std::make_shared<std::vector<float>>(std::move(values));
    GgufKv kv;
    kv.key = key;
    kv.value.type = GgufType::kArray;
    kv.value.elem_type = GgufType::kFloat32;
    kv.value.array_size = owned->size();
    kv.value.array_data = reinterpret_cast<const uint8_t*>(owned->data());
    Push(std::move(kv), owned);
  }
  // Keys that are built at run time (chat_template.<name>).
  const char* OwnKey(std::string key) {
    keys_.push_back(std::move(key));
    return keys_.back().c_str();
  }

  GgufParts Finish() {
    auto keys = std::make_shared<std::deque<std::string>>(std::move(keys_));
    parts_.keep_alive.push_back(keys);
    return std::move(parts_);
  }

 private:
  void Push(GgufKv kv, std::shared_ptr<const void> owned) {
    parts_.kvs.push_back(std::move(kv));
    if (owned != nullptr) parts_.keep_alive.push_back(std::move(owned));
  }
  GgufParts parts_;
  std::deque<std::string> keys_;  // moved whole into keep_alive: elements do not move
};

absl::Status Bad(std::string_view field, std::string_view what) {
  return FormatError(absl::StrCat("tokenizer.json: ", Sv(field), " ", Sv(what)));
}

const Json* Member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// A string member, or nullptr when absent / null / not a string.
const std::string* StringMember(const Json& j, const char* key) {
  const Json* m = Member(j, key);
  return m != nullptr && m->is_string() ? m->get_ptr<const std::string*>() : nullptr;
}

// tokenizer_config.json spells special tokens as a string or as
// {"content": "...", ...} (AddedToken); anything else is "none".
const std::string* TokenContent(const Json* j) {
  if (j == nullptr) return nullptr;
  if (j->is_string()) return j->get_ptr<const std::string*>();
  return StringMember(*j, "content");
}

bool LooksSpecial(const std::string& t) {
  // llama.cpp's does_token_look_special.
  auto starts = [&](std::string_view p) {
    return t.size() >= p.size() && t.compare(0, p.size(), p) == 0;
  };
  auto ends = [&](std::string_view p) {
    return t.size() >= p.size() && t.compare(t.size() - p.size(), p.size(), p) == 0;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" ||
         (starts("<|") && ends("|>")) ||
         (starts("<\xEF\xBD\x9C") && ends("\xEF\xBD\x9C>")) ||  // <｜...｜>
         (starts("<unused") && ends(">"));
}

bool IsByteToken(const std::string& t) {
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

// Collects the pre-tokenizer's components in order (a Sequence flattened).
void FlattenPreTokenizers(const Json& pt, std::vector<const Json*>* out) {
  const std::string* type = StringMember(pt, "type");
  if (type != nullptr && *type == "Sequence") {
    const Json* list = Member(pt, "pretokenizers");
    if (list != nullptr && list->is_array()) {
      for (const Json& p : *list) FlattenPreTokenizers(p, out);
    }
    return;
  }
  out->push_back(&pt);
}

// Detects llama.cpp's `tokenizer.ggml.pre` name for a byte-level pre-tokenizer.
absl::StatusOr<std::string> DetectPre(const Json* pre_tokenizer) {
  if (pre_tokenizer == nullptr || pre_tokenizer->is_null()) {
    return absl::UnimplementedError(
        "tokenizer.json: byte-level BPE without a pre_tokenizer is not supported");
  }
  std::vector<const Json*> parts;
  FlattenPreTokenizers(*pre_tokenizer, &parts);
  std::vector<std::string> regexes;
  bool byte_level_regex = false;
  for (const Json* p : parts) {
    const std::string* type = StringMember(*p, "type");
    if (type == nullptr) return Bad("pre_tokenizer.type", "is missing or not a string");
    if (*type == "Split") {
      const Json* pattern = Member(*p, "pattern");
      const std::string* re = pattern != nullptr ? StringMember(*pattern, "Regex") : nullptr;
      const std::string* behavior = StringMember(*p, "behavior");
      const Json* invert = Member(*p, "invert");
      if (re == nullptr || behavior == nullptr || *behavior != "Isolated" ||
          (invert != nullptr && !(invert->is_boolean() && !invert->get<bool>()))) {
        return absl::UnimplementedError(
            "tokenizer.json: only Split pre-tokenizers with a Regex pattern, Isolated "
            "behavior and no invert are supported");
      }
      regexes.push_back(*re);
    } else if (*type == "ByteLevel") {
      const Json* use_regex = Member(*p, "use_regex");
      const Json* prefix = Member(*p, "add_prefix_space");
      if (prefix != nullptr && prefix->is_boolean() && prefix->get<bool>()) {
        return absl::UnimplementedError(
            "tokenizer.json: ByteLevel pre-tokenizer with add_prefix_space is not supported");
      }
      // use_regex defaults to true.
      byte_level_regex = use_regex == nullptr || !use_regex->is_boolean() || use_regex->get<bool>();
    } else {
      return absl::UnimplementedError(
          absl::StrCat("tokenizer.json: pre-tokenizer type '", *type, "' is not supported"));
    }
  }
  if (regexes.empty() && byte_level_regex) return std::string("gpt-2");
  if (!byte_level_regex) {
    if (regexes.size() == 1 && regexes[0] == kLlama3Regex) return std::string("llama-bpe");
    if (regexes.size() == 1 && regexes[0] == kQwen2Regex) return std::string("qwen2");
    if (regexes.size() == 3 && regexes[0] == kDeepseekV3Regex0 && regexes[1] == kDeepseekV3Regex1 &&
        regexes[2] == kDeepseekV3Regex2) {
      return std::string("deepseek-v3");
    }
  }
  std::string shown;
  for (const std::string& r : regexes) absl::StrAppend(&shown, shown.empty() ? "" : " then ", r);
  return absl::UnimplementedError(
      absl::StrCat("tokenizer.json: unknown byte-level pre-tokenizer (split regex: ",
                   shown.empty() ? std::string("none") : shown,
                   byte_level_regex ? ", plus the ByteLevel GPT-2 regex" : "",
                   "); supported: llama3, qwen2, deepseek-v3, gpt-2"));
}

}  // namespace

absl::StatusOr<GgufParts> TokenizerJsonToGgufKvs(std::string_view tokenizer_json,
                                                 std::string_view tokenizer_config_json) {
  const Json root = Json::parse(tokenizer_json.begin(), tokenizer_json.end(), nullptr,
                                /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return FormatError("tokenizer.json is not a valid JSON object");
  }
  Json config = Json::object();
  if (!tokenizer_config_json.empty()) {
    config =
        Json::parse(tokenizer_config_json.begin(), tokenizer_config_json.end(), nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return FormatError("tokenizer_config.json is not a valid JSON object");
    }
  }

  const Json* model = Member(root, "model");
  if (model == nullptr || !model->is_object()) return Bad("model", "is missing or not an object");
  const std::string* model_type = StringMember(*model, "type");
  // Old files omit model.type for BPE.
  if (model_type != nullptr && *model_type != "BPE") {
    return absl::UnimplementedError(absl::StrCat("tokenizer.json: model type '", *model_type,
                                                 "' is not supported; supported: BPE"));
  }
  const Json* vocab = Member(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return Bad("model.vocab", "is missing or not an object");
  }
  const Json* byte_fallback = Member(*model, "byte_fallback");
  const bool spm =
      byte_fallback != nullptr && byte_fallback->is_boolean() && byte_fallback->get<bool>();

  // Tokens: the model's vocab plus added_tokens, by id.
  constexpr int64_t kMaxId = 1 << 24;
  std::map<int64_t, std::string> by_id;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    const Json& id = it.value();
    if (!id.is_number_integer()) {
      return Bad(absl::StrCat("model.vocab[\"", it.key(), "\"]"), "is not an integer id");
    }
    const int64_t v = id.get<int64_t>();
    if (v < 0 || v >= kMaxId) {
      return Bad(absl::StrCat("model.vocab[\"", it.key(), "\"]"), "is out of range");
    }
    if (!by_id.emplace(v, it.key()).second) {
      return Bad("model.vocab", absl::StrCat("gives id ", v, " to two tokens"));
    }
  }
  struct Added {
    std::string content;
    bool special;
  };
  std::map<int64_t, Added> added;
  if (const Json* list = Member(root, "added_tokens"); list != nullptr && !list->is_null()) {
    if (!list->is_array()) return Bad("added_tokens", "is not an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& a = (*list)[i];
      const Json* id = Member(a, "id");
      const std::string* content = StringMember(a, "content");
      const Json* special = Member(a, "special");
      if (id == nullptr || !id->is_number_integer() || content == nullptr) {
        return Bad(absl::StrCat("added_tokens[", i, "]"), "needs an integer id and a content");
      }
      const int64_t v = id->get<int64_t>();
      if (v < 0 || v >= kMaxId)
        return Bad(absl::StrCat("added_tokens[", i, "].id"), "is out of range");
      added[v] = {*content, special != nullptr && special->is_boolean() && special->get<bool>()};
      by_id[v] = *content;
    }
  }
  if (by_id.empty()) return Bad("model.vocab", "is empty");
  const size_t n = static_cast<size_t>(by_id.rbegin()->first) + 1;
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, static_cast<int32_t>(TokenType::kUnused));
  for (size_t i = 0; i < n; ++i) tokens[i] = absl::StrCat("[PAD", i, "]");
  const std::string* unk_token = StringMember(*model, "unk_token");
  for (const auto& [id, text] : by_id) {
    tokens[id] = text;
    TokenType t = TokenType::kNormal;
    if (const auto a = added.find(id); a != added.end()) {
      t = a->second.special || LooksSpecial(text) ? TokenType::kControl : TokenType::kUserDefined;
    }
    if (spm && IsByteToken(text)) t = TokenType::kByte;
    if (spm && unk_token != nullptr && text == *unk_token) t = TokenType::kUnknown;
    types[id] = static_cast<int32_t>(t);
  }

  // Merges: "a b" strings, or ["a", "b"] pairs in newer files.
  std::vector<std::string> merges;
  if (const Json* m = Member(*model, "merges"); m != nullptr && !m->is_null()) {
    if (!m->is_array()) return Bad("model.merges", "is not an array");
    merges.reserve(m->size());
    for (size_t i = 0; i < m->size(); ++i) {
      const Json& e = (*m)[i];
      if (e.is_string()) {
        merges.push_back(e.get<std::string>());
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.push_back(absl::StrCat(e[0].get<std::string>(), " ", e[1].get<std::string>()));
      } else {
        return Bad(absl::StrCat("model.merges[", i, "]"),
                   "is neither a \"a b\" string nor a pair of strings");
      }
    }
  }

  // The token id of `text`, preferring added tokens; -1 when absent.
  std::map<std::string, int32_t> text_to_id;
  for (size_t i = 0; i < n; ++i) text_to_id.emplace(tokens[i], static_cast<int32_t>(i));
  for (const auto& [id, a] : added) text_to_id[a.content] = static_cast<int32_t>(id);
  auto find_id = [&](const std::string* text) -> int32_t {
    if (text == nullptr) return -1;
    const auto it = text_to_id.find(*text);
    return it == text_to_id.end() ? -1 : it->second;
  };

  KvBuilder kv;
  if (spm) {
    kv.String("tokenizer.ggml.model", "llama");
    // SentencePiece BPE merges the pair whose result scores highest; a
    // tokenizer.json lists the merges in that order, so a piece scores
    // -(rank of the first merge that makes it). Pieces no merge makes score
    // below every merge; single characters and specials 0.
    std::vector<float> scores(n, 0.0f);
    std::vector<bool> scored(n, false);
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string& m = merges[r];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) continue;
      std::string joined = m.substr(0, sp) + m.substr(sp + 1);
      const int32_t id = find_id(&joined);
      if (id >= 0 && !scored[id]) {
        scores[id] = -static_cast<float>(r);
        scored[id] = true;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (!scored[i] && types[i] == static_cast<int32_t>(TokenType::kNormal)) {
        // More than one character: reachable only by merging.
        size_t chars = 0;
        for (const char c : tokens[i]) chars += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
        if (chars > 1) scores[i] = -1e9f;
      }
    }
    // add_space_prefix: a Prepend("▁") normalizer, or a Metaspace
    // pre-tokenizer that prepends.
    bool prefix = false;
    std::vector<const Json*> norms;
    if (const Json* nz = Member(root, "normalizer"); nz != nullptr && !nz->is_null()) {
      const std::string* t = StringMember(*nz, "type");
      if (t != nullptr && *t == "Sequence") {
        if (const Json* l = Member(*nz, "normalizers"); l != nullptr && l->is_array()) {
          for (const Json& x : *l) norms.push_back(&x);
        }
      } else {
        norms.push_back(nz);
      }
    }
    for (const Json* x : norms) {
      const std::string* t = StringMember(*x, "type");
      const std::string* p = StringMember(*x, "prepend");
      if (t != nullptr && *t == "Prepend" && p != nullptr && *p == kSpace) prefix = true;
    }
    if (const Json* pt = Member(root, "pre_tokenizer"); pt != nullptr && !pt->is_null()) {
      std::vector<const Json*> parts;
      FlattenPreTokenizers(*pt, &parts);
      for (const Json* p : parts) {
        const std::string* t = StringMember(*p, "type");
        if (t == nullptr || *t != "Metaspace") {
          return absl::UnimplementedError(
              "tokenizer.json: a byte_fallback BPE with a pre-tokenizer other than Metaspace "
              "is not supported");
        }
        const Json* split = Member(*p, "split");
        if (split != nullptr && split->is_boolean() && split->get<bool>()) {
          return absl::UnimplementedError(
              "tokenizer.json: Metaspace pre-tokenizer with split=true is not supported");
        }
        const std::string* scheme = StringMember(*p, "prepend_scheme");
        const Json* add_prefix = Member(*p, "add_prefix_space");
        if ((scheme != nullptr && *scheme != "never") ||
            (add_prefix != nullptr && add_prefix->is_boolean() && add_prefix->get<bool>())) {
          prefix = true;
        }
      }
    }
    kv.Bool("tokenizer.ggml.add_space_prefix", prefix);
    kv.StringArray("tokenizer.ggml.tokens", std::move(tokens));
    kv.Float32Array("tokenizer.ggml.scores", std::move(scores));
    kv.Int32Array("tokenizer.ggml.token_type", std::move(types));
  } else {
    YUAN_ASSIGN_OR_RETURN(const std::string pre, DetectPre(Member(root, "pre_tokenizer")));
    kv.String("tokenizer.ggml.model", "gpt2");
    kv.String("tokenizer.ggml.pre", pre);
    kv.StringArray("tokenizer.ggml.tokens", std::move(tokens));
    kv.Int32Array("tokenizer.ggml.token_type", std::move(types));
    kv.StringArray("tokenizer.ggml.merges", std::move(merges));
  }

  // Special tokens and add_bos / add_eos: tokenizer_config.json first, then
  // the post_processor's template (what llama.cpp's SpecialVocab does).
  int32_t bos = find_id(TokenContent(Member(config, "bos_token")));
  int32_t eos = find_id(TokenContent(Member(config, "eos_token")));
  const int32_t unk = find_id(TokenContent(Member(config, "unk_token")));
  const int32_t pad = find_id(TokenContent(Member(config, "pad_token")));
  int add_bos = -1;  // -1: not said
  int add_eos = -1;
  if (const Json* b = Member(config, "add_bos_token"); b != nullptr && b->is_boolean()) {
    add_bos = b->get<bool>();
  }
  if (const Json* e = Member(config, "add_eos_token"); e != nullptr && e->is_boolean()) {
    add_eos = e->get<bool>();
  }
  if (const Json* pp = Member(root, "post_processor"); pp != nullptr && pp->is_object()) {
    std::vector<const Json*> procs;
    const std::string* t = StringMember(*pp, "type");
    if (t != nullptr && *t == "Sequence") {
      if (const Json* l = Member(*pp, "processors"); l != nullptr && l->is_array()) {
        for (const Json& x : *l) procs.push_back(&x);
      }
    } else {
      procs.push_back(pp);
    }
    for (const Json* p : procs) {
      const std::string* pt = StringMember(*p, "type");
      const Json* single = Member(*p, "single");
      if (pt == nullptr || *pt != "TemplateProcessing" || single == nullptr ||
          !single->is_array() || single->empty()) {
        continue;
      }
      auto special_of = [&](const Json& item) -> const std::string* {
        const Json* st = Member(item, "SpecialToken");
        return st != nullptr ? StringMember(*st, "id") : nullptr;
      };
      const std::string* first = special_of(single->front());
      const std::string* last = special_of(single->back());
      if (add_bos < 0) {
        add_bos = first != nullptr;
        if (first != nullptr && bos < 0) bos = find_id(first);
      }
      if (add_eos < 0) {
        add_eos = last != nullptr && single->size() > 1;
        if (last != nullptr && single->size() > 1 && eos < 0) eos = find_id(last);
      }
    }
  }
  if (bos >= 0) kv.Uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
  if (eos >= 0) kv.Uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
  if (unk >= 0) kv.Uint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(unk));
  if (pad >= 0) kv.Uint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(pad));
  if (add_bos >= 0) kv.Bool("tokenizer.ggml.add_bos_token", add_bos == 1 && bos >= 0);
  if (add_eos >= 0) kv.Bool("tokenizer.ggml.add_eos_token", add_eos == 1 && eos >= 0);

  if (const Json* ct = Member(config, "chat_template"); ct != nullptr && !ct->is_null()) {
    if (ct->is_string()) {
      kv.String("tokenizer.chat_template", ct->get<std::string>());
    } else if (ct->is_array()) {
      for (size_t i = 0; i < ct->size(); ++i) {
        const std::string* name = StringMember((*ct)[i], "name");
        const std::string* tmpl = StringMember((*ct)[i], "template");
        if (name == nullptr || tmpl == nullptr) {
          return FormatError(absl::StrCat("tokenizer_config.json: chat_template[", i,
                                          "] needs a string name and template"));
        }
        kv.String(*name == "default" ? "tokenizer.chat_template"
                                     : kv.OwnKey(absl::StrCat("tokenizer.chat_template.", *name)),
                  *tmpl);
      }
    } else {
      return FormatError("tokenizer_config.json: chat_template is neither a string nor a list");
    }
  }
  return kv.Finish();
}

namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read '", path, "'"));
  return ss.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromTokenizerJson(const std::string& path) {
  YUAN_ASSIGN_OR_RETURN(const std::string json, ReadWholeFile(path));
  std::string config;
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
  if (absl::StatusOr<std::string> c = ReadWholeFile(dir + "tokenizer_config.json"); c.ok()) {
    config = *std::move(c);
  }
  absl::StatusOr<GgufParts> parts = TokenizerJsonToGgufKvs(json, config);
  if (!parts.ok()) {
    // Prefix the path, keeping the payload that marks a FormatError.
    const absl::Status& s = parts.status();
    absl::Status out(s.code(), absl::StrCat("'", path, "': ", s.message()));
    s.ForEachPayload(
        [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
    return out;
  }
  parts->path = path;
  YUAN_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::FromParts(*std::move(parts)));
  return FromGguf(*file);
}

}  // namespace yuan
