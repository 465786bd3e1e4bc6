// Domain types of the coordinator, shared by the store (which persists them), the scheduler
// (which owns the live copies) and the gRPC adapter (which converts them to/from protos).
// Plain structs without gRPC so that the logic and store libraries never link gRPC.
//
// Times are Unix milliseconds (0 = unset). States use the numbering of pcsweep.v1.JobState.
// Thread-safety: plain values; synchronise externally.
#ifndef PCSWEEP_COORDINATOR_MODEL_H_
#define PCSWEEP_COORDINATOR_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/jobfile/example_row.h"

namespace pcsweep::coordinator {

// Same numbers as pcsweep.v1.JobState, so conversion is a cast.
enum class JobState : int {
  kUnspecified = 0,  // sweep-level events only
  kPending = 1,
  kLeased = 2,
  kRunning = 3,
  kSucceeded = 4,
  kFailed = 5,
  kCancelled = 6,
};

// "PENDING", "LEASED", ... ("UNKNOWN" for out-of-range values).
absl::string_view JobStateName(JobState state);
// True for SUCCEEDED, FAILED and CANCELLED: the job never runs again.
inline bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}
// True for LEASED and RUNNING: a worker holds the job.
inline bool IsActive(JobState state) {
  return state == JobState::kLeased || state == JobState::kRunning;
}

struct SweepRecord {
  std::string sweep_id;
  std::string name;
  std::string spec_yaml;
  std::string spec_path;
  bool force = false;
  int64_t created_ms = 0;
  int64_t finished_ms = 0;      // 0 while any job is unfinished
  std::string idempotency_key;  // the submitter's key ("" = none); unique when set
};

// A sweep plus its job counts per state (what `pcsweep status` lists).
struct SweepSummary {
  SweepRecord sweep;
  int total = 0;
  int pending = 0;
  int leased = 0;
  int running = 0;
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  int reused = 0;  // succeeded by reusing another job's result
};

// One cell of a sweep with its current state and (once succeeded) its result summary.
struct JobRecord {
  std::string job_id;  // "<sweep_id>.<index>"
  std::string sweep_id;
  int index = 0;     // position in the sweep (parents before children)
  std::string name;  // spec key, e.g. "train[layers=early,seed=1]"
  std::string stage;
  std::string kind;
  std::string config_hash;
  std::map<std::string, std::string> params;
  std::string config_json;              // parents' placeholders unresolved
  std::vector<std::string> depends_on;  // job ids
  JobState state = JobState::kPending;
  int attempt = 0;  // 0 before the first lease
  int max_attempts = 3;
  // Attempts a worker gave back (preempted, stopping): they do not count against
  // max_attempts, so the attempts spent are attempt - preemptions.
  int preemptions = 0;
  std::string worker_id;       // holder of the current/last lease
  std::string incarnation_id;  // incarnation that holds the current lease (fencing)
  double progress = 0;
  std::string progress_message;
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  int64_t eta_ms = 0;
  std::string error;
  std::string reused_from;
  std::string log_path;
  // Result (filled for SUCCEEDED jobs when loaded with results).
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> outputs;
};

struct AttemptRecord {
  std::string job_id;
  int attempt = 0;
  std::string worker_id;
  JobState state = JobState::kLeased;  // LEASED/RUNNING while active, then its outcome
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  std::string error;
  int exit_code = 0;
  int signal = 0;
  std::string stderr_tail;
  std::string log_path;
  bool preempted = false;  // the worker gave the job back; state is FAILED, not counted
};

struct GpuRecord {
  int index = 0;
  std::string name;
  int64_t memory_bytes = 0;
};

struct WorkerRecord {
  std::string worker_id;  // the stable worker name
  std::string name;
  std::string host;
  int slots = 0;
  std::vector<GpuRecord> gpus;
  std::vector<std::string> kinds;  // empty = any kind
  std::string incarnation_id;
  std::string state;  // "alive" or "lost"
  int64_t registered_ms = 0;
  int64_t last_heartbeat_ms = 0;
  // What the worker reports about where it runs, e.g. slurm_job_id, slurm_node.
  std::map<std::string, std::string> labels;
};

// One evaluated (original, paraphrase) pair, as reported by a job: the job-file contract's row,
// stored as the worker read it.
using ExampleRow = jobfile::ExampleRow;

// An example row as stored: with the job and attempt that produced it.
struct StoredExample {
  std::string job_id;
  int attempt = 0;
  ExampleRow row;
};

// One entry of a sweep's event log (WatchSweep). `seq` increases by one per sweep.
struct SweepEvent {
  std::string sweep_id;
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string job_id;  // empty for sweep-level events
  JobState state = JobState::kPending;
  int attempt = 0;
  double progress = 0;
  std::string message;
};

// A job's result as reported by CompleteJob.
struct JobResult {
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> outputs;
  std::vector<ExampleRow> examples;
  std::string log_path;
  int64_t finished_ms = 0;
};

// One arm-vs-baseline test of a finished sweep (common/analysis), a row of the `comparisons`
// table; written by the store (ReplaceComparisons), computed by coordinator/analysis.
struct ComparisonRecord {
  std::string sweep_id;
  std::string arm;
  std::string baseline;
  std::string eval_set;
  std::string metric;
  std::string test;
  double statistic = 0;
  double p = 0;
  double adjusted_p = 0;
  double ci_low = 0;
  double ci_high = 0;
  int64_t n = 0;
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_MODEL_H_
