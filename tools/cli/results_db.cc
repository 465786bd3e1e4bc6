#include "tools/cli/results_db.h"

#include "common/status/status_macros.h"
#include "coordinator/proto_convert.h"
#include "coordinator/store/store_reader.h"
#include "tools/cli/format.h"

namespace pcsweep::cli {

absl::StatusOr<pcsweep::v1::GetSweepResponse> ReadSweepFromDb(const std::string& db_path,
                                                              const std::string& id_or_name) {
  PCSWEEP_ASSIGN_OR_RETURN(auto reader, coordinator::StoreReader::OpenReadOnly(db_path));
  auto summary = reader->GetSweep(id_or_name);
  if (!summary.ok()) return Annotate(summary.status(), db_path);
  auto jobs = reader->ListJobs(summary->sweep.sweep_id);
  if (!jobs.ok()) return Annotate(jobs.status(), db_path);
  pcsweep::v1::GetSweepResponse response;
  coordinator::ToProto(*summary, response.mutable_summary());
  for (const auto& job : *jobs) {
    coordinator::ToProto(job, /*include_results=*/true, response.add_jobs());
  }
  return response;
}

absl::Status RunResultsFromDb(const std::string& db_path, const std::string& id_or_name,
                              table::ListingFormat format, std::ostream& out) {
  PCSWEEP_ASSIGN_OR_RETURN(auto sweep, ReadSweepFromDb(db_path, id_or_name));
  out << table::RenderListing(ResultsTable(sweep), format);
  return absl::OkStatus();
}

}  // namespace pcsweep::cli
