#include "worker/job_process.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Waits (polling, bounded) for a condition that a child process makes true.
template <typename Predicate>
bool Eventually(Predicate predicate, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (predicate()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return predicate();
}

class JobProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/job_process_test-", getpid(), "-", info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  JobLaunch Command(const std::string& command) {
    JobLaunch launch;
    launch.job_id = "job-7";
    launch.attempt = 2;
    launch.kind = "command";
    launch.config_json = nlohmann::json({{"command", command}}).dump();
    launch.output_dir = dir_ + "/out";
    return launch;
  }

  JobOutcome Run(const JobLaunch& launch) {
    auto process = JobProcess::Start(launch);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return JobOutcome();
    return (*process)->Wait();
  }

  std::string dir_;
};

TEST_F(JobProcessTest, SetsEnvironmentAndWritesBothStreamsToTheLog) {
  JobLaunch launch = Command(
      "echo \"id=$PCSWEEP_JOB_ID attempt=$PCSWEEP_ATTEMPT out=$PCSWEEP_OUTPUT_DIR "
      "cuda=[$CUDA_VISIBLE_DEVICES] fd=$PCSWEEP_PROGRESS_FD\"; echo on-stderr >&2");
  launch.cuda_visible_devices = "3";
  JobOutcome outcome = Run(launch);
  EXPECT_TRUE(outcome.succeeded) << outcome.error;
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.log_path, launch.output_dir + "/log.txt");
  const std::string log = ReadAll(outcome.log_path);
  EXPECT_THAT(
      log, HasSubstr(absl::StrCat("id=job-7 attempt=2 out=", launch.output_dir, " cuda=[3] fd=3")));
  EXPECT_THAT(log, HasSubstr("on-stderr"));
  EXPECT_EQ(outcome.stderr_tail, "on-stderr\n");
  EXPECT_EQ(outcome.outputs.at("output_dir"), launch.output_dir);
  EXPECT_TRUE(outcome.metrics.empty());
}

TEST_F(JobProcessTest, CpuSlotSetsCudaVisibleDevicesToEmpty) {
  setenv("CUDA_VISIBLE_DEVICES", "0", 1);  // the worker's own value must not leak through
  JobOutcome outcome = Run(
      Command("test \"${CUDA_VISIBLE_DEVICES+set}\" = set && test -z \"$CUDA_VISIBLE_DEVICES\""));
  unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_TRUE(outcome.succeeded) << outcome.error;
}

TEST_F(JobProcessTest, ReadsProgressFromThePipeAndFromPrefixedStdout) {
  const std::string go = dir_ + "/go";
  auto process = JobProcess::Start(Command(absl::StrCat(
      "echo '{\"progress\":0.4,\"message\":\"step 40/100\",\"eta_s\":12}' >&$PCSWEEP_PROGRESS_FD;",
      "while [ ! -f ", go, " ]; do sleep 0.01; done;",
      "echo 'PCSWEEP_PROGRESS {\"progress\":0.9,\"message\":\"step 90/100\"}';",
      "echo 'not json' >&$PCSWEEP_PROGRESS_FD")));
  ASSERT_TRUE(process.ok()) << process.status();
  JobOutcome outcome;
  std::thread waiter([&] { outcome = (*process)->Wait(); });
  EXPECT_TRUE(Eventually([&] { return (*process)->Progress().progress == 0.4; }));
  JobProgressSnapshot during = (*process)->Progress();
  EXPECT_EQ(during.message, "step 40/100");
  EXPECT_EQ(during.eta_ms, 12000);
  std::ofstream(go).close();
  waiter.join();
  EXPECT_TRUE(outcome.succeeded) << outcome.error;
  JobProgressSnapshot after = (*process)->Progress();
  EXPECT_EQ(after.progress, 0.9);
  EXPECT_EQ(after.message, "step 90/100");
  EXPECT_EQ(after.eta_ms, 12000);  // not reported again: the last known value stays
}

TEST_F(JobProcessTest, NonZeroExitIsRetryableWithTheLastFourKiBOfStderr) {
  JobOutcome outcome = Run(
      Command("i=0; while [ $i -lt 200 ]; do echo 'filler line of some fifty characters.....' >&2; "
              "i=$((i+1)); done; echo 'THE-END' >&2; exit 3"));
  EXPECT_FALSE(outcome.succeeded);
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.signal, 0);
  EXPECT_TRUE(outcome.retryable);
  EXPECT_LE(outcome.stderr_tail.size(), JobProcess::kStderrTailBytes);
  EXPECT_GT(outcome.stderr_tail.size(), JobProcess::kStderrTailBytes - 100);
  EXPECT_THAT(outcome.stderr_tail, ::testing::EndsWith("THE-END\n"));
  EXPECT_EQ(outcome.error, "exited with code 3: THE-END");
  // The log keeps everything.
  EXPECT_GT(ReadAll(outcome.log_path).size(), 200u * 40);
}

TEST_F(JobProcessTest, DeathBySignalIsReportedAndRetryable) {
  JobOutcome outcome = Run(Command("kill -KILL $$"));
  EXPECT_FALSE(outcome.succeeded);
  EXPECT_EQ(outcome.exit_code, -1);
  EXPECT_EQ(outcome.signal, SIGKILL);
  EXPECT_TRUE(outcome.retryable);
  EXPECT_THAT(outcome.error, StartsWith("killed by signal 9"));
}

TEST_F(JobProcessTest, CancelSendsSigtermToTheWholeGroup) {
  // The shell waits on a grandchild: both must go.
  auto process = JobProcess::Start(Command("sleep 30 & wait"));
  ASSERT_TRUE(process.ok()) << process.status();
  const absl::Time start = absl::Now();
  (*process)->Cancel(absl::Seconds(20));
  JobOutcome outcome = (*process)->Wait();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(outcome.cancelled);
  EXPECT_FALSE(outcome.succeeded);
  EXPECT_EQ(outcome.signal, SIGTERM);
  EXPECT_TRUE(outcome.retryable);
}

TEST_F(JobProcessTest, CancelEscalatesToSigkillWhenSigtermIsIgnored) {
  const std::string ready = dir_ + "/ready";
  auto process =
      JobProcess::Start(Command(absl::StrCat("trap '' TERM; touch ", ready, "; sleep 30")));
  ASSERT_TRUE(process.ok()) << process.status();
  JobOutcome outcome;
  std::thread waiter([&] { outcome = (*process)->Wait(); });
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(ready); }));
  const absl::Time start = absl::Now();
  (*process)->Cancel(absl::Milliseconds(300));
  waiter.join();
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_TRUE(outcome.cancelled);
  EXPECT_EQ(outcome.signal, SIGKILL);
}

TEST_F(JobProcessTest, ReadsMetricsExamplesAndOutputsAfterExitZero) {
  const std::string command =
      "cd $PCSWEEP_OUTPUT_DIR && "
      "printf '{\"accuracy\": 0.75, \"flip\": {\"rate\": 0.125, \"n\": 8}}' > metrics.json && "
      "printf '%s\\n' "
      "'{\"eval_set\":\"psf\",\"variant\":\"base\",\"question_id\":\"q1\",\"pair_id\":\"q1-0\","
      "\"image\":\"a.png\",\"phenomenon\":\"negation\",\"label\":1,\"m_q\":2.5,\"m_p\":-1}' "
      "'' "
      "'{\"question_id\":7,\"label\":\"no\",\"margin_original\":0.5,\"margin_paraphrase\":0.25}' "
      "> examples.jsonl && "
      "printf '{\"adapter\": \"adapter/\"}' > outputs.json";
  JobOutcome outcome = Run(Command(command));
  ASSERT_TRUE(outcome.succeeded) << outcome.error;
  EXPECT_THAT(outcome.metrics,
              ElementsAre(Pair("accuracy", 0.75), Pair("flip.n", 8), Pair("flip.rate", 0.125)));
  ASSERT_EQ(outcome.examples.size(), 2u);
  EXPECT_EQ(outcome.examples[0].eval_set, "psf");
  EXPECT_EQ(outcome.examples[0].variant, "base");
  EXPECT_EQ(outcome.examples[0].pair_id, "q1-0");
  EXPECT_EQ(outcome.examples[0].image, "a.png");
  EXPECT_EQ(outcome.examples[0].phenomenon, "negation");
  EXPECT_EQ(outcome.examples[0].label, 1);
  EXPECT_EQ(outcome.examples[0].margin_original, 2.5);
  EXPECT_EQ(outcome.examples[0].margin_paraphrase, -1);
  EXPECT_EQ(outcome.examples[1].question_id, "7");
  EXPECT_EQ(outcome.examples[1].label, 0);
  EXPECT_EQ(outcome.examples[1].margin_paraphrase, 0.25);
  EXPECT_EQ(outcome.outputs.at("adapter"), "adapter/");
  EXPECT_EQ(outcome.outputs.count("output_dir"), 1u);
}

TEST_F(JobProcessTest, MalformedMetricsFailTheJobNamingFileAndLineNotRetryable) {
  JobOutcome outcome = Run(
      Command("printf '{\\n  \"a\": 1,\\n  \"b\": \\n}\\n' > $PCSWEEP_OUTPUT_DIR/metrics.json"));
  EXPECT_FALSE(outcome.succeeded);
  EXPECT_FALSE(outcome.retryable);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_THAT(outcome.error, StartsWith(dir_ + "/out/metrics.json:4:"));
  EXPECT_THAT(outcome.error, HasSubstr("malformed JSON"));
}

TEST_F(JobProcessTest, RunnerKindsGetAJobFile) {
  const std::string runner = dir_ + "/fake-runner";
  {
    std::ofstream script(runner);
    script << "#!/bin/sh\necho \"$1 $2 $3\" > \"$PCSWEEP_OUTPUT_DIR/args.txt\"\n";
  }
  std::filesystem::permissions(runner, std::filesystem::perms::owner_all);
  JobLaunch launch;
  launch.job_id = "j1";
  launch.attempt = 1;
  launch.kind = "train_eval";
  launch.config_json = R"({"lr": 0.001, "layers": "0-4"})";
  launch.params = {{"seed", "1"}};
  launch.output_dir = dir_ + "/out";
  launch.runner_path = runner;
  JobOutcome outcome = Run(launch);
  ASSERT_TRUE(outcome.succeeded) << outcome.error;
  const std::string job_file = launch.output_dir + "/job.json";
  EXPECT_EQ(ReadAll(launch.output_dir + "/args.txt"), absl::StrCat("run --job ", job_file, "\n"));
  nlohmann::json job = nlohmann::json::parse(ReadAll(job_file));
  EXPECT_EQ(job["job_id"], "j1");
  EXPECT_EQ(job["attempt"], 1);
  EXPECT_EQ(job["kind"], "train_eval");
  EXPECT_EQ(job["config"]["layers"], "0-4");
  EXPECT_EQ(job["params"]["seed"], "1");
  EXPECT_EQ(job["output_dir"], launch.output_dir);
}

TEST_F(JobProcessTest, BadLaunchesAreRefusedBeforeForking) {
  JobLaunch launch = Command("true");
  launch.config_json = R"({"cmd": "true"})";
  EXPECT_EQ(JobProcess::Start(launch).status().code(), absl::StatusCode::kInvalidArgument);
  launch.config_json = "[1]";
  EXPECT_EQ(JobProcess::Start(launch).status().code(), absl::StatusCode::kInvalidArgument);
  launch.kind = "eval";
  launch.config_json = "{}";
  EXPECT_EQ(JobProcess::Start(launch).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pcsweep::worker
