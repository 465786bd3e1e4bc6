// Typed, validated access to a job's "config" object for the ML job kinds: every read names
// its key, so a bad setting ends the job with one clear line ("config.lr: expected a number,
// got \"fast\""), and keys nobody read are reported as unknown (a typo such as "lamda" must
// not silently fall back to a default). Also parses LoRA layer ranges and target lists.
// Thread-safety: a JobSettings is not thread-safe (it records which keys were read).
#ifndef PCSWEEP_EXPERIMENTS_JOBS_JOB_SETTINGS_H_
#define PCSWEEP_EXPERIMENTS_JOBS_JOB_SETTINGS_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/engine/lora_config.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobs {

class JobSettings {
 public:
  // `prefix` names the object in errors, e.g. "config" or "config.synth".
  JobSettings(nlohmann::json object, std::string prefix);

  bool Has(const std::string& key) const;
  // Possible errors (all): InvalidArgument "<prefix>.<key>: expected ..., got ..." for a
  // wrong type or a value outside [min, max]; the Required* forms also for a missing key.
  absl::StatusOr<std::string> String(const std::string& key, const std::string& fallback);
  absl::StatusOr<std::string> RequiredString(const std::string& key);
  absl::StatusOr<double> Number(const std::string& key, double fallback, double min, double max);
  absl::StatusOr<int64_t> Integer(const std::string& key, int64_t fallback, int64_t min,
                                  int64_t max);
  absl::StatusOr<bool> Bool(const std::string& key, bool fallback);
  // The raw value (marked as read); nullopt when absent.
  std::optional<nlohmann::json> Raw(const std::string& key);
  // A nested object as settings of its own. Possible errors: InvalidArgument if not an object.
  absl::StatusOr<std::optional<JobSettings>> Object(const std::string& key);

  // Possible errors: InvalidArgument "<prefix>: unknown key 'x' (known: a, b, ...)" for the
  // first key that no accessor read.
  absl::Status CheckAllKeysUsed() const;
  std::string Where(const std::string& key) const { return prefix_ + "." + key; }
  const std::string& prefix() const { return prefix_; }

 private:
  absl::Status TypeError(const std::string& key, const std::string& expected) const;

  nlohmann::json object_;
  std::string prefix_;
  std::set<std::string> used_;
};

// LoRA modules from "all", "attention", "mlp", or a list / comma string of q, k, v, o, gate,
// up, down (or q_proj, ...). Possible errors: InvalidArgument naming the unknown module.
absl::StatusOr<std::vector<engine::LoraModule>> ParseTargetModules(const nlohmann::json& value,
                                                                   const std::string& where);

}  // namespace pcsweep::jobs

#endif  // PCSWEEP_EXPERIMENTS_JOBS_JOB_SETTINGS_H_
