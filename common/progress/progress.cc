#include "common/progress/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pcsweep::progress {

std::string HumanDuration(absl::Duration duration, bool dash_if_zero) {
  if (duration <= absl::ZeroDuration()) {
    if (dash_if_zero) return "-";
    duration = absl::ZeroDuration();
  }
  const int64_t ms = absl::ToInt64Milliseconds(duration);
  if (ms < 1000) return absl::StrCat(ms, "ms");
  const int64_t s = ms / 1000;
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

absl::Duration JobElapsed(const JobTiming& job, absl::Time now) {
  if (job.started_ms <= 0) return absl::ZeroDuration();
  const absl::Time end = job.finished_ms > 0 ? absl::FromUnixMillis(job.finished_ms) : now;
  return std::max(absl::ZeroDuration(), end - absl::FromUnixMillis(job.started_ms));
}

std::optional<absl::Duration> JobRemaining(const JobTiming& job, absl::Time now) {
  if (job.finished || job.started_ms <= 0) return std::nullopt;
  if (job.eta_ms > 0) return absl::Milliseconds(job.eta_ms);
  if (job.progress <= 0 || job.progress >= 1) return std::nullopt;
  return JobElapsed(job, now) * ((1.0 - job.progress) / job.progress);
}

std::optional<absl::Duration> SweepRemaining(int done, int remaining, int64_t first_start_ms,
                                             absl::Time now) {
  if (done <= 0 || remaining <= 0 || first_start_ms <= 0) return std::nullopt;
  const absl::Duration elapsed = now - absl::FromUnixMillis(first_start_ms);
  if (elapsed <= absl::ZeroDuration()) return std::nullopt;
  return elapsed * (static_cast<double>(remaining) / done);
}

std::string AttemptsText(int attempt, int preemptions, int max_attempts) {
  std::string text = absl::StrCat(attempt - preemptions, "/", max_attempts);
  if (preemptions > 0) absl::StrAppend(&text, " +", preemptions, " preempted");
  return text;
}

std::string SlurmPlacementText(const std::map<std::string, std::string>& labels) {
  const auto job = labels.find("slurm_job_id");
  if (job == labels.end()) return "-";
  std::string text = job->second;
  if (const auto node = labels.find("slurm_node"); node != labels.end()) {
    absl::StrAppend(&text, " on ", node->second);
  }
  if (const auto restarts = labels.find("slurm_restart_count");
      restarts != labels.end() && restarts->second != "0") {
    absl::StrAppend(&text, " (requeued ", restarts->second, "x)");
  }
  return text;
}

}  // namespace pcsweep::progress
