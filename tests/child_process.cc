#include "tests/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace pcsweep::testing {
namespace {

void ReadAll(int fd, absl::Mutex* mu, std::string* sink, bool* closed) {
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    absl::MutexLock lock(mu);
    sink->append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (closed != nullptr) {
    absl::MutexLock lock(mu);
    *closed = true;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
    const std::vector<int>& pass_fds) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  // Everything exec needs is prepared before fork: the child may only call async-signal-safe
  // functions (the test process has threads).
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  auto overridden = [&extra_env](absl::string_view entry) {
    const absl::string_view name = entry.substr(0, entry.find('=') + 1);
    for (const std::string& extra : extra_env) {
      if (absl::StartsWith(extra, name)) return true;
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) env_strings.emplace_back(*e);
  }
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);

  // Copies above every target number (3 + i), so that no dup2 below overwrites a source.
  std::vector<int> sources;
  for (int fd : pass_fds) {
    const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3 + static_cast<int>(pass_fds.size()) + 10);
    if (copy < 0) return absl::InternalError(absl::StrCat("fcntl: ", std::strerror(errno)));
    sources.push_back(copy);
  }
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : sources) close(fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    for (size_t i = 0; i < sources.size(); ++i) dup2(sources[i], 3 + static_cast<int>(i));
    // The test runner may block signals in its threads; the child starts with a clean mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(args[0], args.data(), env.data());
    const char message[] = "exec failed\n";
    (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  for (int fd : sources) close(fd);
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess());
  child->pid_ = pid;
  ChildProcess* raw = child.get();
  child->stdout_reader_ =
      std::thread(ReadAll, out_pipe[0], &raw->mu_, &raw->stdout_, &raw->stdout_closed_);
  child->stderr_reader_ = std::thread(ReadAll, err_pipe[0], &raw->mu_, &raw->stderr_, nullptr);
  return child;
}

ChildProcess::~ChildProcess() {
  if (!Exited()) {
    kill(pid_, SIGCONT);  // a SIGSTOPped child must be able to die
    kill(pid_, SIGKILL);
    Reap(/*block=*/true);
  }
  // Grandchildren (jobs) may keep the pipes open a little longer; the readers end with them.
  if (stdout_reader_.joinable()) stdout_reader_.join();
  if (stderr_reader_.joinable()) stderr_reader_.join();
}

void ChildProcess::Reap(bool block) {
  {
    absl::MutexLock lock(&mu_);
    if (exited_) return;
  }
  int status = 0;
  const pid_t result = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (result != pid_) return;
  absl::MutexLock lock(&mu_);
  exited_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool ChildProcess::Exited() {
  Reap(/*block=*/false);
  absl::MutexLock lock(&mu_);
  return exited_;
}

void ChildProcess::Signal(int signal_number) {
  if (!Exited()) kill(pid_, signal_number);
}

absl::StatusOr<std::string> ChildProcess::WaitForStdoutLine(const std::string& needle,
                                                            absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      for (absl::string_view line : absl::StrSplit(stdout_, '\n')) {
        if (line.find(needle) != absl::string_view::npos) return std::string(line);
      }
      if (stdout_closed_) {
        return absl::AbortedError(
            absl::StrCat("process exited before printing '", needle, "'; stderr: ", stderr_));
      }
    }
    if (absl::Now() > deadline) {
      absl::MutexLock lock(&mu_);
      return absl::DeadlineExceededError(absl::StrCat("no line with '", needle, "' after ",
                                                      absl::FormatDuration(timeout),
                                                      "; stdout: ", stdout_, " stderr: ", stderr_));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Exited()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still runs after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  // Let the readers drain what the child wrote before it exited.
  const absl::Time drain_deadline = absl::Now() + absl::Seconds(2);
  while (absl::Now() < drain_deadline) {
    {
      absl::MutexLock lock(&mu_);
      if (stdout_closed_) break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::MutexLock lock(&mu_);
  return exit_code_;
}

std::string ChildProcess::Stdout() {
  absl::MutexLock lock(&mu_);
  return stdout_;
}

std::string ChildProcess::Stderr() {
  absl::MutexLock lock(&mu_);
  return stderr_;
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout,
                                         const std::vector<std::string>& extra_env) {
  auto child = ChildProcess::Start(argv, extra_env);
  if (!child.ok()) return child.status();
  auto code = (*child)->Wait(timeout);
  if (!code.ok()) return code.status();
  CommandResult result;
  result.exit_code = *code;
  result.out = (*child)->Stdout();
  result.err = (*child)->Stderr();
  return result;
}

}  // namespace pcsweep::testing
