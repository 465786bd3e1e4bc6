#include "common/analysis/analysis.h"

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/analysis/golden.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::analysis {
namespace {

using ::pcsweep::testutil::StatusIs;

namespace fs = std::filesystem;
constexpr double kTol = 1e-6;
constexpr int kN = 158;

// A scored pair with the fields the metrics read (label 1 = yes, 0 = no).
ExampleRow Row(std::string question_id, std::string pair_id, std::string image,
               std::string phenomenon, int label, double margin_original,
               double margin_paraphrase) {
  ExampleRow row;
  row.question_id = std::move(question_id);
  row.pair_id = std::move(pair_id);
  row.image = std::move(image);
  row.phenomenon = std::move(phenomenon);
  row.label = label;
  row.margin_original = margin_original;
  row.margin_paraphrase = margin_paraphrase;
  return row;
}

// The fixture sweep, mirrored line by line in Python to get the reference values:
//   def run(flips, wrong, mp):          # question i: label yes iff i even
//     for i in range(158): s = 1 if i % 2 == 0 else -1; sq = -s if i in wrong else s
//       sp = -sq if i in flips else sq; row = (sq * 1.0, sp * mp, label)
//   base = run(set(range(0, 23)), set(range(0, 25)), 0.6)
//   a0 = run(set(range(16, 23)), set(range(3, 31)), 0.8)    # arm, seed 0
//   a1 = run(set(range(10, 23)), set(range(0, 25)), 0.8)    # arm, seed 1
// So the base model flips 23/158 pairs and answers 133/158 originals correctly (the paper's
// MIMIC numbers); seed 0 flips 7/158 and gets 130/158.
EvalResult MakeRun(const std::string& job_key, std::map<std::string, std::string> params,
                   const std::string& variant, int flip_from, int flip_to, int wrong_from,
                   int wrong_to, double paraphrase_scale) {
  EvalResult result;
  result.job_key = job_key;
  result.arm_params = std::move(params);
  result.eval_set = "mimic";
  result.variant = variant;
  for (int i = 0; i < kN; ++i) {
    const double s = i % 2 == 0 ? 1 : -1;
    const double sq = (i >= wrong_from && i < wrong_to) ? -s : s;
    const double sp = (i >= flip_from && i < flip_to) ? -sq : sq;
    ExampleRow row;
    row.question_id = "q" + std::to_string(i);
    row.pair_id = "p" + std::to_string(i);
    row.image = "img" + std::to_string(i) + ".png";
    row.phenomenon = i % 2 == 0 ? "synonym" : "negation";
    row.label = i % 2 == 0 ? 1 : 0;
    row.margin_original = sq * 1.0;
    row.margin_paraphrase = sp * paraphrase_scale;
    result.rows.push_back(row);
  }
  return result;
}

std::vector<EvalResult> Sweep() {
  const std::map<std::string, std::string> arm = {{"layers", "15-19"}, {"loss", "combined"}};
  auto seed0 = arm;
  seed0["seed"] = "0";
  auto seed1 = arm;
  seed1["seed"] = "1";
  return {
      MakeRun("eval-base", {}, "base", 0, 23, 0, 25, 0.6),
      MakeRun("train[layers=15-19,loss=combined,seed=1]", seed1, "adapted", 10, 23, 0, 25, 0.8),
      MakeRun("train[layers=15-19,loss=combined,seed=0]", seed0, "adapted", 16, 23, 3, 31, 0.8)};
}

const Comparison& Find(const SweepAnalysis& a, const std::string& seed, const std::string& metric,
                       const std::string& test) {
  for (const Comparison& c : a.comparisons) {
    if (c.seed == seed && c.metric == metric && c.test == test) return c;
  }
  ADD_FAILURE() << "no comparison " << seed << " " << metric << " " << test;
  static Comparison none;
  return none;
}

TEST(ComputeConsistencyMetrics, CountsPairsQuestionsAndRates) {
  const EvalResult base = Sweep()[0];
  auto m = ComputeConsistencyMetrics(base.rows);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->pairs, 158);
  EXPECT_EQ(m->flipped_pairs, 23);
  EXPECT_NEAR(m->flip_rate, 23.0 / 158, 1e-12);  // 14.6%
  EXPECT_EQ(m->questions, 158);
  EXPECT_EQ(m->flipped_questions, 23);
  EXPECT_EQ(m->correct_originals, 133);  // 84.2%
  // |dm| = 1.6 for the 23 flips, 0.4 otherwise.
  EXPECT_NEAR(m->mean_margin_diff, (23 * 1.6 + 135 * 0.4) / 158, 1e-9);
  // All prompts: originals 133 correct; paraphrases correct = originals correct that did not
  // flip + originals wrong that flipped: (133 - 0) + ... computed from the construction:
  // wrong originals 0..24, flips 0..22 -> paraphrases 0..22 are right, 23..24 wrong, 25.. right.
  EXPECT_NEAR(m->accuracy_all, (133.0 + (158 - 2)) / 316, 1e-12);
  EXPECT_FALSE(m->collapsed);
  EXPECT_EQ(m->ToMap().at("flip_rate"), m->flip_rate);
}

TEST(ComputeConsistencyMetrics, QuestionLevelFlipsAndCollapse) {
  // q1 has two paraphrases, one flipped: 1 of 2 pairs flip, 1 of 1 question flips.
  std::vector<ExampleRow> rows = {Row("q1", "a", "i", "syn", 1, 2.0, 1.0),
                                  Row("q1", "b", "i", "neg", 1, 2.0, -0.5)};
  auto m = ComputeConsistencyMetrics(rows);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->flip_rate, 0.5);
  EXPECT_DOUBLE_EQ(m->question_flip_rate, 1.0);
  EXPECT_EQ(m->questions, 1);
  EXPECT_DOUBLE_EQ(m->accuracy_all, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m->yes_rate, 2.0 / 3);
  // A model answering "yes" to everything on a balanced set has collapsed.
  std::vector<ExampleRow> collapsed;
  for (int i = 0; i < 40; ++i) {
    collapsed.push_back(
        Row("q" + std::to_string(i), "p" + std::to_string(i), "", "", i % 2 ? 1 : 0, 3.0, 2.5));
  }
  auto c = ComputeConsistencyMetrics(collapsed);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->collapsed);
  EXPECT_DOUBLE_EQ(c->majority_class_rate, 1.0);
  // The same answers on an all-"yes" set are not collapse: the labels are lopsided too.
  for (auto& row : collapsed) row.label = 1;
  EXPECT_FALSE(ComputeConsistencyMetrics(collapsed)->collapsed);
}

TEST(ComputeConsistencyMetrics, RejectsBadRowsWithLocation) {
  std::vector<ExampleRow> rows = {Row("q1", "a", "", "", 1, 1, 1), Row("q2", "a", "", "", 1, 1, 1)};
  auto dup = ComputeConsistencyMetrics(rows);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(dup.status().message()),
              testing::HasSubstr("row 1 (pair_id 'a'): duplicate pair_id"));
  rows[1].pair_id = "b";
  rows[1].label = 2;
  EXPECT_THAT(std::string(ComputeConsistencyMetrics(rows).status().message()),
              testing::HasSubstr("label must be yes or no"));
  rows[1].label = 1;
  rows[1].margin_paraphrase = NAN;
  EXPECT_THAT(ComputeConsistencyMetrics(rows),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "row 1 (pair_id 'b'): margin is not a finite number"));
  rows[1] = Row("q1", "b", "", "", 0, 1, 1);
  EXPECT_THAT(std::string(ComputeConsistencyMetrics(rows).status().message()),
              testing::HasSubstr("disagrees"));
  EXPECT_THAT(ComputeConsistencyMetrics({}),
              StatusIs(absl::StatusCode::kInvalidArgument, "no per-example rows"));
}

TEST(CompareWithBaselines, EqualsTestsComputedByHand) {
  const auto sweep = Sweep();
  auto analysis = CompareWithBaselines(sweep);
  ASSERT_TRUE(analysis.ok()) << analysis.status();
  EXPECT_EQ(analysis->comparisons.size(), 10u);  // 2 runs x 5 tests
  // Reference values: the Python mirror above, then
  //   proportions_ztest([flips(a).sum(), flips(base).sum()], [158, 158])
  //   mcnemar([[0, b], [c, 0]], exact=True), b = a-only flips, c = base-only flips
  //   scipy.stats.wilcoxon(md(a) - md(base), zero_method="wilcox", correction=True,
  //                        mode="approx")
  //   multipletests([p_seed0, p_seed1], method="holm")
  const Comparison& z0 = Find(*analysis, "0", "flip_rate", "z_test");
  EXPECT_EQ(z0.arm, "layers=15-19,loss=combined");
  EXPECT_EQ(z0.baseline, "eval-base");  // no seeded base: the unseeded one
  EXPECT_NEAR(z0.statistic, -3.0705762046297154, kTol);
  EXPECT_NEAR(z0.p_value, 0.0021364615909762598, kTol);  // the paper's p = 0.002
  EXPECT_NEAR(z0.change, (7.0 - 23.0) / 158, 1e-12);
  EXPECT_EQ(z0.n, 158);
  const Comparison& z1 = Find(*analysis, "1", "flip_rate", "z_test");
  EXPECT_NEAR(z1.p_value, 0.0766321164222498, kTol);
  EXPECT_NEAR(z0.adjusted_p, 2 * 0.0021364615909762598, kTol);  // Holm over the 2 runs
  EXPECT_NEAR(z1.adjusted_p, 0.0766321164222498, kTol);

  const Comparison& m0 = Find(*analysis, "0", "flip_rate", "mcnemar_exact");
  EXPECT_NEAR(m0.statistic, 0, kTol);
  EXPECT_NEAR(m0.p_value, 3.0517578125e-05, 1e-9);
  EXPECT_NEAR(m0.adjusted_p, 2 * 3.0517578125e-05, 1e-9);
  EXPECT_LT(m0.ci_high, 0);  // arm - base on paired pairs: -16/158 +- ...
  EXPECT_NEAR((m0.ci_low + m0.ci_high) / 2, -16.0 / 158, 1e-9);
  EXPECT_NEAR(Find(*analysis, "1", "flip_rate", "mcnemar_exact").p_value, 0.001953125, 1e-9);

  const Comparison& w0 = Find(*analysis, "0", "margin_diff", "wilcoxon");
  EXPECT_NEAR(w0.statistic, 28.0, kTol);
  EXPECT_NEAR(w0.p_value, 3.6688385190148887e-32, 1e-36);
  EXPECT_NEAR(w0.arm_value, 0.2708860759493671, 1e-9);
  EXPECT_NEAR(w0.baseline_value, 0.5746835443037975, 1e-9);
  EXPECT_NEAR(-100 * w0.relative_change, 100 * (1 - 0.2708860759493671 / 0.5746835443037975),
              1e-6);  // mean reduction %
  EXPECT_LT(w0.ci_low, w0.change);
  EXPECT_GT(w0.ci_high, w0.change);
  const Comparison& w1 = Find(*analysis, "1", "margin_diff", "wilcoxon");
  EXPECT_NEAR(w1.statistic, 91.0, kTol);
  EXPECT_NEAR(w1.p_value, 1.5081353074880562e-31, 1e-35);

  const Comparison& a0 = Find(*analysis, "0", "accuracy", "z_test");
  EXPECT_NEAR(a0.statistic, -0.45169885219480954, kTol);
  EXPECT_NEAR(a0.p_value, 0.651485945234894, kTol);  // the paper's "not significant"
  EXPECT_NEAR(Find(*analysis, "0", "accuracy", "mcnemar_exact").p_value, 0.5078125, kTol);
  EXPECT_NEAR(Find(*analysis, "0", "accuracy", "mcnemar_exact").statistic, 3.0, kTol);
  EXPECT_NEAR(Find(*analysis, "1", "accuracy", "z_test").p_value, 1.0, kTol);
  EXPECT_NEAR(Find(*analysis, "1", "accuracy", "mcnemar_exact").p_value, 1.0, kTol);
  EXPECT_TRUE(analysis->warnings.empty());
}

TEST(CompareWithBaselines, PrefersSeedMatchedBaselineAndWarnsWithoutOne) {
  auto sweep = Sweep();
  EvalResult seeded_base = MakeRun("eval-base-seed1", {{"seed", "1"}}, "base", 0, 30, 0, 25, 0.6);
  sweep.push_back(seeded_base);
  EvalResult other_set = sweep[2];
  other_set.eval_set = "padchest";
  sweep.push_back(other_set);
  auto analysis = CompareWithBaselines(sweep);
  ASSERT_TRUE(analysis.ok()) << analysis.status();
  EXPECT_EQ(Find(*analysis, "1", "flip_rate", "z_test").baseline, "eval-base-seed1");
  EXPECT_EQ(Find(*analysis, "0", "flip_rate", "z_test").baseline, "eval-base");
  ASSERT_EQ(analysis->warnings.size(), 1u);
  EXPECT_THAT(analysis->warnings[0], testing::HasSubstr("padchest"));
  // A clamp variant is skipped with a warning; bad rows fail with the job named.
  sweep.push_back(sweep[0]);
  sweep.back().variant = "clamp=0";
  auto with_clamp = CompareWithBaselines(sweep);
  ASSERT_TRUE(with_clamp.ok());
  EXPECT_EQ(with_clamp->warnings.size(), 2u);
  EXPECT_THAT(with_clamp->warnings[0], testing::HasSubstr("variant 'clamp=0'"));
  sweep[0].rows[3].label = 2;
  EXPECT_THAT(std::string(CompareWithBaselines(sweep).status().message()),
              testing::HasSubstr("job 'eval-base' eval set 'mimic': row 3 (pair_id 'p3')"));
}

void ExpectGolden(const std::string& name, const std::string& actual) {
  golden::ExpectGolden("common/analysis/testdata", name, actual);
}

TEST(Tables, MainTableGolden) {
  auto table = MainTable(Sweep());
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows().size(), 3u);  // base, seed 0, seed 1
  EXPECT_EQ(table->rows()[0][1], "base");
  EXPECT_EQ(table->rows()[0][2], "14.6% [9.9, 20.9]");  // Wilson, cf. stats_test
  EXPECT_EQ(table->rows()[1][1], "layers=15-19,loss=combined seed=0");
  EXPECT_EQ(table->rows()[1][2], "4.4% [2.2, 8.9]");
  EXPECT_EQ(table->rows()[1][4], "0.0021 (0.0043)");
  ExpectGolden("main.txt.golden", table::RenderText(*table));
  ExpectGolden("main.tex.golden", table::RenderLatex(*table));
}

TEST(Tables, MainTableGroupsRunsUnderTheirBaselines) {
  // train_eval jobs evaluate the base model themselves: one base row per job, each followed
  // by its own adapted run.
  std::vector<EvalResult> sweep;
  for (const char* layers : {"0-4", "15-19"}) {
    const std::map<std::string, std::string> params = {{"layers", layers}, {"seed", "0"}};
    const std::string job = std::string("train[layers=") + layers + ",seed=0]";
    sweep.push_back(MakeRun(job, params, "base", 0, 23, 0, 25, 0.6));
    sweep.push_back(MakeRun(job, params, "adapted", 16, 23, 3, 31, 0.8));
  }
  auto table = MainTable(sweep);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows().size(), 4u);
  EXPECT_EQ(table->rows()[0][1], "base seed=0 (in layers=0-4)");
  EXPECT_EQ(table->rows()[1][1], "layers=0-4 seed=0");
  EXPECT_EQ(table->rows()[2][1], "base seed=0 (in layers=15-19)");
  EXPECT_EQ(table->rows()[3][1], "layers=15-19 seed=0");
  EXPECT_EQ(table->rows()[3][4], "0.0021 (0.0043)");
}

TEST(Tables, AblationTableGolden) {
  auto sweep = Sweep();
  // A second arm with one seed, to show layers x loss.
  EvalResult full =
      MakeRun("train[layers=0-33,loss=ce,seed=0]",
              {{"layers", "0-33"}, {"loss", "ce"}, {"seed", "0"}}, "adapted", 5, 23, 0, 25, 0.8);
  sweep.push_back(full);
  auto table = AblationTable(sweep);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows().size(), 3u);
  // Seeds 0 and 1 flip 7 and 13 of 158: mean 6.3%, sd 2.7 pp.
  EXPECT_THAT(table->rows()[2][4], testing::StartsWith("6.3 +/- 2.7 ["));
  ExpectGolden("ablation.txt.golden", table::RenderText(*table));
}

TEST(Tables, PhenomenaTableGolden) {
  auto table = PhenomenaTable(Sweep());
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows().size(), 2u);
  // Base flips pairs 0..22: 11 odd (negation) of 79, 12 even (synonym) of 79.
  EXPECT_EQ(table->rows()[0][1], "negation");
  EXPECT_EQ(table->rows()[0][2], "11/79 (13.9%)");
  EXPECT_EQ(table->rows()[1][2], "12/79 (15.2%)");
  ExpectGolden("phenomena.md.golden", table::RenderMarkdown(*table));
}

TEST(Plot, SweepFigureHasBothPanels) {
  auto svg = ResultsPlotSvg(Sweep());
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_THAT(*svg, testing::HasSubstr("Flip rate"));
  EXPECT_THAT(*svg, testing::HasSubstr("Mean margin difference"));
  EXPECT_THAT(*svg, testing::HasSubstr("base 14.6%"));
  EXPECT_THAT(*svg, testing::HasSubstr(">15-19</text>"));
  if (const char* out = std::getenv("PCSWEEP_PLOT_OUT")) std::ofstream(out) << *svg;
  AnalysisOptions options;
  options.plot_eval_set = "nope";
  EXPECT_EQ(ResultsPlotSvg(Sweep(), options).status().code(), absl::StatusCode::kNotFound);
}

TEST(MainTable, FiftyThousandRowsMakeOneRowPerRun) {
  // 1 base + 4 runs on 10,000 pairs each = 50,000 rows.
  std::vector<EvalResult> sweep;
  for (int r = 0; r < 5; ++r) {
    EvalResult result;
    result.job_key = "job" + std::to_string(r);
    result.eval_set = "big";
    result.variant = r == 0 ? "base" : "adapted";
    if (r > 0) result.arm_params = {{"layers", std::to_string(r)}};
    for (int i = 0; i < 10000; ++i) {
      const double m = std::sin(i * 0.37 + r);
      result.rows.push_back(Row("q" + std::to_string(i / 2), "p" + std::to_string(i), "", "ph",
                                (i / 2) % 3 ? 1 : 0, m, m + std::cos(i * 1.3 * r)));
    }
    sweep.push_back(std::move(result));
  }
  // The table at sweep scale. No time budget here: a timed test on shared CI cores says more
  // about the neighbours than about this code.
  auto table = MainTable(sweep);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->rows().size(), 5u);
}

TEST(EvalResultBuilder, GroupsFlatRowsByJobEvalSetAndVariant) {
  EvalResultBuilder builder;
  const std::map<std::string, std::string> params = {{"layers", "15-19"}, {"seed", "0"}};
  builder.Add("job1", params, "mimic", "base", Row("q1", "p1", "", "", 1, 1, 1));
  builder.Add("job1", params, "mimic", "adapted", Row("q1", "p1", "", "", 1, 1, -1));
  builder.Add("job1", params, "mimic", "base", Row("q2", "p2", "", "", 0, -1, -1));
  builder.Add("job1", params, "padchest", "base", Row("q9", "p9", "", "", 7, 1, 1));
  builder.AddMetric("job1", "train_loss", 0.5);
  std::vector<EvalResult> results = builder.Build();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].variant, "base");
  EXPECT_EQ(results[0].rows.size(), 2u);
  EXPECT_EQ(results[0].rows[1].label, 0);
  EXPECT_EQ(results[1].variant, "adapted");
  EXPECT_EQ(results[2].eval_set, "padchest");
  EXPECT_EQ(results[2].metrics.at("train_loss"), 0.5);
  EXPECT_TRUE(builder.Build().empty());
  // The invalid label is caught with its location.
  EXPECT_THAT(std::string(CompareWithBaselines(results).status().message()),
              testing::HasSubstr("label must be yes or no (1 or 0), got 7"));
}

TEST(FormatP, PaperStyle) {
  EXPECT_EQ(FormatP(0.0021364615909762598), "0.0021");
  EXPECT_EQ(FormatP(0.651485945234894), "0.651");
  EXPECT_EQ(FormatP(0.0004), "<0.001");
  EXPECT_EQ(FormatP(NAN), "-");
}

TEST(SaeSweepNotes, ExplainTheLayerSelectionAndTheTransferTest) {
  JobReport select{"select",
                   "layer_select",
                   {{"layer_select.layer", 12},
                    {"layer_select.feature", 3071},
                    {"layer_select.score", 0.41},
                    {"layer_select.auroc", 0.7349},
                    {"layer_select.range_first", 11},
                    {"layer_select.range_last", 13},
                    {"layer_select.pairs", 200},
                    {"layer_select.flipped_pairs", 31}},
                   {}};
  JobReport transfer{"transfer",
                     "sae_transfer",
                     {{"medical.r2_mean", 0.9},
                      {"medical.r2_ci_low", 0.88},
                      {"medical.r2_ci_high", 0.92},
                      {"medical.p_value", 0.0042},
                      {"medical.passed", 1}},
                     {}};
  JobReport eval{"eval", "eval", {{"mimic.flip_rate", 0.2}}, {}};
  EXPECT_THAT(
      SaeSweepNotes({eval, select, transfer}),
      testing::ElementsAre(
          "Layer selection (select): layers 11-13, around layer 12, whose SAE feature 3071 "
          "tracks the paraphrase margin change best: |corr(feature change, margin change)| = "
          "0.410 over 200 pairs (31 flipped); AUROC flipped vs stable pairs 0.735.",
          "SAE transfer (transfer; one-sided t-test of mean R^2 > threshold): medical R^2 0.900 "
          "[CI 0.880, 0.920], p = 0.0042 (passed)."));
  // The job's `range` output wins over the metrics; missing metrics are said, not invented.
  select.outputs["range"] = "10-14";
  EXPECT_THAT(SaeSweepNotes({select})[0], testing::HasSubstr("layers 10-14, around layer 12"));
  JobReport empty{"select2", "layer_select", {}, {}};
  EXPECT_THAT(SaeSweepNotes({empty, JobReport{"t2", "sae_transfer", {}, {}}}),
              testing::ElementsAre(
                  "Layer selection (select2): the job reported no layer_select.{layer, feature, "
                  "score} metrics.",
                  "SAE transfer (t2): the job reported no S.r2_mean metrics."));
}

TEST(SaeSweepNotes, SayWhatClampingAFeatureDid) {
  JobReport clamp{"clamp",
                  "clamp_eval",
                  {{"clamp.layer", 17},
                   {"clamp.feature", 4242},
                   {"clamp.scale", 0},
                   {"mimic.base.flip_rate", 0.146},
                   {"mimic.flip_rate", 0.1},
                   {"mimic.clamp.flip_rate_change", -0.046},
                   {"mimic.clamp.relative_flip_reduction", 0.315},
                   {"mimic.clamp.accuracy_original_change", -0.013}},
                  {}};
  EXPECT_THAT(SaeSweepNotes({clamp}),
              testing::ElementsAre("Feature clamping (clamp): SAE feature 4242 at layer 17 scaled "
                                   "by 0: mimic flips 14.6% -> 10.0% (31.5% fewer), accuracy "
                                   "-1.3 pts."));
  EXPECT_THAT(SaeSweepNotes({JobReport{"c2", "clamp_eval", {}, {}}}),
              testing::ElementsAre("Feature clamping (c2): the job reported no clamp.{layer, "
                                   "feature} or S.clamp.* metrics."));
}

}  // namespace
}  // namespace pcsweep::analysis
