// `pcsweep results SWEEP --db FILE`: reads a coordinator database read-only (no coordinator
// needed; a running one may keep writing it) through coordinator/store/store_reader.h and
// converts it to the API's messages so that the same formatters print it.
#ifndef PCSWEEP_TOOLS_CLI_RESULTS_DB_H_
#define PCSWEEP_TOOLS_CLI_RESULTS_DB_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/table/listing.h"
#include "pcsweep/v1/coordinator.pb.h"

namespace pcsweep::cli {

// The sweep `id_or_name` (id, or the newest sweep of that name) of the database at `db_path`,
// with every job's params, metrics and outputs.
// Possible errors: NotFound (no such file or sweep), FailedPrecondition (not a pcsweep
// database or a newer schema), DataLoss (corrupt file), Internal.
absl::StatusOr<pcsweep::v1::GetSweepResponse> ReadSweepFromDb(const std::string& db_path,
                                                              const std::string& id_or_name);

// Prints ResultsTable of that sweep in `format`. Possible errors: those of ReadSweepFromDb.
absl::Status RunResultsFromDb(const std::string& db_path, const std::string& id_or_name,
                              table::ListingFormat format, std::ostream& out);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_RESULTS_DB_H_
