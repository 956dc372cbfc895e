#include "runtime/core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>


namespace yuan {
namespace {

std::mutex g_mu;
LogSink g_sink = nullptr;
void* g_user = nullptr;
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kWarn)};

}  // namespace

void SetLogSink(LogSink sink, void* user) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sink = sink;
  g_user = user;
}

void SetLogLevel(LogLevel min_level) { g_min_level.store(static_cast<int>(min_level)); }

void LogMessage(LogLevel level, const std::string& message) {
  if (static_cast<int>(level) < g_min_level.load()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_sink != nullptr) {
    g_sink(level, message.c_str(), g_user);
    return;
  }
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "yuan %s: %s\n", kNames[static_cast<int>(level)], message.c_str());
}

}  // namespace yuan
