// Process-wide logging for pcsweep binaries: one spdlog default logger ("pcsweep") writing to
// stderr and, optionally, appending to a file, all with one line format so that coordinator,
// worker and CLI logs read alike. Code logs with spdlog::info(...) etc. after InitLogging.
//
// Thread-safety: InitLogging replaces the default logger; call it from main() before other
// threads log. The installed logger itself is thread-safe.
#ifndef PCSWEEP_COMMON_LOGGING_LOGGING_H_
#define PCSWEEP_COMMON_LOGGING_LOGGING_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spdlog/common.h"

namespace pcsweep {

// "2026-11-27 23:59:59.123 I 4242:4243] message": time, level letter, pid:thread.
inline constexpr char kLogPattern[] = "%Y-%m-%d %H:%M:%S.%e %L %P:%t] %v";

// Parses "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off".
// Possible errors: InvalidArgument naming the level and the accepted ones.
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(absl::string_view level);

// Installs the default logger at `level`, logging to stderr and, if `file` is given, appending
// to it as well (created, with missing folders, if absent). Lines of level info and above are
// flushed at once, so a killed process keeps its log. Possible errors: InvalidArgument (unknown
// level), Unavailable (file cannot be opened).
absl::Status InitLogging(absl::string_view level,
                         const std::optional<std::string>& file = std::nullopt);

}  // namespace pcsweep

#endif  // PCSWEEP_COMMON_LOGGING_LOGGING_H_
