#include "tools/cli/plot_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "tools/cli/results_tables.h"

namespace pcsweep::cli {

absl::Status RunPlot(const PlotRequest& request, CoordinatorApi* api, std::ostream& err) {
  if (request.out_path.empty()) return absl::InvalidArgumentError("plot needs --out FILE.svg");
  coordinator::ResultsReportRequest report_request;
  report_request.sweep = request.sweep;
  report_request.kind = coordinator::ResultsReportKind::kPlot;
  report_request.options.plot_x_key = request.x_key;
  report_request.options.plot_eval_set = request.eval_set;
  PCSWEEP_ASSIGN_OR_RETURN(coordinator::ResultsReport report,
                           FetchResultsReport(request.db_path, report_request, api));
  for (const std::string& note : report.notes) err << note << "\n";
  const std::string& svg = report.text;

  // Written beside the target and renamed, so a browser never shows half a figure.
  const std::filesystem::path out = std::filesystem::absolute(request.out_path);
  std::error_code ec;
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path(), ec);
  const std::string tmp = absl::StrCat(out.string(), ".tmp", ::getpid());
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file << svg;
    file.flush();
    if (!file.good()) {
      std::remove(tmp.c_str());
      return absl::PermissionDeniedError(absl::StrCat(out.string(), ": cannot write the plot"));
    }
  }
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat(out.string(), ": cannot write the plot: ", ec.message()));
  }
  err << "plot: " << out.string() << "\n";
  return absl::OkStatus();
}

}  // namespace pcsweep::cli
