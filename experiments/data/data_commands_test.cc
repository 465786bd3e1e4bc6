#include "experiments/data/data_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string TestData(const std::string& name) {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  return (fs::path(root ? root : ".") / "experiments/data/testdata" / name).string();
}

// Runs `args` through an app holding the data commands; returns the exit code.
int RunCommand(std::vector<std::string> args) {
  CLI::App app("test");
  app.require_subcommand(1);
  AddDataCommands(app);
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector.
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.get_exit_code();
  }
  return 0;
}

TEST(DataCommandsTest, SynthWritesTheBenchmark) {
  const fs::path out =
      fs::path(::testing::TempDir()) / ("pcsweep_cmd_synth_" + std::to_string(::getpid()));
  fs::remove_all(out);
  EXPECT_EQ(
      RunCommand({"synth", "--out", out.string(), "--seed", "4", "--image-size", "16", "--pretrain",
                  "20", "--train", "10", "--eval-mimic", "10", "--eval-balanced", "10"}),
      0);
  for (const char* file :
       {"pretrain.jsonl", "train.jsonl", "eval_mimic.jsonl", "eval_balanced.jsonl",
        "eval_mimic.json", "corpus.txt", "manifest.json"}) {
    EXPECT_TRUE(fs::exists(out / file)) << file;
  }
  EXPECT_EQ(RunCommand({"inspect", (out / "train.jsonl").string()}), 0);
  fs::remove_all(out);
}

TEST(DataCommandsTest, BadOptionsAndBadRecordsExitNonZero) {
  EXPECT_NE(RunCommand({"synth", "--out", ::testing::TempDir() + "/x", "--image-size", "4"}), 0);
  EXPECT_NE(RunCommand({"inspect", TestData("canonical_bad.jsonl")}), 0);
  EXPECT_NE(RunCommand({"inspect", TestData("missing.csv")}), 0);
  EXPECT_NE(RunCommand({"inspect", TestData("canonical.jsonl"), "--format", "parquet"}), 0);
}

TEST(DataCommandsTest, InspectReportCountsPhenomenaLabelsAndErrors) {
  LoadOptions options;
  options.skip_bad = true;
  auto dataset = LoadFlipBankCsv(TestData("flipbank_bad.csv"), options);
  ASSERT_TRUE(dataset.ok());
  std::ostringstream out;
  PrintInspectReport("flipbank_bad.csv", *dataset, out);
  const std::string report = out.str();
  EXPECT_THAT(report, HasSubstr("6 records, 2 questions (yes 1, no 1, other 0)"));
  EXPECT_THAT(report, HasSubstr("syntactic_restructuring"));
  EXPECT_THAT(report, HasSubstr("bad records skipped: 4"));
  EXPECT_THAT(report, HasSubstr("flipbank_bad.csv:3: expected 7 fields, found 6"));
}

}  // namespace
}  // namespace pcsweep::data
