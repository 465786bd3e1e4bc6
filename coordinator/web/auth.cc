#include "coordinator/web/auth.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pcsweep::coordinator::web {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Compares over the longer length so that a prefix of the token takes as long as a miss.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

absl::Status TokenChecker::Check(absl::string_view credential) const {
  if (credential.empty()) return absl::UnauthenticatedError("credentials required");
  if (!ConstantTimeEquals(credential, token_)) {
    return absl::UnauthenticatedError("wrong credentials");
  }
  return absl::OkStatus();
}

absl::Status IdentityChecker::Check(absl::string_view credential) const {
  if (credential.empty()) return absl::UnauthenticatedError("missing credentials");
  absl::StatusOr<auth::Identity> identity = authenticator_->Authenticate(credential, {});
  if (!identity.ok()) return identity.status();
  if (!identity->client) {
    return absl::PermissionDeniedError(absl::StrCat("the credential of ", identity->source, " '",
                                                    identity->name,
                                                    "' is not a client credential"));
  }
  return absl::OkStatus();
}

std::optional<std::string> CredentialFromAuthorization(absl::string_view header) {
  header = absl::StripAsciiWhitespace(header);
  const size_t space = header.find(' ');
  if (space == absl::string_view::npos) return std::nullopt;
  const absl::string_view scheme = header.substr(0, space);
  const absl::string_view value = absl::StripAsciiWhitespace(header.substr(space + 1));
  if (value.empty()) return std::nullopt;
  if (absl::EqualsIgnoreCase(scheme, "Bearer")) return std::string(value);
  if (absl::EqualsIgnoreCase(scheme, "Basic")) {
    std::string decoded;
    if (!absl::Base64Unescape(value, &decoded)) return std::nullopt;
    const size_t colon = decoded.find(':');
    if (colon == std::string::npos || colon + 1 == decoded.size()) return std::nullopt;
    return decoded.substr(colon + 1);
  }
  return std::nullopt;
}

}  // namespace pcsweep::coordinator::web
