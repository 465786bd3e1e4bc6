#include "common/jobfile/json_position.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pcsweep::jobfile::internal {
namespace {

// 1-based line and column of byte offset `pos` in `text`.
std::pair<int, int> LineColumn(const std::string& text, size_t pos) {
  pos = std::min(pos, text.size());
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < pos; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, static_cast<int>(pos - line_start) + 1};
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseJsonAt(const std::string& path, const std::string& text,
                                           int line_offset) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    auto [line, column] = LineColumn(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string reason = e.what();
    // nlohmann's text repeats the position; keep only what went wrong.
    size_t colon = reason.find(": ", reason.find("column"));
    if (colon != std::string::npos) reason = reason.substr(colon + 2);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", line + line_offset, ":", column, ": malformed JSON: ", reason));
  }
}

int LineOfKey(const std::string& text, const std::string& key) {
  const std::string quoted = absl::StrCat("\"", key, "\"");
  size_t pos = 0;
  while ((pos = text.find(quoted, pos)) != std::string::npos) {
    size_t after = pos + quoted.size();
    while (after < text.size() && std::isspace(static_cast<unsigned char>(text[after]))) ++after;
    if (after < text.size() && text[after] == ':') return LineColumn(text, pos).first;
    pos = after;
  }
  return 1;
}

}  // namespace pcsweep::jobfile::internal
