// Per-pair consistency metrics of one result (ComputeConsistencyMetrics) and the label names
// they use in their errors.
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "common/analysis/analysis.h"
#include "common/analysis/internal.h"
#include "common/status/status_macros.h"

namespace pcsweep::analysis {
namespace {

using internal::PredictsYes;

// What the rows of one question_id have in common.
struct Question {
  bool label_yes;
  bool original_yes;
  bool any_disagreement = false;
};

// Counts over the paraphrases (one per row) besides those ConsistencyMetrics keeps.
struct ParaphraseTallies {
  int64_t correct = 0;
  int64_t yes = 0;
  int64_t label_yes = 0;
  double margin_sum = 0;
};

// Rejects row `i` unless its ids, label and margins are usable; records its pair_id in
// `seen_pairs`.
absl::Status CheckRow(const ExampleRow& row, size_t i, const std::string& where,
                      std::unordered_map<std::string, size_t>* seen_pairs) {
  if (row.pair_id.empty()) return absl::InvalidArgumentError(where + ": empty pair_id");
  if (row.question_id.empty()) return absl::InvalidArgumentError(where + ": empty question_id");
  if (auto [it, inserted] = seen_pairs->emplace(row.pair_id, i); !inserted) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": duplicate pair_id, first seen at row ", it->second));
  }
  if (row.label != 1 && row.label != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": label must be yes or no (1 or 0), got ", row.label));
  }
  if (!std::isfinite(row.margin_original) || !std::isfinite(row.margin_paraphrase)) {
    return absl::InvalidArgumentError(where + ": margin is not a finite number");
  }
  return absl::OkStatus();
}

// Sets the counts over questions and every rate of `m` (m->pairs and the flipped pairs are
// already counted).
void FinishMetrics(const std::unordered_map<std::string, Question>& questions,
                   const ParaphraseTallies& paraphrases, double collapse_threshold,
                   ConsistencyMetrics* m) {
  m->questions = static_cast<int64_t>(questions.size());
  int64_t yes_originals = 0, label_yes_originals = 0;
  for (const auto& [id, q] : questions) {
    m->flipped_questions += q.any_disagreement;
    m->correct_originals += q.original_yes == q.label_yes;
    yes_originals += q.original_yes;
    label_yes_originals += q.label_yes;
  }
  const double prompts = static_cast<double>(m->questions + m->pairs);
  m->flip_rate = static_cast<double>(m->flipped_pairs) / m->pairs;
  m->question_flip_rate = static_cast<double>(m->flipped_questions) / m->questions;
  m->mean_margin_diff = paraphrases.margin_sum / m->pairs;
  m->accuracy_original = static_cast<double>(m->correct_originals) / m->questions;
  m->accuracy_all = (m->correct_originals + paraphrases.correct) / prompts;
  m->yes_rate = (yes_originals + paraphrases.yes) / prompts;
  m->majority_class_rate = std::max(m->yes_rate, 1 - m->yes_rate);
  const double label_yes_rate = (label_yes_originals + paraphrases.label_yes) / prompts;
  m->label_majority_rate = std::max(label_yes_rate, 1 - label_yes_rate);
  m->collapsed =
      m->majority_class_rate >= collapse_threshold && m->label_majority_rate < collapse_threshold;
}

}  // namespace

std::string LabelName(int label) {
  if (label == 1) return "yes";
  if (label == 0) return "no";
  return absl::StrCat("invalid(", label, ")");
}

std::map<std::string, double> ConsistencyMetrics::ToMap() const {
  return {{"flip_rate", flip_rate},
          {"question_flip_rate", question_flip_rate},
          {"mean_margin_diff", mean_margin_diff},
          {"accuracy_original", accuracy_original},
          {"accuracy_all", accuracy_all},
          {"yes_rate", yes_rate},
          {"majority_class_rate", majority_class_rate},
          {"collapsed", collapsed ? 1.0 : 0.0},
          {"pairs", static_cast<double>(pairs)},
          {"questions", static_cast<double>(questions)}};
}

absl::StatusOr<ConsistencyMetrics> ComputeConsistencyMetrics(absl::Span<const ExampleRow> rows,
                                                             double collapse_threshold) {
  if (!(collapse_threshold > 0.5 && collapse_threshold <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("collapse threshold must be in (0.5, 1], got ", collapse_threshold));
  }
  if (rows.empty()) return absl::InvalidArgumentError("no per-example rows");
  std::unordered_map<std::string, Question> questions;
  std::unordered_map<std::string, size_t> seen_pairs;
  questions.reserve(rows.size());
  seen_pairs.reserve(rows.size());
  ConsistencyMetrics m;
  ParaphraseTallies paraphrases;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ExampleRow& row = rows[i];
    const std::string where = absl::StrCat("row ", i, " (pair_id '", row.pair_id, "')");
    PCSWEEP_RETURN_IF_ERROR(CheckRow(row, i, where, &seen_pairs));
    const bool label_yes = row.label == 1;
    const bool original_yes = PredictsYes(row.margin_original);
    const bool paraphrase_yes = PredictsYes(row.margin_paraphrase);
    auto [it, inserted] = questions.emplace(row.question_id, Question{label_yes, original_yes});
    if (!inserted && it->second.label_yes != label_yes) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": label '", LabelName(row.label),
                       "' disagrees with an earlier row of question '", row.question_id, "'"));
    }
    const bool flipped = original_yes != paraphrase_yes;
    // The question's original prediction is the first row's: compare against that.
    if (paraphrase_yes != it->second.original_yes) it->second.any_disagreement = true;
    m.flipped_pairs += flipped;
    paraphrases.margin_sum += std::fabs(row.margin_original - row.margin_paraphrase);
    paraphrases.correct += paraphrase_yes == label_yes;
    paraphrases.yes += paraphrase_yes;
    paraphrases.label_yes += label_yes;
  }
  m.pairs = static_cast<int64_t>(rows.size());
  FinishMetrics(questions, paraphrases, collapse_threshold, &m);
  return m;
}

}  // namespace pcsweep::analysis
