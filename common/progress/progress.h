// How far a job or a sweep has got, in words a person reads: elapsed and remaining time from
// the timestamps and progress a job reports, durations as "42s" / "3m07s", attempts spent and
// where a Slurm worker runs. One
// definition for `pcsweep status` (tools/cli/format.h) and the web view (coordinator/web).
// Pure functions of their arguments (the current time is one of them).
#ifndef PCSWEEP_COMMON_PROGRESS_PROGRESS_H_
#define PCSWEEP_COMMON_PROGRESS_PROGRESS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace pcsweep::progress {

// "850ms", "42s", "3m07s", "2h05m"; "-" for a negative or zero duration when `dash_if_zero`
// (else "0ms").
std::string HumanDuration(absl::Duration duration, bool dash_if_zero = true);

// What the timing of a job depends on (Unix milliseconds, 0 = unset).
struct JobTiming {
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  int64_t eta_ms = 0;     // the job's own estimate of its remaining time; 0 = none
  double progress = 0;    // 0..1
  bool finished = false;  // SUCCEEDED, FAILED or CANCELLED
};

// Until the finish, or until `now` while it runs; zero before it started.
absl::Duration JobElapsed(const JobTiming& job, absl::Time now);
// The job's own ETA when it reported one, else extrapolated from its progress; nullopt when
// unknown, not started or finished.
std::optional<absl::Duration> JobRemaining(const JobTiming& job, absl::Time now);

// Remaining time of a sweep, extrapolated from the throughput since its first job started:
// `done` jobs ran to an end (reused ones excluded), `remaining` have not; nullopt before
// anything finished, after the end, or without a start.
std::optional<absl::Duration> SweepRemaining(int done, int remaining, int64_t first_start_ms,
                                             absl::Time now);

// A job's attempts as they count against its budget: "spent/max", where given-back
// (preempted) attempts are not spent, plus " +N preempted" when there were any.
std::string AttemptsText(int attempt, int preemptions, int max_attempts);

// Where a worker that Slurm started runs, from its registered labels: "<job>_<task> on <node>",
// plus " (requeued Nx)" after a requeue; "-" for a worker without a slurm_job_id label.
std::string SlurmPlacementText(const std::map<std::string, std::string>& labels);

}  // namespace pcsweep::progress

#endif  // PCSWEEP_COMMON_PROGRESS_PROGRESS_H_
