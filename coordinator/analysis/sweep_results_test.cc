#include "coordinator/analysis/sweep_results.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "common/analysis/golden.h"
#include "common/testing/status_matchers.h"
#include "coordinator/analysis/results_report.h"
#include "coordinator/store/sqlite_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class SweepResultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("pcsweep_sweep_results_test_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "coord.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static JobRecord Job(const std::string& sweep_id, int index, const std::string& name,
                       const std::string& kind, std::map<std::string, std::string> params) {
    JobRecord job;
    job.sweep_id = sweep_id;
    job.index = index;
    job.job_id = absl::StrCat(sweep_id, ".", index);
    job.name = name;
    job.stage = name.substr(0, name.find('['));
    job.kind = kind;
    job.config_hash = absl::StrCat("hash-", sweep_id, "-", index);
    job.params = std::move(params);
    job.config_json = "{}";
    job.state = JobState::kSucceeded;
    job.attempt = 1;
    return job;
  }

  // Writes one sweep: its record, its jobs and each job's rows through the real store.
  void WriteSweep(const std::string& sweep_id, int64_t finished_ms,
                  const std::vector<std::pair<JobRecord, std::vector<ExampleRow>>>& jobs) {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    WriteBatch batch;
    batch.push_back(UpsertSweep{SweepRecord{sweep_id, "paper", "name: paper\n", "paper.yaml", false,
                                            1000, finished_ms, ""}});
    for (const auto& [job, rows] : jobs) {
      batch.push_back(UpsertJob{job});
      JobResult result;
      result.metrics = {{"mimic.flip_rate", 0.5}};
      result.examples = rows;
      batch.push_back(PutResult{job.job_id, job.attempt, result});
    }
    ASSERT_TRUE((*store)->Write(std::move(batch)).get().ok());
  }

  // Adds `job` of an existing sweep with the result `result` (metrics and outputs as given).
  void WriteJob(const JobRecord& job, const JobResult& result) {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    WriteBatch batch;
    batch.push_back(UpsertJob{job});
    batch.push_back(PutResult{job.job_id, job.attempt, result});
    ASSERT_TRUE((*store)->Write(std::move(batch)).get().ok());
  }

  // The paper sweep plus the jobs of an SAE-guided one: a layer_select that picked layers
  // 3-5 and an sae_transfer on two prompt sets (one passes, one fails).
  void WriteSaeGuidedSweep() {
    WriteSweep("sae-1", 5000,
               {{Job("sae-1", 0, "baseline", "eval", {}), BaselineRows()},
                {Job("sae-1", 1, "train[layers=3-5,seed=0]", "train_eval",
                     {{"layers", "3-5"}, {"seed", "0"}}),
                 ArmRows()}});
    JobResult select;
    select.metrics = {{"layer_select.layer", 4},         {"layer_select.feature", 117},
                      {"layer_select.score", 0.6123},    {"layer_select.correlation", -0.6123},
                      {"layer_select.auroc", 0.8125},    {"layer_select.range_first", 3},
                      {"layer_select.range_last", 5},    {"layer_select.pairs", 40},
                      {"layer_select.flipped_pairs", 12}};
    select.outputs = {{"range", "3-5"}, {"layer", "4"}, {"feature", "117"}};
    WriteJob(Job("sae-1", 2, "select", "layer_select", {}), select);
    JobResult transfer;
    transfer.metrics = {
        {"medical.r2_mean", 0.9712},  {"medical.r2_ci_low", 0.9650}, {"medical.r2_ci_high", 0.9774},
        {"medical.p_value", 0.00012}, {"medical.passed", 1},         {"general.r2_mean", 0.866},
        {"general.r2_ci_low", 0.84},  {"general.r2_ci_high", 0.892}, {"general.p_value", 0.99},
        {"general.passed", 0},        {"sae_transfer.layer", 4}};
    WriteJob(Job("sae-1", 3, "transfer", "sae_transfer", {}), transfer);
  }

  // The hand-checkable sweep (see KnownRows_GiveTheTestsComputedByHand): 20 pairs, one per
  // question, margins chosen so that every count and every paired change is known.
  // Sweep paper-1, finished at 5000: a baseline eval job and one arm (5 comparisons).
  void WriteOneArmSweep() {
    WriteSweep("paper-1", 5000,
               {{Job("paper-1", 0, "baseline", "eval", {}), BaselineRows()},
                {Job("paper-1", 1, "train[layers=early,seed=0]", "train_eval",
                     {{"layers", "early"}, {"seed", "0"}}),
                 ArmRows()}});
  }

  static std::vector<ExampleRow> BaselineRows() {
    std::vector<ExampleRow> rows;
    for (int i = 0; i < 20; ++i) {
      ExampleRow r;
      r.eval_set = "mimic";
      r.variant = "base";
      r.question_id = absl::StrCat("q", 100 + i);
      r.pair_id = absl::StrCat("p", 100 + i);
      r.image = "img.png";
      r.phenomenon = i % 2 == 0 ? "negation" : "register";
      r.label = i < 16 ? 1 : 0;  // 16 yes, 4 no
      r.margin_original = 1.0;   // always "yes": 16/20 correct
      // Pairs 0-7 flip (|dm| = 2 + 0.01 i); the others keep "yes" (|dm| = 0.5 - 0.01 i).
      r.margin_paraphrase = i < 8 ? -1.0 - 0.01 * i : 0.5 + 0.01 * i;
      rows.push_back(r);
    }
    return rows;
  }
  static std::vector<ExampleRow> ArmRows() {
    std::vector<ExampleRow> rows = BaselineRows();
    for (int i = 0; i < 20; ++i) {
      ExampleRow& r = rows[i];
      r.variant = "adapted";
      // Questions 18 and 19 ("no") now right: 18/20 correct.
      r.margin_original = i < 18 ? 1.0 : -1.0;
      // Pairs 0 and 1 flip (|dm| 1.9); all others agree with |dm| 0.1.
      r.margin_paraphrase = i < 2 ? -0.9 : (i < 18 ? 0.9 : -0.9);
    }
    return rows;
  }

  std::filesystem::path dir_;
  std::string path_;
};

ComparisonUpdaterOptions UpdaterOptions(const std::string& path, Store* store) {
  ComparisonUpdaterOptions options;
  options.db_path = path;
  options.store = store;
  return options;
}

using ::pcsweep::testutil::StatusIs;

double NormalTwoSidedP(double z) { return std::erfc(std::fabs(z) / std::sqrt(2.0)); }

const ComparisonRecord* Find(const std::vector<ComparisonRecord>& records, const std::string& arm,
                             const std::string& metric, const std::string& test) {
  for (const ComparisonRecord& r : records) {
    if (r.arm == arm && r.metric == metric && r.test == test) return &r;
  }
  return nullptr;
}

TEST_F(SweepResultsTest, KnownRows_GiveTheTestsComputedByHand) {
  // A no-seed baseline `eval` job and two identical seeds of one arm whose train_eval jobs
  // report adapted rows only, so both compare with the baseline job.
  WriteSweep("paper-1", 5000,
             {{Job("paper-1", 0, "baseline", "eval", {}), BaselineRows()},
              {Job("paper-1", 1, "train[layers=early,seed=0]", "train_eval",
                   {{"layers", "early"}, {"seed", "0"}}),
               ArmRows()},
              {Job("paper-1", 2, "train[layers=early,seed=1]", "train_eval",
                   {{"layers", "early"}, {"seed", "1"}}),
               ArmRows()}});

  auto stored = RecomputeComparisons(path_, "paper");  // by name
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->sweep_id, "paper-1");
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto records = (*reader)->ListComparisons("paper-1");
  ASSERT_TRUE(records.ok()) << records.status();
  // 2 runs x (flip z, flip McNemar, margin Wilcoxon, accuracy z, accuracy McNemar).
  ASSERT_THAT(*records, SizeIs(10));

  const std::string arm = "layers=early seed=0";
  // Flip rate, pooled z: 2/20 (arm) vs 8/20 (baseline).
  const ComparisonRecord* flip_z = Find(*records, arm, "flip_rate", "z_test");
  ASSERT_NE(flip_z, nullptr);
  const double pooled = 10.0 / 40.0;
  const double z_flip = (0.1 - 0.4) / std::sqrt(pooled * (1 - pooled) * (1.0 / 20 + 1.0 / 20));
  EXPECT_NEAR(flip_z->statistic, z_flip, 1e-9);
  EXPECT_NEAR(flip_z->p, NormalTwoSidedP(z_flip), 1e-9);
  // Holm over the two identical seeds: both become min(1, 2p).
  EXPECT_NEAR(flip_z->adjusted_p, std::min(1.0, 2 * NormalTwoSidedP(z_flip)), 1e-9);
  // Wald interval of the difference, unpooled.
  const double half = 1.959963984540054 * std::sqrt(0.1 * 0.9 / 20 + 0.4 * 0.6 / 20);
  EXPECT_NEAR(flip_z->ci_low, -0.3 - half, 1e-6);
  EXPECT_NEAR(flip_z->ci_high, -0.3 + half, 1e-6);
  EXPECT_EQ(flip_z->n, 20);
  EXPECT_EQ(flip_z->baseline, "baseline");

  // Flips, exact McNemar: 6 pairs flip only under the baseline, none only under the arm:
  // p = 2 * 0.5^6.
  const ComparisonRecord* flip_mc = Find(*records, arm, "flip_rate", "mcnemar_exact");
  ASSERT_NE(flip_mc, nullptr);
  EXPECT_NEAR(flip_mc->p, 2 * std::pow(0.5, 6), 1e-12);
  EXPECT_NEAR(flip_mc->adjusted_p, 4 * std::pow(0.5, 6), 1e-12);
  EXPECT_EQ(flip_mc->statistic, 0);

  // Margin differences: all 20 paired changes are negative, distinct and non-zero, so the
  // exact Wilcoxon has T = 0 and p = 2 / 2^20.
  const ComparisonRecord* margin = Find(*records, arm, "margin_diff", "wilcoxon");
  ASSERT_NE(margin, nullptr);
  EXPECT_EQ(margin->statistic, 0);
  EXPECT_NEAR(margin->p, 2.0 / std::pow(2.0, 20), 1e-15);
  EXPECT_EQ(margin->n, 20);

  // Accuracy, pooled z: 18/20 vs 16/20.
  const ComparisonRecord* acc_z = Find(*records, arm, "accuracy", "z_test");
  ASSERT_NE(acc_z, nullptr);
  const double pooled_acc = 34.0 / 40.0;
  const double z_acc =
      (0.9 - 0.8) / std::sqrt(pooled_acc * (1 - pooled_acc) * (1.0 / 20 + 1.0 / 20));
  EXPECT_NEAR(acc_z->statistic, z_acc, 1e-9);
  EXPECT_NEAR(acc_z->p, NormalTwoSidedP(z_acc), 1e-9);
  // Accuracy, exact McNemar: 2 questions right only with the arm: p = 2 * 0.5^2.
  const ComparisonRecord* acc_mc = Find(*records, arm, "accuracy", "mcnemar_exact");
  ASSERT_NE(acc_mc, nullptr);
  EXPECT_NEAR(acc_mc->p, 0.5, 1e-12);
  EXPECT_NEAR(acc_mc->adjusted_p, 1.0, 1e-12);
}

TEST_F(SweepResultsTest, RecomputeReplacesInsteadOfAppending) {
  WriteOneArmSweep();
  ASSERT_TRUE(RecomputeComparisons(path_, "paper-1").ok());
  auto again = RecomputeComparisons(path_, "paper-1");
  ASSERT_TRUE(again.ok()) << again.status();
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  auto records = (*reader)->ListComparisons("paper-1");
  ASSERT_TRUE(records.ok());
  EXPECT_THAT(*records, SizeIs(5));
}

TEST_F(SweepResultsTest, LoadEvalResults_SplitsVariantsAndPicksTheirMetrics) {
  // A train_eval job that evaluated the base model too, on its second attempt.
  JobRecord job = Job("s-1", 0, "train[seed=0]", "train_eval", {{"seed", "0"}});
  job.attempt = 2;
  std::vector<ExampleRow> rows = BaselineRows();
  for (const ExampleRow& r : ArmRows()) rows.push_back(r);
  {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok());
    JobResult stale;
    stale.examples = BaselineRows();
    JobResult current;
    current.examples = rows;
    current.metrics = {{"mimic.base.flip_rate", 0.4}, {"mimic.flip_rate", 0.1}};
    ASSERT_TRUE(
        (*store)
            ->Write({UpsertSweep{SweepRecord{"s-1", "s", "", "", false, 1, 2, ""}}, UpsertJob{job},
                     PutResult{job.job_id, 1, stale}, PutResult{job.job_id, 2, current}})
            .get()
            .ok());
  }
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  auto results = LoadEvalResults(**reader, "s-1");
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_THAT(*results, SizeIs(2));
  EXPECT_EQ((*results)[0].variant, "base");
  EXPECT_EQ((*results)[0].job_key, "train[seed=0]");
  EXPECT_THAT((*results)[0].rows, SizeIs(20));
  EXPECT_EQ((*results)[0].rows[0].label, 1);  // yes
  EXPECT_EQ((*results)[0].rows[19].label, 0);  // no
  EXPECT_DOUBLE_EQ((*results)[0].metrics.at("flip_rate"), 0.4);
  EXPECT_EQ((*results)[1].variant, "adapted");
  EXPECT_DOUBLE_EQ((*results)[1].metrics.at("flip_rate"), 0.1);
  EXPECT_EQ((*results)[1].arm_params.at("seed"), "0");
}

TEST_F(SweepResultsTest, LoadEvalResults_ShowsAParentReferenceInTheGridAsItsValue) {
  // The demo's middle arm: `layers: "{layer_select.range}"`, resolved when it was leased.
  JobRecord train = Job("r-1", 2, "train[layers={layer_select.range},seed=0]", "train_eval",
                        {{"layers", "{layer_select.range}"}, {"seed", "0"}});
  train.depends_on = {"r-1.1"};
  WriteSweep("r-1", 5000,
             {{Job("r-1", 0, "baseline", "eval", {}), BaselineRows()}, {train, ArmRows()}});
  JobResult select;
  select.outputs = {{"range", "3-5"}, {"layer", "4"}};
  WriteJob(Job("r-1", 1, "layer_select", "layer_select", {}), select);

  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  auto results = LoadEvalResults(**reader, "r-1");
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_THAT(*results, SizeIs(2));
  EXPECT_EQ((*results)[1].job_key, "train[layers={layer_select.range},seed=0]");
  EXPECT_EQ((*results)[1].arm_params.at("layers"), "3-5");
  EXPECT_EQ((*results)[1].arm_params.at("seed"), "0");
}

TEST_F(SweepResultsTest, TablesAndPlotComeFromTheRows) {
  WriteOneArmSweep();
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  for (auto kind :
       {ResultsTableKind::kMain, ResultsTableKind::kAblation, ResultsTableKind::kPhenomena}) {
    auto table = BuildResultsTable(**reader, "paper-1", kind);
    ASSERT_TRUE(table.ok()) << table.status();
    EXPECT_THAT(table::RenderText(*table), HasSubstr("early"));
  }
  auto main = BuildResultsTable(**reader, "paper-1", ResultsTableKind::kMain);
  ASSERT_TRUE(main.ok());
  EXPECT_THAT(table::RenderText(*main), HasSubstr("layers=early seed=0"));
  EXPECT_THAT(table::RenderText(*main), HasSubstr("10.0%"));  // the arm's 2/20 flips
  auto svg = BuildResultsPlot(**reader, "paper-1");
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_THAT(*svg, HasSubstr("<svg"));

  auto empty = BuildResultsTable(**reader, "no-such-sweep", ResultsTableKind::kMain);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr("no-such-sweep"));
  EXPECT_EQ(ParseResultsTableKind("mian").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SweepResultsTest, Updater_ComputesFinishedSweepsOnceAndAgainAfterARefinish) {
  WriteOneArmSweep();
  WriteSweep("running-1", 0, {});
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto updater = ComparisonUpdater::Create(UpdaterOptions(path_, store->get()));
  ASSERT_TRUE(updater.ok());
  auto first = (*updater)->RunOnce();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, std::vector<std::string>{"paper-1"});
  auto second = (*updater)->RunOnce();
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->empty());
  // A retry finished the sweep again: recomputed.
  WriteSweep("paper-1", 9000, {});
  auto third = (*updater)->RunOnce();
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, std::vector<std::string>{"paper-1"});
  // A new process finds stored comparisons and leaves them.
  auto fresh = ComparisonUpdater::Create(UpdaterOptions(path_, store->get()));
  ASSERT_TRUE(fresh.ok());
  auto none = (*fresh)->RunOnce();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(SweepResultsTest, Errors_NameTheFileOrSweep) {
  auto missing = RecomputeComparisons((dir_ / "absent.db").string(), "x");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.db"));
  WriteSweep("paper-1", 5000, {});
  auto unknown = RecomputeComparisons(path_, "nope");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("nope"));
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_THAT(ComparisonUpdater::Create(UpdaterOptions("", store->get())).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "empty database path"));
  EXPECT_THAT(ComparisonUpdater::Create(UpdaterOptions(path_, nullptr)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "no store"));
}

// The coordinator's store is the file's only writer: the updater's comparisons go through it,
// so a store that fails its writes leaves none, and the next finish stores them.
TEST_F(SweepResultsTest, Updater_WritesThroughTheStoreItIsGiven) {
  WriteOneArmSweep();
  auto real = SqliteStore::Open(path_);
  ASSERT_TRUE(real.ok()) << real.status();
  FaultInjectingStore store(real->get());
  store.FailNextWrites(1, absl::UnavailableError("disk full"));
  auto updater = ComparisonUpdater::Create(UpdaterOptions(path_, &store));
  ASSERT_TRUE(updater.ok());
  auto failed = (*updater)->RunOnce();
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(failed->empty());
  EXPECT_EQ(store.failed_writes(), 1);
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  EXPECT_THAT(*(*reader)->ListComparisons("paper-1"), SizeIs(0));

  WriteSweep("paper-1", 9000, {});  // finished again (a retry)
  auto stored = (*updater)->RunOnce();
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, std::vector<std::string>{"paper-1"});
  EXPECT_THAT(*(*reader)->ListComparisons("paper-1"), SizeIs(5));
}

TEST_F(SweepResultsTest, Updater_StartedThreadStoresEachSweepItIsToldFinished) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto updater = ComparisonUpdater::Create(UpdaterOptions(path_, store->get()));
  ASSERT_TRUE(updater.ok());
  (*updater)->Start();
  WriteOneArmSweep();
  (*updater)->SweepFinished("paper-1");
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  // Waits for the thread's pass (a condition, not a duration: at most 30 s on a slow machine).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  size_t stored = 0;
  while (stored == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stored = (*reader)->ListComparisons("paper-1")->size();
  }
  EXPECT_EQ(stored, 5u);
  (*updater)->Shutdown();
  EXPECT_THAT((*updater)->Recompute("paper-1", {}).status(),
              StatusIs(absl::StatusCode::kUnavailable, "shutting down"));
  EXPECT_THAT((*updater)->RunOnce().status(),
              StatusIs(absl::StatusCode::kUnavailable, "shutting down"));
}

// Issue 5's acceptance: a results query on a sweep of 50,000 per-example rows answers in
// under a second. Prints the times (no timed assertion: shared CI machines vary).
TEST_F(SweepResultsTest, FiftyThousandRows_QueryTimesArePrinted) {
  constexpr int kArms = 24;  // + 1 baseline = 25 results of 2,000 pairs on one eval set
  constexpr int kPairs = 2000;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  auto rows_for = [&](const std::string& variant, double flip_noise) {
    std::vector<ExampleRow> rows;
    for (int i = 0; i < kPairs; ++i) {
      ExampleRow r;
      r.eval_set = "mimic";
      r.variant = variant;
      r.question_id = absl::StrCat("q", i / 4);  // 4 paraphrases per question
      r.pair_id = absl::StrCat("p", i);
      r.image = absl::StrCat("img", i / 8, ".png");
      r.phenomenon = i % 3 == 0 ? "negation" : "register";
      r.label = (i / 4) % 2;
      r.margin_original = (r.label == 1 ? 1.0 : -1.0) + 0.5 * noise(rng);
      r.margin_paraphrase = r.margin_original + flip_noise * noise(rng);
      rows.push_back(r);
    }
    return rows;
  };
  std::vector<std::pair<JobRecord, std::vector<ExampleRow>>> jobs;
  jobs.push_back({Job("big-1", 0, "baseline", "eval", {}), rows_for("base", 1.5)});
  for (int a = 0; a < kArms; ++a) {
    const std::string layers = a % 3 == 0 ? "early" : a % 3 == 1 ? "middle" : "all";
    const std::string seed = absl::StrCat(a / 3 % 3);
    const std::string lambda = absl::StrCat(a / 9);
    jobs.push_back(
        {Job("big-1", a + 1,
             absl::StrCat("train[lambda=", lambda, ",layers=", layers, ",seed=", seed, ",x=", a,
                          "]"),
             "train_eval",
             {{"layers", layers}, {"lambda", lambda}, {"seed", seed}, {"x", absl::StrCat(a / 9)}}),
         rows_for("adapted", 0.5)});
  }
  WriteSweep("big-1", 5000, jobs);

  // Wall time and this process's CPU time: on a loaded shared machine the wall time mostly
  // measures the other processes.
  using Clock = std::chrono::steady_clock;
  struct Timer {
    Clock::time_point wall = Clock::now();
    std::clock_t cpu = std::clock();
  };
  auto seconds_since = [](const Timer& start) {
    return absl::StrFormat("%.3f s (cpu %.3f s)",
                           std::chrono::duration<double>(Clock::now() - start.wall).count(),
                           static_cast<double>(std::clock() - start.cpu) / CLOCKS_PER_SEC);
  };
  Timer start;
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  auto results = LoadEvalResults(**reader, "big-1");
  ASSERT_TRUE(results.ok());
  const std::string load_s = seconds_since(start);
  size_t rows = 0;
  for (const auto& r : *results) rows += r.rows.size();
  EXPECT_EQ(rows, 50000u);

  start = Timer();
  auto main = BuildResultsTable(**reader, "big-1", ResultsTableKind::kMain);
  ASSERT_TRUE(main.ok()) << main.status();
  const std::string main_s = seconds_since(start);
  start = Timer();
  auto ablation = BuildResultsTable(**reader, "big-1", ResultsTableKind::kAblation);
  ASSERT_TRUE(ablation.ok()) << ablation.status();
  const std::string ablation_s = seconds_since(start);
  start = Timer();
  auto stored = RecomputeComparisons(path_, "big-1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  const std::string recompute_s = seconds_since(start);
  EXPECT_THAT(stored->records, SizeIs(kArms * 5));
  std::cout << "50,000 example rows: load " << load_s << "; main table (load + analysis) " << main_s
            << "; ablation table " << ablation_s << "; recompute + store comparisons "
            << recompute_s << std::endl;
}

void ExpectGolden(const std::string& name, const std::string& actual) {
  analysis::golden::ExpectGolden("coordinator/analysis/testdata", name, actual);
}

ResultsReportRequest TableRequest(const std::string& sweep, ResultsReportKind kind,
                                  table::Format format) {
  ResultsReportRequest request;
  request.sweep = sweep;
  request.kind = kind;
  request.format = format;
  return request;
}

TEST_F(SweepResultsTest, SaeGuidedSweep_TablesSayWhichLayersWereSelectedAndWhy) {
  WriteSaeGuidedSweep();
  const std::pair<table::Format, const char*> formats[] = {
      {table::Format::kText, "sae_main.txt.golden"},
      {table::Format::kMarkdown, "sae_main.md.golden"},
      {table::Format::kLatex, "sae_main.tex.golden"},
      {table::Format::kJson, "sae_main.json.golden"}};
  for (const auto& [format, golden] : formats) {
    auto report =
        RenderResultsReport(path_, TableRequest("sae-1", ResultsReportKind::kMainTable, format));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_THAT(report->text, HasSubstr("layers 3-5, around layer 4"));
    EXPECT_THAT(report->text, HasSubstr("117"));
    EXPECT_THAT(report->text, HasSubstr("0.812"));  // AUROC
    if (format == table::Format::kText) {
      EXPECT_THAT(report->text,
                  HasSubstr("medical R^2 0.971 [CI 0.965, 0.977], p < 0.001 (passed)"));
      EXPECT_THAT(report->text,
                  HasSubstr("general R^2 0.866 [CI 0.840, 0.892], p = 0.990 (failed)"));
    }
    ExpectGolden(golden, report->text);
  }
  auto ablation = RenderResultsReport(
      path_, TableRequest("sae-1", ResultsReportKind::kAblationTable, table::Format::kText));
  ASSERT_TRUE(ablation.ok()) << ablation.status();
  EXPECT_THAT(ablation->text, HasSubstr("Layer selection (select): layers 3-5"));
  ExpectGolden("sae_ablation.txt.golden", ablation->text);
  // CSV stays bare; the phenomena table is not about layers.
  for (auto [kind, format] :
       {std::pair{ResultsReportKind::kMainTable, table::Format::kCsv},
        std::pair{ResultsReportKind::kPhenomenaTable, table::Format::kText}}) {
    auto bare = RenderResultsReport(path_, TableRequest("sae-1", kind, format));
    ASSERT_TRUE(bare.ok()) << bare.status();
    EXPECT_THAT(bare->text, Not(HasSubstr("Layer selection")));
    EXPECT_THAT(bare->text, Not(HasSubstr("SAE transfer")));
  }
}

TEST_F(SweepResultsTest, Report_StoresComparisonsOnceThenOnlyWhenAsked) {
  WriteOneArmSweep();
  auto first = RenderResultsReport(
      path_, TableRequest("paper", ResultsReportKind::kMainTable, table::Format::kMarkdown));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->sweep_id, "paper-1");  // by name
  EXPECT_THAT(first->notes, testing::ElementsAre(
                                absl::StrCat("5 comparisons of sweep paper-1 stored in ", path_)));
  EXPECT_THAT(first->text, HasSubstr("layers=early seed=0"));
  auto again = RenderResultsReport(
      path_, TableRequest("paper-1", ResultsReportKind::kMainTable, table::Format::kMarkdown));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->notes.empty());
  EXPECT_EQ(again->text, first->text);

  ResultsReportRequest recompute;
  recompute.sweep = "paper-1";
  recompute.kind = ResultsReportKind::kComparisonsOnly;
  EXPECT_EQ(RenderResultsReport(path_, recompute).status().code(),
            absl::StatusCode::kInvalidArgument);
  recompute.recompute = true;
  auto stored = RenderResultsReport(path_, recompute);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(stored->text.empty());
  EXPECT_THAT(stored->notes, SizeIs(1));

  ResultsReportRequest plot;
  plot.sweep = "paper-1";
  plot.kind = ResultsReportKind::kPlot;
  auto svg = RenderResultsReport(path_, plot);
  ASSERT_TRUE(svg.ok()) << svg.status();
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(svg->text, *BuildResultsPlot(**reader, "paper-1"));
}

TEST_F(SweepResultsTest, Report_ErrorsNameTheDatabaseAndSweep) {
  WriteSweep("paper-1", 5000, {});
  auto unknown = RenderResultsReport(
      path_, TableRequest("nope", ResultsReportKind::kMainTable, table::Format::kText));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), absl::StrCat(path_, ": no sweep with id or name 'nope'"));
  auto no_rows = RenderResultsReport(
      path_, TableRequest("paper-1", ResultsReportKind::kMainTable, table::Format::kText));
  EXPECT_EQ(no_rows.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(no_rows.status().message(), HasSubstr("no per-example evaluation rows"));
  auto no_file = RenderResultsReport(
      (dir_ / "absent.db").string(),
      TableRequest("paper-1", ResultsReportKind::kMainTable, table::Format::kText));
  EXPECT_EQ(no_file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(no_file.status().message(), HasSubstr("absent.db"));
  EXPECT_EQ(ParseTableReportKind("phenomena").value(), ResultsReportKind::kPhenomenaTable);
  EXPECT_EQ(ParseTableReportKind("plot").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ResultsQueueTest, RunsTasksInOrderRefusesBeyondCapacityAndDrainsOnDestruction) {
  std::vector<int> ran;
  absl::Notification release;
  {
    ResultsQueue queue(/*capacity=*/2);
    absl::Notification started;
    // The first task blocks the thread so that the next ones wait in the queue.
    ASSERT_TRUE(queue.TrySchedule([&] {
      started.Notify();
      release.WaitForNotification();
      ran.push_back(1);
    }));
    started.WaitForNotification();
    EXPECT_TRUE(queue.TrySchedule([&] { ran.push_back(2); }));
    EXPECT_TRUE(queue.TrySchedule([&] { ran.push_back(3); }));
    EXPECT_FALSE(queue.TrySchedule([&] { ran.push_back(4); }));  // 2 already waiting
    release.Notify();
  }  // the destructor runs 2 and 3 before joining
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

}  // namespace
}  // namespace pcsweep::coordinator
