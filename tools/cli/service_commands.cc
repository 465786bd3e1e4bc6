#include "tools/cli/service_commands.h"

#include <string.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "coordinator/coordinator_server.h"
#include "tools/cli/slurm_command.h"
#include "tools/cli/stop_signals.h"
#include "worker/worker_daemon.h"

namespace pcsweep::cli {
namespace {

using ::pcsweep::coordinator::CoordinatorServer;
using ::pcsweep::coordinator::CoordinatorServerOptions;
using ::pcsweep::worker::WorkerDaemon;
using ::pcsweep::worker::WorkerOptions;

absl::Duration SecondsFlag(double seconds) { return absl::Milliseconds(seconds * 1000.0); }

struct CoordinatorFlags {
  CoordinatorServerOptions server;
  double heartbeat_s = 5;
  double lease_timeout_s = 20;
  SlurmAutoscaleFlags slurm;
};

absl::Status RunCoordinator(CoordinatorServerOptions options, const SlurmAutoscaleFlags& slurm) {
  BlockStopSignals();
  PCSWEEP_ASSIGN_OR_RETURN(auto server, CoordinatorServer::Start(options));
  // Tests and scripts read this line to learn the bound port (with --listen HOST:0).
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::cout << "pcsweep coordinator listening on " << host << ":" << server->port() << " (db "
            << options.db_path << ")" << std::endl;
  if (!server->http_url().empty()) {
    std::cout << "pcsweep web view on " << server->http_url() << std::endl;
  }
  std::unique_ptr<AutoscalerThread> autoscaler;
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

// The flag values `worker` cannot bind directly: $PCSWEEP_COORDINATOR (unless --coordinator
// was given), the GPU list and Slurm's labels.
absl::Status CompleteWorkerOptions(const CLI::App& worker, const std::string& gpus,
                                   WorkerOptions& options) {
  if (const char* env = std::getenv("PCSWEEP_COORDINATOR");
      env != nullptr && *env != '\0' && worker.count("--coordinator") == 0) {
    options.coordinator = env;
  }
  for (absl::string_view index : absl::StrSplit(gpus, ',', absl::SkipWhitespace())) {
    int value = 0;
    if (!absl::SimpleAtoi(index, &value) || value < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--gpus: '", index, "' is not a GPU index"));
    }
    options.gpus.push_back(value);
  }
  options.labels = SlurmWorkerLabels([](const char* name) { return std::getenv(name); });
  return absl::OkStatus();
}

}  // namespace

const CLI::App* AddCoordinatorCommand(CLI::App& app, CommandAction* action) {
  auto flags = std::make_shared<CoordinatorFlags>();
  CoordinatorServerOptions& o = flags->server;
  auto* coordinator = app.add_subcommand("coordinator", "Run the coordinator service");
  coordinator->add_option("--db", o.db_path, "SQLite database file (created if missing)")
      ->required();
  coordinator->add_option("--listen", o.listen, "HOST:PORT to serve on (port 0: any free)")
      ->capture_default_str();
  coordinator
      ->add_option("--heartbeat-interval", flags->heartbeat_s, "Seconds between worker heartbeats")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  coordinator
      ->add_option("--lease-timeout", flags->lease_timeout_s,
                   "Seconds without heartbeat before a lease expires")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  coordinator->add_option(
      "--credentials", o.credentials_file,
      "Per-identity tokens and roles: lines 'ROLE NAME SECRET' (README, Security)");
  coordinator->add_option("--token-file", o.token_file,
                          "One bearer token for all clients and workers (no per-worker identity)");
  coordinator->add_option("--tls-client-ca", o.tls_client_ca_file,
                          "Require client certificates signed by this CA (PEM); CN = identity");
  coordinator->add_flag("--insecure", o.insecure,
                        "Allow a non-loopback --listen without authentication");
  auto* cert = coordinator->add_option("--tls-cert", o.tls_cert_file, "TLS certificate (PEM)");
  auto* key = coordinator->add_option("--tls-key", o.tls_key_file, "TLS private key (PEM)");
  cert->needs(key);
  key->needs(cert);
  coordinator->add_option("--http", o.http.listen,
                          "Serve the web view and /metrics on HOST:PORT (a bare PORT: loopback)");
  AddSlurmAutoscaleFlags(*coordinator, flags->slurm);
  coordinator->callback([flags, action] {
    flags->server.heartbeat_interval = SecondsFlag(flags->heartbeat_s);
    flags->server.lease_timeout = SecondsFlag(flags->lease_timeout_s);
    *action = [flags] { return RunCoordinator(flags->server, flags->slurm); };
  });
  return coordinator;
}

const CLI::App* AddWorkerCommand(CLI::App& app, CommandAction* action) {
  auto o = std::make_shared<WorkerOptions>();
  auto gpus = std::make_shared<std::string>();
  auto* worker = app.add_subcommand("worker", "Run a worker that leases and runs jobs");
  worker->add_option("--coordinator", o->coordinator, "Coordinator HOST:PORT")
      ->capture_default_str();
  worker->add_option("--slots", o->slots, "Jobs run at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  worker->add_option("--gpus", *gpus,
                     "Comma-separated GPU indices, one per slot (default: CPU slots)");
  worker->add_option("--work-dir", o->work_dir, "Job outputs, logs and the result spool")
      ->capture_default_str();
  worker->add_option("--name", o->name,
                     "Stable worker name (default: the --tls-cert CN, else host:pid)");
  worker->add_option("--token-file", o->token_file, "File holding the bearer token");
  worker->add_option("--tls-ca", o->tls_ca_file, "Root certificate (PEM) for TLS");
  auto* cert = worker->add_option("--tls-cert", o->tls_cert_file,
                                  "Worker certificate (PEM) for mTLS; its CN = --name");
  auto* key = worker->add_option("--tls-key", o->tls_key_file, "Private key of --tls-cert");
  cert->needs(key);
  key->needs(cert);
  worker->add_option("--runner", o->runner_path, "pcsweep-run binary for ML job kinds");
  worker->callback([worker, o, gpus, action] {
    *action = [worker, o, gpus]() -> absl::Status {
      PCSWEEP_RETURN_IF_ERROR(CompleteWorkerOptions(*worker, *gpus, *o));
      return RunWorker(*o);
    };
  });
  return worker;
}

}  // namespace pcsweep::cli
