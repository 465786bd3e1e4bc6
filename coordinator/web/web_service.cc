#include "coordinator/web/web_service.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/web/assets.h"
#include "coordinator/web/pages.h"
#include "coordinator/web/results_html.h"
#include "coordinator/web/views.h"
#include "spdlog/spdlog.h"

namespace pcsweep::coordinator::web {
namespace {

constexpr char kHtml[] = "text/html; charset=utf-8";
constexpr char kJson[] = "application/json; charset=utf-8";
constexpr char kPageCsp[] =
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

WebResponse Html(std::string body) {
  WebResponse response;
  response.content_type = kHtml;
  response.body = std::move(body);
  return response;
}

WebResponse Json(const nlohmann::ordered_json& doc) {
  WebResponse response;
  response.content_type = kJson;
  response.body = doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  return response;
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string QueryValue(const WebRequest& request, const std::string& key) {
  auto it = request.query.find(key);
  return it == request.query.end() ? "" : it->second;
}

}  // namespace

WebService::WebService(const Scheduler* scheduler, MetricsRegistry* metrics,
                       WebServiceOptions options)
    : scheduler_(scheduler),
      metrics_(metrics),
      options_(std::move(options)),
      results_(options_.db_path.empty() ? nullptr
                                        : std::make_unique<ResultsCache>(options_.db_path)) {}

std::string WebService::ResultsVersion(const SweepSummary& summary) {
  return absl::StrCat(summary.succeeded, "-", summary.sweep.finished_ms);
}

WebResponse WebService::Handle(const WebRequest& request) {
  const std::vector<std::string> parts = absl::StrSplit(request.path, '/', absl::SkipEmpty());
  const bool api = !parts.empty() && parts[0] == "api";
  WebResponse response;
  if (request.method != "GET" && request.method != "HEAD") {
    response = Error(
        405, absl::StrCat(request.method, " is not served here: the web view is read-only"), api);
    response.headers.emplace_back("Allow", "GET, HEAD");
  } else if (parts.size() == 2 && parts[0] == "static") {
    absl::StatusOr<StaticAsset> asset = FindAsset(parts[1]);
    if (asset.ok()) {
      response.content_type = std::string(asset->content_type);
      response.body = std::string(asset->body);
    } else {
      response = Error(404, std::string(asset.status().message()), false);
    }
  } else {
    absl::Status allowed = absl::OkStatus();
    if (options_.auth != nullptr) {
      std::optional<std::string> credential = CredentialFromAuthorization(request.authorization);
      allowed = options_.auth->Check(credential.value_or(""));
    }
    if (!allowed.ok()) {
      response = Error(HttpStatusOf(allowed), std::string(allowed.message()), api);
      if (response.status == 401) {
        response.headers.emplace_back("WWW-Authenticate",
                                      "Basic realm=\"pcsweep\", charset=\"UTF-8\"");
        response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"pcsweep\"");
      }
    } else {
      try {
        response = Route(request, parts);
      } catch (const std::exception& e) {
        spdlog::error("web view: {} {}: {}", request.method, request.path, e.what());
        response = Error(500, absl::StrCat("internal error: ", e.what()), api);
      }
    }
  }
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  if (response.content_type == kHtml)
    response.headers.emplace_back("Content-Security-Policy", kPageCsp);
  if (!(parts.size() == 2 && parts[0] == "static"))
    response.headers.emplace_back("Cache-Control", "no-store");
  if (auto counter = metrics_->AddCounter("pcsweep_http_requests_total",
                                          "Requests to the web view and /metrics by HTTP status.",
                                          {{"code", absl::StrCat(response.status)}});
      counter.ok()) {
    (*counter)->Increment();
  }
  return response;
}

WebResponse WebService::Route(const WebRequest& request, const std::vector<std::string>& parts) {
  const size_t n = parts.size();
  if (n == 0) return SweepsPage(false);
  if (n == 1 && parts[0] == "live") return SweepsPage(true);
  if (n == 1 && parts[0] == "workers") return WorkersPage(false);
  if (n == 2 && parts[0] == "workers" && parts[1] == "live") return WorkersPage(true);
  if (n == 1 && parts[0] == "compare") return ComparePage(request);
  if (n == 1 && parts[0] == "metrics") {
    WebResponse response;
    response.content_type = kPrometheusContentType;
    response.body = metrics_->Render();
    return response;
  }
  if (parts[0] == "sweeps" && n >= 2) {
    const std::string& id = parts[1];
    if (n == 2) return SweepPage(id, request, false);
    if (n == 3 && parts[2] == "live") return SweepPage(id, request, true);
    if (n == 3 && parts[2] == "figure") return FigureFragment(id, false);
    if (n == 3 && parts[2] == "figure.svg") return FigureFragment(id, true);
    if (n == 4 && parts[2] == "tables") return TableFragment(id, parts[3], false);
  }
  if (parts[0] == "api" && n >= 2) {
    if (n == 2 && parts[1] == "sweeps") {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      const absl::Time now = options_.clock->Now();
      for (const SweepSummary& s : scheduler_->ListSweeps()) {
        list.push_back(SummaryJson(BuildSummaryView(s, {}, now)));
      }
      return Json({{"sweeps", std::move(list)}});
    }
    if (n == 2 && parts[1] == "workers") {
      return Json(WorkersJson(scheduler_->ListWorkers(), options_.clock->Now()));
    }
    if (n == 3 && parts[1] == "sweeps") return SweepApi(parts[2], request);
    if (n == 5 && parts[1] == "sweeps" && parts[3] == "tables") {
      return TableFragment(parts[2], parts[4], true);
    }
  }
  return Error(404, absl::StrCat("no page at ", request.path), n > 0 && parts[0] == "api");
}

WebResponse WebService::Error(int status, const std::string& message, bool api) {
  WebResponse response;
  if (api) {
    response = Json({{"error", message}});
  } else {
    response = Html(Page(absl::StrCat(status), ErrorBody(status, message)));
  }
  response.status = status;
  return response;
}

WebResponse WebService::SweepsPage(bool fragment) {
  std::vector<SweepSummaryView> views;
  const absl::Time now = options_.clock->Now();
  for (const SweepSummary& s : scheduler_->ListSweeps())
    views.push_back(BuildSummaryView(s, {}, now));
  if (fragment) return Html(SweepsLive(views));
  return Html(Page("Sweeps", web::SweepsPage(views), options_.poll_ms));
}

WebResponse WebService::WorkersPage(bool fragment) {
  const std::vector<WorkerStatus> workers = scheduler_->ListWorkers();
  const absl::Time now = options_.clock->Now();
  if (fragment) return Html(WorkersLive(workers, now));
  return Html(Page("Workers", web::WorkersPage(workers, now), options_.poll_ms));
}

WebResponse WebService::SweepPage(const std::string& id, const WebRequest& request, bool fragment) {
  auto sweep = scheduler_->GetSweep(id, /*include_results=*/false);
  if (!sweep.ok()) return Error(404, std::string(sweep.status().message()), false);
  auto filter = ParseJobFilter(QueryValue(request, "state"), QueryValue(request, "stage"),
                               QueryValue(request, "limit"));
  if (!filter.ok()) return Error(400, std::string(filter.status().message()), false);
  const absl::Time now = options_.clock->Now();
  const SweepView view = BuildSweepView(sweep->first, sweep->second, *filter, now);
  WebResponse response;
  if (fragment) {
    response = Html(SweepLive(view));
  } else {
    std::vector<SweepSummaryView> others;
    for (const SweepSummary& s : scheduler_->ListSweeps()) {
      if (s.sweep.sweep_id != sweep->first.sweep.sweep_id)
        others.push_back(BuildSummaryView(s, {}, now));
    }
    response = Html(Page(sweep->first.sweep.name, web::SweepPage(view, others), options_.poll_ms));
  }
  response.headers.emplace_back("X-Pcsweep-Version", ResultsVersion(sweep->first));
  response.headers.emplace_back("X-Pcsweep-Finished",
                                sweep->first.sweep.finished_ms > 0 ? "1" : "0");
  return response;
}

WebResponse WebService::SweepApi(const std::string& id, const WebRequest& request) {
  auto sweep = scheduler_->GetSweep(id, /*include_results=*/true);
  if (!sweep.ok()) return Error(404, std::string(sweep.status().message()), true);
  auto filter = ParseJobFilter(QueryValue(request, "state"), QueryValue(request, "stage"),
                               QueryValue(request, "limit"));
  if (!filter.ok()) return Error(400, std::string(filter.status().message()), true);
  return Json(
      SweepJson(BuildSweepView(sweep->first, sweep->second, *filter, options_.clock->Now())));
}

WebResponse WebService::TableFragment(const std::string& id, const std::string& kind, bool api) {
  auto summary = scheduler_->GetSweepSummary(id);
  if (!summary.ok()) return Error(404, std::string(summary.status().message()), api);
  auto report_kind = ParseTableReportKind(kind);
  if (!report_kind.ok()) return Error(404, std::string(report_kind.status().message()), api);
  if (results_ == nullptr) {
    return Error(404, "this coordinator has no database file to render results from", api);
  }
  absl::StatusOr<std::string> json =
      results_->Get(summary->sweep.sweep_id, *report_kind, table::Format::kJson,
                    ResultsVersion(*summary), options_.render_wait);
  if (api) {
    if (!json.ok())
      return Error(HttpStatusOf(json.status()), std::string(json.status().message()), true);
    WebResponse response;
    response.content_type = kJson;
    response.body = *std::move(json);
    return response;
  }
  // A fragment: its status is 200 with the reason as text, so the page shows why.
  if (!json.ok()) return Html(UnavailableHtml(json.status().message()));
  absl::StatusOr<std::string> html = ResultsTableHtml(*json, kind);
  if (!html.ok()) return Error(500, std::string(html.status().message()), false);
  return Html(*std::move(html));
}

WebResponse WebService::FigureFragment(const std::string& id, bool svg) {
  auto summary = scheduler_->GetSweepSummary(id);
  if (!summary.ok()) return Error(404, std::string(summary.status().message()), false);
  if (results_ == nullptr) {
    return Error(404, "this coordinator has no database file to render results from", false);
  }
  const std::string version = ResultsVersion(*summary);
  absl::StatusOr<std::string> figure =
      results_->Get(summary->sweep.sweep_id, ResultsReportKind::kPlot, table::Format::kText,
                    version, options_.render_wait);
  if (!svg) {
    return Html(figure.ok() ? FigureHtml(summary->sweep.sweep_id, version)
                            : UnavailableHtml(figure.status().message()));
  }
  if (!figure.ok())
    return Error(HttpStatusOf(figure.status()), std::string(figure.status().message()), false);
  WebResponse response;
  response.content_type = "image/svg+xml";
  response.body = *std::move(figure);
  // The figure has no scripts; forbid them anyway should it be opened on its own.
  response.headers.emplace_back("Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'");
  return response;
}

WebResponse WebService::ComparePage(const WebRequest& request) {
  const std::string kind =
      QueryValue(request, "table").empty() ? "main" : QueryValue(request, "table");
  auto report_kind = ParseTableReportKind(kind);
  if (!report_kind.ok()) return Error(400, std::string(report_kind.status().message()), false);
  const std::string a_id = QueryValue(request, "a");
  const std::string b_id = QueryValue(request, "b");
  if (a_id.empty() || b_id.empty())
    return Error(400, "compare needs two sweeps: ?a=ID&b=ID", false);
  const absl::Time now = options_.clock->Now();
  auto side = [&](const std::string& id) -> absl::StatusOr<CompareSide> {
    auto sweep = scheduler_->GetSweep(id, /*include_results=*/false);
    if (!sweep.ok()) return sweep.status();
    CompareSide out;
    out.summary = BuildSummaryView(sweep->first, sweep->second, now);
    const std::string sweep_id = sweep->first.sweep.sweep_id;
    const std::string version = ResultsVersion(sweep->first);
    if (results_ == nullptr) {
      out.table_html = out.figure_html = UnavailableHtml("this coordinator has no database file");
      return out;
    }
    auto json =
        results_->Get(sweep_id, *report_kind, table::Format::kJson, version, options_.render_wait);
    auto html =
        json.ok() ? ResultsTableHtml(*json, absl::StrCat(kind, "-", sweep_id)) : json.status();
    out.table_html = html.ok() ? *html : UnavailableHtml(html.status().message());
    auto figure = results_->Get(sweep_id, ResultsReportKind::kPlot, table::Format::kText, version,
                                options_.render_wait);
    out.figure_html =
        figure.ok() ? FigureHtml(sweep_id, version) : UnavailableHtml(figure.status().message());
    return out;
  };
  auto a = side(a_id);
  if (!a.ok()) return Error(404, std::string(a.status().message()), false);
  auto b = side(b_id);
  if (!b.ok()) return Error(404, std::string(b.status().message()), false);
  std::vector<SweepSummaryView> sweeps;
  for (const SweepSummary& s : scheduler_->ListSweeps())
    sweeps.push_back(BuildSummaryView(s, {}, now));
  return Html(Page("Compare", web::ComparePage(*a, *b, kind, sweeps), options_.poll_ms));
}

}  // namespace pcsweep::coordinator::web
