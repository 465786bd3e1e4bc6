// The connection flags of the client subcommands (--coordinator, --token-file, --tls-ca,
// --tls-cert, --tls-key) and how they become a CoordinatorApi. main.cc owns one ClientFlags
// and passes it to every command that talks to the coordinator; each adds the flags to its own
// subcommand (so that `pcsweep X --help` lists them and they parse after X's arguments), and
// since only one subcommand parses per run, the one struct holds that subcommand's values.
//
// Thread-safety: not thread-safe; used on main's thread only.
#ifndef PCSWEEP_TOOLS_CLI_CLIENT_FLAGS_H_
#define PCSWEEP_TOOLS_CLI_CLIENT_FLAGS_H_

#include <functional>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "tools/cli/client.h"
#include "tools/cli/command.h"

namespace pcsweep::cli {

// The address a client dials without --coordinator and $PCSWEEP_COORDINATOR.
inline constexpr char kDefaultCoordinator[] = "127.0.0.1:50551";

struct ClientFlags {
  std::string coordinator;  // "" = $PCSWEEP_COORDINATOR, else kDefaultCoordinator
  std::string token_file;
  std::string tls_ca_file;
  std::string tls_cert_file;  // with tls_key_file (CLI11 enforces both or neither)
  std::string tls_key_file;

  // Adds the flags to `command`, bound to this struct (which must outlive parsing).
  void AddTo(CLI::App* command);

  // A client for the coordinator the flags name, with the token and TLS files read.
  // Possible errors: those of rpc::ReadSecretFile (NotFound, PermissionDenied
  // naming the file), InvalidArgument (--tls-cert without --tls-ca).
  absl::StatusOr<std::unique_ptr<CoordinatorApi>> Connect() const;

  // For commands that read a database file when given one (--db) and ask the coordinator
  // otherwise: null when `db_path` is set, else Connect(). Possible errors: Connect's.
  absl::StatusOr<std::unique_ptr<CoordinatorApi>> ConnectUnlessDb(const std::string& db_path) const;

  // Sets `command`'s callback (run when CLI11 parses it) to store, as `*action`, `run` on the
  // client Connect() makes; the action fails with Connect's error first. This struct must
  // outlive the action.
  void ConnectAndRunOnParse(CLI::App* command, CommandAction* action,
                            std::function<absl::Status(CoordinatorApi&)> run) const;
};

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_CLIENT_FLAGS_H_
