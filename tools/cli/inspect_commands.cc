#include "tools/cli/inspect_commands.h"

#include <iostream>
#include <memory>
#include <string>

#include "common/clock/clock.h"
#include "common/status/status_macros.h"
#include "tools/cli/commands.h"

namespace pcsweep::cli {

void AddWorkersCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  auto table_format = std::make_shared<std::string>("table");
  auto* workers =
      app.add_subcommand("workers", "List workers: state, last heartbeat, running jobs");
  workers->add_option("--format", *table_format, "table, csv, json or markdown")
      ->capture_default_str();
  client.AddTo(workers);
  workers->callback([&client, table_format, action] {
    *action = [&client, table_format]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(table::ListingFormat format,
                               table::ParseListingFormat(*table_format));
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      return RunWorkers(*api, format, *Clock::Real(), std::cout);
    };
  });
}

void AddLogsCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  auto job_id = std::make_shared<std::string>();
  auto* logs = app.add_subcommand("logs", "Show a job's attempts, stderr tails and log file");
  logs->add_option("job", *job_id, "Job id")->required();
  client.AddTo(logs);
  client.ConnectAndRunOnParse(
      logs, action, [job_id](CoordinatorApi& api) { return RunLogs(api, *job_id, std::cout); });
}

}  // namespace pcsweep::cli
