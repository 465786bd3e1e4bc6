// SlotRunner: the worker's N slots and the jobs running in them. Launch() puts a leased job
// into a free slot and runs it on its own thread as a child process (JobProcess), with the
// slot's GPU as CUDA_VISIBLE_DEVICES; when the child ends its outcome becomes a result for the
// ResultReporter, unless the coordinator had cancelled the job (then nothing is reported: the
// coordinator took it back already). StopAll() (the worker is stopping) cancels every child;
// a job that did not succeed after that is given back (FailJob with `preempted`), not failed.
//
// Per job: Launch() -> [the child starts] -> [cancel order | StopAll()] -> the child ends ->
// its result is enqueued -> the slot is free again and on_job_ended runs -> ReapEndedJobs()
// joins the job's thread.
//
// Ownership: owns the job threads and (shared with nobody else) the JobProcesses; `reporter`
// and `clock` are not owned and must outlive this object. Destroy it only when no job runs
// (StopAll(), AwaitAllEnded()); the destructor then joins what is left.
// Thread-safety: all methods are thread-safe. on_job_ended and the reporter are called without
// this object's lock held; this object calls nothing else while holding its lock (its lock
// may be taken under the daemon's and the registration's callbacks).
#ifndef PCSWEEP_WORKER_SLOT_RUNNER_H_
#define PCSWEEP_WORKER_SLOT_RUNNER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "pcsweep/v1/coordinator.pb.h"
#include "worker/job_process.h"
#include "worker/result_reporter.h"

namespace pcsweep::worker {

struct SlotRunnerOptions {
  std::string name;       // the worker name, for messages
  int slots = 1;          // at least 1
  std::vector<int> gpus;  // slot i gets gpus[i % size]; empty = CPU slots
  std::string work_dir;   // jobs run in <work_dir>/jobs/<job id>/attempt-<n>
  std::string runner_path;
  absl::Duration kill_grace = absl::Seconds(10);  // SIGTERM -> SIGKILL
};

enum class LaunchResult { kStarted, kNoFreeSlot, kStopping };

class SlotRunner {
 public:
  // `on_job_ended` runs on a job's thread after its slot became free. Not null.
  SlotRunner(SlotRunnerOptions options, Clock* clock, ResultReporter* reporter,
             std::function<void()> on_job_ended);
  ~SlotRunner();
  SlotRunner(const SlotRunner&) = delete;
  SlotRunner& operator=(const SlotRunner&) = delete;

  // Starts `assignment` in the lowest free slot. kNoFreeSlot / kStopping (after StopAll()):
  // nothing started; the caller gives the job back.
  LaunchResult Launch(const v1::Assignment& assignment) ABSL_LOCKS_EXCLUDED(mu_);
  // The coordinator took these jobs away: their children are cancelled (SIGTERM, SIGKILL after
  // kill_grace) and their outcomes not reported. Jobs not running here are ignored.
  void ObeyCancels(const google::protobuf::RepeatedPtrField<v1::JobRef>& cancels)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The worker stops: no more launches; every child is cancelled. Idempotent (cancels again).
  void StopAll() ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until no job runs (children end within kill_grace of a cancel).
  void AwaitAllEnded() ABSL_LOCKS_EXCLUDED(mu_);
  // Joins the threads of the jobs that ended.
  void ReapEndedJobs() ABSL_LOCKS_EXCLUDED(mu_);

  int free_slots() const ABSL_LOCKS_EXCLUDED(mu_);
  // Some ended job's thread waits for ReapEndedJobs().
  bool has_unreaped_jobs() const ABSL_LOCKS_EXCLUDED(mu_);
  int running_jobs() const ABSL_LOCKS_EXCLUDED(mu_);
  // The running jobs with their latest progress, as held jobs for heartbeats.
  std::vector<v1::JobProgress> Progress() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct RunningJob {
    v1::Assignment assignment;
    int slot = 0;
    std::shared_ptr<JobProcess> process;  // null until the child has started
    bool cancel_ordered = false;          // the coordinator took the job away
    std::thread thread;
  };

  static std::string KeyOf(const std::string& job_id, int attempt);
  int FreeSlotsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool NothingRunsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A job's thread: runs the child, reports its outcome, frees the slot.
  void RunJob(const std::string& key, const v1::Assignment& assignment, int slot)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the child and waits for it; the outcome of a failed start says why.
  JobOutcome RunChild(const std::string& key, const JobLaunch& launch) ABSL_LOCKS_EXCLUDED(mu_);
  // Enqueues the report for the outcome (none after a cancel order).
  void ReportOutcome(const std::string& key, const v1::Assignment& assignment,
                     const JobOutcome& outcome) ABSL_LOCKS_EXCLUDED(mu_);

  const SlotRunnerOptions options_;
  Clock* const clock_;
  ResultReporter* const reporter_;
  const std::function<void()> on_job_ended_;
  std::vector<std::string> slot_gpu_;  // CUDA_VISIBLE_DEVICES per slot

  mutable absl::Mutex mu_;
  std::vector<bool> slot_busy_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RunningJob> running_ ABSL_GUARDED_BY(mu_);  // by KeyOf()
  std::vector<std::thread> ended_threads_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // StopAll() was called
};

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_SLOT_RUNNER_H_
