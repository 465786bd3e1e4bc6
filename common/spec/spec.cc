// The parsing pipeline: YAML document -> stages (with grids and job templates) -> stage order
// -> jobs. The steps live in yaml_scalar, grid, template, stages and jobs (.h/.cc).
#include "common/spec/spec.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/spec/jobs.h"
#include "common/spec/spec_limits.h"
#include "common/spec/stages.h"
#include "common/spec/template.h"
#include "common/spec/yaml_document.h"
#include "common/spec/yaml_scalar.h"
#include "common/status/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace pcsweep {
namespace {

using nlohmann::json;
using spec_internal::Errors;

absl::StatusOr<SweepSpec> ParseYaml(const YAML::Node& root, const Errors& errors) {
  PCSWEEP_ASSIGN_OR_RETURN(spec_internal::SweepStages sweep,
                           spec_internal::ReadStages(root, errors));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<size_t> order, spec_internal::OrderStages(sweep, errors));

  size_t total_jobs = 0;
  for (const spec_internal::Stage& stage : sweep.stages) total_jobs += stage.grid.cells.size();
  if (total_jobs > spec_internal::kMaxJobs) {
    return errors.At(root, absl::StrCat("the sweep has ", total_jobs, " jobs, more than ",
                                        spec_internal::kMaxJobs, "; split it"));
  }

  SweepSpec spec;
  spec.name = sweep.name;
  spec.max_attempts = sweep.max_attempts;
  PCSWEEP_ASSIGN_OR_RETURN(spec.jobs, spec_internal::BuildJobs(sweep, order, errors));
  return spec;
}

}  // namespace

absl::StatusOr<SweepSpec> ParseSweepSpec(absl::string_view yaml, absl::string_view path,
                                         const std::function<bool()>& expired) {
  if (yaml.size() > spec_internal::kMaxSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the spec is ", yaml.size(), " bytes, more than ",
                     spec_internal::kMaxSpecBytes, " (1 MiB); split the sweep"));
  }
  const Errors errors(path, &expired);
  try {
    const spec_internal::YamlDocument document =
        spec_internal::LoadFirstYamlDocument(std::string(yaml));
    if (document.more_is_stuck) {
      return errors.At(document.more_at, "not YAML here (a stray ',' or similar token)");
    }
    if (document.has_more) {
      return errors.At(document.more_at, "a spec is one YAML document; found a second one");
    }
    return ParseYaml(document.root, errors);
  } catch (const YAML::Exception& e) {
    // ParserException and friends: e.msg without the "yaml-cpp: error at ..." prefix.
    return errors.At(e.mark, e.msg);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

absl::StatusOr<nlohmann::json> ResolveParentOutputs(
    const nlohmann::json& config,
    const std::map<std::string, std::map<std::string, std::string>>& outputs_by_stage,
    bool command_job) {
  try {
    return spec_internal::ResolveParentRefs(
        config, outputs_by_stage,
        command_job ? spec_internal::Quoting::kCommandJob : spec_internal::Quoting::kNone);
  } catch (const json::exception& e) {
    return absl::InternalError(absl::StrCat("resolving parent outputs: ", e.what()));
  }
}

}  // namespace pcsweep
