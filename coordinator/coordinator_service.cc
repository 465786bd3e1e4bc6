#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/rpc/rpc.h"
#include "common/spec/spec.h"
#include "common/status/status_macros.h"
#include "coordinator/auth/grpc_auth.h"
#include "coordinator/proto_convert.h"
#include "coordinator/watch_reactor.h"

namespace pcsweep::coordinator {
namespace {

// The longest a SubmitSweep may spend expanding its spec on a gRPC thread (the size and edge
// caps keep honest specs far below it).
constexpr std::chrono::seconds kSpecParseBudget(10);
// Room left before the client's own deadline to send the answer back: a parse that would
// finish after the client gave up must not create a sweep the client never hears of.
constexpr std::chrono::milliseconds kAnswerMargin(250);

grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* context,
                                     const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(rpc::ToGrpcStatus(status));
  return reactor;
}

// A long-polling AcquireJob. The scheduler calls back exactly once; that call finishes the
// RPC. A client cancel withdraws the wait, which makes the scheduler call back (empty).
class AcquireReactor final : public grpc::ServerUnaryReactor {
 public:
  struct Shared {
    absl::Mutex mu;
    uint64_t waiter_id ABSL_GUARDED_BY(mu) = 0;
  };

  AcquireReactor(Scheduler* scheduler, v1::AcquireJobResponse* response)
      : scheduler_(scheduler), response_(response), shared_(std::make_shared<Shared>()) {}

  void Begin(const v1::AcquireJobRequest& request) {
    std::shared_ptr<Shared> shared = shared_;  // `this` may be gone when AcquireJob returns
    const uint64_t id =
        scheduler_->AcquireJob(request.worker_id(), request.incarnation_id(), request.free_slots(),
                               absl::Milliseconds(request.wait_ms()),
                               [this](absl::StatusOr<std::vector<Assignment>> assignments) {
                                 if (!assignments.ok()) {
                                   Finish(rpc::ToGrpcStatus(assignments.status()));
                                   return;
                                 }
                                 for (Assignment& a : *assignments) {
                                   ToProto(std::move(a), response_->add_assignments());
                                 }
                                 Finish(grpc::Status::OK);
                               });
    absl::MutexLock lock(&shared->mu);
    shared->waiter_id = id;
  }

  void OnCancel() override {
    uint64_t id = 0;
    {
      absl::MutexLock lock(&shared_->mu);
      id = shared_->waiter_id;
    }
    if (id != 0) scheduler_->CancelAcquire(id);
  }

  void OnDone() override { delete this; }

 private:
  Scheduler* const scheduler_;
  v1::AcquireJobResponse* const response_;
  const std::shared_ptr<Shared> shared_;
};

// Parses each request of a method into its own protobuf arena: one block allocation instead
// of one per row and per string, released at once by FreeRequest() or when the call ends.
template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(std::make_unique<google::protobuf::Arena>(Options())) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(arena_.get()));
      this->set_response(&response_);
    }
    void FreeRequest() override {
      this->set_request(nullptr);
      arena_.reset();
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options() {
      google::protobuf::ArenaOptions options;
      options.start_block_size = 64 << 10;  // about the size of 500 rows
      options.max_block_size = 1 << 20;
      return options;
    }
    std::unique_ptr<google::protobuf::Arena> arena_;
    Response response_;
  };
};

}  // namespace

CoordinatorService::CoordinatorService(Scheduler* scheduler,
                                       std::shared_ptr<const auth::Authenticator> authenticator,
                                       std::string db_path, ComparisonUpdater* comparisons)
    : scheduler_(scheduler),
      authenticator_(std::move(authenticator)),
      complete_allocator_(
          std::make_unique<
              ArenaMessageAllocator<v1::CompleteJobRequest, v1::CompleteJobResponse>>()),
      db_path_(std::move(db_path)),
      comparisons_(comparisons),
      results_queue_(db_path_.empty() ? nullptr : std::make_unique<ResultsQueue>()) {
  SetMessageAllocatorFor_CompleteJob(complete_allocator_.get());
}

absl::Status CoordinatorService::Authorize(const grpc::CallbackServerContext* context,
                                           absl::string_view method,
                                           const std::string* worker_name) {
  absl::StatusOr<auth::Identity> identity = auth::CallIdentity(*context, *authenticator_);
  if (!identity.ok()) return identity.status();
  PCSWEEP_RETURN_IF_ERROR(
      auth::AuthorizeMethod(*identity, absl::StrCat("/pcsweep.v1.Coordinator/", method)));
  if (worker_name != nullptr) {
    PCSWEEP_RETURN_IF_ERROR(auth::AuthorizeWorkerName(*identity, *worker_name));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* CoordinatorService::Refuse(grpc::CallbackServerContext* context,
                                                     absl::string_view method,
                                                     const std::string* worker_name) {
  absl::Status status = Authorize(context, method, worker_name);
  if (status.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(rpc::ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::SubmitSweep(grpc::CallbackServerContext* context,
                                                          const v1::SubmitSweepRequest* request,
                                                          v1::SubmitSweepResponse* response) {
  if (auto* refused = Refuse(context, "SubmitSweep")) return refused;
  const std::string path = request->spec_path().empty() ? "<spec>" : request->spec_path();
  const auto now = std::chrono::system_clock::now();
  const auto limit = std::min(now + kSpecParseBudget, context->deadline() - kAnswerMargin);
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(request->spec_yaml(), path, [&] {
    return context->IsCancelled() || std::chrono::system_clock::now() >= limit;
  });
  if (!spec.ok()) return FinishWith(context, spec.status());
  // Answered from the store's writer thread once the sweep is durable: no gRPC thread waits.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  scheduler_->SubmitAsync(*spec, request->spec_yaml(), request->spec_path(), request->force(),
                          request->idempotency_key(),
                          [reactor, response](absl::StatusOr<SubmitResult> result) {
                            if (result.ok()) {
                              response->set_sweep_id(result->sweep_id);
                              response->set_jobs(result->jobs);
                              response->set_reused(result->reused);
                            }
                            reactor->Finish(rpc::ToGrpcStatus(result.status()));
                          });
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::ListSweeps(grpc::CallbackServerContext* context,
                                                         const v1::ListSweepsRequest* request,
                                                         v1::ListSweepsResponse* response) {
  if (auto* refused = Refuse(context, "ListSweeps")) return refused;
  for (const SweepSummary& s : scheduler_->ListSweeps()) ToProto(s, response->add_sweeps());
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* CoordinatorService::GetSweep(grpc::CallbackServerContext* context,
                                                       const v1::GetSweepRequest* request,
                                                       v1::GetSweepResponse* response) {
  if (auto* refused = Refuse(context, "GetSweep")) return refused;
  auto sweep = scheduler_->GetSweep(request->sweep_id(), request->include_metrics());
  if (!sweep.ok()) return FinishWith(context, sweep.status());
  ToProto(sweep->first, response->mutable_summary());
  for (const JobRecord& job : sweep->second) {
    ToProto(job, request->include_metrics(), response->add_jobs());
  }
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::SweepEvent>* CoordinatorService::WatchSweep(
    grpc::CallbackServerContext* context, const v1::WatchSweepRequest* request) {
  grpc::Status auth = rpc::ToGrpcStatus(Authorize(context, "WatchSweep"));
  absl::StatusOr<std::string> sweep_id = scheduler_->ResolveSweepId(request->sweep_id());
  auto* reactor = new WatchReactor(scheduler_, sweep_id.ok() ? *sweep_id : request->sweep_id(),
                                   request->after_seq());
  if (!auth.ok()) {
    reactor->Refuse(auth);
  } else if (!sweep_id.ok()) {
    reactor->Refuse(rpc::ToGrpcStatus(sweep_id.status()));
  } else {
    reactor->Start();
  }
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::CancelSweep(grpc::CallbackServerContext* context,
                                                          const v1::CancelSweepRequest* request,
                                                          v1::CancelSweepResponse* response) {
  if (auto* refused = Refuse(context, "CancelSweep")) return refused;
  absl::StatusOr<int> n = scheduler_->CancelSweep(request->sweep_id());
  if (n.ok()) response->set_cancelled(*n);
  return FinishWith(context, n.status());
}

grpc::ServerUnaryReactor* CoordinatorService::RetryFailed(grpc::CallbackServerContext* context,
                                                          const v1::RetryFailedRequest* request,
                                                          v1::RetryFailedResponse* response) {
  if (auto* refused = Refuse(context, "RetryFailed")) return refused;
  absl::StatusOr<int> n = scheduler_->RetryFailed(request->sweep_id());
  if (n.ok()) response->set_retried(*n);
  return FinishWith(context, n.status());
}

grpc::ServerUnaryReactor* CoordinatorService::ListWorkers(grpc::CallbackServerContext* context,
                                                          const v1::ListWorkersRequest* request,
                                                          v1::ListWorkersResponse* response) {
  if (auto* refused = Refuse(context, "ListWorkers")) return refused;
  for (const WorkerStatus& w : scheduler_->ListWorkers()) ToProto(w, response->add_workers());
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* CoordinatorService::GetJob(grpc::CallbackServerContext* context,
                                                     const v1::GetJobRequest* request,
                                                     v1::GetJobResponse* response) {
  if (auto* refused = Refuse(context, "GetJob")) return refused;
  auto job = scheduler_->GetJob(request->job_id());
  if (!job.ok()) return FinishWith(context, job.status());
  ToProto(job->first, /*include_results=*/true, response->mutable_job());
  for (const AttemptRecord& a : job->second) ToProto(a, response->add_attempts());
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* CoordinatorService::GetResults(grpc::CallbackServerContext* context,
                                                         const v1::GetResultsRequest* request,
                                                         v1::GetResultsResponse* response) {
  if (auto* refused = Refuse(context, "GetResults")) return refused;
  absl::StatusOr<ResultsReportRequest> parsed = FromProto(*request);
  if (!parsed.ok()) return FinishWith(context, parsed.status());
  if (results_queue_ == nullptr) {
    return FinishWith(context, absl::FailedPreconditionError(
                                   "this coordinator has no database file to render results "
                                   "from; run `pcsweep results` with --db FILE"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool queued =
      results_queue_->TrySchedule([db_path = db_path_, comparisons = comparisons_,
                                   report_request = *std::move(parsed), reactor, response] {
        absl::StatusOr<ResultsReport> report =
            RenderResultsReport(db_path, report_request, comparisons);
        if (report.ok()) {
          response->set_sweep_id(report->sweep_id);
          response->set_text(std::move(report->text));
          for (std::string& note : report->notes) response->add_notes(std::move(note));
        }
        reactor->Finish(rpc::ToGrpcStatus(report.status()));
      });
  if (!queued) {
    reactor->Finish(rpc::ToGrpcStatus(absl::ResourceExhaustedError(
        "the coordinator is busy rendering other results; try again shortly")));
  }
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::RegisterWorker(
    grpc::CallbackServerContext* context, const v1::RegisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  // The name the scheduler registers under (scheduler.h: the name, else the host, else the
  // incarnation): a worker credential may claim only its own.
  const std::string& claimed = !request->worker_name().empty() ? request->worker_name()
                               : !request->host().empty()      ? request->host()
                                                               : request->incarnation_id();
  if (auto* refused = Refuse(context, "RegisterWorker", &claimed)) return refused;
  std::vector<JobRef> running;
  for (const v1::JobRef& r : request->running()) running.push_back(FromProto(r));
  absl::StatusOr<RegisterResult> result = scheduler_->RegisterWorker(FromProto(*request), running);
  if (!result.ok()) return FinishWith(context, result.status());
  response->set_worker_id(result->worker_id);
  response->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(scheduler_->heartbeat_interval()));
  response->set_lease_timeout_ms(absl::ToInt64Milliseconds(scheduler_->lease_timeout()));
  for (const JobRef& r : result->cancel) ToProto(r, response->add_cancel());
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* CoordinatorService::AcquireJob(grpc::CallbackServerContext* context,
                                                         const v1::AcquireJobRequest* request,
                                                         v1::AcquireJobResponse* response) {
  if (auto* refused = Refuse(context, "AcquireJob", &request->worker_id())) return refused;
  auto* reactor = new AcquireReactor(scheduler_, response);
  reactor->Begin(*request);
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::Heartbeat(grpc::CallbackServerContext* context,
                                                        const v1::HeartbeatRequest* request,
                                                        v1::HeartbeatResponse* response) {
  if (auto* refused = Refuse(context, "Heartbeat", &request->worker_id())) return refused;
  std::vector<ProgressReport> reports;
  for (const v1::JobProgress& p : request->jobs()) reports.push_back(FromProto(p));
  absl::StatusOr<HeartbeatResult> result =
      scheduler_->Heartbeat(request->worker_id(), request->incarnation_id(), reports);
  if (!result.ok()) return FinishWith(context, result.status());
  for (const JobRef& r : result->cancel) ToProto(r, response->add_cancel());
  response->set_reregister(result->reregister);
  return FinishWith(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* CoordinatorService::CompleteJob(grpc::CallbackServerContext* context,
                                                          const v1::CompleteJobRequest* request,
                                                          v1::CompleteJobResponse* response) {
  if (auto* refused = Refuse(context, "CompleteJob", &request->worker_id())) return refused;
  JobResult result = FromProto(*request);
  std::string worker_id = request->worker_id();
  std::string incarnation_id = request->incarnation_id();
  std::string job_id = request->job_id();
  const int attempt = request->attempt();
  // Everything is copied out: the request's memory is not needed while the write waits.
  context->GetRpcAllocatorState()->FreeRequest();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  scheduler_->CompleteJob(
      worker_id, incarnation_id, job_id, attempt, std::move(result),
      [reactor](absl::Status status) { reactor->Finish(rpc::ToGrpcStatus(status)); });
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::FailJob(grpc::CallbackServerContext* context,
                                                      const v1::FailJobRequest* request,
                                                      v1::FailJobResponse* response) {
  if (auto* refused = Refuse(context, "FailJob", &request->worker_id())) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  scheduler_->FailJob(FromProto(*request), [reactor](absl::Status status) {
    reactor->Finish(rpc::ToGrpcStatus(status));
  });
  return reactor;
}

}  // namespace pcsweep::coordinator
