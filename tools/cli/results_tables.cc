#include "tools/cli/results_tables.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/table/table.h"

namespace pcsweep::cli {
namespace {

using coordinator::ResultsReportKind;

const char* FormatName(table::Format format) {
  switch (format) {
    case table::Format::kText:
      return "text";
    case table::Format::kMarkdown:
      return "markdown";
    case table::Format::kCsv:
      return "csv";
    case table::Format::kLatex:
      return "latex";
    case table::Format::kJson:
      return "json";
  }
  return "text";
}

v1::ResultsReport ToProto(ResultsReportKind kind) {
  switch (kind) {
    case ResultsReportKind::kComparisonsOnly:
      return v1::RESULTS_REPORT_UNSPECIFIED;
    case ResultsReportKind::kMainTable:
      return v1::RESULTS_REPORT_MAIN_TABLE;
    case ResultsReportKind::kAblationTable:
      return v1::RESULTS_REPORT_ABLATION_TABLE;
    case ResultsReportKind::kPhenomenaTable:
      return v1::RESULTS_REPORT_PHENOMENA_TABLE;
    case ResultsReportKind::kPlot:
      return v1::RESULTS_REPORT_PLOT;
  }
  return v1::RESULTS_REPORT_UNSPECIFIED;
}

}  // namespace

v1::GetResultsRequest ToProto(const coordinator::ResultsReportRequest& request) {
  v1::GetResultsRequest out;
  out.set_sweep_id(request.sweep);
  out.set_report(ToProto(request.kind));
  out.set_format(FormatName(request.format));
  out.set_recompute(request.recompute);
  out.set_plot_x(request.options.plot_x_key);
  out.set_plot_eval_set(request.options.plot_eval_set);
  return out;
}

absl::StatusOr<coordinator::ResultsReport> FetchResultsReport(
    const std::string& db_path, const coordinator::ResultsReportRequest& request,
    CoordinatorApi* api) {
  if (!db_path.empty()) return coordinator::RenderResultsReport(db_path, request);
  if (api == nullptr) {
    return absl::InvalidArgumentError("give --db FILE or a coordinator (--coordinator HOST:PORT)");
  }
  PCSWEEP_ASSIGN_OR_RETURN(v1::GetResultsResponse response, api->GetResults(ToProto(request)));
  coordinator::ResultsReport report;
  report.sweep_id = response.sweep_id();
  report.text = std::move(*response.mutable_text());
  report.notes.assign(response.notes().begin(), response.notes().end());
  return report;
}

absl::Status RunResultsTables(const ResultsTablesRequest& request, CoordinatorApi* api,
                              std::ostream& out, std::ostream& err) {
  coordinator::ResultsReportRequest report_request;
  report_request.sweep = request.sweep;
  report_request.recompute = request.recompute;
  if (request.table.empty()) {
    if (!request.recompute) {
      return absl::InvalidArgumentError("nothing to do: give --table KIND or --recompute");
    }
    report_request.kind = ResultsReportKind::kComparisonsOnly;
  } else {
    PCSWEEP_ASSIGN_OR_RETURN(report_request.kind, coordinator::ParseTableReportKind(request.table));
    auto format = table::ParseFormat(request.format == "table" ? "text" : request.format);
    if (!format.ok()) return Annotate(format.status(), "--format");
    report_request.format = *format;
  }
  PCSWEEP_ASSIGN_OR_RETURN(coordinator::ResultsReport report,
                           FetchResultsReport(request.db_path, report_request, api));
  for (const std::string& note : report.notes) err << note << "\n";
  out << report.text;
  return absl::OkStatus();
}

}  // namespace pcsweep::cli
