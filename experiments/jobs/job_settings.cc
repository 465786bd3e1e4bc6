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

absl::StatusOr<std::vector<int>> ParseLayers(const nlohmann::json& value, int num_layers,
                                             const std::string& where) {
  std::vector<int> layers;
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", what, " (model has ", num_layers,
                     " layers; use \"all\", \"early\", \"middle\", \"late\", "
                     "\"a-b\" or a list)"));
  };
  auto add_layer = [&](int64_t layer) -> absl::Status {
    if (layer < 0 || layer >= num_layers)
      return bad(absl::StrCat("layer ", layer, " is out of range"));
    layers.push_back(static_cast<int>(layer));
    return absl::OkStatus();
  };
  // The paper's 5 of 34 layers, scaled to the depth.
  const int count = std::max(2, static_cast<int>(std::lround(5.0 * num_layers / 34.0)));
  auto add_token = [&](std::string token) -> absl::Status {
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.empty()) return bad("empty layer entry");
    if (token == "all") {
      for (int i = 0; i < num_layers; ++i) layers.push_back(i);
      return absl::OkStatus();
    }
    if (token == "early" || token == "middle" || token == "late") {
      const int n = std::min(count, num_layers);
      int first = 0;
      if (token == "middle") first = static_cast<int>(std::lround(0.5 * num_layers - 0.5 * n));
      if (token == "late") first = num_layers - n;
      first = std::clamp(first, 0, num_layers - n);
      for (int i = first; i < first + n; ++i) layers.push_back(i);
      return absl::OkStatus();
    }
    const std::vector<std::string> ends = absl::StrSplit(token, '-');
    int64_t a = 0, b = 0;
    if (ends.size() == 1 && absl::SimpleAtoi(ends[0], &a)) return add_layer(a);
    if (ends.size() == 2 && absl::SimpleAtoi(ends[0], &a) && absl::SimpleAtoi(ends[1], &b)) {
      if (a > b) return bad(absl::StrCat("range '", token, "' is reversed"));
      for (int64_t i = a; i <= b; ++i) PCSWEEP_RETURN_IF_ERROR(add_layer(i));
      return absl::OkStatus();
    }
    return bad(absl::StrCat("cannot read '", token, "'"));
  };
  if (value.is_string()) {
    for (const auto& part : absl::StrSplit(value.get<std::string>(), ',')) {
      PCSWEEP_RETURN_IF_ERROR(add_token(std::string(part)));
    }
  } else if (value.is_number_integer()) {
    PCSWEEP_RETURN_IF_ERROR(add_layer(value.get<int64_t>()));
  } else if (value.is_array() && !value.empty()) {
    for (const auto& item : value) {
      if (item.is_number_integer()) {
        PCSWEEP_RETURN_IF_ERROR(add_layer(item.get<int64_t>()));
      } else if (item.is_string()) {
        PCSWEEP_RETURN_IF_ERROR(add_token(item.get<std::string>()));
      } else {
        return bad(absl::StrCat("cannot read ", Shown(item)));
      }
    }
  } else {
    return bad(absl::StrCat("cannot read ", Shown(value)));
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
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
