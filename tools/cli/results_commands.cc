#include "tools/cli/results_commands.h"

#include <iostream>
#include <memory>
#include <string>

#include "common/status/status_macros.h"
#include "tools/cli/commands.h"
#include "tools/cli/plot_command.h"
#include "tools/cli/results_db.h"
#include "tools/cli/results_tables.h"

namespace pcsweep::cli {
namespace {

struct ResultsFlags {
  std::string sweep_id;
  std::string format = "table";
  std::string db_path;
  ResultsTablesRequest tables;  // --table and --recompute; the rest is set from the above
};

absl::Status RunResultsCommand(ResultsFlags& flags, const ClientFlags& client) {
  if (!flags.tables.table.empty() || flags.tables.recompute) {
    flags.tables.db_path = flags.db_path;
    flags.tables.sweep = flags.sweep_id;
    flags.tables.format = flags.format;
    PCSWEEP_ASSIGN_OR_RETURN(auto api, client.ConnectUnlessDb(flags.db_path));
    return RunResultsTables(flags.tables, api.get(), std::cout, std::cerr);
  }
  PCSWEEP_ASSIGN_OR_RETURN(table::ListingFormat format, table::ParseListingFormat(flags.format));
  if (!flags.db_path.empty()) {
    return RunResultsFromDb(flags.db_path, flags.sweep_id, format, std::cout);
  }
  PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
  return RunResults(*api, flags.sweep_id, format, std::cout);
}

}  // namespace

void AddResultsCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  auto flags = std::make_shared<ResultsFlags>();
  auto* results = app.add_subcommand("results", "Print one row per cell: params and metrics");
  results->add_option("sweep", flags->sweep_id, "Sweep id (with --db or --table also a sweep name)")
      ->required();
  results->add_option("--format", flags->format, "table, csv, json or markdown")
      ->capture_default_str();
  results->add_option("--db", flags->db_path,
                      "Read this database file directly (no coordinator needed)");
  client.AddTo(results);
  results->add_option("--table", flags->tables.table,
                      "Paper table from the per-example rows: main, ablation or phenomena "
                      "(--format then also takes latex)");
  results->add_flag("--recompute", flags->tables.recompute,
                    "Recompute the sweep's arm-vs-baseline comparisons and store them");
  results->callback([flags, &client, action] {
    *action = [flags, &client] { return RunResultsCommand(*flags, client); };
  });
}

void AddPlotCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  auto request = std::make_shared<PlotRequest>();
  auto* plot = app.add_subcommand(
      "plot",
      "Write the sweep's figure (flip rate and margin difference by layers and loss) as SVG");
  plot->add_option("sweep", request->sweep, "Sweep id or name")->required();
  plot->add_option("--out", request->out_path, "SVG file to write")->required();
  plot->add_option("--db", request->db_path,
                   "Read this database file directly (default: ask the coordinator)");
  plot->add_option("--x", request->x_key, "Parameter on the x axis")->capture_default_str();
  plot->add_option("--eval-set", request->eval_set, "Eval set (default: the first)");
  client.AddTo(plot);
  plot->callback([request, &client, action] {
    *action = [request, &client]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.ConnectUnlessDb(request->db_path));
      return RunPlot(*request, api.get(), std::cerr);
    };
  });
}

}  // namespace pcsweep::cli
