// The structs behind the opaque C handles.
#pragma once

#include <atomic>
#include <cstddef>
#include <vector>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sdk/src/api_guard.h"
#include "sdk/src/backend.h"
#include "yuan/yuan.h"

struct yuan_engine {
  std::unique_ptr<yuan::api::Backend> backend;
};

// Shared between a yuan_session and any request running on it, so a request
// stays valid whichever of the two is freed first.
struct SessionState {
  std::shared_ptr<yuan::api::BackendSession> impl;
  // yuan_session_set_adapters: what calls without their own adapters use.
  std::vector<yuan::api::AdapterUse> adapters;
  std::atomic<bool> busy{false};    // one call (or request) at a time
  std::atomic<bool> closed{false};  // yuan_session_free was called: requests stop
  int32_t n_vocab = 0;
};

struct yuan_adapter {
  std::shared_ptr<const yuan::api::BackendAdapter> impl;
};

struct yuan_session {
  std::shared_ptr<SessionState> state;
};

struct yuan_request {
  std::shared_ptr<SessionState> session;
  std::thread worker;
  std::mutex mu;
  std::condition_variable finished_cv;
  std::string unread;  // generated text not yet polled (valid UTF-8)
  bool finished = false;
  std::atomic<bool> cancel{false};
  yuan_status status = YUAN_OK;
  std::string error;
  yuan::GenerateResult result;
};

namespace yuan::api {

HandleRegistry<yuan_engine>& Engines();
HandleRegistry<yuan_session>& Sessions();
HandleRegistry<yuan_request>& Requests();
HandleRegistry<yuan_adapter>& Adapters();

// The first yuan_sampling_params field after v1.
constexpr size_t kSamplingParamsV1Size = offsetof(yuan_sampling_params, grammar);
// The first yuan_generate_options field after v1.
constexpr size_t kGenerateOptionsV1Size = offsetof(yuan_generate_options, adapters);

// Checks a caller's adapter choices (live handles, finite scales).
yuan_status ReadAdapterChoices(const yuan_adapter_choice* choices, size_t n,
                               std::vector<AdapterUse>* out);
// Tells the session's backend which adapters the coming call uses: those of
// `options` (already read by BuildRequest; may be NULL) when it names any,
// else the session's. The session must be claimed (BusyGuard).
yuan_status UseAdapters(const yuan_generate_options* options, SessionState* session);

// Claims the session for one call; releases on destruction.
class BusyGuard {
 public:
  explicit BusyGuard(SessionState* s) : s_(s) {
    bool expected = false;
    acquired_ = s_->busy.compare_exchange_strong(expected, true);
  }
  ~BusyGuard() {
    if (acquired_) s_->busy.store(false);
  }
  bool acquired() const { return acquired_; }
  void Release() { acquired_ = false; }  // ownership passed on (requests)

 private:
  SessionState* s_;
  bool acquired_;
};

// Reads the caller's generate options (NULL = defaults; size-checked) into
// *options and converts them, with the prompt, into a runtime request.
yuan_status BuildRequest(const char* prompt, const yuan_generate_options* caller_options,
                         yuan_generate_options* options, GenerateRequest* out);
// Wraps the caller's on_token callback (if any) for the runtime.
void AttachCallback(const yuan_generate_options& options, GenerateRequest* request);
// Converts a result for the caller (allocates text with malloc).
yuan_status ExportResult(const GenerateResult& r, yuan_generate_result* out);

#define YUAN_CHECK_ENGINE(e)                                                             \
  if (!yuan::api::Engines().Contains(e)) {                                               \
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "engine is NULL or not a live engine handle"); \
  }

#define YUAN_CHECK_SESSION(s)                                                               \
  if (!::yuan::api::Sessions().Contains(s)) {                                               \
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "session is NULL or not a live session handle"); \
  }

constexpr const char kSessionBusy[] =
    "the session is in use by another call or a pending request (sessions are one thread at a time)";

}  // namespace yuan::api
