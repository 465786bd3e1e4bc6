// The CLI's view of the coordinator: the user-facing RPCs of pcsweep.v1.Coordinator behind an
// interface, so that command logic (commands.h) runs against a real gRPC channel in the
// binary and against FakeCoordinatorApi in unit tests.
//
// Messages are the proto types of proto/pcsweep/v1/coordinator.proto: they are the API's
// vocabulary and what the formatters print.
#ifndef PCSWEEP_TOOLS_CLI_CLIENT_H_
#define PCSWEEP_TOOLS_CLI_CLIENT_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pcsweep/v1/coordinator.pb.h"

namespace pcsweep::cli {

namespace v1 = ::pcsweep::v1;

// Called for every event of a WatchSweep stream; returning false ends the watch.
using SweepEventHandler = std::function<bool(const v1::SweepEvent&)>;

// Thread-safety: implementations are safe to call from several threads.
// Possible errors (every method): Unavailable "cannot reach coordinator at ADDR: ..." when the
// coordinator does not answer; Unauthenticated (missing/wrong token); NotFound (unknown sweep
// or job); InvalidArgument (SubmitSweep: "PATH:LINE:COL: message"); DeadlineExceeded.
class CoordinatorApi {
 public:
  virtual ~CoordinatorApi() = default;
  virtual absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(
      const v1::SubmitSweepRequest& request) = 0;
  virtual absl::StatusOr<v1::ListSweepsResponse> ListSweeps() = 0;
  virtual absl::StatusOr<v1::GetSweepResponse> GetSweep(const v1::GetSweepRequest& request) = 0;
  virtual absl::StatusOr<v1::CancelSweepResponse> CancelSweep(const std::string& sweep_id) = 0;
  virtual absl::StatusOr<v1::RetryFailedResponse> RetryFailed(const std::string& sweep_id) = 0;
  virtual absl::StatusOr<v1::ListWorkersResponse> ListWorkers() = 0;
  virtual absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& job_id) = 0;
  // A paper table or the figure rendered by the coordinator; may take seconds (its own,
  // longer deadline: ClientOptions::results_deadline).
  virtual absl::StatusOr<v1::GetResultsResponse> GetResults(
      const v1::GetResultsRequest& request) = 0;
  // Blocks, delivering events to `on_event` until the server ends the stream (OK) or the
  // handler returns false (OK). There is no overall deadline: a watch lasts as long as the sweep.
  virtual absl::Status WatchSweep(const v1::WatchSweepRequest& request,
                                  const SweepEventHandler& on_event) = 0;
};

struct ClientOptions {
  std::string address = "127.0.0.1:50551";  // host:port
  std::string token;                        // bearer token; empty = none
  std::string tls_ca_pem;                   // non-empty = TLS with this root certificate
  std::string tls_cert_pem;                 // with tls_ca_pem: client certificate (mTLS)
  std::string tls_key_pem;
  absl::Duration call_deadline = absl::Seconds(10);
  absl::Duration results_deadline = absl::Seconds(60);  // GetResults: 50k rows take ~1 s
};

// A gRPC client over one channel (common/rpc MakeChannel). Never fails to construct: an
// unreachable address shows up as Unavailable on the first call.
std::unique_ptr<CoordinatorApi> MakeGrpcCoordinatorApi(const ClientOptions& options);

// Maps a transport failure to the CLI's one-line error: UNAVAILABLE (and a deadline hit while
// connecting) become Unavailable "cannot reach coordinator at ADDR: detail", except an
// UNAVAILABLE the coordinator itself sent (message starting "coordinator ", e.g. its database
// cannot be written): "coordinator at ADDR refused the call: REASON"; other codes keep
// their code and message, Unauthenticated says so and points at --token-file.
absl::Status DescribeRpcError(const absl::Status& status, const std::string& address);

// A scriptable in-memory CoordinatorApi for tests. Set the canned responses (or `error` to fail
// every call); requests are recorded. Thread-safe.
class FakeCoordinatorApi : public CoordinatorApi {
 public:
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(
      const v1::SubmitSweepRequest& request) override;
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps() override;
  absl::StatusOr<v1::GetSweepResponse> GetSweep(const v1::GetSweepRequest& request) override;
  absl::StatusOr<v1::CancelSweepResponse> CancelSweep(const std::string& sweep_id) override;
  absl::StatusOr<v1::RetryFailedResponse> RetryFailed(const std::string& sweep_id) override;
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers() override;
  absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& job_id) override;
  absl::StatusOr<v1::GetResultsResponse> GetResults(const v1::GetResultsRequest& request) override;
  absl::Status WatchSweep(const v1::WatchSweepRequest& request,
                          const SweepEventHandler& on_event) override;

  // Canned data. GetSweep answers from `sweeps` by id (NotFound otherwise); after each
  // delivered watch event, `on_watch_event` (if set) may mutate the fake (e.g. finish jobs).
  absl::Status error = absl::OkStatus();
  v1::SubmitSweepResponse submit_response;
  absl::Status submit_error = absl::OkStatus();
  // Returned (and dropped) by the next SubmitSweep calls, before `submit_error`.
  std::vector<absl::Status> submit_errors_once;
  std::vector<v1::GetSweepResponse> sweeps;
  v1::ListWorkersResponse workers;
  std::vector<v1::GetJobResponse> jobs;
  std::vector<v1::SweepEvent> watch_events;
  v1::GetResultsResponse results_response;  // GetResults' answer (unless `error`)
  std::function<void(const v1::SweepEvent&, FakeCoordinatorApi&)> on_watch_event;

  // Recorded calls.
  std::vector<v1::SubmitSweepRequest> submitted;
  std::vector<std::string> cancelled;
  std::vector<std::string> retried;
  std::vector<v1::GetResultsRequest> results_requests;
  int get_sweep_calls = 0;

 private:
  absl::Mutex mu_;
};

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_CLIENT_H_
