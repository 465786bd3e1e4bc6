// Reading a spec's YAML nodes as typed values, with every error positioned as
// "PATH:LINE:COL: message" at the closest node. yaml-cpp keeps every scalar as text; this gives
// them YAML 1.2 core-schema types (null, bool, int, float, string) as JSON values, and reads
// maps (refusing duplicate and unknown keys), strings and max_attempts. Internal to the spec
// library: the other parts (grid, template, stages, jobs) read the YAML through it.
//
// Thread-safety: the functions are pure. An Errors object counts the nodes it is shown and is
// used by one parse on one thread.
#ifndef PCSWEEP_COMMON_SPEC_YAML_SCALAR_H_
#define PCSWEEP_COMMON_SPEC_YAML_SCALAR_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace pcsweep::spec_internal {

// Makes the errors of one parse of the spec at `path`, and polls the caller's deadline.
// Also counts the YAML nodes converted, against kMaxYamlNodes.
class Errors {
 public:
  // `expired` (not owned, may be null or hold an empty function) outlives this object.
  Errors(absl::string_view path, const std::function<bool()>* expired)
      : path_(path), expired_(expired) {}

  // Polled in the expansion loops; `where` names the part of the spec being expanded.
  // Possible errors: DeadlineExceeded once the caller's deadline has passed.
  absl::Status CheckDeadline(absl::string_view where) const;

  // Called once per YAML value converted, at nesting `depth`.
  // Possible errors: InvalidArgument past kMaxDepth levels or kMaxYamlNodes values.
  absl::Status Visit(const YAML::Node& node, absl::string_view where, int depth) const;

  // InvalidArgument "PATH:LINE:COL: message" ("PATH: message" for a null mark).
  absl::Status At(const YAML::Mark& mark, absl::string_view message) const;
  absl::Status At(const YAML::Node& node, absl::string_view message) const {
    return At(node.Mark(), message);
  }

 private:
  std::string path_;
  const std::function<bool()>* expired_;
  mutable size_t visited_ = 0;
};

// YAML paths in messages: "stages[1].job.command". The top-level map's path is "".
std::string Child(absl::string_view where, absl::string_view key);
std::string Index(absl::string_view where, size_t i);
// How a YAML path reads in a message: the top-level map has no path of its own.
std::string Describe(absl::string_view where);

// [A-Za-z_][A-Za-z0-9_]*: grid keys and stage names.
bool IsIdentifier(absl::string_view s);
// [A-Za-z0-9_][A-Za-z0-9_.-]*: sweep names.
bool IsSweepName(absl::string_view s);

// Canonical text of a value: compact JSON with sorted keys, strings without quotes.
std::string CanonicalText(const nlohmann::json& value);

// `node` (recursively) as JSON, scalars typed by the YAML 1.2 core schema; quoted or !!str
// scalars stay strings, integers too large for int64 become (rounded) doubles.
// Possible errors: InvalidArgument for nesting or size past the limits (Errors::Visit), a
// map key that is not a string or is repeated, a float out of range, .inf/.nan.
absl::StatusOr<nlohmann::json> NodeToJson(const YAML::Node& node, const Errors& errors,
                                          absl::string_view where, int depth = 0);

// One key of a YAML map, as ReadMap returns it.
struct MapEntry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  // Where errors about the value point: the value, or the key when the value is empty
  // (yaml-cpp marks an empty value at the next token, possibly lines later).
  YAML::Mark mark;
};

// Reads a YAML map in file order. `allowed`: the keys it may hold (nullptr: any key). `at`
// overrides where a type error points.
// Possible errors: InvalidArgument when `node` is not a map, a key is not a string, is
// repeated or is not in `allowed` (the message lists the allowed keys).
absl::StatusOr<std::vector<MapEntry>> ReadMap(const YAML::Node& node, const Errors& errors,
                                              absl::string_view where,
                                              const std::vector<std::string>* allowed,
                                              std::optional<YAML::Mark> at = std::nullopt);

// The entry for `key`, or nullptr; points into `entries`.
const MapEntry* Find(const std::vector<MapEntry>& entries, absl::string_view key);

// A scalar's text; quoted scalars may be empty.
// Possible errors: InvalidArgument for a map, a list or an unquoted null (at `at` if given).
absl::StatusOr<std::string> ReadString(const YAML::Node& node, const Errors& errors,
                                       absl::string_view where,
                                       std::optional<YAML::Mark> at = std::nullopt);

// A max_attempts value.
// Possible errors: InvalidArgument unless an integer in [1, 1000000].
absl::StatusOr<int> ReadMaxAttempts(const MapEntry& entry, const Errors& errors,
                                    absl::string_view where);

}  // namespace pcsweep::spec_internal

#endif  // PCSWEEP_COMMON_SPEC_YAML_SCALAR_H_
