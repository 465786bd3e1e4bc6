#include "common/jobfile/progress_line.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::jobfile {
namespace {

using ::pcsweep::testutil::IsOk;
using ::pcsweep::testutil::StatusIs;

TEST(ProgressLineTest, AWrittenLineReadsBack) {
  ProgressLine line;
  line.progress = 0.4;
  line.message = "step 40/100";
  line.eta_s = 11.6;  // whole seconds on the wire
  const std::string text = ProgressLineToJson(line);
  EXPECT_EQ(text, R"({"eta_s":12,"message":"step 40/100","progress":0.4})");
  auto read = ParseProgressLine(text);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->progress, 0.4);
  EXPECT_EQ(read->message, "step 40/100");
  EXPECT_EQ(read->eta_s, 12);
}

TEST(ProgressLineTest, TheWriterClampsAndLeavesOutAnUnknownEta) {
  ProgressLine line;
  line.progress = 1.5;
  line.message = "done";
  line.eta_s = 0;  // unknown
  EXPECT_EQ(ProgressLineToJson(line), R"({"message":"done","progress":1.0})");
  line.progress = -1;
  line.eta_s.reset();
  line.message.reset();
  EXPECT_EQ(ProgressLineToJson(line), R"({"progress":0.0})");
}

TEST(ProgressLineTest, TheReaderClampsAndSkipsFieldsOfTheWrongType) {
  auto read = ParseProgressLine(R"({"progress": 7, "message": 3, "eta_s": -5})");
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->progress, 1.0);
  EXPECT_FALSE(read->message.has_value());
  EXPECT_EQ(read->eta_s, 0.0);
  read = ParseProgressLine(R"({"message": "only a message"})");
  ASSERT_THAT(read, IsOk());
  EXPECT_FALSE(read->progress.has_value());
  EXPECT_EQ(read->message, "only a message");
  EXPECT_FALSE(read->eta_s.has_value());
}

TEST(ProgressLineTest, ALineThatIsNotAnObjectIsAnError) {
  EXPECT_THAT(ParseProgressLine("not json"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not JSON: "));
  EXPECT_THAT(ParseProgressLine("[0.5]"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a JSON object"));
}

TEST(ProgressLineTest, TheStdoutPrefixAndTheFdVariableAreTheContractNames) {
  EXPECT_EQ(kStdoutProgressPrefix, "PCSWEEP_PROGRESS ");
  EXPECT_STREQ(kProgressFdEnv, "PCSWEEP_PROGRESS_FD");
}

}  // namespace
}  // namespace pcsweep::jobfile
