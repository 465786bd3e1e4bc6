#include "common/logging/logging.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace pcsweep {

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(absl::string_view level) {
  const std::string name = absl::AsciiStrToLower(level);
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn" || name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "critical") return spdlog::level::critical;
  if (name == "off") return spdlog::level::off;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level '", level, "' (use trace, debug, info, warn, error, critical or off)"));
}

absl::Status InitLogging(absl::string_view level, const std::optional<std::string>& file) {
  absl::StatusOr<spdlog::level::level_enum> parsed = ParseLogLevel(level);
  if (!parsed.ok()) return parsed.status();
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (file.has_value()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(*file, false));
    } catch (const spdlog::spdlog_ex& e) {
      return absl::UnavailableError(absl::StrCat("opening log file ", *file, ": ", e.what()));
    }
  }
  auto logger = std::make_shared<spdlog::logger>("pcsweep", sinks.begin(), sinks.end());
  logger->set_pattern(kLogPattern);
  logger->set_level(*parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

}  // namespace pcsweep
