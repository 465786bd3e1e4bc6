// Running a short-lived command-line tool (sbatch, scancel) as a child process and capturing
// what it prints, for `pcsweep slurm` (slurm_command.h).
//
// Thread-safety: the functions use only their arguments; RunProcess may run in several threads
// at once (each child has its own pipes, opened close-on-exec).
#ifndef PCSWEEP_TOOLS_CLI_SUBPROCESS_H_
#define PCSWEEP_TOOLS_CLI_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pcsweep::cli {

// The first executable regular file `name` in the ':'-separated directories of `path_env`
// (empty entries are skipped, not taken as "."). Possible errors: NotFound.
absl::StatusOr<std::string> FindOnPath(const std::string& name, const std::string& path_env);

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // stdout, at most 1 MiB kept
  std::string err;     // stderr, at most 1 MiB kept
};

// Runs `path` (no PATH search) with `args` as argv[1..], stdin from /dev/null, this process's
// environment, no blocked signals and SIGPIPE/SIGINT/SIGTERM at their defaults, and waits for
// it, capturing stdout and stderr. A child whose output has not ended after `timeout` is killed
// (SIGKILL). Possible errors: Internal (no pipe, cannot start `path`), DeadlineExceeded.
absl::StatusOr<ProcessResult> RunProcess(const std::string& path,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_SUBPROCESS_H_
