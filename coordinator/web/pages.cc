#include "coordinator/web/pages.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/progress/progress.h"

namespace pcsweep::coordinator::web {
namespace {

using progress::HumanDuration;

constexpr const char* kJobStates[] = {"pending", "leased",    "running", "succeeded",
                                      "failed",  "cancelled", "reused"};

int CountOf(const SweepSummary& s, absl::string_view state) {
  if (state == "pending") return s.pending;
  if (state == "leased") return s.leased;
  if (state == "running") return s.running;
  if (state == "succeeded") return s.succeeded;
  if (state == "failed") return s.failed;
  if (state == "cancelled") return s.cancelled;
  return s.reused;
}

std::string SweepUrl(const std::string& sweep_id) {
  return absl::StrCat("/sweeps/", UrlEncode(sweep_id));
}

std::string StateBadge(absl::string_view state) {
  std::string css(state);
  std::replace(css.begin(), css.end(), ' ', '-');
  return absl::StrCat("<span class=\"badge state-", css, "\">", HtmlEscape(state), "</span>");
}

std::string ProgressHtml(double fraction, absl::string_view label) {
  if (!std::isfinite(fraction)) fraction = 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  return absl::StrFormat("<progress value=\"%.3f\" max=\"1\"></progress> <span>%s</span>", fraction,
                         HtmlEscape(label));
}

std::string Percent(double fraction) {
  return absl::StrFormat("%d%%", static_cast<int>(std::floor(fraction * 100 + 1e-9)));
}

std::string AgoText(int64_t ms, absl::Time now) {
  if (ms <= 0) return "never";
  return absl::StrCat(HumanDuration(now - absl::FromUnixMillis(ms), false), " ago");
}

std::string Option(absl::string_view value, absl::string_view label, bool selected) {
  return absl::StrCat("<option value=\"", HtmlEscape(value), "\"", selected ? " selected" : "", ">",
                      HtmlEscape(label), "</option>");
}

std::string JobRow(const JobView& v, const std::vector<std::string>& param_keys) {
  const JobRecord& job = v.job;
  std::string row =
      absl::StrCat("<tr class=\"state-", v.state, "\" title=\"", HtmlEscape(job.name),
                   "\"><td class=\"num\">", job.index, "</td><td>", HtmlEscape(job.stage), "</td>");
  for (const std::string& key : param_keys) {
    auto it = job.params.find(key);
    absl::StrAppend(&row, "<td>", it == job.params.end() ? "" : HtmlEscape(it->second), "</td>");
  }
  std::string progress_label = Percent(v.progress);
  if (!job.progress_message.empty() && !IsTerminal(job.state)) {
    absl::StrAppend(&progress_label, " ", job.progress_message);
  }
  const std::string attempts =
      progress::AttemptsText(job.attempt, job.preemptions, job.max_attempts);
  absl::StrAppend(&row, "<td>", StateBadge(v.state), "</td><td class=\"num\">", attempts,
                  "</td><td>", job.worker_id.empty() ? "-" : HtmlEscape(job.worker_id),
                  "</td><td class=\"bar\">", ProgressHtml(v.progress, progress_label),
                  "</td><td class=\"num\">", HumanDuration(v.elapsed), "</td><td class=\"num\">",
                  v.eta ? HumanDuration(*v.eta, false) : "-", "</td></tr>\n");
  return row;
}

std::string JobGrid(const SweepView& view) {
  std::string out =
      "<div id=\"grid\" data-live><div class=\"scroll\"><table id=\"jobs\" class=\"grid\">";
  absl::StrAppend(&out, "<thead><tr><th>#</th><th>stage</th>");
  for (const std::string& key : view.param_keys)
    absl::StrAppend(&out, "<th>", HtmlEscape(key), "</th>");
  absl::StrAppend(&out,
                  "<th>state</th><th>attempt</th><th>worker</th><th>progress</th><th>elapsed</th>"
                  "<th>ETA</th></tr></thead><tbody>\n");
  for (const JobView& v : view.jobs) out += JobRow(v, view.param_keys);
  out += "</tbody></table></div>";
  if (view.matching == 0) {
    out += "<p class=\"muted\">No job matches this filter.</p>";
  } else if (view.matching > static_cast<int>(view.jobs.size())) {
    absl::StrAppend(&out, "<p class=\"muted\">Showing the first ", view.jobs.size(), " of ",
                    view.matching, " matching jobs; filter by state or stage to see others.</p>");
  }
  out += "</div>\n";
  return out;
}

std::string FailedJobs(const SweepView& view) {
  std::string out = "<div id=\"failed\" data-live>";
  if (!view.failed.empty()) {
    absl::StrAppend(&out, "<h2>Failed jobs (", view.failed.size(), ")</h2>\n");
    for (const JobView& v : view.failed) {
      const std::string& error = v.job.error;
      const std::string first_line = error.substr(0, error.find('\n'));
      absl::StrAppend(&out, "<details class=\"failure\" id=\"failure-", HtmlEscape(v.job.job_id),
                      "\"><summary><b>", HtmlEscape(v.job.name), "</b> (attempt ", v.job.attempt,
                      "/", v.job.max_attempts, "): ", HtmlEscape(first_line), "</summary><pre>",
                      HtmlEscape(error), "</pre></details>\n");
    }
  }
  out += "</div>\n";
  return out;
}

std::string FilterForm(const SweepView& view) {
  std::string out = "<form class=\"filter\" method=\"get\"><label>state <select name=\"state\">";
  out += Option("", "all", view.filter.state.empty());
  for (const char* state : kJobStates) out += Option(state, state, view.filter.state == state);
  out += Option("active", "active (leased or running)", view.filter.state == "active");
  out += "</select></label> <label>stage <select name=\"stage\">";
  out += Option("", "all", view.filter.stage.empty());
  for (const std::string& stage : view.stages)
    out += Option(stage, stage, view.filter.stage == stage);
  absl::StrAppend(&out, "</select></label> <button type=\"submit\">Filter</button> <a href=\"",
                  SweepUrl(view.summary.summary.sweep.sweep_id), "\">clear</a></form>\n");
  return out;
}

std::string ResultsSections(const std::string& sweep_id) {
  const std::string base = SweepUrl(sweep_id);
  std::string out = "<h2>Results</h2>\n";
  for (const char* kind : {"main", "ablation", "phenomena"}) {
    absl::StrAppend(&out, "<section class=\"results\"><h3>", kind,
                    " table</h3><div data-fragment-url=\"", base, "/tables/", kind,
                    "\"><p class=\"muted\">loading…</p><noscript><a href=\"", base, "/tables/",
                    kind, "\">open the ", kind, " table</a></noscript></div></section>\n");
  }
  absl::StrAppend(&out, "<section class=\"results\"><h3>figure</h3><div data-fragment-url=\"", base,
                  "/figure\"><p class=\"muted\">loading…</p><noscript><a href=\"", base,
                  "/figure.svg\">open the figure</a></noscript></div></section>\n");
  return out;
}

}  // namespace

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string UrlEncode(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string Page(absl::string_view title, absl::string_view body, int poll_ms) {
  return absl::StrCat(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>",
      HtmlEscape(title),
      " · pcsweep</title><link rel=\"stylesheet\" href=\"/static/app.css\">"
      "<script src=\"/static/app.js\" defer></script></head>\n<body data-poll-ms=\"",
      poll_ms,
      "\"><header><a class=\"brand\" href=\"/\">pcsweep</a><nav><a href=\"/\">Sweeps</a>"
      "<a href=\"/workers\">Workers</a><a href=\"/metrics\">Metrics</a>"
      "<a href=\"/api/sweeps\">API</a></nav><span id=\"live-status\" class=\"muted\"></span>"
      "</header>\n<main>\n",
      body, "</main></body></html>\n");
}

std::string SummaryHtml(const SweepSummaryView& view, bool with_count_ids) {
  const SweepSummary& s = view.summary;
  std::string out = absl::StrCat(
      "<div class=\"summary\"><p>", StateBadge(view.state), " ",
      ProgressHtml(view.progress, absl::StrCat(view.done, " of ", s.total, " jobs done (",
                                               Percent(view.progress), ")")),
      " · ", view.summary.sweep.finished_ms > 0 ? "took " : "elapsed ",
      HumanDuration(view.age, false));
  if (view.eta) absl::StrAppend(&out, " · ETA ", HumanDuration(*view.eta, false));
  out += "</p><ul class=\"counts\">";
  const std::string base = SweepUrl(s.sweep.sweep_id);
  for (const char* state : kJobStates) {
    const int count = CountOf(s, state);
    absl::StrAppend(&out, "<li><a class=\"chip state-", state, count == 0 ? " zero" : "",
                    "\" href=\"", base, "?state=", state, "\">", state, " <b",
                    with_count_ids ? absl::StrCat(" id=\"count-", state, "\"") : "", ">", count,
                    "</b></a></li>");
  }
  out += "</ul></div>\n";
  return out;
}

std::string SweepOptionsHtml(const std::vector<SweepSummaryView>& sweeps,
                             const std::string& selected) {
  std::string out;
  for (auto it = sweeps.rbegin(); it != sweeps.rend(); ++it) {
    const SweepRecord& s = it->summary.sweep;
    out += Option(s.sweep_id, absl::StrCat(s.name, " (", s.sweep_id, ")"), s.sweep_id == selected);
  }
  return out;
}

std::string TableKindOptionsHtml(absl::string_view selected) {
  std::string out;
  for (const char* kind : {"main", "ablation", "phenomena"})
    out += Option(kind, kind, selected == kind);
  return out;
}

std::string FilterQuery(const JobFilter& filter) {
  std::vector<std::string> parts;
  if (!filter.state.empty()) parts.push_back(absl::StrCat("state=", UrlEncode(filter.state)));
  if (!filter.stage.empty()) parts.push_back(absl::StrCat("stage=", UrlEncode(filter.stage)));
  if (filter.limit != JobFilter().limit) parts.push_back(absl::StrCat("limit=", filter.limit));
  return parts.empty() ? "" : absl::StrCat("?", absl::StrJoin(parts, "&"));
}

std::string SweepLive(const SweepView& view) {
  return absl::StrCat("<div id=\"summary\" data-live>", SummaryHtml(view.summary, true), "</div>\n",
                      JobGrid(view), FailedJobs(view));
}

std::string SweepPage(const SweepView& view, const std::vector<SweepSummaryView>& others) {
  const SweepRecord& sweep = view.summary.summary.sweep;
  const std::string base = SweepUrl(sweep.sweep_id);
  std::string out =
      absl::StrCat("<h1>", HtmlEscape(sweep.name), " <small>", HtmlEscape(sweep.sweep_id),
                   "</small></h1>\n<div id=\"live\" data-live-url=\"", base, "/live",
                   FilterQuery(view.filter), "\">\n");
  absl::StrAppend(&out, "<div id=\"summary\" data-live>", SummaryHtml(view.summary, true),
                  "</div>\n", FilterForm(view), JobGrid(view), FailedJobs(view), "</div>\n",
                  ResultsSections(sweep.sweep_id));
  if (others.empty()) {
    out +=
        "<h2>Compare</h2><p class=\"muted\">Submit another sweep to compare it with this "
        "one.</p>\n";
  } else {
    absl::StrAppend(&out,
                    "<h2>Compare</h2><form class=\"filter\" method=\"get\" action=\"/compare\">"
                    "<input type=\"hidden\" name=\"a\" value=\"",
                    HtmlEscape(sweep.sweep_id), "\"><label>with <select name=\"b\">",
                    SweepOptionsHtml(others, ""),
                    "</select></label> <label>table <select name=\"table\">",
                    TableKindOptionsHtml("main"),
                    "</select></label> <button type=\"submit\">Side by side</button></form>\n");
  }
  absl::StrAppend(&out, "<p class=\"muted\">JSON: <a href=\"/api", base, "\">/api",
                  HtmlEscape(base), "</a> · <a href=\"/api", base,
                  "/tables/main\">tables/main</a> · <a href=\"/api", base,
                  "/tables/ablation\">tables/ablation</a> · <a href=\"/api", base,
                  "/tables/phenomena\">tables/phenomena</a></p>\n");
  return out;
}

std::string SweepsLive(const std::vector<SweepSummaryView>& sweeps) {
  std::string out =
      "<div id=\"sweep-list\" data-live><div class=\"scroll\"><table id=\"sweeps\" class=\"grid\">"
      "<thead><tr><th>sweep</th><th>name</th><th>state</th><th>progress</th>";
  for (const char* state : kJobStates) absl::StrAppend(&out, "<th>", state, "</th>");
  out += "<th>age</th></tr></thead><tbody>\n";
  for (auto it = sweeps.rbegin(); it != sweeps.rend(); ++it) {
    const SweepSummary& s = it->summary;
    absl::StrAppend(&out, "<tr><td><a href=\"", SweepUrl(s.sweep.sweep_id), "\">",
                    HtmlEscape(s.sweep.sweep_id), "</a></td><td>", HtmlEscape(s.sweep.name),
                    "</td><td>", StateBadge(it->state), "</td><td class=\"bar\">",
                    ProgressHtml(it->progress, absl::StrCat(it->done, "/", s.total)), "</td>");
    for (const char* state : kJobStates) {
      const int count = CountOf(s, state);
      absl::StrAppend(&out, "<td class=\"num", count == 0 ? " zero" : "", "\">", count, "</td>");
    }
    absl::StrAppend(&out, "<td class=\"num\">", HumanDuration(it->age, false), "</td></tr>\n");
  }
  out += "</tbody></table></div>";
  if (sweeps.empty())
    out += "<p class=\"muted\">No sweeps yet: <code>pcsweep submit SPEC</code>.</p>";
  out += "</div>\n";
  return out;
}

std::string SweepsPage(const std::vector<SweepSummaryView>& sweeps) {
  std::string out = absl::StrCat("<h1>Sweeps</h1>\n<div id=\"live\" data-live-url=\"/live\">\n",
                                 SweepsLive(sweeps), "</div>\n");
  if (sweeps.size() >= 2) {
    const std::string newest = sweeps.back().summary.sweep.sweep_id;
    const std::string second = sweeps[sweeps.size() - 2].summary.sweep.sweep_id;
    absl::StrAppend(&out,
                    "<h2>Compare two sweeps</h2><form class=\"filter\" method=\"get\" "
                    "action=\"/compare\"><select name=\"a\">",
                    SweepOptionsHtml(sweeps, second), "</select> <select name=\"b\">",
                    SweepOptionsHtml(sweeps, newest), "</select> <select name=\"table\">",
                    TableKindOptionsHtml("main"),
                    "</select> <button type=\"submit\">Side by side</button></form>\n");
  }
  return out;
}

std::string WorkersLive(const std::vector<WorkerStatus>& workers, absl::Time now) {
  std::string out =
      "<div id=\"worker-list\" data-live><div class=\"scroll\"><table id=\"workers\" "
      "class=\"grid\"><thead><tr><th>worker</th><th>host</th><th>slots</th><th>GPUs</th>"
      "<th>Slurm task</th><th>state</th><th>last heartbeat</th><th>running "
      "jobs</th></tr></thead><tbody>\n";
  for (const WorkerStatus& w : workers) {
    std::vector<std::string> gpus;
    for (const GpuRecord& g : w.worker.gpus) {
      gpus.push_back(HtmlEscape(absl::StrFormat("%d: %s (%.0f GiB)", g.index, g.name,
                                                g.memory_bytes / static_cast<double>(1LL << 30))));
    }
    std::vector<std::string> running;
    for (const JobRef& r : w.running) {
      const std::string sweep_id = r.job_id.substr(0, r.job_id.rfind('.'));
      running.push_back(absl::StrCat("<a href=\"", SweepUrl(sweep_id), "\">", HtmlEscape(r.job_id),
                                     "</a> #", r.attempt));
    }
    absl::StrAppend(&out, "<tr><td>", HtmlEscape(w.worker.worker_id), "</td><td>",
                    HtmlEscape(w.worker.host), "</td><td class=\"num\">", w.worker.slots,
                    "</td><td>", gpus.empty() ? "cpu" : absl::StrJoin(gpus, "<br>"), "</td><td>",
                    HtmlEscape(progress::SlurmPlacementText(w.worker.labels)), "</td><td>",
                    StateBadge(w.worker.state), "</td><td class=\"num\">",
                    AgoText(w.worker.last_heartbeat_ms, now), "</td><td>",
                    running.empty() ? "-" : absl::StrJoin(running, ", "), "</td></tr>\n");
  }
  out += "</tbody></table></div>";
  if (workers.empty()) {
    out +=
        "<p class=\"muted\">No worker registered: <code>pcsweep worker --coordinator HOST:PORT "
        "--slots N</code>.</p>";
  }
  out += "</div>\n";
  return out;
}

std::string WorkersPage(const std::vector<WorkerStatus>& workers, absl::Time now) {
  return absl::StrCat("<h1>Workers</h1>\n<div id=\"live\" data-live-url=\"/workers/live\">\n",
                      WorkersLive(workers, now), "</div>\n");
}

std::string ErrorBody(int status, absl::string_view message) {
  absl::string_view title = status == 404   ? "Not found"
                            : status == 401 ? "Credentials required"
                            : status == 403 ? "Not allowed"
                            : status == 400 ? "Bad request"
                            : status == 503 ? "Busy"
                                            : "Error";
  std::string out = absl::StrCat("<h1>", status, " · ", title, "</h1>\n<p class=\"error\">",
                                 HtmlEscape(message), "</p>\n");
  if (status == 401) {
    out +=
        "<p>This coordinator runs with <code>--token-file</code>. Sign in with any user name "
        "and the token as the password, or send <code>Authorization: Bearer TOKEN</code>.</p>";
  }
  out += "<p><a href=\"/\">All sweeps</a></p>\n";
  return out;
}

}  // namespace pcsweep::coordinator::web
