// `pcsweep results SWEEP --table main|ablation|phenomena [--format F] [--recompute]` and the
// report fetch shared with `plot`: the paper tables of issue 5, rendered by
// coordinator/analysis/results_report.h either here from a database file (--db FILE, read-only
// except for its `comparisons` table) or by the coordinator (GetResults). Both paths print the
// same bytes: the table on stdout, the notes (comparisons stored, warnings) on stderr.
//
// Thread-safety: each call uses only its arguments.
#ifndef PCSWEEP_TOOLS_CLI_RESULTS_TABLES_H_
#define PCSWEEP_TOOLS_CLI_RESULTS_TABLES_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/analysis/results_report.h"
#include "tools/cli/client.h"

namespace pcsweep::cli {

struct ResultsTablesRequest {
  std::string db_path;  // "" = ask the coordinator
  std::string sweep;    // id or name (the newest sweep of that name)
  std::string table;    // "main" | "ablation" | "phenomena"; "" = none (with recompute only)
  std::string format = "text";  // text (or "table") | markdown | csv | latex | json
  bool recompute = false;
};

// Renders the report from the database file at `db_path`, or, when `db_path` is empty, asks
// the coordinator behind `api` (then required).
// Possible errors: those of coordinator::RenderResultsReport, and of `api` (Unavailable
// "cannot reach coordinator at ...", DeadlineExceeded, Unauthenticated).
absl::StatusOr<coordinator::ResultsReport> FetchResultsReport(
    const std::string& db_path, const coordinator::ResultsReportRequest& request,
    CoordinatorApi* api);

// Prints the table on `out`; the notes go to `err`, one per line.
// Possible errors: InvalidArgument (unknown table or format, nothing asked), NotFound (no such
// file or sweep, or a sweep without evaluation rows), FailedPrecondition (not a pcsweep
// database), InvalidArgument naming the job whose rows the statistics reject, Unavailable
// (database busy, or the coordinator unreachable).
absl::Status RunResultsTables(const ResultsTablesRequest& request, CoordinatorApi* api,
                              std::ostream& out, std::ostream& err);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_RESULTS_TABLES_H_
