#include "sdk/src/api_guard.h"

#include "runtime/core/status.h"

namespace yuan::api {
namespace {
thread_local std::string t_last_error;
}  // namespace

const char* LastError() { return t_last_error.c_str(); }

yuan_status ToYuanStatus(const absl::Status& status) {
  if (status.ok()) return YUAN_OK;
  if (IsFormatError(status)) return YUAN_ERR_FORMAT;
  const int code = static_cast<int>(status.code());
  if (code >= 1 && code <= 16) return static_cast<yuan_status>(code);
  return YUAN_ERR_UNKNOWN;
}

yuan_status Fail(const absl::Status& status) {
  return Fail(ToYuanStatus(status), std::string(status.message()));
}

yuan_status Fail(yuan_status code, std::string message) {
  t_last_error = std::move(message);
  return code;
}

yuan_status Ok() {
  t_last_error.clear();
  return YUAN_OK;
}

yuan_status CopyText(const std::string& text, char* buffer, size_t capacity, size_t* needed) {
  if (needed == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "needed is NULL");
  *needed = text.size();
  if (buffer == nullptr || capacity <= text.size()) {
    return Fail(YUAN_ERR_BUFFER_TOO_SMALL, "buffer of " + std::to_string(capacity) +
                                               " bytes cannot hold " + std::to_string(text.size() + 1));
  }
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  return Ok();
}

}  // namespace yuan::api
