// The client subcommands that act on one sweep, through the coordinator (commands.h holds
// their logic):
//   submit SPEC [--force]               prints the new sweep's id alone on stdout
//   status [SWEEP] [--watch] [--format text|json]
//                                       a sweep's jobs (live until it finishes with --watch),
//                                       or the list of sweeps
//   cancel SWEEP                        cancels its unfinished jobs
//   retry SWEEP                         re-queues its failed jobs
// each with the connection flags of client_flags.h.
//
// Every run's possible errors include ClientFlags::Connect's and CoordinatorApi's
// (Unavailable "cannot reach coordinator at ADDR: ...", Unauthenticated, DeadlineExceeded).
// Thread-safety: see command.h.
#ifndef PCSWEEP_TOOLS_CLI_SWEEP_COMMANDS_H_
#define PCSWEEP_TOOLS_CLI_SWEEP_COMMANDS_H_

#include "CLI/CLI.hpp"
#include "tools/cli/client_flags.h"
#include "tools/cli/command.h"

namespace pcsweep::cli {

// Each adds its subcommand to `app`, with `client`'s flags; `client` must outlive the action.

// Possible errors (of the run): NotFound (unreadable spec), InvalidArgument
// "FILE:LINE:COL: message" from the coordinator's spec check.
void AddSubmitCommand(CLI::App& app, ClientFlags& client, CommandAction* action);

// Possible errors (of the run): NotFound (unknown sweep), InvalidArgument (--watch without a
// sweep id), Unavailable when a watch stream keeps ending early.
void AddStatusCommand(CLI::App& app, ClientFlags& client, CommandAction* action);

// Possible errors (of the run): NotFound (unknown sweep).
void AddCancelCommand(CLI::App& app, ClientFlags& client, CommandAction* action);
void AddRetryCommand(CLI::App& app, ClientFlags& client, CommandAction* action);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_SWEEP_COMMANDS_H_
