// Who may read the web view and /metrics: one small interface from a presented credential to
// allowed or not, so that the coordinator's credential scheme (today the bearer token of
// --token-file) plugs in at one place. A scheme with identities and roles implements
// CredentialChecker with a client-role check: the web view is a client, never a worker.
//
// Browsers cannot attach a bearer token to a typed URL, so the credential may come either as
// "Authorization: Bearer CREDENTIAL" (scripts, Prometheus' `authorization` scrape setting) or
// as HTTP Basic with the credential as the password and any user name (the browser's own
// login prompt, which a 401 answer asks for).
//
// Thread-safety: checkers are immutable after construction and safe to share.
#ifndef PCSWEEP_COORDINATOR_WEB_AUTH_H_
#define PCSWEEP_COORDINATOR_WEB_AUTH_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "coordinator/auth/identity.h"

namespace pcsweep::coordinator::web {

class CredentialChecker {
 public:
  virtual ~CredentialChecker() = default;
  // OK when `credential` may read the web view.
  // Possible errors: Unauthenticated (missing or unknown credential), PermissionDenied (a
  // known credential whose role may not read it).
  virtual absl::Status Check(absl::string_view credential) const = 0;
};

// Accepts exactly `token` (the gRPC API's bearer token), compared in constant time.
class TokenChecker final : public CredentialChecker {
 public:
  explicit TokenChecker(std::string token) : token_(std::move(token)) {}
  absl::Status Check(absl::string_view credential) const override;

 private:
  const std::string token_;
};

// Accepts the bearer tokens of client-role identities of `authenticator` (the gRPC API's
// credentials, coordinator/auth/identity.h): a worker's token may not read the web view.
class IdentityChecker final : public CredentialChecker {
 public:
  explicit IdentityChecker(std::shared_ptr<const auth::Authenticator> authenticator)
      : authenticator_(std::move(authenticator)) {}
  absl::Status Check(absl::string_view credential) const override;

 private:
  const std::shared_ptr<const auth::Authenticator> authenticator_;
};

// The credential of an Authorization header value ("Bearer X", or "Basic base64(user:X)",
// scheme names case-insensitive); nullopt when the header is empty or malformed.
std::optional<std::string> CredentialFromAuthorization(absl::string_view header);

// Equality whose running time depends on the lengths only, not on where the bytes differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_AUTH_H_
