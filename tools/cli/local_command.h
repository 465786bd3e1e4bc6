// `pcsweep local SPEC --db FILE [--workers N] [--slots S] [--work-dir D] [--force]
//                [--format table|csv|json|markdown] [--http HOST:PORT]`:
// one sweep on an embedded coordinator (a free loopback port, behind a fresh random token in
// FILE.token readable by its owner only) and N in-process workers, followed to its end on
// stderr; then its results table on stdout, its arm-vs-baseline comparisons stored in the
// database, and where the database and the job logs are (default: FILE's folder/pcsweep-work).
// Ctrl-C stops the workers (their jobs get SIGTERM) and the coordinator.
//
// Thread-safety: see command.h.
#ifndef PCSWEEP_TOOLS_CLI_LOCAL_COMMAND_H_
#define PCSWEEP_TOOLS_CLI_LOCAL_COMMAND_H_

#include "CLI/CLI.hpp"
#include "tools/cli/command.h"

namespace pcsweep::cli {

// Adds `local` to `app`.
// Possible errors (of the run): InvalidArgument (bad --format, --workers or --slots below 1;
// the spec check's "FILE:LINE:COL: message"), PermissionDenied (the database's folder or token
// cannot be written), those of CoordinatorServer::Start, WorkerDaemon::Start and the watch,
// Cancelled "interrupted" after a stop signal, and Aborted when jobs failed or were cancelled
// (the message says how many and where their logs are).
void AddLocalCommand(CLI::App& app, CommandAction* action);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_LOCAL_COMMAND_H_
