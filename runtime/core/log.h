// Library-wide logging through one host-provided callback (absl 20220623 has
// no absl/log). The default sink writes warnings and errors to stderr.
#pragma once

#include <string>

#include "absl/strings/str_format.h"

namespace yuan {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using LogSink = void (*)(LogLevel level, const char* message, void* user);

// Replaces the sink (nullptr restores the default) and the minimum level.
// Thread-safe.
void SetLogSink(LogSink sink, void* user);
void SetLogLevel(LogLevel min_level);
void LogMessage(LogLevel level, const std::string& message);

template <typename... Args>
void Logf(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogMessage(level, absl::StrFormat(format, args...));
}

}  // namespace yuan
