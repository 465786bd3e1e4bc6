// `pcsweep-run run --job FILE`: reads a job file (the envelope of common/jobfile/job_envelope.h,
// {"kind": ..., "config": {...}, ...}) and dispatches on its kind to a handler registered by
// the ML job kinds (issue 4). The registry is filled by pcsweep-run (experiments/runner, the
// only part above the job kinds) through jobs::RegisterTrainJobKinds and
// sae::RegisterSaeJobKinds; the kinds it must hold are common/jobfile's kJobKinds but `command`.
// Thread-safety: register handlers before dispatching (at startup); dispatch is read-only.
#ifndef PCSWEEP_EXPERIMENTS_JOBS_JOB_REGISTRY_H_
#define PCSWEEP_EXPERIMENTS_JOBS_JOB_REGISTRY_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobs {

// Receives the whole job envelope as JSON (jobfile::JobEnvelopeToJson).
using JobHandler = std::function<absl::Status(const nlohmann::json& job)>;

// Possible errors: AlreadyExists when `kind` is taken.
absl::Status RegisterJobKind(const std::string& kind, JobHandler handler);
std::vector<std::string> RegisteredJobKinds();

// Possible errors: NotFound / InvalidArgument "<file>: ..." for an unreadable or malformed job
// file (jobfile::ParseJobEnvelope: not JSON, no string "kind", a "config" that is not an
// object); InvalidArgument "<file>: unknown job kind 'x' (known: ...)"; whatever the handler
// returns.
absl::Status RunJobFile(const std::string& path);

}  // namespace pcsweep::jobs

#endif  // PCSWEEP_EXPERIMENTS_JOBS_JOB_REGISTRY_H_
