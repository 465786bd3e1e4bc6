#include "tools/cli/slurm_autoscaler.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "spdlog/spdlog.h"

namespace pcsweep::cli {

SlurmAutoscaler::SlurmAutoscaler(AutoscalerOptions options, ClusterView* view,
                                 SlurmBackend* backend, Clock* clock)
    : options_(options), view_(view), backend_(backend), clock_(clock) {}

bool SlurmAutoscaler::Ours(const std::string& task) const {
  const std::string job = task.substr(0, task.find('_'));
  return std::find(jobs_.begin(), jobs_.end(), job) != jobs_.end();
}

bool SlurmAutoscaler::RefreshQueue(absl::Time now, std::string& actions) {
  if (now - last_poll_ < options_.poll_interval) return !slurm_failing_;
  absl::StatusOr<std::set<std::string>> queued = backend_->Queued(jobs_);
  if (!queued.ok()) {
    if (!slurm_failing_) {
      absl::StrAppend(&actions, "slurm does not answer (", queued.status().message(),
                      "); no workers submitted or cancelled until it does\n");
    }
    slurm_failing_ = true;
    last_poll_ = now;
    return false;
  }
  if (slurm_failing_) absl::StrAppend(&actions, "slurm answers again\n");
  slurm_failing_ = false;
  last_poll_ = now;
  queued_ = std::move(*queued);
  return true;
}

std::string SlurmAutoscaler::Step() {
  std::string actions;
  const absl::Time now = clock_->Now();
  const ClusterLoad load = view_->Read();
  if (!RefreshQueue(now, actions)) return actions;

  const int slots = std::max(1, options_.slots);
  const int wanted = std::min(options_.max_workers, (load.unfinished_jobs + slots - 1) / slots);
  const int queued = static_cast<int>(queued_.size());
  if (queued < wanted) {
    const int more = wanted - queued;
    absl::StatusOr<std::string> job = backend_->Submit(more);
    if (job.ok()) {
      jobs_.push_back(*job);
      // Counted as queued now: the next squeue may be seconds away.
      for (int i = 0; i < more; ++i) queued_.insert(absl::StrCat(*job, "_", i));
      absl::StrAppend(&actions, "submitted ", more, " worker(s) as Slurm job ", *job, " (",
                      load.unfinished_jobs, " unfinished jobs, ", queued, " workers queued)\n");
    } else {
      absl::StrAppend(&actions, "cannot submit workers: ", job.status().message(), "\n");
      slurm_failing_ = true;  // no sbatch every Step: the next try follows the next squeue
    }
  }

  std::set<std::string> idle_now;
  for (const WorkerLoad& w : load.workers) {
    if (w.alive && w.running == 0 && Ours(w.slurm_task) && queued_.count(w.slurm_task) > 0) {
      idle_now.insert(w.slurm_task);
    }
  }
  for (auto it = idle_since_.begin(); it != idle_since_.end();) {
    it = idle_now.count(it->first) > 0 ? std::next(it) : idle_since_.erase(it);
  }
  for (const std::string& task : idle_now) {
    const absl::Time since = idle_since_.emplace(task, now).first->second;
    const bool needed = load.unfinished_jobs > 0 && static_cast<int>(queued_.size()) <= wanted;
    if (now - since < options_.idle_timeout || needed) continue;
    if (absl::Status cancelled = backend_->Cancel(task); !cancelled.ok()) {
      absl::StrAppend(&actions, "cannot cancel idle worker ", task, ": ", cancelled.message(),
                      "\n");
      continue;
    }
    queued_.erase(task);
    idle_since_.erase(task);
    absl::StrAppend(&actions, "cancelled worker ", task, " (idle for ",
                    absl::FormatDuration(absl::Trunc(now - since, absl::Seconds(1))), ")\n");
  }
  return actions;
}

namespace {

class SchedulerClusterView final : public ClusterView {
 public:
  explicit SchedulerClusterView(const coordinator::Scheduler& scheduler) : scheduler_(scheduler) {}
  ClusterLoad Read() override {
    ClusterLoad load;
    for (const coordinator::SweepSummary& sweep : scheduler_.ListSweeps()) {
      load.unfinished_jobs += sweep.pending + sweep.leased + sweep.running;
    }
    for (const coordinator::WorkerStatus& w : scheduler_.ListWorkers()) {
      WorkerLoad worker;
      if (auto it = w.worker.labels.find("slurm_job_id"); it != w.worker.labels.end()) {
        worker.slurm_task = it->second;
      }
      worker.alive = w.worker.state == "alive";
      worker.running = static_cast<int>(w.running.size());
      load.workers.push_back(std::move(worker));
    }
    return load;
  }

 private:
  const coordinator::Scheduler& scheduler_;
};

class AutoscalerThreadImpl final : public AutoscalerThread {
 public:
  AutoscalerThreadImpl(AutoscalerOptions options, std::unique_ptr<ClusterView> view,
                       std::unique_ptr<SlurmBackend> backend, Clock* clock, absl::Duration period)
      : view_(std::move(view)),
        backend_(std::move(backend)),
        autoscaler_(options, view_.get(), backend_.get(), clock),
        thread_([this, period] { Loop(period); }) {}
  ~AutoscalerThreadImpl() override {
    stop_.Notify();
    thread_.join();
  }

 private:
  void Loop(absl::Duration period) {
    do {
      const std::string actions = autoscaler_.Step();
      for (absl::string_view line : absl::StrSplit(actions, '\n', absl::SkipEmpty())) {
        spdlog::info("slurm autoscaler: {}", std::string(line));
      }
    } while (!stop_.WaitForNotificationWithTimeout(period));
  }

  std::unique_ptr<ClusterView> view_;
  std::unique_ptr<SlurmBackend> backend_;
  SlurmAutoscaler autoscaler_;
  absl::Notification stop_;
  std::thread thread_;  // last: started once the members it uses exist
};

}  // namespace

std::unique_ptr<ClusterView> MakeSchedulerClusterView(const coordinator::Scheduler& scheduler) {
  return std::make_unique<SchedulerClusterView>(scheduler);
}

std::unique_ptr<AutoscalerThread> AutoscalerThread::Start(AutoscalerOptions options,
                                                          std::unique_ptr<ClusterView> view,
                                                          std::unique_ptr<SlurmBackend> backend,
                                                          Clock* clock, absl::Duration period) {
  return std::make_unique<AutoscalerThreadImpl>(options, std::move(view), std::move(backend), clock,
                                                period);
}

}  // namespace pcsweep::cli
