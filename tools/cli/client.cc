#include "tools/cli/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/rpc.h"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::cli {
namespace {

class GrpcCoordinatorApi final : public CoordinatorApi {
 public:
  explicit GrpcCoordinatorApi(const ClientOptions& options)
      : options_(options),
        stub_(v1::Coordinator::NewStub(rpc::MakeChannel(
            options.address, rpc::ChannelOptions{options.token, options.tls_ca_pem,
                                                 options.tls_cert_pem, options.tls_key_pem}))) {}

  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(
      const v1::SubmitSweepRequest& request) override {
    return Call(request, &v1::Coordinator::Stub::SubmitSweep);
  }
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps() override {
    return Call(v1::ListSweepsRequest(), &v1::Coordinator::Stub::ListSweeps);
  }
  absl::StatusOr<v1::GetSweepResponse> GetSweep(const v1::GetSweepRequest& request) override {
    return Call(request, &v1::Coordinator::Stub::GetSweep);
  }
  absl::StatusOr<v1::CancelSweepResponse> CancelSweep(const std::string& sweep_id) override {
    v1::CancelSweepRequest request;
    request.set_sweep_id(sweep_id);
    return Call(request, &v1::Coordinator::Stub::CancelSweep);
  }
  absl::StatusOr<v1::RetryFailedResponse> RetryFailed(const std::string& sweep_id) override {
    v1::RetryFailedRequest request;
    request.set_sweep_id(sweep_id);
    return Call(request, &v1::Coordinator::Stub::RetryFailed);
  }
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers() override {
    return Call(v1::ListWorkersRequest(), &v1::Coordinator::Stub::ListWorkers);
  }
  absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& job_id) override {
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    return Call(request, &v1::Coordinator::Stub::GetJob);
  }
  absl::StatusOr<v1::GetResultsResponse> GetResults(const v1::GetResultsRequest& request) override {
    return Call(request, &v1::Coordinator::Stub::GetResults, options_.results_deadline);
  }

  absl::Status WatchSweep(const v1::WatchSweepRequest& request,
                          const SweepEventHandler& on_event) override {
    grpc::ClientContext context;
    // A watch lasts as long as the sweep; only the token is set, with no deadline.
    rpc::PrepareContext(&context, absl::Hours(24 * 365), options_.token);
    std::unique_ptr<grpc::ClientReader<v1::SweepEvent>> reader =
        stub_->WatchSweep(&context, request);
    v1::SweepEvent event;
    while (reader->Read(&event)) {
      if (!on_event(event)) {
        context.TryCancel();
        reader->Finish();  // CANCELLED by us: not an error.
        return absl::OkStatus();
      }
    }
    return DescribeRpcError(rpc::FromGrpcStatus(reader->Finish()), options_.address);
  }

 private:
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(const Request& request,
                                grpc::Status (v1::Coordinator::Stub::*method)(grpc::ClientContext*,
                                                                              const Request&,
                                                                              Response*),
                                absl::Duration deadline = absl::ZeroDuration()) {
    grpc::ClientContext context;
    rpc::PrepareContext(&context,
                        deadline > absl::ZeroDuration() ? deadline : options_.call_deadline,
                        options_.token);
    Response response;
    grpc::Status status = ((*stub_).*method)(&context, request, &response);
    if (!status.ok()) return DescribeRpcError(rpc::FromGrpcStatus(status), options_.address);
    return response;
  }

  const ClientOptions options_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

template <typename T>
absl::StatusOr<T> OrError(const absl::Status& error, T value) {
  if (!error.ok()) return error;
  return value;
}

}  // namespace

std::unique_ptr<CoordinatorApi> MakeGrpcCoordinatorApi(const ClientOptions& options) {
  return std::make_unique<GrpcCoordinatorApi>(options);
}

absl::Status DescribeRpcError(const absl::Status& status, const std::string& address) {
  if (status.ok()) return status;
  if (rpc::IsCoordinatorRefusal(status)) {
    // Sent by a reachable coordinator (e.g. "coordinator cannot write its database: disk
    // full"): its reason, not a transport failure.
    return absl::UnavailableError(
        absl::StrCat("coordinator at ", address, " refused the call: ", status.message()));
  }
  if (absl::IsUnavailable(status)) {
    // A plain-text client talking to a TLS coordinator only sees the socket closed.
    const bool maybe_tls = absl::StrContains(status.message(), "Socket closed");
    return absl::UnavailableError(
        absl::StrCat("cannot reach coordinator at ", address, ": ", status.message(),
                     maybe_tls ? " (if it serves TLS, pass --tls-ca FILE)" : ""));
  }
  if (absl::IsUnauthenticated(status)) {
    return absl::UnauthenticatedError(absl::StrCat("UNAUTHENTICATED: coordinator at ", address,
                                                   " refused the call (", status.message(),
                                                   "); pass --token-file"));
  }
  if (absl::IsPermissionDenied(status)) {
    return absl::PermissionDeniedError(absl::StrCat("PERMISSION_DENIED: coordinator at ", address,
                                                    " refused the call (", status.message(),
                                                    "); use a client credential"));
  }
  return status;
}

absl::StatusOr<v1::SubmitSweepResponse> FakeCoordinatorApi::SubmitSweep(
    const v1::SubmitSweepRequest& request) {
  absl::MutexLock lock(&mu_);
  submitted.push_back(request);
  if (!submit_errors_once.empty()) {
    absl::Status once = submit_errors_once.front();
    submit_errors_once.erase(submit_errors_once.begin());
    return once;
  }
  if (!submit_error.ok()) return submit_error;
  return OrError(error, submit_response);
}

absl::StatusOr<v1::ListSweepsResponse> FakeCoordinatorApi::ListSweeps() {
  absl::MutexLock lock(&mu_);
  v1::ListSweepsResponse response;
  for (const auto& sweep : sweeps) *response.add_sweeps() = sweep.summary();
  return OrError(error, response);
}

absl::StatusOr<v1::GetSweepResponse> FakeCoordinatorApi::GetSweep(
    const v1::GetSweepRequest& request) {
  absl::MutexLock lock(&mu_);
  ++get_sweep_calls;
  if (!error.ok()) return error;
  for (const auto& sweep : sweeps) {
    if (sweep.summary().sweep_id() == request.sweep_id()) return sweep;
  }
  return absl::NotFoundError(absl::StrCat("no sweep ", request.sweep_id()));
}

absl::StatusOr<v1::CancelSweepResponse> FakeCoordinatorApi::CancelSweep(
    const std::string& sweep_id) {
  absl::MutexLock lock(&mu_);
  cancelled.push_back(sweep_id);
  v1::CancelSweepResponse response;
  response.set_cancelled(1);
  return OrError(error, response);
}

absl::StatusOr<v1::RetryFailedResponse> FakeCoordinatorApi::RetryFailed(
    const std::string& sweep_id) {
  absl::MutexLock lock(&mu_);
  retried.push_back(sweep_id);
  v1::RetryFailedResponse response;
  response.set_retried(1);
  return OrError(error, response);
}

absl::StatusOr<v1::ListWorkersResponse> FakeCoordinatorApi::ListWorkers() {
  absl::MutexLock lock(&mu_);
  return OrError(error, workers);
}

absl::StatusOr<v1::GetJobResponse> FakeCoordinatorApi::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  if (!error.ok()) return error;
  for (const auto& job : jobs) {
    if (job.job().job_id() == job_id) return job;
  }
  return absl::NotFoundError(absl::StrCat("no job ", job_id));
}

absl::StatusOr<v1::GetResultsResponse> FakeCoordinatorApi::GetResults(
    const v1::GetResultsRequest& request) {
  absl::MutexLock lock(&mu_);
  results_requests.push_back(request);
  return OrError(error, results_response);
}

absl::Status FakeCoordinatorApi::WatchSweep(const v1::WatchSweepRequest& request,
                                            const SweepEventHandler& on_event) {
  std::vector<v1::SweepEvent> events;
  {
    absl::MutexLock lock(&mu_);
    if (!error.ok()) return error;
    for (const auto& event : watch_events) {
      if (event.seq() > request.after_seq()) events.push_back(event);
    }
  }
  for (const auto& event : events) {
    if (on_watch_event) on_watch_event(event, *this);
    if (!on_event(event)) break;
  }
  return absl::OkStatus();
}

}  // namespace pcsweep::cli
