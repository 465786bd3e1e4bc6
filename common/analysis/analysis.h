// Turns what a sweep produced (evaluation results with per-example rows) into the paper's
// comparisons, tables and figure. Pure functions: no SQLite, no gRPC, no clock, no I/O; the
// coordinator and the CLI load the results and store or print what comes back. The ML job
// runner uses ComputeConsistencyMetrics so that jobs and analysis share one definition.
//
// Definitions (paper-notes.md §1.2; the paper leaves several open, these are our choices):
//  * One ExampleRow is one pair (original question q, one paraphrase p) on one image. The
//    margin m = logit("yes") - logit("no"); the prediction is "yes" iff m > 0.
//  * Pair flip: prediction(q) != prediction(p). Flip rate = flipped pairs / pairs.
//  * Question flip: among q and all its paraphrases (rows sharing question_id) the
//    predictions are not all equal. Question flip rate = flipped questions / questions.
//  * Margin difference of a pair = |m_q - m_p|; "mean margin difference" is its mean over
//    pairs. Reduction % = (baseline - arm) / baseline * 100.
//  * Accuracy on originals: each question_id counted once (margin_original of its first row)
//    against its label. Accuracy on all prompts: originals once plus every paraphrase.
//  * Yes rate: share of "yes" predictions over all prompts (originals once + paraphrases);
//    majority-class rate = max(yes rate, 1 - yes rate).
//  * Collapse: majority-class rate >= collapse_threshold (0.95) while the labels of the same
//    prompts are not that lopsided (label majority rate < threshold). A model that answers
//    one class for 95% of prompts of a non-degenerate set has stopped looking at the input:
//    the mode collapse of pure consistency training.
//
// Arms and baselines:
//  * An arm is a set of parameters minus the seed key: ArmName(params) = "k1=v1,k2=v2"
//    (sorted keys, seed dropped; "adapted" when nothing is left). A run is an arm plus a seed.
//  * Baseline of an "adapted" result A (eval set E, seed S or no seed): among the "base"
//    results on E whose seed equals S, or, if there is none, whose params have no seed (the
//    base model evaluated once), pick (1) the one with A's job_key (same job evaluated both),
//    else (2) one whose params minus seed equal A's, else (3) the smallest job_key. When
//    there is no candidate, A gets no comparisons and a warning says so.
//  * Paired tests pair rows by pair_id (flips, margin differences) and by question_id
//    (accuracy); units present in only one of the two results are left out of paired tests
//    (with a warning). Unpaired z-tests use all units of each result, as the paper does.
//  * Holm adjustment runs across the arms of a table: over all comparisons with the same
//    eval set, metric and test.
//
// Thread-safety: all functions are pure and may run concurrently.
#ifndef PCSWEEP_COMMON_ANALYSIS_ANALYSIS_H_
#define PCSWEEP_COMMON_ANALYSIS_ANALYSIS_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/jobfile/example_row.h"
#include "common/table/table.h"

namespace pcsweep::analysis {

// One scored pair: the examples.jsonl row of the job-file contract, so a row keeps one set of
// fields and one label type (1 = yes, 0 = no) from the child process to these statistics.
// The metrics read question_id, pair_id, phenomenon, label and the two margins.
using ExampleRow = jobfile::ExampleRow;

struct EvalResult {
  std::string job_key;
  std::map<std::string, std::string> arm_params;  // e.g. layers, loss, lambda, seed
  std::string eval_set;
  std::string variant;  // "base" | "adapted"; others (e.g. SAE clamps) are skipped here
  std::map<std::string, double> metrics;  // as the job reported them (shown, never tested)
  std::vector<ExampleRow> rows;
};

// Collects example rows stored flat (one per row, tagged with job, eval set and variant, as in
// the coordinator's `examples` table) into one EvalResult per (job, eval set, variant), in
// order of first appearance. Not thread-safe; Build() leaves the builder empty.
class EvalResultBuilder {
 public:
  void Add(const std::string& job_key, const std::map<std::string, std::string>& arm_params,
           const std::string& eval_set, const std::string& variant, ExampleRow row);
  // Attaches a job-reported metric to every result of `job_key` added so far.
  void AddMetric(const std::string& job_key, const std::string& name, double value);
  std::vector<EvalResult> Build();

 private:
  std::vector<EvalResult> results_;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index_;
};

// The proto/SQLite label encoding (1 = yes, 0 = no) as ExampleRow::label; any other value
// becomes "invalid(N)", which ComputeConsistencyMetrics rejects naming the row.
std::string LabelName(int label);

inline constexpr double kDefaultCollapseThreshold = 0.95;

struct ConsistencyMetrics {
  int64_t pairs = 0;
  int64_t flipped_pairs = 0;
  double flip_rate = 0;
  int64_t questions = 0;
  int64_t flipped_questions = 0;
  double question_flip_rate = 0;
  double mean_margin_diff = 0;  // mean |m_q - m_p| in logits
  int64_t correct_originals = 0;
  double accuracy_original = 0;
  double accuracy_all = 0;
  double yes_rate = 0;
  double majority_class_rate = 0;
  double label_majority_rate = 0;
  bool collapsed = false;

  // {"flip_rate", "question_flip_rate", "mean_margin_diff", "accuracy_original",
  //  "accuracy_all", "yes_rate", "majority_class_rate", "collapsed" (0/1), "pairs",
  //  "questions"}: the names jobs report.
  std::map<std::string, double> ToMap() const;
};

// Possible errors: InvalidArgument naming the row (index, pair_id) for: no rows, an empty or
// duplicate pair_id, an empty question_id, a label other than yes/no, rows of one question
// with different labels, a non-finite margin, or a threshold outside (0.5, 1].
absl::StatusOr<ConsistencyMetrics> ComputeConsistencyMetrics(
    absl::Span<const ExampleRow> rows, double collapse_threshold = kDefaultCollapseThreshold);

struct AnalysisOptions {
  std::string seed_key = "seed";
  double confidence = 0.95;
  int bootstrap_resamples = 1000;  // for the CI of the paired margin-difference change
  uint64_t bootstrap_seed = 0;
  double collapse_threshold = kDefaultCollapseThreshold;
  // Figure: the parameter on the x axis; the other non-seed parameters name the series.
  std::string plot_x_key = "layers";
  std::string plot_eval_set;  // "" = the first eval set in sorted order
};

// "k1=v1,k2=v2" of `params` without `seed_key`, keys sorted; "adapted" if empty.
std::string ArmName(const std::map<std::string, std::string>& params,
                    const std::string& seed_key = "seed");

// One test of one arm against its baseline on one eval set.
struct Comparison {
  std::string arm;   // ArmName of the adapted result
  std::string seed;  // its seed value, "" if none
  std::string arm_job_key;
  std::string baseline;  // job_key of the baseline result
  std::string eval_set;
  std::string metric;         // "flip_rate" | "margin_diff" | "accuracy"
  std::string test;           // "z_test" | "mcnemar_exact" | "wilcoxon"
  double baseline_value = 0;  // metric over all units of each result
  double arm_value = 0;
  double change = 0;           // arm - baseline
  double relative_change = 0;  // (arm - baseline) / baseline; NaN when baseline is 0
  double statistic = 0;        // z, min(b, c), or Wilcoxon T
  double p_value = 0;
  double adjusted_p = 0;  // Holm across the arms with the same eval set, metric and test
  // CI of arm - baseline: Wald (z-test), paired Wald (McNemar), paired percentile bootstrap
  // of the mean per-pair change (Wilcoxon).
  double ci_low = 0;
  double ci_high = 0;
  int64_t n = 0;  // z-test: units of the arm (n_baseline may differ); paired: paired units
  int64_t n_baseline = 0;
};

struct SweepAnalysis {
  std::vector<Comparison> comparisons;  // by eval set, arm, seed, metric, test
  std::vector<std::string> warnings;    // e.g. an arm without a baseline
};

// Compares every adapted result with its baseline: flip rate (z_test, mcnemar_exact),
// margin_diff (wilcoxon on per-pair |dm| changes, zero_method wilcox, auto exact/approx),
// accuracy on originals (z_test, mcnemar_exact).
// Results whose variant is neither "base" nor "adapted" are skipped with a warning.
// Possible errors: InvalidArgument naming the job for an empty eval set or rows rejected by
// ComputeConsistencyMetrics. (Wilcoxon with all-zero changes is reported as p = 1.)
absl::StatusOr<SweepAnalysis> CompareWithBaselines(absl::Span<const EvalResult> results,
                                                   const AnalysisOptions& options = {});

// `main`: per eval set, each baseline used followed by the runs compared with it (a base
// evaluated inside a training job is labelled "base seed=S (in ARM)"); flip rate, mean margin
// difference and accuracy with Wilson CIs (margin: t-interval over pairs), changes, p-values
// (raw, Holm-adjusted in parentheses), n pairs, collapse flag.
// Possible errors: as CompareWithBaselines.
absl::StatusOr<table::Table> MainTable(absl::Span<const EvalResult> results,
                                       const AnalysisOptions& options = {});

// `ablation`: per eval set, one row per arm (all non-seed params as columns, e.g. layers x
// loss x lambda) plus the base model: mean +/- sd over seeds and the t-interval of the mean
// (needs >= 2 seeds, else the single value) for flip rate, margin difference, accuracy, and
// how many seeds collapsed.
// Possible errors: as CompareWithBaselines.
absl::StatusOr<table::Table> AblationTable(absl::Span<const EvalResult> results,
                                           const AnalysisOptions& options = {});

// `phenomena`: pair flip rate per paraphrase phenomenon ("(untagged)" for ""), per eval set,
// for the base model and each arm, pooled over seeds: "k/n (x.x%)".
// Possible errors: as CompareWithBaselines.
absl::StatusOr<table::Table> PhenomenaTable(absl::Span<const EvalResult> results,
                                            const AnalysisOptions& options = {});

// The figure: two panels, flip rate and mean margin difference, x = options.plot_x_key
// values, one series per remaining arm parameters, bars = mean over seeds with t-interval
// error bars (one seed: Wilson CI for the flip rate, t-interval over pairs for the margin),
// dashed line = base model.
// Possible errors: as CompareWithBaselines; NotFound when there is no adapted result on the
// chosen eval set.
absl::StatusOr<std::string> ResultsPlotSvg(absl::Span<const EvalResult> results,
                                           const AnalysisOptions& options = {});

// What a job reported, for the notes that explain SAE-guided sweeps (experiments/sae).
struct JobReport {
  std::string job_key;  // e.g. "select" or "transfer[layer=4]"
  std::string kind;     // "layer_select", "sae_transfer", ...
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> outputs;
};

// Note lines for the main and ablation tables (ASCII, one sentence each), in job order:
//  * per `layer_select` job, which layers were selected and why: the range (output `range`,
//    else metrics layer_select.range_first/last), the best layer and its SAE feature, the
//    feature's score |corr(feature change, margin change)|, the pairs (flipped) it was
//    measured on and the AUROC of flipped vs stable pairs;
//  * per `sae_transfer` job, one line with each prompt set S (metrics S.r2_mean): mean R^2,
//    its CI, the one-sided t-test p and whether the set passed;
//  * per `clamp_eval` job, the clamped feature, layer and scale, and per eval set S the flip
//    rate unclamped -> clamped (S.base.flip_rate, S.flip_rate), the relative reduction and
//    the accuracy change on the originals (S.clamp.*).
// Jobs of other kinds give nothing; a layer_select job without its metrics says so.
std::vector<std::string> SaeSweepNotes(absl::Span<const JobReport> jobs);

// "<0.001", "0.0021" (p < 0.01), "0.651"; "-" for NaN.
std::string FormatP(double p);

}  // namespace pcsweep::analysis

#endif  // PCSWEEP_COMMON_ANALYSIS_ANALYSIS_H_
