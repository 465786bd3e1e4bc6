// Whole-system tests: real `pcsweep coordinator` and `pcsweep worker` processes on loopback
// (port 0, the bound port read from the coordinator's first line), driven by the `pcsweep`
// binary and checked through the gRPC API and the database file itself. Every wait is bounded
// and fails with what it waited for.
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "coordinator/store/store_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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

constexpr absl::Duration kStartTimeout = absl::Seconds(20);
constexpr absl::Duration kSweepTimeout = absl::Seconds(45);

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// A job that sleeps, then reports {"value": X} and one example row (so that a result recorded
// twice shows up as two rows).
constexpr char kJobScript[] = R"(#!/bin/sh
# usage: job.sh X SLEEP_SECONDS
sleep "$2"
printf '{"value": %s}\n' "$1" > "$PCSWEEP_OUTPUT_DIR/metrics.json"
printf '{"eval_set":"sys","variant":"base","question_id":"q%s","pair_id":"p%s","image":"img","phenomenon":"none","label":1,"margin_original":0.5,"margin_paraphrase":-0.5}\n' "$1" "$1" > "$PCSWEEP_OUTPUT_DIR/examples.jsonl"
)";

constexpr char kFailScript[] = R"(#!/bin/sh
echo "starting $1"
echo "boom-$1: something broke" >&2
exit 3
)";

class SystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // bin/ is a sibling of this test's folder (build/tests/system_test); the environment
    // variable, when set, wins.
    const fs::path own_build_root = fs::read_symlink("/proc/self/exe").parent_path().parent_path();
    binary_ = EnvOr("PCSWEEP_BINARY_ROOT", own_build_root.string()) + "/bin/pcsweep";
    source_root_ = EnvOr("PCSWEEP_SOURCE_ROOT", ".");
    ASSERT_TRUE(fs::exists(binary_)) << binary_ << " is missing: build the pcsweep target";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("pcsweep-system-", info->name(), "-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "coordinator.db").string();
    WriteFile("job.sh", kJobScript);
    WriteFile("fail.sh", kFailScript);
  }

  void TearDown() override {
    // Workers first (they terminate their jobs), then the coordinator.
    workers_.clear();
    coordinator_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }

  // A spec of `cells` job.sh cells (x = 1..cells) sleeping `sleep` seconds each.
  std::string WriteJobSpec(const std::string& name, int cells, double sleep, int max_attempts = 3) {
    std::vector<int> xs;
    for (int i = 1; i <= cells; ++i) xs.push_back(i);
    return WriteFile(name + ".yaml",
                     absl::StrCat("name: ", name, "\njob:\n  kind: command\n  command: \"sh ",
                                  (dir_ / "job.sh").string(), " {x} {sleep}\"\ngrid:\n  x: [",
                                  absl::StrJoin(xs, ", "), "]\n  sleep: [", sleep,
                                  "]\nmax_attempts: ", max_attempts, "\n"));
  }

  // Starts the coordinator and reads its bound address from its first line.
  void StartCoordinator(const std::string& listen = "127.0.0.1:0",
                        std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {binary_, "coordinator", "--db", db_, "--listen", listen};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = ChildProcess::Start(argv);
    ASSERT_TRUE(child.ok()) << child.status();
    coordinator_ = *std::move(child);
    auto line = coordinator_->WaitForStdoutLine("listening on ", kStartTimeout);
    ASSERT_TRUE(line.ok()) << line.status();
    std::smatch match;
    ASSERT_TRUE(std::regex_search(*line, match, std::regex("listening on (\\S+:\\d+)"))) << *line;
    address_ = match[1];
  }

  // Lease flags that make lost workers show within about a second.
  static std::vector<std::string> FastLeases() {
    return {"--heartbeat-interval", "0.2", "--lease-timeout", "1"};
  }

  ChildProcess* StartWorker(const std::string& name, int slots = 1,
                            std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {binary_,         "worker",
                                     "--coordinator", address_,
                                     "--slots",       std::to_string(slots),
                                     "--name",        name,
                                     "--work-dir",    (dir_ / name).string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = ChildProcess::Start(argv);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return nullptr;
    workers_[name] = *std::move(child);
    return workers_[name].get();
  }

  std::unique_ptr<cli::CoordinatorApi> Api(const std::string& token = "") {
    cli::ClientOptions options;
    options.address = address_;
    options.token = token;
    options.call_deadline = absl::Seconds(5);
    return cli::MakeGrpcCoordinatorApi(options);
  }

  CommandResult Pcsweep(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(30)) {
    args.insert(args.begin(), binary_);
    auto result = RunCommand(args, timeout);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{-1, "", ""};
  }

  // Submits with the binary and returns the sweep id it prints.
  std::string Submit(const std::string& spec, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"submit", spec, "--coordinator", address_};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult result = Pcsweep(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    last_submit_note_ = result.err;
    return std::string(absl::StripAsciiWhitespace(result.out));
  }

  // Polls GetSweep until `done` holds. Unavailable answers (a restarting coordinator) are
  // tolerated until the deadline.
  absl::StatusOr<v1::GetSweepResponse> WaitForSweep(
      const std::string& sweep_id, const std::function<bool(const v1::GetSweepResponse&)>& done,
      const std::string& what, absl::Duration timeout = kSweepTimeout) {
    auto api = Api();
    const absl::Time deadline = absl::Now() + timeout;
    absl::Status last = absl::OkStatus();
    std::string last_state;
    while (absl::Now() < deadline) {
      v1::GetSweepRequest request;
      request.set_sweep_id(sweep_id);
      request.set_include_metrics(true);
      auto sweep = api->GetSweep(request);
      if (sweep.ok()) {
        if (done(*sweep)) return sweep;
        last_state = sweep->summary().DebugString();
      } else {
        last = sweep.status();
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return absl::DeadlineExceededError(absl::StrCat("waited ", absl::FormatDuration(timeout),
                                                    " for ", what, "; last summary: ", last_state,
                                                    " last error: ", last.ToString()));
  }

  absl::StatusOr<v1::GetSweepResponse> WaitUntilFinished(const std::string& sweep_id) {
    return WaitForSweep(
        sweep_id,
        [](const v1::GetSweepResponse& s) {
          const auto& c = s.summary();
          return c.total() > 0 && c.pending() + c.leased() + c.running() == 0;
        },
        "the sweep to finish");
  }

  // Reads the database file: every job succeeded, exactly one succeeded attempt per job and
  // exactly `rows_per_job` example rows per job (0 for jobs that report none), and the value
  // metric equals the cell's x.
  void ExpectEveryCellExactlyOnce(const std::string& sweep_id, int expected_jobs,
                                  int rows_per_job) {
    auto reader = coordinator::StoreReader::OpenReadOnly(db_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    auto jobs = (*reader)->ListJobs(sweep_id);
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    ASSERT_EQ(static_cast<int>(jobs->size()), expected_jobs);
    auto examples = (*reader)->ListExamples(sweep_id);
    ASSERT_TRUE(examples.ok()) << examples.status();
    std::map<std::string, int> rows;
    for (const auto& example : *examples) ++rows[example.job_id];
    for (const auto& job : *jobs) {
      EXPECT_EQ(job.state, coordinator::JobState::kSucceeded) << job.name << ": " << job.error;
      auto attempts = (*reader)->ListAttempts(job.job_id);
      ASSERT_TRUE(attempts.ok()) << attempts.status();
      int succeeded = 0;
      for (const auto& attempt : *attempts)
        succeeded += attempt.state == coordinator::JobState::kSucceeded;
      if (job.reused_from.empty()) {
        EXPECT_EQ(succeeded, 1) << job.name << " succeeded " << succeeded << " times";
      }
      EXPECT_EQ(rows[job.job_id], rows_per_job)
          << job.name << " has " << rows[job.job_id] << " example rows";
      ASSERT_EQ(job.metrics.count("value"), 1u) << job.name << " has no value metric";
      EXPECT_EQ(std::to_string(static_cast<int>(job.metrics.at("value"))), job.params.at("x"))
          << job.name;
    }
  }

  // The worker child whose registered id is `worker_id`.
  std::string WorkerNameOf(const std::string& worker_id) {
    auto workers = Api()->ListWorkers();
    if (!workers.ok()) return "";
    for (const auto& w : workers->workers()) {
      if (w.worker_id() == worker_id) return w.name();
    }
    return "";
  }

  std::string binary_;
  std::string source_root_;
  fs::path dir_;
  std::string db_;
  std::string address_;
  std::string last_submit_note_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::map<std::string, std::unique_ptr<ChildProcess>> workers_;
};

TEST_F(SystemTest, ThreeWorkersFinishTheSmokeGrid) {
  StartCoordinator();
  for (int i = 1; i <= 3; ++i) StartWorker(absl::StrCat("w", i));
  const std::string sweep_id = Submit(source_root_ + "/experiments/specs/smoke.yaml");
  ASSERT_FALSE(sweep_id.empty());
  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->summary().total(), 24);
  EXPECT_EQ(sweep->summary().succeeded(), 24);
  ExpectEveryCellExactlyOnce(sweep_id, 24, /*rows_per_job=*/0);
  // Work was spread over the workers.
  std::set<std::string> used;
  for (const auto& job : sweep->jobs()) used.insert(job.worker_id());
  EXPECT_GE(used.size(), 2u);

  CommandResult results =
      Pcsweep({"results", sweep_id, "--coordinator", address_, "--format", "json"});
  ASSERT_EQ(results.exit_code, 0) << results.err;
  const auto rows = nlohmann::json::parse(results.out);
  ASSERT_EQ(rows.size(), 24u);
  for (const auto& row : rows) EXPECT_EQ(row["value"], row["x"]) << row.dump();

  // The database alone (read-only, while the coordinator still runs) gives the same cells.
  CommandResult from_db = Pcsweep({"results", sweep_id, "--db", db_, "--format", "csv"});
  ASSERT_EQ(from_db.exit_code, 0) << from_db.err;
  EXPECT_EQ(std::count(from_db.out.begin(), from_db.out.end(), '\n'), 25);

  CommandResult status = Pcsweep({"status", sweep_id, "--coordinator", address_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("24 succeeded"));
  CommandResult workers = Pcsweep({"workers", "--coordinator", address_});
  EXPECT_EQ(workers.exit_code, 0) << workers.err;
  for (int i = 1; i <= 3; ++i) EXPECT_THAT(workers.out, HasSubstr(absl::StrCat("w", i)));
}

TEST_F(SystemTest, KilledWorkerJobIsRetriedElsewhere) {
  StartCoordinator("127.0.0.1:0", FastLeases());
  for (int i = 1; i <= 3; ++i) StartWorker(absl::StrCat("w", i));
  const std::string sweep_id = Submit(WriteJobSpec("killworker", 6, 1.5));
  std::string victim_job, victim_worker;
  auto running = WaitForSweep(
      sweep_id,
      [&](const v1::GetSweepResponse& s) {
        for (const auto& job : s.jobs()) {
          if (job.state() == v1::JOB_STATE_RUNNING && !job.worker_id().empty()) {
            victim_job = job.job_id();
            victim_worker = job.worker_id();
            return true;
          }
        }
        return false;
      },
      "a running job");
  ASSERT_TRUE(running.ok()) << running.status();
  const std::string name = WorkerNameOf(victim_worker);
  ASSERT_EQ(workers_.count(name), 1u)
      << "no worker child named '" << name << "' for " << victim_worker;
  workers_[name]->Signal(SIGKILL);

  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->summary().succeeded(), 6);
  for (const auto& job : sweep->jobs()) {
    if (job.job_id() != victim_job) continue;
    EXPECT_GE(job.attempt(), 2) << "the killed worker's job was not retried";
    EXPECT_NE(job.worker_id(), victim_worker) << "the retry ran on the killed worker";
  }
  ExpectEveryCellExactlyOnce(sweep_id, 6, 1);
}

TEST_F(SystemTest, CoordinatorKilledAndRestartedOnTheSameFileCompletesTheSweep) {
  // Leases long enough that a loaded machine does not lose one before the kill (that would
  // re-run a job for another reason than the restart).
  const std::vector<std::string> leases = {"--heartbeat-interval", "0.2", "--lease-timeout", "3"};
  StartCoordinator("127.0.0.1:0", leases);
  const std::string address = address_;
  for (int i = 1; i <= 2; ++i) StartWorker(absl::StrCat("w", i), 2);
  const std::string sweep_id = Submit(WriteJobSpec("killcoord", 16, 0.4));
  auto midway = WaitForSweep(
      sweep_id,
      [](const v1::GetSweepResponse& s) {
        return s.summary().succeeded() >= 3 && s.summary().succeeded() < s.summary().total();
      },
      "a few finished jobs");
  ASSERT_TRUE(midway.ok()) << midway.status();
  coordinator_->Signal(SIGKILL);
  ASSERT_TRUE(coordinator_->Wait(absl::Seconds(10)).ok());
  // Same port, so the workers find it again; same file, so the sweep resumes.
  StartCoordinator(address, leases);
  ASSERT_EQ(address_, address);
  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->summary().succeeded(), 16);
  ExpectEveryCellExactlyOnce(sweep_id, 16, 1);
  // No work was redone: jobs running or finished during the outage kept their first attempt,
  // even when their lease ran out before their worker came back.
  auto reader = coordinator::StoreReader::OpenReadOnly(db_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (const v1::Job& job : sweep->jobs()) {
    auto attempts = (*reader)->ListAttempts(job.job_id());
    ASSERT_TRUE(attempts.ok()) << attempts.status();
    EXPECT_EQ(attempts->size(), 1u)
        << job.name() << " ran " << attempts->size()
        << " times; the first attempt ended with: " << attempts->front().error;
  }
}

TEST_F(SystemTest, StoppedWorkerLosesItsLease) {
  StartCoordinator("127.0.0.1:0", FastLeases());
  StartWorker("w1");
  StartWorker("w2");
  const std::string sweep_id = Submit(WriteJobSpec("sigstop", 2, 1.5));
  std::string victim_job, victim_worker;
  auto running = WaitForSweep(
      sweep_id,
      [&](const v1::GetSweepResponse& s) {
        for (const auto& job : s.jobs()) {
          if (job.state() == v1::JOB_STATE_RUNNING) {
            victim_job = job.job_id();
            victim_worker = job.worker_id();
            return true;
          }
        }
        return false;
      },
      "a running job");
  ASSERT_TRUE(running.ok()) << running.status();
  const std::string name = WorkerNameOf(victim_worker);
  ASSERT_EQ(workers_.count(name), 1u) << "no worker child named '" << name << "'";
  workers_[name]->Signal(SIGSTOP);

  // Its lease expires after --lease-timeout and the job moves to the other worker.
  auto moved = WaitForSweep(
      sweep_id,
      [&](const v1::GetSweepResponse& s) {
        for (const auto& job : s.jobs()) {
          if (job.job_id() == victim_job)
            return job.attempt() >= 2 && job.worker_id() != victim_worker;
        }
        return false;
      },
      "the stopped worker's job to be leased again");
  ASSERT_TRUE(moved.ok()) << moved.status();
  auto workers = Api()->ListWorkers();
  ASSERT_TRUE(workers.ok()) << workers.status();
  for (const auto& w : workers->workers()) {
    if (w.worker_id() == victim_worker) {
      EXPECT_EQ(w.state(), "lost");
    }
  }
  // Resumed, the old holder's late report of attempt 1 must be refused.
  workers_[name]->Signal(SIGCONT);
  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->summary().succeeded(), 2);
  ExpectEveryCellExactlyOnce(sweep_id, 2, 1);
}

TEST_F(SystemTest, FailingJobIsRetriedThenFailedWithItsStderrTail) {
  StartCoordinator();
  StartWorker("w1");
  const std::string spec =
      WriteFile("fail.yaml", absl::StrCat("name: failing\njob:\n  kind: command\n  command: \"sh ",
                                          (dir_ / "fail.sh").string(),
                                          " {x}\"\ngrid:\n  x: [7]\nmax_attempts: 2\n"));
  const std::string sweep_id = Submit(spec);
  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->jobs_size(), 1);
  const v1::Job& job = sweep->jobs(0);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.attempt(), 2);
  auto details = Api()->GetJob(job.job_id());
  ASSERT_TRUE(details.ok()) << details.status();
  ASSERT_EQ(details->attempts_size(), 2);
  for (const auto& attempt : details->attempts()) {
    EXPECT_EQ(attempt.exit_code(), 3);
    EXPECT_THAT(attempt.stderr_tail(), HasSubstr("boom-7: something broke"));
  }
  CommandResult logs = Pcsweep({"logs", job.job_id(), "--coordinator", address_});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_THAT(logs.out, HasSubstr("boom-7: something broke"));
  EXPECT_THAT(logs.out, HasSubstr("code 3"));
  // The log file is on this machine: its stdout line is shown too.
  EXPECT_THAT(logs.out, HasSubstr("starting 7"));
}

// Issue 17 #5: a grid value with shell syntax reaches the command as one literal word.
TEST_F(SystemTest, GridValueWithShellSyntaxRunsAsLiteralTextAndCreatesNoFile) {
  const std::string value = "x; touch " + (dir_ / "pwned").string();
  const std::string spec = WriteFile(
      "inj.yaml", absl::StrCat("name: inj\njob:\n  kind: command\n  command: >-\n"
                               "    printf '%s' {x} > $PCSWEEP_OUTPUT_DIR/value.txt &&\n"
                               "    echo '{\"value\": 1}' > $PCSWEEP_OUTPUT_DIR/metrics.json\n"
                               "grid:\n  x: [\"",
                               value, "\"]\n"));
  StartCoordinator();
  StartWorker("w1");
  const std::string sweep_id = Submit(spec);
  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->jobs_size(), 1);
  const v1::Job& job = sweep->jobs(0);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  std::ifstream in(fs::path(job.outputs().at("output_dir")) / "value.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), value);
  EXPECT_FALSE(fs::exists(dir_ / "pwned"));
}

// Issue 17 #2: 70 MiB of rows fail the job for good (one attempt) within the lease timeout,
// instead of a result resent forever while heartbeats keep the lease alive.
TEST_F(SystemTest, JobWriting70MiBOfRowsFailsOnceWithTheLimit) {
  const std::string spec =
      WriteFile("big.yaml",
                "name: big\nmax_attempts: 3\njob:\n  kind: command\n  command: >-\n"
                "    head -c 73400320 /dev/zero | tr '\\0' x | fold -w 60000 |\n"
                "    sed 's/.*/{\"question_id\":\"&\"}/' > $PCSWEEP_OUTPUT_DIR/examples.jsonl &&\n"
                "    echo '{\"value\": 1}' > $PCSWEEP_OUTPUT_DIR/metrics.json\ngrid: {n: [1]}\n");
  StartCoordinator("127.0.0.1:0", FastLeases());
  StartWorker("w1");
  const std::string sweep_id = Submit(spec);
  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->jobs_size(), 1);
  const v1::Job& job = sweep->jobs(0);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.attempt(), 1) << "retried: " << job.error();
  EXPECT_THAT(job.error(), HasSubstr("examples.jsonl is 73"));
  EXPECT_THAT(job.error(), HasSubstr("bytes, more than the 50331648 (48 MiB) a job's result file "
                                     "may hold"));
}

TEST_F(SystemTest, ResubmittedIdenticalSweepReusesEveryCell) {
  StartCoordinator();
  StartWorker("w1", 2);
  const std::string spec = WriteJobSpec("reuse", 4, 0);
  const std::string first = Submit(spec);
  ASSERT_TRUE(WaitUntilFinished(first).ok());
  const std::string second = Submit(spec);
  EXPECT_NE(second, first);
  EXPECT_THAT(last_submit_note_, HasSubstr("4 jobs, 4 reused"));
  auto sweep = WaitUntilFinished(second);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->summary().reused(), 4);
  EXPECT_EQ(sweep->summary().succeeded(), 4);
  for (const auto& job : sweep->jobs()) EXPECT_FALSE(job.reused_from().empty()) << job.name();
  ExpectEveryCellExactlyOnce(second, 4, 1);
  // --force runs them again.
  Submit(spec, {"--force"});
  EXPECT_THAT(last_submit_note_, HasSubstr("4 jobs, 0 reused"));
}

TEST_F(SystemTest, BadSpecIsRefusedWithLineAndColumn) {
  StartCoordinator();
  const std::string spec = WriteFile(
      "bad.yaml", "name: bad\njob:\n  kind: command\n  command: \"true\"\ngrdi:\n  x: [1]\n");
  CommandResult result = Pcsweep({"submit", spec, "--coordinator", address_});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_TRUE(std::regex_search(result.err, std::regex("bad\\.yaml:5:[0-9]+: .*grdi")))
      << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
}

TEST_F(SystemTest, CallWithoutTheTokenIsUnauthenticated) {
  const std::string token_file = WriteFile("token", "s3cret-token\n");
  StartCoordinator("127.0.0.1:0", {"--token-file", token_file});
  auto refused = Api()->ListSweeps();
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsUnauthenticated(refused.status())) << refused.status();
  EXPECT_TRUE(Api("s3cret-token")->ListSweeps().ok());

  CommandResult without = Pcsweep({"status", "--coordinator", address_});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_THAT(without.err, HasSubstr("UNAUTHENTICATED"));
  CommandResult with = Pcsweep({"status", "--coordinator", address_, "--token-file", token_file});
  EXPECT_EQ(with.exit_code, 0) << with.err;
}

TEST_F(SystemTest, UnreachableCoordinatorIsOneLine) {
  CommandResult result = Pcsweep({"status", "--coordinator", "127.0.0.1:1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, ::testing::StartsWith("cannot reach coordinator at 127.0.0.1:1: "));
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
}

// A self-signed certificate for 127.0.0.1 made at test time with the openssl CLI.
TEST_F(SystemTest, TlsCoordinatorServesClientsWithTheCaAndRefusesPlainText) {
  const std::string cert = (dir_ / "server.pem").string();
  const std::string key = (dir_ / "server.key").string();
  auto openssl = RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
       "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert},
      absl::Seconds(30));
  ASSERT_TRUE(openssl.ok()) << openssl.status();
  ASSERT_EQ(openssl->exit_code, 0) << openssl->err;
  StartCoordinator("127.0.0.1:0", {"--tls-cert", cert, "--tls-key", key});

  // A plain-text client cannot talk to it: one line, exit 1.
  CommandResult plain = Pcsweep({"status", "--coordinator", address_});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_THAT(plain.err, HasSubstr(address_));
  EXPECT_THAT(plain.err, HasSubstr("--tls-ca"));
  EXPECT_EQ(std::count(plain.err.begin(), plain.err.end(), '\n'), 1) << plain.err;

  // With the certificate as root, the CLI and a worker work end to end.
  StartWorker("w1", 2, {"--tls-ca", cert});
  const std::string spec = WriteJobSpec("tls", 2, 0);
  CommandResult submitted = Pcsweep({"submit", spec, "--coordinator", address_, "--tls-ca", cert});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string sweep_id(absl::StripAsciiWhitespace(submitted.out));
  CommandResult status;
  const absl::Time deadline = absl::Now() + kSweepTimeout;
  do {
    absl::SleepFor(absl::Milliseconds(200));
    status = Pcsweep(
        {"status", sweep_id, "--coordinator", address_, "--tls-ca", cert, "--format", "json"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
  } while (absl::Now() < deadline &&
           nlohmann::json::parse(status.out)["summary"].value("succeeded", 0) < 2);
  EXPECT_EQ(nlohmann::json::parse(status.out)["summary"].value("succeeded", 0), 2) << status.out;
}

TEST_F(SystemTest, WorkerExitsWhenAnotherProcessTakesItsName) {
  StartCoordinator("127.0.0.1:0", FastLeases());
  ChildProcess* first = StartWorker("same");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->WaitForStdoutLine("pcsweep worker started", kStartTimeout).ok());
  // Wait until the first one is registered, then start a second under the same name.
  auto registered = [&]() {
    auto workers = Api()->ListWorkers();
    return workers.ok() && workers->workers_size() == 1 && workers->workers(0).state() == "alive";
  };
  for (absl::Time end = absl::Now() + kStartTimeout; !registered() && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(registered());
  std::unique_ptr<ChildProcess> first_owned = std::move(workers_["same"]);
  workers_.erase("same");
  StartWorker("same");
  auto exit_code = first_owned->Wait(absl::Seconds(20));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status() << "\n" << first_owned->Stderr();
  EXPECT_EQ(*exit_code, 1);
  EXPECT_THAT(first_owned->Stderr(), HasSubstr("another process registered under its name"));
  EXPECT_FALSE(workers_["same"]->Exited());
}

TEST_F(SystemTest, LocalRunsTheSmokeGridAndPrintsItsResults) {
  CommandResult result =
      Pcsweep({"local", source_root_ + "/experiments/specs/smoke.yaml", "--workers", "2", "--db",
               (dir_ / "local.db").string(), "--format", "csv"},
              absl::Seconds(60));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 25) << result.out;
  EXPECT_THAT(result.err, HasSubstr("database: " + (dir_ / "local.db").string()));
  EXPECT_TRUE(fs::exists(dir_ / "local.db"));
}

// A job that reports 20 evaluated pairs of variant $1 ("base" flips pairs 0-7, "adapted" pairs
// 0-1), so that the paper tables have an arm to compare with its baseline.
constexpr char kRowsScript[] = R"(#!/bin/sh
i=0
: > "$PCSWEEP_OUTPUT_DIR/examples.jsonl"
while [ $i -lt 20 ]; do
  label=1; [ $i -ge 16 ] && label=0
  para=0.6; [ "$1" = base ] && [ $i -lt 8 ] && para=-1.2
  [ "$1" = adapted ] && [ $i -lt 2 ] && para=-0.8
  printf '{"eval_set":"sys","variant":"%s","question_id":"q%d","pair_id":"p%d","image":"img","phenomenon":"ph%d","label":%d,"margin_original":1.0,"margin_paraphrase":%s}\n' "$1" $i $i $((i % 2)) $label $para >> "$PCSWEEP_OUTPUT_DIR/examples.jsonl"
  i=$((i + 1))
done
echo '{"done": 1}' > "$PCSWEEP_OUTPUT_DIR/metrics.json"
)";

TEST_F(SystemTest, ResultsTablesAndPlotThroughTheCoordinatorEqualTheDatabaseFile) {
  StartCoordinator();
  StartWorker("w1", 2);
  const std::string script = WriteFile("rows.sh", kRowsScript);
  const std::string spec = WriteFile(
      "paper.yaml", absl::StrCat("name: paper\njob:\n  kind: command\n  command: \"sh ", script,
                                 " {variant}\"\ngrid:\n  variant: [base, adapted]\n"));
  const std::string sweep_id = Submit(spec);
  ASSERT_FALSE(sweep_id.empty());
  auto sweep = WaitUntilFinished(sweep_id);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->summary().succeeded(), 2) << sweep->DebugString();
  {
    // The coordinator stores a finished sweep's comparisons by itself, through its store (a
    // condition polled for at most 30 s, not a duration).
    auto reader = coordinator::StoreReader::OpenReadOnly(db_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    size_t stored = 0;
    while (stored == 0 && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(50));
      stored = (*reader)->ListComparisons(sweep_id)->size();
    }
    EXPECT_EQ(stored, 5u);
  }

  for (const char* format : {"text", "latex", "json"}) {
    for (const char* table : {"main", "ablation", "phenomena"}) {
      // By name through the coordinator (PCSWEEP_COORDINATOR is not set here), by id from the
      // file.
      CommandResult rpc = Pcsweep(
          {"results", "paper", "--table", table, "--format", format, "--coordinator", address_});
      ASSERT_EQ(rpc.exit_code, 0) << rpc.err;
      CommandResult file =
          Pcsweep({"results", sweep_id, "--table", table, "--format", format, "--db", db_});
      ASSERT_EQ(file.exit_code, 0) << file.err;
      EXPECT_EQ(rpc.out, file.out) << table << " " << format;
      if (std::string(table) == "main") {
        EXPECT_THAT(rpc.out, HasSubstr("variant=adapted"));
      }
    }
  }
  CommandResult main = Pcsweep({"results", sweep_id, "--table", "main", "--coordinator", address_});
  EXPECT_THAT(main.out, HasSubstr("40.0%"));  // the base model flips 8 of 20 pairs
  EXPECT_THAT(main.out, HasSubstr("10.0%"));  // the arm 2 of 20

  const std::string rpc_svg = (dir_ / "rpc.svg").string();
  const std::string file_svg = (dir_ / "file.svg").string();
  CommandResult plot_rpc =
      Pcsweep({"plot", sweep_id, "--out", rpc_svg, "--x", "variant", "--coordinator", address_});
  ASSERT_EQ(plot_rpc.exit_code, 0) << plot_rpc.err;
  CommandResult plot_file =
      Pcsweep({"plot", sweep_id, "--out", file_svg, "--x", "variant", "--db", db_});
  ASSERT_EQ(plot_file.exit_code, 0) << plot_file.err;
  std::ifstream rpc_in(rpc_svg), file_in(file_svg);
  const std::string rpc_text((std::istreambuf_iterator<char>(rpc_in)), {});
  const std::string file_text((std::istreambuf_iterator<char>(file_in)), {});
  EXPECT_THAT(rpc_text, HasSubstr("<svg"));
  EXPECT_EQ(rpc_text, file_text);

  // --recompute through the coordinator stores the comparisons in its file.
  CommandResult recompute =
      Pcsweep({"results", sweep_id, "--recompute", "--coordinator", address_});
  ASSERT_EQ(recompute.exit_code, 0) << recompute.err;
  EXPECT_THAT(recompute.err, HasSubstr(absl::StrCat("5 comparisons of sweep ", sweep_id)));
  auto reader = coordinator::StoreReader::OpenReadOnly(db_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->ListComparisons(sweep_id)->size(), 5u);

  for (std::vector<std::string> args :
       {std::vector<std::string>{"results", "no-such-sweep", "--table", "main"},
        std::vector<std::string>{"plot", "no-such-sweep", "--out", (dir_ / "x.svg").string()}}) {
    args.insert(args.end(), {"--coordinator", address_});
    CommandResult missing = Pcsweep(args);
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.out, "");
    EXPECT_THAT(missing.err, HasSubstr("no sweep with id or name 'no-such-sweep'"));
    EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  }
}

}  // namespace
}  // namespace pcsweep
