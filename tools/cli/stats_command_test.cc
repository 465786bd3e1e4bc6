#include "tools/cli/stats_command.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::cli {
namespace {

using ::pcsweep::testutil::StatusIs;

namespace fs = std::filesystem;
using testing::HasSubstr;

class StatsCommandTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("pcsweep_stats_command_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& content) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }
  fs::path dir_;
};

TEST_F(StatsCommandTest, ZTestPaperNumberAsText) {
  auto out = RunStatsCommand({"z-test", "--x1", "23", "--n1", "158", "--x2", "7", "--n2", "158"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("two-proportion z-test (pooled, two-sided)"));
  EXPECT_THAT(*out, HasSubstr("statistic:  3.07058"));
  EXPECT_THAT(*out, HasSubstr("p-value:    0.00213646"));  // statsmodels: 0.0021364615909762598
  EXPECT_THAT(*out, HasSubstr("95% CI:"));
  EXPECT_THAT(*out, HasSubstr("n:          316"));
}

TEST_F(StatsCommandTest, ZTestJsonWithContinuity) {
  auto out = RunStatsCommand({"z-test", "--x1", "23", "--n1", "158", "--x2", "7", "--n2", "158",
                              "--continuity", "--format", "json"});
  ASSERT_TRUE(out.ok()) << out.status();
  auto j = nlohmann::json::parse(*out);
  // scipy.stats.chi2_contingency([[23, 135], [7, 151]], correction=True) -> p
  EXPECT_NEAR(j["p_value"].get<double>(), 0.003993620647905085, 1e-6);
  EXPECT_LT(j["ci_low"].get<double>(), j["ci_high"].get<double>());
  EXPECT_EQ(j["n"].get<int>(), 316);
  EXPECT_EQ(j["confidence"].get<double>(), 0.95);
}

TEST_F(StatsCommandTest, McNemarExactAndChi2) {
  // statsmodels mcnemar([[0, 20], [4, 0]], exact=True).pvalue = 0.001543879508972168
  auto exact = RunStatsCommand({"mcnemar", "--b", "20", "--c", "4", "--format", "json"});
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_NEAR(nlohmann::json::parse(*exact)["p_value"].get<double>(), 0.001543879508972168, 1e-9);
  EXPECT_TRUE(nlohmann::json::parse(*exact)["ci_low"].is_null());  // no --n, no CI
  // mcnemar(..., exact=False, correction=True): statistic 9.375, p 0.00219964706111306
  auto chi2 = RunStatsCommand(
      {"mcnemar", "--b", "20", "--c", "4", "--chi2", "--n", "158", "--format", "json"});
  ASSERT_TRUE(chi2.ok()) << chi2.status();
  auto j = nlohmann::json::parse(*chi2);
  EXPECT_NEAR(j["statistic"].get<double>(), 9.375, 1e-9);
  EXPECT_NEAR(j["p_value"].get<double>(), 0.00219964706111306, 1e-9);
  EXPECT_FALSE(j["ci_low"].is_null());
  EXPECT_THAT(
      RunStatsCommand({"mcnemar", "--b", "1", "--c", "2", "--exact", "--chi2"}),
      StatusIs(absl::StatusCode::kInvalidArgument, "--exact and --chi2 exclude each other"));
}

TEST_F(StatsCommandTest, WilcoxonFromPairsFile) {
  // d = x - y = [1.5, -0.3, 2.2, 0.7, -1.1, 3.4, 0.9]; scipy.stats.wilcoxon(d, mode="exact")
  // -> statistic 5.0, p 0.15625
  const std::string path = Write("pairs.csv",
                                 "before,after\n"
                                 "2.5, 1.0\n1.0 1.3\n3.2,1.0\n# comment\n1.7 1.0\n"
                                 "0.0 1.1\n4.4 1.0\n1.9,1.0\n");
  auto out = RunStatsCommand({"wilcoxon", "--pairs", path, "--format", "json"});
  ASSERT_TRUE(out.ok()) << out.status();
  auto j = nlohmann::json::parse(*out);
  EXPECT_NEAR(j["statistic"].get<double>(), 5.0, 1e-9);
  EXPECT_NEAR(j["p_value"].get<double>(), 0.15625, 1e-9);
  EXPECT_EQ(j["n"].get<int>(), 7);
  EXPECT_THAT(j["ci_of"].get<std::string>(), HasSubstr("bootstrap"));
  EXPECT_LT(j["ci_low"].get<double>(), j["ci_high"].get<double>());
}

TEST_F(StatsCommandTest, WilcoxonReportsFileAndLine) {
  const std::string path = Write("bad.txt", "1 2\n3 x\n");
  auto out = RunStatsCommand({"wilcoxon", "--pairs", path});
  ASSERT_THAT(
      out, StatusIs(absl::StatusCode::kInvalidArgument, "bad.txt:2: 'x' is not a finite number"));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("bad.txt:2: 'x'"));
  const std::string three = Write("three.txt", "1 2 3\n");
  EXPECT_THAT(std::string(RunStatsCommand({"wilcoxon", "--pairs", three}).status().message()),
              HasSubstr("expected 2"));
  EXPECT_EQ(RunStatsCommand({"wilcoxon", "--pairs", (dir_ / "missing").string()}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StatsCommandTest, OneSidedTTestAndWelch) {
  // scipy.stats.ttest_1samp([0.97, 0.99, 0.98, 0.995, 0.96], 0.95, alternative="greater")
  // -> t 4.5290390947695585, p 0.005292546518376178, CI (0.9653495202039323, inf)
  const std::string values = Write("r2.txt", "0.97\n0.99 0.98\n0.995, 0.96\n");
  auto out = RunStatsCommand({"t-test", "--values", values, "--mu", "0.95", "--alternative",
                              "greater", "--format", "json"});
  ASSERT_TRUE(out.ok()) << out.status();
  auto j = nlohmann::json::parse(*out);
  EXPECT_NEAR(j["statistic"].get<double>(), 4.5290390947695585, 1e-6);
  EXPECT_NEAR(j["p_value"].get<double>(), 0.005292546518376178, 1e-9);
  EXPECT_NEAR(j["ci_low"].get<double>(), 0.9653495202039323, 1e-9);
  EXPECT_TRUE(j["ci_high"].is_null());  // unbounded one-sided interval
  // scipy.stats.ttest_ind([1, 2], [3, 4, 5], equal_var=False) -> p 0.049416256862577515
  const std::string a = Write("a.txt", "1\n2\n");
  const std::string b = Write("b.txt", "3\n4\n5\n");
  auto welch = RunStatsCommand({"t-test", "--values", a, "--values2", b, "--format", "json"});
  ASSERT_TRUE(welch.ok()) << welch.status();
  EXPECT_NEAR(nlohmann::json::parse(*welch)["p_value"].get<double>(), 0.049416256862577515, 1e-9);
}

TEST_F(StatsCommandTest, BadFlagsAndInputsAreOneLineErrors) {
  auto missing = RunStatsCommand({"z-test", "--x1", "3"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = RunStatsCommand({"z-test", "--x1", "30", "--n1", "20", "--x2", "1", "--n2", "5"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("x1 must be in [0, n1=20]"));
  EXPECT_FALSE(RunStatsCommand({"z-test", "--x1", "1", "--n1", "2", "--x2", "1", "--n2", "2",
                                "--format", "yaml"})
                   .ok());
  EXPECT_THAT(RunStatsCommand({}),
              StatusIs(absl::StatusCode::kInvalidArgument, "stats: A subcommand is required"));
}

TEST(StatsCommandText, WholeZTestReport) {
  // CI: statsmodels confint_proportions_2indep(23, 158, 7, 158, method="wald", compare="diff")
  // = (0.03759895293336328, 0.16493269263625698).
  auto out = RunStatsCommand({"z-test", "--x1", "23", "--n1", "158", "--x2", "7", "--n2", "158"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "test:       two-proportion z-test (pooled, two-sided)\n"
            "statistic:  3.07058\n"
            "p-value:    0.00213646\n"
            "95% CI:     [0.037599, 0.164933]  (p1 - p2, Wald)\n"
            "n:          316\n");
}

TEST(AddStatsCommand, RegistersTheTree) {
  CLI::App app("pcsweep");
  AddStatsCommand(app);
  CLI::App* stats = app.get_subcommand("stats");
  ASSERT_NE(stats, nullptr);
  for (const char* name : {"z-test", "mcnemar", "wilcoxon", "t-test"}) {
    EXPECT_NE(stats->get_subcommand(name), nullptr) << name;
  }
}

}  // namespace
}  // namespace pcsweep::cli
