// The web view's HTML: whole pages and the fragments that the page script (assets.h) fetches
// to update a page in place. Plain HTML with one stylesheet and one script, both served by
// the coordinator (/static/...): no inline script or style, so the Content-Security-Policy
// can forbid both. Every text from a spec, a job or a worker is HTML-escaped.
//
// Live updates: an element with data-live-url is fetched every data-poll-ms (body); the
// answer is HTML whose [data-live] elements replace the page's elements of the same id, so a
// form between them keeps what the user chose. The answer's X-Pcsweep-Version header changes
// when results change; then every [data-fragment-url] element (tables, figure) is reloaded.
// X-Pcsweep-Finished: 1 slows the polling down (a finished sweep changes only on retry).
//
// Element ids the browser test relies on: #count-STATE (per-state counts of a sweep),
// #jobs (the job grid), #sweeps (the sweep list), table#table-KIND (a results table).
// Pure functions of their arguments.
#ifndef PCSWEEP_COORDINATOR_WEB_PAGES_H_
#define PCSWEEP_COORDINATOR_WEB_PAGES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/scheduler.h"
#include "coordinator/web/views.h"

namespace pcsweep::coordinator::web {

std::string HtmlEscape(absl::string_view text);
// Percent-encodes everything but unreserved characters (RFC 3986), for path segments and
// query values.
std::string UrlEncode(absl::string_view text);

// A complete document: title, navigation, `body`. `poll_ms` goes to <body data-poll-ms>.
std::string Page(absl::string_view title, absl::string_view body, int poll_ms = 2000);

// `/`: the sweeps, newest first, and a form to compare two of them.
std::string SweepsPage(const std::vector<SweepSummaryView>& sweeps);
std::string SweepsLive(const std::vector<SweepSummaryView>& sweeps);

// `/sweeps/ID`: summary, state/stage filter, job grid, failed jobs' errors and stderr tails,
// the three tables and the figure (loaded as fragments), and a compare form listing `others`.
std::string SweepPage(const SweepView& view, const std::vector<SweepSummaryView>& others);
// The [data-live] parts of SweepPage: summary and counts, grid, failed jobs.
std::string SweepLive(const SweepView& view);
// The query string ("?state=...&stage=...", or "") that reproduces `filter`.
std::string FilterQuery(const JobFilter& filter);

// `/workers`.
std::string WorkersPage(const std::vector<WorkerStatus>& workers, absl::Time now);
std::string WorkersLive(const std::vector<WorkerStatus>& workers, absl::Time now);

// The body of an error page (404, 401, 400, 503...): what went wrong and a way back.
std::string ErrorBody(int status, absl::string_view message);

// The summary block of a sweep (shared by the sweep page and the comparison).
std::string SummaryHtml(const SweepSummaryView& view, bool with_count_ids);
// <option>s of the sweeps (newest first) and of the three table kinds, for compare forms.
std::string SweepOptionsHtml(const std::vector<SweepSummaryView>& sweeps,
                             const std::string& selected);
std::string TableKindOptionsHtml(absl::string_view selected);

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_PAGES_H_
