// Per-example evaluation rows (`examples.jsonl`) as files: one JSON line per evaluated pair,
// in the format of common/jobfile/example_row.h, which the worker reads into the coordinator's
// examples table.
// Thread-safety: ExamplesWriter is not thread-safe; use one per file and thread.
#ifndef PCSWEEP_EXPERIMENTS_DATA_EXAMPLES_IO_H_
#define PCSWEEP_EXPERIMENTS_DATA_EXAMPLES_IO_H_

#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/jobfile/example_row.h"

namespace pcsweep::data {

// The job-file contract's row; its JSON line codec is common/jobfile's.
using ExampleRow = jobfile::ExampleRow;

// Appends rows to a file, flushing each, so a crash loses at most the row being written.
class ExamplesWriter {
 public:
  // Possible errors: Internal (cannot open).
  static absl::StatusOr<ExamplesWriter> Open(const std::string& path, bool append = false);
  // Possible errors: InvalidArgument (non-finite margin), Internal (write failed).
  absl::Status Write(const ExampleRow& row);
  // Possible errors: Internal (flush/close failed).
  absl::Status Close();

 private:
  ExamplesWriter(std::string path, std::ofstream out)
      : path_(std::move(path)), out_(std::move(out)) {}
  std::string path_;
  std::ofstream out_;
};

// Possible errors: as ExamplesWriter.
absl::Status WriteExamples(const std::string& path, const std::vector<ExampleRow>& rows);
// Possible errors: NotFound (no file), as jobfile::ParseExampleRows ("<path>:<line>: ...").
absl::StatusOr<std::vector<ExampleRow>> ReadExamples(const std::string& path);

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_EXAMPLES_IO_H_
