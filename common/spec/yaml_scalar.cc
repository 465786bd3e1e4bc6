#include "common/spec/yaml_scalar.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/spec/spec_limits.h"
#include "common/status/status_macros.h"

namespace pcsweep::spec_internal {
namespace {

using nlohmann::json;

// YAML 1.2 core-schema typing (yaml-cpp keeps every scalar as text).

bool IsYamlNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> YamlBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool AllDigits(absl::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

bool IsYamlInt(absl::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return AllDigits(s);
}

// [-+]? ( \.[0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsYamlFloat(absl::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && absl::ascii_isdigit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && absl::ascii_isdigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && absl::ascii_isdigit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

bool IsYamlSpecialFloat(const std::string& s) {
  static const std::set<std::string> kSpecial = {".inf",  ".Inf",  ".INF",  "+.inf",
                                                 "+.Inf", "+.INF", "-.inf", "-.Inf",
                                                 "-.INF", ".nan",  ".NaN",  ".NAN"};
  return kSpecial.count(s) > 0;
}

absl::StatusOr<json> ScalarToJson(const YAML::Node& node, const Errors& errors,
                                  absl::string_view where) {
  const std::string& text = node.Scalar();
  const std::string& tag = node.Tag();
  // "!" marks a quoted scalar; an explicit !!str keeps text as text too.
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return json(text);
  if (IsYamlNull(text)) return json(nullptr);
  if (std::optional<bool> b = YamlBool(text)) return json(*b);
  if (IsYamlInt(text)) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (errno != ERANGE && end && *end == '\0') return json(static_cast<int64_t>(v));
    // Too large for int64: keep it as a (rounded) number rather than refusing it.
    return json(std::strtod(text.c_str(), nullptr));
  }
  if (IsYamlFloat(text)) {
    double v = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(v)) {
      return errors.At(node, absl::StrCat(Describe(where), ": number ", text, " is out of range"));
    }
    return json(v);
  }
  if (IsYamlSpecialFloat(text)) {
    return errors.At(node, absl::StrCat(Describe(where), ": non-finite number ", text,
                                        " cannot be stored as JSON; quote it for a string"));
  }
  return json(text);
}

}  // namespace

absl::Status Errors::CheckDeadline(absl::string_view where) const {
  if (expired_ == nullptr || !*expired_ || !(*expired_)()) return absl::OkStatus();
  return absl::DeadlineExceededError(
      absl::StrCat(path_, ": expanding the spec took longer than its deadline (at ",
                   Describe(where), "); make the grid smaller or split the sweep"));
}

absl::Status Errors::Visit(const YAML::Node& node, absl::string_view where, int depth) const {
  if (depth > kMaxDepth) {
    return At(node,
              absl::StrCat(where.substr(0, 60), where.size() > 60 ? "..." : "",
                           ": nested more than ", kMaxDepth, " levels deep (a recursive alias?)"));
  }
  if (++visited_ > kMaxYamlNodes) {
    return At(node, absl::StrCat(where, ": the spec expands to more than ", kMaxYamlNodes,
                                 " YAML values (aliases?)"));
  }
  return absl::OkStatus();
}

absl::Status Errors::At(const YAML::Mark& mark, absl::string_view message) const {
  if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(path_, ": ", message));
  return absl::InvalidArgumentError(
      absl::StrCat(path_, ":", mark.line + 1, ":", mark.column + 1, ": ", message));
}

std::string Child(absl::string_view where, absl::string_view key) {
  return where.empty() ? std::string(key) : absl::StrCat(where, ".", key);
}
std::string Index(absl::string_view where, size_t i) { return absl::StrCat(where, "[", i, "]"); }
std::string Describe(absl::string_view where) {
  return where.empty() ? "the spec" : std::string(where);
}

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || !(absl::ascii_isalpha(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

bool IsSweepName(absl::string_view s) {
  if (s.empty() || !(absl::ascii_isalnum(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

std::string CanonicalText(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

absl::StatusOr<std::vector<MapEntry>> ReadMap(const YAML::Node& node, const Errors& errors,
                                              absl::string_view where,
                                              const std::vector<std::string>* allowed,
                                              std::optional<YAML::Mark> at) {
  if (!node.IsMap()) {
    return errors.At(at.value_or(node.Mark()), absl::StrCat(Describe(where), " must be a map"));
  }
  std::vector<MapEntry> entries;
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      return errors.At(key, absl::StrCat(Describe(where), ": keys must be strings"));
    }
    const std::string& name = key.Scalar();
    if (!seen.insert(name).second) {
      return errors.At(key, absl::StrCat(Describe(where), ": duplicate key '", name, "'"));
    }
    if (allowed != nullptr && std::find(allowed->begin(), allowed->end(), name) == allowed->end()) {
      return errors.At(key, absl::StrCat(Describe(where), ": unknown key '", name,
                                         "' (allowed: ", absl::StrJoin(*allowed, ", "), ")"));
    }
    const YAML::Node value = it->second;
    entries.push_back({name, key, value, value.IsNull() ? key.Mark() : value.Mark()});
  }
  return entries;
}

const MapEntry* Find(const std::vector<MapEntry>& entries, absl::string_view key) {
  for (const MapEntry& entry : entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

absl::StatusOr<json> NodeToJson(const YAML::Node& node, const Errors& errors,
                                absl::string_view where, int depth) {
  PCSWEEP_RETURN_IF_ERROR(errors.Visit(node, Describe(where), depth));
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return ScalarToJson(node, errors, where);
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (size_t i = 0; i < node.size(); ++i) {
        PCSWEEP_ASSIGN_OR_RETURN(json item,
                                 NodeToJson(node[i], errors, Index(where, i), depth + 1));
        array.push_back(std::move(item));
      }
      return array;
    }
    case YAML::NodeType::Map: {
      PCSWEEP_ASSIGN_OR_RETURN(std::vector<MapEntry> entries,
                               ReadMap(node, errors, where, nullptr));
      json object = json::object();
      for (const MapEntry& entry : entries) {
        PCSWEEP_ASSIGN_OR_RETURN(
            object[entry.key], NodeToJson(entry.value, errors, Child(where, entry.key), depth + 1));
      }
      return object;
    }
    default:
      return json(nullptr);
  }
}

absl::StatusOr<std::string> ReadString(const YAML::Node& node, const Errors& errors,
                                       absl::string_view where, std::optional<YAML::Mark> at) {
  if (!node.IsScalar() || (node.Tag() != "!" && IsYamlNull(node.Scalar()))) {
    return errors.At(at.value_or(node.Mark()), absl::StrCat(Describe(where), " must be a string"));
  }
  return node.Scalar();
}

absl::StatusOr<int> ReadMaxAttempts(const MapEntry& entry, const Errors& errors,
                                    absl::string_view where) {
  const YAML::Node& node = entry.value;
  PCSWEEP_ASSIGN_OR_RETURN(json value, NodeToJson(node, errors, where));
  if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > 1000000) {
    return errors.At(entry.mark, absl::StrCat(Describe(where), " must be an integer >= 1, got ",
                                              node.IsScalar() ? node.Scalar() : value.dump()));
  }
  return static_cast<int>(value.get<int64_t>());
}

}  // namespace pcsweep::spec_internal
