#include "coordinator/web/views.h"

#include "absl/strings/match.h"
#include "coordinator/web/auth.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator::web {
namespace {

using ::testing::ElementsAre;

MATCHER_P2(StatusIs, code, substring, "") {
  return arg.code() == code && absl::StrContains(arg.message(), substring);
}

constexpr int64_t kNowMs = 1'000'000'000;
const absl::Time kNow = absl::FromUnixMillis(kNowMs);

JobRecord Job(int index, const std::string& stage, JobState state) {
  JobRecord job;
  job.job_id = "s-1." + std::to_string(index);
  job.sweep_id = "s-1";
  job.index = index;
  job.name = stage + "[x=" + std::to_string(index) + "]";
  job.stage = stage;
  job.kind = "command";
  job.params = {{"x", std::to_string(index)}};
  job.state = state;
  job.attempt = state == JobState::kPending ? 0 : 1;
  return job;
}

SweepSummary Summary(const std::vector<JobRecord>& jobs, int64_t finished_ms = 0) {
  SweepSummary s;
  s.sweep.sweep_id = "s-1";
  s.sweep.name = "s";
  s.sweep.created_ms = kNowMs - 60'000;
  s.sweep.finished_ms = finished_ms;
  s.total = static_cast<int>(jobs.size());
  for (const JobRecord& j : jobs) {
    switch (j.state) {
      case JobState::kPending:
        ++s.pending;
        break;
      case JobState::kLeased:
        ++s.leased;
        break;
      case JobState::kRunning:
        ++s.running;
        break;
      case JobState::kSucceeded:
        ++s.succeeded;
        s.reused += !j.reused_from.empty();
        break;
      case JobState::kFailed:
        ++s.failed;
        break;
      default:
        ++s.cancelled;
    }
  }
  return s;
}

std::vector<JobRecord> FourJobs() {
  std::vector<JobRecord> jobs = {
      Job(0, "pre", JobState::kSucceeded), Job(1, "train", JobState::kRunning),
      Job(2, "train", JobState::kFailed), Job(3, "train", JobState::kPending)};
  jobs[0].started_ms = kNowMs - 50'000;
  jobs[0].finished_ms = kNowMs - 40'000;
  jobs[1].started_ms = kNowMs - 10'000;
  jobs[1].progress = 0.25;
  jobs[1].worker_id = "w1";
  jobs[2].error = "exit code 3\nboom: something broke";
  return jobs;
}

TEST(ViewsTest, SummaryJsonHasCountsProgressAgeAndEta) {
  const std::vector<JobRecord> jobs = FourJobs();
  const nlohmann::ordered_json j = SummaryJson(BuildSummaryView(Summary(jobs), jobs, kNow));
  EXPECT_EQ(j["sweep_id"], "s-1");
  EXPECT_EQ(j["state"], "active");
  EXPECT_EQ(j["total"], 4);
  EXPECT_EQ(j["done"], 2);
  EXPECT_DOUBLE_EQ(j["progress"].get<double>(), 0.5);
  EXPECT_EQ(j["age_ms"], 60'000);
  // 2 done in the 50 s since the first start, 2 to go: 50 s more.
  EXPECT_EQ(j["eta_ms"], 50'000);
  EXPECT_EQ(j["counts"]["running"], 1);
  EXPECT_EQ(j["counts"]["failed"], 1);
  EXPECT_EQ(j["counts"]["reused"], 0);
}

TEST(ViewsTest, FinishedSweepWithFailuresHasNoEtaAndItsAgeStopsAtTheFinish) {
  std::vector<JobRecord> jobs = {Job(0, "a", JobState::kSucceeded), Job(1, "a", JobState::kFailed)};
  const nlohmann::ordered_json j =
      SummaryJson(BuildSummaryView(Summary(jobs, kNowMs - 20'000), jobs, kNow));
  EXPECT_EQ(j["state"], "finished with failures");
  EXPECT_TRUE(j["eta_ms"].is_null());
  EXPECT_EQ(j["age_ms"], 40'000);
}

TEST(ViewsTest, SweepJsonListsJobsWithElapsedEtaAndTheStderrTailInTheError) {
  const std::vector<JobRecord> jobs = FourJobs();
  const nlohmann::ordered_json j = SweepJson(BuildSweepView(Summary(jobs), jobs, {}, kNow));
  EXPECT_EQ(j["matching"], 4);
  EXPECT_THAT(j["stages"].get<std::vector<std::string>>(), ElementsAre("pre", "train"));
  const auto& running = j["jobs"][1];
  EXPECT_EQ(running["state"], "running");
  EXPECT_EQ(running["worker"], "w1");
  EXPECT_EQ(running["elapsed_ms"], 10'000);
  EXPECT_EQ(running["eta_ms"], 30'000);  // 25% in 10 s
  EXPECT_EQ(j["jobs"][0]["elapsed_ms"], 10'000);
  EXPECT_TRUE(j["jobs"][0]["eta_ms"].is_null());
  EXPECT_DOUBLE_EQ(j["jobs"][0]["progress"].get<double>(), 1.0);
  EXPECT_EQ(j["jobs"][2]["error"], "exit code 3\nboom: something broke");
  EXPECT_EQ(j["jobs"][3]["params"]["x"], "3");
}

TEST(ViewsTest, FilterSelectsByStateAndStageAndCountsBeyondTheLimit) {
  const std::vector<JobRecord> jobs = FourJobs();
  auto filter = ParseJobFilter("", "train", "1");
  ASSERT_TRUE(filter.ok()) << filter.status();
  SweepView view = BuildSweepView(Summary(jobs), jobs, *filter, kNow);
  EXPECT_EQ(view.matching, 3);
  ASSERT_EQ(view.jobs.size(), 1u);
  EXPECT_EQ(view.jobs[0].job.index, 1);
  EXPECT_EQ(view.failed.size(), 1u);  // failed jobs are listed whatever the filter

  filter = ParseJobFilter("ACTIVE", "", "");
  ASSERT_TRUE(filter.ok());
  view = BuildSweepView(Summary(jobs), jobs, *filter, kNow);
  ASSERT_EQ(view.jobs.size(), 1u);
  EXPECT_EQ(view.jobs[0].state, "running");
  filter = ParseJobFilter("failed", "pre", "");
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ(BuildSweepView(Summary(jobs), jobs, *filter, kNow).matching, 0);
}

TEST(ViewsTest, ReusedJobsAreTheirOwnStateAndCountAsSucceeded) {
  std::vector<JobRecord> jobs = {Job(0, "a", JobState::kSucceeded),
                                 Job(1, "a", JobState::kSucceeded)};
  jobs[1].reused_from = "old-1.0";
  EXPECT_EQ(JobStateLabel(jobs[1]), "reused");
  auto reused = ParseJobFilter("reused", "", "");
  auto succeeded = ParseJobFilter("succeeded", "", "");
  ASSERT_TRUE(reused.ok() && succeeded.ok());
  EXPECT_EQ(BuildSweepView(Summary(jobs), jobs, *reused, kNow).matching, 1);
  EXPECT_EQ(BuildSweepView(Summary(jobs), jobs, *succeeded, kNow).matching, 2);
}

TEST(ViewsTest, BadFiltersNameTheValue) {
  EXPECT_THAT(ParseJobFilter("done", "", "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "state: 'done' is not one of"));
  EXPECT_THAT(ParseJobFilter("", "", "0").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "limit: '0' is not a number from 1"));
  EXPECT_THAT(ParseJobFilter("", "", "ten").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "limit: 'ten'"));
}

TEST(ViewsTest, WorkersJsonHasGpusHeartbeatAgeAndRunningJobs) {
  WorkerStatus w;
  w.worker.worker_id = "gpu-1";
  w.worker.host = "node7";
  w.worker.slots = 2;
  w.worker.gpus = {{0, "H100", int64_t{80} << 30}};
  w.worker.state = "alive";
  w.worker.last_heartbeat_ms = kNowMs - 1500;
  w.running = {{"s-1.3", 2}};
  const nlohmann::ordered_json j = WorkersJson({w}, kNow);
  const auto& worker = j["workers"][0];
  EXPECT_EQ(worker["worker_id"], "gpu-1");
  EXPECT_EQ(worker["gpus"][0]["name"], "H100");
  EXPECT_EQ(worker["last_heartbeat_age_ms"], 1500);
  EXPECT_EQ(worker["running"][0]["job_id"], "s-1.3");
  EXPECT_EQ(worker["running"][0]["attempt"], 2);
}

TEST(AuthTest, CredentialComesFromBearerOrFromBasicsPassword) {
  EXPECT_EQ(CredentialFromAuthorization("Bearer abc"), "abc");
  EXPECT_EQ(CredentialFromAuthorization("bearer   abc "), "abc");
  // "anyone:s3cr:et" in base64: the password may hold colons.
  EXPECT_EQ(CredentialFromAuthorization("Basic YW55b25lOnMzY3I6ZXQ="), "s3cr:et");
  EXPECT_EQ(CredentialFromAuthorization(""), std::nullopt);
  EXPECT_EQ(CredentialFromAuthorization("Bearer"), std::nullopt);
  EXPECT_EQ(CredentialFromAuthorization("Basic !!!"), std::nullopt);
  EXPECT_EQ(CredentialFromAuthorization("Basic dXNlcg=="), std::nullopt);  // "user", no colon
  EXPECT_EQ(CredentialFromAuthorization("Digest abc"), std::nullopt);
}

TEST(AuthTest, TokenCheckerAcceptsOnlyTheToken) {
  TokenChecker checker("s3cret");
  EXPECT_TRUE(checker.Check("s3cret").ok());
  EXPECT_THAT(checker.Check(""),
              StatusIs(absl::StatusCode::kUnauthenticated, "credentials required"));
  EXPECT_THAT(checker.Check("s3cre"),
              StatusIs(absl::StatusCode::kUnauthenticated, "wrong credentials"));
  EXPECT_THAT(checker.Check("s3cret!"), StatusIs(absl::StatusCode::kUnauthenticated, "wrong"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("a", ""));
  EXPECT_FALSE(ConstantTimeEquals("ab", "ac"));
}

}  // namespace
}  // namespace pcsweep::coordinator::web
