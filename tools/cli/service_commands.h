// `pcsweep coordinator` and `pcsweep worker`: the two services, run in the foreground until a
// stop signal (stop_signals.h).
//
//   coordinator --db FILE [--listen HOST:PORT] [--heartbeat-interval S] [--lease-timeout S]
//               [--credentials F | --token-file F] [--tls-cert F --tls-key F]
//               [--tls-client-ca F] [--insecure] [--http HOST:PORT] [--slurm-* ...]
//   worker [--coordinator HOST:PORT] [--slots N] [--gpus I,J,...] [--work-dir D] [--name N]
//          [--token-file F] [--tls-ca F] [--tls-cert F --tls-key F] [--runner F]
//
// `coordinator` serves coordinator/coordinator_server.h (and the Slurm autoscaler of
// slurm_command.h with --slurm-max-workers), printing "pcsweep coordinator listening on
// HOST:PORT (db FILE)" (scripts read the bound port there). `worker` runs
// worker/worker_daemon.h; it dials $PCSWEEP_COORDINATOR when --coordinator is not given and
// registers with Slurm's labels when Slurm started it (SlurmWorkerLabels).
//
// Thread-safety: see command.h.
#ifndef PCSWEEP_TOOLS_CLI_SERVICE_COMMANDS_H_
#define PCSWEEP_TOOLS_CLI_SERVICE_COMMANDS_H_

#include "CLI/CLI.hpp"
#include "tools/cli/command.h"

namespace pcsweep::cli {

// Adds `coordinator` to `app` and returns it (main.cc logs at info for the services). Its run
// ends with OK on a stop signal.
// Possible errors (of the run): those of CoordinatorServer::Start (InvalidArgument,
// FailedPrecondition for a non-loopback address without auth, Unavailable for an address in
// use, Internal/DataLoss for the database) and of StartSlurmAutoscaler.
const CLI::App* AddCoordinatorCommand(CLI::App& app, CommandAction* action);

// Adds `worker` to `app` and returns it. Its run ends with OK on a stop signal (running jobs
// are given back to the coordinator).
// Possible errors (of the run): InvalidArgument ("--gpus: 'X' is not a GPU index"), those of
// WorkerDaemon::Start, the daemon's halt reason (e.g. the coordinator refused it), and
// Aborted when another process registered under its name and took over its jobs.
const CLI::App* AddWorkerCommand(CLI::App& app, CommandAction* action);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_SERVICE_COMMANDS_H_
