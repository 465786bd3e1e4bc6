// SlurmAutoscaler: `pcsweep coordinator --slurm-max-workers N` (issue 18). Submits Slurm
// workers while jobs are unfinished and fewer than N of its workers are queued or running, and
// cancels its workers that stayed idle for longer than the idle timeout once they are not
// needed. A control loop beside the coordinator, not part of it: it reads the coordinator's
// state in process (ClusterView) and acts through Slurm's own tools (SlurmBackend).
//
// Each Step():
//   1. reads the coordinator: unfinished jobs (pending, leased or running; pending includes
//      jobs still waiting for their parents) and the workers with their Slurm labels;
//   2. at most once per poll_interval, asks Slurm which of its array tasks it still holds
//      (squeue for the job ids it submitted only; never sacct), also while Slurm fails. When
//      squeue or sbatch fails, nothing is submitted or cancelled until squeue answers again
//      (one warning per outage): a decision on stale counts could submit twice;
//   3. wanted = min(max_workers, ceil(unfinished / slots)); when fewer tasks are queued, one
//      sbatch array of the difference (the new tasks count as queued at once);
//   4. a worker of its own tasks that is alive and runs nothing is idle from the first Step
//      that sees it so; past idle_timeout it is cancelled (scancel of its array task) when
//      nothing is unfinished, or while more tasks are queued than wanted, so that a sweep
//      waiting on a parent job does not make it cancel and resubmit in turn.
//
// Thread-safety: not thread-safe; one thread calls Step() (AutoscalerThread runs it every
// second until stopped). Time comes from the injected Clock.
#ifndef PCSWEEP_TOOLS_CLI_SLURM_AUTOSCALER_H_
#define PCSWEEP_TOOLS_CLI_SLURM_AUTOSCALER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "coordinator/scheduler.h"

namespace pcsweep::cli {

struct WorkerLoad {
  std::string slurm_task;  // its slurm_job_id label ("<job>_<task>"); "" if not from Slurm
  bool alive = false;
  int running = 0;  // jobs it holds
};

struct ClusterLoad {
  int unfinished_jobs = 0;
  std::vector<WorkerLoad> workers;
};

// The coordinator's state as the autoscaler needs it.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  virtual ClusterLoad Read() = 0;
};

// The view of a scheduler in this process: unfinished = pending + leased + running over every
// sweep; workers with their slurm_job_id label. `scheduler` must outlive the view.
std::unique_ptr<ClusterView> MakeSchedulerClusterView(const coordinator::Scheduler& scheduler);

// Slurm as the autoscaler drives it; the real one calls SubmitSlurmWorkers, QueuedSlurmTasks
// and CancelSlurmTask (slurm_command.h), tests use a fake.
class SlurmBackend {
 public:
  virtual ~SlurmBackend() = default;
  // Submits one array of `workers` tasks; returns its job id.
  virtual absl::StatusOr<std::string> Submit(int workers) = 0;
  // The tasks of `job_ids` that Slurm still holds (pending or running).
  virtual absl::StatusOr<std::set<std::string>> Queued(const std::vector<std::string>& job_ids) = 0;
  virtual absl::Status Cancel(const std::string& task) = 0;
};

struct AutoscalerOptions {
  int max_workers = 0;  // at least 1
  int slots = 1;        // per worker, as submitted
  absl::Duration idle_timeout = absl::Minutes(5);
  absl::Duration poll_interval = absl::Seconds(10);  // squeue at most this often
};

class SlurmAutoscaler {
 public:
  // `view` and `backend` are not owned and must outlive the autoscaler; so must `clock`.
  SlurmAutoscaler(AutoscalerOptions options, ClusterView* view, SlurmBackend* backend,
                  Clock* clock);

  // One round of the loop above. Returns what it did, one line per action ("" for nothing);
  // errors of Slurm are logged and retried, never returned.
  std::string Step();

  int queued_tasks() const { return static_cast<int>(queued_.size()); }
  const std::vector<std::string>& submitted_jobs() const { return jobs_; }

 private:
  // Refreshes queued_ when the last answer is older than poll_interval. Returns whether the
  // counts are fresh enough to act on.
  bool RefreshQueue(absl::Time now, std::string& actions);
  bool Ours(const std::string& task) const;

  const AutoscalerOptions options_;
  ClusterView* const view_;
  SlurmBackend* const backend_;
  Clock* const clock_;
  std::vector<std::string> jobs_;  // array job ids it submitted
  std::set<std::string> queued_;   // their tasks Slurm holds (plus ones submitted since)
  absl::Time last_poll_ = absl::InfinitePast();
  bool slurm_failing_ = false;
  std::map<std::string, absl::Time> idle_since_;  // by task
};

// A SlurmAutoscaler that owns its view and backend and runs Step() every `period` on its own
// thread, logging what it did, until destroyed (the workers it started stay: `pcsweep slurm
// down --dir` cancels them).
class AutoscalerThread {
 public:
  static std::unique_ptr<AutoscalerThread> Start(AutoscalerOptions options,
                                                 std::unique_ptr<ClusterView> view,
                                                 std::unique_ptr<SlurmBackend> backend,
                                                 Clock* clock = Clock::Real(),
                                                 absl::Duration period = absl::Seconds(1));
  virtual ~AutoscalerThread() = default;
};

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_SLURM_AUTOSCALER_H_
