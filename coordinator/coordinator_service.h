// CoordinatorService: the gRPC adapter of the Scheduler (callback API). Each method checks the
// caller's identity, converts the request, calls the scheduler and finishes the call; nothing here
// blocks on I/O:
//   - AcquireJob is a long poll: the reactor is completed later by the scheduler (work arrived
//     or wait_ms elapsed) or dropped when the client cancels.
//   - CompleteJob / FailJob finish once the scheduler reports the write durable.
//   - WatchSweep streams the sweep's events after `after_seq` (backlog first, then live) and
//     ends with OK once the sweep is finished and every event was sent (WatchReactor,
//     coordinator/watch_reactor.h).
//   - GetResults renders a paper table or the figure (coordinator/analysis/results_report.h)
//     on the service's ResultsQueue thread, never on a gRPC thread: it reads the database
//     file through its own read-only connection (and may store the comparisons).
// Spec errors of SubmitSweep come back as INVALID_ARGUMENT "PATH:LINE:COL: message"; a spec
// whose expansion outlasts 10 s (or the client's deadline less 250 ms) stops with
// DEADLINE_EXCEEDED and creates no sweep. ListSweeps carries no spec text (GetSweep does). Every
// method checks the caller's identity (coordinator/auth): UNAUTHENTICATED without one,
// PERMISSION_DENIED outside its role or, for worker methods, under another worker's name.
// CompleteJob requests (hundreds of example rows each) are parsed into a per-call protobuf
// arena, freed as soon as the rows are copied into the scheduler's batch.
//
// Requests and answers are converted by coordinator/proto_convert.h.
//
// Thread-safety: thread-safe (gRPC calls methods concurrently).
#ifndef PCSWEEP_COORDINATOR_COORDINATOR_SERVICE_H_
#define PCSWEEP_COORDINATOR_COORDINATOR_SERVICE_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "coordinator/analysis/results_report.h"
#include "coordinator/auth/identity.h"
#include "coordinator/proto_convert.h"  // for code that takes the conversions from here (CLI)
#include "coordinator/scheduler.h"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::coordinator {

class CoordinatorService final : public pcsweep::v1::Coordinator::CallbackService {
 public:
  // `scheduler` is not owned and must outlive the service (and the gRPC server using it).
  // `db_path`: the store's database file, read by GetResults; empty = GetResults answers
  // FAILED_PRECONDITION (e.g. an in-memory store). `comparisons` (not owned, must outlive
  // the service) stores the comparisons GetResults computes through the store; null = a
  // store opened on db_path for each such report (tests without a coordinator's store).
  // `authenticator` decides who the caller is (coordinator/auth); shared with the transport
  // check, which has already refused unknown callers before the service sees the call.
  CoordinatorService(Scheduler* scheduler, std::shared_ptr<const auth::Authenticator> authenticator,
                     std::string db_path = {}, ComparisonUpdater* comparisons = nullptr);

  grpc::ServerUnaryReactor* SubmitSweep(grpc::CallbackServerContext* context,
                                        const v1::SubmitSweepRequest* request,
                                        v1::SubmitSweepResponse* response) override;
  grpc::ServerUnaryReactor* ListSweeps(grpc::CallbackServerContext* context,
                                       const v1::ListSweepsRequest* request,
                                       v1::ListSweepsResponse* response) override;
  grpc::ServerUnaryReactor* GetSweep(grpc::CallbackServerContext* context,
                                     const v1::GetSweepRequest* request,
                                     v1::GetSweepResponse* response) override;
  grpc::ServerWriteReactor<v1::SweepEvent>* WatchSweep(
      grpc::CallbackServerContext* context, const v1::WatchSweepRequest* request) override;
  grpc::ServerUnaryReactor* CancelSweep(grpc::CallbackServerContext* context,
                                        const v1::CancelSweepRequest* request,
                                        v1::CancelSweepResponse* response) override;
  grpc::ServerUnaryReactor* RetryFailed(grpc::CallbackServerContext* context,
                                        const v1::RetryFailedRequest* request,
                                        v1::RetryFailedResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* context,
                                        const v1::ListWorkersRequest* request,
                                        v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request,
                                   v1::GetJobResponse* response) override;
  // Errors: NOT_FOUND (sweep, rows), INVALID_ARGUMENT (report/format), RESOURCE_EXHAUSTED
  // (too many queries queued), FAILED_PRECONDITION (no database file), as RenderResultsReport.
  grpc::ServerUnaryReactor* GetResults(grpc::CallbackServerContext* context,
                                       const v1::GetResultsRequest* request,
                                       v1::GetResultsResponse* response) override;
  grpc::ServerUnaryReactor* RegisterWorker(grpc::CallbackServerContext* context,
                                           const v1::RegisterWorkerRequest* request,
                                           v1::RegisterWorkerResponse* response) override;
  grpc::ServerUnaryReactor* AcquireJob(grpc::CallbackServerContext* context,
                                       const v1::AcquireJobRequest* request,
                                       v1::AcquireJobResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* CompleteJob(grpc::CallbackServerContext* context,
                                        const v1::CompleteJobRequest* request,
                                        v1::CompleteJobResponse* response) override;
  grpc::ServerUnaryReactor* FailJob(grpc::CallbackServerContext* context,
                                    const v1::FailJobRequest* request,
                                    v1::FailJobResponse* response) override;

 private:
  // OK when the call's identity may call `method` and, for worker methods, act as
  // `worker_name`. Repeats the transport check's role decision so that the service is safe
  // behind any server.
  // Possible errors: Unauthenticated (no identity), PermissionDenied (role, worker name).
  absl::Status Authorize(const grpc::CallbackServerContext* context, absl::string_view method,
                         const std::string* worker_name = nullptr);
  // Finishes `context`'s default reactor with Authorize's error; nullptr when it may proceed.
  grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context, absl::string_view method,
                                   const std::string* worker_name = nullptr);

  Scheduler* const scheduler_;
  const std::shared_ptr<const auth::Authenticator> authenticator_;
  // Registered with gRPC in the constructor; lives as long as the service.
  std::unique_ptr<grpc::MessageAllocator<v1::CompleteJobRequest, v1::CompleteJobResponse>>
      complete_allocator_;
  const std::string db_path_;
  ComparisonUpdater* const comparisons_;
  // Declared last: destroyed first, running the reports still queued while the rest lives.
  std::unique_ptr<ResultsQueue> results_queue_;  // null without db_path_
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_COORDINATOR_SERVICE_H_
