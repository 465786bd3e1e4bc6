// How the long-running subcommands (coordinator, worker, local) stop: SIGINT, SIGTERM and
// SIGUSR1 (what submitit and many Slurm set-ups send ahead of a time limit) are blocked in
// every thread and received by one waiting thread, so that services shut down cleanly instead
// of dying.
//
// Thread-safety: BlockStopSignals must run on main's thread before any thread starts;
// WaitForStopSignal may run on any one thread.
#ifndef PCSWEEP_TOOLS_CLI_STOP_SIGNALS_H_
#define PCSWEEP_TOOLS_CLI_STOP_SIGNALS_H_

#include <atomic>

namespace pcsweep::cli {

// Blocks SIGINT/SIGTERM/SIGUSR1 in the calling thread and every thread it starts afterwards,
// so that only WaitForStopSignal() receives them; ignores SIGPIPE.
void BlockStopSignals();

// Waits for SIGINT/SIGTERM/SIGUSR1, or until `stop` becomes true (checked every 100 ms).
// Returns the signal number, or 0 when stopped.
int WaitForStopSignal(const std::atomic<bool>* stop = nullptr);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_STOP_SIGNALS_H_
