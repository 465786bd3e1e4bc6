// The web view's results in HTML: a paper table (the JSON document that `pcsweep results
// --table KIND --format json` prints, so the page shows exactly those cells), the figure, and
// the side-by-side comparison of two sweeps. Pure functions of their arguments.
#ifndef PCSWEEP_COORDINATOR_WEB_RESULTS_HTML_H_
#define PCSWEEP_COORDINATOR_WEB_RESULTS_HTML_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/web/views.h"

namespace pcsweep::coordinator::web {

// table::RenderJson's document as <table id="table-KIND"> with its title and notes; cells
// that say COLLAPSED are marked. Possible errors: InvalidArgument when `json` is not such a
// document (naming what is missing).
absl::StatusOr<std::string> ResultsTableHtml(absl::string_view json, absl::string_view kind);

// The figure fragment: an <img> of /sweeps/ID/figure.svg?v=VERSION.
std::string FigureHtml(const std::string& sweep_id, const std::string& version);

// A fragment whose results could not be rendered (no evaluation rows yet, busy): why.
std::string UnavailableHtml(absl::string_view message);

struct CompareSide {
  SweepSummaryView summary;
  std::string table_html;   // ResultsTableHtml or UnavailableHtml
  std::string figure_html;  // FigureHtml or UnavailableHtml
};

// `/compare?a=&b=&table=`: the two sweeps' summaries, tables and figures in two columns, and
// a form listing `sweeps` to pick others.
std::string ComparePage(const CompareSide& a, const CompareSide& b, absl::string_view kind,
                        const std::vector<SweepSummaryView>& sweeps);

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_RESULTS_HTML_H_
