#include "coordinator/auth/identity.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pcsweep::coordinator::auth {
namespace {

constexpr absl::string_view kCoordinatorPrefix = "/pcsweep.v1.Coordinator/";
constexpr size_t kMinTokenChars = 16;
constexpr size_t kMaxNameChars = 128;

std::array<unsigned char, 32> Digest(absl::string_view text) {
  std::array<unsigned char, 32> out;
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameChars) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
           c == '@' || c == '-';
  });
}

absl::string_view MethodName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

std::string Describe(const Identity& identity) {
  std::string roles = identity.client && identity.worker ? "client+worker"
                      : identity.client                  ? "client"
                      : identity.worker                  ? "worker"
                                                         : "no role";
  return absl::StrCat(identity.source, " '", identity.name, "' (", roles, ")");
}

}  // namespace

MethodClass ClassifyMethod(absl::string_view path) {
  if (absl::StartsWith(path, "/grpc.health.v1.Health/")) return MethodClass::kOpen;
  if (!absl::StartsWith(path, kCoordinatorPrefix)) return MethodClass::kAny;
  const absl::string_view method = path.substr(kCoordinatorPrefix.size());
  for (absl::string_view worker_method :
       {"RegisterWorker", "AcquireJob", "Heartbeat", "CompleteJob", "FailJob"}) {
    if (method == worker_method) return MethodClass::kWorker;
  }
  return MethodClass::kClient;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const AuthConfig& config) {
  std::unique_ptr<Authenticator> auth(new Authenticator());
  auth->client_certificates_ = config.client_certificates;
  const std::string path =
      config.credentials_path.empty() ? "<credentials>" : config.credentials_path;
  if (!config.credentials_text.empty()) {
    auth->have_file_ = true;
    int line_number = 0;
    for (absl::string_view line : absl::StrSplit(config.credentials_text, '\n')) {
      ++line_number;
      const std::string where = absl::StrCat(path, ":", line_number);
      if (absl::Status s = auth->ParseLine(where, line); !s.ok()) return s;
    }
    if (auth->tokens_.empty() && auth->cert_identities_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": lists no credential (lines are ROLE NAME SECRET)"));
    }
  }
  if (!config.shared_token.empty()) {
    if (auth->have_file_ || auth->client_certificates_) {
      return absl::InvalidArgumentError(
          "--token-file (one token shared by all clients and workers) cannot be combined with "
          "per-worker identities (--credentials, --tls-client-ca): its holder could act as any "
          "worker");
    }
    Identity shared{"shared", true, true, false, "shared token"};
    auth->tokens_.push_back(TokenEntry{Digest(config.shared_token), shared});
  }
  auth->enabled_ =
      !auth->tokens_.empty() || !auth->cert_identities_.empty() || auth->client_certificates_;
  return auth;
}

absl::Status Authenticator::ParseLine(absl::string_view where, absl::string_view line) {
  line = line.substr(0, std::min(line.find('#'), line.size()));
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
  if (fields.empty()) return absl::OkStatus();
  if (fields.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected ROLE NAME SECRET (3 fields), found ", fields.size()));
  }
  Identity identity;
  identity.name = std::string(fields[1]);
  if (fields[0] == "client") {
    identity.client = true;
  } else if (fields[0] == "worker") {
    identity.worker = true;
    identity.owns_name = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown role '", fields[0], "' (client or worker)"));
  }
  const absl::string_view secret = fields[2];
  absl::string_view plain_name = identity.name;
  if (absl::ConsumeSuffix(&plain_name, "*")) {
    if (plain_name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": name '*' would own every worker name; give a prefix, e.g. slurm-*"));
    }
    if (!identity.worker) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": name pattern '", identity.name,
                       "' on a client line (patterns are for workers)"));
    }
    if (secret == "cert") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": name pattern '", identity.name,
          "' needs a token (sha256: or token:), not cert (a certificate is one name)"));
    }
    identity.name_is_prefix = true;
  }
  if (absl::StrContains(plain_name, '*')) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": bad name '", identity.name,
                     "' ('*' may only end a worker name pattern, as in slurm-*)"));
  }
  if (!ValidName(plain_name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": bad name '", identity.name, "' (1-128 characters of A-Z a-z 0-9 . _ : @ -)"));
  }
  if (identity.worker) {
    absl::Status claimed = ClaimWorkerName(where, plain_name, identity.name_is_prefix);
    if (!claimed.ok()) return claimed;
  }
  if (secret == "cert") {
    identity.source = "certificate";
    for (Identity& known : cert_identities_) {
      if (known.name != identity.name) continue;
      if ((known.worker && identity.worker) || (known.client && identity.client)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": certificate '", identity.name, "' listed twice as ", fields[0]));
      }
      known.client |= identity.client;
      known.worker |= identity.worker;
      known.owns_name |= identity.owns_name;
      return absl::OkStatus();
    }
    cert_identities_.push_back(identity);
    return absl::OkStatus();
  }
  identity.source = "token";
  std::array<unsigned char, 32> digest;
  if (absl::StartsWith(secret, "sha256:")) {
    const absl::string_view hex = secret.substr(7);
    if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), [](char c) {
          return absl::ascii_isxdigit(static_cast<unsigned char>(c));
        })) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": sha256: needs 64 hex digits, got '", hex, "'"));
    }
    const std::string bytes = absl::HexStringToBytes(hex);
    std::copy(bytes.begin(), bytes.end(), digest.begin());
  } else if (absl::StartsWith(secret, "token:")) {
    const absl::string_view token = secret.substr(6);
    if (token.size() < kMinTokenChars) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": token for '", identity.name, "' is shorter than 16 characters"));
    }
    digest = Digest(token);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": SECRET must be sha256:HEX, token:TOKEN or cert"));
  }
  for (const TokenEntry& entry : tokens_) {
    if (entry.digest == digest) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the same token is already listed for '", entry.identity.name, "'"));
    }
    if (identity.worker && entry.identity.worker && entry.identity.name == identity.name) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": worker '", identity.name, "' listed twice"));
    }
  }
  tokens_.push_back(TokenEntry{digest, std::move(identity)});
  return absl::OkStatus();
}

absl::Status Authenticator::ClaimWorkerName(absl::string_view where, absl::string_view name,
                                            bool prefix) {
  for (const WorkerClaim& known : worker_claims_) {
    // Two exact names are the same name or none; "listed twice" is reported with the secret.
    const bool overlap =
        (prefix && known.prefix &&
         (absl::StartsWith(name, known.name) || absl::StartsWith(known.name, name))) ||
        (prefix && !known.prefix && known.name.size() > name.size() &&
         absl::StartsWith(known.name, name)) ||
        (!prefix && known.prefix && name.size() > known.name.size() &&
         absl::StartsWith(name, known.name));
    if (!overlap) continue;
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": worker '", name, prefix ? "*" : "", "' overlaps worker '",
                     known.name, known.prefix ? "*" : "", "' of ", known.where,
                     ": both could act as the same worker; give every worker name one owner"));
  }
  worker_claims_.push_back(WorkerClaim{std::string(name), prefix, std::string(where)});
  return absl::OkStatus();
}

absl::StatusOr<Identity> Authenticator::Authenticate(
    absl::string_view token, const std::vector<std::string>& cert_names) const {
  if (!enabled_) return Identity{"", true, true, false, "no auth"};
  if (!token.empty()) {
    // Every entry is compared, each in constant time, so the time taken says nothing about
    // which entry (or which byte) matched.
    const std::array<unsigned char, 32> digest = Digest(token);
    const TokenEntry* match = nullptr;
    for (const TokenEntry& entry : tokens_) {
      if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0) match = &entry;
    }
    if (match == nullptr) return absl::UnauthenticatedError("unknown bearer token");
    return match->identity;
  }
  if (client_certificates_ && !cert_names.empty()) {
    if (!have_file_) return Identity{cert_names.front(), true, true, true, "certificate"};
    for (const std::string& name : cert_names) {
      for (const Identity& known : cert_identities_) {
        if (known.name == name) return known;
      }
    }
    return absl::PermissionDeniedError(absl::StrCat("client certificate '", cert_names.front(),
                                                    "' is not listed in the credentials file"));
  }
  return absl::UnauthenticatedError(
      "missing credentials: this coordinator needs a bearer token (--token-file) or a client "
      "certificate (--tls-cert/--tls-key)");
}

absl::Status AuthorizeMethod(const Identity& identity, absl::string_view path) {
  switch (ClassifyMethod(path)) {
    case MethodClass::kOpen:
    case MethodClass::kAny:
      return absl::OkStatus();
    case MethodClass::kClient:
      if (identity.client) return absl::OkStatus();
      return absl::PermissionDeniedError(
          absl::StrCat(Describe(identity), " may not call client method ", MethodName(path)));
    case MethodClass::kWorker:
      if (identity.worker) return absl::OkStatus();
      return absl::PermissionDeniedError(
          absl::StrCat(Describe(identity), " may not call worker method ", MethodName(path)));
  }
  return absl::OkStatus();
}

absl::Status AuthorizeWorkerName(const Identity& identity, absl::string_view worker_name) {
  if (!identity.worker) {
    return absl::PermissionDeniedError(
        absl::StrCat(Describe(identity), " is not a worker credential"));
  }
  if (!identity.owns_name) return absl::OkStatus();
  if (!identity.name_is_prefix && identity.name == worker_name) return absl::OkStatus();
  if (identity.name_is_prefix) {
    // The pattern as written ends in '*'; the names it owns are longer than what precedes it.
    const absl::string_view prefix = absl::StripSuffix(identity.name, "*");
    if (worker_name.size() > prefix.size() && absl::StartsWith(worker_name, prefix)) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(absl::StrCat("the credential of worker '", identity.name,
                                                  "' may not act as worker '", worker_name, "'"));
}

bool IsLoopbackListen(absl::string_view listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) {
    return true;
  }
  const size_t colon = listen.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? listen : listen.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status CheckListenPolicy(absl::string_view listen, bool auth_enabled, bool tls, bool insecure,
                               std::string* warning) {
  warning->clear();
  if (IsLoopbackListen(listen)) return absl::OkStatus();
  if (!auth_enabled && !insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", listen,
        " without authentication: give --credentials FILE, --token-file FILE or "
        "--tls-client-ca FILE, or --insecure to accept calls from anyone who can reach it"));
  }
  if (auth_enabled && !tls) {
    *warning = absl::StrCat("bearer tokens reach ", listen,
                            " in clear text: anyone on the network path can read and reuse "
                            "them; serve TLS with --tls-cert/--tls-key");
  }
  return absl::OkStatus();
}

std::string TokenDigestHex(absl::string_view token) {
  const std::array<unsigned char, 32> digest = Digest(token);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

}  // namespace pcsweep::coordinator::auth
