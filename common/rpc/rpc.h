// Transport setup in one place: channels (plain, TLS, mTLS), bearer tokens on calls, deadlines
// and the only absl::Status <-> grpc::Status bridge. Services and clients include this, the
// logic layers never do.
#ifndef PCSWEEP_COMMON_RPC_RPC_H_
#define PCSWEEP_COMMON_RPC_RPC_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pcsweep::rpc {

// Per-method deadlines for clients. Long-poll and streaming calls add their own wait.
inline constexpr absl::Duration kShortCallDeadline = absl::Seconds(10);
inline constexpr absl::Duration kReportDeadline = absl::Seconds(30);  // Complete/Fail with rows
inline constexpr absl::Duration kLongPollSlack = absl::Seconds(5);

// The largest gRPC message either side sends or accepts (a CompleteJob with its rows is the
// largest; the worker checks its own, smaller caps before sending).
inline constexpr int kMaxMessageBytes = 64 << 20;

struct ChannelOptions {
  std::string token;       // bearer token sent as "authorization: Bearer <token>"; empty = none
  std::string tls_ca_pem;  // non-empty = TLS with this root certificate
  // With tls_ca_pem: the client certificate chain + key presented to a coordinator that
  // requires them (mTLS, --tls-client-ca); its CN names this client or worker.
  std::string tls_cert_pem;
  std::string tls_key_pem;
};

// The arguments every client channel uses: kMaxMessageBytes both ways, keepalive pings, and a
// short reconnect backoff so that a restarted coordinator is found again within seconds.
grpc::ChannelArguments DefaultChannelArguments();

// A channel to `target` ("host:port") with DefaultChannelArguments().
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const ChannelOptions& options);

// Applies the server side of the same settings to `builder`: kMaxMessageBytes both ways and
// accepting the clients' keepalive pings, also while idle.
void ConfigureServerBuilder(grpc::ServerBuilder* builder);

// Sets the deadline `now + timeout` and the bearer token on a client context.
void PrepareContext(grpc::ClientContext* context, absl::Duration timeout, const std::string& token);

// Server-side authentication is coordinator/auth/grpc_auth.h (one check for every service).

// Reads a whole file (token, certificate); the token is trimmed of whitespace.
// Possible errors: NotFound / PermissionDenied naming the file.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// The subject CN of the first certificate in `pem` (a worker's mTLS identity).
// Possible errors: InvalidArgument (not a PEM certificate, or one without a CN).
absl::StatusOr<std::string> CertificateCommonName(const std::string& pem);

// Writes a new random bearer token (64 hex digits from /dev/urandom) to `path`, readable by
// its owner only (0600, replacing any file there), and returns it.
// Possible errors: Internal (no randomness), PermissionDenied (cannot write `path`).
absl::StatusOr<std::string> WriteRandomTokenFile(const std::string& path);

// Whether an UNAVAILABLE came from a coordinator that answered but cannot serve the call (its
// database cannot be written, a submit with the same key is still being recorded): those
// messages start with "coordinator ", gRPC's own transport failures never do. Clients report
// the coordinator's reason instead of "cannot reach".
bool IsCoordinatorRefusal(const absl::Status& status);

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace pcsweep::rpc

#endif  // PCSWEEP_COMMON_RPC_RPC_H_
