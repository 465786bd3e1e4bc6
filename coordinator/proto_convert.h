// Conversions between the coordinator's domain types (coordinator/model.h, the scheduler's
// request and result structs in coordinator/scheduler.h, the results report request in
// coordinator/analysis/results_report.h) and the pcsweep.v1 protos of the Coordinator
// service. Used by CoordinatorService (both directions), its WatchSweep reactor (events) and
// the CLI: its --db path (tools/cli/results_db.cc renders a database like GetSweep does) and
// its GetResults requests (tools/cli/results_tables.cc).
//
// ToProto(in, out) fills the fields of `*out` that the domain type has and leaves the others
// as they are (callers pass a fresh or `add_*()`ed message); `out` is not owned. FromProto
// copies everything it needs out of the request: the result does not refer to the message,
// so a request's arena may be freed afterwards (CompleteJob does). Enum values of JobState
// and v1::JobState have the same numbers and convert by number.
//
// Thread-safety: pure functions, no shared state.
#ifndef PCSWEEP_COORDINATOR_PROTO_CONVERT_H_
#define PCSWEEP_COORDINATOR_PROTO_CONVERT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/analysis/results_report.h"
#include "coordinator/model.h"
#include "coordinator/scheduler.h"
#include "pcsweep/v1/coordinator.pb.h"

namespace pcsweep::coordinator {

// --- Domain -> proto (answers and events) ---------------------------------------------------

v1::JobState ToProto(JobState state);
void ToProto(const JobRef& in, v1::JobRef* out);
void ToProto(const GpuRecord& in, v1::GpuInfo* out);
// Includes spec_yaml; WatchSweep events clear it.
void ToProto(const SweepSummary& in, v1::SweepSummary* out);
// Metrics and outputs only with `include_results` (GetSweep sends them when asked).
void ToProto(const JobRecord& in, bool include_results, v1::Job* out);
void ToProto(const SweepEvent& in, v1::SweepEvent* out);
void ToProto(const WorkerStatus& in, v1::WorkerInfo* out);
void ToProto(const AttemptRecord& in, v1::Attempt* out);
// By value: its config_json (parents' outputs substituted, possibly large) is moved.
void ToProto(Assignment in, v1::Assignment* out);

// --- Proto -> domain (requests) -----------------------------------------------------------

// GetResultsRequest -> the report core's request.
// Possible errors: InvalidArgument "GetResults: unknown report kind N", or the format's
// error prefixed "--format: " (table::ParseFormat).
absl::StatusOr<ResultsReportRequest> FromProto(const v1::GetResultsRequest& in);
// The worker as it registers (name, host, slots, GPUs, kinds, incarnation, labels); its
// running jobs are the request's `running`, converted one by one with FromProto(v1::JobRef).
WorkerRecord FromProto(const v1::RegisterWorkerRequest& in);
JobRef FromProto(const v1::JobRef& in);
ProgressReport FromProto(const v1::JobProgress& in);
// Metrics, outputs, example rows, log path and finish time (the fencing fields stay in the
// request: the scheduler takes them as separate arguments).
JobResult FromProto(const v1::CompleteJobRequest& in);
FailureReport FromProto(const v1::FailJobRequest& in);

// --- Domain -> proto (the requests the CLI sends) -----------------------------------------

v1::ResultsReport ToProto(ResultsReportKind kind);
// The inverse of FromProto(v1::GetResultsRequest): the format goes by its table::FormatName.
void ToProto(const ResultsReportRequest& in, v1::GetResultsRequest* out);

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_PROTO_CONVERT_H_
