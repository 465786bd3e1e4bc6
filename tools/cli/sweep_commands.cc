#include "tools/cli/sweep_commands.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>

#include "common/clock/clock.h"
#include "common/status/status_macros.h"
#include "tools/cli/commands.h"

namespace pcsweep::cli {
namespace {

struct StatusFlags {
  std::string sweep_id;
  bool watch = false;
  std::string format = "text";
};

absl::Status RunStatusCommand(CoordinatorApi& api, const StatusFlags& flags) {
  if (!flags.watch) {
    return RunStatus(api, flags.sweep_id, flags.format == "json", *Clock::Real(), std::cout);
  }
  if (flags.sweep_id.empty()) return absl::InvalidArgumentError("--watch needs a sweep id");
  WatchOptions options;
  options.redraw = isatty(STDOUT_FILENO) != 0;
  PCSWEEP_ASSIGN_OR_RETURN(auto final_state, WatchUntilFinished(api, flags.sweep_id, options,
                                                                *Clock::Real(), std::cout));
  if (flags.format == "json") std::cout << ProtoToJson(final_state);
  return absl::OkStatus();
}

// `cancel SWEEP` and `retry SWEEP`: the same shape, another RPC.
void AddSweepActionCommand(CLI::App& app, ClientFlags& client, CommandAction* action,
                           const std::string& name, const std::string& description,
                           absl::Status (*run)(CoordinatorApi&, const std::string&,
                                               std::ostream&)) {
  auto sweep_id = std::make_shared<std::string>();
  auto* command = app.add_subcommand(name, description);
  command->add_option("sweep", *sweep_id, "Sweep id")->required();
  client.AddTo(command);
  client.ConnectAndRunOnParse(command, action, [sweep_id, run](CoordinatorApi& api) {
    return run(api, *sweep_id, std::cout);
  });
}

}  // namespace

void AddSubmitCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  auto spec_path = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto* submit = app.add_subcommand("submit", "Submit a sweep spec (prints the sweep id)");
  submit->add_option("spec", *spec_path, "Sweep spec YAML file")->required();
  submit->add_flag("--force", *force, "Re-run cells whose result already exists");
  client.AddTo(submit);
  client.ConnectAndRunOnParse(submit, action, [spec_path, force](CoordinatorApi& api) {
    return RunSubmit(api, *spec_path, *force, std::cout, std::cerr).status();
  });
}

void AddStatusCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  auto flags = std::make_shared<StatusFlags>();
  auto* status = app.add_subcommand("status", "Show a sweep's jobs, or list sweeps");
  status->add_option("sweep", flags->sweep_id, "Sweep id (omit to list sweeps)");
  status->add_flag("--watch", flags->watch, "Redraw live until the sweep finishes");
  status->add_option("--format", flags->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  client.AddTo(status);
  client.ConnectAndRunOnParse(
      status, action, [flags](CoordinatorApi& api) { return RunStatusCommand(api, *flags); });
}

void AddCancelCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  AddSweepActionCommand(app, client, action, "cancel", "Cancel a sweep's unfinished jobs",
                        &RunCancel);
}

void AddRetryCommand(CLI::App& app, ClientFlags& client, CommandAction* action) {
  AddSweepActionCommand(app, client, action, "retry", "Re-queue a sweep's failed jobs", &RunRetry);
}

}  // namespace pcsweep::cli
