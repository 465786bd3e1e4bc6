#include "coordinator/auth/grpc_auth.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace pcsweep::coordinator::auth {
namespace {

absl::string_view View(const grpc_slice& slice) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                           GRPC_SLICE_LENGTH(slice));
}

absl::string_view BearerToken(absl::string_view value) {
  return absl::StartsWithIgnoreCase(value, "Bearer ") ? value.substr(7) : value;
}

std::vector<std::string> Properties(const grpc_auth_context* context, const char* name) {
  std::vector<std::string> out;
  grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(context, name);
  while (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it)) {
    out.emplace_back(p->value, p->value_length);
  }
  return out;
}

// The verified client certificate's CN, then its SANs (connection properties).
std::vector<std::string> CertificateNames(const grpc_auth_context* context) {
  std::vector<std::string> names = Properties(context, "x509_common_name");
  for (std::string& san : Properties(context, "x509_subject_alternative_name")) {
    names.push_back(std::move(san));
  }
  return names;
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
      token = BearerToken(View(md[i].value));
    }
  }
  if (ClassifyMethod(path) == MethodClass::kOpen) {
    done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  absl::StatusOr<Identity> identity = authenticator->Authenticate(token, CertificateNames(context));
  absl::Status status = identity.status();
  if (status.ok() && !path.empty()) status = AuthorizeMethod(*identity, path);
  if (!status.ok()) {
    const std::string message(status.message());
    done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(status.code()),
         message.c_str());
    return;
  }
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

absl::StatusOr<Identity> CallIdentity(const grpc::ServerContextBase& context,
                                      const Authenticator& authenticator) {
  absl::string_view token;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    token = BearerToken(absl::string_view(it->second.data(), it->second.size()));
  }
  std::vector<std::string> cert_names;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context(); auth != nullptr) {
    for (const char* name : {"x509_common_name", "x509_subject_alternative_name"}) {
      for (const grpc::string_ref& value : auth->FindPropertyValues(name)) {
        cert_names.emplace_back(value.data(), value.size());
      }
    }
  }
  return authenticator.Authenticate(token, cert_names);
}

}  // namespace pcsweep::coordinator::auth
