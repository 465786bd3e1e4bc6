#include "tools/cli/format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(FormatDurationTest, PicksUnits) {
  EXPECT_EQ(HumanDuration(absl::Milliseconds(850)), "850ms");
  EXPECT_EQ(HumanDuration(absl::Seconds(42)), "42s");
  EXPECT_EQ(HumanDuration(absl::Seconds(187)), "3m07s");
  EXPECT_EQ(HumanDuration(absl::Minutes(125)), "2h05m");
  EXPECT_EQ(HumanDuration(absl::ZeroDuration()), "-");
  EXPECT_EQ(HumanDuration(absl::ZeroDuration(), false), "0ms");
}

TEST(ProgressBarTest, ClampsAndFills) {
  EXPECT_EQ(ProgressBar(0.4, 10), "[####------]  40%");
  EXPECT_EQ(ProgressBar(1.7, 4), "[####] 100%");
  EXPECT_EQ(ProgressBar(-1, 4), "[----]   0%");
}

v1::Job MakeJob(const std::string& name, v1::JobState state, double progress) {
  v1::Job job;
  job.set_job_id("job-" + name);
  job.set_name(name);
  job.set_state(state);
  job.set_progress(progress);
  job.set_attempt(1);
  job.set_max_attempts(3);
  return job;
}

TEST(JobEtaTest, UsesReportedEtaElseExtrapolates) {
  const absl::Time now = absl::FromUnixSeconds(1000);
  v1::Job job = MakeJob("a", v1::JOB_STATE_RUNNING, 0.25);
  job.set_started_ms(absl::ToUnixMillis(now - absl::Seconds(30)));
  EXPECT_EQ(JobElapsed(job, now), absl::Seconds(30));
  EXPECT_EQ(*JobEta(job, now), absl::Seconds(90));
  job.set_eta_ms(5000);
  EXPECT_EQ(*JobEta(job, now), absl::Seconds(5));
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(JobEta(job, now).has_value());
}

v1::GetSweepResponse SampleSweep(absl::Time now) {
  v1::GetSweepResponse sweep;
  auto* s = sweep.mutable_summary();
  s->set_sweep_id("s1");
  s->set_name("smoke");
  s->set_created_ms(absl::ToUnixMillis(now - absl::Seconds(20)));
  s->set_total(4);
  s->set_succeeded(2);
  s->set_reused(1);
  s->set_running(1);
  s->set_failed(1);
  v1::Job a = MakeJob("smoke[x=1]", v1::JOB_STATE_SUCCEEDED, 1);
  (*a.mutable_params())["x"] = "1";
  (*a.mutable_metrics())["value"] = 1;
  a.set_started_ms(absl::ToUnixMillis(now - absl::Seconds(20)));
  a.set_finished_ms(absl::ToUnixMillis(now - absl::Seconds(10)));
  a.set_worker_id("w1");
  v1::Job b = MakeJob("smoke[x=2]", v1::JOB_STATE_SUCCEEDED, 1);
  (*b.mutable_params())["x"] = "2";
  (*b.mutable_metrics())["value"] = 2;
  (*b.mutable_metrics())["extra"] = 0.5;
  b.set_reused_from("old");
  v1::Job c = MakeJob("smoke[x=3]", v1::JOB_STATE_RUNNING, 0.5);
  (*c.mutable_params())["x"] = "3";
  c.set_started_ms(absl::ToUnixMillis(now - absl::Seconds(4)));
  c.set_worker_id("w2");
  v1::Job d = MakeJob("smoke[x=a b]", v1::JOB_STATE_FAILED, 0.1);
  (*d.mutable_params())["x"] = "a b";
  d.set_attempt(3);
  d.set_error("exit code 3");
  *sweep.add_jobs() = a;
  *sweep.add_jobs() = b;
  *sweep.add_jobs() = c;
  *sweep.add_jobs() = d;
  return sweep;
}

TEST(SweepStatusTest, ShowsCountsJobsAndErrors) {
  const absl::Time now = absl::FromUnixSeconds(100000);
  const std::string text = FormatSweepStatus(SampleSweep(now), now);
  EXPECT_THAT(text,
              HasSubstr("smoke (s1): 4 jobs | 2 succeeded (1 reused) | 1 running | 1 failed"));
  EXPECT_THAT(text, HasSubstr("elapsed 20s"));
  // Two jobs ran to an end (one success, one failure; the reused one is free) in the 20 s
  // since the first start, one is unfinished: ETA = 20 s * 1 / 2.
  EXPECT_THAT(text, HasSubstr("ETA 10s"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "smoke[x=3]    running    1/3      w2      [##########----------]  50%  4s       4s"));
  EXPECT_THAT(text, HasSubstr("smoke[x=2]    reused"));
  EXPECT_THAT(text, HasSubstr("smoke[x=a b] (job-smoke[x=a b]) failed: exit code 3"));
}

TEST(SweepStatusTest, FinishedSweepHasNoEta) {
  const absl::Time now = absl::FromUnixSeconds(100000);
  auto sweep = SampleSweep(now);
  sweep.mutable_summary()->set_finished_ms(absl::ToUnixMillis(now - absl::Seconds(5)));
  const std::string text = FormatSweepStatus(sweep, now);
  EXPECT_THAT(text, HasSubstr("finished after 15s"));
  EXPECT_THAT(text, Not(HasSubstr("ETA")));
}

TEST(ResultsTableTest, OneRowPerCellWithUnionOfParamsAndMetrics) {
  const table::Listing table = ResultsTable(SampleSweep(absl::FromUnixSeconds(100000)));
  EXPECT_THAT(table.columns, ::testing::ElementsAre("job", "x", "state", "extra", "value"));
  ASSERT_EQ(table.rows.size(), 4u);
  EXPECT_EQ(table.rows[0][1].number, 1.0);
  EXPECT_EQ(table.rows[0][3].text, "");  // no "extra" metric
  EXPECT_EQ(table.rows[1][2].text, "reused");
  EXPECT_EQ(table.rows[1][3].text, "0.5");
  EXPECT_FALSE(table.rows[3][1].number.has_value());  // "a b" stays text
}

TEST(WorkersTableTest, ShowsGpusHeartbeatAndRunningJobs) {
  v1::ListWorkersResponse workers;
  auto* w = workers.add_workers();
  w->set_worker_id("w1");
  w->set_name("host:1");
  w->set_host("host");
  w->set_slots(2);
  w->set_state("alive");
  w->set_last_heartbeat_ms(absl::ToUnixMillis(absl::FromUnixSeconds(100) - absl::Seconds(3)));
  auto* gpu = w->add_gpus();
  gpu->set_index(0);
  gpu->set_name("H100");
  gpu->set_memory_bytes(80LL << 30);
  auto* ref = w->add_running();
  ref->set_job_id("j7");
  ref->set_attempt(2);
  const std::string text = table::RenderListing(WorkersTable(workers, absl::FromUnixSeconds(100)),
                                                table::ListingFormat::kText);
  EXPECT_THAT(text, HasSubstr("0:H100(80GiB)"));
  EXPECT_THAT(text, HasSubstr("3s ago"));
  EXPECT_THAT(text, HasSubstr("j7#2"));
}

TEST(WorkersTableTest, ShowsTheSlurmJobNodeAndRequeuesOfASlurmWorker) {
  v1::ListWorkersResponse workers;
  auto* slurm = workers.add_workers();
  slurm->set_worker_id("slurm-4242-1.1");
  (*slurm->mutable_labels())["slurm_job_id"] = "4242_1";
  (*slurm->mutable_labels())["slurm_node"] = "gpu07";
  (*slurm->mutable_labels())["slurm_restart_count"] = "1";
  workers.add_workers()->set_worker_id("by-hand");
  const table::Listing table = WorkersTable(workers, absl::FromUnixSeconds(100));
  ASSERT_EQ(table.columns[5], "slurm");
  EXPECT_EQ(table.rows[0][5].text, "4242_1 on gpu07 (requeued 1x)");
  EXPECT_EQ(table.rows[1][5].text, "-");
}

TEST(JobLogsTest, ShowsAttemptsExitAndStderrTail) {
  v1::GetJobResponse job;
  *job.mutable_job() = MakeJob("smoke[x=1]", v1::JOB_STATE_FAILED, 0);
  auto* a1 = job.add_attempts();
  a1->set_attempt(1);
  a1->set_worker_id("w1");
  a1->set_state(v1::JOB_STATE_FAILED);
  a1->set_exit_code(-1);
  a1->set_signal(9);
  auto* a2 = job.add_attempts();
  a2->set_attempt(2);
  a2->set_worker_id("w2");
  a2->set_state(v1::JOB_STATE_FAILED);
  a2->set_exit_code(3);
  a2->set_error("exited with code 3");
  a2->set_stderr_tail("boom\n");
  const std::string text = FormatJobLogs(job);
  EXPECT_THAT(text, HasSubstr("signal 9"));
  EXPECT_THAT(text, HasSubstr("code 3"));
  EXPECT_THAT(text, HasSubstr("--- attempt 2 stderr (tail) ---\nboom\n"));
}

TEST(JobLogsTest, APreemptedAttemptIsMarkedAndNotCountedAsSpent) {
  v1::GetJobResponse job;
  *job.mutable_job() = MakeJob("smoke[x=1]", v1::JOB_STATE_SUCCEEDED, 0);
  job.mutable_job()->set_attempt(2);
  job.mutable_job()->set_preemptions(1);
  auto* a1 = job.add_attempts();
  a1->set_attempt(1);
  a1->set_state(v1::JOB_STATE_FAILED);
  a1->set_preempted(true);
  a1->set_error("worker stopping (signal 15): job given back");
  job.add_attempts()->set_attempt(2);
  const std::string text = FormatJobLogs(job);
  EXPECT_THAT(text, HasSubstr("attempts 1/3 +1 preempted"));
  EXPECT_THAT(text, HasSubstr("PREEMPTED"));
}

TEST(JobLogsTest, ControlCharactersFromTheJobAreEscaped) {
  v1::GetJobResponse job;
  *job.mutable_job() = MakeJob("smoke[x=1]", v1::JOB_STATE_FAILED, 0);
  job.mutable_job()->set_error("bad\x1b]0;owned\x07 error");
  auto* a1 = job.add_attempts();
  a1->set_attempt(1);
  a1->set_state(v1::JOB_STATE_FAILED);
  a1->set_error("exit\rcode 3");
  a1->set_stderr_tail("line 1\n\x1b[2Jcleared\tscreen\x7f\n");
  const std::string text = FormatJobLogs(job);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find('\x07'), std::string::npos);
  EXPECT_EQ(text.find('\x7f'), std::string::npos);
  EXPECT_THAT(text, HasSubstr("error: bad\\x1b]0;owned\\x07 error"));
  EXPECT_THAT(text, HasSubstr("line 1\n\\x1b[2Jcleared\tscreen\\x7f\n"));
  EXPECT_EQ(TerminalSafe("plain\ttext\n"), "plain\ttext\n");
}

TEST(ProtoToJsonTest, UsesProtoFieldNames) {
  v1::SweepSummary summary;
  summary.set_sweep_id("s1");
  const auto json = nlohmann::json::parse(ProtoToJson(summary));
  EXPECT_EQ(json["sweep_id"], "s1");
  EXPECT_EQ(json["total"], 0);
}

}  // namespace
}  // namespace pcsweep::cli
