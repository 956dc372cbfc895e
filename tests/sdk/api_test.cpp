// The C API's contract from C++: status mapping, struct_size rules,
// ownership, threading (busy sessions, cancel from another thread), and
// misuse that must return errors.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_support.h"
#include "yuan/yuan.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string SlowModel() {
  // Big enough that one step takes a noticeable time on 1 thread.
  static std::string path =
      yuan::testing::WriteRandomLlamaModel(yuan::testing::SlowModelSpec(), "api-slow.gguf");
  return path;
}

yuan_engine* Open(const std::string& path, int threads = 1) {
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  o.model = path.c_str();
  o.n_threads = threads;
  yuan_engine* e = nullptr;
  REQUIRE(yuan_engine_open(&o, &e) == YUAN_OK);
  return e;
}

yuan_generate_options LongGreedy(yuan_sampling_params* sp, int n) {
  yuan_sampling_params_init(sp);
  sp->temperature = 0;
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = n;
  go.sampling = sp;
  go.flags = YUAN_GENERATE_IGNORE_EOS;
  return go;
}

TEST_CASE("malformed and unsupported models give the right status and a message", "[sdk]") {
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  yuan_engine* e = nullptr;

  const std::string bad = yuan::testing::TempDir() + "/garbage.gguf";
  std::ofstream(bad) << "GGUF\x03\x00\x00\x00 this is not a model";
  o.model = bad.c_str();
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_FORMAT);
  CHECK(std::strlen(yuan_last_error()) > 0);
  CHECK(e == nullptr);

  const std::string not_gguf = yuan::testing::TempDir() + "/text.gguf";
  std::ofstream(not_gguf) << "hello world, definitely not gguf";
  o.model = not_gguf.c_str();
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_FORMAT);
  CHECK(std::string(yuan_last_error()).find("magic") != std::string::npos);

  o.model = "http://127.0.0.1:9/v1";  // the remote backend: nothing listens there
  o.max_retries = 0;
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_UNAVAILABLE);
  CHECK(e == nullptr);
  o.max_retries = 2;
  const std::string dir = yuan::testing::TempDir();
  o.model = dir.c_str();  // a directory
  CHECK(yuan_engine_open(&o, &e) != YUAN_OK);
  CHECK(e == nullptr);
}

TEST_CASE("the last error is per thread and cleared by success", "[sdk]") {
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  o.model = "/no/such/file.gguf";
  yuan_engine* e = nullptr;
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_NOT_FOUND);
  std::string other;
  std::thread([&] { other = yuan_last_error(); }).join();
  CHECK(other.empty());
  CHECK(std::string(yuan_last_error()).find("/no/such/file.gguf") != std::string::npos);
  yuan_engine* ok = Open(SlowModel());
  CHECK(std::string(yuan_last_error()).empty());
  yuan_engine_free(ok);
}

TEST_CASE("options from a newer caller (bigger struct_size) are accepted", "[sdk]") {
  struct NewerOptions {
    yuan_engine_options v1;
    int64_t field_from_the_future;
  } newer;
  std::memset(&newer, 0, sizeof newer);
  yuan_engine_options_init(&newer.v1);
  newer.v1.struct_size = sizeof newer;
  const std::string path = SlowModel();
  newer.v1.model = path.c_str();
  newer.field_from_the_future = 42;
  yuan_engine* e = nullptr;
  REQUIRE(yuan_engine_open(&newer.v1, &e) == YUAN_OK);
  // A result struct from an older caller (smaller than ours is refused,
  // garbage sizes too).
  yuan_model_info info;
  yuan_model_info_init(&info);
  info.struct_size = 4;
  CHECK(yuan_engine_model_info(e, &info) == YUAN_ERR_INVALID_ARGUMENT);
  info.struct_size = 0xdeadbeef;
  CHECK(yuan_engine_model_info(e, &info) == YUAN_ERR_INVALID_ARGUMENT);
  yuan_engine_free(e);
}

TEST_CASE("yuan_session_cancel from another thread stops generation promptly", "[sdk][cancel]") {
  yuan_engine* e = Open(SlowModel());
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  yuan_sampling_params sp;
  yuan_generate_options go = LongGreedy(&sp, 1000000);
  static std::atomic<int> tokens;
  tokens = 0;
  go.on_token = [](const yuan_token_event*, void*) {
    ++tokens;
    return 0;
  };
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  yuan_status st = YUAN_ERR_UNKNOWN;
  std::thread gen([&] { st = yuan_session_generate(s, "the and the", &go, &r); });
  for (int i = 0; i < 3000 && tokens.load() < 2; ++i) {  // wait until it is generating
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  // While it runs, the session refuses a second user...
  int32_t n_past = 0;
  CHECK(yuan_session_n_past(s, &n_past) == YUAN_ERR_FAILED_PRECONDITION);
  CHECK(yuan_session_generate(s, "x", nullptr, nullptr) == YUAN_ERR_FAILED_PRECONDITION);
  // ...and cancel returns it promptly.
  const auto t0 = Clock::now();
  CHECK(yuan_session_cancel(s) == YUAN_OK);
  gen.join();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  CHECK(st == YUAN_OK);
  CHECK(r.finish_reason == YUAN_FINISH_CANCELLED);
  CHECK(r.completion_tokens >= 2);
  CHECK(ms < 500 * yuan::testing::TimeScale());
  yuan_free(r.text);
  // The session is usable again afterwards.
  go.on_token = nullptr;
  go.max_tokens = 2;
  yuan_generate_result_init(&r);
  CHECK(yuan_session_generate(s, "the", &go, &r) == YUAN_OK);
  CHECK(r.completion_tokens == 2);
  yuan_free(r.text);
  yuan_session_free(s);
  yuan_engine_free(e);
}

TEST_CASE("requests: cancel, free while running, session freed first", "[sdk][request]") {
  yuan_engine* e = Open(SlowModel());
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  yuan_sampling_params sp;
  yuan_generate_options go = LongGreedy(&sp, 1000000);

  yuan_request* req = nullptr;
  REQUIRE(yuan_session_submit(s, "the", &go, &req) == YUAN_OK);
  CHECK(yuan_request_wait(req, 50) == YUAN_ERR_DEADLINE_EXCEEDED);
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  CHECK(yuan_request_result(req, &r) == YUAN_ERR_FAILED_PRECONDITION);
  const auto t0 = Clock::now();
  CHECK(yuan_request_cancel(req) == YUAN_OK);
  CHECK(yuan_request_wait(req, 5000) == YUAN_OK);
  CHECK(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() <
        500 * yuan::testing::TimeScale());
  CHECK(yuan_request_result(req, &r) == YUAN_OK);
  CHECK(r.finish_reason == YUAN_FINISH_CANCELLED);
  yuan_free(r.text);
  yuan_request_free(req);
  CHECK(yuan_request_cancel(req) == YUAN_ERR_INVALID_ARGUMENT);  // freed

  // Freeing a running request cancels and joins it.
  REQUIRE(yuan_session_submit(s, "the", &go, &req) == YUAN_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  yuan_request_free(req);

  // The session and engine may go first: the request still finishes.
  REQUIRE(yuan_session_submit(s, "the", &go, &req) == YUAN_OK);
  yuan_session_free(s);
  yuan_engine_free(e);
  CHECK(yuan_request_wait(req, 5000) == YUAN_OK);
  size_t n = 0;
  int done = 0;
  char buf[16];
  yuan_status poll_status = YUAN_OK;
  while (!done && poll_status == YUAN_OK) {
    poll_status = yuan_request_poll(req, buf, sizeof buf, &n, &done);
  }
  CHECK(poll_status == YUAN_OK);
  yuan_request_free(req);
}

TEST_CASE("a session outlives its engine handle", "[sdk]") {
  yuan_engine* e = Open(SlowModel());
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  yuan_engine_free(e);
  yuan_sampling_params sp;
  yuan_generate_options go = LongGreedy(&sp, 3);
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  CHECK(yuan_session_generate(s, "the", &go, &r) == YUAN_OK);
  CHECK(r.completion_tokens == 3);
  yuan_free(r.text);
  yuan_session_free(s);
  yuan_session_free(s);  // double free: logged, not a crash
}

TEST_CASE("the log callback receives messages at the chosen level", "[sdk]") {
  static std::vector<std::string> lines;
  static int calls = 0;
  lines.clear();
  yuan_set_log_callback(
      [](yuan_log_level, const char* m, void* user) {
        *static_cast<int*>(user) += 1;
        lines.emplace_back(m);
      },
      &calls);
  yuan_set_log_level(YUAN_LOG_INFO);
  yuan_engine* e = Open(SlowModel());
  yuan_engine_free(e);
  yuan_set_log_callback(nullptr, nullptr);
  yuan_set_log_level(YUAN_LOG_WARN);
  REQUIRE(!lines.empty());
  CHECK(calls == static_cast<int>(lines.size()));  // user_data is passed through
  CHECK(lines.back().find("loaded") != std::string::npos);
}

TEST_CASE("tokenize and detokenize follow the size protocol", "[sdk]") {
  yuan_engine* e = Open(SlowModel());
  const char* text = "the and 中文";
  size_t n = 0;
  CHECK(yuan_tokenize(e, text, std::strlen(text), YUAN_TOKENIZE_ADD_BOS, nullptr, 0, &n) ==
        YUAN_ERR_BUFFER_TOO_SMALL);
  std::vector<yuan_token> ids(n);
  REQUIRE(yuan_tokenize(e, text, std::strlen(text), YUAN_TOKENIZE_ADD_BOS, ids.data(), n, &n) == YUAN_OK);
  size_t needed = 0;
  CHECK(yuan_detokenize(e, ids.data(), n, 0, nullptr, 0, &needed) == YUAN_ERR_BUFFER_TOO_SMALL);
  CHECK(needed == std::strlen(text));
  std::string out(needed + 1, '\0');
  CHECK(yuan_detokenize(e, ids.data(), n, 0, out.data(), out.size(), &needed) == YUAN_OK);
  CHECK(std::string(out.c_str()) == text);
  // Empty text without BOS is zero tokens and OK.
  CHECK(yuan_tokenize(e, "", 0, 0, nullptr, 0, &n) == YUAN_OK);
  CHECK(n == 0);
  yuan_engine_free(e);
}

}  // namespace

namespace {

TEST_CASE("the KV cache type is an engine option", "[sdk]") {
  const std::string path = SlowModel();
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  o.model = path.c_str();
  o.kv_type = 7;
  yuan_engine* e = nullptr;
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_INVALID_ARGUMENT);
  // f16 and f32 caches give (nearly) the same next-token logits.
  std::vector<std::vector<float>> logits;
  for (int32_t type : {YUAN_KV_F16, YUAN_KV_F32}) {
    o.kv_type = type;
    REQUIRE(yuan_engine_open(&o, &e) == YUAN_OK);
    yuan_session* s = nullptr;
    REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
    const yuan_token ids[] = {1, 270, 280, 290};
    REQUIRE(yuan_session_decode(s, ids, 4) == YUAN_OK);
    const float* l = nullptr;
    int32_t n = 0;
    REQUIRE(yuan_session_logits(s, &l, &n) == YUAN_OK);
    logits.emplace_back(l, l + n);
    yuan_session_free(s);
    yuan_engine_free(e);
  }
  for (size_t i = 0; i < logits[0].size(); ++i) CHECK(logits[0][i] == Approx(logits[1][i]).margin(1e-2));
}

}  // namespace
