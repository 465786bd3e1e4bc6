// The subcommands that read a sweep's results, from a database file (--db, read-only; no
// coordinator needed) or else from the coordinator:
//   results SWEEP [--format table|csv|json|markdown] [--db FILE]
//                 [--table main|ablation|phenomena (--format then also latex)] [--recompute]
//       one row per cell (params and metrics; results_db.h), or a paper table
//       (results_tables.h); --recompute stores the arm-vs-baseline comparisons again
//   plot SWEEP --out FILE.svg [--db FILE] [--x KEY] [--eval-set NAME]
//       the sweep's figure (plot_command.h)
// each with the connection flags of client_flags.h (unused with --db).
//
// Thread-safety: see command.h.
#ifndef PCSWEEP_TOOLS_CLI_RESULTS_COMMANDS_H_
#define PCSWEEP_TOOLS_CLI_RESULTS_COMMANDS_H_

#include "CLI/CLI.hpp"
#include "tools/cli/client_flags.h"
#include "tools/cli/command.h"

namespace pcsweep::cli {

// Each adds its subcommand to `app`, with `client`'s flags; `client` must outlive the action.

// Possible errors (of the run): InvalidArgument (unknown --format or --table), NotFound (no
// such file or sweep), FailedPrecondition (not a pcsweep database), those of
// RunResultsTables and ReadSweepFromDb, and without --db ClientFlags::Connect's and
// CoordinatorApi's (Unavailable, Unauthenticated, DeadlineExceeded).
void AddResultsCommand(CLI::App& app, ClientFlags& client, CommandAction* action);

// Possible errors (of the run): those of RunPlot, and without --db ClientFlags::Connect's.
void AddPlotCommand(CLI::App& app, ClientFlags& client, CommandAction* action);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_RESULTS_COMMANDS_H_
