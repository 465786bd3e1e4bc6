// Internal to common/jobfile: JSON parsing whose errors name the file, line and column, as
// every error about a job's result files must ("metrics.json:3: ...").
// Thread-safety: pure functions.
#ifndef PCSWEEP_COMMON_JOBFILE_JSON_POSITION_H_
#define PCSWEEP_COMMON_JOBFILE_JSON_POSITION_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobfile::internal {

// Parses `text`, the contents of `path` (or one line of it, `line_offset` lines in).
// Possible errors: InvalidArgument "<path>:<line>:<column>: malformed JSON: <reason>".
absl::StatusOr<nlohmann::json> ParseJsonAt(const std::string& path, const std::string& text,
                                           int line_offset = 0);

// The 1-based line of the first `"key"` followed by a colon in `text`, for errors about a
// value; 1 when there is none.
int LineOfKey(const std::string& text, const std::string& key);

}  // namespace pcsweep::jobfile::internal

#endif  // PCSWEEP_COMMON_JOBFILE_JSON_POSITION_H_
