// Non-blocking generation for frame loops: yuan_session_submit runs the
// blocking generate on its own thread; the caller polls for text.
#include "sdk/src/handles.h"

using yuan::api::Fail;
using yuan::api::Ok;

namespace {

// Length of the longest prefix of `s` no longer than `cap` that ends on a
// UTF-8 character boundary (`s` is valid UTF-8).
size_t Utf8Prefix(const std::string& s, size_t cap) {
  if (cap >= s.size()) return s.size();
  size_t n = cap;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

#define YUAN_CHECK_REQUEST(r)                                                               \
  if (!yuan::api::Requests().Contains(r)) {                                                 \
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "request is NULL or not a live request handle"); \
  }

}  // namespace

extern "C" {

yuan_status yuan_session_submit(yuan_session* session, const char* prompt,
                                const yuan_generate_options* options, yuan_request** out_request) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (out_request == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "out_request is NULL");
  yuan_generate_options o;
  yuan::GenerateRequest gen;
  if (yuan_status st = yuan::api::BuildRequest(prompt, options, &o, &gen); st != YUAN_OK) return st;
  auto* req = new yuan_request();
  yuan::api::BusyGuard guard(session->state.get());
  if (!guard.acquired()) {
    delete req;
    return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  }
  // Read now: the caller's adapter array need not outlive this call.
  if (yuan_status st = yuan::api::UseAdapters(&o, session->state.get()); st != YUAN_OK) {
    delete req;
    return st;
  }
  req->session = session->state;
  gen.on_token = [req](std::string_view text, int32_t, int32_t) {
    std::lock_guard<std::mutex> lock(req->mu);
    req->unread.append(text);
    return !req->cancel.load() && !req->session->closed.load();
  };
  // A cancel that lands between the worker's check below and the start of
  // Generate is seen through this flag (Cancel only stops a running call).
  gen.cancel = &req->cancel;
  guard.Release();  // the worker releases the session when it finishes
  req->worker = std::thread([req, gen = std::move(gen)]() {
    yuan::GenerateResult result;
    absl::Status st = absl::OkStatus();
    if (req->cancel.load() || req->session->closed.load()) {
      result.finish_reason = yuan::FinishReason::kCancelled;  // cancelled before it began
    } else {
      st = req->session->impl->Generate(gen, &result);
    }
    req->session->busy.store(false);
    std::lock_guard<std::mutex> lock(req->mu);
    req->status = yuan::api::ToYuanStatus(st);
    req->error = std::string(st.message());
    req->result = std::move(result);
    req->finished = true;
    req->finished_cv.notify_all();
  });
  yuan::api::Requests().Add(req);
  *out_request = req;
  return Ok();
  YUAN_API_END
}

yuan_status yuan_request_poll(yuan_request* request, char* buffer, size_t capacity,
                              size_t* n_written, int* done) {
  YUAN_API_BEGIN
  YUAN_CHECK_REQUEST(request);
  if (n_written == nullptr || done == nullptr) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "n_written or done is NULL");
  }
  if (buffer == nullptr && capacity > 0) return Fail(YUAN_ERR_INVALID_ARGUMENT, "buffer is NULL");
  std::lock_guard<std::mutex> lock(request->mu);
  const size_t n = buffer == nullptr ? 0 : Utf8Prefix(request->unread, capacity);
  if (n > 0) std::memcpy(buffer, request->unread.data(), n);
  request->unread.erase(0, n);
  *n_written = n;
  *done = request->finished && request->unread.empty();
  return Ok();
  YUAN_API_END
}

yuan_status yuan_request_wait(yuan_request* request, int32_t timeout_ms) {
  YUAN_API_BEGIN
  YUAN_CHECK_REQUEST(request);
  std::unique_lock<std::mutex> lock(request->mu);
  if (timeout_ms < 0) {
    request->finished_cv.wait(lock, [&] { return request->finished; });
  } else if (!request->finished_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                            [&] { return request->finished; })) {
    return Fail(YUAN_ERR_DEADLINE_EXCEEDED, "the request is still running");
  }
  return Ok();
  YUAN_API_END
}

yuan_status yuan_request_cancel(yuan_request* request) {
  YUAN_API_BEGIN
  YUAN_CHECK_REQUEST(request);
  request->cancel.store(true);
  request->session->impl->Cancel();
  return Ok();
  YUAN_API_END
}

yuan_status yuan_request_result(yuan_request* request, yuan_generate_result* result) {
  YUAN_API_BEGIN
  YUAN_CHECK_REQUEST(request);
  std::lock_guard<std::mutex> lock(request->mu);
  if (!request->finished) return Fail(YUAN_ERR_FAILED_PRECONDITION, "the request is still running");
  if (request->status != YUAN_OK) return Fail(request->status, request->error);
  if (yuan_status st = yuan::api::ExportResult(request->result, result); st != YUAN_OK) return st;
  return Ok();
  YUAN_API_END
}

void yuan_request_free(yuan_request* request) {
  if (request == nullptr) return;
  if (!yuan::api::Requests().Remove(request)) {
    yuan::api::Fail(YUAN_ERR_INVALID_ARGUMENT, "yuan_request_free: not a live request handle");
    return;
  }
  request->cancel.store(true);
  request->session->impl->Cancel();
  if (request->worker.joinable()) request->worker.join();
  delete request;
}

}  // extern "C"
