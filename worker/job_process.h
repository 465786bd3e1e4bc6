// JobProcess: one attempt of one job, run as a child process in its own process group, with
// its output captured to a log file on disk, its progress lines parsed as they arrive, and
// its result files (metrics.json, examples.jsonl, outputs.json) read after a clean exit.
//
// Child contract, as common/jobfile defines it. Environment: PCSWEEP_OUTPUT_DIR, PCSWEEP_JOB_ID,
// PCSWEEP_ATTEMPT (job_envelope.h), CUDA_VISIBLE_DEVICES (the slot's GPU, "" for CPU slots) and
// PCSWEEP_PROGRESS_FD, an fd on which the job may write progress lines
// {"progress":0.4,"message":"step 40/100","eta_s":12} (progress_line.h); the same lines are
// accepted on stdout when prefixed with "PCSWEEP_PROGRESS ". Kind "command" runs
// `/bin/sh -c <config.command>`; every other kind runs `<runner_path> run --job
// <output_dir>/job.json`, job.json holding the envelope {job_id, attempt, kind, config, params,
// output_dir} (job_envelope.h). After exit 0 the job may leave in its output dir metrics.json,
// examples.jsonl and outputs.json, read and checked as common/jobfile defines them
// (example_row.h, result_files.h); a bad or oversized file fails the job for good.
//
// Ownership: the JobProcess owns the child and its pipes; destroying it while the child runs
// kills the child's process group. After the main process exits, anything left in its group
// is killed too, so that no straggler keeps a GPU or the pipes.
// Thread-safety: Progress() and Cancel() may be called from any thread while one thread is in
// Wait().
#ifndef PCSWEEP_WORKER_JOB_PROCESS_H_
#define PCSWEEP_WORKER_JOB_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/jobfile/example_row.h"

namespace pcsweep::worker {

struct JobLaunch {
  std::string job_id;
  int attempt = 1;
  std::string kind;         // "command" or a pcsweep-run kind
  std::string config_json;  // the job's settings; for "command" it must hold "command"
  std::map<std::string, std::string> params;
  std::string output_dir;            // created if missing; log.txt goes here
  std::string cuda_visible_devices;  // "" for a CPU slot
  std::string runner_path;           // pcsweep-run, for kinds other than "command"
};

struct JobProgressSnapshot {
  double progress = 0;  // 0..1
  std::string message;
  int64_t eta_ms = 0;  // 0 = unknown
};

struct JobOutcome {
  bool succeeded = false;
  bool cancelled = false;  // Cancel() was called before the child ended
  int exit_code = -1;      // -1 when killed by a signal or never started
  int signal = 0;
  std::string error;  // one line, empty on success
  bool retryable = false;
  std::string stderr_tail;  // last ~4 KiB of stderr
  std::string log_path;
  std::map<std::string, double> metrics;
  std::vector<jobfile::ExampleRow> examples;
  std::map<std::string, std::string> outputs;  // always includes "output_dir"
};

class JobProcess {
 public:
  static constexpr size_t kStderrTailBytes = 4096;

  // Creates the output dir, writes job.json for runner kinds, and starts the child.
  // Possible errors: InvalidArgument (config_json not a JSON object, "command" kind without a
  // string "command", runner kind without runner_path), Internal (mkdir, pipe or fork failed,
  // naming the path or call).
  static absl::StatusOr<std::unique_ptr<JobProcess>> Start(const JobLaunch& launch);

  ~JobProcess();
  JobProcess(const JobProcess&) = delete;
  JobProcess& operator=(const JobProcess&) = delete;

  // Latest progress reported by the child.
  JobProgressSnapshot Progress() const;

  // Sends SIGTERM to the child's group now and SIGKILL `grace` later if it still runs.
  // Idempotent; returns at once.
  void Cancel(absl::Duration grace);

  // Forwards output to the log, parses progress, reaps the child and reads its result files.
  // Call once. Blocks until the child has exited.
  JobOutcome Wait();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

 private:
  struct CapturedOutput;  // what Wait() has read from the child so far (job_process.cc)

  JobProcess() = default;

  // Steps of Wait(). Sends SIGKILL to the group once Cancel()'s grace has run out; returns
  // when the next poll must wake up (after the exit, at `drain_deadline` at the latest).
  absl::Time EnforceKillDeadline(absl::Time drain_deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until `wake_at` for output or a Cancel(), and reads what has come.
  void PollPipes(absl::Time wake_at, CapturedOutput* captured);
  // One read from `*fd` (one of the output pipes) into the log and `captured`; closes it at EOF.
  void Pump(int* fd, CapturedOutput* captured);
  // Whether the child has exited (then reaped, its status in `*wait_status`, and its group
  // killed).
  bool ReapIfExited(int* wait_status) ABSL_LOCKS_EXCLUDED(mu_);
  // The outcome of the reaped child, with its result files after a clean exit.
  JobOutcome OutcomeOf(int wait_status, std::string stderr_tail) const ABSL_LOCKS_EXCLUDED(mu_);

  void HandleStdoutLine(const std::string& line);
  void HandleProgressLine(const std::string& line) ABSL_LOCKS_EXCLUDED(mu_);
  void CollectResults(JobOutcome* outcome) const;

  JobLaunch launch_;
  std::string log_path_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int progress_fd_ = -1;
  int log_fd_ = -1;
  int wake_read_fd_ = -1;  // self-pipe: Cancel() wakes Wait()'s poll
  int wake_write_fd_ = -1;
  bool reaped_ = false;

  mutable absl::Mutex mu_;
  JobProgressSnapshot progress_ ABSL_GUARDED_BY(mu_);
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time kill_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_JOB_PROCESS_H_
