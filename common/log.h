// File: common/log.h
// The only logging entry point of fngate's binaries: leveled lines on stderr, one write each.
//
//   FNGATE_LOG(Info) << "[conn=" << id << "] accepted";   // Debug, Info, Warning, Error
//
// Lines look like `2026-11-22T02:03:04.123Z I session.cc:42] text`. Levels below the one set
// by SetLevel() cost one branch. Thread-safe: each line is built privately and written with
// one fwrite, so lines from different threads never interleave.
// Never log secrets or message payloads at INFO or above.
#pragma once

#include <sstream>
#include <string_view>

#include "absl/status/statusor.h"

namespace fngate::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLevel(Level level);
bool Enabled(Level level);
// "debug", "info", "warning", "error" (case-insensitive).
absl::StatusOr<Level> ParseLevel(std::string_view name);

// One log line; written when destroyed.
class Line {
 public:
  Line(Level level, const char* file, int line);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  std::ostream& stream() { return out_; }

 private:
  std::ostringstream out_;
};

}  // namespace fngate::log

#define FNGATE_LOG(severity)                                        \
  if (!::fngate::log::Enabled(::fngate::log::Level::k##severity)) { \
  } else                                                            \
    ::fngate::log::Line(::fngate::log::Level::k##severity, __FILE__, __LINE__).stream()
