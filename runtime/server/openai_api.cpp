#include "runtime/server/openai_api.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "runtime/core/status.h"
#include "runtime/grammar/json_schema.h"

namespace yuan::openai {
namespace {

using json = nlohmann::json;

constexpr int kMaxN = 16;
constexpr size_t kMaxStop = 16;
constexpr int kMaxLogprobs = 20;

// Deepest [ / { nesting outside strings. nlohmann's parser is iterative, but
// comparing, copying and dumping values recurse: refuse deep input up front.
size_t JsonDepth(std::string_view s, size_t limit) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escape = false;
  for (char c : s) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

// Reads fields of one JSON object with type checks; the first problem is
// kept in `error` and later reads become no-ops.
class Reader {
 public:
  Reader(const json& obj, ApiError* error) : obj_(obj), error_(error) {}
  bool failed() const { return failed_; }

  // The field, or nullptr when absent or null.
  const json* Get(const char* name) const {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  bool Fail(std::string message, std::string param) {
    if (!failed_) {
      *error_ = BadRequest(std::move(message), std::move(param));
      failed_ = true;
    }
    return false;
  }

  void Bool(const char* name, bool* out) {
    if (failed_) return;
    const json* v = Get(name);
    if (v == nullptr) return;
    if (!v->is_boolean()) {
      Fail(absl::StrCat("'", name, "' must be a boolean"), name);
      return;
    }
    *out = v->get<bool>();
  }

  void String(const char* name, std::string* out) {
    if (failed_) return;
    const json* v = Get(name);
    if (v == nullptr) return;
    if (!v->is_string()) {
      Fail(absl::StrCat("'", name, "' must be a string"), name);
      return;
    }
    *out = v->get<std::string>();
  }

  // A number in [lo, hi]; true when present and valid.
  bool Number(const char* name, double lo, double hi, float* out) {
    if (failed_) return false;
    const json* v = Get(name);
    if (v == nullptr) return false;
    if (!v->is_number()) {
      return Fail(absl::StrCat("'", name, "' must be a number"), name);
    }
    const double d = v->get<double>();
    if (!(d >= lo && d <= hi)) {
      return Fail(absl::StrFormat("'%s' must be between %g and %g, got %g", name, lo, hi, d), name);
    }
    *out = static_cast<float>(d);
    return true;
  }

  // An integer (whole floats accepted) in [lo, hi]; true when present and valid.
  bool Integer(const char* name, int64_t lo, int64_t hi, int64_t* out, const char* range_hint = nullptr) {
    if (failed_) return false;
    const json* v = Get(name);
    if (v == nullptr) return false;
    int64_t value = 0;
    if (!ToInteger(*v, &value)) {
      return Fail(absl::StrCat("'", name, "' must be an integer"), name);
    }
    if (value < lo || value > hi) {
      if (range_hint != nullptr) return Fail(absl::StrCat("'", name, "' ", range_hint, ", got ", value), name);
      return Fail(absl::StrCat("'", name, "' must be between ", lo, " and ", hi, ", got ", value), name);
    }
    *out = value;
    return true;
  }

  // Integers beyond int64 are clamped to its ends (then rejected by range
  // checks); fractional or non-numbers are false.
  static bool ToInteger(const json& v, int64_t* out) {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      *out = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
      return true;
    }
    if (v.is_number_integer()) {
      *out = v.get<int64_t>();
      return true;
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d)) return false;
      if (d >= 9.2e18) {
        *out = INT64_MAX;
      } else if (d <= -9.2e18) {
        *out = INT64_MIN;
      } else {
        *out = static_cast<int64_t>(d);
      }
      return true;
    }
    return false;
  }

 private:
  const json& obj_;
  ApiError* error_;
  bool failed_ = false;
};

bool ParseMessages(const json& messages, Reader* r, ApiRequest* out) {
  if (!messages.is_array()) return r->Fail("'messages' must be an array of message objects", "messages");
  if (messages.empty()) return r->Fail("'messages' must contain at least one message", "messages");
  out->messages.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string param = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return r->Fail(absl::StrCat(param, " must be an object"), param);
    auto role_it = m.find("role");
    if (role_it == m.end() || role_it->is_null()) {
      return r->Fail(absl::StrCat(param, " has no 'role'"), param + ".role");
    }
    if (!role_it->is_string()) return r->Fail(absl::StrCat(param, ".role must be a string"), param + ".role");
    std::string role = role_it->get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      return r->Fail(absl::StrCat(param, ".role '", role,
                                  "' is not one of 'system', 'developer', 'user', 'assistant', 'tool'"),
                     param + ".role");
    }
    ChatMessage msg;
    msg.role = std::move(role);
    auto content_it = m.find("content");
    if (content_it == m.end() || (content_it->is_null() && msg.role != "assistant")) {
      return r->Fail(absl::StrCat(param, " has no 'content'"), param + ".content");
    }
    const json& content = *content_it;
    if (content.is_string()) {
      msg.content = content.get<std::string>();
    } else if (content.is_array()) {
      // Content parts: only text ones; joined with newlines as vLLM does.
      for (size_t k = 0; k < content.size(); ++k) {
        const json& part = content[k];
        const std::string pp = absl::StrCat(param, ".content[", k, "]");
        if (!part.is_object()) return r->Fail(pp + " must be an object", pp);
        auto type = part.find("type");
        if (type == part.end() || !type->is_string()) return r->Fail(pp + " has no string 'type'", pp + ".type");
        if (*type != "text") {
          return r->Fail(absl::StrCat(pp, ": content parts of type '", type->get<std::string>(),
                                      "' are not supported (only 'text')"),
                         pp + ".type");
        }
        auto text = part.find("text");
        if (text == part.end() || !text->is_string()) return r->Fail(pp + " has no string 'text'", pp + ".text");
        if (k > 0) msg.content += '\n';
        msg.content += text->get<std::string>();
      }
    } else if (!content.is_null()) {
      return r->Fail(absl::StrCat(param, ".content must be a string or an array of content parts"),
                     param + ".content");
    }
    out->messages.push_back(std::move(msg));
  }
  return true;
}

bool ParsePrompt(const json& prompt, const RequestLimits& limits, Reader* r, ApiRequest* out) {
  if (prompt.is_string()) {
    out->prompt_text = prompt.get<std::string>();
    return true;
  }
  if (!prompt.is_array()) {
    return r->Fail("'prompt' must be a string, an array of one string or an array of token ids", "prompt");
  }
  if (prompt.empty()) return r->Fail("'prompt' must not be an empty array", "prompt");
  if (prompt[0].is_string()) {
    if (prompt.size() != 1) return r->Fail("'prompt' with several prompts is not supported; send one per request", "prompt");
    out->prompt_text = prompt[0].get<std::string>();
    return true;
  }
  // [[ids]]: one tokenized prompt in a batch of one.
  const json* ids = &prompt;
  if (prompt[0].is_array()) {
    if (prompt.size() != 1) return r->Fail("'prompt' with several prompts is not supported; send one per request", "prompt");
    ids = &prompt[0];
    if (ids->empty()) return r->Fail("'prompt' must not be an empty array", "prompt");
  }
  out->prompt_is_tokens = true;
  out->prompt_tokens.reserve(ids->size());
  for (const json& v : *ids) {
    int64_t id = 0;
    if (!Reader::ToInteger(v, &id)) {
      return r->Fail("'prompt' must be a string, an array of one string or an array of token ids", "prompt");
    }
    if (id < 0 || (limits.n_vocab > 0 && id >= limits.n_vocab)) {
      return r->Fail(absl::StrCat("'prompt' has token id ", id, " outside the vocabulary [0, ",
                                  limits.n_vocab, ")"),
                     "prompt");
    }
    out->prompt_tokens.push_back(static_cast<int32_t>(id));
  }
  return true;
}

bool ParseStop(const json& stop, Reader* r, ApiRequest* out) {
  if (stop.is_string()) {
    if (!stop.get_ref<const std::string&>().empty()) out->stop.push_back(stop.get<std::string>());
    return true;
  }
  if (!stop.is_array()) return r->Fail("'stop' must be a string or an array of strings", "stop");
  if (stop.size() > kMaxStop) {
    return r->Fail(absl::StrCat("'stop' has ", stop.size(), " strings; at most ", kMaxStop, " are supported"), "stop");
  }
  for (const json& s : stop) {
    if (!s.is_string()) return r->Fail("'stop' must be a string or an array of strings", "stop");
    if (!s.get_ref<const std::string&>().empty()) out->stop.push_back(s.get<std::string>());
  }
  return true;
}

bool ParseLogitBias(const json& bias, const RequestLimits& limits, Reader* r, ApiRequest* out) {
  if (!bias.is_object()) return r->Fail("'logit_bias' must be an object mapping token ids to numbers", "logit_bias");
  for (auto it = bias.begin(); it != bias.end(); ++it) {
    const std::string& key = it.key();
    int64_t id = 0;
    bool ok = !key.empty() && key.size() <= 10;
    for (char c : key) ok = ok && c >= '0' && c <= '9';
    if (ok) id = std::stoll(key);
    if (!ok || (limits.n_vocab > 0 && id >= limits.n_vocab)) {
      return r->Fail(absl::StrCat("'logit_bias' key '", key, "' is not a token id in [0, ", limits.n_vocab, ")"),
                     "logit_bias");
    }
    if (!it->is_number()) return r->Fail("'logit_bias' values must be numbers", "logit_bias");
    const double v = it->get<double>();
    if (!(v >= -100 && v <= 100)) {
      return r->Fail(absl::StrFormat("'logit_bias' values must be between -100 and 100, got %g", v), "logit_bias");
    }
    out->logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(v));
  }
  std::sort(out->logit_bias.begin(), out->logit_bias.end());
  return true;
}

}  // namespace

ApiError BadRequest(std::string message, std::string param) {
  ApiError e;
  e.http_status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

std::string ErrorTypeForStatus(int s) {
  switch (s) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 500: return "api_error";
    default: return s >= 500 ? "server_error" : "invalid_request_error";
  }
}

nlohmann::json ErrorObject(const ApiError& e) {
  json err = {{"message", e.message},
              {"type", e.type.empty() ? ErrorTypeForStatus(e.http_status) : e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return json{{"error", std::move(err)}};
}

std::string ErrorBody(const ApiError& error) { return Dump(ErrorObject(error)); }

namespace {

// Structured output: OpenAI's response_format (json_object, json_schema),
// llama.cpp's `grammar` / `json_schema` and vLLM's `guided_json` /
// `guided_grammar`, compiled to out->grammar. At most one may be given.
bool ParseStructuredOutput(Reader* r, std::string_view body, ApiRequest* out) {
  std::string gbnf, source;  // the grammar text and where it came from
  auto take = [&](std::string text, const char* from) {
    if (!source.empty()) {
      return r->Fail(absl::StrCat("give one of response_format, grammar, json_schema, guided_json and "
                                  "guided_grammar, not both '", source, "' and '", from, "'"),
                     from);
    }
    gbnf = std::move(text);
    source = from;
    return true;
  };
  // `s` is the schema at `path` in the body. The body is read again with
  // its key order kept (json sorts keys), so the output's properties come in
  // the schema's order.
  auto schema = [&](const json& s, const char* from, std::initializer_list<const char*> path) {
    if (!s.is_object() && !s.is_boolean() && !s.is_string()) {
      return r->Fail(absl::StrCat("'", from, "' must be a JSON Schema object"), from);
    }
    nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(body, nullptr, false);
    bool found = true;
    for (const char* key : path) {
      found = found && ordered.is_object() && ordered.contains(key);
      if (!found) break;
      nlohmann::ordered_json next = std::move(ordered[key]);
      ordered = std::move(next);
    }
    absl::StatusOr<std::string> g = s.is_string() ? grammar::JsonSchemaToGbnf(s.get<std::string>())
                                    : found       ? grammar::JsonSchemaToGbnf(ordered)
                                                  : grammar::JsonSchemaToGbnf(s);
    if (!g.ok()) return r->Fail(absl::StrCat("'", from, "': ", g.status().message()), from);
    return take(std::move(*g), from);
  };
  if (const json* rf = r->Get("response_format"); rf != nullptr && !r->failed()) {
    if (!rf->is_object()) return r->Fail("'response_format' must be an object", "response_format");
    auto type = rf->find("type");
    if (type == rf->end() || !type->is_string()) {
      return r->Fail("'response_format' needs a string 'type'", "response_format");
    }
    const std::string& t = type->get_ref<const std::string&>();
    if (t == "json_object") {
      if (!take(grammar::JsonObjectGbnf(), "response_format")) return false;
    } else if (t == "json_schema") {
      auto js = rf->find("json_schema");
      if (js == rf->end() || !js->is_object() || !js->contains("schema")) {
        return r->Fail("'response_format' of type 'json_schema' needs 'json_schema': {\"name\": ..., \"schema\": {...}}",
                       "response_format");
      }
      if (!schema((*js)["schema"], "response_format", {"response_format", "json_schema", "schema"})) return false;
    } else if (t != "text") {
      return r->Fail(absl::StrCat("'response_format' type '", t, "' is unknown"), "response_format");
    }
  }
  for (const char* name : {"json_schema", "guided_json"}) {
    if (const json* s = r->Get(name); s != nullptr && !r->failed() && !schema(*s, name, {name})) return false;
  }
  for (const char* name : {"grammar", "guided_grammar"}) {
    if (const json* g = r->Get(name); g != nullptr && !r->failed()) {
      if (!g->is_string()) return r->Fail(absl::StrCat("'", name, "' must be a GBNF grammar string"), name);
      if (!take(g->get<std::string>(), name)) return false;
    }
  }
  if (r->failed() || source.empty()) return !r->failed();
  absl::StatusOr<std::shared_ptr<const grammar::Grammar>> g = grammar::ParseGbnf(gbnf);
  if (!g.ok()) return r->Fail(absl::StrCat("'", source, "': ", g.status().message()), source);
  out->grammar = std::move(*g);
  return true;
}

}  // namespace

bool ParseRequest(Endpoint endpoint, std::string_view body, const RequestLimits& limits,
                  ApiRequest* out, ApiError* error) {
  *out = ApiRequest{};
  out->endpoint = endpoint;
  if (JsonDepth(body, limits.max_json_depth) > limits.max_json_depth) {
    *error = BadRequest(absl::StrCat("the request body nests JSON deeper than ", limits.max_json_depth, " levels"));
    return false;
  }
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    *error = BadRequest(absl::StrCat("the request body is not valid JSON: ", e.what()));
    return false;
  }
  if (!doc.is_object()) {
    *error = BadRequest("the request body must be a JSON object");
    return false;
  }
  try {
    Reader r(doc, error);
    r.String("model", &out->model);
    if (endpoint == Endpoint::kChatCompletions) {
      const json* messages = r.Get("messages");
      if (messages == nullptr) return r.Fail("'messages' is required", "messages");
      if (!ParseMessages(*messages, &r, out)) return false;
      if (const json* kw = r.Get("chat_template_kwargs"); kw != nullptr) {
        if (!kw->is_object()) return r.Fail("'chat_template_kwargs' must be an object", "chat_template_kwargs");
        auto it = kw->find("enable_thinking");
        if (it != kw->end() && !it->is_null()) {
          if (!it->is_boolean()) {
            return r.Fail("'chat_template_kwargs.enable_thinking' must be a boolean", "chat_template_kwargs");
          }
          out->enable_thinking = it->get<bool>() ? 1 : 0;
        }
      }
    } else {
      const json* prompt = r.Get("prompt");
      if (prompt == nullptr) return r.Fail("'prompt' is required", "prompt");
      if (!ParsePrompt(*prompt, limits, &r, out)) return false;
      bool echo = false;
      r.Bool("echo", &echo);
      if (echo) return r.Fail("'echo' is not supported", "echo");
      if (const json* suffix = r.Get("suffix"); suffix != nullptr) {
        if (!suffix->is_string()) return r.Fail("'suffix' must be a string", "suffix");
        if (!suffix->get_ref<const std::string&>().empty()) return r.Fail("'suffix' is not supported", "suffix");
      }
    }

    r.Bool("stream", &out->stream);
    if (const json* so = r.Get("stream_options"); so != nullptr) {
      if (!so->is_object()) return r.Fail("'stream_options' must be an object", "stream_options");
      Reader sr(*so, error);
      sr.Bool("include_usage", &out->include_usage);
      if (sr.failed()) {
        error->param = "stream_options.include_usage";
        return false;
      }
    }

    // max_tokens (deprecated in chat) and max_completion_tokens: the latter wins.
    const int64_t ctx_max = limits.n_ctx > 0 ? limits.n_ctx : INT32_MAX;
    const std::string over =
        limits.n_ctx > 0 ? absl::StrCat("must be at least 1 and at most the context length ", limits.n_ctx)
                         : std::string("must be at least 1");
    int64_t v = 0;
    if (r.Integer("max_tokens", 1, ctx_max, &v, over.c_str())) out->max_tokens = static_cast<int32_t>(v);
    if (r.Integer("max_completion_tokens", 1, ctx_max, &v, over.c_str())) out->max_tokens = static_cast<int32_t>(v);

    r.Number("temperature", 0.0, 2.0, &out->temperature);
    float top_p = 1.0f;
    if (r.Number("top_p", 0.0, 1.0, &top_p)) {
      if (top_p <= 0.0f) return r.Fail("'top_p' must be greater than 0 and at most 1", "top_p");
      out->top_p = top_p;
    }
    if (r.Integer("top_k", -1, INT32_MAX, &v)) out->top_k = static_cast<int32_t>(v);
    r.Number("min_p", 0.0, 1.0, &out->min_p);
    float rp = 1.0f;
    if (r.Number("repetition_penalty", 0.0, 10.0, &rp) || r.Number("repeat_penalty", 0.0, 10.0, &rp)) {
      if (rp <= 0.0f) return r.Fail("the repetition penalty must be greater than 0", "repetition_penalty");
      out->repetition_penalty = rp;
    }
    r.Number("presence_penalty", -2.0, 2.0, &out->presence_penalty);
    r.Number("frequency_penalty", -2.0, 2.0, &out->frequency_penalty);
    if (r.Integer("seed", INT64_MIN, INT64_MAX, &v)) out->seed = static_cast<uint64_t>(v);
    if (const json* stop = r.Get("stop"); stop != nullptr && !r.failed()) {
      if (!ParseStop(*stop, &r, out)) return false;
    }
    if (r.Integer("n", 1, kMaxN, &v)) out->n = static_cast<int32_t>(v);
    if (const json* best_of = r.Get("best_of"); best_of != nullptr && !r.failed()) {
      int64_t b = 0;
      if (!Reader::ToInteger(*best_of, &b) || b != out->n) {
        return r.Fail("'best_of' is not supported (it must equal n when given)", "best_of");
      }
    }

    if (endpoint == Endpoint::kCompletions) {
      if (const json* lp = r.Get("logprobs"); lp != nullptr && !r.failed()) {
        if (lp->is_boolean()) return r.Fail("'logprobs' must be an integer between 0 and 20", "logprobs");
        if (r.Integer("logprobs", 0, kMaxLogprobs, &v)) out->logprobs = static_cast<int32_t>(v);
      }
    } else {
      bool logprobs = false;
      r.Bool("logprobs", &logprobs);
      int64_t top = 0;
      const bool has_top = r.Integer("top_logprobs", 0, kMaxLogprobs, &top);
      if (has_top && !logprobs && !r.failed()) {
        return r.Fail("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
      }
      if (logprobs) out->logprobs = static_cast<int32_t>(top);
    }

    if (const json* bias = r.Get("logit_bias"); bias != nullptr && !r.failed()) {
      if (!ParseLogitBias(*bias, limits, &r, out)) return false;
    }
    r.Bool("ignore_eos", &out->ignore_eos);
    r.String("user", &out->user);
    r.Bool("return_token_ids", &out->return_token_ids);

    if (!ParseStructuredOutput(&r, body, out)) return false;
    if (const json* tools = r.Get("tools"); tools != nullptr && !r.failed()) {
      if (!tools->is_array()) return r.Fail("'tools' must be an array", "tools");
      if (!tools->empty()) return r.Fail("'tools' (function calling) is not supported yet", "tools");
    }
    return !r.failed();
  } catch (const json::exception& e) {
    // Defensive: every access above is type-checked first.
    *error = BadRequest(absl::StrCat("invalid request: ", e.what()));
    return false;
  }
}

SamplingParams ToSamplingParams(const ApiRequest& req, uint64_t seed) {
  SamplingParams p;
  p.temperature = req.temperature;
  p.top_k = req.top_k;
  p.top_p = req.top_p;
  p.min_p = req.min_p;
  p.repeat_penalty = req.repetition_penalty;
  p.presence_penalty = req.presence_penalty;
  p.frequency_penalty = req.frequency_penalty;
  p.seed = seed;
  p.logit_bias = req.logit_bias;
  p.grammar = req.grammar;
  return p;
}

const char* FinishReasonString(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    default: return nullptr;
  }
}

std::string NewId(std::string_view prefix) {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id += kAlnum[rng() % (sizeof(kAlnum) - 1)];
  return id;
}

// ---- builders ----
namespace {

json MetaObject(const ResponseMeta& meta, const char* object) {
  json j = {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
  if (!meta.system_fingerprint.empty()) j["system_fingerprint"] = meta.system_fingerprint;
  return j;
}

json FinishJson(FinishReason reason) {
  const char* s = FinishReasonString(reason);
  return s == nullptr ? json(nullptr) : json(s);
}

json Bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json ChatLogprobs(const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const TokenLogprob& t : lps) {
    json top = json::array();
    for (const auto& [tok, lp] : t.top) {
      top.push_back({{"token", tok}, {"logprob", lp}, {"bytes", Bytes(tok)}});
    }
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", Bytes(t.token)}, {"top_logprobs", top}});
  }
  return json{{"content", std::move(content)}};
}

json CompletionLogprobs(const std::vector<TokenLogprob>& lps, size_t text_offset) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  for (const TokenLogprob& t : lps) {
    tokens.push_back(t.token);
    token_logprobs.push_back(t.logprob);
    json alt = json::object();
    // Two alternatives can render to the same (invalid UTF-8) text: keep the first.
    for (const auto& [tok, lp] : t.top) alt.emplace(tok, lp);
    top.push_back(std::move(alt));
    offsets.push_back(text_offset);
    text_offset += t.token.size();
  }
  return json{{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

}  // namespace

nlohmann::json UsageObject(const Usage& u) {
  return json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

nlohmann::json ChatCompletion(const ResponseMeta& meta, const std::vector<Choice>& choices, const Usage& usage) {
  json j = MetaObject(meta, "chat.completion");
  json arr = json::array();
  for (const Choice& c : choices) {
    json ch = {{"index", c.index},
               {"message", {{"role", "assistant"}, {"content", c.text}}},
               {"logprobs", c.with_logprobs ? ChatLogprobs(c.logprobs) : json(nullptr)},
               {"finish_reason", FinishJson(c.finish_reason)}};
    if (c.with_token_ids) ch["token_ids"] = c.token_ids;
    arr.push_back(std::move(ch));
  }
  j["choices"] = std::move(arr);
  j["usage"] = UsageObject(usage);
  return j;
}

nlohmann::json TextCompletion(const ResponseMeta& meta, const std::vector<Choice>& choices, const Usage& usage) {
  json j = MetaObject(meta, "text_completion");
  json arr = json::array();
  for (const Choice& c : choices) {
    json ch = {{"index", c.index},
               {"text", c.text},
               {"logprobs", c.with_logprobs ? CompletionLogprobs(c.logprobs, 0) : json(nullptr)},
               {"finish_reason", FinishJson(c.finish_reason)}};
    if (c.with_token_ids) ch["token_ids"] = c.token_ids;
    arr.push_back(std::move(ch));
  }
  j["choices"] = std::move(arr);
  j["usage"] = UsageObject(usage);
  return j;
}

nlohmann::json ChatRoleChunk(const ResponseMeta& meta, int index) {
  json j = MetaObject(meta, "chat.completion.chunk");
  j["choices"] = json::array(
      {{{"index", index}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  return j;
}

nlohmann::json ChatChunk(const ResponseMeta& meta, const Choice& d) {
  json j = MetaObject(meta, "chat.completion.chunk");
  json delta = json::object();
  if (d.finish_reason == FinishReason::kNone || !d.text.empty()) delta["content"] = d.text;
  json ch = {{"index", d.index},
             {"delta", std::move(delta)},
             {"logprobs", d.with_logprobs ? ChatLogprobs(d.logprobs) : json(nullptr)},
             {"finish_reason", FinishJson(d.finish_reason)}};
  if (d.with_token_ids) ch["token_ids"] = d.token_ids;
  j["choices"] = json::array({std::move(ch)});
  return j;
}

nlohmann::json TextCompletionChunk(const ResponseMeta& meta, const Choice& d) {
  json j = MetaObject(meta, "text_completion");
  json ch = {{"index", d.index},
             {"text", d.text},
             {"logprobs", d.with_logprobs ? CompletionLogprobs(d.logprobs, d.text_offset) : json(nullptr)},
             {"finish_reason", FinishJson(d.finish_reason)}};
  if (d.with_token_ids) ch["token_ids"] = d.token_ids;
  j["choices"] = json::array({std::move(ch)});
  return j;
}

nlohmann::json UsageChunk(const ResponseMeta& meta, Endpoint endpoint, const Usage& usage) {
  json j = MetaObject(meta, endpoint == Endpoint::kChatCompletions ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = UsageObject(usage);
  return j;
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string SseEvent(const nlohmann::json& j) { return absl::StrCat("data: ", Dump(j), "\n\n"); }

}  // namespace yuan::openai
