#include "runtime/remote/openai_json.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status.h"

namespace yuan::remote {
namespace {

using Json = nlohmann::json;

// Type-checked accessors: a field of the wrong type reads as absent, never
// throws and never casts out of range.
const Json* Field(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

bool ReadInt(const Json* j, int64_t* out) {
  if (j == nullptr) return false;
  if (j->is_number_unsigned()) {
    const uint64_t v = j->get<uint64_t>();
    *out = v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(v);
    return true;
  }
  if (j->is_number_integer()) {
    *out = j->get<int64_t>();
    return true;
  }
  if (j->is_number_float()) {
    const double d = j->get<double>();
    if (!std::isfinite(d) || d < -9.2e18 || d > 9.2e18) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

int64_t IntOr(const Json* j, int64_t fallback) {
  int64_t v = fallback;
  return ReadInt(j, &v) ? v : fallback;
}

std::string StringOr(const Json* j, std::string fallback = "") {
  return j != nullptr && j->is_string() ? j->get<std::string>() : fallback;
}

std::string Shorten(std::string_view s, size_t n = 300) {
  std::string out(s.substr(0, n));
  if (s.size() > n) out += "...";
  return out;
}

absl::StatusCode CodeForHttp(int64_t http) {
  switch (http) {
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 413:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      break;
  }
  if (http >= 500 && http <= 599) return absl::StatusCode::kUnavailable;
  if (http >= 400 && http <= 499) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kUnknown;
}

// A context-length error, however the server spells it, is OUT_OF_RANGE,
// as the local runtime reports a prompt that does not fit.
bool IsContextLengthError(std::string_view type, std::string_view code, std::string_view message) {
  return type == "exceed_context_size_error" || code == "context_length_exceeded" ||
         absl::StrContains(absl::AsciiStrToLower(absl::string_view(message.data(), message.size())),
                           "maximum context length");
}

// The error object of an OpenAI error body ({"error": {...}}), vLLM's
// older flat form ({"object": "error", "message": ...}) and FastAPI's
// ({"detail": ...}): the message, the type/code strings and a numeric code.
struct ErrorInfo {
  std::string message, type, code;
  int64_t numeric_code = 0;
  bool found = false;
};

ErrorInfo ReadError(const Json& j) {
  ErrorInfo e;
  const Json* err = Field(j, "error");
  const Json* src = nullptr;
  if (err != nullptr && err->is_object()) {
    src = err;
  } else if (err != nullptr && err->is_string()) {
    e.message = err->get<std::string>();
    e.found = true;
    return e;
  } else if (StringOr(Field(j, "object")) == "error") {
    src = &j;
  } else if (const Json* detail = Field(j, "detail"); detail != nullptr) {
    e.message = detail->is_string() ? detail->get<std::string>() : Shorten(detail->dump());
    e.found = true;
    return e;
  }
  if (src == nullptr) return e;
  e.found = true;
  e.message = StringOr(Field(*src, "message"));
  e.type = StringOr(Field(*src, "type"));
  const Json* code = Field(*src, "code");
  if (code != nullptr && code->is_string()) {
    e.code = code->get<std::string>();
  } else {
    ReadInt(code, &e.numeric_code);
  }
  return e;
}

Json ParseJson(std::string_view text) {
  return Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

}  // namespace

const char* ServerKindName(ServerKind kind) {
  switch (kind) {
    case ServerKind::kYuan: return "yuan";
    case ServerKind::kVllm: return "vllm";
    case ServerKind::kLlamaCpp: return "llama.cpp";
    case ServerKind::kOpenAi: return "openai";
    case ServerKind::kUnknown: break;
  }
  return "unknown";
}

absl::StatusOr<std::vector<RemoteModel>> ParseModelList(std::string_view body) try {
  const Json j = ParseJson(body);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(
        absl::StrCat("GET /v1/models: the response is not a JSON object: ", Shorten(body)));
  }
  const Json* data = Field(j, "data");
  if (data == nullptr || !data->is_array()) {
    return absl::DataLossError("GET /v1/models: the response has no \"data\" array");
  }
  std::vector<RemoteModel> out;
  for (const Json& m : *data) {
    RemoteModel r;
    r.id = StringOr(Field(m, "id"));
    if (r.id.empty()) continue;
    r.owned_by = StringOr(Field(m, "owned_by"));
    r.max_model_len = IntOr(Field(m, "max_model_len"), 0);
    if (const Json* meta = Field(m, "meta"); meta != nullptr) {
      r.n_ctx_train = IntOr(Field(*meta, "n_ctx_train"), 0);
      r.n_vocab = IntOr(Field(*meta, "n_vocab"), 0);
      r.n_embd = IntOr(Field(*meta, "n_embd"), 0);
      r.n_params = IntOr(Field(*meta, "n_params"), 0);
      r.size = IntOr(Field(*meta, "size"), 0);
    }
    out.push_back(std::move(r));
  }
  return out;
} catch (const std::exception& e) {
  return absl::DataLossError(absl::StrCat("GET /v1/models: malformed response: ", e.what()));
}

ServerKind DetectServerKind(std::string_view base_url, const std::vector<RemoteModel>& models) {
  // The host part of scheme://host[:port]/...
  std::string_view host = base_url;
  if (size_t p = host.find("://"); p != std::string_view::npos) host.remove_prefix(p + 3);
  host = host.substr(0, host.find('/'));
  if (size_t at = host.rfind('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
  host = host.substr(0, host.find(':'));
  if (host == "api.openai.com") return ServerKind::kOpenAi;
  for (const RemoteModel& m : models) {
    if (m.owned_by == "yuan") return ServerKind::kYuan;
    if (m.owned_by == "vllm") return ServerKind::kVllm;
    if (m.owned_by == "llamacpp") return ServerKind::kLlamaCpp;
    if (m.owned_by == "openai" || m.owned_by == "system" || m.owned_by == "openai-internal") {
      return ServerKind::kOpenAi;
    }
  }
  return ServerKind::kUnknown;
}

absl::StatusOr<CompletionChunk> ParseCompletionChunk(std::string_view json) try {
  const Json j = ParseJson(json);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(
        absl::StrCat("malformed JSON from the server: ", Sv(Shorten(json))));
  }
  if (const Json* err = Field(j, "error"); err != nullptr && !err->is_null()) {
    const ErrorInfo e = ReadError(j);
    absl::StatusCode code = e.numeric_code != 0 ? CodeForHttp(e.numeric_code)
                                                : absl::StatusCode::kUnavailable;
    if (e.type == "invalid_request_error") code = absl::StatusCode::kInvalidArgument;
    if (IsContextLengthError(e.type, e.code, e.message)) code = absl::StatusCode::kOutOfRange;
    return absl::Status(code, absl::StrCat("the server reported an error: ",
                                           e.message.empty() ? Shorten(err->dump()) : e.message));
  }
  CompletionChunk c;
  if (const Json* usage = Field(j, "usage"); usage != nullptr && usage->is_object()) {
    c.has_usage = true;
    c.prompt_tokens = IntOr(Field(*usage, "prompt_tokens"), 0);
    c.completion_tokens = IntOr(Field(*usage, "completion_tokens"), 0);
    if (const Json* d = Field(*usage, "prompt_tokens_details"); d != nullptr) {
      c.cached_tokens = IntOr(Field(*d, "cached_tokens"), 0);
    }
  }
  const Json* choices = Field(j, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty()) return c;
  const Json* choice = nullptr;
  for (const Json& ch : *choices) {
    if (IntOr(Field(ch, "index"), 0) == 0) {
      choice = &ch;
      break;
    }
  }
  if (choice == nullptr || !choice->is_object()) return c;
  c.has_choice = true;
  if (const Json* text = Field(*choice, "text"); text != nullptr && text->is_string()) {
    c.text = text->get<std::string>();
  } else {
    const Json* msg = Field(*choice, "delta");
    if (msg == nullptr) msg = Field(*choice, "message");
    if (msg != nullptr) c.text = StringOr(Field(*msg, "content"));
  }
  c.finish_reason = StringOr(Field(*choice, "finish_reason"));
  if (const Json* ids = Field(*choice, "token_ids"); ids != nullptr && ids->is_array()) {
    for (const Json& id : *ids) {
      int64_t v = 0;
      if (!ReadInt(&id, &v) || v < 0 || v > std::numeric_limits<int32_t>::max()) {
        return absl::DataLossError("malformed token_ids from the server");
      }
      c.token_ids.push_back(static_cast<int32_t>(v));
    }
  }
  return c;
} catch (const std::exception& e) {
  return absl::DataLossError(absl::StrCat("malformed response from the server: ", e.what()));
}

absl::Status StatusFromHttpError(long http_status, std::string_view body,
                                 std::string_view context) {
  absl::StatusCode code = CodeForHttp(http_status);
  std::string message;
  try {
    const Json j = ParseJson(body);
    if (!j.is_discarded()) {
      const ErrorInfo e = ReadError(j);
      if (e.found) {
        message = e.message;
        if (IsContextLengthError(e.type, e.code, e.message)) code = absl::StatusCode::kOutOfRange;
      }
    }
  } catch (const std::exception&) {
    // fall back to the raw body below
  }
  if (message.empty()) {
    message = std::string(
        absl::StripAsciiWhitespace(absl::string_view(body.data(), body.size()).substr(0, 300)));
    if (message.empty()) message = "(empty body)";
  }
  return absl::Status(code, absl::StrCat(Sv(context), ": HTTP ", http_status, ": ", message));
}

}  // namespace yuan::remote
