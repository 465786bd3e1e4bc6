// The gRPC adapter of coordinator/auth/identity.h: server credentials (plain or TLS, with or
// without required client certificates) carrying one auth check that runs on every call of
// every service (Coordinator, server reflection, anything registered later) when its
// initial metadata arrives, before any request message is read. The check authenticates the
// bearer token or the verified client certificate, refuses methods outside the caller's
// role (PERMISSION_DENIED) and attaches the identity to the call's AuthContext, where
// CallIdentity() finds it. The standard health service (/grpc.health.v1.Health/) answers
// without credentials.
//
// Ownership: the credentials share ownership of the Authenticator.
// Thread-safety: the check runs on gRPC threads concurrently; the Authenticator is immutable.
#ifndef PCSWEEP_COORDINATOR_AUTH_GRPC_AUTH_H_
#define PCSWEEP_COORDINATOR_AUTH_GRPC_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/auth/identity.h"

namespace pcsweep::coordinator::auth {

struct TransportSecurity {
  std::string tls_cert_pem;  // with tls_key_pem: serve TLS
  std::string tls_key_pem;
  std::string client_ca_pem;  // require client certificates signed by this CA (needs TLS)
};

// Possible errors: InvalidArgument (a key without a certificate, a client CA without TLS).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportSecurity& security, std::shared_ptr<const Authenticator> authenticator);

// The identity the check attached to this call.
// Possible errors: Unauthenticated (the call did not pass the check, e.g. a server built
// without these credentials).
absl::StatusOr<Identity> CallIdentity(const grpc::ServerContextBase& context);

}  // namespace pcsweep::coordinator::auth

#endif  // PCSWEEP_COORDINATOR_AUTH_GRPC_AUTH_H_
