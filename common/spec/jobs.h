// The jobs of a sweep: one JobDefinition per cell of each stage, with its key, its config
// (the stage's template instantiated for the cell), the parent jobs it waits for and its
// config hash. A job waits for the jobs of each after stage that agree with it on their shared
// grid keys; its config hash covers kind, config, typed grid values and the parents' hashes.
// Internal to the spec library.
//
// Thread-safety: pure functions (the Errors object is the caller's, one parse per thread).
#ifndef PCSWEEP_COMMON_SPEC_JOBS_H_
#define PCSWEEP_COMMON_SPEC_JOBS_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "common/spec/spec.h"
#include "common/spec/stages.h"
#include "common/spec/yaml_scalar.h"

namespace pcsweep::spec_internal {

// The jobs of `sweep`'s stages, taken in `order` (parents first, from OrderStages).
// Possible errors: InvalidArgument for two cells with one job key, a job with no job of an
// after stage to wait for, a parent reference (in the job or in a grid value) matching
// several parent jobs, more than kMaxDependencyEdges dependency edges, and what Instantiate
// refuses; DeadlineExceeded once `errors`' deadline has passed.
absl::StatusOr<std::vector<JobDefinition>> BuildJobs(const SweepStages& sweep,
                                                     const std::vector<size_t>& order,
                                                     const Errors& errors);

}  // namespace pcsweep::spec_internal

#endif  // PCSWEEP_COMMON_SPEC_JOBS_H_
