#include "tools/cli/client_flags.h"

#include <cstdlib>

#include "common/rpc/rpc.h"
#include "common/status/status_macros.h"

namespace pcsweep::cli {

void ClientFlags::AddTo(CLI::App* command) {
  command->add_option("--coordinator", coordinator,
                      "Coordinator HOST:PORT (default: $PCSWEEP_COORDINATOR or 127.0.0.1:50551)");
  command->add_option("--token-file", token_file, "File holding the coordinator's bearer token");
  command->add_option("--tls-ca", tls_ca_file,
                      "Root certificate (PEM) when the coordinator uses TLS");
  auto* cert = command->add_option("--tls-cert", tls_cert_file,
                                   "Client certificate (PEM) when the coordinator requires mTLS");
  auto* key = command->add_option("--tls-key", tls_key_file, "Private key of --tls-cert (PEM)");
  cert->needs(key);
  key->needs(cert);
}

absl::StatusOr<std::unique_ptr<CoordinatorApi>> ClientFlags::Connect() const {
  ClientOptions options;
  options.address = coordinator;
  if (options.address.empty()) {
    const char* env = std::getenv("PCSWEEP_COORDINATOR");
    options.address = env != nullptr && *env != '\0' ? env : kDefaultCoordinator;
  }
  if (!token_file.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(options.token, rpc::ReadSecretFile(token_file));
  }
  if (!tls_ca_file.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(options.tls_ca_pem, rpc::ReadSecretFile(tls_ca_file));
  }
  if (!tls_cert_file.empty()) {
    if (options.tls_ca_pem.empty()) {
      return absl::InvalidArgumentError("--tls-cert needs --tls-ca (the coordinator's CA)");
    }
    PCSWEEP_ASSIGN_OR_RETURN(options.tls_cert_pem, rpc::ReadSecretFile(tls_cert_file));
    PCSWEEP_ASSIGN_OR_RETURN(options.tls_key_pem, rpc::ReadSecretFile(tls_key_file));
  }
  return MakeGrpcCoordinatorApi(options);
}

absl::StatusOr<std::unique_ptr<CoordinatorApi>> ClientFlags::ConnectUnlessDb(
    const std::string& db_path) const {
  if (!db_path.empty()) return std::unique_ptr<CoordinatorApi>();
  return Connect();
}

void ClientFlags::ConnectAndRunOnParse(CLI::App* command, CommandAction* action,
                                       std::function<absl::Status(CoordinatorApi&)> run) const {
  command->callback([this, action, run = std::move(run)] {
    *action = [this, run]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, Connect());
      return run(*api);
    };
  });
}

}  // namespace pcsweep::cli
