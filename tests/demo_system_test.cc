// The paper demo, reduced (tests/demo_reduced.yaml: tiny benchmark, a few steps, one seed):
// `pcsweep local` runs pretrain -> baseline eval -> two train_eval cells with two in-process
// workers and real pcsweep-run children; then the paper tables and the figure must come out
// of the database: example rows and stored comparisons exist, and `results --db --table`
// prints the arms.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "coordinator/store/store_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"

namespace pcsweep {
namespace {

namespace fs = std::filesystem;
using ::pcsweep::testing::CommandResult;
using ::pcsweep::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

class DemoSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = EnvOr("PCSWEEP_BINARY_ROOT", "build") + "/bin";
    pcsweep_ = bin + "/pcsweep";
    if (!fs::exists(bin + "/pcsweep-run")) {
      GTEST_SKIP() << "pcsweep-run is not built (PCSWEEP_WITH_TORCH=OFF?): no ML jobs to run";
    }
    source_ = EnvOr("PCSWEEP_SOURCE_ROOT", ".");
    dir_ = fs::temp_directory_path() / absl::StrCat("pcsweep_demo_system_test_", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "demo.db").string();
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  CommandResult Run(std::vector<std::string> args, absl::Duration timeout) {
    args.insert(args.begin(), pcsweep_);
    auto result = RunCommand(args, timeout, {"PCSWEEP_THREADS=1"});
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{-1, "", result.status().ToString()};
  }

  std::string pcsweep_;
  std::string source_;
  fs::path dir_;
  std::string db_;
};

TEST_F(DemoSystemTest, ReducedDemo_TablesAndPlotComeFromTheDatabase) {
  const CommandResult local = Run({"local", "--workers", "2", "--db", db_, "--work-dir",
                                   (dir_ / "work").string(), source_ + "/tests/demo_reduced.yaml"},
                                  absl::Seconds(800));
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.err, HasSubstr("comparisons stored"));

  // The rows behind the tables are in the database.
  auto reader = coordinator::StoreReader::OpenReadOnly(db_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto sweep = (*reader)->GetSweep("demo-reduced");
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->succeeded, 5);
  auto examples = (*reader)->ListExamples(sweep->sweep.sweep_id);
  ASSERT_TRUE(examples.ok());
  EXPECT_FALSE(examples->empty());
  auto comparisons = (*reader)->ListComparisons(sweep->sweep.sweep_id);
  ASSERT_TRUE(comparisons.ok());
  // 2 arms x 2 eval sets x (flip z, flip McNemar, margin Wilcoxon, accuracy z, McNemar).
  EXPECT_EQ(comparisons->size(), 2u * 2u * 5u);
  for (const auto& c : *comparisons) EXPECT_EQ(c.baseline, "baseline") << c.arm;

  const CommandResult main =
      Run({"results", "demo-reduced", "--db", db_, "--table", "main"}, absl::Seconds(30));
  ASSERT_EQ(main.exit_code, 0) << main.err;
  EXPECT_THAT(main.out, HasSubstr("loss=ce_only"));
  EXPECT_THAT(main.out, HasSubstr("loss=combined"));
  EXPECT_THAT(main.out, HasSubstr("eval_mimic"));
  EXPECT_THAT(main.out, HasSubstr("eval_balanced"));
  // The arm's layers are the range layer_select chose, and the table says why.
  EXPECT_THAT(main.out, HasSubstr("Layer selection (layer_select): layers "));
  EXPECT_THAT(main.out, Not(HasSubstr("{layer_select.range}")));
  for (const std::string table : {"ablation", "phenomena"}) {
    const CommandResult out =
        Run({"results", "demo-reduced", "--db", db_, "--table", table, "--format", "markdown"},
            absl::Seconds(30));
    EXPECT_EQ(out.exit_code, 0) << table << ": " << out.err;
    EXPECT_THAT(out.out, HasSubstr("|")) << table;
  }
  const CommandResult latex =
      Run({"results", "demo-reduced", "--db", db_, "--table", "main", "--format", "latex"},
          absl::Seconds(30));
  EXPECT_THAT(latex.out, HasSubstr("\\begin{tabular}"));

  const std::string svg = (dir_ / "demo.svg").string();
  const CommandResult plot =
      Run({"plot", "demo-reduced", "--db", db_, "--out", svg}, absl::Seconds(30));
  ASSERT_EQ(plot.exit_code, 0) << plot.err;
  std::ifstream in(svg);
  std::string first_line;
  std::getline(in, first_line);
  EXPECT_THAT(first_line, HasSubstr("<"));

  // Bad input: one clear line.
  const CommandResult bad =
      Run({"results", "demo-reduced", "--db", db_, "--table", "mian"}, absl::Seconds(30));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("'mian' is not one of main, ablation, phenomena"));
}

}  // namespace
}  // namespace pcsweep
