// Arms and prepared results: what every comparison, table and the figure compute once per
// result (internal::Prepare) and how they name and order the runs.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/analysis/analysis.h"
#include "common/analysis/internal.h"
#include "common/status/status_macros.h"

namespace pcsweep::analysis {

std::string ArmName(const std::map<std::string, std::string>& params, const std::string& seed_key) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : params) {
    if (key != seed_key) parts.push_back(absl::StrCat(key, "=", value));
  }
  return parts.empty() ? "adapted" : absl::StrJoin(parts, ",");
}

namespace internal {
namespace {

// Fills the pair and question units and the per-phenomenon counts of `p` from its rows.
void AddUnits(const EvalResult& result, Prepared* p) {
  std::unordered_map<std::string, bool> question_correct;
  p->pairs.reserve(result.rows.size());
  p->margin_diffs.reserve(result.rows.size());
  for (const ExampleRow& row : result.rows) {
    const bool flipped = PredictsYes(row.margin_original) != PredictsYes(row.margin_paraphrase);
    const double diff = std::fabs(row.margin_original - row.margin_paraphrase);
    p->pairs.push_back({row.pair_id, flipped, diff});
    p->margin_diffs.push_back(diff);
    auto& [flips, total] = p->by_phenomenon[row.phenomenon];
    flips += flipped;
    ++total;
    if (!question_correct.count(row.question_id)) {
      const bool label_yes = row.label == 1;
      question_correct[row.question_id] = PredictsYes(row.margin_original) == label_yes;
      p->questions.push_back({row.question_id, question_correct[row.question_id]});
    }
  }
  std::sort(p->pairs.begin(), p->pairs.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  std::sort(p->questions.begin(), p->questions.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
}

}  // namespace

absl::StatusOr<std::vector<Prepared>> Prepare(absl::Span<const EvalResult> results,
                                              const AnalysisOptions& options,
                                              std::vector<std::string>* warnings) {
  std::vector<Prepared> prepared;
  prepared.reserve(results.size());
  for (const EvalResult& result : results) {
    const std::string where =
        absl::StrCat("job '", result.job_key, "' eval set '", result.eval_set, "'");
    if (result.variant != "base" && result.variant != "adapted") {
      // Other variants belong to other analyses; "clamped" rows of a clamp_eval job are
      // compared with the unclamped run inside the job (SaeSweepNotes).
      if (warnings != nullptr && result.variant != "clamped") {
        warnings->push_back(absl::StrCat(where, ": variant '", result.variant,
                                         "' is neither base nor adapted; not compared"));
      }
      continue;
    }
    if (result.eval_set.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("job '", result.job_key, "': empty eval set name"));
    }
    Prepared p;
    p.result = &result;
    auto metrics = ComputeConsistencyMetrics(result.rows, options.collapse_threshold);
    if (!metrics.ok()) return Annotate(metrics.status(), where);
    p.metrics = *metrics;
    p.arm = ArmName(result.arm_params, options.seed_key);
    if (auto it = result.arm_params.find(options.seed_key); it != result.arm_params.end()) {
      p.seed = it->second;
      p.has_seed = true;
    }
    AddUnits(result, &p);
    prepared.push_back(std::move(p));
  }
  return prepared;
}

std::map<std::string, std::string> WithoutSeed(const std::map<std::string, std::string>& params,
                                               const std::string& seed_key) {
  std::map<std::string, std::string> out = params;
  out.erase(seed_key);
  return out;
}

bool RunLess(const Prepared* a, const Prepared* b) {
  if (a->result->eval_set != b->result->eval_set) {
    return a->result->eval_set < b->result->eval_set;
  }
  if (a->arm != b->arm) return a->arm < b->arm;
  char* end_a = nullptr;
  char* end_b = nullptr;
  const double sa = std::strtod(a->seed.c_str(), &end_a);
  const double sb = std::strtod(b->seed.c_str(), &end_b);
  if (!a->seed.empty() && !b->seed.empty() && *end_a == '\0' && *end_b == '\0' && sa != sb) {
    return sa < sb;
  }
  if (a->seed != b->seed) return a->seed < b->seed;
  return a->result->job_key < b->result->job_key;
}

std::vector<std::string> EvalSets(const std::vector<Prepared>& prepared) {
  std::set<std::string> sets;
  for (const Prepared& p : prepared) sets.insert(p.result->eval_set);
  return {sets.begin(), sets.end()};
}

}  // namespace internal
}  // namespace pcsweep::analysis
