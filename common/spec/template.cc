#include "common/spec/template.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "common/spec/shell_quote.h"
#include "common/status/status_macros.h"

namespace pcsweep::spec_internal {
namespace {

using nlohmann::json;

// Matches "{ident}" or "{ident.ident}" at s[pos]; returns the length of the match or 0.
size_t MatchPlaceholder(absl::string_view s, size_t pos, std::string* name, std::string* field) {
  auto ident_end = [&](size_t i) {
    if (i >= s.size() || !(absl::ascii_isalpha(s[i]) || s[i] == '_')) return i;
    while (i < s.size() && (absl::ascii_isalnum(s[i]) || s[i] == '_')) ++i;
    return i;
  };
  if (pos >= s.size() || s[pos] != '{') return 0;
  size_t name_end = ident_end(pos + 1);
  if (name_end == pos + 1 || name_end >= s.size()) return 0;
  *name = std::string(s.substr(pos + 1, name_end - pos - 1));
  field->clear();
  if (s[name_end] == '}') return name_end + 1 - pos;
  if (s[name_end] != '.') return 0;
  size_t field_end = ident_end(name_end + 1);
  if (field_end == name_end + 1 || field_end >= s.size() || s[field_end] != '}') return 0;
  *field = std::string(s.substr(name_end + 1, field_end - name_end - 1));
  return field_end + 1 - pos;
}

absl::StatusOr<std::vector<Segment>> SplitString(const std::string& s, const YAML::Mark& mark,
                                                 absl::string_view where,
                                                 const StageContext& context,
                                                 const Errors& errors) {
  std::vector<Segment> segments;
  std::string text;
  auto flush_text = [&] {
    if (!text.empty()) segments.push_back({Segment::kText, std::move(text), ""});
    text.clear();
  };
  std::string grid_keys = absl::StrJoin(context.grid_keys, ", ");
  if (grid_keys.empty()) grid_keys = "none";
  for (size_t i = 0; i < s.size();) {
    if ((s[i] == '{' || s[i] == '}') && i + 1 < s.size() && s[i + 1] == s[i]) {
      text += s[i];
      i += 2;
      continue;
    }
    std::string name, field;
    size_t length = MatchPlaceholder(s, i, &name, &field);
    if (length == 0) {
      text += s[i++];
      continue;
    }
    Segment segment{Segment::kGridRef, name, field};
    const std::string placeholder = segment.Placeholder();
    if (context.grid_keys.count(name)) {
      // A grid key; fields of map values are checked per cell.
    } else if (context.after.count(name)) {
      if (field.empty()) {
        return errors.At(mark, absl::StrCat(where, ": ", placeholder, " names parent stage '", name,
                                            "' without an output, e.g. {", name, ".output_dir}"));
      }
      segment.kind = Segment::kParentRef;
    } else if (!field.empty() && context.all_stages.count(name)) {
      return errors.At(mark, absl::StrCat(where, ": ", placeholder, " refers to stage '", name,
                                          "', which is not in this stage's after list"));
    } else {
      return errors.At(
          mark, absl::StrCat(where, ": unknown placeholder ", placeholder,
                             " (grid keys: ", grid_keys, "; write {{ and }} for literal braces)"));
    }
    flush_text();
    segments.push_back(std::move(segment));
    i += length;
  }
  flush_text();
  return segments;
}

absl::StatusOr<json> GridValue(const Segment& segment, const Cell& cell, const Template& t,
                               absl::string_view job_key, const Errors& errors) {
  const json& value = cell.at(segment.text);
  if (segment.field.empty()) return value;
  if (!value.is_object() || !value.contains(segment.field)) {
    return errors.At(
        t.mark, absl::StrCat(Describe(t.where), ": ", segment.Placeholder(), " for job ", job_key,
                             ": value ", value.dump(), " has no field '", segment.field, "'"));
  }
  return value.at(segment.field);
}

// `s` with each piece between parent references ShellQuote'd; the references stay verbatim
// (ResolveParentOutputs quotes what replaces them).
std::string QuoteExceptParentRefs(absl::string_view s, const std::set<std::string>& stages) {
  std::string out, piece, name, field;
  auto flush = [&] {
    if (!piece.empty()) out += ShellQuote(piece);
    piece.clear();
  };
  for (size_t i = 0; i < s.size();) {
    size_t length = MatchPlaceholder(s, i, &name, &field);
    if (length > 0 && !field.empty() && stages.count(name)) {
      flush();
      absl::StrAppend(&out, s.substr(i, length));
      i += length;
    } else {
      piece += s[i++];
    }
  }
  flush();
  return out.empty() ? ShellQuote("") : out;
}

Quoting ChildQuoting(Quoting parent, absl::string_view key) {
  if (parent == Quoting::kShell) return Quoting::kShell;
  return parent == Quoting::kCommandJob && key == "command" ? Quoting::kShell : Quoting::kNone;
}

// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
bool IsJsonNumber(absl::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && absl::ascii_isdigit(s[i])) ++i;
    return i - start;
  };
  size_t int_digits = digits();
  if (int_digits == 0 || (int_digits > 1 && s[0] == '0')) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// The string template `t` for one cell: grid values spliced, parent references kept.
absl::StatusOr<json> InstantiateString(const Template& t, const Cell& cell,
                                       absl::string_view job_key,
                                       const std::set<std::string>& after, const Errors& errors,
                                       bool shell) {
  // A string that is exactly one grid placeholder keeps the value's type (not in a command).
  if (!shell && t.segments.size() == 1 && t.segments[0].kind == Segment::kGridRef) {
    PCSWEEP_ASSIGN_OR_RETURN(json value, GridValue(t.segments[0], cell, t, job_key, errors));
    if (!value.is_string()) return value;
  }
  std::string out;
  size_t parent_refs = 0;
  for (const Segment& segment : t.segments) {
    switch (segment.kind) {
      case Segment::kText:
        out += segment.text;
        break;
      case Segment::kParentRef:
        out += segment.Placeholder();
        ++parent_refs;
        break;
      case Segment::kGridRef: {
        PCSWEEP_ASSIGN_OR_RETURN(json value, GridValue(segment, cell, t, job_key, errors));
        const std::string text = CanonicalText(value);
        // A grid value may itself name a parent's output: `layers: [early, "{select.range}"]`.
        if (value.is_string()) parent_refs += CountParentRefs(text, after);
        out += shell ? QuoteExceptParentRefs(text, after) : text;
        break;
      }
    }
  }
  // Escaped braces or spliced values must not turn into parent references later.
  if (CountParentRefs(out, after) != parent_refs) {
    return errors.At(t.mark, absl::StrCat(Describe(t.where), ": for job ", job_key, ", \"", out,
                                          "\" contains literal text that reads as a reference "
                                          "to an after stage"));
  }
  return json(std::move(out));
}

}  // namespace

absl::StatusOr<Template> CompileTemplate(const YAML::Node& node, absl::string_view where,
                                         const StageContext& context, const Errors& errors,
                                         int depth) {
  PCSWEEP_RETURN_IF_ERROR(errors.Visit(node, Describe(where), depth));
  Template t;
  t.mark = node.Mark();
  t.where = std::string(where);
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      t.kind = Template::kObject;
      PCSWEEP_ASSIGN_OR_RETURN(std::vector<MapEntry> entries,
                               ReadMap(node, errors, where, nullptr));
      for (const MapEntry& entry : entries) {
        PCSWEEP_ASSIGN_OR_RETURN(
            Template child,
            CompileTemplate(entry.value, Child(where, entry.key), context, errors, depth + 1));
        t.object.emplace_back(entry.key, std::move(child));
      }
      return t;
    }
    case YAML::NodeType::Sequence:
      t.kind = Template::kArray;
      for (size_t i = 0; i < node.size(); ++i) {
        PCSWEEP_ASSIGN_OR_RETURN(
            Template child, CompileTemplate(node[i], Index(where, i), context, errors, depth + 1));
        t.array.push_back(std::move(child));
      }
      return t;
    default: {
      PCSWEEP_ASSIGN_OR_RETURN(t.value, NodeToJson(node, errors, where, depth));
      if (t.value.is_string()) {
        t.kind = Template::kString;
        PCSWEEP_ASSIGN_OR_RETURN(t.segments, SplitString(t.value.get<std::string>(), t.mark,
                                                         Describe(where), context, errors));
      }
      return t;
    }
  }
}

void CollectParentRefs(const Template& t,
                       std::map<std::string, std::pair<YAML::Mark, std::string>>* refs) {
  for (const Segment& segment : t.segments) {
    if (segment.kind == Segment::kParentRef && !refs->count(segment.text)) {
      (*refs)[segment.text] = {t.mark,
                               absl::StrCat(Describe(t.where), ": ", segment.Placeholder())};
    }
  }
  for (const auto& [key, child] : t.object) CollectParentRefs(child, refs);
  for (const Template& child : t.array) CollectParentRefs(child, refs);
}

size_t CountParentRefs(absl::string_view s, const std::set<std::string>& stages) {
  size_t count = 0;
  std::string name, field;
  for (size_t i = 0; i < s.size();) {
    size_t length = MatchPlaceholder(s, i, &name, &field);
    if (length > 0 && !field.empty() && stages.count(name)) {
      ++count;
      i += length;
    } else {
      ++i;
    }
  }
  return count;
}

absl::StatusOr<json> Instantiate(const Template& t, const Cell& cell, absl::string_view job_key,
                                 const std::set<std::string>& after, const Errors& errors,
                                 Quoting quoting) {
  switch (t.kind) {
    case Template::kValue:
      return t.value;
    case Template::kObject: {
      json object = json::object();
      for (const auto& [key, child] : t.object) {
        PCSWEEP_ASSIGN_OR_RETURN(object[key], Instantiate(child, cell, job_key, after, errors,
                                                          ChildQuoting(quoting, key)));
      }
      return object;
    }
    case Template::kArray: {
      json array = json::array();
      for (const Template& child : t.array) {
        PCSWEEP_ASSIGN_OR_RETURN(json item,
                                 Instantiate(child, cell, job_key, after, errors, quoting));
        array.push_back(std::move(item));
      }
      return array;
    }
    case Template::kString:
      break;
  }
  return InstantiateString(t, cell, job_key, after, errors, quoting == Quoting::kShell);
}

absl::StatusOr<json> ResolveParentRefs(
    const json& value, const std::map<std::string, std::map<std::string, std::string>>& outputs,
    Quoting quoting) {
  if (value.is_object()) {
    json object = json::object();
    for (const auto& [key, child] : value.items()) {
      PCSWEEP_ASSIGN_OR_RETURN(object[key],
                               ResolveParentRefs(child, outputs, ChildQuoting(quoting, key)));
    }
    return object;
  }
  if (value.is_array()) {
    json array = json::array();
    for (const json& child : value) {
      PCSWEEP_ASSIGN_OR_RETURN(json item, ResolveParentRefs(child, outputs, quoting));
      array.push_back(std::move(item));
    }
    return array;
  }
  if (!value.is_string()) return value;
  const std::string& s = value.get_ref<const std::string&>();
  std::string out;
  size_t refs = 0;
  std::string name, field;
  for (size_t i = 0; i < s.size();) {
    size_t length = MatchPlaceholder(s, i, &name, &field);
    auto stage = outputs.end();
    if (length > 0 && !field.empty()) stage = outputs.find(name);
    if (stage == outputs.end()) {
      out += s[i++];
      continue;
    }
    auto output = stage->second.find(field);
    if (output == stage->second.end()) {
      std::vector<std::string> available;
      for (const auto& [key, unused] : stage->second) available.push_back(key);
      return absl::FailedPreconditionError(absl::StrCat(
          "parent output {", name, ".", field, "} is missing (stage '", name,
          "' reported: ", available.empty() ? "nothing" : absl::StrJoin(available, ", "), ")"));
    }
    ++refs;
    const bool shell = quoting == Quoting::kShell;
    if (!shell && length == s.size() && IsJsonNumber(output->second)) {
      return json::parse(output->second);
    }
    out += shell ? ShellQuote(output->second) : output->second;
    i += length;
  }
  if (refs == 0) return value;
  return json(std::move(out));
}

}  // namespace pcsweep::spec_internal
