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
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/jobfile/job_kinds.h"
#include "common/jobfile/result_files.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

extern char** environ;

namespace pcsweep::worker {
namespace {

using json = nlohmann::json;

constexpr char kStdoutProgressPrefix[] = "PCSWEEP_PROGRESS ";
constexpr int kChildProgressFd = 3;
// A progress line longer than this is not a progress line; it is still logged.
constexpr size_t kMaxLineBytes = 64 * 1024;
// After the main process exits, how long we keep draining pipes that escaped processes may
// hold open.
constexpr absl::Duration kDrainAfterExit = absl::Seconds(2);

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

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string LastNonEmptyLine(const std::string& text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.empty()) return "";
  return std::string(absl::StripAsciiWhitespace(lines.back()));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// JobProcess

absl::StatusOr<std::unique_ptr<JobProcess>> JobProcess::Start(const JobLaunch& launch) {
  const std::string where = absl::StrCat("job ", launch.job_id, " attempt ", launch.attempt);
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

  std::error_code ec;
  std::filesystem::create_directories(launch.output_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(where, ": cannot create ", launch.output_dir, ": ", ec.message()));
  }

  std::vector<std::string> argv;
  if (launch.kind == jobfile::kCommandKind) {
    auto it = config.find("command");
    if (it == config.end() || !it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": kind \"command\" needs a string setting \"command\""));
    }
    argv = {"/bin/sh", "-c", it->get<std::string>()};
  } else {
    if (launch.runner_path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": kind \"", launch.kind, "\" needs the job runner (pcsweep-run)"));
    }
    json job = {{"job_id", launch.job_id}, {"attempt", launch.attempt},
                {"kind", launch.kind},     {"config", config},
                {"params", launch.params}, {"output_dir", launch.output_dir}};
    const std::string job_file = launch.output_dir + "/job.json";
    PCSWEEP_RETURN_IF_ERROR(Annotate(WriteFile(job_file, job.dump(2) + "\n"), where));
    argv = {launch.runner_path, "run", "--job", job_file};
  }

  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  const std::map<std::string, std::string> overrides = {
      {"PCSWEEP_OUTPUT_DIR", launch.output_dir},
      {"PCSWEEP_JOB_ID", launch.job_id},
      {"PCSWEEP_ATTEMPT", absl::StrCat(launch.attempt)},
      {"CUDA_VISIBLE_DEVICES", launch.cuda_visible_devices},
      {"PCSWEEP_PROGRESS_FD", absl::StrCat(kChildProgressFd)}};
  std::vector<std::string> env_strings;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    absl::string_view item(*entry);
    absl::string_view name = item.substr(0, item.find('='));
    if (overrides.count(std::string(name)) == 0) env_strings.emplace_back(item);
  }
  for (const auto& [name, value] : overrides) env_strings.push_back(absl::StrCat(name, "=", value));
  std::vector<char*> child_env;
  for (std::string& s : env_strings) child_env.push_back(s.data());
  child_env.push_back(nullptr);
  std::vector<char*> child_argv;
  for (std::string& s : argv) child_argv.push_back(s.data());
  child_argv.push_back(nullptr);

  std::unique_ptr<JobProcess> process(new JobProcess());
  process->launch_ = launch;
  process->log_path_ = launch.output_dir + "/log.txt";
  process->log_fd_ =
      open(process->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (process->log_fd_ < 0) return ErrnoError(absl::StrCat(where, ": open ", process->log_path_));

  int out_pipe[2], err_pipe[2], progress_pipe[2], wake_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError(absl::StrCat(where, ": pipe"));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return ErrnoError(absl::StrCat(where, ": pipe"));
  }
  if (pipe2(progress_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return ErrnoError(absl::StrCat(where, ": pipe"));
  }
  if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    for (int fd :
         {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], progress_pipe[0], progress_pipe[1]}) {
      close(fd);
    }
    return ErrnoError(absl::StrCat(where, ": pipe"));
  }
  int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);

  pid_t pid = fork();
  if (pid == 0) {
    // Child. Own process group, so that a cancel reaches everything the job starts.
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) signal(sig, SIG_DFL);
    // Move the sources out of 0..3 first, in case the parent had some of those closed.
    int in = dev_null >= 0 ? fcntl(dev_null, F_DUPFD, 10) : -1;
    int out = fcntl(out_pipe[1], F_DUPFD, 10);
    int err = fcntl(err_pipe[1], F_DUPFD, 10);
    int prog = fcntl(progress_pipe[1], F_DUPFD, 10);
    if (in >= 0) dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    dup2(prog, kChildProgressFd);
    execve(child_argv[0], child_argv.data(), child_env.data());
    const char message[] = "pcsweep worker: cannot execute the job: ";
    WriteAll(2, message, sizeof(message) - 1);
    const char* reason = strerror(errno);
    WriteAll(2, reason, strlen(reason));
    WriteAll(2, "\n", 1);
    _exit(127);
  }
  const int fork_errno = errno;
  for (int fd : {out_pipe[1], err_pipe[1], progress_pipe[1], dev_null}) {
    if (fd >= 0) close(fd);
  }
  process->stdout_fd_ = out_pipe[0];
  process->stderr_fd_ = err_pipe[0];
  process->progress_fd_ = progress_pipe[0];
  process->wake_read_fd_ = wake_pipe[0];
  process->wake_write_fd_ = wake_pipe[1];
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

void JobProcess::HandleProgressLine(const std::string& line) {
  json value;
  try {
    value = json::parse(line);
  } catch (const json::exception&) {
    spdlog::debug("job {}: ignoring progress line that is not JSON: {}", launch_.job_id, line);
    return;
  }
  if (!value.is_object()) return;
  absl::MutexLock lock(&mu_);
  if (auto it = value.find("progress"); it != value.end() && it->is_number()) {
    progress_.progress = std::clamp(it->get<double>(), 0.0, 1.0);
  }
  if (auto it = value.find("message"); it != value.end() && it->is_string()) {
    progress_.message = it->get<std::string>();
  }
  if (auto it = value.find("eta_s"); it != value.end() && it->is_number()) {
    progress_.eta_ms = static_cast<int64_t>(std::max(0.0, it->get<double>()) * 1000);
  }
}

JobOutcome JobProcess::Wait() {
  JobOutcome outcome;
  outcome.log_path = log_path_;
  std::string stdout_line, progress_line, stderr_tail;
  bool stdout_line_too_long = false;

  // Splits `data` into lines; complete ones go to `on_line`.
  auto split_lines = [](std::string* buffer, bool* too_long, const char* data, size_t size,
                        const auto& on_line) {
    for (size_t i = 0; i < size; ++i) {
      if (data[i] == '\n') {
        if (!*too_long) on_line(*buffer);
        buffer->clear();
        *too_long = false;
      } else if (!*too_long) {
        buffer->push_back(data[i]);
        if (buffer->size() > kMaxLineBytes) {
          buffer->clear();
          *too_long = true;
        }
      }
    }
  };
  bool progress_too_long = false;
  auto on_stdout_line = [&](const std::string& line) {
    if (absl::StartsWith(line, kStdoutProgressPrefix)) {
      HandleProgressLine(line.substr(sizeof(kStdoutProgressPrefix) - 1));
    }
  };
  auto on_progress_line = [&](const std::string& line) { HandleProgressLine(line); };

  // Reads what is available on `*fd`; closes it at EOF. Returns whether data was read.
  char buffer[16384];
  auto pump = [&](int* fd) {
    ssize_t n = read(*fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
      CloseFd(fd);
      return;
    }
    if (fd == &stdout_fd_ || fd == &stderr_fd_) WriteAll(log_fd_, buffer, n);
    if (fd == &stdout_fd_) {
      split_lines(&stdout_line, &stdout_line_too_long, buffer, n, on_stdout_line);
    } else if (fd == &stderr_fd_) {
      stderr_tail.append(buffer, n);
      if (stderr_tail.size() > 2 * kStderrTailBytes) {
        stderr_tail.erase(0, stderr_tail.size() - kStderrTailBytes);
      }
    } else {
      split_lines(&progress_line, &progress_too_long, buffer, n, on_progress_line);
    }
  };

  int wait_status = 0;
  absl::Time drain_deadline = absl::InfiniteFuture();
  while (true) {
    const bool pipes_open = stdout_fd_ >= 0 || stderr_fd_ >= 0 || progress_fd_ >= 0;
    if (reaped_ && (!pipes_open || absl::Now() >= drain_deadline)) break;

    absl::Time wake_at = absl::Now() + absl::Milliseconds(100);
    {
      absl::MutexLock lock(&mu_);
      if (!reaped_ && absl::Now() >= kill_deadline_) {
        kill(-pid_, SIGKILL);
        kill_deadline_ = absl::InfiniteFuture();
      }
      wake_at = std::min(wake_at, kill_deadline_);
    }
    if (reaped_) wake_at = std::min(wake_at, drain_deadline);

    pollfd fds[4];
    int* owners[4];
    int count = 0;
    for (int* fd : {&stdout_fd_, &stderr_fd_, &progress_fd_, &wake_read_fd_}) {
      if (*fd < 0) continue;
      fds[count] = {*fd, POLLIN, 0};
      owners[count++] = fd;
    }
    const int timeout_ms = static_cast<int>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(wake_at - absl::Now()) + 1));
    int ready = poll(fds, count, timeout_ms);
    if (ready > 0) {
      for (int i = 0; i < count; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        if (owners[i] == &wake_read_fd_) {
          char drain[64];
          while (read(wake_read_fd_, drain, sizeof(drain)) > 0) {
          }
        } else {
          pump(owners[i]);
        }
      }
    }

    if (!reaped_) {
      pid_t done = waitpid(pid_, &wait_status, WNOHANG);
      if (done == pid_) {
        absl::MutexLock lock(&mu_);
        reaped_ = true;
        // Stragglers in the job's group would keep the pipes (and a GPU) busy.
        kill(-pid_, SIGKILL);
        drain_deadline = absl::Now() + kDrainAfterExit;
      }
    }
  }
  if (!stdout_line.empty() && !stdout_line_too_long) on_stdout_line(stdout_line);
  if (!progress_line.empty() && !progress_too_long) on_progress_line(progress_line);

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
  CloseFd(&log_fd_);
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
