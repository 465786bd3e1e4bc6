// Scheduler: the coordinator's business logic without gRPC. Owns the live state of every
// sweep, job, worker and event log; persists each change through a Store; decides leases.
//
// Job state machine (attempt = number of the current/last lease, starting at 1):
//
//                 parents SUCCEEDED and a worker asks
//     PENDING ------------------------------------------> LEASED --heartbeat lists it--> RUNNING
//       ^  ^                                                |  |                          |  |
//       |  |  lease expired / retryable failure,            |  |   CompleteJob            |  |
//       |  +-- attempts spent < max_attempts, or preempted -+--|--------------------------+  |
//       |                                                      v                             v
//       |  RetryFailed                              SUCCEEDED  <----------- CompleteJob -----+
//       +------------- FAILED  <-- attempts exhausted / not retryable / parent outputs missing
//                      CANCELLED <-- CancelSweep (any unfinished job), or a parent FAILED /
//                                    CANCELLED for good (error "dependency failed: ...")
//   A job whose config_hash already SUCCEEDED (any sweep) goes PENDING -> SUCCEEDED at submit,
//   with reused_from and a copy of the result, unless the submission forces re-runs.
//
// Fencing: every worker report names (job, attempt) and the worker incarnation. It is accepted
// only when the job is LEASED/RUNNING with that attempt, leased to that worker and incarnation;
// otherwise FailedPrecondition, so each cell is recorded exactly once. The incarnation check
// uses the lease, not the worker registry, so a restarted worker (or a worker talking to a
// restarted coordinator) may re-send spooled results under the incarnation that leased them,
// as long as the lease has not been lost. A lapsed lease is still honoured while the job waits
// in PENDING with the same attempt (not re-leased yet): a completion or failure report from
// the same worker, under its current registration, is recorded for that attempt (a result
// finished during a coordinator outage is not run again), and a heartbeat or re-registration
// of that worker listing the attempt resumes the lease. Once the job is re-leased, the
// attempt number moves on and the old attempt is refused.
//
// Preemption: a worker that stops (Slurm preemption or time limit, Ctrl-C) reports its jobs
// with FailureReport::preempted. They go back to PENDING at once, and that attempt is not
// spent: attempts spent = attempt - preemptions, and only those count against max_attempts.
// The attempt number still moves on at the next lease (it is the fencing token). After 20
// give-backs of one job, a further one counts as an ordinary failure, so that a job that takes
// its workers down with it cannot circulate forever.
//
// Leases: a lease lasts lease_timeout from the lease or from the last heartbeat listing the
// job; Tick() expires overdue ones (the attempt fails, the job is retried with attempt + 1 up
// to max_attempts). After a restart, LEASED/RUNNING jobs from the store get one fresh
// lease_timeout + restart_lease_grace so that re-registering workers keep them.
//
// Durability: state changes are applied in memory under a mutex and queued to the store in
// order (the store writes on its own thread; no I/O under the mutex). CompleteJob and FailJob
// call `done` only after their write is committed; a completion whose write fails leaves the
// job as it was (the worker re-sends it). Submit makes its jobs leasable (and its sweep
// visible) only once its transaction committed, and forgets the sweep when it failed. Any
// failed write puts the scheduler in a "store failing" state: Submit and AcquireJob are
// refused with Unavailable ("coordinator cannot write its database: <reason>") and waiting
// long polls get nothing, until a write succeeds again (the next batch, or the probe write
// that Tick() issues while failing).
//
// Thread-safety: all methods are thread-safe. Callbacks (`done`, watchers) are invoked without
// the scheduler's mutex held, possibly on the calling thread or on the store's writer thread;
// they must not block.
#ifndef PCSWEEP_COORDINATOR_SCHEDULER_H_
#define PCSWEEP_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/spec/spec.h"
#include "coordinator/metrics/hooks.h"
#include "coordinator/model.h"
#include "coordinator/store/store.h"

namespace pcsweep::coordinator {

struct SchedulerOptions {
  absl::Duration heartbeat_interval = absl::Seconds(5);  // told to workers
  absl::Duration lease_timeout = absl::Seconds(20);      // lease without heartbeat
  // Extra time for leases restored after a restart: workers retry an unreachable coordinator
  // with a backoff of up to 5 s, so a short lease_timeout alone would expire leases whose
  // workers are alive and about to re-attach.
  absl::Duration restart_lease_grace = absl::Seconds(10);
  Clock* clock = Clock::Real();  // Not owned; must outlive the scheduler.
  // Metrics (GET /metrics); not owned, must outlive the scheduler; null = none. Called with
  // the mutex held (OnLeaseExpired, OnRetryQueued, OnJobFailed) or as `done` runs.
  SchedulerHooks* hooks = nullptr;
  // Called with the id of each sweep that finishes (its last unfinished job ended; again after
  // a retry finishes it once more), without the mutex, like `done`; must not block. The write
  // that records the finish may not be committed yet: Store::Flush() before reading it.
  // Empty = nobody is told.
  std::function<void(const std::string& sweep_id)> on_sweep_finished;
};

struct JobRef {
  std::string job_id;
  int attempt = 0;
  bool operator==(const JobRef& o) const { return job_id == o.job_id && attempt == o.attempt; }
};

// A leased job as handed to a worker.
struct Assignment {
  std::string job_id;
  int attempt = 0;
  std::string sweep_id;
  std::string name;
  std::string kind;
  std::string config_json;  // parents' outputs substituted
  std::map<std::string, std::string> params;
};

struct SubmitResult {
  std::string sweep_id;
  int jobs = 0;
  int reused = 0;
};

struct RegisterResult {
  std::string worker_id;
  std::vector<JobRef> cancel;  // listed running jobs that are no longer this worker's leases
};

struct ProgressReport {
  std::string job_id;
  int attempt = 0;
  double progress = 0;
  std::string message;
  int64_t eta_ms = 0;
};

struct HeartbeatResult {
  std::vector<JobRef> cancel;  // listed jobs the worker must stop
  bool reregister = false;     // the worker is unknown (e.g. the coordinator restarted)
};

struct FailureReport {
  std::string worker_id;
  std::string incarnation_id;
  std::string job_id;
  int attempt = 0;
  std::string error;
  int exit_code = 0;
  int signal = 0;
  std::string stderr_tail;
  bool retryable = true;
  std::string log_path;
  // The worker gave the job back because it is stopping (preemption, time limit, Ctrl-C): the
  // job goes back to PENDING whatever `retryable` says, and the attempt does not count
  // against max_attempts (JobRecord::preemptions).
  bool preempted = false;
};

struct WorkerStatus {
  WorkerRecord worker;
  std::vector<JobRef> running;  // current leases
};

class Scheduler {
 public:
  using AcquireCallback = std::function<void(absl::StatusOr<std::vector<Assignment>>)>;
  using DoneCallback = std::function<void(absl::Status)>;

  // Loads the whole state from `store` (not owned, must outlive the scheduler; the destructor
  // waits for the writes it queued).
  // Possible errors: those of Store::Load (DataLoss, Internal).
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(Store* store, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // --- For users -------------------------------------------------------------------------

  // Records a parsed sweep; cells whose config hash already succeeded are reused unless
  // `force`. Never waits for the store: `done` is called once the sweep is durable (its jobs
  // become leasable only then) or refused, on the calling thread or the store's writer thread.
  // Possible errors: InvalidArgument (no jobs, duplicate or unknown dependency keys),
  // Unavailable (the store could not write it, or a previous write failed and none has
  // succeeded since; nothing was recorded; or a submit with the same key is still being
  // written). A non-empty `idempotency_key` that an earlier submit recorded returns that
  // sweep (its id, job and reuse counts) and records nothing.
  using SubmitCallback = std::function<void(absl::StatusOr<SubmitResult>)>;
  void SubmitAsync(const SweepSpec& spec, const std::string& spec_yaml,
                   const std::string& spec_path, bool force, const std::string& idempotency_key,
                   SubmitCallback done);
  // SubmitAsync, waiting for `done` (tests and tools; not on a gRPC thread).
  // Possible errors: as SubmitAsync.
  absl::StatusOr<SubmitResult> Submit(const SweepSpec& spec, const std::string& spec_yaml,
                                      const std::string& spec_path, bool force,
                                      const std::string& idempotency_key = "");
  // Every sweep, oldest first, without spec text (GetSweepSummary/GetSweep carry it).
  std::vector<SweepSummary> ListSweeps() const;
  // `id_or_name`: a sweep id, or a name (the newest sweep of that name).
  // Possible errors: NotFound.
  absl::StatusOr<SweepSummary> GetSweepSummary(const std::string& id_or_name) const;
  // The sweep's jobs in index order (metrics/outputs only when `include_results`).
  // Possible errors: NotFound.
  absl::StatusOr<std::pair<SweepSummary, std::vector<JobRecord>>> GetSweep(
      const std::string& id_or_name, bool include_results) const;
  // Possible errors: NotFound.
  absl::StatusOr<std::pair<JobRecord, std::vector<AttemptRecord>>> GetJob(
      const std::string& job_id) const;
  // Cancels every unfinished job; workers learn it from their next heartbeat reply.
  // Returns the number of jobs cancelled. Possible errors: NotFound.
  absl::StatusOr<int> CancelSweep(const std::string& id_or_name);
  // FAILED jobs (and the jobs cancelled because of them) become PENDING again, with
  // max_attempts more attempts. Returns the number of jobs re-queued. Possible errors: NotFound.
  absl::StatusOr<int> RetryFailed(const std::string& id_or_name);
  std::vector<WorkerStatus> ListWorkers() const;

  // --- For workers -----------------------------------------------------------------------

  // Registers an incarnation under the stable name `worker.name` (or host when empty). A new
  // incarnation of a known name loses the old one's leases except the (job, attempt) pairs
  // listed in `running` that are still leased to this name, or whose lease lapsed without
  // the job being leased again (they are leased back); listed pairs that are not come back
  // in `cancel`. Possible errors: InvalidArgument (no incarnation id or slots < 1).
  absl::StatusOr<RegisterResult> RegisterWorker(const WorkerRecord& worker,
                                                const std::vector<JobRef>& running);

  // Leases up to `free_slots` ready jobs of kinds the worker runs. When none is ready, waits
  // up to `wait` (measured by the clock, checked by Tick()) and calls `done` once work
  // arrives or the wait ends (with an empty list). Returns a waiter id for CancelAcquire (0
  // when `done` was already called).
  // Possible errors (through `done`): FailedPrecondition (worker/incarnation not registered:
  // register again), InvalidArgument (free_slots < 1), Cancelled (shutting down),
  // Unavailable (the store is failing: see Durability above).
  uint64_t AcquireJob(const std::string& worker_id, const std::string& incarnation_id,
                      int free_slots, absl::Duration wait, AcquireCallback done);
  // Drops a waiting AcquireJob (its client went away); `done` is called with an empty list
  // if it had not been called yet.
  void CancelAcquire(uint64_t waiter_id);

  // Renews the leases of the listed jobs (LEASED -> RUNNING on first report) and records
  // their progress; a listed job whose lease lapsed and that was not leased again is resumed.
  // Possible errors: Aborted (a newer incarnation of this worker registered: this process must stop
  // its jobs and exit or re-register).
  absl::StatusOr<HeartbeatResult> Heartbeat(const std::string& worker_id,
                                            const std::string& incarnation_id,
                                            const std::vector<ProgressReport>& jobs);

  // Records the result; `done` runs once it is durable. Possible errors (through `done`):
  // FailedPrecondition (stale attempt, unknown job or incarnation, job already finished:
  // the worker should drop the report), Unavailable (store failure: re-send later).
  void CompleteJob(const std::string& worker_id, const std::string& incarnation_id,
                   const std::string& job_id, int attempt, JobResult result, DoneCallback done);
  // Records a failed attempt (retried when retryable and attempts remain); `done` runs once
  // it is durable. Possible errors: as CompleteJob.
  void FailJob(const FailureReport& report, DoneCallback done);

  // --- Events ----------------------------------------------------------------------------

  // Events of the sweep with seq > after_seq (at most `max`). `finished` is set when the
  // sweep has no unfinished job and `after_seq` reached its last event.
  // Possible errors: NotFound.
  absl::StatusOr<std::vector<SweepEvent>> EventsAfter(const std::string& sweep_id,
                                                      int64_t after_seq, size_t max,
                                                      bool* finished) const;
  // Registers `on_event`, called once (without the mutex) when the sweep gets an event with
  // seq > after_seq. Returns its id for Unwatch, or 0 WITHOUT registering when such events
  // (or no such sweep) already exist: the caller should read them with EventsAfter.
  uint64_t WatchEvents(const std::string& sweep_id, int64_t after_seq,
                       std::function<void()> on_event);
  void Unwatch(uint64_t watch_id);
  // The sweep id for an id or name. Possible errors: NotFound.
  absl::StatusOr<std::string> ResolveSweepId(const std::string& id_or_name) const;

  // --- Housekeeping ----------------------------------------------------------------------

  // Expires overdue leases and long polls, marks silent workers lost; while the store is
  // failing, writes a probe (the newest sweep's row again) to find out when it recovers.
  // Call periodically.
  void Tick();
  // Completes every waiting AcquireJob with Cancelled and refuses new ones.
  void Shutdown();

  absl::Duration heartbeat_interval() const { return options_.heartbeat_interval; }
  absl::Duration lease_timeout() const { return options_.lease_timeout; }

 private:
  struct Job {
    JobRecord rec;
    std::vector<AttemptRecord> attempts;
    std::vector<std::string> children;
    int unfinished_parents = 0;
    absl::Time lease_deadline = absl::InfinitePast();
    bool completing = false;  // a completion is being written
    // PENDING because its lease expired without a report: that attempt may still report (or
    // be resumed by its worker) until the job is leased again.
    bool lease_lapsed = false;
    bool in_queue = false;  // listed in a ready queue
    bool dependency_cancelled = false;
  };
  struct Sweep {
    SweepRecord rec;
    std::vector<std::string> job_ids;
    int counts[7] = {0, 0, 0, 0, 0, 0, 0};  // by JobState
    int reused = 0;
    std::vector<SweepEvent> events;
    int64_t last_seq = 0;
    // False while Submit's transaction is being written: its jobs are not leasable and the
    // sweep is not listed, so nothing acts on a sweep the database may never hold.
    bool committed = true;
  };
  struct Worker {
    WorkerRecord rec;
    absl::Time last_seen;
  };
  struct Waiter {
    uint64_t id;
    std::string worker_id;
    std::string incarnation_id;
    int free_slots;
    absl::Time deadline;
    AcquireCallback done;
  };
  struct Watcher {
    std::string sweep_id;
    std::function<void()> on_event;
  };
  // Work to do once the mutex is released (callbacks never run under it).
  using Deferred = std::vector<std::function<void()>>;

  Scheduler(Store* store, SchedulerOptions options);
  absl::Status LoadLocked(const StoreSnapshot& snapshot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  int64_t NowMs() const;
  Sweep* FindSweepLocked(const std::string& id_or_name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Sweep* FindSweepLocked(const std::string& id_or_name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `with_spec` false leaves spec_yaml empty (lists must not carry every spec's text).
  SweepSummary SummaryLocked(const Sweep& sweep, bool with_spec = true) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Changes a job's state, keeping the sweep counts, and appends an event + job row to `batch`.
  void SetStateLocked(Job& job, JobState state, const std::string& message, WriteBatch& batch,
                      Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendEventLocked(Sweep& sweep, const Job* job, const std::string& message,
                         WriteBatch& batch, Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckSweepFinishedLocked(Sweep& sweep, WriteBatch& batch, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushReadyLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the current attempt of an active job as `failure` says (its error must be set);
  // re-queues it (preempted, or retryable with attempts left) or fails it for good.
  void FailAttemptLocked(Job& job, const FailureReport& failure, WriteBatch& batch,
                         Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A job reached SUCCEEDED: unblock children.
  void OnSucceededLocked(Job& job, WriteBatch& batch, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A job failed/cancelled for good: cancel its unfinished descendants.
  void CancelDependentsLocked(Job& job, WriteBatch& batch, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leases up to `max` ready jobs to the worker.
  std::vector<Assignment> LeaseLocked(const Worker& worker, const std::string& incarnation_id,
                                      int max, WriteBatch& batch, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Serves waiting long polls when jobs became ready.
  void DispatchLocked(WriteBatch& batch, Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks fencing for a report. Returns the job when it may be recorded.
  absl::StatusOr<Job*> FenceLocked(const std::string& worker_id, const std::string& incarnation_id,
                                   const std::string& job_id, int attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLeaseLocked(Job& job, const std::string& why, WriteBatch& batch, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands a lapsed lease back to its worker: LEASED again under the same attempt.
  void ResumeLapsedLeaseLocked(Job& job, const std::string& worker_id,
                               const std::string& incarnation_id, WriteBatch& batch,
                               Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `batch` (if not empty) in order; a failure puts the scheduler in the "store
  // failing" state (see StoreFailure) instead of being returned.
  void WriteLocked(WriteBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the outcome of a store write: a failure starts the "store failing" state, a
  // success ends it. Takes only the StoreHealth mutex (a store may call back under mu_).
  void NoteWriteOutcome(const absl::Status& status);
  // OK, or Unavailable "coordinator cannot write its database: ..." while the last write
  // failed: submits and leases are refused until a write succeeds again.
  absl::Status StoreFailure() const;
  // Submit's second half, once its transaction is known committed or failed.
  // The in-memory part of SubmitAsync: the sweep and its jobs (not committed yet) and the
  // batch that records them; an empty batch with `result` set for a known idempotency key.
  absl::Status StartSubmitLocked(const SweepSpec& spec, const std::string& spec_yaml,
                                 const std::string& spec_path, bool force,
                                 const std::string& idempotency_key, SubmitResult& result,
                                 WriteBatch& batch, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishSubmitLocked(const std::string& sweep_id, bool committed, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RunDeferred(Deferred& deferred);

  // Constant after construction.
  Store* const store_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  std::unordered_map<std::string, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Sweep> sweeps_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> sweep_order_ ABSL_GUARDED_BY(mu_);  // creation order
  int64_t next_sweep_number_ ABSL_GUARDED_BY(mu_) = 1;
  std::unordered_map<std::string, std::string> succeeded_by_hash_ ABSL_GUARDED_BY(mu_);
  // Submit idempotency key -> sweep id (keys of sweeps being written included).
  std::unordered_map<std::string, std::string> sweep_by_key_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, Worker> workers_ ABSL_GUARDED_BY(mu_);
  // Ready jobs per kind, FIFO by readiness order (entries re-checked when popped).
  std::map<std::string, std::deque<std::pair<uint64_t, std::string>>> ready_ ABSL_GUARDED_BY(mu_);
  uint64_t ready_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool ready_changed_ ABSL_GUARDED_BY(mu_) = false;
  // Jobs holding a lease (LEASED/RUNNING), for Tick().
  std::map<std::string, absl::Time> active_ ABSL_GUARDED_BY(mu_);
  std::list<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::list<Waiter>::iterator> waiter_index_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Watcher> watchers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_callback_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  // The outcome of the last store write. Its own mutex, not mu_: store callbacks may run on
  // the calling thread while it holds mu_. Shared with the callbacks, which may run after
  // the scheduler is gone (the coordinator destroys the store first). Thread-safe.
  struct StoreHealth {
    void Note(const absl::Status& status);  // failure starts the failing state, success ends it
    absl::Mutex mu;
    absl::Status failure ABSL_GUARDED_BY(mu);
  };
  const std::shared_ptr<StoreHealth> store_health_ = std::make_shared<StoreHealth>();
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_SCHEDULER_H_
