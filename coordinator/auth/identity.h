// Who is calling the coordinator and what they may do: the identity and role decisions behind
// every gRPC call and web request, with no gRPC in sight (the transport adapter in
// coordinator/auth/grpc_auth.h feeds it the bearer token and the verified client-certificate
// names of a call, and the service asks it about worker names).
//
// Credentials:
//   - a credentials file (--credentials FILE), one identity per line:
//         # ROLE   NAME    SECRET
//         worker   gpu-a   sha256:<64 hex digits of SHA-256(token)>
//         worker   gpu-b   token:<the token itself, at least 16 characters>
//         client   alice   sha256:...
//         worker   node-7  cert      # the mTLS client certificate whose CN or DNS SAN is node-7
//     ROLE is `client` (the CLI, the web view) or `worker`; NAME is 1-128 characters of
//     [A-Za-z0-9._:@-]; `#` starts a comment. A worker line's NAME is the only worker name its
//     credential may register, heartbeat or report for. Errors name FILE:LINE.
//     A worker line's NAME may instead be a pattern PREFIX* (one trailing `*`, PREFIX a valid
//     name, SECRET a token): its credential owns every worker name that starts with PREFIX and
//     is longer than PREFIX, e.g. `worker slurm-* sha256:...` for the workers of
//     `pcsweep slurm up` (slurm-<job>-<task>.<restart>). Patterns exist only in this file (a
//     certificate's CN is never a pattern), and no two worker lines may own a common name: a
//     pattern overlapping another pattern or an exact worker name is refused at load time.
//   - a verified mTLS client certificate (--tls-client-ca): its CN (else its first SAN) is the
//     identity's name. Without a credentials file such a certificate is a worker owning its
//     name and a client; with one, the name must be listed with SECRET `cert`.
//   - the legacy shared token (--token-file): client and worker at once, owning no worker name
//     (anyone holding it can act as any worker). It cannot be combined with per-worker
//     identities, which it could impersonate.
//   - no credential configured: every call is allowed (loopback only, or --insecure).
// Tokens are compared as SHA-256 digests in constant time against every entry.
//
// Thread-safety: an Authenticator is immutable after Create and safe to share.
#ifndef PCSWEEP_COORDINATOR_AUTH_IDENTITY_H_
#define PCSWEEP_COORDINATOR_AUTH_IDENTITY_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::coordinator::auth {

// The caller of one request.
struct Identity {
  std::string name;        // "" for the anonymous caller of a coordinator without auth
  bool client = false;     // may call client methods (SubmitSweep, ListSweeps, ..., web view)
  bool worker = false;     // may call worker methods (RegisterWorker, AcquireJob, ...)
  bool owns_name = false;  // worker methods must name `name` (or, below, a name of its pattern)
  std::string source;      // "token", "certificate", "shared token", "no auth" (for messages)
  // With owns_name: `name` is the pattern PREFIX* of a credentials file, and worker methods may
  // name any worker that starts with PREFIX and is longer than it.
  bool name_is_prefix = false;
};

// Which role a gRPC method ("/package.Service/Method") needs.
enum class MethodClass {
  kOpen,    // the standard health service: answers without credentials
  kClient,  // pcsweep.v1.Coordinator's client methods
  kWorker,  // pcsweep.v1.Coordinator's worker methods
  kAny,     // everything else (server reflection, unknown methods): any known identity
};
MethodClass ClassifyMethod(absl::string_view path);

struct AuthConfig {
  std::string credentials_path;      // shown in errors
  std::string credentials_text;      // the credentials file's contents; "" = none
  std::string shared_token;          // --token-file's token; "" = none
  bool client_certificates = false;  // the transport verifies client certificates (mTLS)
};

class Authenticator {
 public:
  // Possible errors: InvalidArgument "PATH:LINE: message" (bad role, name, secret, a token or
  // worker name listed twice, a bad name pattern: `*` not at the end, a bare `*`, a pattern on
  // a client line or with SECRET `cert`; a worker pattern that could own a name another worker
  // line owns, naming both lines), InvalidArgument "PATH: ..." (an empty file), InvalidArgument
  // (the shared token combined with per-worker identities).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const AuthConfig& config);

  // False when no credential is configured: every call is the anonymous full-access caller.
  bool enabled() const { return enabled_; }

  // The identity of a call presenting bearer `token` ("" = none) over a connection whose
  // verified client certificate has `cert_names` (CN first, then SANs; empty = none). A
  // token takes precedence over the certificate.
  // Possible errors: Unauthenticated (no credential, unknown token), PermissionDenied (a
  // certificate the credentials file does not list).
  absl::StatusOr<Identity> Authenticate(absl::string_view token,
                                        const std::vector<std::string>& cert_names) const;

 private:
  struct TokenEntry {
    std::array<unsigned char, 32> digest;
    Identity identity;
  };
  // A worker name (or, with `prefix`, every longer name starting with `name`) that a worker
  // line of the credentials file owns; `where` is its PATH:LINE.
  struct WorkerClaim {
    std::string name;
    bool prefix = false;
    std::string where;
  };
  Authenticator() = default;
  absl::Status ParseLine(absl::string_view where, absl::string_view line);
  // Records the claim of a worker line. Possible errors: InvalidArgument "WHERE: ..." naming
  // the earlier line whose claim overlaps a pattern's.
  absl::Status ClaimWorkerName(absl::string_view where, absl::string_view name, bool prefix);

  bool enabled_ = false;
  bool client_certificates_ = false;
  bool have_file_ = false;
  std::vector<TokenEntry> tokens_;
  std::vector<Identity> cert_identities_;   // names with SECRET `cert`
  std::vector<WorkerClaim> worker_claims_;  // the worker lines, while the file is read
};

// OK when `identity` may call `path`.
// Possible errors: PermissionDenied naming the identity, its role and the method.
absl::Status AuthorizeMethod(const Identity& identity, absl::string_view path);

// OK when `identity` may act as the worker named `worker_name` (register under it, heartbeat,
// lease, complete or fail its jobs): its own name, or for a pattern PREFIX* any longer name
// starting with PREFIX.
// Possible errors: PermissionDenied naming both names (the pattern as written).
absl::Status AuthorizeWorkerName(const Identity& identity, absl::string_view worker_name);

// True for "127.x.y.z:P", "localhost:P", "[::1]:P" and unix: sockets.
bool IsLoopbackListen(absl::string_view listen);

// Whether the coordinator may listen on `listen`: a non-loopback address without
// authentication needs `insecure`. Sets `*warning` (else clears it) when bearer tokens would
// cross the network in clear text.
// Possible errors: FailedPrecondition naming the address and the flags that fix it.
absl::Status CheckListenPolicy(absl::string_view listen, bool auth_enabled, bool tls, bool insecure,
                               std::string* warning);

// The lowercase hex SHA-256 of `token`, as written after `sha256:` in a credentials file.
std::string TokenDigestHex(absl::string_view token);

}  // namespace pcsweep::coordinator::auth

#endif  // PCSWEEP_COORDINATOR_AUTH_IDENTITY_H_
