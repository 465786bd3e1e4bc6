#include "tools/cli/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace pcsweep::cli {
namespace {

constexpr size_t kMaxCapturedBytes = 1 << 20;

// Reads what `fd` holds now into `*text` (keeping at most kMaxCapturedBytes); false at EOF
// or on a read error.
bool DrainSome(int fd, std::string* text) {
  char buffer[4096];
  const ssize_t n = ::read(fd, buffer, sizeof(buffer));
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  const size_t room = kMaxCapturedBytes - std::min(kMaxCapturedBytes, text->size());
  text->append(buffer, std::min(room, static_cast<size_t>(n)));
  return true;
}

// Collects the child's two pipes until both end or `deadline` passes (then false).
bool CollectOutput(int out_fd, int err_fd, absl::Time deadline, ProcessResult* result) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result->out, &result->err};
  int open_count = 2;
  while (open_count > 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    const int ready = ::poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) return false;
    for (int i = 0; i < 2 && ready > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      if (!DrainSome(fds[i].fd, sinks[i])) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  return true;
}

int WaitForChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Starts `path` with its stdout and stderr on the write ends of `out_pipe` / `err_pipe`.
absl::StatusOr<pid_t> SpawnChild(const std::string& path, const std::vector<std::string>& args,
                                 const int out_pipe[2], const int err_pipe[2]) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return absl::InternalError(absl::StrCat("cannot run ", path, ": ", strerror(rc)));
  return pid;
}

}  // namespace

absl::StatusOr<std::string> FindOnPath(const std::string& name, const std::string& path_env) {
  for (absl::string_view dir : absl::StrSplit(path_env, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return absl::NotFoundError(absl::StrCat(name, " not found on PATH"));
}

absl::StatusOr<ProcessResult> RunProcess(const std::string& path,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<pid_t> pid = SpawnChild(path, args, out_pipe, err_pipe);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult result;
  bool in_time = false;
  if (pid.ok()) in_time = CollectOutput(out_pipe[0], err_pipe[0], deadline, &result);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (!pid.ok()) return pid.status();
  if (!in_time) ::kill(*pid, SIGKILL);
  result.exit_code = WaitForChild(*pid);
  if (!in_time) {
    return absl::DeadlineExceededError(
        absl::StrCat(path, " did not finish within ", absl::FormatDuration(timeout), " (killed)"));
  }
  return result;
}

}  // namespace pcsweep::cli
