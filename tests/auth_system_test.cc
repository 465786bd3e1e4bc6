// Identity and roles with real processes: `pcsweep coordinator --credentials`, `pcsweep
// worker` processes with their own tokens, the CLI as a client, the listen policy and mTLS
// (certificates made by the openssl CLI at test time).
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"
#include "tools/cli/client.h"

namespace pcsweep {
namespace {

namespace fs = std::filesystem;
using ::pcsweep::testing::ChildProcess;
using ::pcsweep::testing::CommandResult;
using ::pcsweep::testing::RunCommand;
using ::testing::HasSubstr;

constexpr absl::Duration kStartTimeout = absl::Seconds(20);
constexpr char kTokenA[] = "system-token-worker-gpu-a";
constexpr char kTokenB[] = "system-token-worker-gpu-b";
constexpr char kTokenClient[] = "system-token-client-alice";
constexpr char kTokenSlurm[] = "system-token-slurm-array";

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

int Lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

class AuthSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path own_build_root = fs::read_symlink("/proc/self/exe").parent_path().parent_path();
    binary_ = EnvOr("PCSWEEP_BINARY_ROOT", own_build_root.string()) + "/bin/pcsweep";
    ASSERT_TRUE(fs::exists(binary_)) << binary_ << " is missing: build the pcsweep target";
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("pcsweep-auth-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
                        getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "coordinator.db").string();
  }
  void TearDown() override {
    workers_.clear();
    coordinator_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string Path(const std::string& name) { return (dir_ / name).string(); }
  std::string WriteFile(const std::string& name, const std::string& content) {
    std::ofstream(Path(name)) << content;
    return Path(name);
  }
  std::string Credentials() {
    return WriteFile("credentials",
                     absl::StrCat("worker gpu-a token:", kTokenA, "\nworker gpu-b token:", kTokenB,
                                  "\nclient alice token:", kTokenClient, "\n"));
  }

  void StartCoordinator(std::vector<std::string> extra, const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> argv = {binary_, "coordinator", "--db", db_, "--listen", listen};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = ChildProcess::Start(argv);
    ASSERT_TRUE(child.ok()) << child.status();
    coordinator_ = *std::move(child);
    auto line = coordinator_->WaitForStdoutLine("listening on ", kStartTimeout);
    ASSERT_TRUE(line.ok()) << line.status() << coordinator_->Stderr();
    std::smatch match;
    ASSERT_TRUE(std::regex_search(*line, match, std::regex("listening on \\S+:(\\d+)"))) << *line;
    address_ = absl::StrCat("127.0.0.1:", match[1].str());
  }

  ChildProcess* StartWorker(const std::string& name, const std::string& token) {
    std::vector<std::string> argv = {binary_,         "worker",
                                     "--coordinator", address_,
                                     "--name",        name,
                                     "--work-dir",    Path("work-" + name + "-" + token),
                                     "--token-file",  WriteFile(token + ".token", token + "\n")};
    auto child = ChildProcess::Start(argv);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return nullptr;
    workers_.push_back(*std::move(child));
    return workers_.back().get();
  }

  CommandResult Pcsweep(std::vector<std::string> args) {
    args.insert(args.begin(), binary_);
    auto result = RunCommand(args, absl::Seconds(30));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{-1, "", ""};
  }

  std::unique_ptr<cli::CoordinatorApi> Api(const std::string& token) {
    cli::ClientOptions options;
    options.address = address_;
    options.token = token;
    return cli::MakeGrpcCoordinatorApi(options);
  }

  std::string binary_;
  fs::path dir_;
  std::string db_;
  std::string address_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

TEST_F(AuthSystemTest, ASecondIdentityCannotTakeOverAWorkersName) {
  StartCoordinator({"--credentials", Credentials()});
  const std::string client_token = WriteFile("alice.token", absl::StrCat(kTokenClient, "\n"));
  const std::string spec = WriteFile(
      "slow.yaml",
      "name: slow\njob:\n  kind: command\n  command: \"sleep 2; echo '{\\\"value\\\": {x}}' > "
      "$PCSWEEP_OUTPUT_DIR/metrics.json\"\ngrid:\n  x: [7]\n");
  CommandResult submitted =
      Pcsweep({"submit", spec, "--coordinator", address_, "--token-file", client_token});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string sweep_id(absl::StripAsciiWhitespace(submitted.out));
  ASSERT_NE(StartWorker("gpu-a", kTokenA), nullptr);
  // Wait until gpu-a runs the job.
  auto api = Api(kTokenClient);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool running = false;
  while (!running && absl::Now() < deadline) {
    auto workers = api->ListWorkers();
    ASSERT_TRUE(workers.ok()) << workers.status();
    for (const auto& w : workers->workers()) running |= w.name() == "gpu-a" && w.running_size() > 0;
    if (!running) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(running) << "gpu-a never ran the job";

  // gpu-b's credential under gpu-a's name: refused for good, the process exits with one line.
  ChildProcess* impostor = StartWorker("gpu-a", kTokenB);
  ASSERT_NE(impostor, nullptr);
  auto code = impostor->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(impostor->Stderr(), HasSubstr("the coordinator refused worker 'gpu-a': "));
  EXPECT_THAT(impostor->Stderr(),
              HasSubstr("the credential of worker 'gpu-b' may not act as worker 'gpu-a'"));

  // The real gpu-a finishes the job and its result is the one stored.
  const absl::Time done_by = absl::Now() + absl::Seconds(30);
  std::string state;
  while (absl::Now() < done_by) {
    v1::GetSweepRequest request;
    request.set_sweep_id(sweep_id);
    request.set_include_metrics(true);
    auto sweep = api->GetSweep(request);
    ASSERT_TRUE(sweep.ok()) << sweep.status();
    if (sweep->summary().succeeded() == 1) {
      ASSERT_EQ(sweep->jobs_size(), 1);
      EXPECT_DOUBLE_EQ(sweep->jobs(0).metrics().at("value"), 7);
      auto job = api->GetJob(sweep->jobs(0).job_id());
      ASSERT_TRUE(job.ok()) << job.status();
      ASSERT_EQ(job->attempts_size(), 1);
      EXPECT_EQ(job->attempts(0).worker_id(), "gpu-a");
      EXPECT_FALSE(workers_.front()->Exited()) << workers_.front()->Stderr();
      return;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  FAIL() << "the sweep did not succeed; gpu-a: " << workers_.front()->Stderr();
}

// The script of `pcsweep slurm up` run as two array tasks (the Slurm variables set by hand):
// one pattern credential `worker slurm-* ...` serves both, and no other worker name.
TEST_F(AuthSystemTest, ASlurmArrayPatternCredentialOwnsEveryTaskNameAndNoOther) {
  StartCoordinator(
      {"--credentials",
       WriteFile("credentials", absl::StrCat("worker slurm-* token:", kTokenSlurm,
                                             "\nclient alice token:", kTokenClient, "\n"))});
  const std::string token = WriteFile("slurm.token", absl::StrCat(kTokenSlurm, "\n"));
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write);
  CommandResult up = Pcsweep({"slurm", "up", "--coordinator", address_, "--workers", "2", "--slots",
                              "1", "--token-file", token, "--dir", Path("slurm"), "--dry-run"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  const std::string script = WriteFile("worker.sbatch", up.out);
  fs::create_directories(Path("slurm/work"));
  for (const char* task : {"0", "1"}) {
    auto worker = ChildProcess::Start(
        {"/bin/sh", script}, {"SLURM_ARRAY_JOB_ID=7", absl::StrCat("SLURM_ARRAY_TASK_ID=", task)});
    ASSERT_TRUE(worker.ok()) << worker.status();
    workers_.push_back(*std::move(worker));
    auto started = workers_.back()->WaitForStdoutLine("pcsweep worker started", kStartTimeout);
    ASSERT_TRUE(started.ok()) << started.status() << workers_.back()->Stderr();
  }
  auto api = Api(kTokenClient);
  std::set<std::string> names;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (names.size() < 2 && absl::Now() < deadline) {
    auto listed = api->ListWorkers();
    ASSERT_TRUE(listed.ok()) << listed.status();
    names.clear();
    for (const auto& w : listed->workers()) names.insert(w.name());
    if (names.size() < 2) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(names, ::testing::ElementsAre("slurm-7-0.0", "slurm-7-1.0"));

  ChildProcess* outsider = StartWorker("gpu-a", kTokenSlurm);
  ASSERT_NE(outsider, nullptr);
  auto code = outsider->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(outsider->Stderr(),
              HasSubstr("the credential of worker 'slurm-*' may not act as worker 'gpu-a'"));
}

TEST_F(AuthSystemTest, AWorkerCredentialCannotActAsAClient) {
  StartCoordinator({"--credentials", Credentials()});
  const std::string worker_token = WriteFile("a.token", absl::StrCat(kTokenA, "\n"));
  CommandResult status =
      Pcsweep({"status", "--coordinator", address_, "--token-file", worker_token});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_THAT(status.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(status.err, HasSubstr("token 'gpu-a' (worker) may not call client method"));
  EXPECT_EQ(Lines(status.err), 1) << status.err;
  CommandResult none = Pcsweep({"status", "--coordinator", address_});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(none.err, HasSubstr("missing credentials"));
  const std::string client_token = WriteFile("alice.token", absl::StrCat(kTokenClient, "\n"));
  CommandResult ok = Pcsweep({"status", "--coordinator", address_, "--token-file", client_token});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// The check runs on the call's metadata, so a large message without a credential is never
// buffered: four 60 MB SubmitSweep requests (spec_yaml of 60 MiB) from a foreign client
// (Python grpcio) raise the coordinator's peak resident memory (VmHWM) by less than one
// request (seen: +11 MB of transport buffers); checked in the service instead, each request
// is read whole first (seen: +187 MB).
TEST_F(AuthSystemTest, UnauthenticatedLargeMessagesAreNotBuffered) {
  if (std::system("/usr/bin/python3 -c 'import grpc' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-grpcio is not installed";
  }
  StartCoordinator({"--credentials", Credentials()});
  auto peak_rss_kb = [&] {
    std::ifstream status(absl::StrCat("/proc/", coordinator_->pid(), "/status"));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1L;
  };
  const long before = peak_rss_kb();
  const std::string script = WriteFile(
      "big.py",
      absl::StrCat("import grpc\n"
                   "channel = grpc.insecure_channel('",
                   address_,
                   "', options=[('grpc.max_send_message_length', 100 << 20)])\n"
                   "call = channel.unary_unary('/pcsweep.v1.Coordinator/SubmitSweep')\n"
                   "for i in range(4):\n"
                   "    try:\n"
                   "        call(b'\\x0a\\x80\\x80\\x80\\x1e' + b'x' * (60 << 20), timeout=30)\n"
                   "    except grpc.RpcError as e:\n"
                   "        print(e.code(), e.details())\n"));
  auto run = RunCommand({"/usr/bin/python3", script}, absl::Seconds(120));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->err;
  EXPECT_EQ(std::count(run->out.begin(), run->out.end(), '\n'), 4) << run->out;
  EXPECT_THAT(run->out, HasSubstr("StatusCode.UNAUTHENTICATED missing credentials"));
  const long after = peak_rss_kb();
  ASSERT_GT(before, 0);
  std::cerr << "peak RSS " << before << " kB -> " << after << " kB\n";
  EXPECT_LT(after - before, 60 * 1024)  // less than one request
      << "peak RSS " << before << " kB -> " << after << " kB";
}

TEST_F(AuthSystemTest, NonLoopbackWithoutAuthIsRefusedUnlessInsecure) {
  CommandResult refused = Pcsweep({"coordinator", "--db", db_, "--listen", "0.0.0.0:0"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.out, "");
  EXPECT_THAT(refused.err, HasSubstr("refusing to listen on 0.0.0.0:0 without authentication"));
  EXPECT_EQ(Lines(refused.err), 1) << refused.err;
  StartCoordinator({"--insecure"}, "0.0.0.0:0");
  EXPECT_TRUE(Api("")->ListSweeps().ok());
}

TEST_F(AuthSystemTest, BadCredentialsFileIsOneLineWithFileAndLine) {
  const std::string file =
      WriteFile("credentials", "worker gpu-a token:0123456789abcdef\nboss x y\n");
  CommandResult refused = Pcsweep({"coordinator", "--db", db_, "--credentials", file});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr(file + ":2: unknown role 'boss' (client or worker)"));
  EXPECT_EQ(Lines(refused.err), 1) << refused.err;
}

TEST_F(AuthSystemTest, LocalRunsItsCoordinatorBehindAFreshOwnerOnlyToken) {
  const std::string spec =
      WriteFile("echo.yaml",
                "name: echo\njob:\n  kind: command\n  command: \"echo '{\\\"value\\\": {x}}' > "
                "$PCSWEEP_OUTPUT_DIR/metrics.json\"\ngrid:\n  x: [1, 2]\n");
  CommandResult local = Pcsweep({"local", spec, "--db", db_, "--work-dir", Path("work")});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  const std::string token_file = db_ + ".token";
  struct stat st;
  ASSERT_EQ(::stat(token_file.c_str(), &st), 0) << token_file;
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::ifstream in(token_file);
  std::string token;
  std::getline(in, token);
  EXPECT_TRUE(std::regex_match(token, std::regex("[0-9a-f]{64}"))) << token;
}

TEST_F(AuthSystemTest, MutualTlsWorkerAndClientUseTheirCertificates) {
  auto run = [&](const std::string& command) {
    ASSERT_EQ(std::system(("(" + command + ") > /dev/null 2>&1").c_str()), 0) << command;
  };
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  run(absl::StrCat("openssl req -x509 ", ec, " -days 1 -subj /CN=test-ca -keyout ", Path("ca.key"),
                   " -out ", Path("ca.crt")));
  auto leaf = [&](const std::string& name, const std::string& extension) {
    WriteFile(name + ".ext", extension + "\n");
    run(absl::StrCat("openssl req ", ec, " -subj /CN=", name, " -keyout ", Path(name + ".key"),
                     " -out ", Path(name + ".csr"), " && openssl x509 -req -days 1 -in ",
                     Path(name + ".csr"), " -CA ", Path("ca.crt"), " -CAkey ", Path("ca.key"),
                     " -CAcreateserial -extfile ", Path(name + ".ext"), " -out ",
                     Path(name + ".crt")));
  };
  leaf("localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost");
  leaf("alice", "extendedKeyUsage=clientAuth");
  leaf("gpu-a", "extendedKeyUsage=clientAuth");
  StartCoordinator({"--tls-cert", Path("localhost.crt"), "--tls-key", Path("localhost.key"),
                    "--tls-client-ca", Path("ca.crt")});
  CommandResult with = Pcsweep({"status", "--coordinator", address_, "--tls-ca", Path("ca.crt"),
                                "--tls-cert", Path("alice.crt"), "--tls-key", Path("alice.key")});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  // A worker with a certificate and no --name registers under the certificate's CN.
  auto worker = ChildProcess::Start({binary_, "worker", "--coordinator", address_, "--work-dir",
                                     Path("work"), "--tls-ca", Path("ca.crt"), "--tls-cert",
                                     Path("gpu-a.crt"), "--tls-key", Path("gpu-a.key")});
  ASSERT_TRUE(worker.ok()) << worker.status();
  workers_.push_back(*std::move(worker));
  auto registered = workers_.back()->WaitForStdoutLine("pcsweep worker started", kStartTimeout);
  ASSERT_TRUE(registered.ok()) << registered.status();
  std::string listed;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && listed.find("gpu-a") == std::string::npos) {
    CommandResult workers =
        Pcsweep({"workers", "--coordinator", address_, "--tls-ca", Path("ca.crt"), "--tls-cert",
                 Path("alice.crt"), "--tls-key", Path("alice.key")});
    ASSERT_EQ(workers.exit_code, 0) << workers.err;
    listed = workers.out;
    if (listed.find("gpu-a") == std::string::npos) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(listed, HasSubstr("gpu-a")) << workers_.back()->Stderr();
  CommandResult without =
      Pcsweep({"status", "--coordinator", address_, "--tls-ca", Path("ca.crt")});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_THAT(without.err, HasSubstr("cannot reach coordinator"));
  EXPECT_EQ(Lines(without.err), 1) << without.err;
}

}  // namespace
}  // namespace pcsweep
