// `pcsweep`: the command-line entry point. Parses flags with CLI11 and hands each subcommand to
// its logic (commands.h for client commands, slurm_command.h for `slurm up|down`,
// CoordinatorServer / WorkerDaemon for the services). Every error ends as ONE line on stderr
// and exit code 1.
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/clock/clock.h"
#include "common/logging/logging.h"
#include "common/rpc/rpc.h"
#include "common/status/status_macros.h"
#include "coordinator/coordinator_server.h"
#include "tools/cli/commands.h"
#include "tools/cli/plot_command.h"
#include "tools/cli/results_db.h"
#include "tools/cli/results_tables.h"
#include "tools/cli/slurm_command.h"
#include "tools/cli/stats_command.h"
#include "worker/worker_daemon.h"

namespace pcsweep::cli {
namespace {

using ::pcsweep::coordinator::CoordinatorServer;
using ::pcsweep::coordinator::CoordinatorServerOptions;
using ::pcsweep::worker::WorkerDaemon;
using ::pcsweep::worker::WorkerOptions;

constexpr char kDefaultCoordinator[] = "127.0.0.1:50551";

// Blocks SIGINT/SIGTERM/SIGUSR1 in the calling thread and every thread it starts afterwards,
// so that only WaitForStopSignal() receives them (services shut down cleanly instead of
// dying). SIGUSR1 is what submitit and many Slurm set-ups send ahead of a time limit.
void BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Waits for SIGINT/SIGTERM/SIGUSR1, or until `stop` becomes true (checked every 100 ms).
// Returns the signal number, or 0 when stopped.
int WaitForStopSignal(const std::atomic<bool>* stop = nullptr) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  while (stop == nullptr || !stop->load()) {
    timespec timeout{0, 100 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &timeout);
    if (sig > 0) return sig;
  }
  return 0;
}

std::string OneLine(absl::string_view message) {
  return absl::StrReplaceAll(message, {{"\r\n", "; "}, {"\n", "; "}});
}

// Flags shared by the client subcommands.
struct ClientFlags {
  std::string coordinator;
  std::string token_file;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;

  void AddTo(CLI::App* command) {
    command->add_option("--coordinator", coordinator,
                        "Coordinator HOST:PORT (default: $PCSWEEP_COORDINATOR or 127.0.0.1:50551)");
    command->add_option("--token-file", token_file, "File holding the coordinator's bearer token");
    command->add_option("--tls-ca", tls_ca_file,
                        "Root certificate (PEM) when the coordinator uses TLS");
    auto* cert = command->add_option("--tls-cert", tls_cert_file,
                                     "Client certificate (PEM) when the coordinator requires mTLS");
    auto* key = command->add_option("--tls-key", tls_key_file, "Private key of --tls-cert (PEM)");
    cert->needs(key);
    key->needs(cert);
  }

  absl::StatusOr<std::unique_ptr<CoordinatorApi>> Connect() const {
    ClientOptions options;
    options.address = coordinator;
    if (options.address.empty()) {
      const char* env = std::getenv("PCSWEEP_COORDINATOR");
      options.address = env != nullptr && *env != '\0' ? env : kDefaultCoordinator;
    }
    if (!token_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(options.token, rpc::ReadSecretFile(token_file));
    }
    if (!tls_ca_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(options.tls_ca_pem, rpc::ReadSecretFile(tls_ca_file));
    }
    if (!tls_cert_file.empty()) {
      if (options.tls_ca_pem.empty()) {
        return absl::InvalidArgumentError("--tls-cert needs --tls-ca (the coordinator's CA)");
      }
      PCSWEEP_ASSIGN_OR_RETURN(options.tls_cert_pem, rpc::ReadSecretFile(tls_cert_file));
      PCSWEEP_ASSIGN_OR_RETURN(options.tls_key_pem, rpc::ReadSecretFile(tls_key_file));
    }
    return MakeGrpcCoordinatorApi(options);
  }

  // Commands that read a database file when given one (--db) and ask the coordinator otherwise:
  // null when `db_path` is set.
  absl::StatusOr<std::unique_ptr<CoordinatorApi>> ConnectUnlessDb(
      const std::string& db_path) const {
    if (!db_path.empty()) return std::unique_ptr<CoordinatorApi>();
    return Connect();
  }
};

absl::Duration SecondsFlag(double seconds) { return absl::Milliseconds(seconds * 1000.0); }

absl::Status RunCoordinator(CoordinatorServerOptions options,
                            const pcsweep::cli::SlurmAutoscaleFlags& slurm) {
  BlockStopSignals();
  PCSWEEP_ASSIGN_OR_RETURN(auto server, CoordinatorServer::Start(options));
  // Tests and scripts read this line to learn the bound port (with --listen HOST:0).
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::cout << "pcsweep coordinator listening on " << host << ":" << server->port() << " (db "
            << options.db_path << ")" << std::endl;
  if (!server->http_url().empty()) {
    std::cout << "pcsweep web view on " << server->http_url() << std::endl;
  }
  std::unique_ptr<pcsweep::cli::AutoscalerThread> autoscaler;
  if (slurm.max_workers > 0) {
    PCSWEEP_ASSIGN_OR_RETURN(
        autoscaler,
        StartSlurmAutoscaler(slurm, absl::StrCat(host, ":", server->port()), server->scheduler()));
    std::cout << "pcsweep coordinator: Slurm autoscaler on: up to " << slurm.max_workers
              << " workers of " << slurm.workers.slots << " slots, idle timeout "
              << slurm.idle_timeout_s << " s; cancel them with: pcsweep slurm down --dir "
              << slurm.workers.dir << std::endl;
  }
  const int sig = WaitForStopSignal();
  std::cerr << "pcsweep coordinator: signal " << sig << ", shutting down" << std::endl;
  autoscaler.reset();
  server->Shutdown();
  server->Wait();
  return absl::OkStatus();
}

absl::Status RunWorker(const WorkerOptions& options) {
  BlockStopSignals();
  PCSWEEP_ASSIGN_OR_RETURN(auto worker, WorkerDaemon::Start(options));
  std::cout << "pcsweep worker started: coordinator " << options.coordinator << ", "
            << options.slots << " slots, work dir " << options.work_dir << std::endl;
  // The daemon also stops by itself when a newer process registered under its name; then
  // this process must exit (non-zero) instead of idling until a signal.
  std::atomic<bool> stopped_by_itself{false};
  std::thread watcher([&] {
    worker->Wait();
    stopped_by_itself = true;
  });
  const int sig = WaitForStopSignal(&stopped_by_itself);
  if (sig != 0) {
    std::cerr << "pcsweep worker: " << strsignal(sig)
              << ", stopping: running jobs are given back to the coordinator" << std::endl;
  }
  worker->Shutdown();
  watcher.join();
  if (absl::Status refused = worker->halt_reason(); !refused.ok()) return refused;
  if (worker->superseded()) {
    return absl::AbortedError(absl::StrCat("worker ", worker->worker_id(),
                                           " stopped: another process registered under its "
                                           "name and took over its jobs"));
  }
  return absl::OkStatus();
}

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

// `pcsweep local`: an embedded coordinator on a free loopback port, N in-process workers, one
// sweep followed to its end, its results table, and where the database is.
absl::Status RunLocal(const LocalFlags& flags) {
  PCSWEEP_ASSIGN_OR_RETURN(TableFormat format, ParseTableFormat(flags.format));
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

  // The embedded coordinator only answers holders of a fresh random token (other local users
  // could otherwise submit commands through it).
  const std::string token_file = (db.parent_path() / (db.filename().string() + ".token")).string();
  PCSWEEP_ASSIGN_OR_RETURN(const std::string token, rpc::WriteRandomTokenFile(token_file));
  CoordinatorServerOptions server_options;
  server_options.db_path = db.string();
  server_options.listen = "127.0.0.1:0";
  server_options.token_file = token_file;
  server_options.http.listen = flags.http;
  PCSWEEP_ASSIGN_OR_RETURN(auto server, CoordinatorServer::Start(server_options));
  std::vector<std::unique_ptr<WorkerDaemon>> workers;
  for (int i = 0; i < flags.workers; ++i) {
    WorkerOptions worker_options;
    worker_options.coordinator = server->address();
    worker_options.slots = flags.slots;
    worker_options.token_file = token_file;
    worker_options.name = absl::StrCat("local-", i + 1);
    worker_options.work_dir = (work_dir / worker_options.name).string();
    PCSWEEP_ASSIGN_OR_RETURN(auto worker, WorkerDaemon::Start(worker_options));
    workers.push_back(std::move(worker));
  }
  auto shut_down = [&] {
    for (auto& worker : workers) worker->Shutdown();
    for (auto& worker : workers) worker->Wait();
    server->Shutdown();
    server->Wait();
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

  std::cerr << "pcsweep local: coordinator on " << server->address() << ", " << flags.workers
            << " workers x " << flags.slots << " slots, db " << db.string() << std::endl;
  if (!server->http_url().empty()) {
    std::cerr << "pcsweep local: web view on " << server->http_url()
              << " (any user name; the password is the token in " << token_file << ")" << std::endl;
  }
  ClientOptions client_options;
  client_options.address = server->address();
  client_options.token = token;
  auto api = MakeGrpcCoordinatorApi(client_options);
  auto submitted = RunSubmit(*api, flags.spec, flags.force, std::cerr, std::cerr);
  if (!submitted.ok()) return finish(submitted.status());
  WatchOptions watch;
  watch.redraw = isatty(STDERR_FILENO) != 0;
  auto final_state =
      WatchUntilFinished(*api, submitted->sweep_id(), watch, *Clock::Real(), std::cerr);
  if (!final_state.ok()) return finish(final_state.status());
  std::cout << RenderTable(ResultsTable(*final_state), format);
  const auto& summary = final_state->summary();
  // The sweep's arm-vs-baseline comparisons, stored before the tables are asked for.
  if (auto stored = server->RecomputeComparisons(summary.sweep_id()); !stored.ok()) {
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
    return finish(absl::AbortedError(
        absl::StrCat(summary.failed(), " of ", summary.total(), " jobs failed and ",
                     summary.cancelled(), " were cancelled; logs under ", work_dir.string())));
  }
  return finish(absl::OkStatus());
}

int Main(int argc, char** argv) {
  CLI::App app{"pcsweep: paraphrase-consistency sweeps on a gRPC + SQLite coordinator"};
  app.require_subcommand(1);
  std::function<absl::Status()> action;
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (default: info for coordinator and "
                 "worker, warn otherwise); logs go to stderr");

  // coordinator
  CoordinatorServerOptions server_options;
  double heartbeat_s = 5, lease_timeout_s = 20;
  auto* coordinator = app.add_subcommand("coordinator", "Run the coordinator service");
  coordinator
      ->add_option("--db", server_options.db_path, "SQLite database file (created if missing)")
      ->required();
  coordinator
      ->add_option("--listen", server_options.listen, "HOST:PORT to serve on (port 0: any free)")
      ->capture_default_str();
  coordinator->add_option("--heartbeat-interval", heartbeat_s, "Seconds between worker heartbeats")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  coordinator
      ->add_option("--lease-timeout", lease_timeout_s,
                   "Seconds without heartbeat before a lease expires")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  coordinator->add_option(
      "--credentials", server_options.credentials_file,
      "Per-identity tokens and roles: lines 'ROLE NAME SECRET' (README, Security)");
  coordinator->add_option("--token-file", server_options.token_file,
                          "One bearer token for all clients and workers (no per-worker identity)");
  coordinator->add_option("--tls-client-ca", server_options.tls_client_ca_file,
                          "Require client certificates signed by this CA (PEM); CN = identity");
  coordinator->add_flag("--insecure", server_options.insecure,
                        "Allow a non-loopback --listen without authentication");
  auto* cert =
      coordinator->add_option("--tls-cert", server_options.tls_cert_file, "TLS certificate (PEM)");
  auto* key =
      coordinator->add_option("--tls-key", server_options.tls_key_file, "TLS private key (PEM)");
  cert->needs(key);
  key->needs(cert);
  coordinator->add_option("--http", server_options.http.listen,
                          "Serve the web view and /metrics on HOST:PORT (a bare PORT: loopback)");
  pcsweep::cli::SlurmAutoscaleFlags slurm_autoscale;
  AddSlurmAutoscaleFlags(*coordinator, slurm_autoscale);
  coordinator->callback([&] {
    server_options.heartbeat_interval = SecondsFlag(heartbeat_s);
    server_options.lease_timeout = SecondsFlag(lease_timeout_s);
    action = [&] { return RunCoordinator(server_options, slurm_autoscale); };
  });

  // worker
  WorkerOptions worker_options;
  std::string gpus;
  auto* worker = app.add_subcommand("worker", "Run a worker that leases and runs jobs");
  worker->add_option("--coordinator", worker_options.coordinator, "Coordinator HOST:PORT")
      ->capture_default_str();
  worker->add_option("--slots", worker_options.slots, "Jobs run at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  worker->add_option("--gpus", gpus,
                     "Comma-separated GPU indices, one per slot (default: CPU slots)");
  worker
      ->add_option("--work-dir", worker_options.work_dir, "Job outputs, logs and the result spool")
      ->capture_default_str();
  worker->add_option("--name", worker_options.name,
                     "Stable worker name (default: the --tls-cert CN, else host:pid)");
  worker->add_option("--token-file", worker_options.token_file, "File holding the bearer token");
  worker->add_option("--tls-ca", worker_options.tls_ca_file, "Root certificate (PEM) for TLS");
  auto* worker_cert = worker->add_option("--tls-cert", worker_options.tls_cert_file,
                                         "Worker certificate (PEM) for mTLS; its CN = --name");
  auto* worker_key =
      worker->add_option("--tls-key", worker_options.tls_key_file, "Private key of --tls-cert");
  worker_cert->needs(worker_key);
  worker_key->needs(worker_cert);
  worker->add_option("--runner", worker_options.runner_path, "pcsweep-run binary for ML job kinds");
  worker->callback([&] {
    action = [&]() -> absl::Status {
      if (const char* env = std::getenv("PCSWEEP_COORDINATOR");
          env != nullptr && *env != '\0' && worker->count("--coordinator") == 0) {
        worker_options.coordinator = env;
      }
      for (absl::string_view index : absl::StrSplit(gpus, ',', absl::SkipWhitespace())) {
        int value = 0;
        if (!absl::SimpleAtoi(index, &value) || value < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("--gpus: '", index, "' is not a GPU index"));
        }
        worker_options.gpus.push_back(value);
      }
      worker_options.labels = SlurmWorkerLabels([](const char* name) { return std::getenv(name); });
      return RunWorker(worker_options);
    };
  });

  ClientFlags client;
  // submit
  std::string spec_path;
  bool force = false;
  auto* submit = app.add_subcommand("submit", "Submit a sweep spec (prints the sweep id)");
  submit->add_option("spec", spec_path, "Sweep spec YAML file")->required();
  submit->add_flag("--force", force, "Re-run cells whose result already exists");
  client.AddTo(submit);
  submit->callback([&] {
    action = [&]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      return RunSubmit(*api, spec_path, force, std::cout, std::cerr).status();
    };
  });

  // status
  std::string sweep_id;
  bool watch_flag = false;
  std::string status_format = "text";
  auto* status = app.add_subcommand("status", "Show a sweep's jobs, or list sweeps");
  status->add_option("sweep", sweep_id, "Sweep id (omit to list sweeps)");
  status->add_flag("--watch", watch_flag, "Redraw live until the sweep finishes");
  status->add_option("--format", status_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  client.AddTo(status);
  status->callback([&] {
    action = [&]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      if (!watch_flag)
        return RunStatus(*api, sweep_id, status_format == "json", *Clock::Real(), std::cout);
      if (sweep_id.empty()) return absl::InvalidArgumentError("--watch needs a sweep id");
      WatchOptions options;
      options.redraw = isatty(STDOUT_FILENO) != 0;
      PCSWEEP_ASSIGN_OR_RETURN(
          auto final_state, WatchUntilFinished(*api, sweep_id, options, *Clock::Real(), std::cout));
      if (status_format == "json") std::cout << ProtoToJson(final_state);
      return absl::OkStatus();
    };
  });

  // cancel / retry
  auto* cancel = app.add_subcommand("cancel", "Cancel a sweep's unfinished jobs");
  cancel->add_option("sweep", sweep_id, "Sweep id")->required();
  client.AddTo(cancel);
  cancel->callback([&] {
    action = [&]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      return RunCancel(*api, sweep_id, std::cout);
    };
  });
  auto* retry = app.add_subcommand("retry", "Re-queue a sweep's failed jobs");
  retry->add_option("sweep", sweep_id, "Sweep id")->required();
  client.AddTo(retry);
  retry->callback([&] {
    action = [&]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      return RunRetry(*api, sweep_id, std::cout);
    };
  });

  // workers
  std::string table_format = "table";
  auto* workers =
      app.add_subcommand("workers", "List workers: state, last heartbeat, running jobs");
  workers->add_option("--format", table_format, "table, csv, json or markdown")
      ->capture_default_str();
  client.AddTo(workers);
  workers->callback([&] {
    action = [&]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(TableFormat format, ParseTableFormat(table_format));
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      return RunWorkers(*api, format, *Clock::Real(), std::cout);
    };
  });

  // logs
  std::string job_id;
  auto* logs = app.add_subcommand("logs", "Show a job's attempts, stderr tails and log file");
  logs->add_option("job", job_id, "Job id")->required();
  client.AddTo(logs);
  logs->callback([&] {
    action = [&]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      return RunLogs(*api, job_id, std::cout);
    };
  });

  // results
  std::string db_path;
  auto* results = app.add_subcommand("results", "Print one row per cell: params and metrics");
  results->add_option("sweep", sweep_id, "Sweep id (with --db or --table also a sweep name)")
      ->required();
  results->add_option("--format", table_format, "table, csv, json or markdown")
      ->capture_default_str();
  results->add_option("--db", db_path, "Read this database file directly (no coordinator needed)");
  client.AddTo(results);
  ResultsTablesRequest tables_request;
  results->add_option("--table", tables_request.table,
                      "Paper table from the per-example rows: main, ablation or phenomena "
                      "(--format then also takes latex)");
  results->add_flag("--recompute", tables_request.recompute,
                    "Recompute the sweep's arm-vs-baseline comparisons and store them");
  results->callback([&] {
    action = [&]() -> absl::Status {
      if (!tables_request.table.empty() || tables_request.recompute) {
        tables_request.db_path = db_path;
        tables_request.sweep = sweep_id;
        tables_request.format = table_format;
        PCSWEEP_ASSIGN_OR_RETURN(auto api, client.ConnectUnlessDb(db_path));
        return RunResultsTables(tables_request, api.get(), std::cout, std::cerr);
      }
      PCSWEEP_ASSIGN_OR_RETURN(TableFormat format, ParseTableFormat(table_format));
      if (!db_path.empty()) return RunResultsFromDb(db_path, sweep_id, format, std::cout);
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.Connect());
      return RunResults(*api, sweep_id, format, std::cout);
    };
  });

  // local
  LocalFlags local_flags;
  auto* local = app.add_subcommand(
      "local", "Run a sweep on an embedded coordinator and in-process workers, print its results");
  local->add_option("spec", local_flags.spec, "Sweep spec YAML file")->required();
  local->add_option("--workers", local_flags.workers, "In-process workers")->capture_default_str();
  local->add_option("--slots", local_flags.slots, "Slots per worker")->capture_default_str();
  local->add_option("--db", local_flags.db, "SQLite database file (kept afterwards)")->required();
  local->add_option("--work-dir", local_flags.work_dir,
                    "Job outputs and logs (default: beside the db)");
  local->add_flag("--force", local_flags.force, "Re-run cells whose result already exists");
  local->add_option("--format", local_flags.format, "Results format: table, csv, json or markdown")
      ->capture_default_str();
  local->add_option("--http", local_flags.http,
                    "Serve the web view on HOST:PORT while it runs (a bare PORT: loopback)");
  local->callback([&] { action = [&] { return RunLocal(local_flags); }; });

  AddStatsCommand(app);
  AddSlurmCommand(app, &action);

  // plot
  PlotRequest plot_request;
  auto* plot = app.add_subcommand(
      "plot",
      "Write the sweep's figure (flip rate and margin difference by layers and loss) as SVG");
  plot->add_option("sweep", plot_request.sweep, "Sweep id or name")->required();
  plot->add_option("--out", plot_request.out_path, "SVG file to write")->required();
  plot->add_option("--db", plot_request.db_path,
                   "Read this database file directly (default: ask the coordinator)");
  plot->add_option("--x", plot_request.x_key, "Parameter on the x axis")->capture_default_str();
  plot->add_option("--eval-set", plot_request.eval_set, "Eval set (default: the first)");
  client.AddTo(plot);
  plot->callback([&] {
    action = [&]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(auto api, client.ConnectUnlessDb(plot_request.db_path));
      return RunPlot(plot_request, api.get(), std::cerr);
    };
  });

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
