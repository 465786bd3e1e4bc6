#include "tools/cli/results_tables.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/table/table.h"
#include "coordinator/proto_convert.h"

namespace pcsweep::cli {
namespace {

using coordinator::ResultsReportKind;

}  // namespace

absl::StatusOr<coordinator::ResultsReport> FetchResultsReport(
    const std::string& db_path, const coordinator::ResultsReportRequest& request,
    CoordinatorApi* api) {
  if (!db_path.empty()) return coordinator::RenderResultsReport(db_path, request);
  if (api == nullptr) {
    return absl::InvalidArgumentError("give --db FILE or a coordinator (--coordinator HOST:PORT)");
  }
  v1::GetResultsRequest proto;
  coordinator::ToProto(request, &proto);
  PCSWEEP_ASSIGN_OR_RETURN(v1::GetResultsResponse response, api->GetResults(proto));
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
