#include "tools/cli/results_tables.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/table/table.h"
#include "coordinator/analysis/sweep_results.h"
#include "coordinator/store/store_reader.h"

namespace pcsweep::cli {

absl::Status RunResultsTables(const ResultsTablesRequest& request, std::ostream& out,
                              std::ostream& err) {
  if (request.db_path.empty()) {
    return absl::InvalidArgumentError(
        "--table and --recompute need --db FILE (the coordinator's database): the tables are "
        "computed from its per-example rows");
  }
  if (request.table.empty() && !request.recompute) {
    return absl::InvalidArgumentError("nothing to do: give --table KIND or --recompute");
  }
  coordinator::ResultsTableKind kind = coordinator::ResultsTableKind::kMain;
  table::Format format = table::Format::kText;
  if (!request.table.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(kind, coordinator::ParseResultsTableKind(request.table));
    auto parsed = table::ParseFormat(request.format == "table" ? "text" : request.format);
    if (!parsed.ok()) return Annotate(parsed.status(), "--format");
    format = *parsed;
  }

  PCSWEEP_ASSIGN_OR_RETURN(auto reader, coordinator::StoreReader::OpenReadOnly(request.db_path));
  auto sweep = reader->GetSweep(request.sweep);
  if (!sweep.ok()) return Annotate(sweep.status(), request.db_path);
  const std::string& sweep_id = sweep->sweep.sweep_id;

  bool store = request.recompute;
  if (!store && sweep->sweep.finished_ms != 0) {
    PCSWEEP_ASSIGN_OR_RETURN(auto existing, reader->ListComparisons(sweep_id));
    store = existing.empty();
  }
  if (store) {
    auto stored = coordinator::RecomputeComparisons(request.db_path, sweep_id);
    if (!stored.ok()) {
      // The table does not need the stored rows; only an explicit --recompute fails.
      if (request.recompute) return stored.status();
      err << "note: comparisons not stored: " << stored.status().message() << "\n";
    } else {
      err << stored->records.size() << " comparisons of sweep " << sweep_id << " stored in "
          << request.db_path << "\n";
      if (request.table.empty()) {
        for (const std::string& warning : stored->warnings) err << "warning: " << warning << "\n";
      }
    }
  }
  if (request.table.empty()) return absl::OkStatus();

  PCSWEEP_ASSIGN_OR_RETURN(table::Table built,
                           coordinator::BuildResultsTable(*reader, sweep_id, kind));
  out << table::Render(built, format);
  return absl::OkStatus();
}

}  // namespace pcsweep::cli
