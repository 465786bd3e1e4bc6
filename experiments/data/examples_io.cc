#include "experiments/data/examples_io.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/jobfile/result_files.h"
#include "common/status/status_macros.h"

namespace pcsweep::data {

absl::StatusOr<ExamplesWriter> ExamplesWriter::Open(const std::string& path, bool append) {
  std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  return ExamplesWriter(path, std::move(out));
}

absl::Status ExamplesWriter::Write(const ExampleRow& row) {
  auto line = jobfile::ExampleRowToJsonLine(row);
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
  // Read as the worker reads a finished job's file: the same size limits, the same errors.
  PCSWEEP_ASSIGN_OR_RETURN(const std::string text, jobfile::ReadResultFile(path));
  return jobfile::ParseExampleRows(path, text);
}

}  // namespace pcsweep::data
