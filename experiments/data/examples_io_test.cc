#include "experiments/data/examples_io.h"

#include <cmath>
#include <fstream>
#include <limits>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::data {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::HasSubstr;

ExampleRow Row(int i) {
  ExampleRow r;
  r.eval_set = "eval_mimic";
  r.variant = i % 2 ? "adapted" : "base";
  r.question_id = "q" + std::to_string(i);
  r.pair_id = r.question_id + "#" + std::to_string(i % 3);
  r.image = "images/x" + std::to_string(i) + ".png";
  r.phenomenon = "negation_pattern";
  r.label = i % 2;
  r.margin_original = 0.125 * i - 1;
  r.margin_paraphrase = -0.3 * i + 1e-7;
  return r;
}

TEST(ExamplesIoTest, RoundTripsExactly) {
  const std::string path = ::testing::TempDir() + "/examples.jsonl";
  std::vector<ExampleRow> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(Row(i));
  ASSERT_TRUE(WriteExamples(path, rows).ok());
  auto read = ReadExamples(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ((*read)[i].pair_id, rows[i].pair_id);
    EXPECT_EQ((*read)[i].variant, rows[i].variant);
    EXPECT_EQ((*read)[i].label, rows[i].label);
    EXPECT_EQ((*read)[i].margin_original, rows[i].margin_original);  // Bit-exact.
    EXPECT_EQ((*read)[i].margin_paraphrase, rows[i].margin_paraphrase);
  }
}

TEST(ExamplesIoTest, UsesTheContractFieldNames) {
  auto line = jobfile::ExampleRowToJsonLine(Row(1));
  ASSERT_TRUE(line.ok());
  const auto j = nlohmann::json::parse(*line);
  std::set<std::string> keys;
  for (const auto& item : j.items()) keys.insert(item.key());
  EXPECT_EQ(keys,
            (std::set<std::string>{"eval_set", "variant", "question_id", "pair_id", "image",
                                   "phenomenon", "label", "margin_original", "margin_paraphrase"}));
}

TEST(ExamplesIoTest, AppendsToAnExistingFile) {
  const std::string path = ::testing::TempDir() + "/append.jsonl";
  ASSERT_TRUE(WriteExamples(path, {Row(0)}).ok());
  auto writer = ExamplesWriter::Open(path, /*append=*/true);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Write(Row(1)).ok());
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_EQ(ReadExamples(path)->size(), 2u);
}

TEST(ExamplesIoTest, NonFiniteMarginIsRejected) {
  ExampleRow r = Row(2);
  r.margin_paraphrase = std::numeric_limits<double>::quiet_NaN();
  auto line = jobfile::ExampleRowToJsonLine(r);
  ASSERT_THAT(line, StatusIs(absl::StatusCode::kInvalidArgument,
                             "pair q2#2: non-finite margin (-0.75, nan)"));
  EXPECT_THAT(line.status().message(), HasSubstr(r.pair_id));
}

TEST(ExamplesIoTest, BadLineNamesFileLineAndField) {
  const std::string path = ::testing::TempDir() + "/bad_examples.jsonl";
  {
    std::ofstream out(path);
    out << *jobfile::ExampleRowToJsonLine(Row(0)) << "\n\n"
        << R"({"eval_set":"e","variant":"v","question_id":"q","pair_id":"p","image":"i",)"
        << R"("phenomenon":"x","label":"yes","margin_original":1})"
        << "\n";
  }
  auto read = ReadExamples(path);
  ASSERT_THAT(read, StatusIs(absl::StatusCode::kInvalidArgument,
                             "bad_examples.jsonl:3: missing \"m_p\" (or \"margin_paraphrase\")"));
  EXPECT_THAT(read.status().message(), HasSubstr("bad_examples.jsonl:3: missing \"m_p\""));
  EXPECT_EQ(ReadExamples(path + ".none").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pcsweep::data
