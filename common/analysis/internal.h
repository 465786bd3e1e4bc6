// Internal to pcsweep::analysis: what the comparisons, the paper tables, the figure and the SAE
// notes share. A result is "prepared" once (its metrics, arm, seed and units sorted for
// pairing); the comparisons, tables and figure read the prepared results. Not part of the
// library's interface: include common/analysis/analysis.h instead.
//
// Thread-safety: all functions are pure and may run concurrently.
#ifndef PCSWEEP_COMMON_ANALYSIS_INTERNAL_H_
#define PCSWEEP_COMMON_ANALYSIS_INTERNAL_H_

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/analysis/analysis.h"

namespace pcsweep::analysis::internal {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The model answers "yes" iff the margin logit("yes") - logit("no") is positive.
inline bool PredictsYes(double margin) { return margin > 0; }

// "12.3%" of a fraction.
std::string Percent(double fraction);

// "95%" of a confidence level.
std::string ConfidenceLabel(double confidence);

// `params` without `seed_key`.
std::map<std::string, std::string> WithoutSeed(const std::map<std::string, std::string>& params,
                                               const std::string& seed_key);

// A result with everything the comparisons need, computed once. Points into the EvalResult it
// was prepared from, which must outlive it.
struct Prepared {
  const EvalResult* result = nullptr;
  ConsistencyMetrics metrics;
  std::string arm;
  std::string seed;  // "" when the params have no seed
  bool has_seed = false;
  // Sorted by id so two results can be paired by a merge.
  struct PairUnit {
    std::string id;
    bool flipped;
    double margin_diff;
  };
  struct QuestionUnit {
    std::string id;
    bool correct;
  };
  std::vector<PairUnit> pairs;
  std::vector<QuestionUnit> questions;
  std::vector<double> margin_diffs;                                  // per pair, row order
  std::map<std::string, std::pair<int64_t, int64_t>> by_phenomenon;  // flips, pairs
};

// Prepares the "base" and "adapted" results, in order; other variants are skipped (with a
// warning in `warnings` when given, except for "clamped").
// Possible errors: InvalidArgument naming the job for an empty eval set or rows rejected by
// ComputeConsistencyMetrics.
absl::StatusOr<std::vector<Prepared>> Prepare(absl::Span<const EvalResult> results,
                                              const AnalysisOptions& options,
                                              std::vector<std::string>* warnings = nullptr);

// Sort key of an adapted run inside its eval set: arm, then seed (numeric when both are).
bool RunLess(const Prepared* a, const Prepared* b);

// The eval sets of `prepared`, sorted and each once.
std::vector<std::string> EvalSets(const std::vector<Prepared>& prepared);

// The prepared results, the comparisons of the adapted ones with their baselines (Holm
// adjusted) and which baseline each adapted result was compared with. `baseline_of` points
// into `prepared`: moving an Analysis keeps the pointers valid, copying does not.
struct Analysis {
  std::vector<Prepared> prepared;
  SweepAnalysis sweep;
  std::map<const Prepared*, const Prepared*> baseline_of;  // adapted -> base
};

// Possible errors: as CompareWithBaselines.
absl::StatusOr<Analysis> Analyze(absl::Span<const EvalResult> results,
                                 const AnalysisOptions& options);

}  // namespace pcsweep::analysis::internal

#endif  // PCSWEEP_COMMON_ANALYSIS_INTERNAL_H_
