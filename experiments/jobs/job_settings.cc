#include "experiments/jobs/job_settings.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"

namespace pcsweep::jobs {
namespace {

std::string Shown(const nlohmann::json& value) {
  std::string s = value.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

JobSettings::JobSettings(nlohmann::json object, std::string prefix)
    : object_(object.is_object() ? std::move(object) : nlohmann::json::object()),
      prefix_(std::move(prefix)) {}

bool JobSettings::Has(const std::string& key) const {
  return object_.contains(key) && !object_[key].is_null();
}

absl::Status JobSettings::TypeError(const std::string& key, const std::string& expected) const {
  return absl::InvalidArgumentError(
      absl::StrCat(Where(key), ": expected ", expected, ", got ", Shown(object_[key])));
}

absl::StatusOr<std::string> JobSettings::String(const std::string& key,
                                                const std::string& fallback) {
  used_.insert(key);
  if (!Has(key)) return fallback;
  const auto& v = object_[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();  // a placeholder that resolved to a number
  return TypeError(key, "a string");
}

absl::StatusOr<std::string> JobSettings::RequiredString(const std::string& key) {
  if (!Has(key)) {
    used_.insert(key);
    return absl::InvalidArgumentError(absl::StrCat(Where(key), ": required setting is missing"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::string value, String(key, ""));
  if (value.empty())
    return absl::InvalidArgumentError(absl::StrCat(Where(key), ": must not be empty"));
  return value;
}

absl::StatusOr<double> JobSettings::Number(const std::string& key, double fallback, double min,
                                           double max) {
  used_.insert(key);
  if (!Has(key)) return fallback;
  const auto& v = object_[key];
  double value = 0;
  if (v.is_number()) {
    value = v.get<double>();
  } else if (!(v.is_string() && absl::SimpleAtod(v.get<std::string>(), &value))) {
    return TypeError(key, "a number");
  }
  if (!std::isfinite(value) || value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(key), ": ", Shown(v), " is outside [", min, ", ", max, "]"));
  }
  return value;
}

absl::StatusOr<int64_t> JobSettings::Integer(const std::string& key, int64_t fallback, int64_t min,
                                             int64_t max) {
  used_.insert(key);
  if (!Has(key)) return fallback;
  const auto& v = object_[key];
  int64_t value = 0;
  if (v.is_number_integer()) {
    value = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) {
    // Range-check as a double first: casting 1e300 to int64_t is undefined behaviour.
    const double d = v.get<double>();
    if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(key), ": ", Shown(v), " is outside [", min, ", ", max, "]"));
    }
    value = static_cast<int64_t>(d);
  } else if (!(v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &value))) {
    return TypeError(key, "an integer");
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(key), ": ", value, " is outside [", min, ", ", max, "]"));
  }
  return value;
}

absl::StatusOr<bool> JobSettings::Bool(const std::string& key, bool fallback) {
  used_.insert(key);
  if (!Has(key)) return fallback;
  const auto& v = object_[key];
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return TypeError(key, "true or false");
}

std::optional<nlohmann::json> JobSettings::Raw(const std::string& key) {
  used_.insert(key);
  if (!Has(key)) return std::nullopt;
  return object_[key];
}

absl::StatusOr<std::optional<JobSettings>> JobSettings::Object(const std::string& key) {
  used_.insert(key);
  if (!Has(key)) return std::optional<JobSettings>();
  if (!object_[key].is_object()) return TypeError(key, "an object");
  return std::optional<JobSettings>(JobSettings(object_[key], Where(key)));
}

absl::Status JobSettings::CheckAllKeysUsed() const {
  for (const auto& [key, value] : object_.items()) {
    if (!used_.count(key)) {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix_, ": unknown key '", key, "' (known: ", absl::StrJoin(used_, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<engine::LoraModule>> ParseTargetModules(const nlohmann::json& value,
                                                                   const std::string& where) {
  std::vector<std::string> names;
  if (value.is_string()) {
    for (const auto& part : absl::StrSplit(value.get<std::string>(), ',')) {
      names.emplace_back(absl::StripAsciiWhitespace(part));
    }
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (!item.is_string())
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": expected module names, got ", Shown(item)));
      names.push_back(item.get<std::string>());
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected a list of modules, got ", Shown(value)));
  }
  std::vector<engine::LoraModule> modules;
  for (const std::string& name : names) {
    if (name == "all") {
      modules.assign(std::begin(engine::kAllLoraModules), std::end(engine::kAllLoraModules));
    } else if (name == "attention") {
      for (auto m : {engine::LoraModule::kQ, engine::LoraModule::kK, engine::LoraModule::kV,
                     engine::LoraModule::kO})
        modules.push_back(m);
    } else if (name == "mlp") {
      for (auto m : {engine::LoraModule::kGate, engine::LoraModule::kUp, engine::LoraModule::kDown})
        modules.push_back(m);
    } else {
      auto module = engine::ParseLoraModule(name);
      if (!module.ok()) return Annotate(module.status(), where);
      modules.push_back(*module);
    }
  }
  if (modules.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": no modules"));
  std::sort(modules.begin(), modules.end());
  modules.erase(std::unique(modules.begin(), modules.end()), modules.end());
  return modules;
}

}  // namespace pcsweep::jobs
