// ResultReporter: gets every job result (a CompleteJob or FailJob request) to the coordinator
// exactly as far as the coordinator lets it. A result goes to the on-disk spool first, then
// into an in-memory outbox that one reporting thread sends in order, under the identity of
// the current registration (worker id and incarnation at send time, so that results spooled
// before a re-registration or by a previous process are re-sent as this one), only while the
// worker is registered. A result leaves the outbox and the spool when the coordinator
// acknowledges it or refuses it for good; anything else is retried later, behind the others,
// with a backoff of 100 ms doubling up to 5 s (on the injected clock).
//
// What an answer means (Send):
//   OK                        acknowledged: removed.
//   ResourceExhausted, InvalidArgument
//                             final refusal (too big for the coordinator, or malformed; no
//                             resend can change it). A completion is replaced by a
//                             non-retryable failure of the same attempt, so that neither the
//                             lease nor the outbox keeps the job alive; a failure report so
//                             refused is dropped (the lease then expires at the coordinator).
//   FailedPrecondition        the fence refused it: either the attempt is stale (re-leased,
//                             finished or cancelled meanwhile: drop it), or the coordinator
//                             does not know this incarnation yet (it restarted: keep it until
//                             the re-registration). The answer carries nothing that tells the
//                             two apart, so the reporter asks: Registration::ConfirmCurrent(),
//                             one heartbeat. Current registration -> stale, dropped with a
//                             warning; reregister -> kept (the registration goes back to
//                             kUnregistered and sending waits for the next one); Aborted ->
//                             kept (the worker halts); other errors -> kept, retried.
//   anything else             kept and retried (Unavailable, DeadlineExceeded; a coordinator
//                             refusal such as a full disk is logged as a warning).
//
// Ownership: owns the spool and the reporting thread; shares the client; `registration` is
// not owned and must outlive this object.
// Thread-safety: all methods are thread-safe. The reporting thread calls the registration
// (registered(), worker_id(), ConfirmCurrent()) without this object's lock held, but evaluates
// registration->registered() with it held: the registration must never call into the
// reporter with its own lock held (it does not; see registration.h).
#ifndef PCSWEEP_WORKER_RESULT_REPORTER_H_
#define PCSWEEP_WORKER_RESULT_REPORTER_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "pcsweep/v1/coordinator.pb.h"
#include "worker/coordinator_client.h"
#include "worker/registration.h"
#include "worker/result_spool.h"

namespace pcsweep::worker {

// A failure report that the coordinator does not retry.
v1::FailJobRequest FinalFailure(const std::string& job_id, int attempt, const std::string& log_path,
                                const std::string& error);

class ResultReporter {
 public:
  // `spooled`: what the spool held at start (ResultSpool::LoadAll), sent first in that order.
  // `name` is the worker name (for messages). `clock` is not owned and must outlive this.
  ResultReporter(std::string name, std::string incarnation_id,
                 std::shared_ptr<CoordinatorClient> client, Clock* clock, absl::Duration clock_poll,
                 std::unique_ptr<ResultSpool> spool, std::vector<SpooledResult> spooled,
                 Registration* registration);
  // Stops the reporting thread; what was not sent stays in the spool.
  ~ResultReporter();
  ResultReporter(const ResultReporter&) = delete;
  ResultReporter& operator=(const ResultReporter&) = delete;

  // Starts the reporting thread. Call once.
  void StartSending() ABSL_LOCKS_EXCLUDED(mu_);
  // Writes `result` to the spool (a failure to is logged; the result is then reported from
  // memory only) and queues it for sending. From any thread.
  void Enqueue(SpooledResult result) ABSL_LOCKS_EXCLUDED(mu_);
  // The registration changed: the reporting thread looks again whether it may send.
  void RegistrationChanged() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the reporting thread and waits for it (a send in flight finishes first). Idempotent.
  void StopSending() ABSL_LOCKS_EXCLUDED(mu_);
  // After StopSending(): one last attempt at every queued result, if registered; what fails
  // stays queued and in the spool for the next start.
  void SendRemaining() ABSL_LOCKS_EXCLUDED(mu_);

  // The queued results as held jobs (progress 1, "finished; reporting the result").
  std::vector<v1::JobProgress> Pending() const ABSL_LOCKS_EXCLUDED(mu_);
  int unacknowledged() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void SendLoop() ABSL_LOCKS_EXCLUDED(mu_);
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Blocks until the first queued result may be sent (registered, and `next_try` reached)
  // and returns a copy of it (it stays queued while it is sent); nullopt when stopping.
  std::optional<SpooledResult> AwaitNextLocked(absl::Time next_try)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts the result sent last behind the others, and logs why it is kept.
  void RequeueLocked(SpooledResult result, const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Sends one result under the current identity, with the meaning of the answers given
  // above. OK = acknowledged or refused for good (drop it); an error = keep it.
  absl::Status Send(const SpooledResult& result) ABSL_LOCKS_EXCLUDED(mu_);
  // The RPC itself, with a final refusal of a completion turned into a final failure.
  absl::Status Transmit(const SpooledResult& result, const std::string& worker_id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The FailedPrecondition step: asks the registration whether the refusal is final.
  absl::Status ClassifyFenceRefusal(const SpooledResult& result, const absl::Status& refusal)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveFromSpool(const std::string& key);

  const std::string name_;
  const std::string incarnation_;
  const std::shared_ptr<CoordinatorClient> client_;
  Clock* const clock_;
  const absl::Duration clock_poll_;
  const std::unique_ptr<ResultSpool> spool_;
  Registration* const registration_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on every change below, and by RegistrationChanged()
  std::deque<SpooledResult> outbox_ ABSL_GUARDED_BY(mu_);
  bool sending_stopped_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;
  absl::Mutex stop_mu_;  // serialises StopSending() callers
};

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_RESULT_REPORTER_H_
