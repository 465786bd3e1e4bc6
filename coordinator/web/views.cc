#include "coordinator/web/views.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/progress/progress.h"

namespace pcsweep::coordinator::web {
namespace {

constexpr int kMaxLimit = 100000;

nlohmann::ordered_json OptionalMs(const std::optional<absl::Duration>& d) {
  if (!d.has_value()) return nullptr;
  return absl::ToInt64Milliseconds(*d);
}

progress::JobTiming TimingOf(const JobRecord& job) {
  return {job.started_ms, job.finished_ms, job.eta_ms, job.progress, IsTerminal(job.state)};
}

bool Matches(const JobFilter& filter, const JobView& view) {
  if (!filter.stage.empty() && view.job.stage != filter.stage) return false;
  if (filter.state.empty()) return true;
  if (filter.state == "active") return IsActive(view.job.state);
  if (filter.state == "succeeded") return view.job.state == JobState::kSucceeded;
  return view.state == filter.state;
}

JobView MakeJobView(const JobRecord& job, absl::Time now) {
  JobView view;
  view.job = job;
  view.state = JobStateLabel(job);
  view.progress = job.state == JobState::kSucceeded ? 1.0 : std::clamp(job.progress, 0.0, 1.0);
  view.elapsed = progress::JobElapsed(TimingOf(job), now);
  view.eta = progress::JobRemaining(TimingOf(job), now);
  return view;
}

}  // namespace

absl::StatusOr<JobFilter> ParseJobFilter(const std::string& state, const std::string& stage,
                                         const std::string& limit) {
  static const std::set<std::string> kStates = {
      "", "pending", "leased", "running", "succeeded", "failed", "cancelled", "active", "reused"};
  JobFilter filter;
  filter.state = absl::AsciiStrToLower(state);
  if (kStates.count(filter.state) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state: '", state,
        "' is not one of pending, leased, running, succeeded, failed, cancelled, active, reused"));
  }
  filter.stage = stage;
  if (!limit.empty()) {
    if (!absl::SimpleAtoi(limit, &filter.limit) || filter.limit < 1 || filter.limit > kMaxLimit) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit: '", limit, "' is not a number from 1 to ", kMaxLimit));
    }
  }
  return filter;
}

std::string JobStateLabel(const JobRecord& job) {
  if (job.state == JobState::kSucceeded && !job.reused_from.empty()) return "reused";
  return absl::AsciiStrToLower(JobStateName(job.state));
}

SweepSummaryView BuildSummaryView(const SweepSummary& summary, const std::vector<JobRecord>& jobs,
                                  absl::Time now) {
  SweepSummaryView view;
  view.summary = summary;
  const bool finished = summary.sweep.finished_ms > 0;
  view.state = !finished ? "active" : summary.failed > 0 ? "finished with failures" : "finished";
  view.done = summary.succeeded + summary.failed + summary.cancelled;
  view.progress = summary.total > 0 ? static_cast<double>(view.done) / summary.total : 0;
  const absl::Time end = finished ? absl::FromUnixMillis(summary.sweep.finished_ms) : now;
  view.age =
      summary.sweep.created_ms > 0
          ? std::max(absl::ZeroDuration(), end - absl::FromUnixMillis(summary.sweep.created_ms))
          : absl::ZeroDuration();
  if (!finished) {
    // Throughput since the first job of this sweep started (reused cells cost nothing).
    int64_t first_start = 0;
    for (const JobRecord& job : jobs) {
      if (job.started_ms > 0 && job.reused_from.empty() &&
          (first_start == 0 || job.started_ms < first_start)) {
        first_start = job.started_ms;
      }
    }
    view.eta = progress::SweepRemaining(view.done - summary.reused,
                                        summary.pending + summary.leased + summary.running,
                                        first_start, now);
  }
  return view;
}

SweepView BuildSweepView(const SweepSummary& summary, const std::vector<JobRecord>& jobs,
                         const JobFilter& filter, absl::Time now) {
  SweepView view;
  view.summary = BuildSummaryView(summary, jobs, now);
  view.filter = filter;
  std::set<std::string> stages_seen;
  std::set<std::string> keys;
  for (const JobRecord& job : jobs) {
    if (stages_seen.insert(job.stage).second) view.stages.push_back(job.stage);
    JobView job_view = MakeJobView(job, now);
    if (job.state == JobState::kFailed) view.failed.push_back(job_view);
    if (!Matches(filter, job_view)) continue;
    ++view.matching;
    if (static_cast<int>(view.jobs.size()) >= filter.limit) continue;
    for (const auto& [key, value] : job.params) keys.insert(key);
    view.jobs.push_back(std::move(job_view));
  }
  view.param_keys.assign(keys.begin(), keys.end());
  return view;
}

nlohmann::ordered_json SummaryJson(const SweepSummaryView& view) {
  const SweepSummary& s = view.summary;
  nlohmann::ordered_json out;
  out["sweep_id"] = s.sweep.sweep_id;
  out["name"] = s.sweep.name;
  out["state"] = view.state;
  out["created_ms"] = s.sweep.created_ms;
  out["finished_ms"] = s.sweep.finished_ms;
  out["age_ms"] = absl::ToInt64Milliseconds(view.age);
  out["total"] = s.total;
  out["done"] = view.done;
  out["progress"] = view.progress;
  out["eta_ms"] = OptionalMs(view.eta);
  out["counts"] = {{"pending", s.pending},     {"leased", s.leased}, {"running", s.running},
                   {"succeeded", s.succeeded}, {"failed", s.failed}, {"cancelled", s.cancelled},
                   {"reused", s.reused}};
  return out;
}

nlohmann::ordered_json SweepJson(const SweepView& view) {
  nlohmann::ordered_json out;
  out["sweep"] = SummaryJson(view.summary);
  out["stages"] = view.stages;
  out["filter"] = {
      {"state", view.filter.state}, {"stage", view.filter.stage}, {"limit", view.filter.limit}};
  out["matching"] = view.matching;
  nlohmann::ordered_json jobs = nlohmann::ordered_json::array();
  for (const JobView& v : view.jobs) {
    const JobRecord& job = v.job;
    nlohmann::ordered_json j;
    j["job_id"] = job.job_id;
    j["index"] = job.index;
    j["name"] = job.name;
    j["stage"] = job.stage;
    j["kind"] = job.kind;
    j["params"] = job.params;
    j["state"] = v.state;
    j["attempt"] = job.attempt;
    j["max_attempts"] = job.max_attempts;
    j["worker"] = job.worker_id;
    j["progress"] = v.progress;
    j["progress_message"] = job.progress_message;
    j["started_ms"] = job.started_ms;
    j["finished_ms"] = job.finished_ms;
    j["elapsed_ms"] = absl::ToInt64Milliseconds(v.elapsed);
    j["eta_ms"] = OptionalMs(v.eta);
    j["error"] = job.error;
    j["reused_from"] = job.reused_from;
    nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
    for (const auto& [name, value] : job.metrics) metrics[name] = value;
    j["metrics"] = std::move(metrics);
    jobs.push_back(std::move(j));
  }
  out["jobs"] = std::move(jobs);
  return out;
}

nlohmann::ordered_json WorkersJson(const std::vector<WorkerStatus>& workers, absl::Time now) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const WorkerStatus& w : workers) {
    nlohmann::ordered_json j;
    j["worker_id"] = w.worker.worker_id;
    j["name"] = w.worker.name;
    j["host"] = w.worker.host;
    j["slots"] = w.worker.slots;
    nlohmann::ordered_json gpus = nlohmann::ordered_json::array();
    for (const GpuRecord& g : w.worker.gpus) {
      gpus.push_back({{"index", g.index}, {"name", g.name}, {"memory_bytes", g.memory_bytes}});
    }
    j["gpus"] = std::move(gpus);
    j["state"] = w.worker.state;
    j["last_heartbeat_ms"] = w.worker.last_heartbeat_ms;
    j["last_heartbeat_age_ms"] = w.worker.last_heartbeat_ms > 0
                                     ? nlohmann::ordered_json(absl::ToInt64Milliseconds(
                                           now - absl::FromUnixMillis(w.worker.last_heartbeat_ms)))
                                     : nlohmann::ordered_json(nullptr);
    nlohmann::ordered_json running = nlohmann::ordered_json::array();
    for (const JobRef& r : w.running)
      running.push_back({{"job_id", r.job_id}, {"attempt", r.attempt}});
    j["running"] = std::move(running);
    list.push_back(std::move(j));
  }
  nlohmann::ordered_json out;
  out["workers"] = std::move(list);
  return out;
}

}  // namespace pcsweep::coordinator::web
