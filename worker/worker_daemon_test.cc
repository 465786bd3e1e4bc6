#include "worker/worker_daemon.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/coordinator_client.h"
#include "worker/result_spool.h"

namespace pcsweep::worker {
namespace {

using ::testing::HasSubstr;

// Waits (polling, bounded) for something a child process or a daemon thread makes true.
template <typename Predicate>
bool Eventually(Predicate predicate, absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (predicate()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return predicate();
}

class WorkerDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/worker_daemon_test-", getpid(), "-", info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    fake_ = std::make_shared<FakeCoordinatorClient>();
    fake_->set_heartbeat_interval(absl::Seconds(1));
    options_.slots = 1;
    options_.work_dir = dir_ + "/work";
    options_.name = "test-worker";
    options_.runner_path = dir_ + "/no-runner";
    options_.acquire_wait = absl::Milliseconds(50);
    options_.kill_grace = absl::Milliseconds(200);
  }
  void TearDown() override {
    if (daemon_ != nullptr) daemon_->Shutdown();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartDaemon() {
    WorkerDependencies deps;
    deps.client = fake_;
    deps.clock = &clock_;
    deps.clock_poll = absl::Milliseconds(2);
    deps.detect_gpus = [] {
      std::vector<v1::GpuInfo> gpus(3);
      for (int i = 0; i < 3; ++i) {
        gpus[i].set_index(i);
        gpus[i].set_name("Fake GPU");
        gpus[i].set_memory_bytes(80LL << 30);
      }
      return gpus;
    };
    auto daemon = WorkerDaemon::Start(options_, std::move(deps));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
  }

  static v1::Assignment Command(const std::string& job_id, const std::string& command,
                                int attempt = 1) {
    v1::Assignment assignment;
    assignment.set_job_id(job_id);
    assignment.set_attempt(attempt);
    assignment.set_sweep_id("s1");
    assignment.set_name(absl::StrCat("smoke[", job_id, "]"));
    assignment.set_kind("command");
    assignment.set_config_json(nlohmann::json({{"command", command}}).dump());
    return assignment;
  }

  // Advances the fake clock a second at a time until the fake coordinator sees `predicate`.
  bool AdvanceUntil(const std::function<bool(const FakeCoordinatorClient&)>& predicate) {
    for (int i = 0; i < 600; ++i) {
      if (fake_->WaitUntil(predicate, absl::Milliseconds(20))) return true;
      clock_.Advance(absl::Seconds(1));
    }
    return false;
  }

  std::string Flag(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
  FakeClock clock_;
  std::shared_ptr<FakeCoordinatorClient> fake_;
  WorkerOptions options_;
  std::unique_ptr<WorkerDaemon> daemon_;
};

TEST_F(WorkerDaemonTest, RunsJobsInAllSlotsAtOnceAndReportsTheirMetrics) {
  options_.slots = 3;
  options_.gpus = {0, 1, 2};
  StartDaemon();
  // Each job waits until all three have started, so they can only finish if run concurrently.
  for (int i = 0; i < 3; ++i) {
    fake_->QueueAssignment(Command(
        absl::StrCat("job", i),
        absl::StrCat("touch ", Flag(absl::StrCat("started", i)), "; n=0; ", "while [ $(ls ", dir_,
                     " | grep -c '^started') -lt 3 ]; do ",
                     "n=$((n+1)); [ $n -gt 1000 ] && exit 9; sleep 0.01; done; ",
                     "echo \"{\\\"value\\\": ", i, ", \\\"gpu\\\": $CUDA_VISIBLE_DEVICES}\" ",
                     "> $PCSWEEP_OUTPUT_DIR/metrics.json")));
  }
  ASSERT_TRUE(fake_->WaitUntil([](const FakeCoordinatorClient& f) {
    return f.completions_locked() == 3;
  })) << "failures: "
      << fake_->failures().size();
  std::set<double> values, gpus;
  for (const v1::CompleteJobRequest& done : fake_->completions()) {
    values.insert(done.metrics().at("value"));
    gpus.insert(done.metrics().at("gpu"));
    EXPECT_EQ(done.worker_id(), daemon_->worker_id());
    EXPECT_EQ(done.incarnation_id(), daemon_->incarnation_id());
    EXPECT_TRUE(std::filesystem::exists(done.log_path())) << done.log_path();
    EXPECT_EQ(done.outputs().at("output_dir"),
              absl::StrCat(options_.work_dir, "/jobs/", done.job_id(), "/attempt-1"));
  }
  EXPECT_EQ(values, (std::set<double>{0, 1, 2}));
  EXPECT_EQ(gpus, (std::set<double>{0, 1, 2}));
  EXPECT_EQ(fake_->max_free_slots_seen(), 3);

  std::vector<v1::RegisterWorkerRequest> registrations = fake_->registrations();
  ASSERT_EQ(registrations.size(), 1u);
  EXPECT_EQ(registrations[0].slots(), 3);
  EXPECT_EQ(registrations[0].gpus_size(), 3);
  EXPECT_EQ(registrations[0].worker_name(), "test-worker");
  EXPECT_EQ(registrations[0].incarnation_id(), daemon_->incarnation_id());
  EXPECT_EQ(registrations[0].incarnation_id().size(), 32u);
  EXPECT_THAT(registrations[0].kinds(), ::testing::ElementsAre("command"));
  EXPECT_TRUE(Eventually([&] { return daemon_->unacknowledged_results() == 0; }));
  EXPECT_TRUE(std::filesystem::is_empty(options_.work_dir + "/spool"));
}

TEST_F(WorkerDaemonTest, ReportsAFailedJobWithExitCodeAndStderrTail) {
  StartDaemon();
  fake_->QueueAssignment(Command("bad", "echo starting; echo 'no such file: x.bin' >&2; exit 4"));
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.failures_locked() == 1; }));
  v1::FailJobRequest failure = fake_->failures()[0];
  EXPECT_EQ(failure.job_id(), "bad");
  EXPECT_EQ(failure.attempt(), 1);
  EXPECT_EQ(failure.exit_code(), 4);
  EXPECT_TRUE(failure.retryable());
  EXPECT_EQ(failure.stderr_tail(), "no such file: x.bin\n");
  EXPECT_EQ(failure.error(), "exited with code 4: no such file: x.bin");
  std::ifstream log(failure.log_path());
  std::string first_line;
  std::getline(log, first_line);
  EXPECT_EQ(first_line, "starting");
}

TEST_F(WorkerDaemonTest, AnOversizedResultFailsTheJobForGoodWithTheReason) {
  StartDaemon();
  // One examples row of 70 KiB, over the 64 KiB a row may hold.
  fake_->QueueAssignment(
      Command("big",
              "head -c 71680 /dev/zero | tr '\\0' x | sed 's/.*/{\"question_id\": \"&\"}/' > "
              "$PCSWEEP_OUTPUT_DIR/examples.jsonl"));
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.failures_locked() == 1; }));
  v1::FailJobRequest failure = fake_->failures()[0];
  EXPECT_EQ(failure.job_id(), "big");
  EXPECT_FALSE(failure.retryable());
  EXPECT_THAT(failure.error(), HasSubstr("/examples.jsonl:1: a row of 71699 bytes, more than the "
                                         "65536 a row may hold"));
  EXPECT_TRUE(fake_->completions().empty());
}

TEST_F(WorkerDaemonTest, ResultRefusedAsTooBigOrMalformedIsNotResentForever) {
  // The coordinator answers RESOURCE_EXHAUSTED for this job's reports: final, not retried.
  fake_->SetReportStatus("huge", absl::ResourceExhaustedError("Received message larger than max"));
  StartDaemon();
  fake_->QueueAssignment(Command("huge", "true"));
  fake_->QueueAssignment(Command("next", "true"));
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
  EXPECT_EQ(fake_->completions()[0].job_id(), "next");
  EXPECT_TRUE(Eventually([&] { return daemon_->unacknowledged_results() == 0; }));
  EXPECT_FALSE(std::filesystem::exists(options_.work_dir + "/spool/huge-1.pb"));
}

TEST_F(WorkerDaemonTest, HeartbeatsCarryProgressOnTheInjectedClock) {
  StartDaemon();
  fake_->QueueAssignment(Command(
      "p",
      absl::StrCat("echo '{\"progress\":0.5,\"message\":\"half\",\"eta_s\":3}' "
                   ">&$PCSWEEP_PROGRESS_FD; touch ",
                   Flag("started"), "; while [ ! -f ", Flag("go"), " ]; do sleep 0.01; done")));
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Flag("started")); }));
  ASSERT_TRUE(AdvanceUntil([](const FakeCoordinatorClient& f) {
    for (const v1::HeartbeatRequest& beat : f.heartbeats_locked()) {
      if (beat.jobs_size() == 1 && beat.jobs(0).progress() == 0.5) return true;
    }
    return false;
  }));
  for (const v1::HeartbeatRequest& beat : fake_->heartbeats()) {
    if (beat.jobs_size() == 1 && beat.jobs(0).progress() == 0.5) {
      EXPECT_EQ(beat.jobs(0).job_id(), "p");
      EXPECT_EQ(beat.jobs(0).message(), "half");
      EXPECT_EQ(beat.jobs(0).eta_ms(), 3000);
    }
  }
  // Without the clock moving, no more heartbeats are sent.
  const size_t beats = fake_->heartbeats().size();
  EXPECT_FALSE(fake_->WaitUntil(
      [beats](const FakeCoordinatorClient& f) { return f.heartbeats_locked().size() > beats; },
      absl::Milliseconds(100)));
  std::ofstream(Flag("go")).close();
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
}

TEST_F(WorkerDaemonTest, SpoolsResultsWhileTheCoordinatorIsDownAndResendsThem) {
  StartDaemon();
  fake_->QueueAssignment(
      Command("j", absl::StrCat("touch ", Flag("started"), "; while [ ! -f ", Flag("go"),
                                " ]; do sleep 0.01; done; echo '{\"x\": 1}' > "
                                "$PCSWEEP_OUTPUT_DIR/metrics.json")));
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Flag("started")); }));
  fake_->SetUnavailable(true);
  std::ofstream(Flag("go")).close();
  const std::string spooled = options_.work_dir + "/spool/j-1.pb";
  ASSERT_TRUE(Eventually([&] { return daemon_->unacknowledged_results() == 1; }));
  EXPECT_TRUE(std::filesystem::exists(spooled));
  // Several attempts fail while it is down; the result stays on disk.
  for (int i = 0; i < 5; ++i) clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(fake_->completions().empty());
  EXPECT_TRUE(std::filesystem::exists(spooled));
  EXPECT_EQ(daemon_->unacknowledged_results(), 1);

  fake_->SetUnavailable(false);
  ASSERT_TRUE(
      AdvanceUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
  EXPECT_EQ(fake_->completions()[0].metrics().at("x"), 1);
  EXPECT_TRUE(Eventually([&] { return daemon_->unacknowledged_results() == 0; }));
  EXPECT_FALSE(std::filesystem::exists(spooled));
}

TEST_F(WorkerDaemonTest, ARestartedWorkerResendsWhatItsSpoolHolds) {
  {
    auto spool = ResultSpool::Open(options_.work_dir + "/spool");
    ASSERT_TRUE(spool.ok());
    v1::CompleteJobRequest old;
    old.set_worker_id("w-from-before");
    old.set_incarnation_id("dead-process");
    old.set_job_id("old");
    old.set_attempt(2);
    (*old.mutable_metrics())["value"] = 42;
    ASSERT_TRUE((*spool)->Write(SpooledResult{old}).ok());
  }
  StartDaemon();
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
  v1::CompleteJobRequest resent = fake_->completions()[0];
  EXPECT_EQ(resent.job_id(), "old");
  EXPECT_EQ(resent.attempt(), 2);
  EXPECT_EQ(resent.metrics().at("value"), 42);
  EXPECT_EQ(resent.incarnation_id(), daemon_->incarnation_id());
  EXPECT_EQ(resent.worker_id(), daemon_->worker_id());
  // It told the coordinator at registration that it still holds that job.
  v1::RegisterWorkerRequest registration = fake_->registrations()[0];
  ASSERT_EQ(registration.running_size(), 1);
  EXPECT_EQ(registration.running(0).job_id(), "old");
  EXPECT_EQ(registration.running(0).attempt(), 2);
  EXPECT_TRUE(Eventually([&] { return daemon_->unacknowledged_results() == 0; }));
}

TEST_F(WorkerDaemonTest, KeepsTryingToRegisterWhileTheCoordinatorIsDown) {
  fake_->SetUnavailable(true);
  StartDaemon();
  for (int i = 0; i < 5; ++i) clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(fake_->registrations().empty());
  EXPECT_EQ(daemon_->worker_id(), "");
  fake_->SetUnavailable(false);
  ASSERT_TRUE(
      AdvanceUntil([](const FakeCoordinatorClient& f) { return f.registrations_locked() == 1; }));
  EXPECT_TRUE(Eventually([&] { return daemon_->worker_id() == "w1"; }));
}

TEST_F(WorkerDaemonTest, StopsForGoodWhenTheCoordinatorRefusesItsIdentity) {
  fake_->SetRegisterStatus(absl::PermissionDeniedError(
      "the credential of worker 'gpu-b' may not act as worker 'gpu-a'"));
  StartDaemon();
  ASSERT_TRUE(Eventually([&] { return daemon_->superseded(); }));
  daemon_->Wait();  // returns: the daemon stopped by itself
  const absl::Status reason = daemon_->halt_reason();
  EXPECT_EQ(reason.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(reason.message(), HasSubstr("the coordinator refused worker '"));
  EXPECT_THAT(reason.message(),
              HasSubstr("': the credential of worker 'gpu-b' may not act as worker 'gpu-a'"));
  EXPECT_TRUE(fake_->registrations().empty());
  EXPECT_EQ(fake_->acquire_calls(), 0);
  daemon_->Shutdown();
}

TEST_F(WorkerDaemonTest, AnUnknownTokenAlsoStopsIt) {
  fake_->SetRegisterStatus(absl::UnauthenticatedError("unknown bearer token"));
  StartDaemon();
  ASSERT_TRUE(Eventually([&] { return daemon_->superseded(); }));
  EXPECT_EQ(daemon_->halt_reason().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(daemon_->halt_reason().message(), HasSubstr("unknown bearer token"));
  daemon_->Shutdown();
}

TEST_F(WorkerDaemonTest, ObeysCancelOrdersWithSigkillAfterTheGraceAndDoesNotReport) {
  StartDaemon();
  fake_->QueueAssignment(
      Command("c", absl::StrCat("trap '' TERM; touch ", Flag("started"), "; sleep 30"), 3));
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Flag("started")); }));
  ASSERT_TRUE(Eventually([&] { return daemon_->running_jobs() == 1; }));
  fake_->OrderCancel("c", 3);
  const absl::Time start = absl::Now();
  for (int i = 0; i < 600 && daemon_->running_jobs() > 0; ++i) {
    clock_.Advance(absl::Seconds(1));
    Eventually([&] { return daemon_->running_jobs() == 0; }, absl::Milliseconds(20));
  }
  EXPECT_EQ(daemon_->running_jobs(), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(fake_->failures().empty());
  EXPECT_TRUE(fake_->completions().empty());
  EXPECT_EQ(daemon_->unacknowledged_results(), 0);
  // The slot is free again: the next job runs.
  fake_->QueueAssignment(Command("next", "true"));
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
}

TEST_F(WorkerDaemonTest, ReRegistersWithItsRunningJobsWhenTheCoordinatorForgotIt) {
  StartDaemon();
  fake_->QueueAssignment(Command("r", absl::StrCat("touch ", Flag("started"), "; while [ ! -f ",
                                                   Flag("go"), " ]; do sleep 0.01; done")));
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Flag("started")); }));
  fake_->RequestReregister();  // as after a coordinator restart
  ASSERT_TRUE(
      AdvanceUntil([](const FakeCoordinatorClient& f) { return f.registrations_locked() == 2; }));
  v1::RegisterWorkerRequest again = fake_->registrations()[1];
  EXPECT_EQ(again.incarnation_id(), daemon_->incarnation_id());
  ASSERT_EQ(again.running_size(), 1);
  EXPECT_EQ(again.running(0).job_id(), "r");
  EXPECT_TRUE(Eventually([&] { return daemon_->worker_id() == "w2"; }));
  std::ofstream(Flag("go")).close();
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
  EXPECT_EQ(fake_->completions()[0].worker_id(), "w2");
}

TEST_F(WorkerDaemonTest, AResultRefusedAsStaleIsDroppedFromTheSpool) {
  fake_->SetReportStatus("stale", absl::FailedPreconditionError("attempt 1 is not current"));
  StartDaemon();
  fake_->QueueAssignment(Command("stale", "true"));
  fake_->QueueAssignment(Command("fresh", "true"));
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
  EXPECT_EQ(fake_->completions()[0].job_id(), "fresh");
  EXPECT_TRUE(Eventually([&] { return daemon_->unacknowledged_results() == 0; }));
  EXPECT_FALSE(std::filesystem::exists(options_.work_dir + "/spool/stale-1.pb"));
}

TEST_F(WorkerDaemonTest, ShutdownTerminatesChildrenAndGivesTheirJobsBack) {
  options_.slots = 2;
  StartDaemon();
  fake_->QueueAssignment(Command("a", absl::StrCat("touch ", Flag("a"), "; sleep 30")));
  fake_->QueueAssignment(Command("b", absl::StrCat("touch ", Flag("b"), "; sleep 30")));
  ASSERT_TRUE(Eventually(
      [&] { return std::filesystem::exists(Flag("a")) && std::filesystem::exists(Flag("b")); }));
  const absl::Time start = absl::Now();
  daemon_->Shutdown();
  daemon_->Wait();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  std::vector<v1::FailJobRequest> failures = fake_->failures();
  ASSERT_EQ(failures.size(), 2u);
  for (const v1::FailJobRequest& failure : failures) {
    EXPECT_TRUE(failure.retryable());
    EXPECT_TRUE(failure.preempted());
    EXPECT_THAT(failure.error(), HasSubstr("worker stopping; job given back"));
  }
  EXPECT_EQ(daemon_->running_jobs(), 0);
  EXPECT_EQ(daemon_->unacknowledged_results(), 0);
}

// As Slurm does on preemption: SIGTERM to the child and to the worker at about the same time,
// the child's death first.
TEST_F(WorkerDaemonTest, AChildKilledBySigtermJustBeforeTheShutdownIsGivenBack) {
  StartDaemon();
  fake_->QueueAssignment(
      Command("p", absl::StrCat("echo $$ > ", Flag("pid.tmp"), "; mv ", Flag("pid.tmp"), " ",
                                Flag("pid"), "; exec sleep 30")));
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Flag("pid")); }));
  std::ifstream pid_file(Flag("pid"));
  pid_t pid = 0;
  pid_file >> pid;
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  absl::SleepFor(absl::Milliseconds(300));
  daemon_->Shutdown();
  std::vector<v1::FailJobRequest> failures = fake_->failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(failures[0].preempted());
  EXPECT_EQ(failures[0].signal(), SIGTERM);
}

TEST_F(WorkerDaemonTest, AChildKilledBySigtermWhileTheWorkerGoesOnIsAFailureOfTheJob) {
  StartDaemon();
  fake_->QueueAssignment(Command("k", "kill -TERM $$"));
  ASSERT_TRUE(fake_->WaitUntil(
      [](const FakeCoordinatorClient& f) { return f.failures_locked() == 1; }, absl::Seconds(15)));
  const v1::FailJobRequest failure = fake_->failures()[0];
  EXPECT_FALSE(failure.preempted());
  EXPECT_EQ(failure.signal(), SIGTERM);
  EXPECT_THAT(failure.error(), HasSubstr("killed by signal 15"));
}

TEST_F(WorkerDaemonTest, StopsWhenANewerProcessTookItsName) {
  StartDaemon();
  fake_->QueueAssignment(Command("s", absl::StrCat("touch ", Flag("started"), "; sleep 30")));
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(Flag("started")); }));
  fake_->SetHeartbeatStatus(absl::AbortedError("a newer incarnation has registered"));
  for (int i = 0; i < 600 && !daemon_->superseded(); ++i) {
    clock_.Advance(absl::Seconds(1));
    Eventually([&] { return daemon_->superseded(); }, absl::Milliseconds(20));
  }
  ASSERT_TRUE(daemon_->superseded());
  daemon_->Wait();  // returns: the daemon stopped by itself
  EXPECT_TRUE(Eventually([&] { return daemon_->running_jobs() == 0; }));
  const int acquires = fake_->acquire_calls();
  fake_->QueueAssignment(Command("never", "true"));
  EXPECT_FALSE(fake_->WaitUntil(
      [](const FakeCoordinatorClient& f) { return f.pending_assignments_locked() == 0; },
      absl::Milliseconds(200)));
  EXPECT_EQ(fake_->acquire_calls(), acquires);
  daemon_->Shutdown();
}

TEST_F(WorkerDaemonTest, MlKindsRunThroughTheRunnerWhichAlsoWidensTheAdvertisedKinds) {
  options_.runner_path = dir_ + "/pcsweep-run";
  {
    std::ofstream runner(options_.runner_path);
    runner << "#!/bin/sh\n"
           << "[ \"$1 $2\" = 'run --job' ] || exit 2\n"
           << "grep -q '\"kind\": \"train_eval\"' \"$3\" || exit 3\n"
           << "echo '{\"loss\": 0.5}' > \"$PCSWEEP_OUTPUT_DIR/metrics.json\"\n";
  }
  std::filesystem::permissions(options_.runner_path, std::filesystem::perms::owner_all);
  StartDaemon();
  v1::Assignment assignment;
  assignment.set_job_id("ml");
  assignment.set_attempt(1);
  assignment.set_kind("train_eval");
  assignment.set_config_json(R"({"layers": "15-19"})");
  fake_->QueueAssignment(assignment);
  ASSERT_TRUE(fake_->WaitUntil([](const FakeCoordinatorClient& f) {
    return f.completions_locked() + f.failures_locked() == 1;
  }));
  ASSERT_EQ(fake_->completions().size(), 1u) << fake_->failures()[0].error();
  EXPECT_EQ(fake_->completions()[0].metrics().at("loss"), 0.5);
  EXPECT_EQ(fake_->registrations()[0].kinds_size(), 0);
}

TEST_F(WorkerDaemonTest, InvalidOptionsAreRefused) {
  options_.slots = 0;
  EXPECT_EQ(WorkerDaemon::Start(options_).status().code(), absl::StatusCode::kInvalidArgument);
  options_.slots = 1;
  options_.token_file = dir_ + "/missing-token";
  EXPECT_EQ(WorkerDaemon::Start(options_).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pcsweep::worker
