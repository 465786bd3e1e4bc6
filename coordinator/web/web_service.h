// WebService: the web view and /metrics as a function from request to response, without
// sockets (the HTTP adapter is http_server.h), so that tests call it directly.
//
// Where each answer comes from (never a database connection that writes):
//  * sweeps, jobs, workers, counts, progress, errors and stderr tails: the scheduler's memory
//    (ListSweeps, GetSweep, ListWorkers), as the gRPC API answers them;
//  * the main / ablation / phenomena tables and the figure: RenderResultsReport, the code of
//    `pcsweep results --table` and `pcsweep plot`, through ResultsCache (a read-only
//    connection in WAL mode; results_cache.h says why it cannot block the writer);
//  * /metrics: the MetricsRegistry (hooks in the scheduler and store, gauges at scrape time).
//
// Routes (GET or HEAD; other methods get 405):
//   /                          sweeps: state, per-state counts, progress, age; compare form
//   /sweeps/ID[?state=&stage=&limit=]  one sweep: summary, filtered job grid, failed jobs'
//                              errors with stderr tails, tables, figure, compare form
//   /compare?a=ID&b=ID&table=main|ablation|phenomena  two sweeps side by side
//   /workers                   workers, slots, GPUs, last heartbeat, running jobs
//   /live, /sweeps/ID/live, /workers/live, /sweeps/ID/tables/KIND, /sweeps/ID/figure
//                              the HTML fragments the page script polls (pages.h)
//   /sweeps/ID/figure.svg      the figure (image/svg+xml)
//   /api/sweeps, /api/sweeps/ID[?state=&stage=&limit=], /api/workers  JSON (views.h)
//   /api/sweeps/ID/tables/KIND exactly what `pcsweep results ID --table KIND --format json`
//                              prints
//   /metrics                   Prometheus text format
//   /static/app.css, /static/app.js  (no credentials needed: they hold nothing of a sweep)
// ID is a sweep id or name (the newest sweep of that name). Errors: an unknown sweep or path
// is a 404 page (JSON {"error": ...} under /api/), a bad filter 400, a missing or wrong
// credential 401 (asking for HTTP Basic or a bearer token), a render queue that is full 503.
//
// Thread-safety: Handle() is thread-safe (the HTTP server calls it from its pool threads).
#ifndef PCSWEEP_COORDINATOR_WEB_WEB_SERVICE_H_
#define PCSWEEP_COORDINATOR_WEB_WEB_SERVICE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "coordinator/metrics/metrics.h"
#include "coordinator/scheduler.h"
#include "coordinator/web/auth.h"
#include "coordinator/web/results_cache.h"

namespace pcsweep::coordinator::web {

struct WebRequest {
  std::string method = "GET";
  std::string path;                          // percent-decoded
  std::map<std::string, std::string> query;  // first value of each parameter, decoded
  std::string authorization;                 // the Authorization header; "" when absent
};

struct WebResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
};

struct WebServiceOptions {
  // The coordinator's database file, for tables and the figure; empty = they answer that
  // this coordinator has no file (an in-memory store).
  std::string db_path;
  // Who may read; null = everyone (the coordinator runs without credentials).
  std::shared_ptr<const CredentialChecker> auth;
  Clock* clock = Clock::Real();  // not owned
  // How long a request waits for a table or figure being rendered before it answers 503.
  absl::Duration render_wait = absl::Seconds(30);
  int poll_ms = 2000;  // how often pages poll their live parts
};

class WebService {
 public:
  // `scheduler` and `metrics` are not owned and must outlive the service. Registers
  // pcsweep_http_requests_total{code} in `metrics`.
  WebService(const Scheduler* scheduler, MetricsRegistry* metrics, WebServiceOptions options);

  WebResponse Handle(const WebRequest& request);

 private:
  WebResponse Route(const WebRequest& request, const std::vector<std::string>& parts);
  WebResponse SweepsPage(bool fragment);
  WebResponse SweepPage(const std::string& id, const WebRequest& request, bool fragment);
  WebResponse SweepApi(const std::string& id, const WebRequest& request);
  WebResponse TableFragment(const std::string& id, const std::string& kind, bool api);
  WebResponse FigureFragment(const std::string& id, bool svg);
  WebResponse ComparePage(const WebRequest& request);
  WebResponse WorkersPage(bool fragment);
  WebResponse Error(int status, const std::string& message, bool api);
  // The state of a sweep's results that reports are rendered for (ResultsCache's version).
  static std::string ResultsVersion(const SweepSummary& summary);

  const Scheduler* const scheduler_;
  MetricsRegistry* const metrics_;
  const WebServiceOptions options_;
  std::unique_ptr<ResultsCache> results_;  // null without db_path
};

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_WEB_SERVICE_H_
