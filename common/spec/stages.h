// The stages of a sweep: the top-level map read into one Stage per stage (the single-stage
// form is one stage named after the sweep), each with its after list, max_attempts, expanded
// grid and compiled job template, and the stage DAG put in dependency order. Internal to the
// spec library; jobs.h turns the stages into jobs.
//
// Thread-safety: pure functions (the Errors object is the caller's, one parse per thread).
#ifndef PCSWEEP_COMMON_SPEC_STAGES_H_
#define PCSWEEP_COMMON_SPEC_STAGES_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/spec/grid.h"
#include "common/spec/template.h"
#include "common/spec/yaml_scalar.h"
#include "yaml-cpp/yaml.h"

namespace pcsweep::spec_internal {

inline constexpr int kDefaultMaxAttempts = 3;

struct Stage {
  std::string name;
  std::string where;  // "" (single-stage form) or "stages[i]"
  YAML::Mark mark;
  std::vector<MapEntry> entries;
  std::vector<std::string> after;
  std::vector<YAML::Mark> after_marks;
  int max_attempts = kDefaultMaxAttempts;
  std::string kind;
  Template config;  // the `job` map minus `kind`
  Grid grid;
};

struct SweepStages {
  std::string name;
  int max_attempts = kDefaultMaxAttempts;
  std::vector<Stage> stages;              // file order
  std::map<std::string, size_t> by_name;  // index into `stages`
};

// Reads the spec's top-level map `root` and every stage in it. Each stage's after list names
// existing stages (not necessarily acyclic: see OrderStages).
// Possible errors: InvalidArgument for a spec that is not a map, unknown or duplicate keys,
// a missing or malformed sweep or stage name, duplicate stage names, a `stages` that is not a
// non-empty list of maps, a malformed or unknown `after` entry, max_attempts out of range, a
// missing `job`, an unknown job kind, a command job without a non-empty `command`, and what
// ExpandGrid and CompileTemplate refuse; DeadlineExceeded from ExpandGrid.
absl::StatusOr<SweepStages> ReadStages(const YAML::Node& root, const Errors& errors);

// The indices of `sweep.stages` ordered so that each comes after the stages it waits for,
// keeping file order where free.
// Possible errors: InvalidArgument "dependency cycle: a after b after a" for the first cycle
// found (in file order, so the message is stable), at the `after` entry closing it.
absl::StatusOr<std::vector<size_t>> OrderStages(const SweepStages& sweep, const Errors& errors);

}  // namespace pcsweep::spec_internal

#endif  // PCSWEEP_COMMON_SPEC_STAGES_H_
