// The job kinds a sweep spec may name, in one place: the spec parser (common/spec) refuses any
// other, and pcsweep-run's registry (experiments/jobs/job_registry, filled by experiments/runner)
// serves exactly the kinds after `command`, which the worker runs itself in a shell (sae_test's
// JobKindRegistryTest checks that the two lists agree). Thread-safety: constants and pure
// functions.
#ifndef PCSWEEP_COMMON_JOBFILE_JOB_KINDS_H_
#define PCSWEEP_COMMON_JOBFILE_JOB_KINDS_H_

#include <array>
#include <string>

#include "absl/strings/string_view.h"

namespace pcsweep::jobfile {

inline constexpr absl::string_view kCommandKind = "command";

// kCommandKind first, then pcsweep-run's kinds in the order the docs list them.
inline constexpr std::array<absl::string_view, 9> kJobKinds = {
    kCommandKind, "pretrain",     "benchmark",    "eval",      "train_eval",
    "sae_train",  "sae_transfer", "layer_select", "clamp_eval"};

bool IsKnownJobKind(absl::string_view kind);

// "command, pretrain, ...": for error messages.
std::string KnownJobKindsText();

}  // namespace pcsweep::jobfile

#endif  // PCSWEEP_COMMON_JOBFILE_JOB_KINDS_H_
