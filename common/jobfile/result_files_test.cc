#include "common/jobfile/result_files.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::jobfile {
namespace {

using ::pcsweep::testutil::IsOk;
using ::pcsweep::testutil::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

TEST(ResultFilesTest, NestedMetricsAreFlattenedWithDots) {
  auto metrics = ParseMetricsFile("m.json", R"({"loss": 0.5, "acc": {"base": 0.8, "n": 3}})");
  ASSERT_THAT(metrics, IsOk());
  EXPECT_THAT(*metrics, ElementsAre(Pair("acc.base", 0.8), Pair("acc.n", 3), Pair("loss", 0.5)));
}

TEST(ResultFilesTest, MetricOfTheWrongTypeNamesItsLine) {
  auto metrics = ParseMetricsFile("m.json", "{\n \"a\": 1,\n \"b\": \"high\"\n}");
  EXPECT_THAT(metrics, StatusIs(absl::StatusCode::kInvalidArgument,
                                "m.json:3: metric \"b\" is a string, expected a number"));
  EXPECT_EQ(std::string(metrics.status().message()),
            "m.json:3: metric \"b\" is a string, expected a number");
  EXPECT_THAT(std::string(ParseMetricsFile("m.json", "[1, 2]").status().message()),
              HasSubstr("m.json:1: expected a JSON object"));
  EXPECT_THAT(std::string(ParseMetricsFile("m.json", "{\"x\": {\"y\": true}}").status().message()),
              HasSubstr("metric \"x.y\" is a boolean"));
  EXPECT_THAT(ParseMetricsFile("m.json", "{\n\"a\": 1,\n\"b\": }"),
              StatusIs(absl::StatusCode::kInvalidArgument, "m.json:3:"));
}

TEST(ResultFilesTest, OutputsKeepNumbersAsTextAndRefuseArrays) {
  auto outputs = ParseOutputsFile("o.json", R"({"adapter": "/w/a", "steps": 40, "ok": true})");
  ASSERT_THAT(outputs, IsOk());
  EXPECT_THAT(*outputs,
              ElementsAre(Pair("adapter", "/w/a"), Pair("ok", "true"), Pair("steps", "40")));
  EXPECT_THAT(std::string(ParseOutputsFile("o.json", "{\"a\": [1]}").status().message()),
              StartsWith("o.json:1: output \"a\" is a array"));
}

TEST(ResultFilesTest, AResultFileOverTheLimitIsNotRead) {
  const std::string path = ::testing::TempDir() + "/big_metrics.json";
  {
    std::ofstream out(path);
    out << "{}";
  }
  std::filesystem::resize_file(path, kMaxResultBytes + 1);
  EXPECT_THAT(ReadResultFile(path),
              StatusIs(absl::StatusCode::kResourceExhausted, "big_metrics.json is 50331649 bytes"));
  std::filesystem::remove(path);
  EXPECT_THAT(ReadResultFile(path), StatusIs(absl::StatusCode::kNotFound, "cannot read "));
}

}  // namespace
}  // namespace pcsweep::jobfile
