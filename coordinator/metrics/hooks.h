// The hooks through which the scheduler and the store report what the coordinator's metrics
// count (GET /metrics): interfaces with empty defaults, so that the scheduler and the store
// know nothing of Prometheus and tests may pass nothing (a null pointer: no hooks) or a
// recording fake. MetricsHooks (metrics_hooks.h) is the implementation the coordinator uses.
//
// Thread-safety: implementations must be thread-safe, cheap and non-blocking: the scheduler
// calls them with its mutex held or on the store's writer thread, and they must not call back
// into the scheduler or the store.
#ifndef PCSWEEP_COORDINATOR_METRICS_HOOKS_H_
#define PCSWEEP_COORDINATOR_METRICS_HOOKS_H_

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace pcsweep::coordinator {

class SchedulerHooks {
 public:
  virtual ~SchedulerHooks() = default;
  // An AcquireJob call was answered after `latency` (a long poll's wait included) with
  // `jobs` leased jobs, or with the error `status` (then jobs = 0).
  virtual void OnAcquireAnswered(absl::Duration latency, int jobs, const absl::Status& status) {}
  // A CompleteJob call was answered after `latency` (its write's commit included): OK means
  // a result was recorded.
  virtual void OnCompleteAnswered(absl::Duration latency, const absl::Status& status) {}
  // A lease ran out without a heartbeat (the attempt fails; the job may be retried).
  virtual void OnLeaseExpired() {}
  // A failed attempt put its job back in the queue for another attempt.
  virtual void OnRetryQueued() {}
  // A job failed for good (attempts exhausted or a non-retryable failure).
  virtual void OnJobFailed() {}
};

class StoreHooks {
 public:
  virtual ~StoreHooks() = default;
  // A queued batch was committed (status OK) or failed, `latency` after it was queued.
  virtual void OnBatchWritten(absl::Duration latency, const absl::Status& status) {}
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_METRICS_HOOKS_H_
