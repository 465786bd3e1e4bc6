#include "tools/cli/slurm_autoscaler.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class FakeView final : public ClusterView {
 public:
  ClusterLoad Read() override { return load; }
  ClusterLoad load;
};

// A Slurm that runs every submitted task at once and forgets cancelled ones.
class FakeSlurm final : public SlurmBackend {
 public:
  absl::StatusOr<std::string> Submit(int workers) override {
    if (!answers) return absl::UnavailableError("Unable to contact slurm controller");
    const std::string job = std::to_string(next_job++);
    submitted.push_back(workers);
    for (int i = 0; i < workers; ++i) tasks.insert(absl::StrCat(job, "_", i));
    return job;
  }
  absl::StatusOr<std::set<std::string>> Queued(const std::vector<std::string>& jobs) override {
    ++queue_reads;
    if (!answers) return absl::UnavailableError("squeue failed: Unable to contact controller");
    std::set<std::string> ours;
    for (const std::string& task : tasks) {
      for (const std::string& job : jobs) {
        if (task.rfind(job + "_", 0) == 0) ours.insert(task);
      }
    }
    return ours;
  }
  absl::Status Cancel(const std::string& task) override {
    cancelled.push_back(task);
    tasks.erase(task);
    return absl::OkStatus();
  }

  bool answers = true;
  int next_job = 100;
  int queue_reads = 0;
  std::vector<int> submitted;
  std::set<std::string> tasks;
  std::vector<std::string> cancelled;
};

class SlurmAutoscalerTest : public ::testing::Test {
 protected:
  SlurmAutoscalerTest() {
    options_.max_workers = 2;
    options_.slots = 1;
    options_.idle_timeout = absl::Seconds(30);
    options_.poll_interval = absl::Seconds(10);
  }
  SlurmAutoscaler& Autoscaler() {
    if (autoscaler_ == nullptr) {
      autoscaler_ = std::make_unique<SlurmAutoscaler>(options_, &view_, &slurm_, &clock_);
    }
    return *autoscaler_;
  }
  // Every task Slurm runs has registered as a worker holding `running` jobs.
  void WorkersRegistered(int running) {
    view_.load.workers.clear();
    for (const std::string& task : slurm_.tasks) {
      view_.load.workers.push_back(WorkerLoad{task, true, running});
    }
  }

  AutoscalerOptions options_;
  FakeClock clock_;
  FakeView view_;
  FakeSlurm slurm_;
  std::unique_ptr<SlurmAutoscaler> autoscaler_;
};

TEST_F(SlurmAutoscalerTest, ScalesFromZeroToTheMaximumInOneArrayAndBackToZeroWhenIdle) {
  EXPECT_EQ(Autoscaler().Step(), "");  // nothing to do, nothing submitted
  view_.load.unfinished_jobs = 12;
  EXPECT_THAT(Autoscaler().Step(), HasSubstr("submitted 2 worker(s) as Slurm job 100"));
  EXPECT_EQ(Autoscaler().Step(), "");  // the new tasks count before squeue lists them
  EXPECT_THAT(slurm_.submitted, ElementsAre(2));
  WorkersRegistered(/*running=*/1);
  clock_.Advance(absl::Minutes(5));
  Autoscaler().Step();
  EXPECT_THAT(slurm_.cancelled, IsEmpty());  // busy workers stay

  view_.load.unfinished_jobs = 0;
  WorkersRegistered(/*running=*/0);
  Autoscaler().Step();
  clock_.Advance(absl::Seconds(29));
  Autoscaler().Step();
  EXPECT_THAT(slurm_.cancelled, IsEmpty());  // idle, but not for long enough
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(Autoscaler().Step(), HasSubstr("cancelled worker 100_0 (idle for 31s)"));
  EXPECT_THAT(slurm_.cancelled, ElementsAre("100_0", "100_1"));
  EXPECT_EQ(Autoscaler().queued_tasks(), 0);
}

TEST_F(SlurmAutoscalerTest, SubmitsOnlyTheMissingWorkersUpToTheMaximum) {
  options_.max_workers = 5;
  options_.slots = 2;
  view_.load.unfinished_jobs = 3;  // two workers of two slots
  Autoscaler().Step();
  view_.load.unfinished_jobs = 40;
  clock_.Advance(absl::Seconds(10));
  Autoscaler().Step();
  clock_.Advance(absl::Seconds(10));
  Autoscaler().Step();
  EXPECT_THAT(slurm_.submitted, ElementsAre(2, 3));
  // A task that ended (its time limit) is replaced once squeue no longer lists it.
  slurm_.tasks.erase("100_1");
  clock_.Advance(absl::Seconds(10));
  Autoscaler().Step();
  EXPECT_THAT(slurm_.submitted, ElementsAre(2, 3, 1));
}

TEST_F(SlurmAutoscalerTest, ReadsSqueueAtMostOncePerPollInterval) {
  view_.load.unfinished_jobs = 1;
  for (int i = 0; i < 100; ++i) {
    Autoscaler().Step();
    clock_.Advance(absl::Milliseconds(500));
  }
  EXPECT_EQ(slurm_.queue_reads, 5);  // 50 s of steps, one read per 10 s
}

TEST_F(SlurmAutoscalerTest, AControllerThatDoesNotAnswerStopsSubmittingWithOneMessage) {
  view_.load.unfinished_jobs = 4;
  slurm_.answers = false;
  EXPECT_THAT(Autoscaler().Step(), HasSubstr("slurm does not answer (squeue failed"));
  EXPECT_EQ(Autoscaler().Step(), "");  // said once per outage
  EXPECT_THAT(slurm_.submitted, IsEmpty());
  slurm_.answers = true;
  EXPECT_EQ(Autoscaler().Step(), "");  // the next squeue waits for the poll interval
  clock_.Advance(absl::Seconds(10));
  const std::string actions = Autoscaler().Step();
  EXPECT_THAT(actions, HasSubstr("slurm answers again"));
  EXPECT_THAT(actions, HasSubstr("submitted 2 worker(s)"));
  EXPECT_THAT(slurm_.submitted, ElementsAre(2));
}

TEST_F(SlurmAutoscalerTest, AnIdleWorkerWhileJobsWaitForParentsIsKept) {
  view_.load.unfinished_jobs = 2;  // e.g. an eval stage waiting for its train parents
  Autoscaler().Step();
  WorkersRegistered(/*running=*/0);
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(absl::Seconds(10));
    Autoscaler().Step();
  }
  EXPECT_THAT(slurm_.cancelled, IsEmpty());
  EXPECT_THAT(slurm_.submitted, ElementsAre(2));  // and nothing submitted twice
}

TEST_F(SlurmAutoscalerTest, WorkersItDidNotSubmitAreNeverCancelled) {
  view_.load.workers = {WorkerLoad{"77_0", true, 0}, WorkerLoad{"", true, 0}};
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(absl::Minutes(1));
    Autoscaler().Step();
  }
  EXPECT_THAT(slurm_.cancelled, IsEmpty());
}

}  // namespace
}  // namespace pcsweep::cli
