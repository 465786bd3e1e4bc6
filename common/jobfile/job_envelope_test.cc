#include "common/jobfile/job_envelope.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::jobfile {
namespace {

using ::pcsweep::testutil::IsOk;
using ::pcsweep::testutil::StatusIs;
using json = nlohmann::json;

JobEnvelope AnEnvelope() {
  JobEnvelope envelope;
  envelope.job_id = "j1";
  envelope.attempt = 2;
  envelope.kind = "train_eval";
  envelope.config = {{"lr", 0.001}, {"layers", "0-4"}};
  envelope.params = {{"seed", "1"}};
  envelope.output_dir = "/w/out";
  return envelope;
}

TEST(JobEnvelopeTest, AWrittenFileReadsBackExactly) {
  const std::string path = ::testing::TempDir() + "/job_envelope_test_job.json";
  ASSERT_THAT(WriteJobEnvelope(path, AnEnvelope()), IsOk());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), JobEnvelopeToJson(AnEnvelope()).dump(2) + "\n");
  auto read = ParseJobEnvelope(path, text.str());
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->job_id, "j1");
  EXPECT_EQ(read->attempt, 2);
  EXPECT_EQ(read->kind, "train_eval");
  EXPECT_EQ(read->config, json({{"lr", 0.001}, {"layers", "0-4"}}));
  EXPECT_EQ(read->params, json({{"seed", "1"}}));
  EXPECT_EQ(read->output_dir, "/w/out");
  std::filesystem::remove(path);
}

TEST(JobEnvelopeTest, TheFileHoldsTheSixContractKeys) {
  const json written = JobEnvelopeToJson(AnEnvelope());
  EXPECT_EQ(written, json::parse(R"({"job_id": "j1", "attempt": 2, "kind": "train_eval",
      "config": {"lr": 0.001, "layers": "0-4"}, "params": {"seed": "1"},
      "output_dir": "/w/out"})"));
}

TEST(JobEnvelopeTest, OnlyTheKindIsRequired) {
  auto read = ParseJobEnvelope("job.json", R"({"kind": "eval"})");
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->kind, "eval");
  EXPECT_EQ(read->job_id, "");
  EXPECT_EQ(read->attempt, 1);
  EXPECT_EQ(read->config, json::object());
  EXPECT_EQ(read->params, json::object());
  EXPECT_EQ(read->output_dir, "");
  // Null config is no config; keys of another type are left at their defaults.
  read = ParseJobEnvelope("job.json", R"({"kind": "eval", "config": null, "params": [1],
      "output_dir": 3, "job_id": 7, "attempt": "2"})");
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->config, json::object());
  EXPECT_EQ(read->params, json::object());
  EXPECT_EQ(read->output_dir, "");
  EXPECT_EQ(read->job_id, "");
  EXPECT_EQ(read->attempt, 1);
}

TEST(JobEnvelopeTest, ErrorsNameTheFileAndTheKey) {
  EXPECT_EQ(
      ParseJobEnvelope("/w/job.json", R"({"kind": ["eval"], "config": {}})").status().message(),
      "/w/job.json: job needs a string \"kind\"");
  EXPECT_THAT(
      ParseJobEnvelope("/w/job.json", "[1]"),
      StatusIs(absl::StatusCode::kInvalidArgument, "/w/job.json: job needs a string \"kind\""));
  EXPECT_THAT(ParseJobEnvelope("/w/job.json", "{oops"),
              StatusIs(absl::StatusCode::kInvalidArgument, "/w/job.json: not valid JSON: "));
  EXPECT_EQ(
      ParseJobEnvelope("/w/job.json", R"({"kind": "eval", "config": [1]})").status().message(),
      "/w/job.json: \"config\" must be an object");
  EXPECT_THAT(JobEnvelopeFromJson(json{{"kind", "eval"}, {"config", "x"}}, "job"),
              StatusIs(absl::StatusCode::kInvalidArgument, "job: \"config\" must be an object"));
}

TEST(JobEnvelopeTest, AWriteThatFailsNamesTheFile) {
  const std::string path = ::testing::TempDir() + "/no_such_folder_for_job_envelope/job.json";
  EXPECT_THAT(WriteJobEnvelope(path, AnEnvelope()),
              StatusIs(absl::StatusCode::kInternal, "cannot write " + path));
}

TEST(JobEnvelopeTest, ParamsFillOnlyTheKeysConfigLacks) {
  JobEnvelope envelope;
  envelope.config = {{"seed", 3}, {"lr", 0.1}};
  envelope.params = {{"seed", "7"}, {"layers", "1-2"}};
  EXPECT_EQ(ConfigWithParams(envelope), json({{"seed", 3}, {"lr", 0.1}, {"layers", "1-2"}}));
}

}  // namespace
}  // namespace pcsweep::jobfile
