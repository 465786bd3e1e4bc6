// Transport setup in one place: channels, server credentials, bearer-token auth, deadlines
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

struct ChannelOptions {
  std::string token;       // bearer token sent as "authorization: Bearer <token>"; empty = none
  std::string tls_ca_pem;  // non-empty = TLS with this root certificate
};

// A channel to `target` ("host:port") with keepalive and 64 MiB message limits.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const ChannelOptions& options);

// Sets the deadline `now + timeout` and the bearer token on a client context.
void PrepareContext(grpc::ClientContext* context, absl::Duration timeout, const std::string& token);

struct ServerOptions {
  std::string listen = "127.0.0.1:50551";  // port 0 picks a free port
  std::string token;                       // required bearer token; empty = no auth
  std::string tls_cert_pem;                // with tls_key_pem: serve TLS
  std::string tls_key_pem;
};

// Server-side check of the bearer token. Returns UNAUTHENTICATED when it is missing or wrong.
grpc::Status CheckToken(const grpc::CallbackServerContext* context, const std::string& token);

// Reads a whole file (token, certificate); the token is trimmed of whitespace.
// Possible errors: NotFound / PermissionDenied naming the file.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace pcsweep::rpc

#endif  // PCSWEEP_COMMON_RPC_RPC_H_
