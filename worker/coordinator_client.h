// CoordinatorClient: the worker's view of the coordinator's worker-facing RPCs (register,
// lease, heartbeat, report), so that the daemon can run against the real gRPC service or
// against a scripted fake in tests.
//
// GrpcCoordinatorClient speaks pcsweep.v1.Coordinator over one channel with an optional bearer
// token and TLS root certificate; every call carries a deadline (rpc::kShortCallDeadline,
// rpc::kReportDeadline for reports, wait_ms + rpc::kLongPollSlack for AcquireJob).
// FakeCoordinatorClient is an in-memory coordinator for tests: it hands out queued
// assignments, records every request, and can be told to answer UNAVAILABLE, to order
// cancels, to ask for re-registration or to refuse reports as stale.
//
// Thread-safety: all implementations are safe to call from several threads at once.
#ifndef PCSWEEP_WORKER_COORDINATOR_CLIENT_H_
#define PCSWEEP_WORKER_COORDINATOR_CLIENT_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pcsweep/v1/coordinator.pb.h"

namespace pcsweep::worker {

class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;

  // Possible errors: Unavailable (coordinator down), DeadlineExceeded, Unauthenticated.
  virtual absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const v1::RegisterWorkerRequest& request) = 0;
  // Long-poll: returns after request.wait_ms without work at the latest, or earlier when
  // CancelPendingAcquires() is called (then Cancelled).
  // Possible errors: Unavailable, DeadlineExceeded, Cancelled, FailedPrecondition/NotFound
  // (the coordinator does not know this worker incarnation: register again).
  virtual absl::StatusOr<v1::AcquireJobResponse> AcquireJob(
      const v1::AcquireJobRequest& request) = 0;
  // Possible errors: Unavailable, DeadlineExceeded, Aborted (a newer process registered under
  // this worker's name: this one must stop).
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) = 0;
  // Possible errors: Unavailable, DeadlineExceeded, FailedPrecondition (stale attempt or
  // unknown incarnation: the report will never be accepted as it is).
  virtual absl::Status CompleteJob(const v1::CompleteJobRequest& request) = 0;
  virtual absl::Status FailJob(const v1::FailJobRequest& request) = 0;

  // Makes AcquireJob calls in flight return Cancelled now (used on shutdown). Later calls
  // behave normally.
  virtual void CancelPendingAcquires() = 0;
};

struct GrpcClientOptions {
  std::string target;        // "host:port"
  std::string token;         // bearer token, empty = none
  std::string tls_ca_pem;    // root certificate, empty = plaintext
  std::string tls_cert_pem;  // with tls_ca_pem: this worker's certificate (mTLS); its CN is
  std::string tls_key_pem;   // the worker's identity, so --name must match it
};

class GrpcCoordinatorClient final : public CoordinatorClient {
 public:
  // Creates the channel; connecting happens lazily on the first call, so this does not fail
  // when the coordinator is down. Possible errors: InvalidArgument (empty target).
  static absl::StatusOr<std::unique_ptr<GrpcCoordinatorClient>> Create(
      const GrpcClientOptions& options);
  ~GrpcCoordinatorClient() override;

  absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const v1::RegisterWorkerRequest& request) override;
  absl::StatusOr<v1::AcquireJobResponse> AcquireJob(const v1::AcquireJobRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::Status CompleteJob(const v1::CompleteJobRequest& request) override;
  absl::Status FailJob(const v1::FailJobRequest& request) override;
  void CancelPendingAcquires() override;

 private:
  struct Impl;
  explicit GrpcCoordinatorClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A scripted in-memory coordinator. Job ids are whatever the test queues.
class FakeCoordinatorClient final : public CoordinatorClient {
 public:
  FakeCoordinatorClient() = default;

  // --- Scripting ---
  // Queues an assignment for the next AcquireJob with a free slot (FIFO).
  void QueueAssignment(const v1::Assignment& assignment);
  // While set, every call answers UNAVAILABLE (and records nothing).
  void SetUnavailable(bool unavailable);
  // The next heartbeat (or registration) answer carries a cancel order for this job.
  void OrderCancel(const std::string& job_id, int attempt);
  // The next heartbeat answer says reregister = true; the fake then forgets the worker, so
  // AcquireJob answers FailedPrecondition until it registers again.
  void RequestReregister();
  // Reports for this job are answered with `status` (e.g. FailedPrecondition) from now on.
  void SetReportStatus(const std::string& job_id, absl::Status status);
  void set_heartbeat_interval(absl::Duration interval);
  // Heartbeats answer `status` (e.g. Aborted: a newer incarnation registered) while not OK.
  void SetHeartbeatStatus(absl::Status status);
  // Registrations answer `status` (e.g. PermissionDenied: a name another identity owns) while
  // not OK, and are not recorded.
  void SetRegisterStatus(absl::Status status);

  // --- Inspection ---
  std::vector<v1::RegisterWorkerRequest> registrations() const;
  std::vector<v1::HeartbeatRequest> heartbeats() const;
  std::vector<v1::CompleteJobRequest> completions() const;
  std::vector<v1::FailJobRequest> failures() const;
  int acquire_calls() const;
  int pending_assignments() const;
  // The largest free_slots any AcquireJob asked with.
  int max_free_slots_seen() const;
  // Blocks (in real time, at most `timeout`) until `predicate` holds; it is evaluated with
  // the fake's lock held after every recorded call. Returns whether it holds.
  bool WaitUntil(const std::function<bool(const FakeCoordinatorClient&)>& predicate,
                 absl::Duration timeout = absl::Seconds(20)) const;

  // --- CoordinatorClient ---
  absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const v1::RegisterWorkerRequest& request) override;
  absl::StatusOr<v1::AcquireJobResponse> AcquireJob(const v1::AcquireJobRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::Status CompleteJob(const v1::CompleteJobRequest& request) override;
  absl::Status FailJob(const v1::FailJobRequest& request) override;
  void CancelPendingAcquires() override;

  // Lock-free accessors for use inside WaitUntil predicates (the lock is already held).
  int completions_locked() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return completions_.size(); }
  int failures_locked() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return failures_.size(); }
  int pending_assignments_locked() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return queue_.size(); }
  int registrations_locked() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return registrations_.size(); }
  const std::vector<v1::HeartbeatRequest>& heartbeats_locked() const
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return heartbeats_;
  }

 private:
  absl::Status ReportStatusLocked(const std::string& job_id, const std::string& incarnation) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::deque<v1::Assignment> queue_ ABSL_GUARDED_BY(mu_);
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  bool reregister_ ABSL_GUARDED_BY(mu_) = false;
  std::string known_incarnation_ ABSL_GUARDED_BY(mu_);
  int next_worker_ ABSL_GUARDED_BY(mu_) = 1;
  int acquire_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int max_free_slots_ ABSL_GUARDED_BY(mu_) = 0;
  int cancel_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  std::vector<v1::JobRef> cancels_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> report_status_ ABSL_GUARDED_BY(mu_);
  absl::Status heartbeat_status_ ABSL_GUARDED_BY(mu_);
  absl::Status register_status_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RegisterWorkerRequest> registrations_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::HeartbeatRequest> heartbeats_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::CompleteJobRequest> completions_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::FailJobRequest> failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_COORDINATOR_CLIENT_H_
