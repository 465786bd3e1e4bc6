#include "coordinator/scheduler.h"

#include <filesystem>
#include <future>

#include "common/testing/status_matchers.h"
#include "coordinator/store/sqlite_store.h"
#include "coordinator/store/store_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator {
namespace {

using ::pcsweep::testutil::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcsweep_scheduler_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Start();
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    auto store = SqliteStore::Open((dir_ / "coord.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    faulty_ = std::make_unique<FaultInjectingStore>(store_.get());
    SchedulerOptions options;
    options.clock = &clock_;
    options.on_sweep_finished = [this](const std::string& sweep_id) {
      absl::MutexLock lock(&finished_mu_);
      finished_sweeps_.push_back(sweep_id);
    };
    auto scheduler = Scheduler::Create(faulty_.get(), options);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(*scheduler);
  }
  void Stop() {
    scheduler_.reset();
    faulty_.reset();
    store_.reset();
  }
  void Restart() {
    Stop();
    Start();
  }

  // A one-stage grid of `n` command jobs; hashes depend on `salt`.
  static SweepSpec Grid(const std::string& name, int n, const std::string& salt = "",
                        int max_attempts = 3) {
    SweepSpec spec;
    spec.name = name;
    spec.max_attempts = max_attempts;
    for (int i = 0; i < n; ++i) {
      JobDefinition job;
      job.key = name + "[x=" + std::to_string(i) + "]";
      job.stage = name;
      job.kind = "command";
      job.params = {{"x", std::to_string(i)}};
      job.config = {{"command", "echo " + std::to_string(i)}};
      job.config_hash = "hash-" + salt + std::to_string(i);
      job.max_attempts = max_attempts;
      spec.jobs.push_back(job);
    }
    return spec;
  }

  // pretrain -> train[seed=0], train[seed=1]; train uses the parent's output_dir and a metric.
  static SweepSpec TwoStages(const std::string& salt = "") {
    SweepSpec spec;
    spec.name = "staged";
    JobDefinition pre;
    pre.key = "pretrain";
    pre.stage = "pretrain";
    pre.kind = "command";
    pre.config = {{"command", "pretrain"}};
    pre.config_hash = "pre" + salt;
    pre.max_attempts = 1;
    spec.jobs.push_back(pre);
    for (int seed = 0; seed < 2; ++seed) {
      JobDefinition train;
      train.key = "train[seed=" + std::to_string(seed) + "]";
      train.stage = "train";
      train.kind = "command";
      train.params = {{"seed", std::to_string(seed)}};
      train.config = {{"model", "{pretrain.output_dir}"}, {"lr", "{pretrain.best_lr}"}};
      train.depends_on = {"pretrain"};
      train.config_hash = "train" + salt + std::to_string(seed);
      spec.jobs.push_back(train);
    }
    return spec;
  }

  std::string Submit(const SweepSpec& spec, bool force = false) {
    auto result = scheduler_->Submit(spec, "yaml", "spec.yaml", force);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->sweep_id : "";
  }

  std::string Register(const std::string& name, const std::string& incarnation,
                       std::vector<JobRef> running = {}, RegisterResult* out = nullptr) {
    WorkerRecord worker;
    worker.name = name;
    worker.host = "localhost";
    worker.slots = 4;
    worker.incarnation_id = incarnation;
    auto result = scheduler_->RegisterWorker(worker, running);
    EXPECT_TRUE(result.ok()) << result.status();
    if (out != nullptr && result.ok()) *out = *result;
    return result.ok() ? result->worker_id : "";
  }

  absl::StatusOr<std::vector<Assignment>> Acquire(const std::string& worker,
                                                  const std::string& incarnation, int slots = 1) {
    std::promise<absl::StatusOr<std::vector<Assignment>>> promise;
    auto future = promise.get_future();
    scheduler_->AcquireJob(
        worker, incarnation, slots, absl::ZeroDuration(),
        [&](absl::StatusOr<std::vector<Assignment>> r) { promise.set_value(std::move(r)); });
    return future.get();
  }

  absl::Status Complete(const std::string& worker, const std::string& incarnation,
                        const Assignment& a, JobResult result = {}) {
    std::promise<absl::Status> promise;
    auto future = promise.get_future();
    scheduler_->CompleteJob(worker, incarnation, a.job_id, a.attempt, std::move(result),
                            [&](absl::Status s) { promise.set_value(s); });
    return future.get();
  }

  absl::Status Fail(const std::string& worker, const std::string& incarnation, const Assignment& a,
                    bool retryable = true, bool preempted = false) {
    FailureReport report;
    report.worker_id = worker;
    report.incarnation_id = incarnation;
    report.job_id = a.job_id;
    report.attempt = a.attempt;
    report.exit_code = 3;
    report.stderr_tail = "boom on stderr";
    report.retryable = retryable;
    report.preempted = preempted;
    std::promise<absl::Status> promise;
    auto future = promise.get_future();
    scheduler_->FailJob(report, [&](absl::Status s) { promise.set_value(s); });
    return future.get();
  }

  // Submits `jobs` cells, leases them all to `worker` and lets the leases run out unreported.
  std::vector<Assignment> LeaseAllThenLapse(const std::string& worker,
                                            const std::string& incarnation, int jobs) {
    Submit(Grid("smoke", jobs));
    Register(worker, incarnation);
    auto leased = Acquire(worker, incarnation, jobs);
    EXPECT_TRUE(leased.ok() && static_cast<int>(leased->size()) == jobs);
    clock_.Advance(absl::Seconds(21));
    scheduler_->Tick();
    return leased.ok() ? *leased : std::vector<Assignment>{};
  }

  // Lets Tick() write its probe while the store is failing and waits until it is written.
  void ProbeStore() {
    scheduler_->Tick();
    store_->Flush();
  }

  JobRecord Job(const std::string& job_id) {
    auto job = scheduler_->GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->first : JobRecord{};
  }

  static JobResult ResultWithRows(double value, int rows) {
    JobResult result;
    result.metrics = {{"value", value}};
    result.outputs = {{"output_dir", "/out/" + std::to_string(value)}};
    for (int i = 0; i < rows; ++i) {
      ExampleRow row;
      row.question_id = "q" + std::to_string(i);
      row.margin_original = value;
      result.examples.push_back(row);
    }
    return result;
  }

  std::vector<std::string> FinishedSweeps() {
    absl::MutexLock lock(&finished_mu_);
    return finished_sweeps_;
  }

  FakeClock clock_;
  absl::Mutex finished_mu_;  // on_sweep_finished may run on the store's writer thread
  std::vector<std::string> finished_sweeps_ ABSL_GUARDED_BY(finished_mu_);
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<FaultInjectingStore> faulty_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, Complete_RecordsEachCellExactlyOnceUnderDuplicateReports) {
  const std::string sweep = Submit(Grid("smoke", 2));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1", 4);
  ASSERT_TRUE(leased.ok());
  ASSERT_THAT(*leased, SizeIs(2));
  EXPECT_EQ((*leased)[0].attempt, 1);
  EXPECT_EQ(Job((*leased)[0].job_id).state, JobState::kLeased);
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[0], ResultWithRows(1, 5)).ok());
  // The same report again (a retransmission) is refused: already recorded.
  absl::Status dup = Complete(w, "inc1", (*leased)[0], ResultWithRows(1, 5));
  EXPECT_EQ(dup.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(dup.message()), HasSubstr("SUCCEEDED"));
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[1], ResultWithRows(2, 5)).ok());
  auto summary = scheduler_->GetSweepSummary(sweep);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->succeeded, 2);
  EXPECT_NE(summary->sweep.finished_ms, 0);
  EXPECT_EQ(Job((*leased)[1].job_id).metrics.at("value"), 2);

  store_->Flush();
  auto reader = StoreReader::OpenReadOnly((dir_ / "coord.db").string());
  ASSERT_TRUE(reader.ok());
  auto rows = (*reader)->ListExamples(sweep);
  ASSERT_TRUE(rows.ok());
  EXPECT_THAT(*rows, SizeIs(10));
  auto attempts = (*reader)->ListAttempts((*leased)[0].job_id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_THAT(*attempts, SizeIs(1));
  EXPECT_EQ((*attempts)[0].state, JobState::kSucceeded);
}

TEST_F(SchedulerTest, LeaseExpiry_RetriesWithNextAttemptUntilMaxAttemptsThenFails) {
  Submit(Grid("smoke", 1, "", /*max_attempts=*/2));
  const std::string w = Register("w1", "inc1");
  auto first = Acquire(w, "inc1");
  ASSERT_THAT(*first, SizeIs(1));
  clock_.Advance(absl::Seconds(19));
  scheduler_->Tick();
  EXPECT_EQ(Job((*first)[0].job_id).state, JobState::kLeased);
  clock_.Advance(absl::Seconds(2));
  scheduler_->Tick();
  JobRecord job = Job((*first)[0].job_id);
  EXPECT_EQ(job.state, JobState::kPending);
  EXPECT_THAT(job.error, HasSubstr("lease expired"));

  auto second = Acquire(w, "inc1");
  ASSERT_THAT(*second, SizeIs(1));
  EXPECT_EQ((*second)[0].attempt, 2);
  // The first attempt's late result is stale.
  EXPECT_EQ(Complete(w, "inc1", (*first)[0]).code(), absl::StatusCode::kFailedPrecondition);
  clock_.Advance(absl::Seconds(21));
  scheduler_->Tick();
  job = Job((*first)[0].job_id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.attempt, 2);
  EXPECT_THAT(*Acquire(w, "inc1"), IsEmpty());
}

TEST_F(SchedulerTest, Heartbeat_KeepsTheLeaseAndMarksTheJobRunning) {
  Submit(Grid("smoke", 1));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1");
  const Assignment a = (*leased)[0];
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(10));
    auto reply = scheduler_->Heartbeat(w, "inc1", {{a.job_id, a.attempt, 0.1 * i, "step", 0}});
    ASSERT_TRUE(reply.ok());
    EXPECT_THAT(reply->cancel, IsEmpty());
    scheduler_->Tick();
  }
  JobRecord job = Job(a.job_id);
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_DOUBLE_EQ(job.progress, 0.4);
  EXPECT_EQ(job.attempt, 1);
  // Heartbeats stop: the worker is lost and the lease expires.
  clock_.Advance(absl::Seconds(21));
  scheduler_->Tick();
  EXPECT_EQ(Job(a.job_id).state, JobState::kPending);
  auto workers = scheduler_->ListWorkers();
  ASSERT_THAT(workers, SizeIs(1));
  EXPECT_EQ(workers[0].worker.state, "lost");
}

TEST_F(SchedulerTest, Fencing_NewIncarnationTakesOverAndOldReportsAreRefused) {
  Submit(Grid("smoke", 2));
  const std::string w = Register("w1", "old");
  auto leased = Acquire(w, "old", 2);
  ASSERT_THAT(*leased, SizeIs(2));
  // Another worker cannot report the job.
  Register("w2", "other");
  EXPECT_EQ(Complete("w2", "other", (*leased)[0]).code(), absl::StatusCode::kFailedPrecondition);
  // The same name restarts, still running job 0 (re-attach); job 1 is lost and retried.
  RegisterResult registered;
  Register("w1", "new", {{(*leased)[0].job_id, 1}, {"smoke-9.9", 1}}, &registered);
  EXPECT_THAT(registered.cancel, ElementsAre(JobRef{"smoke-9.9", 1}));
  EXPECT_EQ(Job((*leased)[0].job_id).state, JobState::kLeased);
  JobRecord lost = Job((*leased)[1].job_id);
  EXPECT_EQ(lost.state, JobState::kPending);
  EXPECT_THAT(lost.error, HasSubstr("restarted"));
  // The old incarnation is told to stop and cannot report.
  EXPECT_EQ(scheduler_->Heartbeat(w, "old", {}).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Complete(w, "old", (*leased)[0]).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Acquire(w, "old").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Complete(w, "new", (*leased)[0]).ok());
  // An unknown worker is asked to register.
  auto unknown = scheduler_->Heartbeat("nobody", "x", {});
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->reregister);
}

TEST_F(SchedulerTest, Cancel_RunningJobsGetCancelOrdersAndResultsAreRefused) {
  const std::string sweep = Submit(Grid("smoke", 3));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1");
  const Assignment a = (*leased)[0];
  auto cancelled = scheduler_->CancelSweep("smoke");  // by name
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(*cancelled, 3);
  auto reply = scheduler_->Heartbeat(w, "inc1", {{a.job_id, a.attempt, 0.5, "", 0}});
  ASSERT_TRUE(reply.ok());
  EXPECT_THAT(reply->cancel, ElementsAre(JobRef{a.job_id, a.attempt}));
  EXPECT_EQ(Complete(w, "inc1", a).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(*Acquire(w, "inc1"), IsEmpty());
  auto summary = scheduler_->GetSweepSummary(sweep);
  EXPECT_EQ(summary->cancelled, 3);
  EXPECT_NE(summary->sweep.finished_ms, 0);
}

TEST_F(SchedulerTest, Dependencies_ChildrenWaitForParentsAndGetTheirOutputs) {
  const std::string sweep = Submit(TwoStages());
  const std::string w = Register("w1", "inc1");
  auto first = Acquire(w, "inc1", 4);
  ASSERT_THAT(*first, SizeIs(1));  // only the parent is ready
  EXPECT_EQ((*first)[0].name, "pretrain");
  JobResult result;
  result.outputs = {{"output_dir", "/work/pre"}};
  result.metrics = {{"best_lr", 0.001}};
  ASSERT_TRUE(Complete(w, "inc1", (*first)[0], result).ok());
  auto children = Acquire(w, "inc1", 4);
  ASSERT_THAT(*children, SizeIs(2));
  auto config = nlohmann::json::parse((*children)[0].config_json);
  EXPECT_EQ(config["model"], "/work/pre");
  EXPECT_DOUBLE_EQ(config["lr"].get<double>(), 0.001);
  EXPECT_EQ((*children)[1].params.at("seed"), "1");
}

TEST_F(SchedulerTest, Dependencies_ParentFailingForGoodCancelsChildrenAndRetryRequeues) {
  const std::string sweep = Submit(TwoStages());
  const std::string w = Register("w1", "inc1");
  auto first = Acquire(w, "inc1");
  ASSERT_TRUE(Fail(w, "inc1", (*first)[0], /*retryable=*/false).ok());
  auto jobs = scheduler_->GetSweep(sweep, false);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->second[0].state, JobState::kFailed);
  EXPECT_THAT(jobs->second[0].error, HasSubstr("boom on stderr"));
  EXPECT_EQ(jobs->second[1].state, JobState::kCancelled);
  EXPECT_THAT(jobs->second[1].error, HasSubstr("dependency failed"));
  EXPECT_NE(jobs->first.sweep.finished_ms, 0);

  auto retried = scheduler_->RetryFailed(sweep);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(*retried, 3);
  auto again = Acquire(w, "inc1", 4);
  ASSERT_THAT(*again, SizeIs(1));
  EXPECT_EQ((*again)[0].attempt, 2);
  EXPECT_EQ(scheduler_->GetSweepSummary(sweep)->sweep.finished_ms, 0);
}

TEST_F(SchedulerTest, SweepFinished_IsReportedOncePerFinishAndAgainAfterARetryFinishesIt) {
  const std::string sweep = Submit(Grid("g", 2));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1", 2);
  ASSERT_THAT(*leased, SizeIs(2));
  ASSERT_TRUE(Fail(w, "inc1", (*leased)[0], /*retryable=*/false).ok());
  EXPECT_THAT(FinishedSweeps(), IsEmpty());  // one job still running
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[1]).ok());
  EXPECT_THAT(FinishedSweeps(), ElementsAre(sweep));

  ASSERT_TRUE(scheduler_->RetryFailed(sweep).ok());
  auto again = Acquire(w, "inc1", 2);
  ASSERT_THAT(*again, SizeIs(1));
  EXPECT_THAT(FinishedSweeps(), SizeIs(1));  // unfinished again: nothing reported
  ASSERT_TRUE(Complete(w, "inc1", (*again)[0]).ok());
  EXPECT_THAT(FinishedSweeps(), ElementsAre(sweep, sweep));
}

TEST_F(SchedulerTest, FailJob_RetryableFailuresAreRetriedThenFailWithTheStderrTail) {
  Submit(Grid("smoke", 1, "", /*max_attempts=*/2));
  const std::string w = Register("w1", "inc1");
  auto a1 = Acquire(w, "inc1");
  ASSERT_TRUE(Fail(w, "inc1", (*a1)[0]).ok());
  EXPECT_EQ(Job((*a1)[0].job_id).state, JobState::kPending);
  // A duplicate failure report of the same attempt is stale.
  EXPECT_EQ(Fail(w, "inc1", (*a1)[0]).code(), absl::StatusCode::kFailedPrecondition);
  auto a2 = Acquire(w, "inc1");
  ASSERT_TRUE(Fail(w, "inc1", (*a2)[0]).ok());
  auto job = scheduler_->GetJob((*a1)[0].job_id);
  EXPECT_EQ(job->first.state, JobState::kFailed);
  EXPECT_THAT(job->first.error, HasSubstr("boom on stderr"));
  ASSERT_THAT(job->second, SizeIs(2));
  EXPECT_EQ(job->second[1].exit_code, 3);
}

TEST_F(SchedulerTest, Preempted_JobIsRequeuedAtOnceAndTheAttemptIsNotSpent) {
  Submit(Grid("smoke", 1, "", /*max_attempts=*/1));
  const std::string w = Register("w1", "inc1");
  auto a1 = Acquire(w, "inc1");
  ASSERT_TRUE(a1.ok() && a1->size() == 1);
  // Given back even though the child's own exit would not be retried.
  ASSERT_TRUE(Fail(w, "inc1", (*a1)[0], /*retryable=*/false, /*preempted=*/true).ok());
  auto job = scheduler_->GetJob((*a1)[0].job_id);
  EXPECT_EQ(job->first.state, JobState::kPending);
  EXPECT_EQ(job->first.preemptions, 1);
  ASSERT_THAT(job->second, SizeIs(1));
  EXPECT_TRUE(job->second[0].preempted);
  // The same attempt cannot be given back twice.
  EXPECT_THAT(Fail(w, "inc1", (*a1)[0], true, true),
              StatusIs(absl::StatusCode::kFailedPrecondition, ""));

  const std::string w2 = Register("w2", "inc2");
  auto a2 = Acquire(w2, "inc2");
  ASSERT_TRUE(a2.ok() && a2->size() == 1);
  EXPECT_EQ((*a2)[0].attempt, 2);  // the fencing token moves on
  ASSERT_TRUE(Complete(w2, "inc2", (*a2)[0]).ok());
  EXPECT_EQ(Job((*a1)[0].job_id).state, JobState::kSucceeded);
}

TEST_F(SchedulerTest, Preempted_AttemptsAfterAPreemptionStillHaveTheirFullBudget) {
  Submit(Grid("smoke", 1, "", /*max_attempts=*/2));
  const std::string w = Register("w1", "inc1");
  auto a1 = Acquire(w, "inc1");
  ASSERT_TRUE(Fail(w, "inc1", (*a1)[0], true, /*preempted=*/true).ok());
  auto a2 = Acquire(w, "inc1");
  ASSERT_TRUE(Fail(w, "inc1", (*a2)[0]).ok());
  EXPECT_EQ(Job((*a1)[0].job_id).state, JobState::kPending);  // 1 of 2 spent
  auto a3 = Acquire(w, "inc1");
  ASSERT_TRUE(Fail(w, "inc1", (*a3)[0]).ok());
  const JobRecord job = Job((*a1)[0].job_id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.attempt, 3);
  EXPECT_EQ(job.preemptions, 1);
  EXPECT_THAT(job.error, HasSubstr("boom on stderr"));
  auto events = scheduler_->EventsAfter(job.sweep_id, 0, 100, nullptr);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> messages;
  for (const SweepEvent& e : *events) messages.push_back(e.message);
  EXPECT_THAT(messages, Contains(HasSubstr("attempt 1 preempted")));
  EXPECT_THAT(messages, Contains(HasSubstr("failed after 2 attempt(s)")));
}

TEST_F(SchedulerTest, Preempted_TheTwentyFirstGiveBackOfOneJobIsAnOrdinaryFailure) {
  Submit(Grid("smoke", 1, "", /*max_attempts=*/1));
  const std::string w = Register("w1", "inc1");
  std::string job_id;
  for (int i = 0; i < 21; ++i) {
    auto a = Acquire(w, "inc1");
    ASSERT_TRUE(a.ok() && a->size() == 1) << "give-back " << i;
    job_id = (*a)[0].job_id;
    ASSERT_TRUE(Fail(w, "inc1", (*a)[0], true, /*preempted=*/true).ok());
  }
  const JobRecord job = Job(job_id);
  EXPECT_EQ(job.preemptions, 20);
  EXPECT_EQ(job.state, JobState::kFailed);
}

TEST_F(SchedulerTest, Reuse_IdenticalCellsAreNotRerunUnlessForced) {
  const std::string first = Submit(Grid("smoke", 3));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1", 3);
  for (const Assignment& a : *leased) {
    ASSERT_TRUE(Complete(w, "inc1", a, ResultWithRows(a.attempt + 0.5, 2)).ok());
  }
  auto again = scheduler_->Submit(Grid("smoke", 4), "yaml", "", false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->reused, 3);
  auto jobs = scheduler_->GetSweep(again->sweep_id, true);
  EXPECT_EQ(jobs->second[0].reused_from, first + ".0");
  EXPECT_EQ(jobs->second[0].metrics.at("value"), 1.5);
  EXPECT_EQ(jobs->second[3].state, JobState::kPending);
  EXPECT_EQ(jobs->first.reused, 3);
  store_->Flush();
  auto reader = StoreReader::OpenReadOnly((dir_ / "coord.db").string());
  auto rows = (*reader)->ListJobExamples(again->sweep_id + ".2");
  ASSERT_TRUE(rows.ok());
  EXPECT_THAT(*rows, SizeIs(2));

  auto forced = scheduler_->Submit(Grid("smoke", 3), "yaml", "", /*force=*/true);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->reused, 0);
}

TEST_F(SchedulerTest, Restart_ResumesFromTheStoreWithoutRerunningFinishedJobs) {
  const std::string sweep = Submit(Grid("smoke", 3));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1", 2);
  ASSERT_THAT(*leased, SizeIs(2));
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[0], ResultWithRows(7, 3)).ok());
  Restart();
  auto summary = scheduler_->GetSweepSummary(sweep);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->succeeded, 1);
  EXPECT_EQ(summary->leased, 1);
  EXPECT_EQ(summary->pending, 1);
  EXPECT_EQ(Job((*leased)[0].job_id).metrics.at("value"), 7);
  // The worker re-attaches with its running job and keeps it; its result is accepted.
  auto heartbeat = scheduler_->Heartbeat(w, "inc1", {});
  EXPECT_TRUE(heartbeat->reregister);
  RegisterResult registered;
  Register("w1", "inc1", {{(*leased)[1].job_id, 1}}, &registered);
  EXPECT_THAT(registered.cancel, IsEmpty());
  auto rest = Acquire(w, "inc1", 4);
  ASSERT_THAT(*rest, SizeIs(1));  // only the never-leased job
  EXPECT_EQ((*rest)[0].job_id, sweep + ".2");
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[1]).ok());
  ASSERT_TRUE(Complete(w, "inc1", (*rest)[0]).ok());
  EXPECT_EQ(Complete(w, "inc1", (*leased)[0]).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->GetSweepSummary(sweep)->succeeded, 3);
  // Sweep numbering continues after a restart.
  EXPECT_EQ(Submit(Grid("other", 1)), "other-2");
}

TEST_F(SchedulerTest, Restart_LeasesOfWorkersThatDoNotComeBackExpireAfterTheTimeout) {
  Submit(Grid("smoke", 1));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1");
  Restart();
  // lease_timeout 20 s + restart_lease_grace 10 s.
  clock_.Advance(absl::Seconds(29));
  scheduler_->Tick();
  EXPECT_EQ(Job((*leased)[0].job_id).state, JobState::kLeased);
  clock_.Advance(absl::Seconds(2));
  scheduler_->Tick();
  EXPECT_EQ(Job((*leased)[0].job_id).state, JobState::kPending);
}

TEST_F(SchedulerTest, Restart_ResultOfALapsedLeaseIsTakenUntilTheJobIsLeasedAgain) {
  const std::string sweep = Submit(Grid("smoke", 2));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1", 2);
  ASSERT_THAT(*leased, SizeIs(2));
  // The coordinator restarts; the worker comes back only after the fresh lease ran out.
  Restart();
  clock_.Advance(absl::Seconds(31));
  scheduler_->Tick();
  ASSERT_EQ(Job((*leased)[0].job_id).state, JobState::kPending);
  ASSERT_EQ(Job((*leased)[1].job_id).state, JobState::kPending);
  // Before re-registering, the report names an incarnation the coordinator does not know.
  EXPECT_EQ(Complete(w, "inc1", (*leased)[0]).code(), absl::StatusCode::kFailedPrecondition);
  Register("w1", "inc1");
  // Another worker cannot report it, nor can the worker for another attempt.
  Register("w2", "inc2");
  EXPECT_EQ(Complete("w2", "inc2", (*leased)[0]).code(), absl::StatusCode::kFailedPrecondition);
  Assignment wrong_attempt = (*leased)[0];
  wrong_attempt.attempt = 2;
  EXPECT_EQ(Complete(w, "inc1", wrong_attempt).code(), absl::StatusCode::kFailedPrecondition);
  // The attempt's own result is taken: SUCCEEDED at attempt 1, never leased again.
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[0], ResultWithRows(5, 3)).ok());
  JobRecord done = Job((*leased)[0].job_id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.attempt, 1);
  EXPECT_EQ(done.error, "");
  EXPECT_EQ(done.metrics.at("value"), 5);
  // The other job is leased again (attempt 2) before its old result arrives: refused.
  auto again = Acquire("w2", "inc2", 4);
  ASSERT_THAT(*again, SizeIs(1));
  EXPECT_EQ((*again)[0].job_id, (*leased)[1].job_id);
  EXPECT_EQ((*again)[0].attempt, 2);
  EXPECT_EQ(Complete(w, "inc1", (*leased)[1]).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Complete("w2", "inc2", (*again)[0]).ok());
  EXPECT_EQ(scheduler_->GetSweepSummary(sweep)->succeeded, 2);

  store_->Flush();
  auto reader = StoreReader::OpenReadOnly((dir_ / "coord.db").string());
  ASSERT_TRUE(reader.ok());
  auto attempts = (*reader)->ListAttempts((*leased)[0].job_id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_THAT(*attempts, SizeIs(1));
  EXPECT_EQ((*attempts)[0].state, JobState::kSucceeded);
  EXPECT_THAT(*(*reader)->ListExamples(sweep), SizeIs(3));
}

TEST_F(SchedulerTest, Restart_LapsedLeaseOfAJobStillRunningIsHandedBackOnRegistration) {
  Submit(Grid("smoke", 1));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1");
  ASSERT_THAT(*leased, SizeIs(1));
  Restart();
  clock_.Advance(absl::Seconds(31));
  scheduler_->Tick();
  ASSERT_EQ(Job((*leased)[0].job_id).state, JobState::kPending);
  RegisterResult registered;
  Register("w1", "inc1", {{(*leased)[0].job_id, 1}}, &registered);
  EXPECT_THAT(registered.cancel, IsEmpty());
  JobRecord job = Job((*leased)[0].job_id);
  EXPECT_EQ(job.state, JobState::kLeased);
  EXPECT_EQ(job.attempt, 1);
  EXPECT_THAT(*Acquire(w, "inc1"), IsEmpty());  // not handed out twice
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[0]).ok());
  auto details = scheduler_->GetJob((*leased)[0].job_id);
  ASSERT_THAT(details->second, SizeIs(1));
  EXPECT_EQ(details->second[0].state, JobState::kSucceeded);
}

TEST_F(SchedulerTest, LapsedLease_HeartbeatOfItsWorkerResumesItUnlessItWasLeasedAgain) {
  // The worker was stopped for longer than the lease; meanwhile job 0 went to another worker.
  const std::string w = "w1";
  const std::vector<Assignment> lapsed = LeaseAllThenLapse(w, "inc1", 2);
  ASSERT_THAT(lapsed, SizeIs(2));
  Register("w2", "inc2");
  auto taken = Acquire("w2", "inc2");
  ASSERT_THAT(*taken, SizeIs(1));
  EXPECT_EQ((*taken)[0].job_id, lapsed[0].job_id);
  auto reply = scheduler_->Heartbeat(
      w, "inc1", {{lapsed[0].job_id, 1, 0.5, "", 0}, {lapsed[1].job_id, 1, 0.5, "", 0}});
  ASSERT_TRUE(reply.ok());
  EXPECT_THAT(reply->cancel, ElementsAre(JobRef{lapsed[0].job_id, 1}));
  JobRecord resumed = Job(lapsed[1].job_id);
  EXPECT_EQ(resumed.state, JobState::kRunning);
  EXPECT_EQ(resumed.attempt, 1);
  EXPECT_THAT(*Acquire("w2", "inc2"), IsEmpty());
  EXPECT_TRUE(Complete(w, "inc1", lapsed[1]).ok());
  EXPECT_EQ(Complete(w, "inc1", lapsed[0]).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerTest, LapsedLease_FailureReportIsRecordedAndASupersededProcessIsRefused) {
  const std::string w = "w1";
  const std::vector<Assignment> lapsed = LeaseAllThenLapse(w, "old", 2);
  ASSERT_THAT(lapsed, SizeIs(2));
  // A non-retryable failure of the lapsed attempt fails the job for good, with its details.
  ASSERT_TRUE(Fail(w, "old", lapsed[0], /*retryable=*/false).ok());
  JobRecord failed = Job(lapsed[0].job_id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_THAT(failed.error, HasSubstr("boom on stderr"));
  // A newer process took the name: the old one's report of the lapsed lease is refused.
  Register("w1", "new");
  EXPECT_EQ(Complete(w, "old", lapsed[1]).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Job(lapsed[1].job_id).state, JobState::kPending);
}

TEST_F(SchedulerTest, LapsedLease_ResultWhoseWriteFailsLeavesTheJobToBeLeasedAgain) {
  const std::string w = "w1";
  const std::vector<Assignment> lapsed = LeaseAllThenLapse(w, "inc1", 1);
  ASSERT_THAT(lapsed, SizeIs(1));
  faulty_->FailResults(true);
  EXPECT_EQ(Complete(w, "inc1", lapsed[0]).code(), absl::StatusCode::kUnavailable);
  faulty_->FailResults(false);
  EXPECT_EQ(Job(lapsed[0].job_id).state, JobState::kPending);
  ProbeStore();  // the failed write refuses leases until a write succeeds
  auto again = Acquire(w, "inc1");
  ASSERT_THAT(*again, SizeIs(1));
  EXPECT_EQ((*again)[0].attempt, 2);
}

TEST_F(SchedulerTest, LongPoll_WaitsForWorkAndEndsEmptyAtItsDeadline) {
  const std::string w = Register("w1", "inc1");
  std::promise<absl::StatusOr<std::vector<Assignment>>> got_work, got_nothing;
  scheduler_->AcquireJob(w, "inc1", 1, absl::Seconds(10),
                         [&](auto r) { got_work.set_value(std::move(r)); });
  scheduler_->AcquireJob(w, "inc1", 1, absl::Seconds(10),
                         [&](auto r) { got_nothing.set_value(std::move(r)); });
  auto work = got_work.get_future();
  auto nothing = got_nothing.get_future();
  EXPECT_EQ(work.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  Submit(Grid("smoke", 1));
  ASSERT_EQ(work.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto assignments = work.get();
  ASSERT_TRUE(assignments.ok());
  EXPECT_THAT(*assignments, SizeIs(1));
  clock_.Advance(absl::Seconds(9));
  scheduler_->Tick();
  EXPECT_EQ(nothing.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  clock_.Advance(absl::Seconds(2));
  scheduler_->Tick();
  ASSERT_EQ(nothing.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_THAT(*nothing.get(), IsEmpty());
}

TEST_F(SchedulerTest, StoreFailure_CompletionIsRefusedAndCanBeResent) {
  const std::string sweep = Submit(Grid("smoke", 1));
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1");
  faulty_->FailResults(true);
  absl::Status failed = Complete(w, "inc1", (*leased)[0], ResultWithRows(1, 4));
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Job((*leased)[0].job_id).state, JobState::kLeased);
  faulty_->FailResults(false);
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[0], ResultWithRows(1, 4)).ok());
  EXPECT_EQ(Job((*leased)[0].job_id).state, JobState::kSucceeded);
  store_->Flush();
  auto reader = StoreReader::OpenReadOnly((dir_ / "coord.db").string());
  EXPECT_THAT(*(*reader)->ListExamples(sweep), SizeIs(4));
}

TEST_F(SchedulerTest, StoreFailure_RefusesSubmitsAndLeasesUntilWritesRecover) {
  const std::string sweep = Submit(Grid("smoke", 3));
  const std::string w = Register("w1", "inc1");
  auto first = Acquire(w, "inc1");
  ASSERT_THAT(*first, SizeIs(1));
  ASSERT_TRUE(Complete(w, "inc1", (*first)[0], ResultWithRows(1, 2)).ok());

  // The disk fills: the submit's transaction fails, nothing of it is kept in memory.
  faulty_->FailNextWrites(1, absl::UnavailableError("disk full (SQLITE_FULL)"));
  auto lost = scheduler_->Submit(Grid("later", 2, "b"), "yaml", "later.yaml", false);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(lost.status().message(),
              HasSubstr("coordinator cannot write its database: disk full (SQLITE_FULL)"));
  EXPECT_THAT(scheduler_->ListSweeps(), SizeIs(1));
  EXPECT_FALSE(scheduler_->GetSweepSummary("later").ok());

  // Until a write succeeds: submits and leases are refused with the reason.
  auto refused_submit = scheduler_->Submit(Grid("later", 2, "b"), "yaml", "later.yaml", false);
  EXPECT_EQ(refused_submit.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused_submit.status().message(),
              HasSubstr("coordinator cannot write its database: disk full (SQLITE_FULL)"));
  auto refused_lease = Acquire(w, "inc1", 2);
  EXPECT_EQ(refused_lease.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused_lease.status().message(),
              HasSubstr("coordinator cannot write its database: disk full (SQLITE_FULL)"));
  EXPECT_EQ(scheduler_->GetSweepSummary(sweep)->leased, 0);

  // A probe write succeeds: the sweep completes.
  ProbeStore();
  auto rest = Acquire(w, "inc1", 2);
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_THAT(*rest, SizeIs(2));
  for (const Assignment& a : *rest) ASSERT_TRUE(Complete(w, "inc1", a, ResultWithRows(2, 1)).ok());
  EXPECT_EQ(scheduler_->GetSweepSummary(sweep)->succeeded, 3);

  // A restart shows exactly what was acknowledged: one finished sweep, no trace of "later".
  store_->Flush();
  Restart();
  std::vector<SweepSummary> sweeps = scheduler_->ListSweeps();
  ASSERT_THAT(sweeps, SizeIs(1));
  EXPECT_EQ(sweeps[0].sweep.sweep_id, sweep);
  EXPECT_EQ(sweeps[0].succeeded, 3);
  EXPECT_EQ(sweeps[0].total, 3);
  EXPECT_NE(sweeps[0].sweep.finished_ms, 0);
  auto reader = StoreReader::OpenReadOnly((dir_ / "coord.db").string());
  EXPECT_THAT(*(*reader)->ListExamples(sweep), SizeIs(4));
}

// Holds every batch until Release(): a store whose disk is slow.
class GatedStore final : public Store {
 public:
  explicit GatedStore(Store* base) : base_(base) {}
  void WriteAsync(WriteBatch batch, DoneCallback done) override {
    absl::MutexLock lock(&mu_);
    held_.emplace_back(std::move(batch), std::move(done));
  }
  absl::StatusOr<StoreSnapshot> Load() override { return base_->Load(); }
  void Flush() override { base_->Flush(); }
  void Release() {
    std::vector<std::pair<WriteBatch, DoneCallback>> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto& [batch, done] : held) base_->WriteAsync(std::move(batch), std::move(done));
    base_->Flush();
  }

 private:
  Store* const base_;
  absl::Mutex mu_;
  std::vector<std::pair<WriteBatch, DoneCallback>> held_ ABSL_GUARDED_BY(mu_);
};

TEST_F(SchedulerTest, SubmitAsync_ReturnsBeforeTheSweepIsDurableAndAnswersOnceItIs) {
  auto base = SqliteStore::Open((dir_ / "gated.db").string());
  ASSERT_TRUE(base.ok()) << base.status();
  GatedStore gated(base->get());
  SchedulerOptions options;
  options.clock = &clock_;
  auto scheduler = Scheduler::Create(&gated, options);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  std::promise<absl::StatusOr<SubmitResult>> answered;
  (*scheduler)
      ->SubmitAsync(Grid("slow", 2), "yaml", "spec.yaml", /*force=*/false, "",
                    [&](absl::StatusOr<SubmitResult> r) { answered.set_value(r); });
  auto answer = answered.get_future();
  EXPECT_EQ(answer.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  EXPECT_THAT((*scheduler)->ListSweeps(), IsEmpty());  // invisible until durable
  gated.Release();
  absl::StatusOr<SubmitResult> result = answer.get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->jobs, 2);
  EXPECT_THAT((*scheduler)->ListSweeps(), SizeIs(1));
}

TEST_F(SchedulerTest, StoreFailure_SubmitDispatchesNothingBeforeItsWriteCommitted) {
  const std::string w = Register("w1", "inc1");
  std::promise<absl::StatusOr<std::vector<Assignment>>> waiting;
  scheduler_->AcquireJob(w, "inc1", 1, absl::Seconds(10),
                         [&](auto r) { waiting.set_value(std::move(r)); });
  faulty_->FailNextWrites(1, absl::UnavailableError("disk full"));
  EXPECT_FALSE(scheduler_->Submit(Grid("smoke", 1), "yaml", "spec.yaml", false).ok());
  auto future = waiting.get_future();
  // The long poll got nothing from the sweep whose write failed.
  EXPECT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  clock_.Advance(absl::Seconds(11));
  scheduler_->Tick();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto got = future.get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, IsEmpty());
  EXPECT_THAT(scheduler_->ListSweeps(), IsEmpty());
}

TEST_F(SchedulerTest, Submit_RepeatedIdempotencyKeyReturnsTheSameSweepAcrossRestarts) {
  auto first = scheduler_->Submit(Grid("smoke", 2), "yaml", "spec.yaml", false, "key-1");
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = scheduler_->Submit(Grid("smoke", 2), "yaml", "spec.yaml", false, "key-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->sweep_id, first->sweep_id);
  EXPECT_EQ(again->jobs, 2);
  EXPECT_THAT(scheduler_->ListSweeps(), SizeIs(1));
  auto other = scheduler_->Submit(Grid("smoke", 2), "yaml", "spec.yaml", false, "key-2");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->sweep_id, first->sweep_id);
  store_->Flush();
  Restart();
  auto after_restart = scheduler_->Submit(Grid("smoke", 2), "yaml", "spec.yaml", false, "key-1");
  ASSERT_TRUE(after_restart.ok()) << after_restart.status();
  EXPECT_EQ(after_restart->sweep_id, first->sweep_id);
  EXPECT_THAT(scheduler_->ListSweeps(), SizeIs(2));
}

TEST_F(SchedulerTest, Submit_KeyOfASubmitWhoseWriteFailedCreatesTheSweepOnRetry) {
  faulty_->FailNextWrites(1, absl::UnavailableError("disk full"));
  EXPECT_FALSE(scheduler_->Submit(Grid("smoke", 1), "yaml", "spec.yaml", false, "key-1").ok());
  EXPECT_EQ(
      scheduler_->Submit(Grid("smoke", 1), "yaml", "spec.yaml", false, "key-1").status().code(),
      absl::StatusCode::kUnavailable);
  ProbeStore();  // nothing to rewrite and nothing held: the next submit is its own probe
  auto retried = scheduler_->Submit(Grid("smoke", 1), "yaml", "spec.yaml", false, "key-1");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_THAT(scheduler_->ListSweeps(), SizeIs(1));
}

TEST_F(SchedulerTest, ListSweeps_CarriesNoSpecTextWhileGetSweepDoes) {
  const std::string sweep = Submit(Grid("smoke", 1));
  std::vector<SweepSummary> listed = scheduler_->ListSweeps();
  ASSERT_THAT(listed, SizeIs(1));
  EXPECT_EQ(listed[0].sweep.spec_yaml, "");
  EXPECT_EQ(listed[0].sweep.spec_path, "spec.yaml");
  EXPECT_EQ(scheduler_->GetSweepSummary(sweep)->sweep.spec_yaml, "yaml");
  EXPECT_EQ(scheduler_->GetSweep(sweep, false)->first.sweep.spec_yaml, "yaml");
}

TEST_F(SchedulerTest, Events_AreNumberedPerSweepAndWatchersAreWoken) {
  const std::string sweep = Submit(Grid("smoke", 1));
  bool finished = true;
  auto events = scheduler_->EventsAfter(sweep, 0, 100, &finished);
  ASSERT_TRUE(events.ok());
  ASSERT_FALSE(events->empty());
  EXPECT_FALSE(finished);
  const int64_t last = events->back().seq;
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].seq, i + 1);
  bool woken = false;
  EXPECT_EQ(scheduler_->WatchEvents(sweep, last - 1, [&] { woken = true; }), 0);
  EXPECT_NE(scheduler_->WatchEvents(sweep, last, [&] { woken = true; }), 0);
  EXPECT_FALSE(woken);
  const std::string w = Register("w1", "inc1");
  auto leased = Acquire(w, "inc1");
  EXPECT_TRUE(woken);
  ASSERT_TRUE(Complete(w, "inc1", (*leased)[0]).ok());
  events = scheduler_->EventsAfter(sweep, last, 100, &finished);
  EXPECT_TRUE(finished);
  EXPECT_EQ(events->back().message, "sweep finished");
}

}  // namespace
}  // namespace pcsweep::coordinator
