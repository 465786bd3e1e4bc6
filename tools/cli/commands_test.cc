#include "tools/cli/commands.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string TempFile(const std::string& name, const std::string& content) {
  const auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path) << content;
  return path.string();
}

v1::GetSweepResponse Sweep(const std::string& id, int total, int succeeded, int running) {
  v1::GetSweepResponse sweep;
  auto* s = sweep.mutable_summary();
  s->set_sweep_id(id);
  s->set_name("smoke");
  s->set_total(total);
  s->set_succeeded(succeeded);
  s->set_running(running);
  s->set_pending(total - succeeded - running);
  for (int i = 0; i < total; ++i) {
    auto* job = sweep.add_jobs();
    job->set_job_id("j" + std::to_string(i));
    job->set_name("smoke[x=" + std::to_string(i) + "]");
    job->set_state(i < succeeded ? v1::JOB_STATE_SUCCEEDED : v1::JOB_STATE_PENDING);
    (*job->mutable_params())["x"] = std::to_string(i);
    if (i < succeeded) (*job->mutable_metrics())["value"] = i * 10;
  }
  return sweep;
}

TEST(SubmitTest, SendsSpecAndPrintsSweepId) {
  FakeCoordinatorApi api;
  api.submit_response.set_sweep_id("sweep-1");
  api.submit_response.set_jobs(24);
  api.submit_response.set_reused(3);
  const std::string path = TempFile("spec.yaml", "name: smoke\n");
  std::ostringstream out, err;
  ASSERT_TRUE(RunSubmit(api, path, /*force=*/true, out, err).ok());
  EXPECT_EQ(out.str(), "sweep-1\n");
  EXPECT_THAT(err.str(), HasSubstr("24 jobs, 3 reused"));
  ASSERT_EQ(api.submitted.size(), 1u);
  EXPECT_EQ(api.submitted[0].spec_yaml(), "name: smoke\n");
  EXPECT_EQ(api.submitted[0].spec_path(), path);
  EXPECT_TRUE(api.submitted[0].force());
}

TEST(SubmitTest, RetriesAnUnreachableCoordinatorWithTheSameIdempotencyKey) {
  FakeCoordinatorApi api;
  api.submit_errors_once = {absl::UnavailableError("cannot reach coordinator at a:1: reset"),
                            absl::DeadlineExceededError("deadline exceeded")};
  api.submit_response.set_sweep_id("sweep-1");
  const std::string path = TempFile("spec.yaml", "name: smoke\n");
  std::ostringstream out, err;
  ASSERT_TRUE(RunSubmit(api, path, false, out, err).ok());
  EXPECT_EQ(out.str(), "sweep-1\n");
  ASSERT_EQ(api.submitted.size(), 3u);
  EXPECT_EQ(api.submitted[0].idempotency_key().size(), 32u);
  EXPECT_EQ(api.submitted[1].idempotency_key(), api.submitted[0].idempotency_key());
  EXPECT_EQ(api.submitted[2].idempotency_key(), api.submitted[0].idempotency_key());
  // A second invocation is a new submit: a new key.
  ASSERT_TRUE(RunSubmit(api, path, false, out, err).ok());
  EXPECT_NE(api.submitted[3].idempotency_key(), api.submitted[0].idempotency_key());
}

TEST(SubmitTest, CoordinatorRefusalIsNotRetried) {
  FakeCoordinatorApi api;
  api.submit_error = absl::UnavailableError(
      "coordinator at a:1 refused the call: coordinator cannot write its database: disk full");
  const std::string path = TempFile("spec.yaml", "name: smoke\n");
  std::ostringstream out, err;
  auto result = RunSubmit(api, path, false, out, err);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr("cannot write its database: disk full"));
  EXPECT_EQ(api.submitted.size(), 1u);
}

TEST(SubmitTest, SpecErrorComesBackAsOneLineWithLineAndColumn) {
  FakeCoordinatorApi api;
  api.submit_error = absl::InvalidArgumentError("spec.yaml:3:5: unknown key 'grdi'");
  const std::string path = TempFile("bad.yaml", "name: x\n");
  std::ostringstream out, err;
  auto result = RunSubmit(api, path, false, out, err);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "spec.yaml:3:5: unknown key 'grdi'");
  EXPECT_EQ(out.str(), "");
}

TEST(SubmitTest, MissingFileIsNotFoundNamingIt) {
  FakeCoordinatorApi api;
  std::ostringstream out, err;
  auto result = RunSubmit(api, "/nonexistent/spec.yaml", false, out, err);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::IsNotFound(result.status()));
  EXPECT_THAT(result.status().message(), HasSubstr("/nonexistent/spec.yaml"));
  EXPECT_TRUE(api.submitted.empty());
}

TEST(DescribeRpcErrorTest, UnavailableNamesTheAddress) {
  const absl::Status status =
      DescribeRpcError(absl::UnavailableError("failed to connect to all addresses"), "10.0.0.1:7");
  EXPECT_EQ(status.message(),
            "cannot reach coordinator at 10.0.0.1:7: failed to connect to all addresses");
  EXPECT_TRUE(absl::IsNotFound(DescribeRpcError(absl::NotFoundError("x"), "a")));
}

TEST(DescribeRpcErrorTest, UnavailableSentByTheCoordinatorKeepsItsReason) {
  const absl::Status status = DescribeRpcError(
      absl::UnavailableError("coordinator cannot write its database: disk full"), "10.0.0.1:7");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "coordinator at 10.0.0.1:7 refused the call: coordinator cannot write its database: "
            "disk full");
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("cannot reach")));
}

TEST(GrpcClientTest, UnreachableCoordinatorGivesOneLine) {
  // Port 1 on loopback is closed; a fail-fast call answers UNAVAILABLE at once.
  ClientOptions options;
  options.address = "127.0.0.1:1";
  options.call_deadline = absl::Seconds(5);
  auto api = MakeGrpcCoordinatorApi(options);
  auto result = api->ListSweeps();
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("cannot reach coordinator at 127.0.0.1:1: "));
  EXPECT_EQ(std::string(result.status().message()).find('\n'), std::string::npos);
}

TEST(StatusTest, ListsSweepsWithoutId) {
  FakeCoordinatorApi api;
  api.sweeps = {Sweep("s1", 3, 1, 1), Sweep("s2", 2, 2, 0)};
  FakeClock clock;
  std::ostringstream out;
  ASSERT_TRUE(RunStatus(api, "", false, clock, out).ok());
  EXPECT_THAT(out.str(), HasSubstr("s1"));
  EXPECT_THAT(out.str(), HasSubstr("s2"));
}

TEST(StatusTest, JsonIsParseableProto) {
  FakeCoordinatorApi api;
  api.sweeps = {Sweep("s1", 3, 1, 1)};
  FakeClock clock;
  std::ostringstream out;
  ASSERT_TRUE(RunStatus(api, "s1", true, clock, out).ok());
  EXPECT_THAT(out.str(), HasSubstr("\"sweep_id\": \"s1\""));
  EXPECT_THAT(out.str(), HasSubstr("JOB_STATE_SUCCEEDED"));
}

TEST(StatusTest, UnknownSweepIsNotFound) {
  FakeCoordinatorApi api;
  FakeClock clock;
  std::ostringstream out;
  EXPECT_TRUE(absl::IsNotFound(RunStatus(api, "nope", false, clock, out)));
}

TEST(WatchTest, FollowsEventsUntilTheSweepFinishes) {
  FakeCoordinatorApi api;
  api.sweeps = {Sweep("s1", 2, 0, 1)};
  FakeClock clock;
  for (int seq = 1; seq <= 2; ++seq) {
    v1::SweepEvent event;
    event.set_seq(seq);
    event.set_sweep_id("s1");
    api.watch_events.push_back(event);
  }
  // Each event finishes one more job, a second apart.
  api.on_watch_event = [&clock](const v1::SweepEvent& event, FakeCoordinatorApi& fake) {
    clock.Advance(absl::Seconds(1));
    fake.sweeps[0] = Sweep("s1", 2, static_cast<int>(event.seq()), event.seq() < 2 ? 1 : 0);
  };
  std::ostringstream out;
  WatchOptions options;
  auto final_state = WatchUntilFinished(api, "s1", options, clock, out);
  ASSERT_TRUE(final_state.ok()) << final_state.status();
  EXPECT_EQ(final_state->summary().succeeded(), 2);
  // The initial state, one after the first event, and the final one.
  EXPECT_THAT(out.str(), HasSubstr("0 succeeded | 1 running | 1 pending\n"));
  EXPECT_THAT(out.str(), HasSubstr("1 succeeded | 1 running\n"));
  EXPECT_THAT(out.str(), HasSubstr("2 succeeded\n"));
}

TEST(WatchTest, GivesUpWhenTheStreamKeepsEnding) {
  FakeCoordinatorApi api;
  api.sweeps = {Sweep("s1", 2, 0, 1)};
  FakeClock clock;
  std::ostringstream out;
  WatchOptions options;
  options.max_reconnects = 2;
  auto result = WatchUntilFinished(api, "s1", options, clock, out);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::IsUnavailable(result.status()));
}

TEST(ResultsTest, PrintsOneRowPerCellInEachFormat) {
  FakeCoordinatorApi api;
  api.sweeps = {Sweep("s1", 3, 3, 0)};
  std::ostringstream csv;
  ASSERT_TRUE(RunResults(api, "s1", table::ListingFormat::kCsv, csv).ok());
  EXPECT_EQ(csv.str(),
            "job,x,state,value\n"
            "smoke[x=0],0,succeeded,0\n"
            "smoke[x=1],1,succeeded,10\n"
            "smoke[x=2],2,succeeded,20\n");
}

TEST(CancelRetryTest, CallTheCoordinatorAndReportCounts) {
  FakeCoordinatorApi api;
  std::ostringstream out;
  ASSERT_TRUE(RunCancel(api, "s1", out).ok());
  ASSERT_TRUE(RunRetry(api, "s1", out).ok());
  EXPECT_EQ(api.cancelled, std::vector<std::string>{"s1"});
  EXPECT_EQ(api.retried, std::vector<std::string>{"s1"});
  EXPECT_THAT(out.str(), HasSubstr("cancelled 1 jobs"));
}

TEST(LogsTest, AppendsTheLocalLogFile) {
  FakeCoordinatorApi api;
  v1::GetJobResponse job;
  job.mutable_job()->set_job_id("j1");
  auto* attempt = job.add_attempts();
  attempt->set_attempt(1);
  attempt->set_log_path(TempFile("log.txt", "line one\nline two\n"));
  api.jobs = {job};
  std::ostringstream out;
  ASSERT_TRUE(RunLogs(api, "j1", out).ok());
  EXPECT_THAT(out.str(), HasSubstr("line one\nline two\n"));
}

TEST(LogsTest, SaysWhereAnUnreadableLogLives) {
  FakeCoordinatorApi api;
  v1::GetJobResponse job;
  job.mutable_job()->set_job_id("j1");
  job.add_attempts()->set_log_path("/nonexistent/worker/log.txt");
  api.jobs = {job};
  std::ostringstream out;
  ASSERT_TRUE(RunLogs(api, "j1", out).ok());
  EXPECT_THAT(out.str(), HasSubstr("/nonexistent/worker/log.txt is not readable here"));
}

TEST(ReadFileTailTest, KeepsTheEnd) {
  const std::string path = TempFile("tail.txt", "0123456789");
  EXPECT_EQ(*ReadFileTail(path, 4), "6789");
  EXPECT_EQ(*ReadFileTail(path, 100), "0123456789");
}

}  // namespace
}  // namespace pcsweep::cli
