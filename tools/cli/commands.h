// The logic of the client subcommands of `pcsweep` (submit, status, cancel, retry, workers,
// logs, results), written against CoordinatorApi so that unit tests drive them with
// FakeCoordinatorApi. sweep_commands.h, inspect_commands.h and results_commands.h only add
// their flags to CLI11; main.cc maps a returned error to one stderr line and exit code 1.
//
// Thread-safety: each function uses only its arguments; call from one thread per stream.
#ifndef PCSWEEP_TOOLS_CLI_COMMANDS_H_
#define PCSWEEP_TOOLS_CLI_COMMANDS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/table/listing.h"
#include "tools/cli/client.h"
#include "tools/cli/format.h"

namespace pcsweep::cli {

// Reads `spec_path` and submits it. Prints the sweep id alone on `out` (for scripts) and a
// "N jobs, M reused" note on `err`. The request carries a random idempotency key; a call that
// could not reach the coordinator (or ran out of time) is retried with the same key up to
// kSubmitAttempts times in all, so a submit the coordinator did record is never duplicated.
// Possible errors: NotFound (unreadable file), InvalidArgument "FILE:LINE:COL: message" from
// the coordinator's spec check, and CoordinatorApi's errors.
inline constexpr int kSubmitAttempts = 3;
absl::StatusOr<v1::SubmitSweepResponse> RunSubmit(CoordinatorApi& api, const std::string& spec_path,
                                                  bool force, std::ostream& out, std::ostream& err);

// `status` with a sweep id: per-job table (text) or GetSweepResponse as JSON; without one: the
// list of sweeps (text table or ListSweepsResponse as JSON). `json` selects JSON.
// Possible errors: NotFound (unknown sweep) and CoordinatorApi's errors.
absl::Status RunStatus(CoordinatorApi& api, const std::string& sweep_id, bool json, Clock& clock,
                       std::ostream& out);

struct WatchOptions {
  // true: clear the terminal and redraw the whole status table; false: print the summary line
  // whenever the counts change (logs, pipes).
  bool redraw = false;
  // Redraws are at most this frequent (the last one, when the sweep finishes, always happens).
  absl::Duration min_interval = absl::Milliseconds(250);
  // How often a stream that ended while the sweep is unfinished may be re-opened.
  int max_reconnects = 20;
};

// Follows a sweep with WatchSweep until every job is finished, drawing progress on `out`, and
// returns the final state (with metrics).
// Possible errors: CoordinatorApi's errors; Unavailable when the stream keeps ending early.
absl::StatusOr<v1::GetSweepResponse> WatchUntilFinished(CoordinatorApi& api,
                                                        const std::string& sweep_id,
                                                        const WatchOptions& options, Clock& clock,
                                                        std::ostream& out);

// True once no job of the sweep is pending, leased or running.
bool SweepFinished(const v1::SweepSummary& summary);

// `cancel` / `retry`: print how many jobs were affected. Possible errors: CoordinatorApi's.
absl::Status RunCancel(CoordinatorApi& api, const std::string& sweep_id, std::ostream& out);
absl::Status RunRetry(CoordinatorApi& api, const std::string& sweep_id, std::ostream& out);

// `workers`: the worker table. Possible errors: CoordinatorApi's.
absl::Status RunWorkers(CoordinatorApi& api, table::ListingFormat format, Clock& clock,
                        std::ostream& out);

// `logs JOB`: attempts, stderr tails, then the log file of the latest attempt when this machine
// can read it (the last `max_log_bytes` of it), else a note saying where it lives.
// Possible errors: NotFound (unknown job) and CoordinatorApi's errors.
absl::Status RunLogs(CoordinatorApi& api, const std::string& job_id, std::ostream& out,
                     size_t max_log_bytes = 64 << 10);

// `results SWEEP`: one row per cell (params + metrics) in `format`.
// Possible errors: NotFound (unknown sweep) and CoordinatorApi's errors.
absl::Status RunResults(CoordinatorApi& api, const std::string& sweep_id,
                        table::ListingFormat format, std::ostream& out);

// Reads the last `max_bytes` of a local file; nullopt-like NotFound when it is not readable.
absl::StatusOr<std::string> ReadFileTail(const std::string& path, size_t max_bytes);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_COMMANDS_H_
