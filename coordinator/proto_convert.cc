#include "coordinator/proto_convert.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/table/table.h"
#include "proto/example_row_convert.h"

namespace pcsweep::coordinator {

v1::JobState ToProto(JobState state) { return static_cast<v1::JobState>(static_cast<int>(state)); }

void ToProto(const JobRef& in, v1::JobRef* out) {
  out->set_job_id(in.job_id);
  out->set_attempt(in.attempt);
}

void ToProto(const GpuRecord& in, v1::GpuInfo* out) {
  out->set_index(in.index);
  out->set_name(in.name);
  out->set_memory_bytes(in.memory_bytes);
}

void ToProto(const SweepSummary& in, v1::SweepSummary* out) {
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

void ToProto(const JobRecord& in, bool include_results, v1::Job* out) {
  out->set_job_id(in.job_id);
  out->set_sweep_id(in.sweep_id);
  out->set_name(in.name);
  out->set_stage(in.stage);
  out->set_kind(in.kind);
  out->set_config_hash(in.config_hash);
  out->mutable_params()->insert(in.params.begin(), in.params.end());
  out->set_config_json(in.config_json);
  for (const std::string& d : in.depends_on) out->add_depends_on(d);
  out->set_state(ToProto(in.state));
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
  out->set_log_path(in.log_path);
  out->set_preemptions(in.preemptions);
  if (include_results) {
    out->mutable_metrics()->insert(in.metrics.begin(), in.metrics.end());
    out->mutable_outputs()->insert(in.outputs.begin(), in.outputs.end());
  }
}

void ToProto(const SweepEvent& in, v1::SweepEvent* out) {
  out->set_seq(in.seq);
  out->set_time_ms(in.time_ms);
  out->set_sweep_id(in.sweep_id);
  out->set_job_id(in.job_id);
  out->set_state(ToProto(in.state));
  out->set_attempt(in.attempt);
  out->set_progress(in.progress);
  out->set_message(in.message);
}

void ToProto(const WorkerStatus& in, v1::WorkerInfo* out) {
  out->set_worker_id(in.worker.worker_id);
  out->set_name(in.worker.name);
  out->set_host(in.worker.host);
  out->set_slots(in.worker.slots);
  for (const GpuRecord& g : in.worker.gpus) ToProto(g, out->add_gpus());
  out->set_state(in.worker.state);
  out->set_last_heartbeat_ms(in.worker.last_heartbeat_ms);
  for (const JobRef& r : in.running) ToProto(r, out->add_running());
  out->mutable_labels()->insert(in.worker.labels.begin(), in.worker.labels.end());
}

void ToProto(const AttemptRecord& in, v1::Attempt* out) {
  out->set_attempt(in.attempt);
  out->set_worker_id(in.worker_id);
  out->set_state(ToProto(in.state));
  out->set_started_ms(in.started_ms);
  out->set_finished_ms(in.finished_ms);
  out->set_error(in.error);
  out->set_exit_code(in.exit_code);
  out->set_signal(in.signal);
  out->set_stderr_tail(in.stderr_tail);
  out->set_log_path(in.log_path);
  out->set_preempted(in.preempted);
}

void ToProto(Assignment in, v1::Assignment* out) {
  out->set_job_id(in.job_id);
  out->set_attempt(in.attempt);
  out->set_sweep_id(in.sweep_id);
  out->set_name(in.name);
  out->set_kind(in.kind);
  out->set_config_json(std::move(in.config_json));
  out->mutable_params()->insert(in.params.begin(), in.params.end());
}

absl::StatusOr<ResultsReportRequest> FromProto(const v1::GetResultsRequest& in) {
  ResultsReportRequest out;
  out.sweep = in.sweep_id();
  out.recompute = in.recompute();
  switch (in.report()) {
    case v1::RESULTS_REPORT_UNSPECIFIED:
      out.kind = ResultsReportKind::kComparisonsOnly;
      break;
    case v1::RESULTS_REPORT_MAIN_TABLE:
      out.kind = ResultsReportKind::kMainTable;
      break;
    case v1::RESULTS_REPORT_ABLATION_TABLE:
      out.kind = ResultsReportKind::kAblationTable;
      break;
    case v1::RESULTS_REPORT_PHENOMENA_TABLE:
      out.kind = ResultsReportKind::kPhenomenaTable;
      break;
    case v1::RESULTS_REPORT_PLOT:
      out.kind = ResultsReportKind::kPlot;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("GetResults: unknown report kind ", static_cast<int>(in.report())));
  }
  if (!in.format().empty()) {
    auto format = table::ParseFormat(in.format());
    if (!format.ok()) return Annotate(format.status(), "--format");
    out.format = *format;
  }
  if (!in.plot_x().empty()) out.options.plot_x_key = in.plot_x();
  out.options.plot_eval_set = in.plot_eval_set();
  return out;
}

WorkerRecord FromProto(const v1::RegisterWorkerRequest& in) {
  WorkerRecord worker;
  worker.name = in.worker_name();
  worker.host = in.host();
  worker.slots = in.slots();
  for (const v1::GpuInfo& g : in.gpus()) {
    worker.gpus.push_back(GpuRecord{g.index(), g.name(), g.memory_bytes()});
  }
  worker.kinds.assign(in.kinds().begin(), in.kinds().end());
  worker.incarnation_id = in.incarnation_id();
  worker.labels.insert(in.labels().begin(), in.labels().end());
  return worker;
}

JobRef FromProto(const v1::JobRef& in) { return JobRef{in.job_id(), in.attempt()}; }

ProgressReport FromProto(const v1::JobProgress& in) {
  return ProgressReport{in.job_id(), in.attempt(), in.progress(), in.message(), in.eta_ms()};
}

JobResult FromProto(const v1::CompleteJobRequest& in) {
  JobResult result;
  result.metrics.insert(in.metrics().begin(), in.metrics().end());
  result.outputs.insert(in.outputs().begin(), in.outputs().end());
  result.examples.reserve(in.examples_size());
  for (const v1::ExampleRow& e : in.examples()) result.examples.push_back(proto::FromProto(e));
  result.log_path = in.log_path();
  result.finished_ms = in.finished_ms();
  return result;
}

FailureReport FromProto(const v1::FailJobRequest& in) {
  FailureReport report;
  report.worker_id = in.worker_id();
  report.incarnation_id = in.incarnation_id();
  report.job_id = in.job_id();
  report.attempt = in.attempt();
  report.error = in.error();
  report.exit_code = in.exit_code();
  report.signal = in.signal();
  report.stderr_tail = in.stderr_tail();
  report.retryable = in.retryable();
  report.log_path = in.log_path();
  report.preempted = in.preempted();
  return report;
}

v1::ResultsReport ToProto(ResultsReportKind kind) {
  switch (kind) {
    case ResultsReportKind::kComparisonsOnly:
      return v1::RESULTS_REPORT_UNSPECIFIED;
    case ResultsReportKind::kMainTable:
      return v1::RESULTS_REPORT_MAIN_TABLE;
    case ResultsReportKind::kAblationTable:
      return v1::RESULTS_REPORT_ABLATION_TABLE;
    case ResultsReportKind::kPhenomenaTable:
      return v1::RESULTS_REPORT_PHENOMENA_TABLE;
    case ResultsReportKind::kPlot:
      return v1::RESULTS_REPORT_PLOT;
  }
  return v1::RESULTS_REPORT_UNSPECIFIED;
}

void ToProto(const ResultsReportRequest& in, v1::GetResultsRequest* out) {
  out->set_sweep_id(in.sweep);
  out->set_report(ToProto(in.kind));
  out->set_format(table::FormatName(in.format));
  out->set_recompute(in.recompute);
  out->set_plot_x(in.options.plot_x_key);
  out->set_plot_eval_set(in.options.plot_eval_set);
}

}  // namespace pcsweep::coordinator
