#include "coordinator/auth/grpc_auth.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace pcsweep::coordinator::auth {
namespace {

constexpr char kNameProperty[] = "pcsweep_name";
constexpr char kRolesProperty[] = "pcsweep_roles";
constexpr char kOwnsNameProperty[] = "pcsweep_owns_name";
constexpr char kSourceProperty[] = "pcsweep_source";

absl::string_view View(const grpc_slice& slice) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                           GRPC_SLICE_LENGTH(slice));
}

std::vector<std::string> Properties(const grpc_auth_context* context, const char* name) {
  std::vector<std::string> out;
  grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(context, name);
  while (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it)) {
    out.emplace_back(p->value, p->value_length);
  }
  return out;
}

// The C-core processor: runs on the call's initial metadata, before messages are read.
void Process(void* state, grpc_auth_context* context, const grpc_metadata* md, size_t num_md,
             grpc_process_auth_metadata_done_cb done, void* user_data) {
  const Authenticator* authenticator =
      static_cast<std::shared_ptr<const Authenticator>*>(state)->get();
  absl::string_view path;
  absl::string_view token;
  for (size_t i = 0; i < num_md; ++i) {
    const absl::string_view key = View(md[i].key);
    if (key == ":path") path = View(md[i].value);
    if (key == "authorization") {
      const absl::string_view value = View(md[i].value);
      token = absl::StartsWithIgnoreCase(value, "Bearer ") ? value.substr(7) : value;
    }
  }
  if (ClassifyMethod(path) == MethodClass::kOpen) {
    done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  std::vector<std::string> cert_names = Properties(context, "x509_common_name");
  for (std::string& san : Properties(context, "x509_subject_alternative_name")) {
    cert_names.push_back(std::move(san));
  }
  absl::StatusOr<Identity> identity = authenticator->Authenticate(token, cert_names);
  absl::Status status = identity.status();
  if (status.ok() && !path.empty()) status = AuthorizeMethod(*identity, path);
  if (!status.ok()) {
    const std::string message(status.message());
    done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(status.code()),
         message.c_str());
    return;
  }
  const std::string roles = identity->client && identity->worker ? "client,worker"
                            : identity->client                   ? "client"
                            : identity->worker                   ? "worker"
                                                                 : "";
  grpc_auth_context_add_cstring_property(context, kNameProperty, identity->name.c_str());
  grpc_auth_context_add_cstring_property(context, kRolesProperty, roles.c_str());
  grpc_auth_context_add_cstring_property(context, kOwnsNameProperty,
                                         identity->owns_name ? "1" : "0");
  grpc_auth_context_add_cstring_property(context, kSourceProperty, identity->source.c_str());
  done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
}

// The processor's state is a heap shared_ptr: the core credentials (and so the processor)
// may outlive the C++ credentials object while a server still listens with them.
void Destroy(void* state) { delete static_cast<std::shared_ptr<const Authenticator>*>(state); }

// C++ server credentials around core credentials that carry the processor. gRPC's own
// InsecureServerCredentials cannot carry one (its SetAuthMetadataProcessor asserts), so
// plain-text listeners are built from the core's insecure credentials, which do run the
// server auth filter.
class CoreCredentials final : public grpc::ServerCredentials {
 public:
  CoreCredentials(grpc_server_credentials* creds, std::shared_ptr<const Authenticator> auth)
      : creds_(creds) {
    grpc_server_credentials_set_auth_metadata_processor(
        creds_, grpc_auth_metadata_processor{
                    Process, Destroy, new std::shared_ptr<const Authenticator>(std::move(auth))});
  }
  ~CoreCredentials() override { grpc_server_credentials_release(creds_); }

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/) override {}

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }

  grpc_server_credentials* const creds_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportSecurity& security, std::shared_ptr<const Authenticator> authenticator) {
  if (security.tls_cert_pem.empty() != security.tls_key_pem.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  if (!security.client_ca_pem.empty() && security.tls_cert_pem.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs TLS: give the coordinator --tls-cert and --tls-key too");
  }
  grpc_server_credentials* creds = nullptr;
  if (security.tls_cert_pem.empty()) {
    creds = grpc_insecure_server_credentials_create();
  } else {
    grpc_ssl_pem_key_cert_pair pair{security.tls_key_pem.c_str(), security.tls_cert_pem.c_str()};
    const bool mtls = !security.client_ca_pem.empty();
    creds = grpc_ssl_server_credentials_create_ex(
        mtls ? security.client_ca_pem.c_str() : nullptr, &pair, 1,
        mtls ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        nullptr);
  }
  if (creds == nullptr) return absl::InvalidArgumentError("cannot create server credentials");
  return std::make_shared<CoreCredentials>(creds, std::move(authenticator));
}

absl::StatusOr<Identity> CallIdentity(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("the call carries no identity");
  auto one = [&](const char* name) -> std::optional<std::string> {
    std::vector<grpc::string_ref> values = auth->FindPropertyValues(name);
    if (values.empty()) return std::nullopt;
    return std::string(values.front().data(), values.front().size());
  };
  std::optional<std::string> name = one(kNameProperty);
  std::optional<std::string> roles = one(kRolesProperty);
  if (!name.has_value() || !roles.has_value()) {
    return absl::UnauthenticatedError("the call carries no identity");
  }
  Identity identity;
  identity.name = *name;
  identity.client = absl::StrContains(*roles, "client");
  identity.worker = absl::StrContains(*roles, "worker");
  identity.owns_name = one(kOwnsNameProperty).value_or("1") == "1";
  identity.source = one(kSourceProperty).value_or("");
  return identity;
}

}  // namespace pcsweep::coordinator::auth
