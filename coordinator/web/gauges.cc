#include "coordinator/web/gauges.h"

#include "common/status/status_macros.h"

namespace pcsweep::coordinator::web {

absl::Status RegisterCoordinatorGauges(MetricsRegistry* registry, const Scheduler* scheduler,
                                       std::function<int64_t()> store_queue_depth) {
  PCSWEEP_RETURN_IF_ERROR(registry->AddGauge(
      "pcsweep_jobs", "Jobs by sweep and state.", [scheduler](std::vector<GaugeSample>& out) {
        for (const SweepSummary& s : scheduler->ListSweeps()) {
          const std::pair<const char*, int> counts[] = {
              {"pending", s.pending},     {"leased", s.leased}, {"running", s.running},
              {"succeeded", s.succeeded}, {"failed", s.failed}, {"cancelled", s.cancelled}};
          for (const auto& [state, count] : counts) {
            out.push_back({{{"sweep", s.sweep.sweep_id}, {"name", s.sweep.name}, {"state", state}},
                           static_cast<double>(count)});
          }
        }
      }));
  PCSWEEP_RETURN_IF_ERROR(
      registry->AddGauge("pcsweep_sweeps", "Sweeps by state (finished: no unfinished job).",
                         [scheduler](std::vector<GaugeSample>& out) {
                           int active = 0;
                           int finished = 0;
                           for (const SweepSummary& s : scheduler->ListSweeps()) {
                             (s.sweep.finished_ms > 0 ? finished : active)++;
                           }
                           out.push_back({{{"state", "active"}}, static_cast<double>(active)});
                           out.push_back({{{"state", "finished"}}, static_cast<double>(finished)});
                         }));
  // One ListWorkers per scrape for both worker gauges would need shared state between
  // collectors; the list is small, so each reads it.
  PCSWEEP_RETURN_IF_ERROR(registry->AddGauge(
      "pcsweep_workers", "Registered workers by state (lost: no heartbeat within the lease).",
      [scheduler](std::vector<GaugeSample>& out) {
        int alive = 0;
        int lost = 0;
        for (const WorkerStatus& w : scheduler->ListWorkers()) {
          (w.worker.state == "alive" ? alive : lost)++;
        }
        out.push_back({{{"state", "alive"}}, static_cast<double>(alive)});
        out.push_back({{{"state", "lost"}}, static_cast<double>(lost)});
      }));
  PCSWEEP_RETURN_IF_ERROR(
      registry->AddGauge("pcsweep_worker_slots", "Job slots of the alive workers.",
                         [scheduler](std::vector<GaugeSample>& out) {
                           int slots = 0;
                           for (const WorkerStatus& w : scheduler->ListWorkers()) {
                             if (w.worker.state == "alive") slots += w.worker.slots;
                           }
                           out.push_back({{}, static_cast<double>(slots)});
                         }));
  if (store_queue_depth) {
    PCSWEEP_RETURN_IF_ERROR(registry->AddGauge(
        "pcsweep_store_queue_depth", "Store batches queued for the writer and not yet committed.",
        [depth = std::move(store_queue_depth)](std::vector<GaugeSample>& out) {
          out.push_back({{}, static_cast<double>(depth())});
        }));
  }
  return absl::OkStatus();
}

}  // namespace pcsweep::coordinator::web
