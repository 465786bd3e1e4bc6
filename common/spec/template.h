// Job templates: the `job` map of a stage, each string split once per stage into literal text
// and placeholders, then instantiated once per grid cell. `{key}` and `{key.field}` take a
// grid value (or a field of a map value); `{stage.output}`, with `stage` in the stage's after
// list, is a parent reference kept verbatim for ResolveParentRefs, which the coordinator runs
// when the job is leased. `{{` and `}}` are literal braces; other text in braces is literal.
// Inside the `command` of a command job, spliced values are ShellQuote'd. spec.h has the full
// rules. Internal to the spec library.
//
// Thread-safety: pure functions on values the caller owns.
#ifndef PCSWEEP_COMMON_SPEC_TEMPLATE_H_
#define PCSWEEP_COMMON_SPEC_TEMPLATE_H_

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/spec/grid.h"
#include "common/spec/yaml_scalar.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace pcsweep::spec_internal {

// A piece of a template string.
struct Segment {
  enum Kind { kText, kGridRef, kParentRef } kind = kText;
  std::string text;   // literal text; or the grid key / parent stage
  std::string field;  // after the dot, if any
  std::string Placeholder() const {
    return field.empty() ? absl::StrCat("{", text, "}") : absl::StrCat("{", text, ".", field, "}");
  }
};

// A compiled YAML value of a `job` map.
struct Template {
  enum Kind { kValue, kString, kObject, kArray } kind = kValue;
  nlohmann::json value;  // kValue: a non-string scalar or null
  std::vector<Segment> segments;
  std::vector<std::pair<std::string, Template>> object;
  std::vector<Template> array;
  YAML::Mark mark;
  std::string where;
};

// The names a stage's placeholders may use.
struct StageContext {
  std::set<std::string> grid_keys;
  std::set<std::string> after;
  std::set<std::string> all_stages;
};

// How spliced values are written: as they are, or (inside the `command` of a command job)
// shell-quoted. kCommandJob marks the job map itself, whose `command` child is kShell.
enum class Quoting { kNone, kCommandJob, kShell };

// Compiles `node` (recursively) at YAML path `where`.
// Possible errors: InvalidArgument for what NodeToJson refuses, an unknown placeholder (naming
// the grid keys), a parent stage named without an output, a reference to a stage that is not
// in `context.after`.
absl::StatusOr<Template> CompileTemplate(const YAML::Node& node, absl::string_view where,
                                         const StageContext& context, const Errors& errors,
                                         int depth = 0);

// Adds to `refs`, for each parent stage `t` refers to and `refs` lacks, where its first
// reference is: the mark and "PATH: {stage.field}".
void CollectParentRefs(const Template& t,
                       std::map<std::string, std::pair<YAML::Mark, std::string>>* refs);

// The number of "{stage.field}" references to stages in `stages` that ResolveParentRefs
// would see in `s`.
size_t CountParentRefs(absl::string_view s, const std::set<std::string>& stages);

// `t` for the job `job_key` of grid cell `cell`; `after` is the stage's after list. A string
// that is exactly one grid placeholder keeps the value's type (not in a command).
// Possible errors: InvalidArgument for a `{key.field}` whose value has no such field, or a
// result holding literal text that reads as a reference to an after stage.
absl::StatusOr<nlohmann::json> Instantiate(const Template& t, const Cell& cell,
                                           absl::string_view job_key,
                                           const std::set<std::string>& after, const Errors& errors,
                                           Quoting quoting = Quoting::kNone);

// ResolveParentOutputs (spec.h) below its exception guard: replaces the parent references
// in the strings of `value` (recursively) by the outputs.
// Possible errors: FailedPrecondition naming a reference whose output is missing; throws
// nlohmann::json::exception where a numeric output does not parse.
absl::StatusOr<nlohmann::json> ResolveParentRefs(
    const nlohmann::json& value,
    const std::map<std::string, std::map<std::string, std::string>>& outputs, Quoting quoting);

}  // namespace pcsweep::spec_internal

#endif  // PCSWEEP_COMMON_SPEC_TEMPLATE_H_
