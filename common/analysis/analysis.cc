#include "common/analysis/analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/plot/svg.h"
#include "common/stats/stats.h"
#include "common/status/status_macros.h"

namespace pcsweep::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool PredictsYes(double margin) { return margin > 0; }

// A result with everything the comparisons need, computed once.
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

std::string Percent(double fraction) { return absl::StrFormat("%.1f%%", 100 * fraction); }

absl::StatusOr<std::vector<Prepared>> Prepare(absl::Span<const EvalResult> results,
                                              const AnalysisOptions& options,
                                              std::vector<std::string>* warnings = nullptr) {
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
    std::unordered_map<std::string, bool> question_correct;
    p.pairs.reserve(result.rows.size());
    p.margin_diffs.reserve(result.rows.size());
    for (const ExampleRow& row : result.rows) {
      const bool flipped = PredictsYes(row.margin_original) != PredictsYes(row.margin_paraphrase);
      const double diff = std::fabs(row.margin_original - row.margin_paraphrase);
      p.pairs.push_back({row.pair_id, flipped, diff});
      p.margin_diffs.push_back(diff);
      auto& [flips, total] = p.by_phenomenon[row.phenomenon];
      flips += flipped;
      ++total;
      if (!question_correct.count(row.question_id)) {
        const bool label_yes = row.label == 1;
        question_correct[row.question_id] = PredictsYes(row.margin_original) == label_yes;
        p.questions.push_back({row.question_id, question_correct[row.question_id]});
      }
    }
    std::sort(p.pairs.begin(), p.pairs.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    std::sort(p.questions.begin(), p.questions.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
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

absl::Status CompareOne(const Prepared& arm, const Prepared& baseline,
                        const AnalysisOptions& options, SweepAnalysis* out) {
  const ConsistencyMetrics& a = arm.metrics;
  const ConsistencyMetrics& b = baseline.metrics;
  const std::string where =
      absl::StrCat("comparing '", arm.result->job_key, "' with '", baseline.result->job_key, "'");
  stats::ZTestOptions z_options;
  z_options.confidence = options.confidence;
  // Flip rate.
  {
    Comparison c = Base(arm, baseline, "flip_rate", "z_test", a.flip_rate, b.flip_rate);
    PCSWEEP_ASSIGN_OR_RETURN(
        auto r,
        stats::TwoProportionZTest(a.flipped_pairs, a.pairs, b.flipped_pairs, b.pairs, z_options));
    Fill(&c, r);
    c.n = a.pairs;
    c.n_baseline = b.pairs;
    out->comparisons.push_back(c);
  }
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
  if (paired_pairs > 0) {
    Comparison c = Base(arm, baseline, "flip_rate", "mcnemar_exact", a.flip_rate, b.flip_rate);
    stats::McNemarOptions m;
    m.n_pairs = paired_pairs;
    m.confidence = options.confidence;
    PCSWEEP_ASSIGN_OR_RETURN(auto r, stats::McNemarTest(arm_only, base_only, m));
    Fill(&c, r);
    c.n = c.n_baseline = paired_pairs;
    out->comparisons.push_back(c);

    Comparison w =
        Base(arm, baseline, "margin_diff", "wilcoxon", a.mean_margin_diff, b.mean_margin_diff);
    std::vector<double> changes(arm_diffs.size());
    for (size_t i = 0; i < changes.size(); ++i) changes[i] = arm_diffs[i] - base_diffs[i];
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
  }
  // Accuracy on originals.
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
  if (paired_questions > 0) {
    Comparison c =
        Base(arm, baseline, "accuracy", "mcnemar_exact", a.accuracy_original, b.accuracy_original);
    stats::McNemarOptions m;
    m.n_pairs = paired_questions;
    m.confidence = options.confidence;
    PCSWEEP_ASSIGN_OR_RETURN(auto r, stats::McNemarTest(arm_right, base_right, m));
    Fill(&c, r);
    c.n = c.n_baseline = paired_questions;
    out->comparisons.push_back(c);
  }
  return absl::OkStatus();
}

struct Analysis {
  std::vector<Prepared> prepared;
  SweepAnalysis sweep;
  std::map<const Prepared*, const Prepared*> baseline_of;  // adapted -> base
};

// Sort key of an adapted run inside its eval set: arm, then seed (numeric when both are).
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
  // Holm across arms: group by (eval set, metric, test).
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<size_t>> groups;
  auto& comparisons = analysis.sweep.comparisons;
  for (size_t i = 0; i < comparisons.size(); ++i) {
    groups[{comparisons[i].eval_set, comparisons[i].metric, comparisons[i].test}].push_back(i);
  }
  for (const auto& [key, indices] : groups) {
    std::vector<double> p;
    for (size_t i : indices) p.push_back(comparisons[i].p_value);
    PCSWEEP_ASSIGN_OR_RETURN(auto adjusted, stats::HolmBonferroni(p));
    for (size_t k = 0; k < indices.size(); ++k) comparisons[indices[k]].adjusted_p = adjusted[k];
  }
  return analysis;
}

const Comparison* FindComparison(const SweepAnalysis& sweep, const Prepared& arm,
                                 absl::string_view metric, absl::string_view test) {
  for (const Comparison& c : sweep.comparisons) {
    if (c.arm_job_key == arm.result->job_key && c.eval_set == arm.result->eval_set &&
        c.metric == metric && c.test == test) {
      return &c;
    }
  }
  return nullptr;
}

std::string PWithHolm(const Comparison* c) {
  if (c == nullptr) return "-";
  return absl::StrCat(FormatP(c->p_value), " (", FormatP(c->adjusted_p), ")");
}

std::string RunLabel(const Prepared& p) {
  if (p.result->variant != "base") {
    return p.has_seed ? absl::StrCat(p.arm, " seed=", p.seed) : p.arm;
  }
  std::string label = p.has_seed ? absl::StrCat("base seed=", p.seed) : "base";
  // A base model evaluated inside a training job carries that job's arm parameters: say which
  // arm's job it came from so that several base rows can be told apart.
  if (p.arm != "adapted") absl::StrAppend(&label, " (in ", p.arm, ")");
  return label;
}

std::string ProportionWithCi(int64_t x, int64_t n, double confidence) {
  auto wilson = stats::WilsonInterval(x, n, confidence);
  if (!wilson.ok()) return "-";
  return absl::StrFormat("%.1f%% [%.1f, %.1f]", 100 * wilson->statistic, 100 * wilson->ci_low,
                         100 * wilson->ci_high);
}

std::string MarginWithCi(const std::vector<double>& diffs, double confidence) {
  auto t = stats::MeanTInterval(diffs, confidence);
  if (!t.ok()) return absl::StrFormat("%.2f", stats::Mean(diffs));
  return absl::StrFormat("%.2f [%.2f, %.2f]", t->statistic, t->ci_low, t->ci_high);
}

std::string ConfidenceLabel(double confidence) { return absl::StrFormat("%g%%", 100 * confidence); }

// "mean +/- sd [lo, hi]" over seeds (scaled), or the single value.
std::string MeanSdCi(const std::vector<double>& values, double scale, int decimals,
                     double confidence) {
  auto format = [decimals](double v) { return absl::StrFormat("%.*f", decimals, v); };
  std::vector<double> scaled;
  for (double v : values) scaled.push_back(v * scale);
  if (scaled.size() < 2) return format(scaled.empty() ? kNaN : scaled[0]);
  const double sd = stats::SampleStdDev(scaled);
  auto t = stats::MeanTInterval(scaled, confidence);
  std::string out = absl::StrCat(format(stats::Mean(scaled)), " +/- ", format(sd));
  if (t.ok()) {
    absl::StrAppend(&out, " [", format(t->ci_low), ", ", format(t->ci_high), "]");
  }
  return out;
}

std::vector<std::string> EvalSets(const std::vector<Prepared>& prepared) {
  std::set<std::string> sets;
  for (const Prepared& p : prepared) sets.insert(p.result->eval_set);
  return {sets.begin(), sets.end()};
}

}  // namespace

void EvalResultBuilder::Add(const std::string& job_key,
                            const std::map<std::string, std::string>& arm_params,
                            const std::string& eval_set, const std::string& variant,
                            ExampleRow row) {
  auto [it, inserted] =
      index_.emplace(std::make_tuple(job_key, eval_set, variant), results_.size());
  if (inserted) {
    EvalResult result;
    result.job_key = job_key;
    result.arm_params = arm_params;
    result.eval_set = eval_set;
    result.variant = variant;
    results_.push_back(std::move(result));
  }
  results_[it->second].rows.push_back(std::move(row));
}

void EvalResultBuilder::AddMetric(const std::string& job_key, const std::string& name,
                                  double value) {
  for (EvalResult& result : results_) {
    if (result.job_key == job_key) result.metrics[name] = value;
  }
}

std::vector<EvalResult> EvalResultBuilder::Build() {
  index_.clear();
  return std::exchange(results_, {});
}

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
  struct Question {
    bool label_yes;
    bool original_yes;
    bool any_disagreement = false;
  };
  std::unordered_map<std::string, Question> questions;
  std::unordered_map<std::string, size_t> seen_pairs;
  questions.reserve(rows.size());
  seen_pairs.reserve(rows.size());
  ConsistencyMetrics m;
  int64_t correct_paraphrases = 0, yes_paraphrases = 0, label_yes_paraphrases = 0;
  double margin_sum = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ExampleRow& row = rows[i];
    const std::string where = absl::StrCat("row ", i, " (pair_id '", row.pair_id, "')");
    if (row.pair_id.empty()) return absl::InvalidArgumentError(where + ": empty pair_id");
    if (row.question_id.empty()) return absl::InvalidArgumentError(where + ": empty question_id");
    if (auto [it, inserted] = seen_pairs.emplace(row.pair_id, i); !inserted) {
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
    margin_sum += std::fabs(row.margin_original - row.margin_paraphrase);
    correct_paraphrases += paraphrase_yes == label_yes;
    yes_paraphrases += paraphrase_yes;
    label_yes_paraphrases += label_yes;
  }
  m.pairs = static_cast<int64_t>(rows.size());
  m.questions = static_cast<int64_t>(questions.size());
  int64_t yes_originals = 0, label_yes_originals = 0;
  for (const auto& [id, q] : questions) {
    m.flipped_questions += q.any_disagreement;
    m.correct_originals += q.original_yes == q.label_yes;
    yes_originals += q.original_yes;
    label_yes_originals += q.label_yes;
  }
  const double prompts = static_cast<double>(m.questions + m.pairs);
  m.flip_rate = static_cast<double>(m.flipped_pairs) / m.pairs;
  m.question_flip_rate = static_cast<double>(m.flipped_questions) / m.questions;
  m.mean_margin_diff = margin_sum / m.pairs;
  m.accuracy_original = static_cast<double>(m.correct_originals) / m.questions;
  m.accuracy_all = (m.correct_originals + correct_paraphrases) / prompts;
  m.yes_rate = (yes_originals + yes_paraphrases) / prompts;
  m.majority_class_rate = std::max(m.yes_rate, 1 - m.yes_rate);
  const double label_yes_rate = (label_yes_originals + label_yes_paraphrases) / prompts;
  m.label_majority_rate = std::max(label_yes_rate, 1 - label_yes_rate);
  m.collapsed =
      m.majority_class_rate >= collapse_threshold && m.label_majority_rate < collapse_threshold;
  return m;
}

std::string ArmName(const std::map<std::string, std::string>& params, const std::string& seed_key) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : params) {
    if (key != seed_key) parts.push_back(absl::StrCat(key, "=", value));
  }
  return parts.empty() ? "adapted" : absl::StrJoin(parts, ",");
}

std::string FormatP(double p) {
  if (std::isnan(p)) return "-";
  if (p < 0.001) return "<0.001";
  if (p < 0.01) return absl::StrFormat("%.4f", p);
  return absl::StrFormat("%.3f", p);
}

absl::StatusOr<SweepAnalysis> CompareWithBaselines(absl::Span<const EvalResult> results,
                                                   const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(Analysis analysis, Analyze(results, options));
  return std::move(analysis.sweep);
}

absl::StatusOr<table::Table> MainTable(absl::Span<const EvalResult> results,
                                       const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(Analysis analysis, Analyze(results, options));
  using table::Align;
  const std::string ci = ConfidenceLabel(options.confidence);
  PCSWEEP_ASSIGN_OR_RETURN(
      table::Table out,
      table::Table::Create("Main results: each arm vs its base model",
                           {{"Eval set", Align::kLeft},
                            {"Model", Align::kLeft},
                            {absl::StrCat("Flip rate [", ci, " CI]"), Align::kRight},
                            {"Flip change (pp)", Align::kRight},
                            {"p z (Holm)", Align::kRight},
                            {"p McNemar (Holm)", Align::kRight},
                            {absl::StrCat("Margin diff [", ci, " CI]"), Align::kRight},
                            {"Reduction", Align::kRight},
                            {"p Wilcoxon (Holm)", Align::kRight},
                            {absl::StrCat("Accuracy [", ci, " CI]"), Align::kRight},
                            {"Acc change (pp)", Align::kRight},
                            {"p acc z (Holm)", Align::kRight},
                            {"p acc McNemar (Holm)", Align::kRight},
                            {"n pairs", Align::kRight},
                            {"Majority class", Align::kRight}}));
  std::vector<const Prepared*> adapted;
  for (const auto& [arm, base] : analysis.baseline_of) adapted.push_back(arm);
  std::sort(adapted.begin(), adapted.end(), RunLess);
  for (const std::string& eval_set : EvalSets(analysis.prepared)) {
    std::vector<const Prepared*> baselines;
    for (const Prepared* a : adapted) {
      const Prepared* b = analysis.baseline_of.at(a);
      if (a->result->eval_set == eval_set &&
          std::find(baselines.begin(), baselines.end(), b) == baselines.end()) {
        baselines.push_back(b);
      }
    }
    std::sort(baselines.begin(), baselines.end(), RunLess);
    auto common = [&](const Prepared& p) {
      const ConsistencyMetrics& m = p.metrics;
      return std::vector<std::string>{
          ProportionWithCi(m.flipped_pairs, m.pairs, options.confidence),
          MarginWithCi(p.margin_diffs, options.confidence),
          ProportionWithCi(m.correct_originals, m.questions, options.confidence),
          absl::StrCat(m.pairs),
          absl::StrCat(Percent(m.majority_class_rate), m.collapsed ? " COLLAPSED" : "")};
    };
    // Each baseline row is followed by the runs compared with it.
    for (const Prepared* b : baselines) {
      auto c = common(*b);
      PCSWEEP_RETURN_IF_ERROR(out.AddRow({eval_set, RunLabel(*b), c[0], "-", "-", "-", c[1], "-",
                                          "-", c[2], "-", "-", "-", c[3], c[4]}));
      for (const Prepared* a : adapted) {
        if (a->result->eval_set != eval_set || analysis.baseline_of.at(a) != b) continue;
        auto c = common(*a);
        const Comparison* flip_z = FindComparison(analysis.sweep, *a, "flip_rate", "z_test");
        const Comparison* margin = FindComparison(analysis.sweep, *a, "margin_diff", "wilcoxon");
        const Comparison* acc_z = FindComparison(analysis.sweep, *a, "accuracy", "z_test");
        const std::string reduction = margin == nullptr || std::isnan(margin->relative_change)
                                          ? "-"
                                          : Percent(-margin->relative_change);
        PCSWEEP_RETURN_IF_ERROR(
            out.AddRow({eval_set, RunLabel(*a), c[0],
                        absl::StrFormat("%+.1f", 100 * flip_z->change), PWithHolm(flip_z),
                        PWithHolm(FindComparison(analysis.sweep, *a, "flip_rate", "mcnemar_exact")),
                        c[1], reduction, PWithHolm(margin), c[2],
                        absl::StrFormat("%+.1f", 100 * acc_z->change), PWithHolm(acc_z),
                        PWithHolm(FindComparison(analysis.sweep, *a, "accuracy", "mcnemar_exact")),
                        c[3], c[4]}));
      }
    }
  }
  out.AddNote(absl::StrCat(
      "Flip rate: pairs whose yes/no prediction differs between original and paraphrase; "
      "Wilson ",
      ci,
      " CIs. Margin diff: mean |m_q - m_p| in logits, t-interval over pairs; reduction vs "
      "base. Accuracy: originals."));
  out.AddNote(
      "p z: pooled two-proportion z-test vs base (unpaired, as the paper); McNemar: exact, "
      "paired by pair/question; Wilcoxon: signed-rank on paired |dm| changes. Holm-adjusted "
      "across arms in parentheses.");
  out.AddNote(absl::StrFormat(
      "Majority class: share of prompts given the more frequent answer; COLLAPSED: one answer "
      "for >= %.0f%% of prompts although the labels are not that lopsided.",
      100 * options.collapse_threshold));
  for (const std::string& w : analysis.sweep.warnings) out.AddNote("Warning: " + w);
  return out;
}

absl::StatusOr<table::Table> AblationTable(absl::Span<const EvalResult> results,
                                           const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Prepared> prepared, Prepare(results, options));
  std::set<std::string> keys;
  for (const Prepared& p : prepared) {
    if (p.result->variant != "adapted") continue;
    for (const auto& [key, value] : p.result->arm_params) {
      if (key != options.seed_key) keys.insert(key);
    }
  }
  using table::Align;
  const std::string ci = ConfidenceLabel(options.confidence);
  std::vector<table::Column> columns = {{"Eval set", Align::kLeft}};
  // Without arm parameters a "Model" column tells the base model from the adapted one.
  if (keys.empty()) keys.insert("Model");
  for (const std::string& key : keys) columns.push_back({key, Align::kLeft});
  columns.push_back({"Seeds", Align::kRight});
  columns.push_back({absl::StrCat("Flip rate % (mean +/- sd [", ci, " t-CI])"), Align::kRight});
  columns.push_back({absl::StrCat("Margin diff (mean +/- sd [", ci, " t-CI])"), Align::kRight});
  columns.push_back({absl::StrCat("Accuracy % (mean +/- sd [", ci, " t-CI])"), Align::kRight});
  columns.push_back({"Collapsed", Align::kRight});
  PCSWEEP_ASSIGN_OR_RETURN(
      table::Table out,
      table::Table::Create("Ablation: arms over seeds (layers x loss x ...)", std::move(columns)));
  for (const std::string& eval_set : EvalSets(prepared)) {
    // Arm name -> runs; the base model first under the name "".
    std::map<std::string, std::vector<const Prepared*>> groups;
    for (const Prepared& p : prepared) {
      if (p.result->eval_set != eval_set) continue;
      groups[p.result->variant == "base" ? "" : p.arm].push_back(&p);
    }
    for (const auto& [arm, runs] : groups) {
      std::vector<double> flips, margins, accuracy;
      int collapsed = 0;
      for (const Prepared* p : runs) {
        flips.push_back(p->metrics.flip_rate);
        margins.push_back(p->metrics.mean_margin_diff);
        accuracy.push_back(p->metrics.accuracy_original);
        collapsed += p->metrics.collapsed;
      }
      std::vector<std::string> row = {eval_set};
      for (const std::string& key : keys) {
        if (arm.empty()) {
          row.push_back(key == *keys.begin() ? "base" : "-");
          continue;
        }
        const auto& params = runs.front()->result->arm_params;
        auto it = params.find(key);
        row.push_back(it != params.end() ? it->second : key == "Model" ? arm : "-");
      }
      row.push_back(absl::StrCat(runs.size()));
      row.push_back(MeanSdCi(flips, 100, 1, options.confidence));
      row.push_back(MeanSdCi(margins, 1, 2, options.confidence));
      row.push_back(MeanSdCi(accuracy, 100, 1, options.confidence));
      row.push_back(absl::StrCat(collapsed, "/", runs.size()));
      PCSWEEP_RETURN_IF_ERROR(out.AddRow(std::move(row)));
    }
  }
  out.AddNote(
      "Mean +/- sample sd over seeds; the interval is the Student-t CI of the mean (shown "
      "with >= 2 seeds). Base rows pool the base model's evaluations.");
  return out;
}

absl::StatusOr<table::Table> PhenomenaTable(absl::Span<const EvalResult> results,
                                            const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Prepared> prepared, Prepare(results, options));
  std::set<std::string> arms;
  for (const Prepared& p : prepared) {
    if (p.result->variant == "adapted") arms.insert(p.arm);
  }
  using table::Align;
  std::vector<table::Column> columns = {
      {"Eval set", Align::kLeft}, {"Phenomenon", Align::kLeft}, {"base", Align::kRight}};
  for (const std::string& arm : arms) {
    columns.push_back({arm == "base" ? "arm base" : arm, Align::kRight});
  }
  PCSWEEP_ASSIGN_OR_RETURN(
      table::Table out,
      table::Table::Create("Flip rate by paraphrase phenomenon", std::move(columns)));
  for (const std::string& eval_set : EvalSets(prepared)) {
    // phenomenon -> column ("" = base) -> (flips, pairs), pooled over seeds.
    std::map<std::string, std::map<std::string, std::pair<int64_t, int64_t>>> counts;
    for (const Prepared& p : prepared) {
      if (p.result->eval_set != eval_set) continue;
      const std::string column = p.result->variant == "base" ? "" : p.arm;
      for (const auto& [phenomenon, fn] : p.by_phenomenon) {
        auto& cell = counts[phenomenon][column];
        cell.first += fn.first;
        cell.second += fn.second;
      }
    }
    for (const auto& [phenomenon, by_column] : counts) {
      std::vector<std::string> row = {eval_set, phenomenon.empty() ? "(untagged)" : phenomenon};
      const auto& columns_of_row = by_column;  // a structured binding cannot be captured in C++17
      auto cell = [&columns_of_row](const std::string& column) -> std::string {
        auto it = columns_of_row.find(column);
        if (it == columns_of_row.end() || it->second.second == 0) return "-";
        return absl::StrFormat("%d/%d (%s)", it->second.first, it->second.second,
                               Percent(static_cast<double>(it->second.first) / it->second.second));
      };
      row.push_back(cell(""));
      for (const std::string& arm : arms) row.push_back(cell(arm));
      PCSWEEP_RETURN_IF_ERROR(out.AddRow(std::move(row)));
    }
  }
  out.AddNote("Flipped pairs / pairs per phenomenon, pooled over seeds and base evaluations.");
  return out;
}

absl::StatusOr<std::string> ResultsPlotSvg(absl::Span<const EvalResult> results,
                                           const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Prepared> prepared, Prepare(results, options));
  std::string eval_set = options.plot_eval_set;
  if (eval_set.empty()) {
    for (const std::string& set : EvalSets(prepared)) {
      for (const Prepared& p : prepared) {
        if (p.result->eval_set == set && p.result->variant == "adapted" && eval_set.empty()) {
          eval_set = set;
        }
      }
    }
  }
  // x value -> series name -> runs.
  std::vector<std::string> categories;
  std::vector<std::string> series_names;
  std::map<std::pair<std::string, std::string>, std::vector<const Prepared*>> cells;
  std::vector<const Prepared*> base_runs;
  for (const Prepared& p : prepared) {
    if (p.result->eval_set != eval_set) continue;
    if (p.result->variant == "base") {
      base_runs.push_back(&p);
      continue;
    }
    auto params = WithoutSeed(p.result->arm_params, options.seed_key);
    std::string x = "all";
    if (auto it = params.find(options.plot_x_key); it != params.end()) {
      x = it->second;
      params.erase(it);
    }
    const std::string series = params.empty() ? "adapted" : ArmName(params, options.seed_key);
    if (std::find(categories.begin(), categories.end(), x) == categories.end()) {
      categories.push_back(x);
    }
    if (std::find(series_names.begin(), series_names.end(), series) == series_names.end()) {
      series_names.push_back(series);
    }
    cells[{x, series}].push_back(&p);
  }
  if (categories.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no adapted results on eval set '", eval_set, "' to plot"));
  }
  std::sort(series_names.begin(), series_names.end());
  plot::Panel flips;
  flips.title = "Flip rate";
  flips.y_label = "Flip rate (pairs)";
  flips.y_percent = true;
  plot::Panel margins;
  margins.title = "Mean margin difference |m_q - m_p|";
  margins.y_label = "logits";
  for (plot::Panel* panel : {&flips, &margins}) {
    panel->x_label = options.plot_x_key;
    panel->categories = categories;
  }
  for (const std::string& name : series_names) {
    plot::Series f{name, {}, {}, {}};
    plot::Series m{name, {}, {}, {}};
    for (const std::string& x : categories) {
      auto it = cells.find({x, name});
      if (it == cells.end()) {
        for (plot::Series* s : {&f, &m}) {
          s->values.push_back(kNaN);
          s->error_low.push_back(kNaN);
          s->error_high.push_back(kNaN);
        }
        continue;
      }
      const auto& runs = it->second;
      std::vector<double> flip_values, margin_values;
      for (const Prepared* p : runs) {
        flip_values.push_back(p->metrics.flip_rate);
        margin_values.push_back(p->metrics.mean_margin_diff);
      }
      absl::StatusOr<stats::TestResult> flip_ci, margin_ci;
      if (runs.size() >= 2) {
        flip_ci = stats::MeanTInterval(flip_values, options.confidence);
        margin_ci = stats::MeanTInterval(margin_values, options.confidence);
      } else {
        const ConsistencyMetrics& mm = runs.front()->metrics;
        flip_ci = stats::WilsonInterval(mm.flipped_pairs, mm.pairs, options.confidence);
        margin_ci = stats::MeanTInterval(runs.front()->margin_diffs, options.confidence);
      }
      f.values.push_back(stats::Mean(flip_values));
      m.values.push_back(stats::Mean(margin_values));
      // A t-interval over 2-3 seeds can leave [0, 1]; rates and |dm| cannot.
      f.error_low.push_back(flip_ci.ok() ? std::max(0.0, flip_ci->ci_low) : kNaN);
      f.error_high.push_back(flip_ci.ok() ? std::min(1.0, flip_ci->ci_high) : kNaN);
      m.error_low.push_back(margin_ci.ok() ? std::max(0.0, margin_ci->ci_low) : kNaN);
      m.error_high.push_back(margin_ci.ok() ? margin_ci->ci_high : kNaN);
    }
    flips.series.push_back(std::move(f));
    margins.series.push_back(std::move(m));
  }
  if (!base_runs.empty()) {
    double flip = 0, margin = 0;
    for (const Prepared* p : base_runs) {
      flip += p->metrics.flip_rate / base_runs.size();
      margin += p->metrics.mean_margin_diff / base_runs.size();
    }
    flips.reference_lines.push_back({absl::StrCat("base ", Percent(flip)), flip});
    margins.reference_lines.push_back({absl::StrFormat("base %.2f", margin), margin});
  }
  plot::Figure figure;
  figure.title =
      absl::StrCat("Flip rate and margin difference by ", options.plot_x_key, " (", eval_set,
                   "; error bars: ", ConfidenceLabel(options.confidence), " CI)");
  figure.panels = {flips, margins};
  return plot::RenderSvg(figure);
}

namespace {

// The metric `name` of `job`, or NaN when the job did not report it.
double MetricOr(const JobReport& job, const std::string& name) {
  auto it = job.metrics.find(name);
  return it == job.metrics.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

std::string LayerSelectNote(const JobReport& job) {
  const double layer = MetricOr(job, "layer_select.layer");
  const double feature = MetricOr(job, "layer_select.feature");
  const double score = MetricOr(job, "layer_select.score");
  if (std::isnan(layer) || std::isnan(feature) || std::isnan(score)) {
    return absl::StrCat("Layer selection (", job.job_key,
                        "): the job reported no layer_select.{layer, feature, score} metrics.");
  }
  std::string range;
  if (auto it = job.outputs.find("range"); it != job.outputs.end() && !it->second.empty()) {
    range = it->second;
  } else {
    const double first = MetricOr(job, "layer_select.range_first");
    const double last = MetricOr(job, "layer_select.range_last");
    range = std::isnan(first) || std::isnan(last) ? absl::StrFormat("%.0f", layer)
                                                  : absl::StrFormat("%.0f-%.0f", first, last);
  }
  std::string note = absl::StrFormat(
      "Layer selection (%s): layers %s, around layer %.0f, whose SAE feature %.0f tracks the "
      "paraphrase margin change best: |corr(feature change, margin change)| = %.3f",
      job.job_key, range, layer, feature, score);
  const double pairs = MetricOr(job, "layer_select.pairs");
  if (!std::isnan(pairs)) {
    absl::StrAppend(&note, absl::StrFormat(" over %.0f pairs", pairs));
    const double flipped = MetricOr(job, "layer_select.flipped_pairs");
    if (!std::isnan(flipped)) absl::StrAppend(&note, absl::StrFormat(" (%.0f flipped)", flipped));
  }
  const double auroc = MetricOr(job, "layer_select.auroc");
  if (!std::isnan(auroc)) {
    absl::StrAppend(&note, absl::StrFormat("; AUROC flipped vs stable pairs %.3f", auroc));
  }
  absl::StrAppend(&note, ".");
  return note;
}

std::string SaeTransferNote(const JobReport& job) {
  static constexpr absl::string_view kSuffix = ".r2_mean";
  std::vector<std::string> sets;
  for (const auto& [name, value] : job.metrics) {
    if (name.size() > kSuffix.size() && absl::EndsWith(name, kSuffix)) {
      const std::string set = name.substr(0, name.size() - kSuffix.size());
      const double low = MetricOr(job, set + ".r2_ci_low");
      const double high = MetricOr(job, set + ".r2_ci_high");
      const double p = MetricOr(job, set + ".p_value");
      const double passed = MetricOr(job, set + ".passed");
      std::string text = absl::StrFormat("%s R^2 %.3f", set, value);
      if (!std::isnan(low) && !std::isnan(high)) {
        absl::StrAppend(&text, absl::StrFormat(" [CI %.3f, %.3f]", low, high));
      }
      const std::string p_text = FormatP(p);
      absl::StrAppend(
          &text, ", p ",
          p_text[0] == '<' ? absl::StrCat("< ", p_text.substr(1)) : absl::StrCat("= ", p_text));
      if (!std::isnan(passed)) absl::StrAppend(&text, passed != 0 ? " (passed)" : " (failed)");
      sets.push_back(std::move(text));
    }
  }
  if (sets.empty()) {
    return absl::StrCat("SAE transfer (", job.job_key, "): the job reported no S.r2_mean metrics.");
  }
  return absl::StrCat("SAE transfer (", job.job_key,
                      "; one-sided t-test of mean R^2 > threshold): ", absl::StrJoin(sets, "; "),
                      ".");
}

std::string ClampNote(const JobReport& job) {
  const double layer = MetricOr(job, "clamp.layer");
  const double feature = MetricOr(job, "clamp.feature");
  const double scale = MetricOr(job, "clamp.scale");
  static constexpr absl::string_view kSuffix = ".clamp.flip_rate_change";
  std::vector<std::string> sets;
  for (const auto& [name, value] : job.metrics) {
    if (name.size() <= kSuffix.size() || !absl::EndsWith(name, kSuffix)) continue;
    const std::string set = name.substr(0, name.size() - kSuffix.size());
    const double before = MetricOr(job, set + ".base.flip_rate");
    const double after = MetricOr(job, set + ".flip_rate");
    const double relative = MetricOr(job, set + ".clamp.relative_flip_reduction");
    const double accuracy = MetricOr(job, set + ".clamp.accuracy_original_change");
    std::string text = absl::StrFormat("%s flips %s -> %s", set, Percent(before), Percent(after));
    if (!std::isnan(relative)) {
      absl::StrAppend(&text, " (", Percent(relative), " fewer)");
    }
    if (!std::isnan(accuracy)) {
      absl::StrAppend(&text, absl::StrFormat(", accuracy %+.1f pts", 100 * accuracy));
    }
    sets.push_back(std::move(text));
  }
  if (std::isnan(layer) || std::isnan(feature) || sets.empty()) {
    return absl::StrCat("Feature clamping (", job.job_key,
                        "): the job reported no clamp.{layer, feature} or S.clamp.* metrics.");
  }
  return absl::StrFormat("Feature clamping (%s): SAE feature %.0f at layer %.0f scaled by %g: %s.",
                         job.job_key, feature, layer, std::isnan(scale) ? 0.0 : scale,
                         absl::StrJoin(sets, "; "));
}

}  // namespace

std::vector<std::string> SaeSweepNotes(absl::Span<const JobReport> jobs) {
  std::vector<std::string> notes;
  for (const JobReport& job : jobs) {
    if (job.kind == "layer_select") notes.push_back(LayerSelectNote(job));
    if (job.kind == "sae_transfer") notes.push_back(SaeTransferNote(job));
    if (job.kind == "clamp_eval") notes.push_back(ClampNote(job));
  }
  return notes;
}

}  // namespace pcsweep::analysis
