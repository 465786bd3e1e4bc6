#include "tools/cli/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace pcsweep::cli {
namespace {

namespace v1 = ::pcsweep::v1;
using ::pcsweep::table::ListingCell;

absl::Time FromMs(int64_t ms) { return absl::FromUnixMillis(ms); }

bool IsFinished(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string FormatTimeAgo(int64_t ms, absl::Time now) {
  if (ms <= 0) return "never";
  return absl::StrCat(HumanDuration(now - FromMs(ms), /*dash_if_zero=*/false), " ago");
}

}  // namespace

std::string ProgressBar(double progress, int width) {
  if (!std::isfinite(progress)) progress = 0;
  progress = std::clamp(progress, 0.0, 1.0);
  const int filled = static_cast<int>(std::floor(progress * width + 1e-9));
  return absl::StrFormat("[%s%s] %3d%%", std::string(filled, '#'), std::string(width - filled, '-'),
                         static_cast<int>(std::floor(progress * 100 + 1e-9)));
}

std::string StateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_PENDING:
      return "pending";
    case v1::JOB_STATE_LEASED:
      return "leased";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

namespace {
progress::JobTiming Timing(const v1::Job& job) {
  return {job.started_ms(), job.finished_ms(), job.eta_ms(), job.progress(),
          IsFinished(job.state())};
}
}  // namespace

absl::Duration JobElapsed(const v1::Job& job, absl::Time now) {
  return progress::JobElapsed(Timing(job), now);
}

std::optional<absl::Duration> JobEta(const v1::Job& job, absl::Time now) {
  return progress::JobRemaining(Timing(job), now);
}

std::optional<absl::Duration> SweepEta(const v1::GetSweepResponse& sweep, absl::Time now) {
  const auto& summary = sweep.summary();
  if (summary.finished_ms() > 0) return std::nullopt;
  const int done = summary.succeeded() + summary.failed() + summary.cancelled() - summary.reused();
  const int remaining = summary.pending() + summary.leased() + summary.running();
  // Throughput since the first job of this sweep started (reuse makes cells free).
  int64_t first_start = 0;
  for (const auto& job : sweep.jobs()) {
    if (job.started_ms() > 0 && job.reused_from().empty() &&
        (first_start == 0 || job.started_ms() < first_start)) {
      first_start = job.started_ms();
    }
  }
  return progress::SweepRemaining(done, remaining, first_start, now);
}

std::string FormatSweepSummaryLine(const v1::SweepSummary& summary, absl::Time now) {
  std::vector<std::string> parts;
  parts.push_back(
      absl::StrCat(summary.name(), " (", summary.sweep_id(), "): ", summary.total(), " jobs"));
  std::string succeeded = absl::StrCat(summary.succeeded(), " succeeded");
  if (summary.reused() > 0) absl::StrAppend(&succeeded, " (", summary.reused(), " reused)");
  parts.push_back(succeeded);
  auto add = [&](int count, const char* what) {
    if (count > 0) parts.push_back(absl::StrCat(count, " ", what));
  };
  add(summary.running(), "running");
  add(summary.leased(), "leased");
  add(summary.pending(), "pending");
  add(summary.failed(), "failed");
  add(summary.cancelled(), "cancelled");
  if (summary.created_ms() > 0) {
    const absl::Time end = summary.finished_ms() > 0 ? FromMs(summary.finished_ms()) : now;
    parts.push_back(absl::StrCat(summary.finished_ms() > 0 ? "finished after " : "elapsed ",
                                 HumanDuration(end - FromMs(summary.created_ms()), false)));
  }
  return absl::StrJoin(parts, " | ");
}

std::string FormatSweepStatus(const v1::GetSweepResponse& sweep, absl::Time now) {
  std::string out = FormatSweepSummaryLine(sweep.summary(), now);
  if (auto eta = SweepEta(sweep, now)) absl::StrAppend(&out, " | ETA ", HumanDuration(*eta));
  absl::StrAppend(&out, "\n\n");
  table::Listing listing;
  listing.columns = {"job", "state", "attempt", "worker", "progress", "elapsed", "eta"};
  std::vector<const v1::Job*> failed;
  for (const auto& job : sweep.jobs()) {
    std::string state = StateName(job.state());
    if (!job.reused_from().empty()) state = "reused";
    const double progress = job.state() == v1::JOB_STATE_SUCCEEDED ? 1.0 : job.progress();
    const auto eta = JobEta(job, now);
    listing.rows.push_back(
        {job.name(), state,
         progress::AttemptsText(job.attempt(), job.preemptions(), job.max_attempts()),
         job.worker_id().empty() ? "-" : job.worker_id(), ProgressBar(progress),
         HumanDuration(JobElapsed(job, now)), eta ? HumanDuration(*eta, false) : "-"});
    if (job.state() == v1::JOB_STATE_FAILED && !job.error().empty()) failed.push_back(&job);
  }
  absl::StrAppend(&out, table::RenderListing(listing, table::ListingFormat::kText));
  for (const v1::Job* job : failed) {
    absl::StrAppend(&out, "\n", job->name(), " (", job->job_id(),
                    ") failed: ", TerminalSafe(job->error()), "\n");
  }
  return out;
}

table::Listing SweepListTable(const v1::ListSweepsResponse& sweeps, absl::Time now) {
  table::Listing listing;
  listing.columns = {"sweep",   "name",   "jobs",      "succeeded", "reused",
                     "running", "failed", "cancelled", "state",     "age"};
  for (const auto& s : sweeps.sweeps()) {
    const bool finished = s.finished_ms() > 0;
    std::string state =
        finished ? (s.failed() > 0 ? "finished with failures" : "finished") : "active";
    listing.rows.push_back({s.sweep_id(), s.name(), ListingCell::Number(s.total()),
                            ListingCell::Number(s.succeeded()), ListingCell::Number(s.reused()),
                            ListingCell::Number(s.running() + s.leased()),
                            ListingCell::Number(s.failed()), ListingCell::Number(s.cancelled()),
                            state, s.created_ms() > 0 ? FormatTimeAgo(s.created_ms(), now) : "-"});
  }
  return listing;
}

table::Listing ResultsTable(const v1::GetSweepResponse& sweep) {
  std::set<std::string> param_names;
  std::set<std::string> metric_names;
  for (const auto& job : sweep.jobs()) {
    for (const auto& [name, value] : job.params()) param_names.insert(name);
    for (const auto& [name, value] : job.metrics()) metric_names.insert(name);
  }
  table::Listing listing;
  listing.columns.push_back("job");
  listing.columns.insert(listing.columns.end(), param_names.begin(), param_names.end());
  listing.columns.push_back("state");
  listing.columns.insert(listing.columns.end(), metric_names.begin(), metric_names.end());
  for (const auto& job : sweep.jobs()) {
    std::vector<ListingCell> row;
    row.push_back(job.name());
    for (const auto& name : param_names) {
      auto it = job.params().find(name);
      if (it == job.params().end()) {
        row.emplace_back();
        continue;
      }
      // Params are canonical YAML scalars: keep numbers numeric for JSON.
      ListingCell cell(it->second);
      char* end = nullptr;
      const double value = std::strtod(it->second.c_str(), &end);
      if (!it->second.empty() && end == it->second.c_str() + it->second.size()) cell.number = value;
      row.push_back(std::move(cell));
    }
    row.push_back(job.reused_from().empty() ? StateName(job.state()) : "reused");
    for (const auto& name : metric_names) {
      auto it = job.metrics().find(name);
      row.push_back(it == job.metrics().end() ? ListingCell() : ListingCell::Number(it->second));
    }
    listing.rows.push_back(std::move(row));
  }
  return listing;
}

table::Listing WorkersTable(const v1::ListWorkersResponse& workers, absl::Time now) {
  table::Listing listing;
  listing.columns = {"worker", "name",  "host",           "slots",  "gpus",
                     "slurm",  "state", "last heartbeat", "running"};
  for (const auto& w : workers.workers()) {
    std::vector<std::string> gpus;
    for (const auto& gpu : w.gpus()) {
      gpus.push_back(absl::StrFormat("%d:%s(%.0fGiB)", gpu.index(), gpu.name(),
                                     gpu.memory_bytes() / static_cast<double>(1LL << 30)));
    }
    std::vector<std::string> running;
    for (const auto& ref : w.running())
      running.push_back(absl::StrCat(ref.job_id(), "#", ref.attempt()));
    listing.rows.push_back({w.worker_id(), w.name(), w.host(), ListingCell::Number(w.slots()),
                            gpus.empty() ? "cpu" : absl::StrJoin(gpus, ","),
                            progress::SlurmPlacementText({w.labels().begin(), w.labels().end()}),
                            w.state(), FormatTimeAgo(w.last_heartbeat_ms(), now),
                            running.empty() ? "-" : absl::StrJoin(running, ",")});
  }
  return listing;
}

std::string TerminalSafe(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\t' || (u >= 0x20 && u != 0x7f)) {
      out += c;
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    }
  }
  return out;
}

std::string FormatJobLogs(const v1::GetJobResponse& response) {
  const v1::Job& job = response.job();
  std::string out = absl::StrCat(
      "job ", job.job_id(), " ", job.name(), ": ", StateName(job.state()), ", attempts ",
      progress::AttemptsText(job.attempt(), job.preemptions(), job.max_attempts()), "\n");
  if (!job.reused_from().empty())
    absl::StrAppend(&out, "reuses the result of job ", job.reused_from(), "\n");
  if (!job.error().empty()) absl::StrAppend(&out, "error: ", TerminalSafe(job.error()), "\n");
  if (response.attempts().empty()) {
    absl::StrAppend(&out, "no attempts yet\n");
    return out;
  }
  table::Listing listing;
  listing.columns = {"attempt", "worker", "state", "duration", "exit", "error"};
  for (const auto& a : response.attempts()) {
    std::string exit = "-";
    if (a.signal() > 0) {
      exit = absl::StrCat("signal ", a.signal());
    } else if (a.state() == v1::JOB_STATE_SUCCEEDED || a.state() == v1::JOB_STATE_FAILED) {
      exit = absl::StrCat("code ", a.exit_code());
    }
    const absl::Duration duration = a.started_ms() > 0 && a.finished_ms() > 0
                                        ? FromMs(a.finished_ms()) - FromMs(a.started_ms())
                                        : absl::ZeroDuration();
    listing.rows.push_back(
        {ListingCell::Number(a.attempt()), a.worker_id().empty() ? "-" : a.worker_id(),
         a.preempted() ? "PREEMPTED" : StateName(a.state()), HumanDuration(duration), exit,
         a.error().empty() ? "-" : TerminalSafe(a.error())});
  }
  absl::StrAppend(&out, "\n", table::RenderListing(listing, table::ListingFormat::kText));
  for (const auto& a : response.attempts()) {
    if (a.stderr_tail().empty()) continue;
    absl::StrAppend(&out, "\n--- attempt ", a.attempt(), " stderr (tail) ---\n",
                    TerminalSafe(a.stderr_tail()));
    if (a.stderr_tail().back() != '\n') out += "\n";
  }
  return out;
}

std::string ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::StrCat("{\"error\": \"", status.ToString(), "\"}\n");
  if (json.empty() || json.back() != '\n') json += "\n";
  return json;
}

}  // namespace pcsweep::cli
