// Sweep specs: the YAML a user submits, parsed and expanded into one JobDefinition per grid
// cell (and stage). Parsing is pure: no I/O, no clock. The coordinator stores the result.
//
// YAML shape (single stage):
//   name: smoke
//   max_attempts: 3                # optional, default 3
//   job: {kind: command, command: "echo {x}"}
//   grid: {x: [1, 2], seed: [0, 1]}  # cartesian product; values are scalars or maps
//   include: [{x: 9, seed: 0}]     # optional extra cells
//   exclude: [{x: 2, seed: 1}]     # optional cells (or partial cells) to drop
// or several stages, each like the single-stage form plus `name` and `after`:
//   stages:
//     - {name: pretrain, job: {kind: pretrain, steps: 100}}
//     - name: train
//       after: [pretrain]
//       job: {kind: train_eval, model: "{pretrain.output_dir}", layers: "{layers}"}
//       grid: {layers: ["0-1", "2-3"], seed: [0, 1]}
// `{param}` is replaced by the cell's grid value (a whole-string placeholder keeps the value's
// YAML type); `{stage.output}` names an output (or metric) of the finished parent job of
// stage `stage`, resolved by the coordinator when the job is leased.
//
// Rules in detail:
// - Grid: keys are identifiers; each axis is a non-empty list of scalars (int, float, bool,
//   string) or maps. Cells are the cartesian product, first key outermost, values in file
//   order. `exclude` entries (partial cells, each must match at least one cell) drop cells of
//   the product; `include` entries (full cells: exactly the grid keys) are appended after.
// - Placeholders, in every string of `job` (recursively): `{name}` with `name` a grid key;
//   `{name.field}` picks a field of a map-valued grid key, or, when `name` is a stage listed
//   in `after`, is a parent reference kept verbatim in `config`. Other text in braces is
//   literal (`echo {"v": {x}}` only substitutes `{x}`); `{{` and `}}` are literal braces.
//   A string grid value may itself hold a parent reference (`layers: [early,
//   "{select.range}"]`): it is spliced, then resolved like one written in `job`.
//   Scalars are spliced as canonical JSON (strings without quotes). In the `command` of a
//   `command` job every spliced value (grid value or parent output) is shell-quoted: it is one
//   literal word for `sh -c` (`echo {x}` with x = "a; rm b" runs echo with one argument), and
//   stays text even when it is the whole string. Grid values holding a control character
//   (0x00-0x1f, 0x7f) are refused. A job that refers to
//   parent stage P must match exactly one job of P (see depends_on), else it is ambiguous.
// - Job kinds: `command` (keys: `command`, a string) and the engine kinds `pretrain`, `eval`,
//   `train_eval`, `sae_train`, `sae_transfer`, `layer_select`, whose settings pass through
//   unchecked (pcsweep-run validates them).
// - Dependencies: a job waits for the jobs of each `after` stage that agree with it on their
//   shared grid keys (all of them when no key is shared); having none is an error.
// - config_hash covers kind, config, the cell's typed grid values and the parents' hashes:
//   not the sweep or stage name, the key or max_attempts. Grid values count even when the
//   job does not use them (two seeds of one command are two cells, not one reused result).
#ifndef PCSWEEP_COMMON_SPEC_SPEC_H_
#define PCSWEEP_COMMON_SPEC_SPEC_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace pcsweep {

// One job of a sweep: a grid cell of one stage.
struct JobDefinition {
  // Unique within the sweep: "<stage>[k1=v1,k2=v2]" with keys sorted, or "<stage>" without a
  // grid. Single-stage sweeps use the sweep name as the stage name.
  std::string key;
  std::string stage;
  std::string kind;  // "command", "pretrain", "eval", "train_eval", ...
  // The cell's grid values, canonical compact JSON for each (strings unquoted).
  std::map<std::string, std::string> params;
  // The job's settings (the `job` map minus `kind`), own placeholders substituted; parent
  // references like "{pretrain.output_dir}" are kept for the coordinator to resolve.
  nlohmann::json config;
  // Keys of the jobs this one waits for: for each `after` stage, its jobs whose params agree
  // with this job's on the grid keys they share.
  std::vector<std::string> depends_on;
  // Lower-case hex SHA-256 of the canonical JSON (sorted keys, compact) of {kind, config,
  // typed grid values, sorted parents' config hashes}. Equal hashes mean equal work, across
  // sweeps.
  std::string config_hash;
  int max_attempts = 3;
};

struct SweepSpec {
  std::string name;
  int max_attempts = 3;
  std::vector<JobDefinition> jobs;  // parents before children
};

// Parses and expands `yaml`. `path` only appears in error messages. Pure and thread-safe.
// Possible errors: InvalidArgument "PATH:LINE:COL: what" (1-based) for malformed YAML,
// unknown or duplicate keys (naming the allowed ones), wrong types, an empty grid or grid
// axis, an unknown placeholder, an unknown or cyclic `after` stage (naming the cycle), a
// parent reference to a stage not in `after` or matching several parent jobs, a job with no
// parent job to wait for, duplicate stage names or cells, include cells missing grid keys,
// exclude entries matching nothing, max_attempts < 1, an unknown job kind, a spec over 1 MiB,
// more than 100000 jobs or 200000 dependency edges, a control character in a grid value.
// `expired`, when set, is polled while the grid expands (the caller's deadline: parsing itself
// reads no clock); once it returns true: DeadlineExceeded "PATH: expanding the spec took longer
// than its deadline ...".
absl::StatusOr<SweepSpec> ParseSweepSpec(absl::string_view yaml, absl::string_view path = "<spec>",
                                         const std::function<bool()>& expired = nullptr);

// Replaces every "{stage.name}" reference in `config` (recursively, in strings) with
// `outputs.at(stage).at(name)`; a whole-string reference to a numeric output becomes a number.
// Only stages present in `outputs_by_stage` are resolved: pass exactly the job's parent
// stages; braces naming any other stage are left as they are (literal text).
// `command_job`: the config is a `command` job's: outputs spliced into its `command` are
// ShellQuote'd (one literal word each) and stay text.
// Possible errors: FailedPrecondition naming the reference when an output is missing.
absl::StatusOr<nlohmann::json> ResolveParentOutputs(
    const nlohmann::json& config,
    const std::map<std::string, std::map<std::string, std::string>>& outputs_by_stage,
    bool command_job = false);

// Lower-case hex SHA-256 of `data` (OpenSSL libcrypto).
std::string Sha256Hex(absl::string_view data);

}  // namespace pcsweep

#endif  // PCSWEEP_COMMON_SPEC_SPEC_H_
