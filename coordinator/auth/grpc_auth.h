// The gRPC adapter of coordinator/auth/identity.h: server credentials (plain or TLS, with or
// without required client certificates) carrying one auth check that runs on every call of
// every service (Coordinator, server reflection, anything registered later) when its
// initial metadata arrives, before any request message is read. The check authenticates the
// bearer token or the verified client certificate, refuses methods outside the caller's
// role (PERMISSION_DENIED). The standard health service (/grpc.health.v1.Health/) answers
// without credentials.
//
// gRPC hands the check the connection's AuthContext, shared by every call on that
// connection, so the check attaches nothing to it: a service that needs the identity (worker
// name ownership) asks CallIdentity(), which authenticates the call's own metadata again.
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

// The identity of this call: its bearer token, else its connection's verified client
// certificate, as `authenticator` sees them (the same decision as the transport check).
// Possible errors: as Authenticator::Authenticate.
absl::StatusOr<Identity> CallIdentity(const grpc::ServerContextBase& context,
                                      const Authenticator& authenticator);

}  // namespace pcsweep::coordinator::auth

#endif  // PCSWEEP_COORDINATOR_AUTH_GRPC_AUTH_H_
