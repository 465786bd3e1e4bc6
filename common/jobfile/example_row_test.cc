#include "common/jobfile/example_row.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::jobfile {
namespace {

using ::pcsweep::testutil::IsOk;
using ::pcsweep::testutil::StatusIs;
using ::testing::StartsWith;

TEST(ExampleRowTest, AWrittenRowReadsBackExactly) {
  ExampleRow row;
  row.eval_set = "eval_mimic";
  row.variant = "adapted";
  row.question_id = "q7";
  row.pair_id = "q7#2";
  row.image = "images/x7.png";
  row.phenomenon = "negation_pattern";
  row.label = 1;
  row.margin_original = 0.1 + 0.2;  // not a short decimal: the text must keep every bit
  row.margin_paraphrase = -3e-17;
  auto line = ExampleRowToJsonLine(row);
  ASSERT_THAT(line, IsOk());
  EXPECT_THAT(*line, testing::HasSubstr(R"("label":"yes")"));
  auto read = ParseExampleRow("e.jsonl", 1, *line);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->eval_set, row.eval_set);
  EXPECT_EQ(read->variant, row.variant);
  EXPECT_EQ(read->question_id, row.question_id);
  EXPECT_EQ(read->pair_id, row.pair_id);
  EXPECT_EQ(read->image, row.image);
  EXPECT_EQ(read->phenomenon, row.phenomenon);
  EXPECT_EQ(read->label, 1);
  EXPECT_EQ(read->margin_original, row.margin_original);
  EXPECT_EQ(read->margin_paraphrase, row.margin_paraphrase);
}

TEST(ExampleRowTest, AHandWrittenRowMayUseShortMarginsNumericIdsAndAnyLabelForm) {
  auto rows =
      ParseExampleRows("e.jsonl", R"({"m_q": 2.5, "m_p": -1, "question_id": 7, "label": true}
{"margin_original": 1, "margin_paraphrase": 0.25, "label": 0, "image": null}

{"m_q": 0, "m_p": 0, "label": "yes"})");
  ASSERT_THAT(rows, IsOk());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].question_id, "7");
  EXPECT_EQ((*rows)[0].label, 1);
  EXPECT_EQ((*rows)[0].margin_original, 2.5);
  EXPECT_EQ((*rows)[1].label, 0);
  EXPECT_EQ((*rows)[1].image, "");
  EXPECT_EQ((*rows)[1].margin_paraphrase, 0.25);
  EXPECT_EQ((*rows)[2].label, 1);
}

TEST(ExampleRowTest, ANonFiniteMarginIsNotWritten) {
  ExampleRow row;
  row.pair_id = "q2#2";
  row.margin_original = -0.75;
  row.margin_paraphrase = std::numeric_limits<double>::infinity();
  EXPECT_THAT(ExampleRowToJsonLine(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  "pair q2#2: non-finite margin (-0.75, inf)"));
}

TEST(ExampleRowTest, ErrorsNameTheFileAndLine) {
  const std::string good = R"({"m_q": 1, "m_p": 2})";
  EXPECT_THAT(ParseExampleRows("e.jsonl", good + "\n" + R"({"m_q": 1})" + "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "e.jsonl:2: missing \"m_p\" (or \"margin_paraphrase\")"));
  auto label = ParseExampleRows("e.jsonl", R"({"m_q": 1, "m_p": 2, "label": 3})");
  EXPECT_THAT(std::string(label.status().message()), StartsWith("e.jsonl:1: field \"label\" is 3"));
  auto broken = ParseExampleRows("e.jsonl", good + "\n\n" + "{oops");
  EXPECT_THAT(std::string(broken.status().message()), StartsWith("e.jsonl:3:"));
  EXPECT_THAT(
      ParseExampleRows("e.jsonl", good + "\n[1]"),
      StatusIs(absl::StatusCode::kInvalidArgument, "e.jsonl:2: expected a JSON object, got array"));
  EXPECT_THAT(ParseExampleRows("e.jsonl", R"({"m_q": 1, "m_p": "2"})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "e.jsonl:1: field \"m_p\" is a string, expected a number"));
  EXPECT_THAT(ParseExampleRows("e.jsonl", R"({"m_q": 1, "m_p": 2, "variant": [1]})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "e.jsonl:1: field \"variant\" is a array, expected a string"));
}

TEST(ExampleRowTest, ARowOverTheLimitIsRefusedWithItsLine) {
  const std::string big =
      R"({"m_q": 1, "m_p": 2, "image": ")" + std::string(kMaxExampleRowBytes, 'x') + "\"}";
  EXPECT_THAT(ParseExampleRows("e.jsonl", "\n" + big),
              StatusIs(absl::StatusCode::kResourceExhausted, "e.jsonl:2: a row of "));
}

}  // namespace
}  // namespace pcsweep::jobfile
