#include "experiments/jobs/job_registry.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/jobfile/job_envelope.h"
#include "common/status/status_macros.h"

namespace pcsweep::jobs {
namespace {

std::map<std::string, JobHandler>& Handlers() {
  static auto* handlers = new std::map<std::string, JobHandler>();
  return *handlers;
}

}  // namespace

absl::Status RegisterJobKind(const std::string& kind, JobHandler handler) {
  if (!Handlers().emplace(kind, std::move(handler)).second) {
    return absl::AlreadyExistsError(absl::StrCat("job kind '", kind, "' is already registered"));
  }
  return absl::OkStatus();
}

std::vector<std::string> RegisteredJobKinds() {
  std::vector<std::string> kinds;
  for (const auto& [kind, handler] : Handlers()) kinds.push_back(kind);
  return kinds;
}

absl::Status RunJobFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read job file"));
  std::stringstream ss;
  ss << in.rdbuf();
  PCSWEEP_ASSIGN_OR_RETURN(jobfile::JobEnvelope envelope,
                           jobfile::ParseJobEnvelope(path, ss.str()));
  auto it = Handlers().find(envelope.kind);
  if (it == Handlers().end()) {
    const auto known = RegisteredJobKinds();
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unknown job kind '", envelope.kind,
                     "' (known: ", known.empty() ? "none yet" : absl::StrJoin(known, ", "), ")"));
  }
  return it->second(jobfile::JobEnvelopeToJson(envelope));
}

}  // namespace pcsweep::jobs
