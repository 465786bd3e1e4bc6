// Comparing runs with their baselines: which base result each adapted result is compared with,
// the paired and unpaired tests of flip rate, margin difference and accuracy, and the Holm
// adjustment across arms (CompareWithBaselines, internal::Analyze).
#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/analysis/analysis.h"
#include "common/analysis/internal.h"
#include "common/stats/stats.h"
#include "common/status/status_macros.h"

namespace pcsweep::analysis {
namespace internal {
namespace {

const Prepared* FindBaseline(const Prepared& adapted, const std::vector<Prepared>& all,
                             const AnalysisOptions& options) {
  auto candidates_where = [&](auto&& seed_matches) {
    std::vector<const Prepared*> out;
    for (const Prepared& p : all) {
      if (p.result->variant == "base" && p.result->eval_set == adapted.result->eval_set &&
          seed_matches(p)) {
        out.push_back(&p);
      }
    }
    return out;
  };
  std::vector<const Prepared*> candidates = candidates_where(
      [&](const Prepared& p) { return p.has_seed == adapted.has_seed && p.seed == adapted.seed; });
  if (candidates.empty()) {
    candidates = candidates_where([](const Prepared& p) { return !p.has_seed; });
  }
  if (candidates.empty()) return nullptr;
  for (const Prepared* c : candidates) {
    if (c->result->job_key == adapted.result->job_key) return c;
  }
  const auto arm_params = WithoutSeed(adapted.result->arm_params, options.seed_key);
  const Prepared* best = nullptr;
  for (const Prepared* c : candidates) {
    if (WithoutSeed(c->result->arm_params, options.seed_key) == arm_params) {
      if (best == nullptr || c->result->job_key < best->result->job_key) best = c;
    }
  }
  if (best != nullptr) return best;
  return *std::min_element(candidates.begin(), candidates.end(), [](auto* a, auto* b) {
    return a->result->job_key < b->result->job_key;
  });
}

// Calls visit(a_unit, b_unit) for every id present in both sorted unit lists.
template <typename Unit, typename Visit>
int64_t ForEachPaired(const std::vector<Unit>& a, const std::vector<Unit>& b, Visit visit) {
  int64_t paired = 0;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i].id < b[j].id) {
      ++i;
    } else if (b[j].id < a[i].id) {
      ++j;
    } else {
      visit(a[i], b[j]);
      ++paired;
      ++i;
      ++j;
    }
  }
  return paired;
}

Comparison Base(const Prepared& arm, const Prepared& baseline, const std::string& metric,
                const std::string& test, double arm_value, double baseline_value) {
  Comparison c;
  c.arm = arm.arm;
  c.seed = arm.seed;
  c.arm_job_key = arm.result->job_key;
  c.baseline = baseline.result->job_key;
  c.eval_set = arm.result->eval_set;
  c.metric = metric;
  c.test = test;
  c.arm_value = arm_value;
  c.baseline_value = baseline_value;
  c.change = arm_value - baseline_value;
  c.relative_change = baseline_value != 0 ? c.change / baseline_value : kNaN;
  return c;
}

void Fill(Comparison* c, const stats::TestResult& r) {
  c->statistic = r.statistic;
  c->p_value = r.p_value;
  c->ci_low = r.ci_low;
  c->ci_high = r.ci_high;
}

// Completes `c` (from Base) with McNemar's exact test over `paired` paired units, of which
// `arm_only` count (are flipped or right) in the arm only and `base_only` in the baseline only,
// and appends it.
absl::Status AddMcNemar(Comparison c, int64_t arm_only, int64_t base_only, int64_t paired,
                        double confidence, SweepAnalysis* out) {
  stats::McNemarOptions m;
  m.n_pairs = paired;
  m.confidence = confidence;
  PCSWEEP_ASSIGN_OR_RETURN(auto r, stats::McNemarTest(arm_only, base_only, m));
  Fill(&c, r);
  c.n = c.n_baseline = paired;
  out->comparisons.push_back(c);
  return absl::OkStatus();
}

// Unpaired flip-rate z-test over all pairs of each result.
absl::Status AddFlipRateZTest(const Prepared& arm, const Prepared& baseline,
                              const stats::ZTestOptions& z_options, SweepAnalysis* out) {
  const ConsistencyMetrics& a = arm.metrics;
  const ConsistencyMetrics& b = baseline.metrics;
  Comparison c = Base(arm, baseline, "flip_rate", "z_test", a.flip_rate, b.flip_rate);
  PCSWEEP_ASSIGN_OR_RETURN(auto r, stats::TwoProportionZTest(a.flipped_pairs, a.pairs,
                                                             b.flipped_pairs, b.pairs, z_options));
  Fill(&c, r);
  c.n = a.pairs;
  c.n_baseline = b.pairs;
  out->comparisons.push_back(c);
  return absl::OkStatus();
}

// Wilcoxon signed-rank test of the per-pair margin-difference `changes` (arm - baseline over
// `paired_pairs` paired pairs) with the paired bootstrap CI of their mean.
absl::Status AddMarginWilcoxon(const Prepared& arm, const Prepared& baseline,
                               const std::vector<double>& changes, int64_t paired_pairs,
                               const AnalysisOptions& options, SweepAnalysis* out) {
  Comparison w = Base(arm, baseline, "margin_diff", "wilcoxon", arm.metrics.mean_margin_diff,
                      baseline.metrics.mean_margin_diff);
  if (std::all_of(changes.begin(), changes.end(), [](double d) { return d == 0; })) {
    w.statistic = 0;  // identical margins: no evidence of any change
    w.p_value = 1;
  } else {
    PCSWEEP_ASSIGN_OR_RETURN(auto r, stats::WilcoxonSignedRank(changes));
    w.statistic = r.statistic;
    w.p_value = r.p_value;
  }
  stats::BootstrapOptions boot;
  boot.resamples = options.bootstrap_resamples;
  boot.seed = options.bootstrap_seed;
  boot.confidence = options.confidence;
  PCSWEEP_ASSIGN_OR_RETURN(auto ci, stats::PairedBootstrap(
                                        changes.size(),
                                        [&](absl::Span<const size_t> idx) {
                                          double s = 0;
                                          for (size_t i : idx) s += changes[i];
                                          return s / static_cast<double>(idx.size());
                                        },
                                        boot));
  w.ci_low = ci.ci_low;
  w.ci_high = ci.ci_high;
  w.n = w.n_baseline = paired_pairs;
  out->comparisons.push_back(w);
  return absl::OkStatus();
}

// The tests that pair rows by pair_id: McNemar on flips and Wilcoxon on margin differences.
// Warns when some pairs are in only one of the two results.
absl::Status AddPairedPairTests(const Prepared& arm, const Prepared& baseline,
                                const AnalysisOptions& options, SweepAnalysis* out) {
  const ConsistencyMetrics& a = arm.metrics;
  const ConsistencyMetrics& b = baseline.metrics;
  const std::string where =
      absl::StrCat("comparing '", arm.result->job_key, "' with '", baseline.result->job_key, "'");
  int64_t arm_only = 0, base_only = 0;
  std::vector<double> arm_diffs, base_diffs;
  const int64_t paired_pairs = ForEachPaired(arm.pairs, baseline.pairs, [&](auto& x, auto& y) {
    arm_only += x.flipped && !y.flipped;
    base_only += y.flipped && !x.flipped;
    arm_diffs.push_back(x.margin_diff);
    base_diffs.push_back(y.margin_diff);
  });
  if (paired_pairs < a.pairs || paired_pairs < b.pairs) {
    out->warnings.push_back(absl::StrCat(where, ": ", paired_pairs, " pairs in common (arm ",
                                         a.pairs, ", baseline ", b.pairs,
                                         "); paired tests use the common ones"));
  }
  if (paired_pairs == 0) return absl::OkStatus();
  PCSWEEP_RETURN_IF_ERROR(
      AddMcNemar(Base(arm, baseline, "flip_rate", "mcnemar_exact", a.flip_rate, b.flip_rate),
                 arm_only, base_only, paired_pairs, options.confidence, out));
  std::vector<double> changes(arm_diffs.size());
  for (size_t i = 0; i < changes.size(); ++i) changes[i] = arm_diffs[i] - base_diffs[i];
  return AddMarginWilcoxon(arm, baseline, changes, paired_pairs, options, out);
}

// Accuracy on the originals: unpaired z-test, then McNemar paired by question_id.
absl::Status AddAccuracyTests(const Prepared& arm, const Prepared& baseline,
                              const AnalysisOptions& options, const stats::ZTestOptions& z_options,
                              SweepAnalysis* out) {
  const ConsistencyMetrics& a = arm.metrics;
  const ConsistencyMetrics& b = baseline.metrics;
  {
    Comparison c =
        Base(arm, baseline, "accuracy", "z_test", a.accuracy_original, b.accuracy_original);
    PCSWEEP_ASSIGN_OR_RETURN(
        auto r, stats::TwoProportionZTest(a.correct_originals, a.questions, b.correct_originals,
                                          b.questions, z_options));
    Fill(&c, r);
    c.n = a.questions;
    c.n_baseline = b.questions;
    out->comparisons.push_back(c);
  }
  int64_t arm_right = 0, base_right = 0;
  const int64_t paired_questions =
      ForEachPaired(arm.questions, baseline.questions, [&](auto& x, auto& y) {
        arm_right += x.correct && !y.correct;
        base_right += y.correct && !x.correct;
      });
  if (paired_questions == 0) return absl::OkStatus();
  return AddMcNemar(
      Base(arm, baseline, "accuracy", "mcnemar_exact", a.accuracy_original, b.accuracy_original),
      arm_right, base_right, paired_questions, options.confidence, out);
}

// All comparisons of `arm` with `baseline`, in the order flip rate (z, McNemar), margin
// difference (Wilcoxon), accuracy (z, McNemar).
absl::Status CompareOne(const Prepared& arm, const Prepared& baseline,
                        const AnalysisOptions& options, SweepAnalysis* out) {
  stats::ZTestOptions z_options;
  z_options.confidence = options.confidence;
  PCSWEEP_RETURN_IF_ERROR(AddFlipRateZTest(arm, baseline, z_options, out));
  PCSWEEP_RETURN_IF_ERROR(AddPairedPairTests(arm, baseline, options, out));
  return AddAccuracyTests(arm, baseline, options, z_options, out);
}

// Sets adjusted_p of every comparison: Holm across the arms with the same eval set, metric
// and test.
absl::Status AdjustHolm(std::vector<Comparison>* comparisons_out) {
  std::vector<Comparison>& comparisons = *comparisons_out;
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<size_t>> groups;
  for (size_t i = 0; i < comparisons.size(); ++i) {
    groups[{comparisons[i].eval_set, comparisons[i].metric, comparisons[i].test}].push_back(i);
  }
  for (const auto& [key, indices] : groups) {
    std::vector<double> p;
    for (size_t i : indices) p.push_back(comparisons[i].p_value);
    PCSWEEP_ASSIGN_OR_RETURN(auto adjusted, stats::HolmBonferroni(p));
    for (size_t k = 0; k < indices.size(); ++k) comparisons[indices[k]].adjusted_p = adjusted[k];
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Analysis> Analyze(absl::Span<const EvalResult> results,
                                 const AnalysisOptions& options) {
  Analysis analysis;
  PCSWEEP_ASSIGN_OR_RETURN(analysis.prepared, Prepare(results, options, &analysis.sweep.warnings));
  std::vector<const Prepared*> adapted;
  for (const Prepared& p : analysis.prepared) {
    if (p.result->variant == "adapted") adapted.push_back(&p);
  }
  std::sort(adapted.begin(), adapted.end(), RunLess);
  for (const Prepared* p : adapted) {
    const Prepared* baseline = FindBaseline(*p, analysis.prepared, options);
    if (baseline == nullptr) {
      analysis.sweep.warnings.push_back(
          absl::StrCat("job '", p->result->job_key, "' on eval set '", p->result->eval_set,
                       "' has no base result with the same seed; no comparisons for it"));
      continue;
    }
    analysis.baseline_of[p] = baseline;
    PCSWEEP_RETURN_IF_ERROR(CompareOne(*p, *baseline, options, &analysis.sweep));
  }
  PCSWEEP_RETURN_IF_ERROR(AdjustHolm(&analysis.sweep.comparisons));
  return analysis;
}

}  // namespace internal

absl::StatusOr<SweepAnalysis> CompareWithBaselines(absl::Span<const EvalResult> results,
                                                   const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(internal::Analysis analysis, internal::Analyze(results, options));
  return std::move(analysis.sweep);
}

}  // namespace pcsweep::analysis
