#include "common/jobfile/progress_line.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobfile {

using json = nlohmann::json;

std::string ProgressLineToJson(const ProgressLine& line) {
  json value = json::object();
  if (line.progress.has_value()) value["progress"] = std::clamp(*line.progress, 0.0, 1.0);
  if (line.message.has_value()) value["message"] = *line.message;
  if (line.eta_s.has_value() && *line.eta_s > 0) {
    value["eta_s"] = static_cast<int64_t>(*line.eta_s + 0.5);
  }
  return value.dump();
}

absl::StatusOr<ProgressLine> ParseProgressLine(absl::string_view text) {
  json value;
  try {
    value = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", e.what()));
  }
  if (!value.is_object()) return absl::InvalidArgumentError("not a JSON object");
  ProgressLine line;
  if (auto it = value.find("progress"); it != value.end() && it->is_number()) {
    line.progress = std::clamp(it->get<double>(), 0.0, 1.0);
  }
  if (auto it = value.find("message"); it != value.end() && it->is_string()) {
    line.message = it->get<std::string>();
  }
  if (auto it = value.find("eta_s"); it != value.end() && it->is_number()) {
    line.eta_s = std::max(0.0, it->get<double>());
  }
  return line;
}

}  // namespace pcsweep::jobfile
