#include "tools/cli/local_command.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/clock/clock.h"
#include "common/rpc/rpc.h"
#include "common/status/status_macros.h"
#include "coordinator/coordinator_server.h"
#include "tools/cli/commands.h"
#include "tools/cli/stop_signals.h"
#include "worker/worker_daemon.h"

namespace pcsweep::cli {
namespace {

using ::pcsweep::coordinator::CoordinatorServer;
using ::pcsweep::coordinator::CoordinatorServerOptions;
using ::pcsweep::worker::WorkerDaemon;
using ::pcsweep::worker::WorkerOptions;

struct LocalFlags {
  std::string spec;
  int workers = 2;
  int slots = 1;
  std::string db;
  std::string work_dir;
  bool force = false;
  std::string format = "table";
  std::string http;  // web view address; "" = none
};

// The embedded coordinator and its workers. Members are destroyed workers first.
struct LocalServices {
  std::string token_file;
  std::string token;
  std::unique_ptr<CoordinatorServer> server;
  std::vector<std::unique_ptr<WorkerDaemon>> workers;
};

absl::StatusOr<LocalServices> StartLocalServices(const LocalFlags& flags,
                                                 const std::filesystem::path& db,
                                                 const std::filesystem::path& work_dir) {
  LocalServices services;
  // The embedded coordinator only answers holders of a fresh random token (other local users
  // could otherwise submit commands through it).
  services.token_file = (db.parent_path() / (db.filename().string() + ".token")).string();
  PCSWEEP_ASSIGN_OR_RETURN(services.token, rpc::WriteRandomTokenFile(services.token_file));
  CoordinatorServerOptions server_options;
  server_options.db_path = db.string();
  server_options.listen = "127.0.0.1:0";
  server_options.token_file = services.token_file;
  server_options.http.listen = flags.http;
  PCSWEEP_ASSIGN_OR_RETURN(services.server, CoordinatorServer::Start(server_options));
  for (int i = 0; i < flags.workers; ++i) {
    WorkerOptions worker_options;
    worker_options.coordinator = services.server->address();
    worker_options.slots = flags.slots;
    worker_options.token_file = services.token_file;
    worker_options.name = absl::StrCat("local-", i + 1);
    worker_options.work_dir = (work_dir / worker_options.name).string();
    PCSWEEP_ASSIGN_OR_RETURN(auto worker, WorkerDaemon::Start(worker_options));
    services.workers.push_back(std::move(worker));
  }
  return services;
}

// Prints the finished sweep's results table, stores its comparisons, and says where the
// database and logs are. Returns Aborted when jobs failed or were cancelled.
absl::Status ReportLocalSweep(const v1::GetSweepResponse& final_state, table::ListingFormat format,
                              CoordinatorServer& server, const std::filesystem::path& db,
                              const std::filesystem::path& work_dir) {
  std::cout << table::RenderListing(ResultsTable(final_state), format);
  const auto& summary = final_state.summary();
  // The sweep's arm-vs-baseline comparisons, stored before the tables are asked for.
  if (auto stored = server.RecomputeComparisons(summary.sweep_id()); !stored.ok()) {
    std::cerr << "comparisons not stored: " << OneLine(stored.status().message()) << std::endl;
  } else if (!stored->records.empty()) {
    std::cerr << stored->records.size() << " comparisons stored (pcsweep results "
              << summary.sweep_id() << " --table main --db " << db.string() << ")" << std::endl;
  }
  std::cerr << "\n"
            << FormatSweepSummaryLine(summary, Clock::Real()->Now()) << "\n"
            << "database: " << db.string() << "  (pcsweep results " << summary.sweep_id()
            << " --db " << db.string() << ")\n"
            << "job logs: " << work_dir.string() << std::endl;
  if (summary.failed() > 0 || summary.cancelled() > 0) {
    return absl::AbortedError(absl::StrCat(summary.failed(), " of ", summary.total(),
                                           " jobs failed and ", summary.cancelled(),
                                           " were cancelled; logs under ", work_dir.string()));
  }
  return absl::OkStatus();
}

absl::Status RunLocal(const LocalFlags& flags) {
  PCSWEEP_ASSIGN_OR_RETURN(table::ListingFormat format, table::ParseListingFormat(flags.format));
  if (flags.workers < 1 || flags.slots < 1) {
    return absl::InvalidArgumentError("--workers and --slots must be at least 1");
  }
  std::error_code error;
  const std::filesystem::path db = std::filesystem::absolute(flags.db);
  std::filesystem::create_directories(db.parent_path(), error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", db.parent_path().string(), ": ", error.message()));
  }
  const std::filesystem::path work_dir = flags.work_dir.empty()
                                             ? db.parent_path() / "pcsweep-work"
                                             : std::filesystem::absolute(flags.work_dir);
  BlockStopSignals();
  PCSWEEP_ASSIGN_OR_RETURN(LocalServices services, StartLocalServices(flags, db, work_dir));
  CoordinatorServer& server = *services.server;
  auto shut_down = [&] {
    for (auto& worker : services.workers) worker->Shutdown();
    for (auto& worker : services.workers) worker->Wait();
    server.Shutdown();
    server.Wait();
  };
  // Ctrl-C stops the workers (their jobs get SIGTERM) and the server; the watch below then
  // fails and we report the interruption.
  std::atomic<bool> done{false};
  std::atomic<bool> interrupted{false};
  std::thread signal_thread([&] {
    if (WaitForStopSignal(&done) != 0) {
      interrupted = true;
      std::cerr << "\ninterrupted: stopping workers and coordinator" << std::endl;
      shut_down();
    }
  });
  auto finish = [&](absl::Status status) {
    done = true;
    signal_thread.join();
    if (!interrupted) shut_down();
    if (interrupted) return absl::CancelledError("interrupted");
    return status;
  };

  std::cerr << "pcsweep local: coordinator on " << server.address() << ", " << flags.workers
            << " workers x " << flags.slots << " slots, db " << db.string() << std::endl;
  if (!server.http_url().empty()) {
    std::cerr << "pcsweep local: web view on " << server.http_url()
              << " (any user name; the password is the token in " << services.token_file << ")"
              << std::endl;
  }
  ClientOptions client_options;
  client_options.address = server.address();
  client_options.token = services.token;
  auto api = MakeGrpcCoordinatorApi(client_options);
  auto submitted = RunSubmit(*api, flags.spec, flags.force, std::cerr, std::cerr);
  if (!submitted.ok()) return finish(submitted.status());
  WatchOptions watch;
  watch.redraw = isatty(STDERR_FILENO) != 0;
  auto final_state =
      WatchUntilFinished(*api, submitted->sweep_id(), watch, *Clock::Real(), std::cerr);
  if (!final_state.ok()) return finish(final_state.status());
  return finish(ReportLocalSweep(*final_state, format, server, db, work_dir));
}

}  // namespace

void AddLocalCommand(CLI::App& app, CommandAction* action) {
  auto flags = std::make_shared<LocalFlags>();
  auto* local = app.add_subcommand(
      "local", "Run a sweep on an embedded coordinator and in-process workers, print its results");
  local->add_option("spec", flags->spec, "Sweep spec YAML file")->required();
  local->add_option("--workers", flags->workers, "In-process workers")->capture_default_str();
  local->add_option("--slots", flags->slots, "Slots per worker")->capture_default_str();
  local->add_option("--db", flags->db, "SQLite database file (kept afterwards)")->required();
  local->add_option("--work-dir", flags->work_dir, "Job outputs and logs (default: beside the db)");
  local->add_flag("--force", flags->force, "Re-run cells whose result already exists");
  local->add_option("--format", flags->format, "Results format: table, csv, json or markdown")
      ->capture_default_str();
  local->add_option("--http", flags->http,
                    "Serve the web view on HOST:PORT while it runs (a bare PORT: loopback)");
  local->callback([flags, action] { *action = [flags] { return RunLocal(*flags); }; });
}

}  // namespace pcsweep::cli
