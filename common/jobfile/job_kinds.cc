#include "common/jobfile/job_kinds.h"

#include <algorithm>

#include "absl/strings/str_join.h"

namespace pcsweep::jobfile {

bool IsKnownJobKind(absl::string_view kind) {
  return std::find(kJobKinds.begin(), kJobKinds.end(), kind) != kJobKinds.end();
}

std::string KnownJobKindsText() { return absl::StrJoin(kJobKinds, ", "); }

}  // namespace pcsweep::jobfile
