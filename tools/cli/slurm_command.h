// `pcsweep slurm up|down`: pcsweep workers as one Slurm job array (issue 18).
//
//   slurm up --coordinator HOST:PORT --workers N --slots S [--gpus-per-worker K]
//            [--cpus-per-task C] [--partition P] [--time MINUTES] [--account A]
//            [--sbatch-arg=ARG]... [--token-file F] [--tls-ca F] [--tls-cert F --tls-key F]
//            [--runner F] [--name-prefix P] [--dir FOLDER] [--dry-run]
//   slurm down [--dir FOLDER]
//
// `up` writes FOLDER/worker.sbatch, a job array with one array task per worker (each task runs
// `exec <this pcsweep> worker ...`, so that Slurm's signals reach the worker), submits it with
// one `sbatch --parsable` call, prints the job id on stdout and appends it to FOLDER/jobs.
// Each task's worker is named PREFIX-<array job id>-<array task id>.<restart count> (unique
// per task and incarnation), keeps its work dir (job logs, result spool) in
// FOLDER/work/<array job id>_<array task id> across requeues, and takes its GPUs from Slurm's
// allocation (CUDA_VISIBLE_DEVICES, else SLURM_JOB_GPUS). Slurm logs go to
// FOLDER/logs/<array job id>_<array task id>.{out,err}. `--dry-run` prints the script and
// writes and submits nothing. `down` runs `scancel` on every job id recorded in FOLDER/jobs
// and forgets those it cancelled (or that had already ended).
//
// No secret is written anywhere: the script names the token file, which must be readable by
// its owner only (mode 0600 or 0400), and the worker reads it on the compute node (so FOLDER
// and the token file must be on a file system the nodes share).
//
// Note: every array task has its own worker name, so a per-worker credential for the array is
// a name pattern owning them all: list `worker PREFIX-* SECRET` (default `worker slurm-*
// sha256:...`, see SlurmWorkerNamePattern) in the coordinator's --credentials and pass the
// token whose digest SECRET holds as `slurm up --token-file F`; every task sends that token
// and may act only under names starting with PREFIX-. An exact `worker NAME` line owns one
// name and cannot serve the array; the coordinator's shared --token-file (any worker name) or
// a coordinator without authentication also work. A certificate (--tls-cert) is one name,
// never a pattern, so mTLS identities cannot serve an array of more than one task.
//
// sbatch and scancel are found on PATH and run as child processes (subprocess.h).
//
// Thread-safety: every function uses only its arguments (RunSlurmUp/Down also read PATH and
// write under FOLDER); do not run two of them on one FOLDER at once.
#ifndef PCSWEEP_TOOLS_CLI_SLURM_COMMAND_H_
#define PCSWEEP_TOOLS_CLI_SLURM_COMMAND_H_

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/cli/slurm_autoscaler.h"

namespace pcsweep::cli {

// What `slurm up` submits. Paths may be relative; RunSlurmUp makes them absolute.
struct SlurmUpOptions {
  std::string coordinator;               // HOST:PORT the workers dial
  int workers = 0;                       // array tasks, at least 1
  int slots = 0;                         // `pcsweep worker --slots`, at least 1
  int gpus_per_worker = 0;               // --gres=gpu:K when K > 0
  int cpus_per_task = 0;                 // 0 = one per slot
  std::string partition;                 // "" = the cluster's default
  int time_minutes = 0;                  // --time; 0 = the partition's default
  std::string account;                   // "" = the user's default
  std::vector<std::string> sbatch_args;  // extra #SBATCH lines, e.g. "--mem=16G"
  std::string token_file;                // worker --token-file
  std::string tls_ca_file;               // worker --tls-ca
  std::string tls_cert_file;             // worker --tls-cert (with tls_key_file)
  std::string tls_key_file;              // worker --tls-key
  std::string runner_path;               // worker --runner
  std::string name_prefix = "slurm";
  std::string job_name = "pcsweep-worker";
  std::string dir = "pcsweep-slurm";  // script, job ids, logs, work dirs
  bool dry_run = false;
};

// Seconds before the time limit at which Slurm sends the worker SIGTERM (--signal=B:TERM@90),
// so that it stops its jobs (given back to the coordinator: re-queued, no attempt spent) and
// sends its results before it is killed.
inline constexpr int kSlurmSignalLeadSeconds = 90;

// The credentials-file name pattern that owns every worker name the array of `options` uses
// (PREFIX-<job>-<task>.<restart>): "PREFIX-*", e.g. "slurm-*" by default. Pure.
std::string SlurmWorkerNamePattern(const SlurmUpOptions& options);

// Checks the options that do not touch the file system: counts, the coordinator address and
// values that go on #SBATCH lines (no whitespace or control characters; extra args start with
// '-'). Possible errors: InvalidArgument naming the flag.
absl::Status ValidateSlurmUpOptions(const SlurmUpOptions& options);

// The sbatch script for `options` (which should hold absolute paths) running the worker
// binary `pcsweep_path`. Pure. Possible errors: those of ValidateSlurmUpOptions.
absl::StatusOr<std::string> SlurmWorkerScript(const SlurmUpOptions& options,
                                              const std::string& pcsweep_path);

// `slurm up`: checks the options and credential files (a token or key file readable by others
// is refused), then prints the script (dry run) or submits it once and prints the job id on
// `out` (a note on `err`). Every message starts with "slurm up: ".
// Possible errors: InvalidArgument (options), NotFound (a missing file, sbatch not on PATH),
// PermissionDenied (a token or key file readable by others, FOLDER not writable),
// FailedPrecondition (sbatch refused the job: its stderr), DeadlineExceeded, Internal (sbatch
// printed no job id; the job id could not be recorded: the message says how to cancel it).
absl::Status RunSlurmUp(const SlurmUpOptions& options, const std::string& pcsweep_path,
                        std::ostream& out, std::ostream& err);

// What the coordinator's autoscaler (slurm_autoscaler.h) does through Slurm's own tools, found
// on PATH:
// - SubmitSlurmWorkers: as RunSlurmUp without printing (and never a dry run): writes
//   FOLDER/worker.sbatch, submits it with one sbatch call, appends the id to FOLDER/jobs (so
//   `slurm down` cancels it too) and returns the id. Errors start with "slurm submit: ";
//   possible errors as RunSlurmUp.
// - QueuedSlurmTasks: the array tasks ("<job>_<task>") of `job_ids` that slurmctld still
//   holds, pending or running (`squeue --noheader --array --format=%i --jobs=...`: those jobs
//   only, no accounting). Possible errors: NotFound (no squeue), Unavailable (squeue failed,
//   e.g. slurmctld does not answer), DeadlineExceeded.
// - CancelSlurmTask: `scancel TASK`. Possible errors: NotFound, Unavailable, DeadlineExceeded.
absl::StatusOr<std::string> SubmitSlurmWorkers(const SlurmUpOptions& options,
                                               const std::string& pcsweep_path);
absl::StatusOr<std::set<std::string>> QueuedSlurmTasks(const std::vector<std::string>& job_ids);
absl::Status CancelSlurmTask(const std::string& task);

// `slurm down`: runs `scancel --verbose ID` for each job id in DIR/jobs (its stderr tells a
// cancelled job from one that had already ended: scancel exits 0 for both), prints one line per
// id on `out`, and keeps in the file only the ids scancel failed on. Messages start with
// "slurm down: "; a DIR without job ids is not an error ("nothing to cancel").
// Possible errors: NotFound (DIR missing, scancel not on PATH), InvalidArgument (a line of
// DIR/jobs that is not a job id), FailedPrecondition (scancel failed: its stderr), Internal.
absl::Status RunSlurmDown(const std::string& dir, std::ostream& out);

// The labels a worker registers with when Slurm started it (`pcsweep workers` shows them):
// slurm_job_id ("<array job>_<task>" in an array, else SLURM_JOB_ID), slurm_node
// (SLURMD_NODENAME) and slurm_restart_count (SLURM_RESTART_COUNT, how often it was requeued).
// Empty outside Slurm. `getenv` reads the environment (injectable for tests).
std::map<std::string, std::string> SlurmWorkerLabels(
    const std::function<const char*(const char*)>& getenv);

// Adds the flags that shape the workers' sbatch script (--gpus-per-worker ... --dir, each
// named --PREFIXname) to `app`, bound to `o`: `slurm up` uses prefix "", `coordinator`
// "slurm-". `o` must outlive parsing.
void AddWorkerSbatchFlags(CLI::App& app, SlurmUpOptions& o, const std::string& prefix);

// The SlurmBackend of the autoscaler (slurm_autoscaler.h) on Slurm's own tools: Submit(n) is
// SubmitSlurmWorkers with `options` for n workers, Queued is QueuedSlurmTasks, Cancel is
// CancelSlurmTask. `pcsweep_path` is the binary the script runs.
std::unique_ptr<SlurmBackend> MakeSlurmToolsBackend(SlurmUpOptions options,
                                                    std::string pcsweep_path);

// `pcsweep coordinator --slurm-max-workers N`: the autoscaler's settings.
struct SlurmAutoscaleFlags {
  int max_workers = 0;  // 0: no autoscaler
  double idle_timeout_s = 300;
  double poll_interval_s = 10;
  std::string coordinator;  // HOST:PORT the workers dial; "" = the coordinator's own address
  SlurmUpOptions workers;   // the script's settings; `workers` is set per submission
};

// Adds --slurm-max-workers, --slurm-slots, --slurm-idle-timeout, --slurm-poll-interval,
// --slurm-coordinator and the --slurm-* sbatch flags to the coordinator command.
void AddSlurmAutoscaleFlags(CLI::App& coordinator, SlurmAutoscaleFlags& flags);

// Checks the flags (files as `slurm up` does) and starts the autoscaler on `scheduler`, its
// workers dialling flags.coordinator or else `own_address`. Messages start with
// "--slurm-max-workers: ". Possible errors: as RunSlurmUp's checks.
absl::StatusOr<std::unique_ptr<AutoscalerThread>> StartSlurmAutoscaler(
    const SlurmAutoscaleFlags& flags, const std::string& own_address,
    const coordinator::Scheduler& scheduler);

// Adds `slurm up` and `slurm down` to `app`; a parsed leaf sets `*action` to its run (which
// uses the running binary, /proc/self/exe, in the script). `*action` must outlive parsing.
void AddSlurmCommand(CLI::App& app, std::function<absl::Status()>* action);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_SLURM_COMMAND_H_
