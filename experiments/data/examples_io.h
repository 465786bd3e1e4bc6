// Per-example evaluation rows (`examples.jsonl`): one JSON object per evaluated pair with the
// fields eval_set, variant, question_id, pair_id, image, phenomenon, label,
// margin_original, margin_paraphrase. The worker reads this file into the coordinator's
// examples table, so these field names are a contract.
// Thread-safety: ExamplesWriter is not thread-safe; use one per file and thread.
#ifndef PCSWEEP_EXPERIMENTS_DATA_EXAMPLES_IO_H_
#define PCSWEEP_EXPERIMENTS_DATA_EXAMPLES_IO_H_

#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pcsweep::data {

struct ExampleRow {
  std::string eval_set;  // e.g. "eval_mimic".
  std::string variant;   // e.g. "base", "adapted".
  std::string question_id;
  std::string pair_id;
  std::string image;
  std::string phenomenon;
  std::string label;             // "yes" / "no": ground truth of the original question.
  double margin_original = 0;    // yes-minus-no logit margin of the original question.
  double margin_paraphrase = 0;  // Same for the paraphrase.
};

// One row as a JSON line (no newline). Possible errors: InvalidArgument (non-finite margin:
// JSON cannot hold it, and a NaN margin means the evaluation is broken).
absl::StatusOr<std::string> ExampleToJsonLine(const ExampleRow& row);
// Possible errors: InvalidArgument (malformed JSON, missing or mistyped field).
absl::StatusOr<ExampleRow> ExampleFromJsonLine(const std::string& line);

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
// Possible errors: NotFound (no file), InvalidArgument ("<path>:<line>: <problem>").
absl::StatusOr<std::vector<ExampleRow>> ReadExamples(const std::string& path);

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_EXAMPLES_IO_H_
