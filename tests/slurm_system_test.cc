// Slurm system tests (label `slurm`): a real coordinator, workers started by `pcsweep slurm up`
// as a job array on a real slurmctld/slurmd (tools/slurm-local.sh, which tools/test.sh starts),
// preempted with the signals Slurm itself sends. They need SLURM_CONF (or a default cluster)
// and sbatch on PATH; without them they skip, unless PCSWEEP_REQUIRE_SLURM=1 (set by
// tools/test.sh once its cluster is up), when that is a failure.
//
// The array tasks run on this machine, so the coordinator listens on loopback; each worker
// asks for one CPU (--slots 1), and the local node has at least two.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "coordinator/store/store_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"
#include "tools/cli/client.h"

namespace pcsweep {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pcsweep::v1;
using ::pcsweep::testing::ChildProcess;
using ::pcsweep::testing::CommandResult;
using ::pcsweep::testing::RunCommand;
using ::testing::HasSubstr;

constexpr int kCells = 12;
constexpr int kCellSeconds = 3;

// One cell: sleep, then report {"value": X}.
constexpr char kCellScript[] = R"(#!/bin/sh
sleep "$2"
printf '{"value": %s}\n' "$1" > "$PCSWEEP_OUTPUT_DIR/metrics.json"
)";

// Runs a Slurm client tool found on PATH (the child helper needs a path).
absl::StatusOr<CommandResult> Slurm(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"/bin/sh", "-c", "exec \"$0\" \"$@\""});
  return RunCommand(argv, absl::Seconds(30));
}

class SlurmSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path build_root = fs::read_symlink("/proc/self/exe").parent_path().parent_path();
    const char* root = std::getenv("PCSWEEP_BINARY_ROOT");
    binary_ = (root != nullptr && *root != '\0' ? std::string(root) : build_root.string()) +
              "/bin/pcsweep";
    ASSERT_TRUE(fs::exists(binary_)) << binary_ << " is missing: build the pcsweep target";
    auto sinfo = Slurm({"sinfo", "-h", "-o", "%T"});
    if (!sinfo.ok() || sinfo->exit_code != 0 || sinfo->out.empty()) {
      const std::string why = absl::StrCat(
          "no Slurm cluster answers (sinfo: ",
          sinfo.ok() ? absl::StrCat(sinfo->err, sinfo->out) : sinfo.status().ToString(),
          "); start one with tools/slurm-local.sh start and export SLURM_CONF");
      const char* require = std::getenv("PCSWEEP_REQUIRE_SLURM");
      if (require != nullptr && std::string(require) == "1") GTEST_FAIL() << why;
      GTEST_SKIP() << why;
    }
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Not ::testing::TempDir() alone: slurmd runs the array tasks, which write their logs and
    // work dirs here, so the path must be absolute and exist for them.
    dir_ = fs::absolute(fs::path(::testing::TempDir()) /
                        absl::StrCat("pcsweep-slurm-", info->name(), "-", getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "cell.sh") << kCellScript;
    db_ = (dir_ / "coordinator.db").string();
  }

  void TearDown() override {
    if (!array_job_.empty()) Slurm({"scancel", array_job_}).IgnoreError();
    coordinator_.reset();
    if (!HasFailure() && !IsSkipped()) fs::remove_all(dir_);
  }

  void StartCoordinator(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        binary_, "coordinator",     "--db", db_, "--listen", "127.0.0.1:0", "--heartbeat-interval",
        "0.5",   "--lease-timeout", "30"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = ChildProcess::Start(argv);
    ASSERT_TRUE(child.ok()) << child.status();
    coordinator_ = *std::move(child);
    auto line = coordinator_->WaitForStdoutLine("listening on ", absl::Seconds(20));
    ASSERT_TRUE(line.ok()) << line.status();
    std::smatch match;
    ASSERT_TRUE(std::regex_search(*line, match, std::regex("listening on (\\S+:\\d+)"))) << *line;
    address_ = match[1];
    cli::ClientOptions options;
    options.address = address_;
    options.call_deadline = absl::Seconds(5);
    api_ = cli::MakeGrpcCoordinatorApi(options);
  }

  CommandResult Pcsweep(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), binary_);
    auto result = RunCommand(args, absl::Seconds(60), env);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{-1, "", ""};
  }

  // `pcsweep slurm up` with two one-slot workers; remembers the array's job id.
  void SlurmUp() {
    CommandResult up = Pcsweep({"slurm", "up", "--coordinator", address_, "--workers", "2",
                                "--slots", "1", "--dir", (dir_ / "slurm").string()});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    // stdout is the job id alone (a note goes to stderr), as sbatch --parsable prints it.
    array_job_ = std::string(absl::StripAsciiWhitespace(up.out));
    ASSERT_TRUE(std::regex_match(array_job_, std::regex("\\d+"))) << up.out << up.err;
  }

  std::string SubmitCells() {
    std::vector<int> xs;
    for (int i = 1; i <= kCells; ++i) xs.push_back(i);
    const fs::path spec = dir_ / "cells.yaml";
    // max_attempts 1: a preemption that spent an attempt would fail its cell for good.
    std::ofstream(spec) << "name: slurm-cells\njob:\n  kind: command\n  command: \"sh "
                        << (dir_ / "cell.sh").string() << " {x} " << kCellSeconds
                        << "\"\ngrid:\n  x: [" << absl::StrJoin(xs, ", ") << "]\nmax_attempts: 1\n";
    CommandResult submitted = Pcsweep({"submit", spec.string(), "--coordinator", address_});
    EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
    return std::string(absl::StripAsciiWhitespace(submitted.out));
  }

  // Polls ListWorkers until `pick` returns a worker; returns it (or fails with the last list).
  absl::StatusOr<v1::WorkerInfo> WaitForWorker(
      const std::function<bool(const v1::WorkerInfo&)>& pick, const std::string& what,
      absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string last;
    while (absl::Now() < deadline) {
      auto workers = api_->ListWorkers();
      if (workers.ok()) {
        for (const v1::WorkerInfo& w : workers->workers()) {
          if (pick(w)) return w;
        }
        last = workers->DebugString();
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    auto queue = Slurm({"squeue"});
    return absl::DeadlineExceededError(
        absl::StrCat("waited ", absl::FormatDuration(timeout), " for ", what, "; workers: ", last,
                     "; squeue: ", queue.ok() ? queue->out : queue.status().ToString()));
  }

  static std::function<bool(const v1::WorkerInfo&)> AliveTask(const std::string& task,
                                                              const std::string& restarts,
                                                              bool running) {
    return [=](const v1::WorkerInfo& w) {
      auto job = w.labels().find("slurm_job_id");
      auto restart = w.labels().find("slurm_restart_count");
      return w.state() == "alive" && job != w.labels().end() && job->second == task &&
             restart != w.labels().end() && restart->second == restarts &&
             (!running || w.running_size() > 0);
    };
  }

  absl::Status WaitForSweepEnd(const std::string& sweep_id, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string last;
    while (absl::Now() < deadline) {
      v1::GetSweepRequest request;
      request.set_sweep_id(sweep_id);
      auto sweep = api_->GetSweep(request);
      if (sweep.ok()) {
        const auto& c = sweep->summary();
        if (c.pending() + c.leased() + c.running() == 0) return absl::OkStatus();
        last = c.DebugString();
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return absl::DeadlineExceededError(absl::StrCat("sweep ", sweep_id, " did not end in ",
                                                    absl::FormatDuration(timeout), ": ", last));
  }

  // From the database file: every cell succeeded exactly once with its own value; the cell
  // `preempted_job` was given back once, and that attempt was not spent.
  void ExpectEveryCellOnceAndThePreemptionNotSpent(const std::string& sweep_id,
                                                   const std::string& preempted_job) {
    auto reader = coordinator::StoreReader::OpenReadOnly(db_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    auto jobs = (*reader)->ListJobs(sweep_id);
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    ASSERT_EQ(static_cast<int>(jobs->size()), kCells);
    bool saw_preempted = false;
    for (const coordinator::JobRecord& job : *jobs) {
      EXPECT_EQ(job.state, coordinator::JobState::kSucceeded) << job.name << ": " << job.error;
      EXPECT_EQ(job.attempt - job.preemptions, 1) << job.name << " spent more than one attempt";
      auto attempts = (*reader)->ListAttempts(job.job_id);
      ASSERT_TRUE(attempts.ok()) << attempts.status();
      int succeeded = 0;
      for (const coordinator::AttemptRecord& a : *attempts) {
        succeeded += a.state == coordinator::JobState::kSucceeded;
      }
      EXPECT_EQ(succeeded, 1) << job.name;
      ASSERT_EQ(job.metrics.count("value"), 1u) << job.name;
      EXPECT_EQ(std::to_string(static_cast<int>(job.metrics.at("value"))), job.params.at("x"));
      if (job.job_id != preempted_job) continue;
      saw_preempted = true;
      EXPECT_EQ(job.preemptions, 1);
      ASSERT_GE(attempts->size(), 2u);
      EXPECT_TRUE((*attempts)[0].preempted);
      EXPECT_THAT((*attempts)[0].error, HasSubstr("given back"));
    }
    EXPECT_TRUE(saw_preempted) << preempted_job << " is not a job of " << sweep_id;
  }

  // A coordinator, two workers from `slurm up` and the cells' sweep, up to the moment array
  // task 1 runs a cell: that cell's job id goes to `busy_job`.
  void StartSweepOnTwoSlurmWorkers(std::string* sweep_id, std::string* busy_job) {
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    ASSERT_NO_FATAL_FAILURE(SlurmUp());
    const std::string task0 = array_job_ + "_0", task1 = array_job_ + "_1";
    auto first = WaitForWorker(AliveTask(task0, "0", false), task0, absl::Seconds(60));
    ASSERT_TRUE(first.ok()) << first.status();
    *sweep_id = SubmitCells();
    auto busy =
        WaitForWorker(AliveTask(task1, "0", true), task1 + " running a cell", absl::Seconds(60));
    ASSERT_TRUE(busy.ok()) << busy.status();
    *busy_job = busy->running(0).job_id();
  }

  std::string binary_;
  fs::path dir_;
  std::string db_;
  std::string address_;
  std::string array_job_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::unique_ptr<cli::CoordinatorApi> api_;
};

// What Slurm does on preemption (and what `scancel --full --signal=TERM` does): SIGTERM to every
// process of the job, the worker and its child alike.
TEST_F(SlurmSystemTest, AWorkerSignalledMidSweepGivesItsJobBackAndEveryCellIsRecordedOnce) {
  std::string sweep_id, preempted_job;
  ASSERT_NO_FATAL_FAILURE(StartSweepOnTwoSlurmWorkers(&sweep_id, &preempted_job));
  const std::string task1 = array_job_ + "_1";
  auto signalled = Slurm({"scancel", "--full", "--signal=TERM", task1});
  ASSERT_TRUE(signalled.ok() && signalled->exit_code == 0) << signalled->err;

  ASSERT_TRUE(WaitForSweepEnd(sweep_id, absl::Seconds(120)).ok());
  ExpectEveryCellOnceAndThePreemptionNotSpent(sweep_id, preempted_job);
  CommandResult logs = Pcsweep({"logs", preempted_job, "--coordinator", address_});
  EXPECT_THAT(logs.out, HasSubstr("+1 preempted"));
  EXPECT_THAT(logs.out, HasSubstr("PREEMPTED"));
}

// `scontrol requeue`: Slurm kills the task (SIGTERM first) and starts it again as a new
// incarnation, SLURM_RESTART_COUNT=1, after its requeue delay (about 121 s on 22.05).
TEST_F(SlurmSystemTest, ARequeuedWorkerGivesItsJobBackAndComesBackAsANewIncarnation) {
  std::string sweep_id, preempted_job;
  ASSERT_NO_FATAL_FAILURE(StartSweepOnTwoSlurmWorkers(&sweep_id, &preempted_job));
  const std::string task1 = array_job_ + "_1";
  auto requeued = Slurm({"scontrol", "requeue", task1});
  ASSERT_TRUE(requeued.ok() && requeued->exit_code == 0) << requeued->err;

  ASSERT_TRUE(WaitForSweepEnd(sweep_id, absl::Seconds(120)).ok());
  ExpectEveryCellOnceAndThePreemptionNotSpent(sweep_id, preempted_job);
  auto back = WaitForWorker(AliveTask(task1, "1", false), task1 + " requeued (restart 1)",
                            absl::Seconds(240));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->worker_id(), absl::StrCat("slurm-", array_job_, "-1.1"));
  CommandResult workers = Pcsweep({"workers", "--coordinator", address_});
  EXPECT_THAT(workers.out, HasSubstr(task1 + " on "));
  EXPECT_THAT(workers.out, HasSubstr("(requeued 1x)"));
}

// The coordinator's autoscaler: no worker before the sweep, two while it runs (never more),
// none once they idled past the timeout.
TEST_F(SlurmSystemTest, TheAutoscalerGoesFromZeroToTwoWorkersAndBackToZero) {
  const std::string folder = (dir_ / "autoscaled").string();
  ASSERT_NO_FATAL_FAILURE(
      StartCoordinator({"--slurm-max-workers", "2", "--slurm-slots", "1", "--slurm-idle-timeout",
                        "5", "--slurm-poll-interval", "1", "--slurm-dir", folder}));
  absl::SleepFor(absl::Seconds(3));
  auto before = api_->ListWorkers();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->workers_size(), 0);
  std::ifstream no_jobs(folder + "/jobs");
  EXPECT_FALSE(no_jobs.good()) << "submitted workers before any job existed";

  const std::string sweep_id = SubmitCells();
  int most_alive = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  absl::Status ended = absl::DeadlineExceededError("sweep did not end");
  while (absl::Now() < deadline) {
    if (auto workers = api_->ListWorkers(); workers.ok()) {
      int alive = 0;
      for (const v1::WorkerInfo& w : workers->workers()) alive += w.state() == "alive";
      most_alive = std::max(most_alive, alive);
    }
    ended = WaitForSweepEnd(sweep_id, absl::Milliseconds(1));
    if (ended.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(ended.ok()) << ended;
  EXPECT_EQ(most_alive, 2);
  std::ifstream jobs_file(folder + "/jobs");
  std::string array;
  ASSERT_TRUE(std::getline(jobs_file, array)) << "no job recorded in " << folder << "/jobs";
  array_job_ = array;  // TearDown cancels it whatever happens below
  std::string second;
  EXPECT_FALSE(std::getline(jobs_file, second)) << "a second array was submitted: " << second;

  // Idle 5 s, squeue every second: both tasks cancelled well within 60 s.
  const absl::Time gone_by = absl::Now() + absl::Seconds(60);
  std::string left = "?";
  while (absl::Now() < gone_by) {
    auto queue = Slurm({"squeue", "--noheader", "--array", "--format=%i", "--jobs=" + array});
    left = queue.ok() ? std::string(absl::StripAsciiWhitespace(queue->out)) : "?";
    if (queue.ok() && (left.empty() || absl::StrContains(queue->err, "Invalid job id"))) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(left, "") << "tasks of job " << array << " still queued";
}

// Bad input reaches sbatch or slurmctld and comes back as one line; nothing is recorded.
TEST_F(SlurmSystemTest, AnUnknownPartitionOrAControllerThatDoesNotAnswerIsOneLine) {
  const std::string folder = (dir_ / "refused").string();
  CommandResult partition =
      Pcsweep({"slurm", "up", "--coordinator", "127.0.0.1:1", "--workers", "1", "--slots", "1",
               "--partition", "no-such-partition", "--dir", folder});
  EXPECT_EQ(partition.exit_code, 1);
  EXPECT_THAT(partition.err, HasSubstr("slurm up: "));
  EXPECT_THAT(partition.err, HasSubstr("partition"));
  EXPECT_EQ(std::count(partition.err.begin(), partition.err.end(), '\n'), 1) << partition.err;

  // A copy of the cluster's configuration whose controller port nobody listens on.
  const char* conf_env = std::getenv("SLURM_CONF");
  const std::string conf = conf_env != nullptr ? conf_env : "/etc/slurm/slurm.conf";
  std::ifstream in(conf);
  ASSERT_TRUE(in.good()) << "cannot read " << conf;
  std::ofstream out(dir_ / "down.conf");
  for (std::string line; std::getline(in, line);) {
    out << (line.rfind("SlurmctldPort=", 0) == 0 ? "SlurmctldPort=1" : line) << "\n";
  }
  out.close();
  CommandResult down = Pcsweep({"slurm", "up", "--coordinator", "127.0.0.1:1", "--workers", "1",
                                "--slots", "1", "--dir", folder + "-down"},
                               {"SLURM_CONF=" + (dir_ / "down.conf").string()});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.err, HasSubstr("slurm up: "));
  EXPECT_EQ(std::count(down.err.begin(), down.err.end(), '\n'), 1) << down.err;
  std::ifstream jobs(folder + "-down/jobs");
  std::string recorded((std::istreambuf_iterator<char>(jobs)), std::istreambuf_iterator<char>());
  EXPECT_EQ(recorded, "");
}

}  // namespace
}  // namespace pcsweep
