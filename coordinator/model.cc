#include "coordinator/model.h"

namespace pcsweep::coordinator {

absl::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kUnspecified:
      return "UNSPECIFIED";
    case JobState::kPending:
      return "PENDING";
    case JobState::kLeased:
      return "LEASED";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kSucceeded:
      return "SUCCEEDED";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

}  // namespace pcsweep::coordinator
