#include "common/jobfile/result_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jobfile/json_position.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobfile {
namespace {

using json = nlohmann::json;
using internal::LineOfKey;

absl::Status FlattenMetrics(const std::string& path, const std::string& text,
                            const std::string& prefix, const json& object,
                            std::map<std::string, double>* metrics) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string name = prefix.empty() ? it.key() : absl::StrCat(prefix, ".", it.key());
    const json& value = it.value();
    if (value.is_number()) {
      (*metrics)[name] = value.get<double>();
    } else if (value.is_object()) {
      PCSWEEP_RETURN_IF_ERROR(FlattenMetrics(path, text, name, value, metrics));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", LineOfKey(text, it.key()),
                                                     ": metric \"", name, "\" is a ",
                                                     value.type_name(), ", expected a number"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadResultFile(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxResultBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, " is ", size, " bytes, more than the ", kMaxResultBytes,
                     " (48 MiB) a job's result file may hold; write fewer or smaller rows"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::map<std::string, double>> ParseMetricsFile(const std::string& path,
                                                               const std::string& text) {
  PCSWEEP_ASSIGN_OR_RETURN(json root, internal::ParseJsonAt(path, text));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: expected a JSON object of metric name -> number, got ", root.type_name()));
  }
  std::map<std::string, double> metrics;
  PCSWEEP_RETURN_IF_ERROR(FlattenMetrics(path, text, "", root, &metrics));
  return metrics;
}

absl::StatusOr<std::map<std::string, std::string>> ParseOutputsFile(const std::string& path,
                                                                    const std::string& text) {
  PCSWEEP_ASSIGN_OR_RETURN(json root, internal::ParseJsonAt(path, text));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: expected a JSON object of output name -> path, got ", root.type_name()));
  }
  std::map<std::string, std::string> outputs;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it->is_string()) {
      outputs[it.key()] = it->get<std::string>();
    } else if (it->is_number() || it->is_boolean()) {
      outputs[it.key()] = it->dump();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", LineOfKey(text, it.key()),
                                                     ": output \"", it.key(), "\" is a ",
                                                     it->type_name(), ", expected a string"));
    }
  }
  return outputs;
}

}  // namespace pcsweep::jobfile
