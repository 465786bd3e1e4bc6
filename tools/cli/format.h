// Output formatting of the CLI: durations, progress bars, and the views of sweeps, jobs and
// workers that `pcsweep status/results/workers/logs` print, as listings that
// common/table/listing.h renders (aligned text, CSV, JSON, Markdown). Pure functions of their
// inputs (the current time is a parameter), so that tests compare exact text.
#ifndef PCSWEEP_TOOLS_CLI_FORMAT_H_
#define PCSWEEP_TOOLS_CLI_FORMAT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/progress/progress.h"
#include "common/table/listing.h"
#include "pcsweep/v1/coordinator.pb.h"

namespace pcsweep::cli {

// "850ms", "42s", "3m07s", "2h05m", "-" for a negative/zero duration when `dash_if_zero`.
using ::pcsweep::progress::HumanDuration;

// "[########------------]  40%" with `width` bar characters; progress is clamped to [0, 1].
std::string ProgressBar(double progress, int width = 20);

// Lower-case state name without the prefix: "pending", "running", "succeeded", ...
std::string StateName(pcsweep::v1::JobState state);

// Elapsed time of a job (until finish, or until `now` while it runs) and its remaining time:
// the job's own ETA when it reported one, else extrapolated from its progress; nullopt when
// unknown or finished.
absl::Duration JobElapsed(const pcsweep::v1::Job& job, absl::Time now);
std::optional<absl::Duration> JobEta(const pcsweep::v1::Job& job, absl::Time now);

// Remaining time of a sweep, extrapolated from the jobs that ran to completion (reused ones
// excluded) and the current throughput; nullopt before anything finished.
std::optional<absl::Duration> SweepEta(const pcsweep::v1::GetSweepResponse& sweep, absl::Time now);

// `pcsweep status SWEEP`: a summary line, then one row per job: name, state, attempt/max,
// worker, progress bar, elapsed, ETA, and the error of failed jobs below the table.
std::string FormatSweepStatus(const pcsweep::v1::GetSweepResponse& sweep, absl::Time now);

// One line of counts: "smoke (ID): 24 jobs | 10 succeeded (3 reused) | 2 running | ... | 12s".
std::string FormatSweepSummaryLine(const pcsweep::v1::SweepSummary& summary, absl::Time now);

// `pcsweep status` without a sweep: one row per sweep with its counts.
table::Listing SweepListTable(const pcsweep::v1::ListSweepsResponse& sweeps, absl::Time now);

// `pcsweep results`: one row per cell: `job`, the grid params (union of keys, sorted), `state`,
// then the metrics (union of names, sorted). A missing value is an empty cell.
table::Listing ResultsTable(const pcsweep::v1::GetSweepResponse& sweep);

// `pcsweep workers`: id, name, host, slots, GPUs, state, last heartbeat (ago), running jobs.
table::Listing WorkersTable(const pcsweep::v1::ListWorkersResponse& workers, absl::Time now);

// `text` with every control character but newline and tab (escape sequences, carriage
// returns, backspaces, DEL) written as "\xNN", so that job output cannot drive the terminal.
std::string TerminalSafe(absl::string_view text);

// `pcsweep logs JOB`: job header, attempts table (worker, state, duration, exit code/signal,
// error), and each failed attempt's stderr tail. The log file itself is appended by the caller.
std::string FormatJobLogs(const pcsweep::v1::GetJobResponse& job);

// Prints a proto as JSON (field names as in the .proto, defaults included) for `--format json`.
std::string ProtoToJson(const google::protobuf::Message& message);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_FORMAT_H_
