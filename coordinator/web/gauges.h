// The coordinator's gauges for /metrics, read from the scheduler's memory at scrape time:
//   pcsweep_jobs{sweep="ID",name="NAME",state="pending|leased|running|succeeded|failed|
//     cancelled"} (every sweep, every state, zeros included), pcsweep_sweeps{state="active|
//     finished"}, pcsweep_workers{state="alive|lost"}, pcsweep_worker_slots (of alive
//     workers), pcsweep_store_queue_depth (store batches queued, not yet committed).
// Counters and histograms come from MetricsHooks (coordinator/metrics/metrics_hooks.h).
#ifndef PCSWEEP_COORDINATOR_WEB_GAUGES_H_
#define PCSWEEP_COORDINATOR_WEB_GAUGES_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "coordinator/metrics/metrics.h"
#include "coordinator/scheduler.h"

namespace pcsweep::coordinator::web {

// `scheduler` (not owned) must outlive the registry's last Render(); `store_queue_depth` may
// be empty (no such gauge). Possible errors: InvalidArgument when a name is taken.
absl::Status RegisterCoordinatorGauges(MetricsRegistry* registry, const Scheduler* scheduler,
                                       std::function<int64_t()> store_queue_depth);

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_GAUGES_H_
