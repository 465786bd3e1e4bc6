// MetricsHooks: the scheduler's and the store's hooks (hooks.h) as Prometheus counters and
// histograms in a MetricsRegistry. Every series exists from the start (a counter that is
// still 0 is exported as 0, so rates and alerts work before the first event).
//
// Series (all prefixed pcsweep_):
//   job_completions_total, job_failures_total, job_retries_total, lease_expiries_total;
//   acquire_job_seconds{outcome="assigned"|"empty"|"error"} (a long poll's wait included);
//   complete_job_seconds{outcome="recorded"|"refused"|"error"} (refused: a stale or unknown
//     attempt, FAILED_PRECONDITION; error: the store could not write it);
//   store_write_seconds (a batch from queued to committed), store_write_errors_total.
//
// Ownership: the registry is not owned and must outlive the hooks.
// Thread-safety: thread-safe and lock-free after Create().
#ifndef PCSWEEP_COORDINATOR_METRICS_METRICS_HOOKS_H_
#define PCSWEEP_COORDINATOR_METRICS_METRICS_HOOKS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "coordinator/metrics/hooks.h"
#include "coordinator/metrics/metrics.h"

namespace pcsweep::coordinator {

class MetricsHooks final : public SchedulerHooks, public StoreHooks {
 public:
  // Registers the series in `registry`. Possible errors: InvalidArgument when one of the
  // names is registered already with another type (a second MetricsHooks on one registry is
  // fine: it shares the series).
  static absl::StatusOr<std::unique_ptr<MetricsHooks>> Create(MetricsRegistry* registry);

  void OnAcquireAnswered(absl::Duration latency, int jobs, const absl::Status& status) override;
  void OnCompleteAnswered(absl::Duration latency, const absl::Status& status) override;
  void OnLeaseExpired() override { lease_expiries_->Increment(); }
  void OnRetryQueued() override { retries_->Increment(); }
  void OnJobFailed() override { failures_->Increment(); }
  void OnBatchWritten(absl::Duration latency, const absl::Status& status) override;

 private:
  MetricsHooks() = default;

  Counter* completions_ = nullptr;
  Counter* failures_ = nullptr;
  Counter* retries_ = nullptr;
  Counter* lease_expiries_ = nullptr;
  Histogram* acquire_assigned_ = nullptr;
  Histogram* acquire_empty_ = nullptr;
  Histogram* acquire_error_ = nullptr;
  Histogram* complete_recorded_ = nullptr;
  Histogram* complete_refused_ = nullptr;
  Histogram* complete_error_ = nullptr;
  Histogram* store_write_ = nullptr;
  Counter* store_errors_ = nullptr;
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_METRICS_METRICS_HOOKS_H_
