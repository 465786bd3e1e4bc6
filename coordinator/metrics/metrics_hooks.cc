#include "coordinator/metrics/metrics_hooks.h"

#include "common/status/status_macros.h"

namespace pcsweep::coordinator {

absl::StatusOr<std::unique_ptr<MetricsHooks>> MetricsHooks::Create(MetricsRegistry* registry) {
  std::unique_ptr<MetricsHooks> hooks(new MetricsHooks());
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->completions_,
      registry->AddCounter("pcsweep_job_completions_total",
                           "Job results recorded (CompleteJob calls whose write committed)."));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->failures_,
      registry->AddCounter("pcsweep_job_failures_total",
                           "Jobs that failed for good (attempts exhausted or not retryable)."));
  PCSWEEP_ASSIGN_OR_RETURN(hooks->retries_,
                           registry->AddCounter("pcsweep_job_retries_total",
                                                "Failed or expired attempts queued to run again."));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->lease_expiries_,
      registry->AddCounter("pcsweep_lease_expiries_total",
                           "Leases that ran out without a heartbeat from their worker."));
  constexpr char kAcquire[] = "pcsweep_acquire_job_seconds";
  constexpr char kAcquireHelp[] =
      "AcquireJob latency from the call to its answer, a long poll's wait included.";
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->acquire_assigned_,
      registry->AddHistogram(kAcquire, kAcquireHelp, LatencyBuckets(), {{"outcome", "assigned"}}));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->acquire_empty_,
      registry->AddHistogram(kAcquire, kAcquireHelp, LatencyBuckets(), {{"outcome", "empty"}}));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->acquire_error_,
      registry->AddHistogram(kAcquire, kAcquireHelp, LatencyBuckets(), {{"outcome", "error"}}));
  constexpr char kComplete[] = "pcsweep_complete_job_seconds";
  constexpr char kCompleteHelp[] =
      "CompleteJob latency from the call to its answer, the result's commit included.";
  PCSWEEP_ASSIGN_OR_RETURN(hooks->complete_recorded_,
                           registry->AddHistogram(kComplete, kCompleteHelp, LatencyBuckets(),
                                                  {{"outcome", "recorded"}}));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->complete_refused_,
      registry->AddHistogram(kComplete, kCompleteHelp, LatencyBuckets(), {{"outcome", "refused"}}));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->complete_error_,
      registry->AddHistogram(kComplete, kCompleteHelp, LatencyBuckets(), {{"outcome", "error"}}));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->store_write_,
      registry->AddHistogram("pcsweep_store_write_seconds",
                             "Store batches from queued to committed on the writer thread.",
                             LatencyBuckets()));
  PCSWEEP_ASSIGN_OR_RETURN(
      hooks->store_errors_,
      registry->AddCounter("pcsweep_store_write_errors_total",
                           "Store batches that failed to commit (nothing of them applied)."));
  return hooks;
}

void MetricsHooks::OnAcquireAnswered(absl::Duration latency, int jobs, const absl::Status& status) {
  Histogram* histogram = !status.ok() ? acquire_error_
                         : jobs > 0   ? acquire_assigned_
                                      : acquire_empty_;
  histogram->Observe(absl::ToDoubleSeconds(latency));
}

void MetricsHooks::OnCompleteAnswered(absl::Duration latency, const absl::Status& status) {
  Histogram* histogram = status.ok()                          ? complete_recorded_
                         : absl::IsFailedPrecondition(status) ? complete_refused_
                                                              : complete_error_;
  histogram->Observe(absl::ToDoubleSeconds(latency));
  if (status.ok()) completions_->Increment();
}

void MetricsHooks::OnBatchWritten(absl::Duration latency, const absl::Status& status) {
  store_write_->Observe(absl::ToDoubleSeconds(latency));
  if (!status.ok()) store_errors_->Increment();
}

}  // namespace pcsweep::coordinator
