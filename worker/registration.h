// Registration: the worker's standing with the coordinator. Registers (on the leasing thread's
// call), keeps the registration alive with heartbeats on its own thread (they carry the
// progress of every held job and bring back cancel orders), and learns from the answers that
// the coordinator forgot this worker (register again) or that another process took its name
// (stop for good).
//
// States (RegistrationState) and what moves them:
//
//               Register() fails, to be retried (logged once; further failures stay there)
//        +--------------------------------------------------+
//        |                                                  v
//   kUnregistered --Register() OK--> kRegistered <--OK--- kRetrying
//      ^   |                          |      |                 |
//      |   |                          |      | Aborted [3]     |
//      +---|--- coordinator forgot ---+      v                 |
//          |    us [1]                  kSuperseded            |
//          |                                 | forgot us [1]   |
//          |    refused for good [2]         v                 |
//          +---------------------------->  kHalted  <----------+ refused for good [2]
//
//   [1] A heartbeat answered reregister, FailedPrecondition or NotFound, or ConfirmCurrent()
//       got reregister (the coordinator restarted, or expired this worker).
//   [2] Register() answered PermissionDenied or Unauthenticated (halt_reason() says which),
//       or a heartbeat answered Aborted [3] while not registered.
//   [3] A heartbeat (the regular one or ConfirmCurrent()'s) answered Aborted: a newer process
//       registered under this worker's name.
//   kHalted is final: a Register() still in flight when the worker halted only records the
//   worker id.
//
// kSuperseded and kHalted are the halted states: the worker stops (the daemon stops leasing
// and its jobs; heartbeats end). kSuperseded keeps the last registration's identity, under
// which the jobs' results are still given back (the coordinator fences them); in kHalted there
// is none to send them under. registered() is true in kRegistered and kSuperseded.
//
// Ownership: owns the heartbeat thread; shares the client. Callbacks are owned, and are always
// invoked without this object's lock held (they may call back into it).
// Thread-safety: all methods are thread-safe. Register() is meant for one thread (the leasing
// thread), ConfirmCurrent() for the reporting thread; the heartbeat thread is internal.
#ifndef PCSWEEP_WORKER_REGISTRATION_H_
#define PCSWEEP_WORKER_REGISTRATION_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "pcsweep/v1/coordinator.pb.h"
#include "worker/coordinator_client.h"

namespace pcsweep::worker {

enum class RegistrationState { kUnregistered, kRetrying, kRegistered, kSuperseded, kHalted };

// What the registration asks of the rest of the worker. All must be set.
struct RegistrationCallbacks {
  // Everything the coordinator should consider this worker's: running children and results
  // not acknowledged yet (their lease must not expire before the report gets through).
  // Listed in every registration (as `running`) and heartbeat (as `jobs`).
  std::function<std::vector<v1::JobProgress>()> held_jobs;
  // Cancel orders from a registration or heartbeat answer.
  std::function<void(const google::protobuf::RepeatedPtrField<v1::JobRef>&)> obey_cancels;
  // Once, when the registration enters a halted state: stop the jobs. Runs before on_changed.
  std::function<void()> on_halt;
  // After every change of state() or worker_id().
  std::function<void()> on_changed;
};

class Registration {
 public:
  static constexpr absl::Duration kDefaultHeartbeat = absl::Seconds(5);

  // `name` is the worker name (for messages); `incarnation_id` goes into every heartbeat.
  // `clock` is not owned and must outlive this; `clock_poll` as in WorkerDependencies.
  Registration(std::string name, std::string incarnation_id,
               std::shared_ptr<CoordinatorClient> client, Clock* clock, absl::Duration clock_poll,
               RegistrationCallbacks callbacks);
  // Stops the heartbeat thread.
  ~Registration();
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  // Sends one registration: `request` with its `running` filled from held_jobs. On success
  // takes the worker id and heartbeat interval, obeys the answer's cancel orders and returns
  // true. Returns false when it failed: a refused credential or a name owned by another
  // identity halts (PermissionDenied, Unauthenticated: halt_reason() says why); any other
  // error is worth a retry (the first of a series is logged).
  bool Register(v1::RegisterWorkerRequest request) ABSL_LOCKS_EXCLUDED(mu_);

  // Starts the heartbeat thread: while kRegistered it beats every heartbeat interval of the
  // injected clock (and at once after RequestHeartbeat()) until StopHeartbeats() or a halt.
  // Call once.
  void StartHeartbeats() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the heartbeat thread and waits for it (an RPC in flight finishes first). Idempotent;
  // does not change state().
  void StopHeartbeats() ABSL_LOCKS_EXCLUDED(mu_);
  // The next heartbeat goes out now, whatever the clock says (the leasing thread asks this
  // when AcquireJob was refused: the answer tells a restarted coordinator from a newer
  // process under our name).
  void RequestHeartbeat() ABSL_LOCKS_EXCLUDED(mu_);

  // Asks the coordinator, with one heartbeat off the schedule, whether this worker's
  // registration is still current (its cancel orders are left to the regular heartbeats).
  // Possible errors: Unavailable "coordinator asks to register again" (it forgot us: state
  // goes to kUnregistered or kHalted); Aborted (a newer process took our name: halted);
  // whatever else the heartbeat failed with (Unavailable, DeadlineExceeded, ...).
  absl::Status ConfirmCurrent() ABSL_LOCKS_EXCLUDED(mu_);

  RegistrationState state() const ABSL_LOCKS_EXCLUDED(mu_);
  // kRegistered or kSuperseded: there is an identity to report results under.
  bool registered() const ABSL_LOCKS_EXCLUDED(mu_);
  // kSuperseded or kHalted: the worker must stop.
  bool halted() const ABSL_LOCKS_EXCLUDED(mu_);
  // Why the registration was refused for good; OK otherwise (also after Aborted).
  absl::Status halt_reason() const ABSL_LOCKS_EXCLUDED(mu_);
  // The id of the latest successful registration; empty before the first.
  std::string worker_id() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool RegisteredLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HaltedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Heartbeats end: StopHeartbeats() was called or the registration halted.
  bool BeatsEndLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BeatsEndOrRegisteredLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Blocks until a heartbeat is due while kRegistered; false when heartbeats end instead.
  bool AwaitBeatDueLocked(absl::Time next_beat) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void HeartbeatLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Acts on one heartbeat answer; false when heartbeats end (the answer halted us).
  bool ObeyHeartbeatAnswer(const absl::StatusOr<v1::HeartbeatResponse>& response,
                           absl::Time* next_beat) ABSL_LOCKS_EXCLUDED(mu_);
  v1::HeartbeatRequest HeartbeatRequestFor(const std::string& worker_id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  void RecordRegisterFailure(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // The coordinator does not know us (any more): kRegistered -> kUnregistered, kSuperseded ->
  // kHalted; no change otherwise.
  void MarkForgotten() ABSL_LOCKS_EXCLUDED(mu_);
  // Enters the halted state that fits (once; later calls do nothing).
  void Halt(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string name_;
  const std::string incarnation_;
  const std::shared_ptr<CoordinatorClient> client_;
  Clock* const clock_;
  const absl::Duration clock_poll_;
  const RegistrationCallbacks callbacks_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on every change of the fields below
  RegistrationState state_ ABSL_GUARDED_BY(mu_) = RegistrationState::kUnregistered;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = kDefaultHeartbeat;
  absl::Status halt_reason_ ABSL_GUARDED_BY(mu_);
  bool beat_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool heartbeats_stopped_ ABSL_GUARDED_BY(mu_) = false;

  std::thread heartbeat_thread_;
  absl::Mutex stop_mu_;  // serialises StopHeartbeats() callers
};

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_REGISTRATION_H_
