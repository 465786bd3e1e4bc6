#include "common/jobfile/example_row.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/jobfile/json_position.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobfile {
namespace {

using json = nlohmann::json;

// A text field: a number stands for its text (ids written by hand are often numbers).
absl::Status ReadText(const json& row, const std::string& where, const char* key,
                      std::string* out) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return absl::OkStatus();
  if (it->is_string()) {
    *out = it->get<std::string>();
  } else if (it->is_number()) {
    *out = it->dump();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field \"", key, "\" is a ", it->type_name(), ", expected a string"));
  }
  return absl::OkStatus();
}

absl::Status ReadLabel(const json& row, const std::string& where, int* out) {
  auto it = row.find("label");
  if (it == row.end()) return absl::OkStatus();
  if (it->is_boolean()) {
    *out = it->get<bool>() ? 1 : 0;
  } else if (it->is_number_integer() && (it->get<int64_t>() == 0 || it->get<int64_t>() == 1)) {
    *out = static_cast<int>(it->get<int64_t>());
  } else if (it->is_string() && (*it == "yes" || *it == "no")) {
    *out = *it == "yes" ? 1 : 0;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field \"label\" is ", it->dump(), ", expected 0/1 or yes/no"));
  }
  return absl::OkStatus();
}

absl::Status ReadMargin(const json& row, const std::string& where, const char* short_key,
                        const char* long_key, double* out) {
  auto it = row.find(short_key);
  if (it == row.end()) it = row.find(long_key);
  if (it == row.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": missing \"", short_key, "\" (or \"", long_key, "\")"));
  }
  if (!it->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": field \"", it.key(), "\" is a ",
                                                   it->type_name(), ", expected a number"));
  }
  *out = it->get<double>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ExampleRowToJsonLine(const ExampleRow& row) {
  if (!std::isfinite(row.margin_original) || !std::isfinite(row.margin_paraphrase)) {
    return absl::InvalidArgumentError(absl::StrCat("pair ", row.pair_id, ": non-finite margin (",
                                                   row.margin_original, ", ", row.margin_paraphrase,
                                                   ")"));
  }
  nlohmann::ordered_json j;
  j["eval_set"] = row.eval_set;
  j["variant"] = row.variant;
  j["question_id"] = row.question_id;
  j["pair_id"] = row.pair_id;
  j["image"] = row.image;
  j["phenomenon"] = row.phenomenon;
  j["label"] = row.label == 1 ? "yes" : "no";
  j["margin_original"] = row.margin_original;
  j["margin_paraphrase"] = row.margin_paraphrase;
  return j.dump();
}

absl::StatusOr<ExampleRow> ParseExampleRow(const std::string& path, int line_number,
                                           const std::string& line) {
  const std::string where = absl::StrCat(path, ":", line_number);
  PCSWEEP_ASSIGN_OR_RETURN(json row, internal::ParseJsonAt(path, line, line_number - 1));
  if (!row.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected a JSON object, got ", row.type_name()));
  }
  ExampleRow example;
  PCSWEEP_RETURN_IF_ERROR(ReadText(row, where, "eval_set", &example.eval_set));
  PCSWEEP_RETURN_IF_ERROR(ReadText(row, where, "variant", &example.variant));
  PCSWEEP_RETURN_IF_ERROR(ReadText(row, where, "question_id", &example.question_id));
  PCSWEEP_RETURN_IF_ERROR(ReadText(row, where, "pair_id", &example.pair_id));
  PCSWEEP_RETURN_IF_ERROR(ReadText(row, where, "image", &example.image));
  PCSWEEP_RETURN_IF_ERROR(ReadText(row, where, "phenomenon", &example.phenomenon));
  PCSWEEP_RETURN_IF_ERROR(ReadLabel(row, where, &example.label));
  PCSWEEP_RETURN_IF_ERROR(
      ReadMargin(row, where, "m_q", "margin_original", &example.margin_original));
  PCSWEEP_RETURN_IF_ERROR(
      ReadMargin(row, where, "m_p", "margin_paraphrase", &example.margin_paraphrase));
  return example;
}

absl::StatusOr<std::vector<ExampleRow>> ParseExampleRows(const std::string& path,
                                                         const std::string& text) {
  std::vector<ExampleRow> rows;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (line.size() > kMaxExampleRowBytes) {
      return absl::ResourceExhaustedError(absl::StrCat(path, ":", line_number, ": a row of ",
                                                       line.size(), " bytes, more than the ",
                                                       kMaxExampleRowBytes, " a row may hold"));
    }
    if (rows.size() == kMaxExampleRows) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ":", line_number, ": more than ", kMaxExampleRows,
                       " rows; a job may report at most that many"));
    }
    PCSWEEP_ASSIGN_OR_RETURN(ExampleRow row, ParseExampleRow(path, line_number, std::string(line)));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace pcsweep::jobfile
