#include "experiments/data/examples_io.h"

#include <cmath>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::data {
namespace {

using json = nlohmann::ordered_json;

absl::StatusOr<std::string> GetString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return absl::InvalidArgumentError(absl::StrCat("missing field '", key, "'"));
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", key, "' must be a string, found ", it->type_name()));
  }
  return it->get<std::string>();
}

absl::StatusOr<double> GetNumber(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return absl::InvalidArgumentError(absl::StrCat("missing field '", key, "'"));
  if (!it->is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", key, "' must be a number, found ", it->type_name()));
  }
  return it->get<double>();
}

}  // namespace

absl::StatusOr<std::string> ExampleToJsonLine(const ExampleRow& row) {
  if (!std::isfinite(row.margin_original) || !std::isfinite(row.margin_paraphrase)) {
    return absl::InvalidArgumentError(absl::StrCat("pair ", row.pair_id, ": non-finite margin (",
                                                   row.margin_original, ", ", row.margin_paraphrase,
                                                   ")"));
  }
  json j;
  j["eval_set"] = row.eval_set;
  j["variant"] = row.variant;
  j["question_id"] = row.question_id;
  j["pair_id"] = row.pair_id;
  j["image"] = row.image;
  j["phenomenon"] = row.phenomenon;
  j["label"] = row.label;
  j["margin_original"] = row.margin_original;
  j["margin_paraphrase"] = row.margin_paraphrase;
  return j.dump();
}

absl::StatusOr<ExampleRow> ExampleFromJsonLine(const std::string& line) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  ExampleRow row;
  PCSWEEP_ASSIGN_OR_RETURN(row.eval_set, GetString(j, "eval_set"));
  PCSWEEP_ASSIGN_OR_RETURN(row.variant, GetString(j, "variant"));
  PCSWEEP_ASSIGN_OR_RETURN(row.question_id, GetString(j, "question_id"));
  PCSWEEP_ASSIGN_OR_RETURN(row.pair_id, GetString(j, "pair_id"));
  PCSWEEP_ASSIGN_OR_RETURN(row.image, GetString(j, "image"));
  PCSWEEP_ASSIGN_OR_RETURN(row.phenomenon, GetString(j, "phenomenon"));
  PCSWEEP_ASSIGN_OR_RETURN(row.label, GetString(j, "label"));
  PCSWEEP_ASSIGN_OR_RETURN(row.margin_original, GetNumber(j, "margin_original"));
  PCSWEEP_ASSIGN_OR_RETURN(row.margin_paraphrase, GetNumber(j, "margin_paraphrase"));
  return row;
}

absl::StatusOr<ExamplesWriter> ExamplesWriter::Open(const std::string& path, bool append) {
  std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  return ExamplesWriter(path, std::move(out));
}

absl::Status ExamplesWriter::Write(const ExampleRow& row) {
  auto line = ExampleToJsonLine(row);
  if (!line.ok()) return Annotate(line.status(), path_);
  out_ << *line << '\n';
  out_.flush();
  if (!out_) return absl::InternalError(absl::StrCat(path_, ": write failed"));
  return absl::OkStatus();
}

absl::Status ExamplesWriter::Close() {
  out_.close();
  if (out_.fail()) return absl::InternalError(absl::StrCat(path_, ": close failed"));
  return absl::OkStatus();
}

absl::Status WriteExamples(const std::string& path, const std::vector<ExampleRow>& rows) {
  PCSWEEP_ASSIGN_OR_RETURN(ExamplesWriter writer, ExamplesWriter::Open(path));
  for (const ExampleRow& row : rows) PCSWEEP_RETURN_IF_ERROR(writer.Write(row));
  return writer.Close();
}

absl::StatusOr<std::vector<ExampleRow>> ReadExamples(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": file not found"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open for reading"));
  std::vector<ExampleRow> rows;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto row = ExampleFromJsonLine(line);
    if (!row.ok()) return Annotate(row.status(), absl::StrCat(path, ":", line_number));
    rows.push_back(*std::move(row));
  }
  return rows;
}

}  // namespace pcsweep::data
