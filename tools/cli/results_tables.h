// `pcsweep results SWEEP --table main|ablation|phenomena [--format F] [--recompute] --db FILE`:
// the paper tables of issue 5, computed from the per-example rows of the sweep's database
// (coordinator/analysis/sweep_results.h). The database is read read-only, except for its
// `comparisons` table: with --recompute, or when a finished sweep has none stored yet, the
// comparisons are (re)computed and stored (a running coordinator may keep writing the file).
//
// Thread-safety: each call uses only its arguments.
#ifndef PCSWEEP_TOOLS_CLI_RESULTS_TABLES_H_
#define PCSWEEP_TOOLS_CLI_RESULTS_TABLES_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace pcsweep::cli {

struct ResultsTablesRequest {
  std::string db_path;  // required
  std::string sweep;    // id or name (the newest sweep of that name)
  std::string table;    // "main" | "ablation" | "phenomena"; "" = none (with recompute only)
  std::string format = "text";  // text (or "table") | markdown | csv | latex | json
  bool recompute = false;
};

// Prints the table on `out`; notes (comparisons stored, warnings) go to `err`.
// Possible errors: InvalidArgument (no --db, unknown table or format, nothing asked), NotFound
// (no such file or sweep, or a sweep without evaluation rows), FailedPrecondition (not a
// pcsweep database), InvalidArgument naming the job whose rows the statistics reject,
// Unavailable (database busy).
absl::Status RunResultsTables(const ResultsTablesRequest& request, std::ostream& out,
                              std::ostream& err);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_RESULTS_TABLES_H_
