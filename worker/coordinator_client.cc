#include "worker/coordinator_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/rpc.h"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::worker {

// ---------------------------------------------------------------------------------------
// GrpcCoordinatorClient

struct GrpcCoordinatorClient::Impl {
  std::string target;
  std::string token;
  std::unique_ptr<v1::Coordinator::Stub> stub;

  absl::Mutex mu;
  // Long-poll contexts in flight, so that shutdown can cancel them instead of waiting out
  // the poll.
  std::set<grpc::ClientContext*> acquires ABSL_GUARDED_BY(mu);

  absl::Status Annotated(const grpc::Status& status, absl::string_view method) const {
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat(method, " to coordinator ", target, ": ", status.error_message()));
  }
};

GrpcCoordinatorClient::GrpcCoordinatorClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcCoordinatorClient::~GrpcCoordinatorClient() = default;

absl::StatusOr<std::unique_ptr<GrpcCoordinatorClient>> GrpcCoordinatorClient::Create(
    const GrpcClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("coordinator address is empty");
  }
  auto impl = std::make_unique<Impl>();
  impl->target = options.target;
  impl->token = options.token;
  rpc::ChannelOptions channel_options;
  channel_options.token = options.token;
  channel_options.tls_ca_pem = options.tls_ca_pem;
  channel_options.tls_cert_pem = options.tls_cert_pem;
  channel_options.tls_key_pem = options.tls_key_pem;
  impl->stub = v1::Coordinator::NewStub(rpc::MakeChannel(options.target, channel_options));
  return std::unique_ptr<GrpcCoordinatorClient>(new GrpcCoordinatorClient(std::move(impl)));
}

absl::StatusOr<v1::RegisterWorkerResponse> GrpcCoordinatorClient::Register(
    const v1::RegisterWorkerRequest& request) {
  grpc::ClientContext context;
  rpc::PrepareContext(&context, rpc::kShortCallDeadline, impl_->token);
  v1::RegisterWorkerResponse response;
  grpc::Status status = impl_->stub->RegisterWorker(&context, request, &response);
  if (!status.ok()) return impl_->Annotated(status, "RegisterWorker");
  return response;
}

absl::StatusOr<v1::AcquireJobResponse> GrpcCoordinatorClient::AcquireJob(
    const v1::AcquireJobRequest& request) {
  grpc::ClientContext context;
  rpc::PrepareContext(&context, absl::Milliseconds(request.wait_ms()) + rpc::kLongPollSlack,
                      impl_->token);
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->acquires.insert(&context);
  }
  v1::AcquireJobResponse response;
  grpc::Status status = impl_->stub->AcquireJob(&context, request, &response);
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->acquires.erase(&context);
  }
  if (!status.ok()) return impl_->Annotated(status, "AcquireJob");
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> GrpcCoordinatorClient::Heartbeat(
    const v1::HeartbeatRequest& request) {
  grpc::ClientContext context;
  rpc::PrepareContext(&context, rpc::kShortCallDeadline, impl_->token);
  v1::HeartbeatResponse response;
  grpc::Status status = impl_->stub->Heartbeat(&context, request, &response);
  if (!status.ok()) return impl_->Annotated(status, "Heartbeat");
  return response;
}

absl::Status GrpcCoordinatorClient::CompleteJob(const v1::CompleteJobRequest& request) {
  grpc::ClientContext context;
  rpc::PrepareContext(&context, rpc::kReportDeadline, impl_->token);
  v1::CompleteJobResponse response;
  grpc::Status status = impl_->stub->CompleteJob(&context, request, &response);
  if (!status.ok()) return impl_->Annotated(status, "CompleteJob");
  return absl::OkStatus();
}

absl::Status GrpcCoordinatorClient::FailJob(const v1::FailJobRequest& request) {
  grpc::ClientContext context;
  rpc::PrepareContext(&context, rpc::kReportDeadline, impl_->token);
  v1::FailJobResponse response;
  grpc::Status status = impl_->stub->FailJob(&context, request, &response);
  if (!status.ok()) return impl_->Annotated(status, "FailJob");
  return absl::OkStatus();
}

void GrpcCoordinatorClient::CancelPendingAcquires() {
  absl::MutexLock lock(&impl_->mu);
  for (grpc::ClientContext* context : impl_->acquires) context->TryCancel();
}

// ---------------------------------------------------------------------------------------
// FakeCoordinatorClient

namespace {
absl::Status Unavailable() { return absl::UnavailableError("fake coordinator is down"); }
}  // namespace

void FakeCoordinatorClient::QueueAssignment(const v1::Assignment& assignment) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(assignment);
}

void FakeCoordinatorClient::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
}

void FakeCoordinatorClient::OrderCancel(const std::string& job_id, int attempt) {
  absl::MutexLock lock(&mu_);
  v1::JobRef ref;
  ref.set_job_id(job_id);
  ref.set_attempt(attempt);
  cancels_.push_back(ref);
}

void FakeCoordinatorClient::RequestReregister() {
  absl::MutexLock lock(&mu_);
  reregister_ = true;
  known_incarnation_.clear();
}

void FakeCoordinatorClient::SetReportStatus(const std::string& job_id, absl::Status status) {
  absl::MutexLock lock(&mu_);
  report_status_[job_id] = std::move(status);
}

void FakeCoordinatorClient::SetHeartbeatStatus(absl::Status status) {
  absl::MutexLock lock(&mu_);
  heartbeat_status_ = std::move(status);
}

void FakeCoordinatorClient::SetRegisterStatus(absl::Status status) {
  absl::MutexLock lock(&mu_);
  register_status_ = std::move(status);
}

void FakeCoordinatorClient::set_heartbeat_interval(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  heartbeat_interval_ = interval;
}

std::vector<v1::RegisterWorkerRequest> FakeCoordinatorClient::registrations() const {
  absl::MutexLock lock(&mu_);
  return registrations_;
}
std::vector<v1::HeartbeatRequest> FakeCoordinatorClient::heartbeats() const {
  absl::MutexLock lock(&mu_);
  return heartbeats_;
}
std::vector<v1::CompleteJobRequest> FakeCoordinatorClient::completions() const {
  absl::MutexLock lock(&mu_);
  return completions_;
}
std::vector<v1::FailJobRequest> FakeCoordinatorClient::failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}
int FakeCoordinatorClient::acquire_calls() const {
  absl::MutexLock lock(&mu_);
  return acquire_calls_;
}
int FakeCoordinatorClient::pending_assignments() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}
int FakeCoordinatorClient::max_free_slots_seen() const {
  absl::MutexLock lock(&mu_);
  return max_free_slots_;
}

bool FakeCoordinatorClient::WaitUntil(
    const std::function<bool(const FakeCoordinatorClient&)>& predicate,
    absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto holds = [&]() { return predicate(*this); };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

absl::StatusOr<v1::RegisterWorkerResponse> FakeCoordinatorClient::Register(
    const v1::RegisterWorkerRequest& request) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return Unavailable();
  if (!register_status_.ok()) return register_status_;
  registrations_.push_back(request);
  known_incarnation_ = request.incarnation_id();
  reregister_ = false;
  v1::RegisterWorkerResponse response;
  response.set_worker_id(absl::StrCat("w", next_worker_++));
  response.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval_));
  response.set_lease_timeout_ms(4 * absl::ToInt64Milliseconds(heartbeat_interval_));
  for (const v1::JobRef& ref : cancels_) *response.add_cancel() = ref;
  cancels_.clear();
  return response;
}

absl::StatusOr<v1::AcquireJobResponse> FakeCoordinatorClient::AcquireJob(
    const v1::AcquireJobRequest& request) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return Unavailable();
  ++acquire_calls_;
  max_free_slots_ = std::max(max_free_slots_, request.free_slots());
  if (request.incarnation_id() != known_incarnation_) {
    return absl::FailedPreconditionError("unknown worker incarnation");
  }
  const int generation = cancel_generation_;
  auto ready = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return !queue_.empty() || unavailable_ || cancel_generation_ != generation;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(request.wait_ms()));
  if (unavailable_) return Unavailable();
  if (cancel_generation_ != generation) return absl::CancelledError("acquire cancelled");
  v1::AcquireJobResponse response;
  while (!queue_.empty() && response.assignments_size() < request.free_slots()) {
    *response.add_assignments() = queue_.front();
    queue_.pop_front();
  }
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> FakeCoordinatorClient::Heartbeat(
    const v1::HeartbeatRequest& request) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return Unavailable();
  heartbeats_.push_back(request);
  if (!heartbeat_status_.ok()) return heartbeat_status_;
  v1::HeartbeatResponse response;
  if (reregister_ || request.incarnation_id() != known_incarnation_) {
    response.set_reregister(true);
    return response;
  }
  for (const v1::JobRef& ref : cancels_) *response.add_cancel() = ref;
  cancels_.clear();
  return response;
}

absl::Status FakeCoordinatorClient::ReportStatusLocked(const std::string& job_id,
                                                       const std::string& incarnation) const {
  if (unavailable_) return Unavailable();
  if (incarnation != known_incarnation_) {
    return absl::FailedPreconditionError("unknown worker incarnation");
  }
  auto it = report_status_.find(job_id);
  if (it != report_status_.end()) return it->second;
  return absl::OkStatus();
}

absl::Status FakeCoordinatorClient::CompleteJob(const v1::CompleteJobRequest& request) {
  absl::MutexLock lock(&mu_);
  absl::Status status = ReportStatusLocked(request.job_id(), request.incarnation_id());
  if (status.ok()) completions_.push_back(request);
  return status;
}

absl::Status FakeCoordinatorClient::FailJob(const v1::FailJobRequest& request) {
  absl::MutexLock lock(&mu_);
  absl::Status status = ReportStatusLocked(request.job_id(), request.incarnation_id());
  if (status.ok()) failures_.push_back(request);
  return status;
}

void FakeCoordinatorClient::CancelPendingAcquires() {
  absl::MutexLock lock(&mu_);
  ++cancel_generation_;
}

}  // namespace pcsweep::worker
