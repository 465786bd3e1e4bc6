// A child process for whole-system tests: started with fork/exec, stdout and stderr captured
// by reader threads, every wait bounded. The destructor SIGKILLs and reaps a child that still
// runs, so a failing test never leaves processes behind.
//
// Thread-safety: all methods may be called from any thread.
#ifndef PCSWEEP_TESTS_CHILD_PROCESS_H_
#define PCSWEEP_TESTS_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pcsweep::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with argv, the current environment plus `extra_env` ("K=V", which
  // replaces K's value when the environment has one).
  // `pass_fds[i]` (descriptors of this process, left open here) becomes descriptor 3 + i of
  // the child, e.g. Chromium's --remote-debugging-pipe reads 3 and writes 4.
  // Possible errors: Internal when pipe/fork fails.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
      const std::vector<int>& pass_fds = {});

  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Waits until a line of stdout contains `needle` and returns that line.
  // Possible errors: DeadlineExceeded (with the output so far), Aborted when the child exits.
  absl::StatusOr<std::string> WaitForStdoutLine(const std::string& needle, absl::Duration timeout);

  // Waits for the child to exit; returns its exit code, or 128 + signal when killed.
  // Possible errors: DeadlineExceeded.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  void Signal(int signal_number);
  bool Exited();

  std::string Stdout();
  std::string Stderr();

 private:
  ChildProcess() = default;
  void Reap(bool block);

  pid_t pid_ = -1;
  absl::Mutex mu_;
  std::string stdout_ ABSL_GUARDED_BY(mu_);
  std::string stderr_ ABSL_GUARDED_BY(mu_);
  bool stdout_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  int exit_code_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread stdout_reader_;
  std::thread stderr_reader_;
};

// Runs a command to its end. Possible errors: those of Start and Wait.
struct CommandResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout = absl::Seconds(30),
                                         const std::vector<std::string>& extra_env = {});

}  // namespace pcsweep::testing

#endif  // PCSWEEP_TESTS_CHILD_PROCESS_H_
