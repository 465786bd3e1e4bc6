// The client subcommands that show what runs where, through the coordinator (commands.h holds
// their logic):
//   workers [--format table|csv|json|markdown]   state, last heartbeat and running jobs
//   logs JOB                                     a job's attempts, stderr tails and log file
// each with the connection flags of client_flags.h.
//
// Every run's possible errors include ClientFlags::Connect's and CoordinatorApi's
// (Unavailable "cannot reach coordinator at ADDR: ...", Unauthenticated, DeadlineExceeded).
// Thread-safety: see command.h.
#ifndef PCSWEEP_TOOLS_CLI_INSPECT_COMMANDS_H_
#define PCSWEEP_TOOLS_CLI_INSPECT_COMMANDS_H_

#include "CLI/CLI.hpp"
#include "tools/cli/client_flags.h"
#include "tools/cli/command.h"

namespace pcsweep::cli {

// Each adds its subcommand to `app`, with `client`'s flags; `client` must outlive the action.

// Possible errors (of the run): InvalidArgument (unknown --format, checked before connecting).
void AddWorkersCommand(CLI::App& app, ClientFlags& client, CommandAction* action);

// Possible errors (of the run): NotFound (unknown job).
void AddLogsCommand(CLI::App& app, ClientFlags& client, CommandAction* action);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_INSPECT_COMMANDS_H_
