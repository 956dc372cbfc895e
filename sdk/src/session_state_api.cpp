// yuan_session_save / _load and their file variants.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "sdk/src/handles.h"

using yuan::api::BusyGuard;
using yuan::api::Fail;
using yuan::api::Ok;

namespace {

yuan_status SaveTo(yuan_session* session, std::string* out) {
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  auto state = session->state->impl->SaveState();
  if (!state.ok()) return Fail(state.status());
  *out = std::move(*state);
  return YUAN_OK;
}

yuan_status LoadFrom(yuan_session* session, std::string_view data) {
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  absl::Status st = session->state->impl->LoadState(data);
  if (!st.ok()) return Fail(st);
  return Ok();
}

}  // namespace

extern "C" {

yuan_status yuan_session_save(yuan_session* session, void* buffer, size_t capacity, size_t* needed) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (needed == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "needed is NULL");
  std::string state;
  if (yuan_status st = SaveTo(session, &state); st != YUAN_OK) return st;
  *needed = state.size();
  if (buffer == nullptr || capacity < state.size()) {
    return Fail(YUAN_ERR_BUFFER_TOO_SMALL, "session state needs " + std::to_string(state.size()) +
                                               " bytes; the buffer has " + std::to_string(capacity));
  }
  std::memcpy(buffer, state.data(), state.size());
  return Ok();
  YUAN_API_END
}

yuan_status yuan_session_load(yuan_session* session, const void* data, size_t size) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (data == nullptr && size > 0) return Fail(YUAN_ERR_INVALID_ARGUMENT, "data is NULL");
  return LoadFrom(session, std::string_view(static_cast<const char*>(data), size));
  YUAN_API_END
}

yuan_status yuan_session_save_file(yuan_session* session, const char* path) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (path == nullptr || path[0] == '\0') return Fail(YUAN_ERR_INVALID_ARGUMENT, "path is empty");
  std::string state;
  if (yuan_status st = SaveTo(session, &state); st != YUAN_OK) return st;
  // Write beside the target and rename, so a crash never leaves half a file.
  const std::string tmp = std::string(path) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return Fail(YUAN_ERR_PERMISSION_DENIED, "cannot write '" + tmp + "': " + std::strerror(errno));
  }
  const bool ok = std::fwrite(state.data(), 1, state.size(), f) == state.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return Fail(YUAN_ERR_UNAVAILABLE, "cannot write '" + std::string(path) + "': " + err);
  }
  return Ok();
  YUAN_API_END
}

yuan_status yuan_session_load_file(yuan_session* session, const char* path) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (path == nullptr || path[0] == '\0') return Fail(YUAN_ERR_INVALID_ARGUMENT, "path is empty");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(YUAN_ERR_NOT_FOUND, "cannot open '" + std::string(path) + "'");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return LoadFrom(session, data);
  YUAN_API_END
}

}  // extern "C"
