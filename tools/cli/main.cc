// `pcsweep`: the command-line entry point. Each subcommand registers itself with CLI11
// (service_commands.h, sweep_commands.h, inspect_commands.h, results_commands.h,
// local_command.h, stats_command.h, slurm_command.h; the client ones share one ClientFlags);
// main parses, sets up logging and runs the parsed subcommand. Every error ends as ONE line on
// stderr and exit code 1.
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "common/logging/logging.h"
#include "tools/cli/client_flags.h"
#include "tools/cli/command.h"
#include "tools/cli/inspect_commands.h"
#include "tools/cli/local_command.h"
#include "tools/cli/results_commands.h"
#include "tools/cli/service_commands.h"
#include "tools/cli/slurm_command.h"
#include "tools/cli/stats_command.h"
#include "tools/cli/sweep_commands.h"

namespace pcsweep::cli {
namespace {

int Main(int argc, char** argv) {
  CLI::App app{"pcsweep: paraphrase-consistency sweeps on a gRPC + SQLite coordinator"};
  app.require_subcommand(1);
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (default: info for coordinator and "
                 "worker, warn otherwise); logs go to stderr");
  CommandAction action;
  ClientFlags client;
  // Registration order is the order `pcsweep --help` lists the subcommands in.
  const CLI::App* coordinator = AddCoordinatorCommand(app, &action);
  const CLI::App* worker = AddWorkerCommand(app, &action);
  AddSubmitCommand(app, client, &action);
  AddStatusCommand(app, client, &action);
  AddCancelCommand(app, client, &action);
  AddRetryCommand(app, client, &action);
  AddWorkersCommand(app, client, &action);
  AddLogsCommand(app, client, &action);
  AddResultsCommand(app, client, &action);
  AddLocalCommand(app, &action);
  AddStatsCommand(app);
  AddSlurmCommand(app, &action);
  AddPlotCommand(app, client, &action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Error& e) {  // parse errors, and `stats` failures (RuntimeError)
    return app.exit(e);
  }
  if (!action) return 0;  // a subcommand that ran its own callback (stats)
  if (log_level.empty()) log_level = coordinator->parsed() || worker->parsed() ? "info" : "warn";
  if (absl::Status logging = InitLogging(log_level); !logging.ok()) {
    std::cerr << OneLine(logging.message()) << std::endl;
    return 1;
  }
  const absl::Status result = action();
  if (!result.ok()) {
    std::cerr << OneLine(result.message()) << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace pcsweep::cli

int main(int argc, char** argv) { return pcsweep::cli::Main(argc, argv); }
