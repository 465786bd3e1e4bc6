// One evaluated paraphrase pair as a job reports it (a line of examples.jsonl), and its JSON
// lines codec: the runner writes rows with ExampleRowToJsonLine, the worker reads a finished
// job's file with ParseExampleRows, and the coordinator stores the same struct, so a row keeps
// one set of fields and one label type from the child process to the database.
//
// The line format. An object with the string fields eval_set, variant, question_id, pair_id,
// image, phenomenon (a number is read as its text; absent or null is ""), label ("yes"/"no",
// 1/0 or true/false; absent is 0) and the numbers margin_original and margin_paraphrase, which
// a hand-written job may call m_q and m_p. The writer always writes all nine contract names,
// the label as "yes"/"no".
// Thread-safety: pure functions.
#ifndef PCSWEEP_COMMON_JOBFILE_EXAMPLE_ROW_H_
#define PCSWEEP_COMMON_JOBFILE_EXAMPLE_ROW_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pcsweep::jobfile {

// What one job may report, far under the coordinator's 64 MiB message limit: a result over
// these fails the job for good (the same job would write the same files again).
inline constexpr size_t kMaxExampleRowBytes = 64 << 10;  // one line of examples.jsonl
inline constexpr size_t kMaxExampleRows = 250000;        // rows of one job

struct ExampleRow {
  std::string eval_set;  // e.g. "eval_mimic".
  std::string variant;   // e.g. "base", "adapted", a clamp setting.
  std::string question_id;
  std::string pair_id;
  std::string image;
  std::string phenomenon;        // paraphrase phenomenon tag; "" when untagged.
  int label = 0;                 // ground truth of the original question: 1 = yes, 0 = no.
  double margin_original = 0;    // yes-minus-no logit margin of the original question.
  double margin_paraphrase = 0;  // Same for the paraphrase.
};

// One row as a JSON line (no newline).
// Possible errors: InvalidArgument "pair <id>: non-finite margin (<m_q>, <m_p>)" (JSON cannot
// hold it, and a NaN margin means the evaluation is broken).
absl::StatusOr<std::string> ExampleRowToJsonLine(const ExampleRow& row);

// One line of `path` (its `line_number`th, 1-based), without the size limit.
// Possible errors: InvalidArgument "<path>:<line>: ..." (malformed JSON, not an object, a field
// of the wrong type, a label that is not yes/no, a missing margin).
absl::StatusOr<ExampleRow> ParseExampleRow(const std::string& path, int line_number,
                                           const std::string& line);

// Every non-blank line of `text`, the contents of `path`.
// Possible errors: as ParseExampleRow; ResourceExhausted "<path>:<line>: ..." for a line over
// kMaxExampleRowBytes or more than kMaxExampleRows rows.
absl::StatusOr<std::vector<ExampleRow>> ParseExampleRows(const std::string& path,
                                                         const std::string& text);

}  // namespace pcsweep::jobfile

#endif  // PCSWEEP_COMMON_JOBFILE_EXAMPLE_ROW_H_
