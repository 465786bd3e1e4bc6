#include "tools/cli/results_db.h"

#include "common/status/status_macros.h"
#include "coordinator/store/store_reader.h"

namespace pcsweep::cli {
namespace {

void ToProto(const coordinator::SweepSummary& in, pcsweep::v1::SweepSummary* out) {
  out->set_sweep_id(in.sweep.sweep_id);
  out->set_name(in.sweep.name);
  out->set_created_ms(in.sweep.created_ms);
  out->set_finished_ms(in.sweep.finished_ms);
  out->set_total(in.total);
  out->set_pending(in.pending);
  out->set_leased(in.leased);
  out->set_running(in.running);
  out->set_succeeded(in.succeeded);
  out->set_failed(in.failed);
  out->set_cancelled(in.cancelled);
  out->set_reused(in.reused);
  out->set_spec_yaml(in.sweep.spec_yaml);
}

void ToProto(const coordinator::JobRecord& in, pcsweep::v1::Job* out) {
  out->set_job_id(in.job_id);
  out->set_sweep_id(in.sweep_id);
  out->set_name(in.name);
  out->set_stage(in.stage);
  out->set_kind(in.kind);
  out->set_config_hash(in.config_hash);
  out->mutable_params()->insert(in.params.begin(), in.params.end());
  out->set_config_json(in.config_json);
  for (const auto& parent : in.depends_on) out->add_depends_on(parent);
  // Same numbering by design (model.h).
  out->set_state(static_cast<pcsweep::v1::JobState>(static_cast<int>(in.state)));
  out->set_attempt(in.attempt);
  out->set_max_attempts(in.max_attempts);
  out->set_worker_id(in.worker_id);
  out->set_progress(in.progress);
  out->set_progress_message(in.progress_message);
  out->set_created_ms(in.created_ms);
  out->set_started_ms(in.started_ms);
  out->set_finished_ms(in.finished_ms);
  out->set_eta_ms(in.eta_ms);
  out->set_error(in.error);
  out->set_reused_from(in.reused_from);
  out->mutable_metrics()->insert(in.metrics.begin(), in.metrics.end());
  out->mutable_outputs()->insert(in.outputs.begin(), in.outputs.end());
  out->set_log_path(in.log_path);
}

}  // namespace

absl::StatusOr<pcsweep::v1::GetSweepResponse> ReadSweepFromDb(const std::string& db_path,
                                                              const std::string& id_or_name) {
  PCSWEEP_ASSIGN_OR_RETURN(auto reader, coordinator::StoreReader::OpenReadOnly(db_path));
  auto summary = reader->GetSweep(id_or_name);
  if (!summary.ok()) return Annotate(summary.status(), db_path);
  auto jobs = reader->ListJobs(summary->sweep.sweep_id);
  if (!jobs.ok()) return Annotate(jobs.status(), db_path);
  pcsweep::v1::GetSweepResponse response;
  ToProto(*summary, response.mutable_summary());
  for (const auto& job : *jobs) ToProto(job, response.add_jobs());
  return response;
}

absl::Status RunResultsFromDb(const std::string& db_path, const std::string& id_or_name,
                              TableFormat format, std::ostream& out) {
  PCSWEEP_ASSIGN_OR_RETURN(auto sweep, ReadSweepFromDb(db_path, id_or_name));
  out << RenderTable(ResultsTable(sweep), format);
  return absl::OkStatus();
}

}  // namespace pcsweep::cli
