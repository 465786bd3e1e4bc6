// WorkerDaemon: a worker process in one object. Registers with the coordinator, leases jobs
// into N slots, runs each in a child process, forwards progress in heartbeats, and reports
// results through an on-disk spool so that nothing is lost while the coordinator is down.
//
// Lifecycle: Start() -> (working) -> Shutdown() -> destroyed. Shutdown stops leasing, sends
// SIGTERM (then SIGKILL after kill_grace) to running children and flushes what it can.
// Thread-safety: all methods are thread-safe.
#ifndef PCSWEEP_WORKER_WORKER_DAEMON_H_
#define PCSWEEP_WORKER_WORKER_DAEMON_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pcsweep {

struct WorkerOptions {
  std::string coordinator = "127.0.0.1:50551";
  int slots = 1;
  std::vector<int> gpus;          // one GPU per slot via CUDA_VISIBLE_DEVICES; empty = CPU slots
  std::string work_dir = "pcsweep-work";  // job output dirs, logs and the result spool
  std::string name;               // stable worker name; default "<host>:<pid>"
  std::string token_file;
  std::string tls_ca_file;
  std::string runner_path;        // pcsweep-run for ML job kinds; default: beside this binary
  absl::Duration acquire_wait = absl::Seconds(10);  // long-poll length
  absl::Duration kill_grace = absl::Seconds(10);    // SIGTERM -> SIGKILL
};

class WorkerDaemon {
 public:
  // Possible errors: InvalidArgument (bad options), NotFound (token/CA file missing).
  // Does not fail when the coordinator is down: it keeps trying to register.
  static absl::StatusOr<std::unique_ptr<WorkerDaemon>> Start(const WorkerOptions& options);

  virtual ~WorkerDaemon() = default;
  virtual void Shutdown() = 0;
  virtual void Wait() = 0;
};

}  // namespace pcsweep

#endif  // PCSWEEP_WORKER_WORKER_DAEMON_H_
