// WorkerDaemon: a worker process in one object. Registers with the coordinator, leases jobs
// into N slots, runs each in a child process, forwards progress in heartbeats, and reports
// results through an on-disk spool so that nothing is lost while the coordinator is down.
//
// Lifecycle: Start() -> (working) -> Shutdown() -> destroyed. Shutdown stops leasing, sends
// SIGTERM (then SIGKILL after kill_grace) to running children, gives their jobs back to the
// coordinator (preempted: re-queued without spending an attempt) and flushes what it can.
// Thread model: one leasing thread (registration + AcquireJob long-polls), one heartbeat
// thread, one reporting thread (sends spooled results with backoff), and one thread per
// running job. All timing decisions (heartbeat period, backoff) read the injected Clock.
// Reports carry the worker id and incarnation of the current registration at send time, so
// results spooled before a re-registration or by a previous process are re-sent under the
// current identity; the coordinator fences them by (job_id, attempt).
// Parts: Registration (registration.h: registering, heartbeats, superseded/forgotten),
// SlotRunner (slot_runner.h: slots, children, cancel orders, outcomes) and ResultReporter
// (result_reporter.h: spool, reports, what a refusal means); the daemon owns one of each and
// runs the leasing thread.
// Thread-safety: all methods are thread-safe.
#ifndef PCSWEEP_WORKER_WORKER_DAEMON_H_
#define PCSWEEP_WORKER_WORKER_DAEMON_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "pcsweep/v1/coordinator.pb.h"
#include "worker/coordinator_client.h"

namespace pcsweep::worker {

struct WorkerOptions {
  std::string coordinator = "127.0.0.1:50551";
  int slots = 1;
  std::vector<int> gpus;  // one GPU per slot via CUDA_VISIBLE_DEVICES; empty = CPU slots
  std::string work_dir = "pcsweep-work";  // job output dirs, logs and the result spool
  std::string name;  // stable worker name; default: the CN of tls_cert_file, else "<host>:<pid>"
  std::string token_file;
  std::string tls_ca_file;
  std::string tls_cert_file;  // with tls_key_file: client certificate for mTLS; its CN is
                              // the default `name`
  std::string tls_key_file;
  std::string runner_path;  // pcsweep-run for ML job kinds; default: beside this binary
  absl::Duration acquire_wait = absl::Seconds(10);  // long-poll length
  absl::Duration kill_grace = absl::Seconds(10);    // SIGTERM -> SIGKILL
  // Job kinds advertised at registration. Empty = none listed (the coordinator then offers
  // every kind) when runner_path is executable, else just "command".
  std::vector<std::string> kinds;
  // Sent at registration and shown by `pcsweep workers`, e.g. slurm_job_id, slurm_node,
  // slurm_restart_count (the CLI fills them from Slurm's environment).
  std::map<std::string, std::string> labels;
};

// What the daemon talks to and measures time with; tests replace them.
struct WorkerDependencies {
  // Default (null): a GrpcCoordinatorClient to options.coordinator with the token and CA.
  std::shared_ptr<CoordinatorClient> client;
  Clock* clock = Clock::Real();  // not owned; must outlive the daemon
  // Longest real-time wait before the daemon looks at `clock` again. Infinite is right for the
  // real clock; tests with a FakeClock set a few milliseconds so that Advance() is noticed.
  absl::Duration clock_poll = absl::InfiniteDuration();
  // Default (null): `nvidia-smi --query-gpu=index,name,memory.total` when present, else none.
  std::function<std::vector<v1::GpuInfo>()> detect_gpus;
};

class WorkerDaemon {
 public:
  // Possible errors: InvalidArgument (bad options), NotFound (token/CA file missing).
  // Does not fail when the coordinator is down: it keeps trying to register.
  static absl::StatusOr<std::unique_ptr<WorkerDaemon>> Start(const WorkerOptions& options);
  // The same with injected dependencies (a fake coordinator, a fake clock).
  // Possible errors: as above, plus Internal when the spool directory cannot be created.
  static absl::StatusOr<std::unique_ptr<WorkerDaemon>> Start(const WorkerOptions& options,
                                                             WorkerDependencies dependencies);

  // The destructor shuts down and waits.
  virtual ~WorkerDaemon() = default;
  // Stops leasing, terminates running children (SIGTERM, SIGKILL after kill_grace), gives
  // their jobs back (FailJob with `preempted`: re-queued at once, no attempt spent; so is a
  // child that died of SIGTERM up to 2 s before the shutdown, as when Slurm signals every
  // process of its job), and makes one last attempt to send every spooled result;
  // what cannot be sent stays in the spool for the next start. Idempotent; returns when done.
  virtual void Shutdown() = 0;
  // Blocks until Shutdown() has completed (from any thread), or until the daemon stopped by
  // itself because another process registered under the same worker name (superseded(); the
  // owner should then call Shutdown() and exit non-zero).
  virtual void Wait() = 0;
  virtual bool superseded() const = 0;
  // Why the daemon stopped by itself when its registration was refused for good
  // (PermissionDenied: a worker name owned by another identity; Unauthenticated: a bad
  // credential); OK otherwise. superseded() is then true too.
  virtual absl::Status halt_reason() const = 0;

  // The id the coordinator gave at the latest registration; empty before the first.
  virtual std::string worker_id() const = 0;
  // This process's random incarnation id (fixed for the daemon's lifetime).
  virtual std::string incarnation_id() const = 0;
  // Jobs running now, and results written to the spool but not yet acknowledged.
  virtual int running_jobs() const = 0;
  virtual int unacknowledged_results() const = 0;
};

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_WORKER_DAEMON_H_
