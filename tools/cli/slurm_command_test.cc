#include "tools/cli/slurm_command.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/subprocess.h"

namespace pcsweep::cli {
namespace {

namespace fs = std::filesystem;
using ::pcsweep::testutil::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

constexpr char kSecret[] = "s3cret-token-0123456789abcdef";
constexpr char kPcsweep[] = "/opt/pcsweep/bin/pcsweep";

SlurmUpOptions BasicOptions() {
  SlurmUpOptions o;
  o.coordinator = "coord.example:50551";
  o.workers = 3;
  o.slots = 2;
  o.dir = "/shared/sweeps/slurm";
  o.token_file = "/shared/tokens/gpu.token";
  return o;
}

std::string Script(const SlurmUpOptions& o) {
  auto script = SlurmWorkerScript(o, kPcsweep);
  EXPECT_TRUE(script.ok()) << script.status();
  return script.ok() ? *script : "";
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(SlurmWorkerLabelsTest, AnArrayTaskNamesItsArrayJobTaskNodeAndRequeues) {
  const std::map<std::string, std::string> env = {{"SLURM_JOB_ID", "4243"},
                                                  {"SLURM_ARRAY_JOB_ID", "4242"},
                                                  {"SLURM_ARRAY_TASK_ID", "1"},
                                                  {"SLURMD_NODENAME", "gpu07"},
                                                  {"SLURM_RESTART_COUNT", "2"}};
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_THAT(SlurmWorkerLabels(getenv),
              ElementsAre(Pair("slurm_job_id", "4242_1"), Pair("slurm_node", "gpu07"),
                          Pair("slurm_restart_count", "2")));
}

TEST(SlurmWorkerLabelsTest, APlainJobUsesItsJobIdAndOutsideSlurmThereAreNone) {
  auto plain = [](const char* name) -> const char* {
    return std::string(name) == "SLURM_JOB_ID" ? "77" : nullptr;
  };
  EXPECT_THAT(SlurmWorkerLabels(plain),
              ElementsAre(Pair("slurm_job_id", "77"), Pair("slurm_restart_count", "0")));
  EXPECT_THAT(SlurmWorkerLabels([](const char*) -> const char* { return nullptr; }), IsEmpty());
}

TEST(SlurmWorkerScriptTest, OneArrayTaskPerWorkerRunningTheWorkerWithExec) {
  const std::string script = Script(BasicOptions());
  EXPECT_EQ(Lines(script)[0], "#!/bin/sh");
  EXPECT_THAT(script, HasSubstr("\n#SBATCH --array=0-2\n"));
  EXPECT_THAT(script, HasSubstr("\n#SBATCH --job-name=pcsweep-worker\n"));
  EXPECT_THAT(script, HasSubstr("\n#SBATCH --cpus-per-task=2\n"));  // one CPU per slot
  EXPECT_THAT(script, HasSubstr("\nname=slurm-\"${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID}."
                                "${SLURM_RESTART_COUNT:-0}\"\n"));
  EXPECT_THAT(script, HasSubstr("\nexec /opt/pcsweep/bin/pcsweep worker --coordinator "
                                "coord.example:50551 --slots 2 --name \"$name\" --work-dir "
                                "/shared/sweeps/slurm/work/\"$task\" --token-file "
                                "/shared/tokens/gpu.token\n"));
  SlurmUpOptions one = BasicOptions();
  one.workers = 1;
  one.cpus_per_task = 8;
  EXPECT_THAT(Script(one), HasSubstr("\n#SBATCH --array=0-0\n#SBATCH --nodes=1\n"));
  EXPECT_THAT(Script(one), HasSubstr("\n#SBATCH --cpus-per-task=8\n"));
}

TEST(SlurmWorkerScriptTest, ThePrefixPatternOwnsEveryWorkerNameTheScriptMakes) {
  SlurmUpOptions o = BasicOptions();
  EXPECT_EQ(SlurmWorkerNamePattern(o), "slurm-*");
  EXPECT_THAT(Script(o), HasSubstr("\n# credential `worker slurm-* SECRET` owns every such name.\n"
                                   "name=slurm-\"${SLURM_ARRAY_JOB_ID}-"));
  o.name_prefix = "gpu.farm";
  EXPECT_EQ(SlurmWorkerNamePattern(o), "gpu.farm-*");
  EXPECT_THAT(Script(o), HasSubstr("`worker gpu.farm-* SECRET`"));
  EXPECT_THAT(Script(o), HasSubstr("\nname=gpu.farm-\"${SLURM_ARRAY_JOB_ID}-"));
}

TEST(SlurmWorkerScriptTest, GresAndGpusOnlyWhenGpusAreAsked) {
  const std::string cpu = Script(BasicOptions());
  EXPECT_THAT(cpu, Not(HasSubstr("--gres")));
  EXPECT_THAT(cpu, Not(HasSubstr("--gpus")));
  EXPECT_THAT(cpu, Not(HasSubstr("CUDA_VISIBLE_DEVICES")));
  SlurmUpOptions o = BasicOptions();
  o.gpus_per_worker = 2;
  const std::string gpu = Script(o);
  EXPECT_THAT(gpu, HasSubstr("\n#SBATCH --gres=gpu:2\n"));
  EXPECT_THAT(gpu, HasSubstr("\ngpus=\"${CUDA_VISIBLE_DEVICES:-${SLURM_JOB_GPUS:-}}\"\n"));
  EXPECT_THAT(gpu, HasSubstr(" --gpus \"$gpus\""));
  EXPECT_THAT(gpu, HasSubstr("Slurm allocated no GPU"));
}

TEST(SlurmWorkerScriptTest, SignalRequeueLogsAndOptionalLinesComeBeforeTheCommands) {
  SlurmUpOptions o = BasicOptions();
  o.partition = "gpu";
  o.account = "proj42";
  o.time_minutes = 240;
  o.sbatch_args = {"--mem=16G", "--constraint=a100"};
  const std::string script = Script(o);
  std::vector<std::string> directives;
  bool commands_started = false;
  for (const std::string& line : Lines(script)) {
    if (line.rfind("#SBATCH ", 0) == 0) {
      EXPECT_FALSE(commands_started) << "#SBATCH after a command: " << line;
      directives.push_back(line);
    } else if (line[0] != '#') {
      commands_started = true;
    }
  }
  EXPECT_THAT(
      directives,
      ElementsAre("#SBATCH --job-name=pcsweep-worker", "#SBATCH --array=0-2", "#SBATCH --nodes=1",
                  "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=2", "#SBATCH --partition=gpu",
                  "#SBATCH --account=proj42", "#SBATCH --time=240", "#SBATCH --signal=B:TERM@90",
                  "#SBATCH --requeue", "#SBATCH --open-mode=append",
                  "#SBATCH --output=/shared/sweeps/slurm/logs/%A_%a.out",
                  "#SBATCH --error=/shared/sweeps/slurm/logs/%A_%a.err", "#SBATCH --mem=16G",
                  "#SBATCH --constraint=a100"));
}

TEST(SlurmWorkerScriptTest, QuotesPathsAndPassesTlsAndRunnerFiles) {
  SlurmUpOptions o = BasicOptions();
  o.token_file = "/shared/my tokens/it's.token";
  o.tls_ca_file = "/shared/ca.pem";
  o.tls_cert_file = "/shared/w.pem";
  o.tls_key_file = "/shared/w.key";
  o.runner_path = "/opt/pcsweep/bin/pcsweep-run";
  EXPECT_THAT(Script(o), HasSubstr(" --token-file '/shared/my tokens/it'\\''s.token' --tls-ca "
                                   "/shared/ca.pem --tls-cert /shared/w.pem --tls-key "
                                   "/shared/w.key --runner /opt/pcsweep/bin/pcsweep-run\n"));
}

TEST(SlurmWorkerScriptTest, RefusesBadOptionsWithTheFlagsName) {
  struct Case {
    std::function<void(SlurmUpOptions&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](SlurmUpOptions& o) { o.workers = 0; }, "--workers must be at least 1 (got 0)"},
      {[](SlurmUpOptions& o) { o.slots = 0; }, "--slots must be at least 1 (got 0)"},
      {[](SlurmUpOptions& o) { o.gpus_per_worker = -1; }, "--gpus-per-worker must be 0 or more"},
      {[](SlurmUpOptions& o) { o.time_minutes = 2; }, "--time must be at least 3 minutes"},
      {[](SlurmUpOptions& o) { o.coordinator = ""; }, "--coordinator HOST:PORT is required"},
      {[](SlurmUpOptions& o) { o.coordinator = "coord"; }, "--coordinator 'coord' is not HOST"},
      {[](SlurmUpOptions& o) { o.partition = "a b"; }, "--partition 'a b' must be one word"},
      {[](SlurmUpOptions& o) { o.sbatch_args = {"mem=1G"}; }, "--sbatch-arg 'mem=1G' must be"},
      {[](SlurmUpOptions& o) { o.sbatch_args = {"--x\n#"}; }, "must be one sbatch option"},
      {[](SlurmUpOptions& o) { o.name_prefix = "a/b"; }, "--name-prefix 'a/b' must be"},
      {[](SlurmUpOptions& o) { o.dir = "/a b"; }, "--dir '/a b' must be a path without"},
      {[](SlurmUpOptions& o) { o.dir = "/a%j"; }, "--dir '/a%j' must be a path without"},
      {[](SlurmUpOptions& o) { o.tls_cert_file = "/c.pem"; }, "--tls-cert and --tls-key go"},
      {[](SlurmUpOptions& o) { o.token_file = "/t\n"; }, "--token-file holds a control"},
  };
  for (const Case& c : cases) {
    SlurmUpOptions o = BasicOptions();
    c.change(o);
    EXPECT_THAT(SlurmWorkerScript(o, kPcsweep),
                StatusIs(absl::StatusCode::kInvalidArgument, c.message));
  }
}

// Runs `slurm up` / `slurm down` in a temp folder with PATH pointing at a folder of fake
// Slurm commands (or an empty one).
class SlurmRunTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(testing::TempDir()) /
            ("pcsweep_slurm_" + std::to_string(::getpid()) + "_" +
             testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "bin");
    const char* path = std::getenv("PATH");
    saved_path_ = path == nullptr ? "" : path;
    ::setenv("PATH", (root_ / "bin").c_str(), 1);
    options_ = BasicOptions();
    options_.dir = (root_ / "slurm").string();
    options_.token_file = WriteToken(0600);
  }
  void TearDown() override {
    ::setenv("PATH", saved_path_.c_str(), 1);
    fs::remove_all(root_);
  }

  std::string WriteToken(int mode) {
    const fs::path path = root_ / "worker.token";
    std::ofstream(path) << kSecret << "\n";
    fs::permissions(path, static_cast<fs::perms>(mode));
    return path.string();
  }

  // A fake Slurm command: records each call and its arguments (one a line) beside itself,
  // then runs `body` (no PATH: only shell built-ins).
  void FakeCommand(const std::string& name, const std::string& body) {
    const fs::path path = root_ / "bin" / name;
    std::ofstream(path) << "#!/bin/sh\n"
                        << "d=${0%/*}\n"
                        << "echo call >> \"$d/" << name << ".calls\"\n"
                        << "for a in \"$@\"; do echo \"$a\" >> \"$d/" << name << ".args\"; done\n"
                        << body << "\n";
    fs::permissions(path, fs::perms::owner_all);
  }
  std::string Recorded(const std::string& file) { return ReadAll(root_ / "bin" / file); }

  absl::Status Up() { return RunSlurmUp(options_, kPcsweep, out_, err_); }

  fs::path root_;
  std::string saved_path_;
  SlurmUpOptions options_;
  std::ostringstream out_, err_;
};

TEST_F(SlurmRunTest, DryRunPrintsTheScriptWithNoSecretAndSubmitsNothing) {
  options_.dry_run = true;
  FakeCommand("sbatch", "echo 1234");
  ASSERT_TRUE(Up().ok());
  EXPECT_THAT(out_.str(), HasSubstr("#SBATCH --array=0-2\n"));
  EXPECT_THAT(out_.str(), HasSubstr(" --token-file " + options_.token_file + "\n"));
  EXPECT_THAT(out_.str(), Not(HasSubstr(kSecret)));
  EXPECT_FALSE(fs::exists(root_ / "bin" / "sbatch.calls"));
  EXPECT_FALSE(fs::exists(options_.dir));
}

TEST_F(SlurmRunTest, SubmitsOnceThenPrintsAndRecordsTheJobIdAndDownCancelsIt) {
  FakeCommand("sbatch", "echo 1234");
  ASSERT_TRUE(Up().ok()) << err_.str();
  EXPECT_EQ(out_.str(), "1234\n");
  EXPECT_THAT(err_.str(), HasSubstr("slurm up: submitted job array 1234 (3 workers x 2 slots)"));
  EXPECT_THAT(err_.str(), HasSubstr("the coordinator's --credentials needs the line `worker "
                                    "slurm-* sha256:HEX` (HEX: the SHA-256 of the token in " +
                                    options_.token_file + ")"));
  EXPECT_EQ(Recorded("sbatch.calls"), "call\n");
  const std::string script_path = options_.dir + "/worker.sbatch";
  EXPECT_EQ(Recorded("sbatch.args"), "--parsable\n" + script_path + "\n");
  EXPECT_EQ(ReadAll(options_.dir + "/jobs"), "1234\n");
  EXPECT_TRUE(fs::is_directory(options_.dir + "/logs"));  // Slurm does not create it
  const std::string script = ReadAll(script_path);
  EXPECT_THAT(script, HasSubstr("#SBATCH --output=" + options_.dir + "/logs/%A_%a.out\n"));
  EXPECT_THAT(script, Not(HasSubstr(kSecret)));

  FakeCommand("scancel", "exit 0");
  std::ostringstream down;
  ASSERT_TRUE(RunSlurmDown(options_.dir, down).ok());
  EXPECT_EQ(Recorded("scancel.args"), "--verbose\n1234\n");
  EXPECT_EQ(down.str(), "slurm down: cancelled job 1234\n");
  EXPECT_EQ(ReadAll(options_.dir + "/jobs"), "");
}

TEST_F(SlurmRunTest, SbatchMissingFromPathIsOneLineAndWritesNothing) {
  EXPECT_THAT(Up(), StatusIs(absl::StatusCode::kNotFound, "slurm up: sbatch not found on PATH"));
  EXPECT_FALSE(fs::exists(options_.dir));
}

TEST_F(SlurmRunTest, SbatchRefusalPassesItsStderrThroughAndRecordsNothing) {
  FakeCommand("sbatch",
              "echo 'sbatch: warning: something unrelated' >&2\n"
              "echo 'sbatch: error: invalid partition specified: nope' >&2\n"
              "echo 'sbatch: error: Batch job submission failed: Invalid partition name "
              "specified' >&2\nexit 1");
  options_.partition = "nope";
  EXPECT_THAT(Up(), StatusIs(absl::StatusCode::kFailedPrecondition,
                             "slurm up: sbatch refused the job: sbatch: error: invalid partition "
                             "specified: nope; sbatch: error: Batch job submission failed"));
  EXPECT_EQ(Recorded("sbatch.calls"), "call\n");
  EXPECT_FALSE(fs::exists(options_.dir + "/jobs"));
  EXPECT_EQ(out_.str(), "");
}

TEST_F(SlurmRunTest, SbatchWithoutAJobIdIsAnError) {
  FakeCommand("sbatch", "echo 'Submitted batch job'");
  EXPECT_THAT(Up(), StatusIs(absl::StatusCode::kInternal,
                             "slurm up: sbatch printed no job id (stdout 'Submitted batch job'"));
  EXPECT_FALSE(fs::exists(options_.dir + "/jobs"));
}

TEST_F(SlurmRunTest, ClusterSuffixIsDroppedAndNewIdsAreAppended) {
  FakeCommand("sbatch", "echo '77;big'");
  ASSERT_TRUE(Up().ok());
  ASSERT_TRUE(Up().ok());
  EXPECT_EQ(out_.str(), "77\n77\n");
  EXPECT_EQ(ReadAll(options_.dir + "/jobs"), "77\n77\n");
}

TEST_F(SlurmRunTest, TokenFileOpenToOthersOrMissingIsRefused) {
  FakeCommand("sbatch", "echo 1234");
  WriteToken(0644);
  EXPECT_THAT(Up(), StatusIs(absl::StatusCode::kPermissionDenied,
                             "slurm up: --token-file " + options_.token_file +
                                 " is open to other users (mode 0644); run chmod 600"));
  WriteToken(0640);
  EXPECT_THAT(Up(), StatusIs(absl::StatusCode::kPermissionDenied, "(mode 0640)"));
  options_.token_file = (root_ / "missing.token").string();
  EXPECT_THAT(Up(), StatusIs(absl::StatusCode::kNotFound, "missing.token: No such file"));
  EXPECT_FALSE(fs::exists(root_ / "bin" / "sbatch.calls"));
  options_.token_file = WriteToken(0400);  // read-only for its owner is fine too
  EXPECT_TRUE(Up().ok());
}

TEST_F(SlurmRunTest, DownSaysWhatHadEndedAndKeepsWhatScancelFailedOn) {
  fs::create_directories(options_.dir);
  std::ofstream(options_.dir + "/jobs") << "11\n\n22\n33\n44\n";
  FakeCommand("scancel",
              // Slurm 22.05's scancel exits 0 for all of these; --verbose says what happened.
              "echo \"scancel: Terminating job $2\" >&2\n"
              "case $2 in\n"
              "  11) ;;\n"
              "  22) echo \"scancel: error: Kill job error on job id 22: Invalid job id "
              "specified\" >&2 ;;\n"
              "  33) echo \"scancel: error: Kill job error on job id 33: Job/step already "
              "completing or completed\" >&2 ;;\n"
              "  *) echo \"scancel: error: Access/permission denied\" >&2 ;;\n"
              "esac");
  std::ostringstream out;
  EXPECT_THAT(RunSlurmDown(options_.dir, out),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "slurm down: scancel 44 failed: scancel: error: Access/permission denied "
                       "(1 job id(s) kept in "));
  EXPECT_EQ(out.str(),
            "slurm down: cancelled job 11\nslurm down: job 22 had already ended\n"
            "slurm down: job 33 had already ended\n");
  EXPECT_EQ(ReadAll(options_.dir + "/jobs"), "44\n");
}

TEST_F(SlurmRunTest, DownWithNothingRecordedOrNoFolder) {
  std::ostringstream out;
  EXPECT_THAT(RunSlurmDown((root_ / "nowhere").string(), out),
              StatusIs(absl::StatusCode::kNotFound, "slurm down: no folder "));
  fs::create_directories(options_.dir);
  EXPECT_TRUE(RunSlurmDown(options_.dir, out).ok());  // no scancel needed
  EXPECT_THAT(out.str(), HasSubstr("nothing to cancel"));
  std::ofstream(options_.dir + "/jobs") << "12x\n";
  EXPECT_THAT(RunSlurmDown(options_.dir, out),
              StatusIs(absl::StatusCode::kInvalidArgument, "jobs:1: '12x' is not a Slurm job id"));
  std::ofstream(options_.dir + "/jobs") << "12\n";
  EXPECT_THAT(RunSlurmDown(options_.dir, out),
              StatusIs(absl::StatusCode::kNotFound, "slurm down: scancel not found on PATH"));
}

TEST_F(SlurmRunTest, CommandLineFlagsReachTheScript) {
  CLI::App app;
  std::function<absl::Status()> action;
  AddSlurmCommand(app, &action);
  app.parse(
      "slurm up --coordinator h:1 --workers 2 --slots 1 --gpus-per-worker 1 --dry-run "
      "--sbatch-arg=--mem=1G --sbatch-arg=--qos=low --dir " +
          options_.dir,
      false);
  ASSERT_TRUE(action);
  testing::internal::CaptureStdout();
  const absl::Status status = action();
  const std::string printed = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(printed, HasSubstr("#SBATCH --array=0-1\n"));
  EXPECT_THAT(printed, HasSubstr("#SBATCH --gres=gpu:1\n"));
  EXPECT_THAT(printed, HasSubstr("#SBATCH --mem=1G\n#SBATCH --qos=low\n"));
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  EXPECT_THAT(printed, HasSubstr("exec " + self + " worker --coordinator h:1 --slots 1 "));

  CLI::App bad;
  AddSlurmCommand(bad, &action);
  bad.parse("slurm up --coordinator h:1 --workers 0 --slots 1", false);
  EXPECT_THAT(action(), StatusIs(absl::StatusCode::kInvalidArgument,
                                 "slurm up: --workers must be at least 1 (got 0)"));
}

TEST(RunProcessTest, CapturesOutputAndExitCodeAndKillsWhatRunsTooLong) {
  auto result = RunProcess("/bin/sh", {"-c", "echo out; echo err >&2; exit 3"}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->out, "out\n");
  EXPECT_EQ(result->err, "err\n");
  EXPECT_THAT(RunProcess("/bin/sh", {"-c", "exec sleep 10"}, absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, "did not finish within 200ms"));
  EXPECT_THAT(RunProcess("/nonexistent/sbatch", {}, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kInternal, "cannot run /nonexistent/sbatch"));
}

TEST(FindOnPathTest, FindsTheFirstExecutableAndSkipsEmptyEntries) {
  EXPECT_EQ(*FindOnPath("sh", "::/bin"), "/bin/sh");
  EXPECT_EQ(*FindOnPath("sh", "/nonexistent:/bin:/usr/bin"), "/bin/sh");
  EXPECT_THAT(FindOnPath("sh", ""), StatusIs(absl::StatusCode::kNotFound, "sh not found on PATH"));
}

}  // namespace
}  // namespace pcsweep::cli
