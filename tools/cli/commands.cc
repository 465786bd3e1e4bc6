#include "tools/cli/commands.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"

namespace pcsweep::cli {

absl::StatusOr<std::string> ReadFileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > static_cast<std::streamoff>(max_bytes)
                                   ? size - static_cast<std::streamoff>(max_bytes)
                                   : 0;
  in.seekg(start);
  std::string text(static_cast<size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

namespace {

// 128 random bits as hex: unique per submit invocation.
std::string RandomIdempotencyKey() {
  std::random_device random;  // /dev/urandom on Linux
  std::string key;
  for (int i = 0; i < 4; ++i) key += absl::StrFormat("%08x", random());
  return key;
}

// Transport-level failures after which the coordinator may or may not have the sweep.
bool WorthRetrying(const absl::Status& status) {
  return absl::IsDeadlineExceeded(status) ||
         (absl::IsUnavailable(status) &&
          absl::StartsWith(status.message(), "cannot reach coordinator"));
}

}  // namespace

absl::StatusOr<v1::SubmitSweepResponse> RunSubmit(CoordinatorApi& api, const std::string& spec_path,
                                                  bool force, std::ostream& out,
                                                  std::ostream& err) {
  std::ifstream in(spec_path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read spec ", spec_path, ": ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  v1::SubmitSweepRequest request;
  request.set_spec_yaml(buffer.str());
  request.set_spec_path(spec_path);
  request.set_force(force);
  request.set_idempotency_key(RandomIdempotencyKey());
  absl::StatusOr<v1::SubmitSweepResponse> submitted = api.SubmitSweep(request);
  for (int attempt = 2; attempt <= kSubmitAttempts && WorthRetrying(submitted.status());
       ++attempt) {
    err << "submit: " << submitted.status().message() << "; retrying (" << attempt << "/"
        << kSubmitAttempts << ")\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
    submitted = api.SubmitSweep(request);
  }
  PCSWEEP_ASSIGN_OR_RETURN(v1::SubmitSweepResponse response, std::move(submitted));
  out << response.sweep_id() << "\n";
  err << "submitted " << spec_path << ": " << response.jobs() << " jobs, " << response.reused()
      << " reused\n";
  return response;
}

bool SweepFinished(const v1::SweepSummary& summary) {
  if (summary.finished_ms() > 0) return true;
  return summary.total() > 0 && summary.pending() + summary.leased() + summary.running() == 0;
}

absl::Status RunStatus(CoordinatorApi& api, const std::string& sweep_id, bool json, Clock& clock,
                       std::ostream& out) {
  if (sweep_id.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(v1::ListSweepsResponse sweeps, api.ListSweeps());
    if (json) {
      out << ProtoToJson(sweeps);
    } else if (sweeps.sweeps().empty()) {
      out << "no sweeps\n";
    } else {
      out << table::RenderListing(SweepListTable(sweeps, clock.Now()), table::ListingFormat::kText);
    }
    return absl::OkStatus();
  }
  v1::GetSweepRequest request;
  request.set_sweep_id(sweep_id);
  request.set_include_metrics(json);
  PCSWEEP_ASSIGN_OR_RETURN(v1::GetSweepResponse sweep, api.GetSweep(request));
  out << (json ? ProtoToJson(sweep) : FormatSweepStatus(sweep, clock.Now()));
  return absl::OkStatus();
}

absl::StatusOr<v1::GetSweepResponse> WatchUntilFinished(CoordinatorApi& api,
                                                        const std::string& sweep_id,
                                                        const WatchOptions& options, Clock& clock,
                                                        std::ostream& out) {
  v1::GetSweepRequest request;
  request.set_sweep_id(sweep_id);
  absl::Time last_draw = absl::InfinitePast();
  std::string last_line;
  // Draws the current state; `force` ignores the rate limit (first and final draw).
  auto draw = [&](const v1::GetSweepResponse& sweep, bool force) {
    const absl::Time now = clock.Now();
    if (!force && now - last_draw < options.min_interval) return;
    if (options.redraw) {
      out << "\x1b[H\x1b[2J" << FormatSweepStatus(sweep, now);
    } else {
      // The elapsed time changes on every call; print only when the counts do.
      v1::SweepSummary counts = sweep.summary();
      counts.set_created_ms(0);
      counts.set_finished_ms(0);
      const std::string line = FormatSweepSummaryLine(counts, now);
      if (line == last_line && !force) return;
      if (line != last_line) out << FormatSweepSummaryLine(sweep.summary(), now) << "\n";
      last_line = line;
    }
    out.flush();
    last_draw = now;
  };

  PCSWEEP_ASSIGN_OR_RETURN(v1::GetSweepResponse sweep, api.GetSweep(request));
  draw(sweep, /*force=*/true);
  int64_t last_seq = 0;
  int reconnects = 0;
  while (!SweepFinished(sweep.summary())) {
    absl::Status fetch_error;
    bool finished = false;
    v1::WatchSweepRequest watch;
    watch.set_sweep_id(sweep_id);
    watch.set_after_seq(last_seq);
    absl::Status watch_status = api.WatchSweep(watch, [&](const v1::SweepEvent& event) {
      last_seq = std::max(last_seq, event.seq());
      const bool event_says_done = event.summary().total() > 0 && SweepFinished(event.summary());
      const bool due = clock.Now() - last_draw >= options.min_interval;
      if (!event_says_done && !due) return true;
      auto latest = api.GetSweep(request);
      if (!latest.ok()) {
        fetch_error = latest.status();
        return false;
      }
      sweep = *std::move(latest);
      finished = SweepFinished(sweep.summary());
      if (!finished) draw(sweep, false);
      return !finished;
    });
    PCSWEEP_RETURN_IF_ERROR(fetch_error);
    PCSWEEP_RETURN_IF_ERROR(watch_status);
    if (!finished) {
      // The stream ended (or we never refreshed): check where the sweep stands.
      PCSWEEP_ASSIGN_OR_RETURN(sweep, api.GetSweep(request));
      if (!SweepFinished(sweep.summary()) && ++reconnects > options.max_reconnects) {
        return absl::UnavailableError(absl::StrCat("the event stream of sweep ", sweep_id,
                                                   " ended ", reconnects,
                                                   " times before it finished"));
      }
    }
  }
  request.set_include_metrics(true);
  PCSWEEP_ASSIGN_OR_RETURN(sweep, api.GetSweep(request));
  draw(sweep, /*force=*/true);
  return sweep;
}

absl::Status RunCancel(CoordinatorApi& api, const std::string& sweep_id, std::ostream& out) {
  PCSWEEP_ASSIGN_OR_RETURN(v1::CancelSweepResponse response, api.CancelSweep(sweep_id));
  out << "cancelled " << response.cancelled() << " jobs of sweep " << sweep_id << "\n";
  return absl::OkStatus();
}

absl::Status RunRetry(CoordinatorApi& api, const std::string& sweep_id, std::ostream& out) {
  PCSWEEP_ASSIGN_OR_RETURN(v1::RetryFailedResponse response, api.RetryFailed(sweep_id));
  out << "re-queued " << response.retried() << " failed jobs of sweep " << sweep_id << "\n";
  return absl::OkStatus();
}

absl::Status RunWorkers(CoordinatorApi& api, table::ListingFormat format, Clock& clock,
                        std::ostream& out) {
  PCSWEEP_ASSIGN_OR_RETURN(v1::ListWorkersResponse workers, api.ListWorkers());
  if (workers.workers().empty() && format == table::ListingFormat::kText) {
    out << "no workers\n";
    return absl::OkStatus();
  }
  out << table::RenderListing(WorkersTable(workers, clock.Now()), format);
  return absl::OkStatus();
}

absl::Status RunLogs(CoordinatorApi& api, const std::string& job_id, std::ostream& out,
                     size_t max_log_bytes) {
  PCSWEEP_ASSIGN_OR_RETURN(v1::GetJobResponse job, api.GetJob(job_id));
  out << FormatJobLogs(job);
  std::string log_path = job.job().log_path();
  for (const auto& attempt : job.attempts()) {
    if (!attempt.log_path().empty()) log_path = attempt.log_path();
  }
  if (log_path.empty()) return absl::OkStatus();
  auto text = ReadFileTail(log_path, max_log_bytes);
  if (!text.ok()) {
    out << "\n(log " << log_path << " is not readable here; it is on the worker's machine)\n";
    return absl::OkStatus();
  }
  out << "\n--- " << log_path << " ---\n" << TerminalSafe(*text);
  if (!text->empty() && text->back() != '\n') out << "\n";
  return absl::OkStatus();
}

absl::Status RunResults(CoordinatorApi& api, const std::string& sweep_id,
                        table::ListingFormat format, std::ostream& out) {
  v1::GetSweepRequest request;
  request.set_sweep_id(sweep_id);
  request.set_include_metrics(true);
  PCSWEEP_ASSIGN_OR_RETURN(v1::GetSweepResponse sweep, api.GetSweep(request));
  out << table::RenderListing(ResultsTable(sweep), format);
  return absl::OkStatus();
}

}  // namespace pcsweep::cli
