// What the web view shows of sweeps, jobs and workers, computed once from the scheduler's
// records (SweepView, WorkerView) and rendered twice: as JSON for /api/... (this file) and as
// HTML (pages.h). Pure functions of their arguments; the current time is one of them.
//
// JSON shapes (field names are stable; times are Unix ms, durations ms, null when unknown):
//   sweep summary: {sweep_id, name, state: "active"|"finished"|"finished with failures",
//     created_ms, finished_ms, age_ms, total, done, progress (done/total), eta_ms,
//     counts: {pending, leased, running, succeeded, failed, cancelled, reused}}
//   /api/sweeps: {"sweeps": [summary...]} (oldest first)
//   /api/sweeps/ID: {"sweep": summary, "stages": [...], "filter": {state, stage, limit},
//     "matching": N, "jobs": [{job_id, index, name, stage, kind, params: {...}, state, attempt,
//     max_attempts, worker, progress, progress_message, started_ms, finished_ms, elapsed_ms,
//     eta_ms, error, reused_from, metrics: {...}}]} where a failed job's error ends with the
//     tail of its stderr
//   /api/workers: {"workers": [{worker_id, name, host, slots, gpus: [{index, name,
//     memory_bytes}], state, last_heartbeat_ms, last_heartbeat_age_ms, running: [{job_id,
//     attempt}]}]}
#ifndef PCSWEEP_COORDINATOR_WEB_VIEWS_H_
#define PCSWEEP_COORDINATOR_WEB_VIEWS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/model.h"
#include "coordinator/scheduler.h"
#include "nlohmann/json.hpp"

namespace pcsweep::coordinator::web {

// Which jobs the grid shows. state: "" (all), a lower-case job state ("pending", "leased",
// "running", "succeeded", "failed", "cancelled"), "active" (leased or running) or "reused";
// stage: "" (all) or a stage name; at most `limit` jobs (the rest are counted, not listed).
struct JobFilter {
  std::string state;
  std::string stage;
  int limit = 500;
};

// From the query parameters state, stage and limit ("" = default).
// Possible errors: InvalidArgument naming the unknown state or the bad limit.
absl::StatusOr<JobFilter> ParseJobFilter(const std::string& state, const std::string& stage,
                                         const std::string& limit);

// "pending", "leased", ... for a job; "reused" for a succeeded job that reused a result.
std::string JobStateLabel(const JobRecord& job);

struct SweepSummaryView {
  SweepSummary summary;
  std::string state;  // "active", "finished", "finished with failures"
  int done = 0;       // succeeded + failed + cancelled
  double progress = 0;
  absl::Duration age;                 // since creation (until the finish once finished)
  std::optional<absl::Duration> eta;  // the sweep's remaining time
};

struct JobView {
  JobRecord job;
  std::string state;  // JobStateLabel
  double progress = 0;
  absl::Duration elapsed;
  std::optional<absl::Duration> eta;
};

struct SweepView {
  SweepSummaryView summary;
  JobFilter filter;
  std::vector<std::string> stages;      // of all jobs, in first-appearance order
  std::vector<std::string> param_keys;  // of the listed jobs, sorted
  int matching = 0;                     // jobs that pass the filter (>= jobs.size())
  std::vector<JobView> jobs;            // the first `filter.limit` of them
  std::vector<JobView> failed;          // every failed job (the filter does not apply)
};

// `jobs`: GetSweep's jobs, in index order (needed for the sweep's ETA even when filtered).
SweepSummaryView BuildSummaryView(const SweepSummary& summary, const std::vector<JobRecord>& jobs,
                                  absl::Time now);
SweepView BuildSweepView(const SweepSummary& summary, const std::vector<JobRecord>& jobs,
                         const JobFilter& filter, absl::Time now);

nlohmann::ordered_json SummaryJson(const SweepSummaryView& view);
nlohmann::ordered_json SweepJson(const SweepView& view);
nlohmann::ordered_json WorkersJson(const std::vector<WorkerStatus>& workers, absl::Time now);

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_VIEWS_H_
