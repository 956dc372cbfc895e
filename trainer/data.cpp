#include "trainer/data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "runtime/chat/chat_template.h"
#include "runtime/core/status.h"

namespace yuan::train {
namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// Files

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (std::filesystem::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a data file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot be opened for reading"));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return data;
}

// FNV-1a 64: cheap, stable across platforms, enough to tell two data files
// apart in a run's provenance (not a security hash).
std::string Fnv1a64Hex(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Byte offset of the first invalid UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF included), or npos.
size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (int k = 1; k < len; ++k) {
      const uint8_t cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

struct Line {
  int64_t number;  // 1-based
  std::string_view text;
};

// Lines without their terminator ("\n" or "\r\n"); a UTF-8 byte order mark
// at the start of the file is dropped, as editors on Windows write one.
std::vector<Line> SplitLines(std::string_view data) {
  if (data.starts_with("\xEF\xBB\xBF")) data.remove_prefix(3);
  std::vector<Line> lines;
  int64_t number = 1;
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    std::string_view line = data.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back({number++, line});
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  return lines;
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isspace(c); });
}

absl::Status LineError(const std::string& path, int64_t line, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", reason));
}

// ---------------------------------------------------------------------------
// Special tokens

struct Specials {
  bool add_bos = false;  // the vocabulary asks for BOS before a sequence
  int32_t bos = -1;
  int32_t eos = -1;
  std::string bos_text;
  std::string eos_text;
};

Specials ProbeSpecials(const Tokenizer& tok) {
  Specials s;
  s.bos = tok.bos();
  s.eos = tok.eos();
  if (s.bos >= 0) s.bos_text = std::string(tok.Text(s.bos));
  if (s.eos >= 0) s.eos_text = std::string(tok.Text(s.eos));
  // The Tokenizer interface does not expose add_bos_token; encoding nothing
  // with add_bos shows it (an add_eos_token vocabulary appends EOS after).
  const std::vector<int32_t> probe = tok.Encode("", EncodeOptions{/*add_bos=*/true});
  s.add_bos = s.bos >= 0 && !probe.empty() && probe.front() == s.bos;
  return s;
}

bool IsSpecial(const Tokenizer& tok, int32_t id) {
  const TokenType t = tok.Type(id);
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}

// ---------------------------------------------------------------------------
// Chat

absl::StatusOr<std::string> SelectTemplate(const GgufFile& gguf, const std::string& requested) {
  if (requested.empty()) {
    const GgufValue* own = gguf.Find("tokenizer.chat_template");
    if (own != nullptr && own->type == GgufType::kString && !own->str.empty()) {
      return std::string(own->str);
    }
    return BuiltinChatTemplate("chatml");
  }
  // As runtime/engine/chat.cpp: a template source always has a Jinja tag, a
  // built-in name never does.
  if (requested.find("{%") == std::string::npos && requested.find("{{") == std::string::npos) {
    return BuiltinChatTemplate(requested);
  }
  return requested;
}

struct Conversation {
  std::vector<ChatMessage> messages;
  std::vector<bool> learn;  // per message: an assistant message in the loss
  ChatExtras extras;
};

bool KnownRole(std::string_view role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool";
}

// Parses one JSONL line; the error is the reason only (the caller adds
// FILE:LINE).
absl::Status ParseConversation(std::string_view line, Conversation* conv) {
  if (const size_t bad = FindInvalidUtf8(line); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 at byte ", bad + 1));
  }
  Json doc;
  try {
    doc = Json::parse(line);
  } catch (const Json::exception& e) {  // parse errors, and numbers beyond a double
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON (", e.what(), ")"));
  }
  if (!doc.is_object()) return absl::InvalidArgumentError("not a JSON object");
  const auto it = doc.find("messages");
  if (it == doc.end()) return absl::InvalidArgumentError("no \"messages\" field");
  if (!it->is_array()) return absl::InvalidArgumentError("\"messages\" is not an array");
  if (it->empty()) return absl::InvalidArgumentError("\"messages\" is empty");
  bool any_learn = false;
  int n = 0;
  for (const Json& m : *it) {
    ++n;
    if (!m.is_object())
      return absl::InvalidArgumentError(absl::StrCat("message ", n, " is not an object"));
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("message ", n, " has no \"role\" string"));
    }
    const std::string& r = role->get_ref<const std::string&>();
    if (!KnownRole(r)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "message ", n, ": unknown role \"", r, "\" (expected system, user, assistant or tool)"));
    }
    const auto content = m.find("content");
    if (content == m.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("message ", n, " (", r, ") has no \"content\""));
    }
    if (!content->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("message ", n, " (", r, "): content is not a string"));
    }
    bool learn = r == "assistant";
    if (const auto w = m.find("weight"); w != m.end()) {
      // OpenAI's field: 0 or 1.
      if (!w->is_number() || (w->get<double>() != 0.0 && w->get<double>() != 1.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("message ", n, ": \"weight\" must be 0 or 1"));
      }
      if (w->get<double>() == 0.0) learn = false;
    }
    conv->messages.push_back({r, content->get<std::string>()});
    conv->learn.push_back(learn);
    any_learn = any_learn || learn;
  }
  if (!any_learn) {
    return absl::InvalidArgumentError("no assistant message to learn from (nothing to train on)");
  }
  // OpenAI's function-calling format puts the tool list beside the messages;
  // templates that describe tools read it as `tools`.
  if (const auto tools = doc.find("tools"); tools != doc.end() && tools->is_array()) {
    absl::StatusOr<jinja::Value> v = jinja::FromJson(tools->dump());
    if (!v.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("\"tools\": ", v.status().message()));
    }
    conv->extras.variables.emplace_back("tools", *std::move(v));
  }
  return absl::OkStatus();
}

// RenderChat's messages already name the template line; whatever its code
// (a raise_exception, an unsupported construct), it is this line's problem.
absl::Status TemplateError(const absl::Status& s) {
  return absl::InvalidArgumentError(s.message());
}

struct Segment {
  std::string_view text;
  bool target;
};

// One assistant message in the loss: the conversation before it rendered
// with the generation prompt (ends where its answer starts), and the
// conversation through it (ends where its turn, content and end-of-turn
// marker, ends).
struct TurnRendering {
  size_t message = 0;
  std::string prefix;
  std::string full;
};

absl::StatusOr<std::vector<TurnRendering>> RenderTurns(const std::string& source,
                                                       const Conversation& conv) {
  std::vector<TurnRendering> turns;
  for (size_t i = 0; i < conv.messages.size(); ++i) {
    if (!conv.learn[i]) continue;
    const std::vector<ChatMessage> before(conv.messages.begin(), conv.messages.begin() + i);
    const std::vector<ChatMessage> through(conv.messages.begin(), conv.messages.begin() + i + 1);
    TurnRendering t;
    t.message = i;
    absl::StatusOr<std::string> prefix =
        RenderChat(source, before, /*add_generation_prompt=*/true, conv.extras);
    if (!prefix.ok()) return TemplateError(prefix.status());
    t.prefix = *std::move(prefix);
    absl::StatusOr<std::string> full =
        RenderChat(source, through, /*add_generation_prompt=*/false, conv.extras);
    if (!full.ok()) return TemplateError(full.status());
    t.full = *std::move(full);
    turns.push_back(std::move(t));
  }
  return turns;
}

// Cuts the whole conversation's rendering into prompt and assistant pieces
// at the turns' boundaries. This needs the template to be prefix-stable:
// every partial rendering must be a prefix of the whole one. nullopt when it
// is not (Qwen3, for one, drops earlier turns' thinking).
std::optional<std::vector<Segment>> SplitConversation(const std::vector<TurnRendering>& turns,
                                                      const std::string& full_all) {
  std::vector<Segment> segments;
  const std::string_view all(full_all);
  size_t pos = 0;
  for (const TurnRendering& t : turns) {
    if (!std::string_view(t.full).starts_with(t.prefix) || !all.starts_with(t.full) ||
        t.prefix.size() < pos) {
      return std::nullopt;
    }
    segments.push_back({all.substr(pos, t.prefix.size() - pos), false});
    segments.push_back({all.substr(t.prefix.size(), t.full.size() - t.prefix.size()), true});
    pos = t.full.size();
  }
  segments.push_back({all.substr(pos), false});
  return segments;
}

// Tokenizes the pieces in order, as one text. The first piece starts the
// sequence (space prefix, BOS unless the template wrote the BOS text
// itself); a later piece continues the text, except after a special token
// where SentencePiece, tokenizing the whole text, would add a space prefix
// again (spm.cpp), so the pieces give the tokens the whole text gives.
Example TokenizeSegments(const Tokenizer& tok, const Specials& sp, std::string_view whole,
                         const std::vector<Segment>& segments) {
  Example ex;
  if (sp.add_bos && !whole.starts_with(sp.bos_text)) {
    ex.tokens.push_back(sp.bos);
    ex.loss_mask.push_back(0);
  }
  bool at_start = true;
  for (const Segment& s : segments) {
    if (s.text.empty()) continue;
    EncodeOptions o;
    o.add_bos = false;
    o.parse_special = true;
    o.continuation = !at_start && !(!ex.tokens.empty() && IsSpecial(tok, ex.tokens.back()));
    const std::vector<int32_t> ids = tok.Encode(s.text, o);
    ex.tokens.insert(ex.tokens.end(), ids.begin(), ids.end());
    ex.loss_mask.insert(ex.loss_mask.end(), ids.size(), s.target ? 1 : 0);
    at_start = false;
  }
  // Nothing comes before the first token, so it is never predicted.
  if (!ex.loss_mask.empty()) ex.loss_mask[0] = 0;
  return ex;
}

// The length and target checks every chat example must pass. message: the
// 0-based assistant message the example is for, or -1 for a whole line.
absl::Status CheckChatExample(const Example& ex, int64_t seq_len, int64_t message) {
  if (static_cast<int64_t>(ex.tokens.size()) > seq_len) {
    const std::string what = message < 0
                                 ? "the example"
                                 : absl::StrCat("the example for assistant message ", message + 1);
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", ex.tokens.size(), " tokens, longer than seq_len ", seq_len));
  }
  if (std::find(ex.loss_mask.begin(), ex.loss_mask.end(), 1) == ex.loss_mask.end()) {
    return absl::InvalidArgumentError(
        message < 0
            ? std::string("the assistant messages give no tokens to train on")
            : absl::StrCat("assistant message ", message + 1, " gives no tokens to train on"));
  }
  return absl::OkStatus();
}

// A line's examples: the line fails as a whole (the outer status: bad JSON,
// a template error, ...), or gives examples one by one, each of which may
// fail alone (too long for seq_len) when the line gives one per turn.
absl::StatusOr<std::vector<absl::StatusOr<Example>>> ChatExamples(std::string_view line,
                                                                  const std::string& source,
                                                                  const Tokenizer& tok,
                                                                  const Specials& sp,
                                                                  int64_t seq_len) {
  Conversation conv;
  conv.extras.bos_token = sp.bos_text;
  conv.extras.eos_token = sp.eos_text;
  YUAN_RETURN_IF_ERROR(ParseConversation(line, &conv));
  absl::StatusOr<std::string> whole =
      RenderChat(source, conv.messages, /*add_generation_prompt=*/false, conv.extras);
  if (!whole.ok()) return TemplateError(whole.status());
  YUAN_ASSIGN_OR_RETURN(const std::vector<TurnRendering> turns, RenderTurns(source, conv));
  std::vector<absl::StatusOr<Example>> out;

  if (std::optional<std::vector<Segment>> segments = SplitConversation(turns, *whole)) {
    Example ex = TokenizeSegments(tok, sp, *whole, *segments);
    if (absl::Status s = CheckChatExample(ex, seq_len, -1); !s.ok()) {
      out.push_back(std::move(s));
    } else {
      out.push_back(std::move(ex));
    }
    return out;
  }

  // Not prefix-stable (the template rewrites earlier turns, as Qwen3 drops
  // their thinking): one example per assistant turn in the loss, the
  // conversation through that turn rendered as inference renders it while
  // that turn is being generated, so the model never learns from a history
  // it will not see. The prefix rule must still hold for the last turn:
  // inference appends the answer to the generation prompt.
  for (const TurnRendering& t : turns) {
    if (!std::string_view(t.full).starts_with(t.prefix)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the chat template is not prefix-stable at message ", t.message + 1,
          " (the conversation before it, with the generation prompt, does not render as a "
          "prefix of the conversation through it), so its assistant tokens cannot be told apart"));
    }
  }
  for (const TurnRendering& t : turns) {
    const std::string_view full(t.full);
    const std::vector<Segment> segments = {{full.substr(0, t.prefix.size()), false},
                                           {full.substr(t.prefix.size()), true}};
    Example ex = TokenizeSegments(tok, sp, full, segments);
    if (absl::Status s = CheckChatExample(ex, seq_len, static_cast<int64_t>(t.message)); !s.ok()) {
      out.push_back(std::move(s));
    } else {
      out.push_back(std::move(ex));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Text

// Cuts a document's tokens into pieces of at most seq_len tokens. Each piece
// starts with the previous one's last token: a piece's first token is never
// predicted, so without the overlap every seq_len-th token would never be a
// target.
void CutDocument(const std::vector<int32_t>& tokens, int64_t seq_len, int64_t number,
                 std::vector<Example>* out) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  int64_t start = 0;
  while (start + 1 < n) {
    const int64_t end = std::min(start + seq_len, n);
    Example ex;
    ex.tokens.assign(tokens.begin() + start, tokens.begin() + end);
    ex.loss_mask.assign(ex.tokens.size(), 1);
    ex.loss_mask[0] = 0;
    ex.line = number;
    out->push_back(std::move(ex));
    if (end == n) break;
    start = end - 1;
  }
}

// ---------------------------------------------------------------------------
// Shuffling

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t MixKey(uint64_t a, uint64_t b) {
  uint64_t s = a;
  s = SplitMix64(&s) ^ b;
  return SplitMix64(&s);
}

// Uniform in [0, bound) without modulo bias: rejects the r < 2^64 mod bound.
uint64_t Below(uint64_t* state, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const uint64_t r = SplitMix64(state);
    if (r >= threshold) return r % bound;
  }
}

std::vector<int64_t> Permutation(int64_t n, uint64_t key) {
  std::vector<int64_t> perm(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  uint64_t state = key;
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(Below(&state, static_cast<uint64_t>(i) + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

// Separates the eval split's random stream from every epoch's.
constexpr uint64_t kEvalSalt = 0x6576616c2d73706cULL;  // "eval-spl"

}  // namespace

absl::StatusOr<Dataset> LoadDataset(const std::string& path, const Tokenizer& tokenizer,
                                    const GgufFile& gguf, const DataOptions& options) {
  if (options.seq_len < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("seq_len must be at least 2, not ", options.seq_len));
  }
  if (!(options.eval_fraction >= 0.0 && options.eval_fraction <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_fraction must be in [0, 0.5], not ", options.eval_fraction));
  }
  if (options.eval_min < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_min must be >= 0, not ", options.eval_min));
  }
  DataKind kind = options.kind;
  if (kind == DataKind::kAuto) {
    kind = absl::EndsWithIgnoreCase(path, ".jsonl") ? DataKind::kChat : DataKind::kText;
  }

  YUAN_ASSIGN_OR_RETURN(const std::string data, ReadWholeFile(path));
  Dataset ds;
  ds.content_hash = Fnv1a64Hex(data);
  if (IsBlank(data)) return absl::InvalidArgumentError(absl::StrCat(path, ": the file is empty"));

  const Specials sp = ProbeSpecials(tokenizer);
  std::vector<Example> examples;
  std::string first_skip;  // the first skipped reason, to explain "no examples"
  auto bad = [&](int64_t line, const absl::Status& why) -> absl::Status {
    const absl::Status err = LineError(path, line, why.message());
    if (!options.skip_bad) return err;
    ++ds.n_skipped;
    if (first_skip.empty()) first_skip = std::string(err.message());
    return absl::OkStatus();
  };

  const std::vector<Line> lines = SplitLines(data);
  if (kind == DataKind::kChat) {
    YUAN_ASSIGN_OR_RETURN(const std::string source, SelectTemplate(gguf, options.chat_template));
    for (const Line& l : lines) {
      if (IsBlank(l.text)) continue;
      absl::StatusOr<std::vector<absl::StatusOr<Example>>> xs =
          ChatExamples(l.text, source, tokenizer, sp, options.seq_len);
      if (!xs.ok()) {
        YUAN_RETURN_IF_ERROR(bad(l.number, xs.status()));
        continue;
      }
      for (absl::StatusOr<Example>& ex : *xs) {
        if (!ex.ok()) {
          YUAN_RETURN_IF_ERROR(bad(l.number, ex.status()));
          continue;
        }
        ex->line = l.number;
        examples.push_back(*std::move(ex));
      }
    }
  } else {
    int64_t doc_number = 0;
    size_t i = 0;
    while (i < lines.size()) {
      if (IsBlank(lines[i].text)) {
        ++i;
        continue;
      }
      ++doc_number;
      std::string text;
      std::optional<absl::Status> invalid;
      for (; i < lines.size() && !IsBlank(lines[i].text); ++i) {
        const size_t at = FindInvalidUtf8(lines[i].text);
        if (at != std::string_view::npos && !invalid) {
          invalid =
              LineError(path, lines[i].number, absl::StrCat("invalid UTF-8 at byte ", at + 1));
        }
        if (!text.empty()) text.push_back('\n');
        text.append(lines[i].text);
      }
      if (invalid) {
        if (!options.skip_bad) return *invalid;
        ++ds.n_skipped;
        if (first_skip.empty()) first_skip = std::string(invalid->message());
        continue;
      }
      std::vector<int32_t> tokens;
      if (sp.add_bos) tokens.push_back(sp.bos);
      const std::vector<int32_t> ids = tokenizer.Encode(text, EncodeOptions{/*add_bos=*/false});
      tokens.insert(tokens.end(), ids.begin(), ids.end());
      if (sp.eos >= 0) tokens.push_back(sp.eos);
      CutDocument(tokens, options.seq_len, doc_number, &examples);
    }
  }

  if (examples.empty()) {
    std::string why = absl::StrCat(path, ": no examples");
    if (ds.n_skipped > 0)
      absl::StrAppend(&why, " (", ds.n_skipped, " skipped; the first: ", first_skip, ")");
    return absl::InvalidArgumentError(why);
  }

  // The eval split: a fixed, seeded subset, in file order like the rest.
  const int64_t n = static_cast<int64_t>(examples.size());
  int64_t n_eval = 0;
  if (options.eval_fraction > 0.0) {
    n_eval = std::max<int64_t>(options.eval_min,
                               static_cast<int64_t>(std::llround(options.eval_fraction * n)));
    if (n_eval >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", n, " examples are too few for an eval split of ", n_eval,
                       " (at least one must remain for training)"));
    }
  }
  std::vector<uint8_t> is_eval(static_cast<size_t>(n), 0);
  if (n_eval > 0) {
    const std::vector<int64_t> perm = Permutation(n, MixKey(options.seed ^ kEvalSalt, kEvalSalt));
    for (int64_t k = 0; k < n_eval; ++k) is_eval[perm[k]] = 1;
  }
  for (int64_t k = 0; k < n; ++k) {
    (is_eval[k] ? ds.eval : ds.train).push_back(std::move(examples[k]));
  }
  return ds;
}

std::vector<Batch> PackBatches(const std::vector<Example>& examples,
                               const std::vector<int64_t>& order, int64_t seq_len,
                               int64_t rows_per_batch) {
  std::vector<Batch> batches;
  if (seq_len < 1) return batches;
  rows_per_batch = std::max<int64_t>(rows_per_batch, 1);

  struct Row {
    std::vector<int32_t> tokens, targets, doc;
    int32_t n_docs = 0;
  };
  std::vector<Row> rows;
  auto emit = [&] {
    if (rows.empty()) return;
    Batch b;
    b.n_rows = static_cast<int64_t>(rows.size());
    b.seq_len = seq_len;
    for (Row& r : rows) {
      // Padding: a document of its own, never a target.
      const size_t pad = static_cast<size_t>(seq_len) - r.tokens.size();
      r.tokens.insert(r.tokens.end(), pad, 0);
      r.targets.insert(r.targets.end(), pad, -1);
      r.doc.insert(r.doc.end(), pad, r.n_docs);
      b.tokens.insert(b.tokens.end(), r.tokens.begin(), r.tokens.end());
      b.targets.insert(b.targets.end(), r.targets.begin(), r.targets.end());
      b.doc.insert(b.doc.end(), r.doc.begin(), r.doc.end());
    }
    batches.push_back(std::move(b));
    rows.clear();
  };

  for (const int64_t index : order) {
    if (index < 0 || index >= static_cast<int64_t>(examples.size())) continue;
    const Example& ex = examples[index];
    // LoadDataset never makes an example longer than seq_len; another caller's
    // is cut rather than dropped silently.
    const size_t len = std::min(ex.tokens.size(), static_cast<size_t>(seq_len));
    if (len == 0) continue;
    Row* row = nullptr;
    for (Row& r : rows) {
      if (static_cast<size_t>(seq_len) - r.tokens.size() >= len) {
        row = &r;
        break;
      }
    }
    if (row == nullptr) {
      if (static_cast<int64_t>(rows.size()) == rows_per_batch) emit();
      rows.emplace_back();
      row = &rows.back();
    }
    for (size_t p = 0; p < len; ++p) {
      row->tokens.push_back(ex.tokens[p]);
      const bool predict = p + 1 < len && p + 1 < ex.loss_mask.size() && ex.loss_mask[p + 1] != 0;
      row->targets.push_back(predict ? ex.tokens[p + 1] : -1);
      row->doc.push_back(row->n_docs);
    }
    ++row->n_docs;
  }
  emit();
  return batches;
}

std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed, int64_t epoch) {
  return Permutation(n, MixKey(seed, static_cast<uint64_t>(epoch)));
}

}  // namespace yuan::train
