#include "worker/job_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/jobfile/job_envelope.h"
#include "common/jobfile/job_kinds.h"
#include "common/jobfile/progress_line.h"
#include "common/jobfile/result_files.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

extern char** environ;

namespace pcsweep::worker {
namespace {

using json = nlohmann::json;

constexpr int kChildProgressFd = 3;
// A progress line longer than this is not a progress line; it is still logged.
constexpr size_t kMaxLineBytes = 64 * 1024;
// After the main process exits, how long we keep draining pipes that escaped processes may
// hold open.
constexpr absl::Duration kDrainAfterExit = absl::Seconds(2);
// The longest Wait() sleeps in poll() without looking at the child.
constexpr absl::Duration kPollInterval = absl::Milliseconds(100);

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a full disk must not stop the job; the log is best effort
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

std::string LastNonEmptyLine(const std::string& text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.empty()) return "";
  return std::string(absl::StripAsciiWhitespace(lines.back()));
}

// Splits a byte stream into lines; a line longer than kMaxLineBytes is dropped whole.
class LineSplitter {
 public:
  // Calls `on_line` with each line that `data` completes.
  template <typename OnLine>
  void Feed(const char* data, size_t size, const OnLine& on_line) {
    for (size_t i = 0; i < size; ++i) {
      if (data[i] == '\n') {
        if (!too_long_) on_line(line_);
        line_.clear();
        too_long_ = false;
      } else if (!too_long_) {
        line_.push_back(data[i]);
        if (line_.size() > kMaxLineBytes) {
          line_.clear();
          too_long_ = true;
        }
      }
    }
  }

  // At the end of the stream: calls `on_line` with a last line that had no newline.
  template <typename OnLine>
  void Finish(const OnLine& on_line) const {
    if (!line_.empty() && !too_long_) on_line(line_);
  }

 private:
  std::string line_;
  bool too_long_ = false;
};

// The job's settings, "{}" when it gives none.
// Possible errors: InvalidArgument (not JSON, not an object).
absl::StatusOr<json> ParseLaunchConfig(const JobLaunch& launch, absl::string_view where) {
  json config = json::object();
  if (!launch.config_json.empty()) {
    try {
      config = json::parse(launch.config_json);
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": config_json is not valid JSON: ", e.what()));
    }
  }
  if (!config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": config_json is not a JSON object"));
  }
  return config;
}

// What the child executes: a shell for "command", else the runner on <output_dir>/job.json,
// which is written here. Possible errors: InvalidArgument (no string "command", no runner),
// Internal (job.json cannot be written).
absl::StatusOr<std::vector<std::string>> ChildArgv(const JobLaunch& launch, const json& config,
                                                   absl::string_view where) {
  if (launch.kind == jobfile::kCommandKind) {
    auto it = config.find("command");
    if (it == config.end() || !it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": kind \"command\" needs a string setting \"command\""));
    }
    return std::vector<std::string>{"/bin/sh", "-c", it->get<std::string>()};
  }
  if (launch.runner_path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": kind \"", launch.kind, "\" needs the job runner (pcsweep-run)"));
  }
  jobfile::JobEnvelope envelope;
  envelope.job_id = launch.job_id;
  envelope.attempt = launch.attempt;
  envelope.kind = launch.kind;
  envelope.config = config;
  envelope.params = launch.params;
  envelope.output_dir = launch.output_dir;
  const std::string job_file = launch.output_dir + "/job.json";
  PCSWEEP_RETURN_IF_ERROR(Annotate(jobfile::WriteJobEnvelope(job_file, envelope), where));
  return std::vector<std::string>{launch.runner_path, "run", "--job", job_file};
}

// The worker's environment ("NAME=value" entries) with the child contract's variables set.
std::vector<std::string> ChildEnvironment(const JobLaunch& launch) {
  const std::map<std::string, std::string> overrides = {
      {jobfile::kOutputDirEnv, launch.output_dir},
      {jobfile::kJobIdEnv, launch.job_id},
      {jobfile::kAttemptEnv, absl::StrCat(launch.attempt)},
      {"CUDA_VISIBLE_DEVICES", launch.cuda_visible_devices},
      {jobfile::kProgressFdEnv, absl::StrCat(kChildProgressFd)}};
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    absl::string_view item(*entry);
    absl::string_view name = item.substr(0, item.find('='));
    if (overrides.count(std::string(name)) == 0) env.emplace_back(item);
  }
  for (const auto& [name, value] : overrides) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

// execve's view of `strings`, which must outlive it.
std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// The pipes between the worker and the child: [0] is the read end, [1] the write end. The
// child writes stdout, stderr and progress; `wake` is Cancel()'s self-pipe within the worker.
struct ChildPipes {
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  int progress[2] = {-1, -1};
  int wake[2] = {-1, -1};
};

// All four pipes (close-on-exec; `wake` non-blocking), or none.
// Possible errors: Internal "<where>: pipe: <reason>".
absl::Status OpenChildPipes(absl::string_view where, ChildPipes* pipes) {
  int* const all[] = {pipes->out, pipes->err, pipes->progress, pipes->wake};
  for (size_t i = 0; i < std::size(all); ++i) {
    const int flags = all[i] == pipes->wake ? O_CLOEXEC | O_NONBLOCK : O_CLOEXEC;
    if (pipe2(all[i], flags) == 0) continue;
    const int pipe_errno = errno;
    for (size_t j = 0; j < i; ++j) {
      CloseFd(&all[j][0]);
      CloseFd(&all[j][1]);
    }
    errno = pipe_errno;
    return ErrnoError(absl::StrCat(where, ": pipe"));
  }
  return absl::OkStatus();
}

// In the forked child: its own process group (so that a cancel reaches everything the job
// starts), default signal handling, stdin from `dev_null`, stdout, stderr and fd
// kChildProgressFd on the pipes, then `argv`. Only async-signal-safe calls.
[[noreturn]] void ExecChild(const ChildPipes& pipes, int dev_null, char* const* argv,
                            char* const* env) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) signal(sig, SIG_DFL);
  // Move the sources out of 0..3 first, in case the parent had some of those closed.
  int in = dev_null >= 0 ? fcntl(dev_null, F_DUPFD, 10) : -1;
  int out = fcntl(pipes.out[1], F_DUPFD, 10);
  int err = fcntl(pipes.err[1], F_DUPFD, 10);
  int prog = fcntl(pipes.progress[1], F_DUPFD, 10);
  if (in >= 0) dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  dup2(prog, kChildProgressFd);
  execve(argv[0], argv, env);
  const char message[] = "pcsweep worker: cannot execute the job: ";
  WriteAll(2, message, sizeof(message) - 1);
  const char* reason = strerror(errno);
  WriteAll(2, reason, strlen(reason));
  WriteAll(2, "\n", 1);
  _exit(127);
}

}  // namespace

// What Wait() has read from the child so far.
struct JobProcess::CapturedOutput {
  LineSplitter stdout_lines;
  LineSplitter progress_lines;
  std::string stderr_tail;  // trimmed to kStderrTailBytes now and then, and at the end
};

// ---------------------------------------------------------------------------------------
// JobProcess

absl::StatusOr<std::unique_ptr<JobProcess>> JobProcess::Start(const JobLaunch& launch) {
  const std::string where = absl::StrCat("job ", launch.job_id, " attempt ", launch.attempt);
  PCSWEEP_ASSIGN_OR_RETURN(json config, ParseLaunchConfig(launch, where));
  std::error_code ec;
  std::filesystem::create_directories(launch.output_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(where, ": cannot create ", launch.output_dir, ": ", ec.message()));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<std::string> argv, ChildArgv(launch, config, where));

  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<std::string> env = ChildEnvironment(launch);
  std::vector<char*> child_env = NullTerminated(env);
  std::vector<char*> child_argv = NullTerminated(argv);

  std::unique_ptr<JobProcess> process(new JobProcess());
  process->launch_ = launch;
  process->log_path_ = launch.output_dir + "/log.txt";
  process->log_fd_ =
      open(process->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (process->log_fd_ < 0) return ErrnoError(absl::StrCat(where, ": open ", process->log_path_));

  ChildPipes pipes;
  PCSWEEP_RETURN_IF_ERROR(OpenChildPipes(where, &pipes));
  int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);

  pid_t pid = fork();
  if (pid == 0) ExecChild(pipes, dev_null, child_argv.data(), child_env.data());
  const int fork_errno = errno;
  for (int fd : {pipes.out[1], pipes.err[1], pipes.progress[1], dev_null}) {
    if (fd >= 0) close(fd);
  }
  process->stdout_fd_ = pipes.out[0];
  process->stderr_fd_ = pipes.err[0];
  process->progress_fd_ = pipes.progress[0];
  process->wake_read_fd_ = pipes.wake[0];
  process->wake_write_fd_ = pipes.wake[1];
  if (pid < 0) {
    errno = fork_errno;
    return ErrnoError(absl::StrCat(where, ": fork"));
  }
  // Also set here: whichever of parent and child runs first, the group exists before any
  // signal is sent to it.
  setpgid(pid, pid);
  process->pid_ = pid;
  return process;
}

JobProcess::~JobProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  for (int* fd :
       {&stdout_fd_, &stderr_fd_, &progress_fd_, &wake_read_fd_, &wake_write_fd_, &log_fd_}) {
    CloseFd(fd);
  }
}

JobProgressSnapshot JobProcess::Progress() const {
  absl::MutexLock lock(&mu_);
  return progress_;
}

void JobProcess::Cancel(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (cancel_requested_) return;
    cancel_requested_ = true;
    kill_deadline_ = absl::Now() + grace;
    // The group may already be gone (the job just exited); then there is nothing to signal.
    if (pid_ > 0 && !reaped_) kill(-pid_, SIGTERM);
  }
  char byte = 1;
  WriteAll(wake_write_fd_, &byte, 1);
}

void JobProcess::HandleStdoutLine(const std::string& line) {
  if (absl::StartsWith(line, jobfile::kStdoutProgressPrefix)) {
    HandleProgressLine(line.substr(jobfile::kStdoutProgressPrefix.size()));
  }
}

void JobProcess::HandleProgressLine(const std::string& line) {
  absl::StatusOr<jobfile::ProgressLine> parsed = jobfile::ParseProgressLine(line);
  if (!parsed.ok()) {
    spdlog::debug("job {}: ignoring progress line ({}): {}", launch_.job_id,
                  std::string(parsed.status().message()), line);
    return;
  }
  absl::MutexLock lock(&mu_);
  if (parsed->progress.has_value()) progress_.progress = *parsed->progress;
  if (parsed->message.has_value()) progress_.message = std::move(*parsed->message);
  if (parsed->eta_s.has_value()) progress_.eta_ms = static_cast<int64_t>(*parsed->eta_s * 1000);
}

JobOutcome JobProcess::Wait() {
  CapturedOutput captured;
  int wait_status = 0;
  absl::Time drain_deadline = absl::InfiniteFuture();
  while (true) {
    const bool pipes_open = stdout_fd_ >= 0 || stderr_fd_ >= 0 || progress_fd_ >= 0;
    if (reaped_ && (!pipes_open || absl::Now() >= drain_deadline)) break;
    PollPipes(EnforceKillDeadline(drain_deadline), &captured);
    if (!reaped_ && ReapIfExited(&wait_status)) drain_deadline = absl::Now() + kDrainAfterExit;
  }
  captured.stdout_lines.Finish([this](const std::string& line) { HandleStdoutLine(line); });
  captured.progress_lines.Finish([this](const std::string& line) { HandleProgressLine(line); });
  JobOutcome outcome = OutcomeOf(wait_status, std::move(captured.stderr_tail));
  CloseFd(&log_fd_);
  return outcome;
}

absl::Time JobProcess::EnforceKillDeadline(absl::Time drain_deadline) {
  absl::Time wake_at = absl::Now() + kPollInterval;
  {
    absl::MutexLock lock(&mu_);
    if (!reaped_ && absl::Now() >= kill_deadline_) {
      kill(-pid_, SIGKILL);
      kill_deadline_ = absl::InfiniteFuture();
    }
    wake_at = std::min(wake_at, kill_deadline_);
  }
  if (reaped_) wake_at = std::min(wake_at, drain_deadline);
  return wake_at;
}

void JobProcess::PollPipes(absl::Time wake_at, CapturedOutput* captured) {
  pollfd fds[4];
  int* owners[4];
  int count = 0;
  for (int* fd : {&stdout_fd_, &stderr_fd_, &progress_fd_, &wake_read_fd_}) {
    if (*fd < 0) continue;
    fds[count] = {*fd, POLLIN, 0};
    owners[count++] = fd;
  }
  const int timeout_ms =
      static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wake_at - absl::Now()) + 1));
  if (poll(fds, count, timeout_ms) <= 0) return;
  for (int i = 0; i < count; ++i) {
    if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    if (owners[i] == &wake_read_fd_) {
      char drain[64];
      while (read(wake_read_fd_, drain, sizeof(drain)) > 0) {
      }
    } else {
      Pump(owners[i], captured);
    }
  }
}

void JobProcess::Pump(int* fd, CapturedOutput* captured) {
  char buffer[16384];
  ssize_t n = read(*fd, buffer, sizeof(buffer));
  if (n < 0 && errno == EINTR) return;
  if (n <= 0) {
    CloseFd(fd);
    return;
  }
  if (fd == &stdout_fd_ || fd == &stderr_fd_) WriteAll(log_fd_, buffer, n);
  if (fd == &stdout_fd_) {
    captured->stdout_lines.Feed(buffer, n,
                                [this](const std::string& line) { HandleStdoutLine(line); });
  } else if (fd == &stderr_fd_) {
    std::string& tail = captured->stderr_tail;
    tail.append(buffer, n);
    if (tail.size() > 2 * kStderrTailBytes) tail.erase(0, tail.size() - kStderrTailBytes);
  } else {
    captured->progress_lines.Feed(buffer, n,
                                  [this](const std::string& line) { HandleProgressLine(line); });
  }
}

bool JobProcess::ReapIfExited(int* wait_status) {
  if (waitpid(pid_, wait_status, WNOHANG) != pid_) return false;
  absl::MutexLock lock(&mu_);
  reaped_ = true;
  // Stragglers in the job's group would keep the pipes (and a GPU) busy.
  kill(-pid_, SIGKILL);
  return true;
}

JobOutcome JobProcess::OutcomeOf(int wait_status, std::string stderr_tail) const {
  JobOutcome outcome;
  outcome.log_path = log_path_;
  if (stderr_tail.size() > kStderrTailBytes) {
    stderr_tail.erase(0, stderr_tail.size() - kStderrTailBytes);
  }
  outcome.stderr_tail = stderr_tail;
  {
    absl::MutexLock lock(&mu_);
    outcome.cancelled = cancel_requested_;
  }
  const std::string last_line = LastNonEmptyLine(stderr_tail);
  const std::string detail = last_line.empty() ? "" : absl::StrCat(": ", last_line);
  if (WIFSIGNALED(wait_status)) {
    outcome.signal = WTERMSIG(wait_status);
    outcome.exit_code = -1;
    outcome.retryable = true;
    outcome.error = absl::StrCat(outcome.cancelled ? "cancelled; " : "", "killed by signal ",
                                 outcome.signal, " (", strsignal(outcome.signal), ")", detail);
  } else {
    outcome.exit_code = WEXITSTATUS(wait_status);
    if (outcome.exit_code != 0) {
      outcome.retryable = true;
      outcome.error = absl::StrCat(outcome.cancelled ? "cancelled; " : "", "exited with code ",
                                   outcome.exit_code, detail);
    } else if (outcome.cancelled) {
      // It finished before the signal mattered, but the coordinator no longer wants it.
      outcome.retryable = true;
      outcome.error = "cancelled";
    } else {
      CollectResults(&outcome);
    }
  }
  return outcome;
}

void JobProcess::CollectResults(JobOutcome* outcome) const {
  const std::string& dir = launch_.output_dir;
  auto fail = [&](const absl::Status& status) {
    outcome->succeeded = false;
    outcome->retryable = false;  // the same job would write the same bad file again
    outcome->error = std::string(status.message());
  };
  const std::string metrics_path = dir + "/metrics.json";
  if (std::filesystem::exists(metrics_path)) {
    auto text = jobfile::ReadResultFile(metrics_path);
    if (!text.ok()) return fail(text.status());
    auto metrics = jobfile::ParseMetricsFile(metrics_path, *text);
    if (!metrics.ok()) return fail(metrics.status());
    outcome->metrics = std::move(*metrics);
  }
  const std::string examples_path = dir + "/examples.jsonl";
  if (std::filesystem::exists(examples_path)) {
    auto text = jobfile::ReadResultFile(examples_path);
    if (!text.ok()) return fail(text.status());
    auto examples = jobfile::ParseExampleRows(examples_path, *text);
    if (!examples.ok()) return fail(examples.status());
    outcome->examples = std::move(*examples);
  }
  const std::string outputs_path = dir + "/outputs.json";
  if (std::filesystem::exists(outputs_path)) {
    auto text = jobfile::ReadResultFile(outputs_path);
    if (!text.ok()) return fail(text.status());
    auto outputs = jobfile::ParseOutputsFile(outputs_path, *text);
    if (!outputs.ok()) return fail(outputs.status());
    outcome->outputs = std::move(*outputs);
  }
  outcome->outputs.emplace("output_dir", dir);
  outcome->succeeded = true;
  outcome->retryable = false;
  outcome->error.clear();
}

}  // namespace pcsweep::worker
