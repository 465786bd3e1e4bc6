// Loaders for the layouts PSF-Med users have, all producing data::Question records:
//  - canonical JSONL: one JSON object per line with question_id, image, answer,
//    original_question, paraphrases [{text, phenomenon, op_match}], patient_id / study_id
//    (optional: finding, question_type, wording, subtlety);
//  - MIMIC split JSON: {"results": [{question_id, question_type, filename, original_question,
//    answer, paraphrases: [{text, phenomenon}]}]}; image = image_root / filename; the patient
//    and study come from the MIMIC path (".../p10000032/s50414267/x.jpg") or subject_id/study_id;
//  - flip-bank CSV (RFC 4180, header row): question_id, image_path, ground_truth,
//    original_question, paraphrase, phenomenon, op_match (optional patient_id, finding); rows
//    with the same question_id are grouped into one question, in first-appearance order;
//  - PSF-Med as published on Hugging Face (saillab/psf-med, configs mimic / padchest / vindr)
//    and exported by `datasets` (`load_dataset(...)["test"].to_json("f.jsonl")`): one question
//    record per line with question_id, the image under filename / image_path / image, the
//    answer under answer / ground_truth, original_question, paraphrases [{text, phenomenon,
//    op_match?, is_yesno?, is_yesno_claude?}] and the v2.1 flags is_yesno / is_yesno_claude;
//    op_match, when absent, is inferred as for the MIMIC layout.
// Errors name the file and the place: "f.jsonl:12: ...", "f.csv:7: ...", "f.json: results[3]:".
// With skip_bad a bad record is skipped instead and counted in the LoadReport.
// Thread-safety: free functions without shared state.
#ifndef PCSWEEP_EXPERIMENTS_DATA_LOADERS_H_
#define PCSWEEP_EXPERIMENTS_DATA_LOADERS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/data/types.h"

namespace pcsweep::data {

enum class Format { kJsonl, kMimic, kFlipBank, kHfJsonl };

// "jsonl" / "mimic" / "flipbank" / "hf" -> Format. Possible errors: InvalidArgument (unknown
// name).
absl::StatusOr<Format> ParseFormat(const std::string& name);
// Guesses from the extension: .jsonl -> kJsonl, .json -> kMimic, .csv -> kFlipBank.
// Possible errors: InvalidArgument (other extensions).
absl::StatusOr<Format> GuessFormat(const std::string& path);

// Restricts a PSF-Med v2.1 export to true yes/no inputs by one of its two flags: a question
// whose flag is false is dropped with its paraphrases, a paraphrase whose own flag is false is
// dropped alone. Only the "hf" format carries the flags.
enum class YesNoFilter { kNone, kHeuristic /* is_yesno */, kClassifier /* is_yesno_claude */ };

// "" / "none" -> kNone, "is_yesno", "is_yesno_claude". Possible errors: InvalidArgument.
absl::StatusOr<YesNoFilter> ParseYesNoFilter(const std::string& name);

struct LoadOptions {
  // Relative image paths are resolved against this folder; empty = the data file's folder.
  std::string image_root;
  // Check that every image file exists (a missing one is a bad record).
  bool check_images = true;
  // Skip bad records (malformed, missing image) and count them instead of failing.
  bool skip_bad = false;
  // How many skip reasons LoadReport keeps.
  size_t max_reasons = 5;
  // "hf" format only; a record without the chosen flag is a bad record.
  YesNoFilter yesno_filter = YesNoFilter::kNone;
};

struct LoadReport {
  size_t records = 0;                      // Records read (JSONL lines, MIMIC results, CSV rows).
  size_t skipped = 0;                      // Records skipped with skip_bad.
  std::vector<std::string> first_reasons;  // The first few skip reasons, with file and line.
  // MIMIC layout only: paraphrases without op_match whose op_match was inferred (see
  // InferOpMatch).
  size_t inferred_op_match = 0;
  // Dropped by LoadOptions::yesno_filter (not bad records).
  size_t filtered_questions = 0;
  size_t filtered_paraphrases = 0;
};

struct Dataset {
  std::vector<Question> questions;
  LoadReport report;
};

// Possible errors: NotFound (file missing), InvalidArgument (malformed record, missing image;
// the message names file and line / record index) unless skip_bad, DataLoss (read failure).
absl::StatusOr<Dataset> LoadCanonicalJsonl(const std::string& path, const LoadOptions& options);
absl::StatusOr<Dataset> LoadMimicJson(const std::string& path, const LoadOptions& options);
absl::StatusOr<Dataset> LoadFlipBankCsv(const std::string& path, const LoadOptions& options);
absl::StatusOr<Dataset> LoadHfJsonl(const std::string& path, const LoadOptions& options);
// Dispatches on `format`.
absl::StatusOr<Dataset> LoadDataset(const std::string& path, Format format,
                                    const LoadOptions& options);

// For sources without op_match (the MIMIC layout): a negation_pattern paraphrase is taken as
// answer-inverting when it asks whether the finding can be ruled out / excluded / is absent
// and is not a double negation; every other paraphrase preserves the answer. A heuristic,
// reported through LoadReport::inferred_op_match.
bool InferOpMatch(const std::string& phenomenon, const std::string& text);

// Writes questions as canonical JSONL (image paths written as given). Possible errors:
// Internal (cannot write).
absl::Status WriteCanonicalJsonl(const std::string& path, const std::vector<Question>& questions);

// One question as a canonical JSON line (no trailing newline).
std::string ToCanonicalJsonLine(const Question& question);

// RFC 4180 CSV parsing, exposed for tests: records with the 1-based line each starts on.
struct CsvRecord {
  size_t line = 0;
  std::vector<std::string> fields;
};
// Possible errors: InvalidArgument (unterminated quote, stray quote), with the line.
absl::StatusOr<std::vector<CsvRecord>> ParseCsv(const std::string& text);

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_LOADERS_H_
