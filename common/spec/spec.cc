#include "common/spec/spec.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/jobfile/job_kinds.h"
#include "common/spec/grid.h"
#include "common/spec/shell_quote.h"
#include "common/spec/spec_limits.h"
#include "common/spec/yaml_document.h"
#include "common/spec/yaml_scalar.h"
#include "common/status/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace pcsweep {
namespace {

using nlohmann::json;
using spec_internal::CanonicalText;
using spec_internal::Cell;
using spec_internal::Child;
using spec_internal::Describe;
using spec_internal::Errors;
using spec_internal::Find;
using spec_internal::Index;
using spec_internal::IsIdentifier;
using spec_internal::IsSweepName;
using spec_internal::kMaxDependencyEdges;
using spec_internal::kMaxJobs;
using spec_internal::kMaxSpecBytes;
using spec_internal::MapEntry;
using spec_internal::NodeToJson;
using spec_internal::ReadMap;
using spec_internal::ReadMaxAttempts;
using spec_internal::ReadString;

constexpr int kDefaultMaxAttempts = 3;
const std::vector<std::string> kSingleStageKeys = {"name",    "job",     "grid",
                                                   "include", "exclude", "max_attempts"};
const std::vector<std::string> kMultiStageKeys = {"name", "stages", "max_attempts"};
const std::vector<std::string> kStageKeys = {"name",    "job",   "grid",        "include",
                                             "exclude", "after", "max_attempts"};
const std::vector<std::string> kCommandJobKeys = {"kind", "command"};

// ---------------------------------------------------------------------------------------------
// Job templates: the `job` map with each string split into text and placeholders once per
// stage, then instantiated per cell.

struct Segment {
  enum Kind { kText, kGridRef, kParentRef } kind = kText;
  std::string text;   // literal text; or the grid key / parent stage
  std::string field;  // after the dot, if any
  std::string Placeholder() const {
    return field.empty() ? absl::StrCat("{", text, "}") : absl::StrCat("{", text, ".", field, "}");
  }
};

struct Template {
  enum Kind { kValue, kString, kObject, kArray } kind = kValue;
  json value;  // kValue: a non-string scalar or null
  std::vector<Segment> segments;
  std::vector<std::pair<std::string, Template>> object;
  std::vector<Template> array;
  YAML::Mark mark;
  std::string where;
};

struct StageContext {
  std::set<std::string> grid_keys;
  std::set<std::string> after;
  std::set<std::string> all_stages;
};

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

absl::StatusOr<Template> CompileTemplate(const YAML::Node& node, absl::string_view where,
                                         const StageContext& context, const Errors& errors,
                                         int depth = 0) {
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

// The number of "{stage.field}" references to stages in `stages` that ResolveParentOutputs
// would see in `s`.
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

// How spliced values are written: as they are, or (inside the `command` of a command job)
// shell-quoted. kCommandJob marks the job map itself, whose `command` child is kShell.
enum class Quoting { kNone, kCommandJob, kShell };

Quoting ChildQuoting(Quoting parent, absl::string_view key) {
  if (parent == Quoting::kShell) return Quoting::kShell;
  return parent == Quoting::kCommandJob && key == "command" ? Quoting::kShell : Quoting::kNone;
}

absl::StatusOr<json> Instantiate(const Template& t, const Cell& cell, absl::string_view job_key,
                                 const std::set<std::string>& after, const Errors& errors,
                                 Quoting quoting = Quoting::kNone) {
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
  const bool shell = quoting == Quoting::kShell;
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

// ---------------------------------------------------------------------------------------------
// Stages.

struct Stage {
  std::string name;
  std::string where;  // "" (single-stage form) or "stages[i]"
  YAML::Mark mark;
  std::vector<MapEntry> entries;
  std::vector<std::string> after;
  std::vector<YAML::Mark> after_marks;
  int max_attempts = kDefaultMaxAttempts;
  std::string kind;
  Template config;
  std::vector<std::string> grid_keys;  // file order
  std::vector<Cell> cells;
  std::vector<size_t> job_indices;  // into SweepSpec::jobs
};

absl::Status ReadAfter(const MapEntry& entry, Stage* stage, const Errors& errors) {
  const std::string where = Child(stage->where, "after");
  std::vector<YAML::Node> items;
  if (entry.value.IsScalar()) {
    items.push_back(entry.value);
  } else if (entry.value.IsSequence()) {
    for (size_t i = 0; i < entry.value.size(); ++i) items.push_back(entry.value[i]);
  } else {
    return errors.At(entry.mark, absl::StrCat(where, " must be a list of stage names"));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    PCSWEEP_ASSIGN_OR_RETURN(std::string name, ReadString(items[i], errors, Index(where, i)));
    if (std::find(stage->after.begin(), stage->after.end(), name) != stage->after.end()) {
      return errors.At(items[i], absl::StrCat(where, ": stage '", name, "' is listed twice"));
    }
    stage->after.push_back(name);
    stage->after_marks.push_back(items[i].Mark());
  }
  return absl::OkStatus();
}

absl::Status ReadStage(const YAML::Node& node, const std::vector<std::string>& allowed,
                       const StageContext& names, Stage* stage, const Errors& errors) {
  stage->mark = node.Mark();
  PCSWEEP_ASSIGN_OR_RETURN(stage->entries, ReadMap(node, errors, stage->where, &allowed));
  if (const MapEntry* after = Find(stage->entries, "after")) {
    PCSWEEP_RETURN_IF_ERROR(ReadAfter(*after, stage, errors));
  }
  if (const MapEntry* max_attempts = Find(stage->entries, "max_attempts")) {
    PCSWEEP_ASSIGN_OR_RETURN(
        stage->max_attempts,
        ReadMaxAttempts(*max_attempts, errors, Child(stage->where, "max_attempts")));
  }
  PCSWEEP_ASSIGN_OR_RETURN(
      spec_internal::Grid grid,
      spec_internal::ExpandGrid(stage->entries, stage->where, stage->after, errors));
  stage->grid_keys = std::move(grid.keys);
  stage->cells = std::move(grid.cells);

  const MapEntry* job = Find(stage->entries, "job");
  const std::string job_where = Child(stage->where, "job");
  if (job == nullptr) {
    return errors.At(node, absl::StrCat(Describe(stage->where), ": missing key 'job'"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<MapEntry> job_entries,
                           ReadMap(job->value, errors, job_where, nullptr, job->mark));
  const MapEntry* kind = Find(job_entries, "kind");
  const std::string known_kinds = jobfile::KnownJobKindsText();
  if (kind == nullptr) {
    return errors.At(job->value,
                     absl::StrCat(job_where, ": missing key 'kind' (one of ", known_kinds, ")"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(stage->kind,
                           ReadString(kind->value, errors, Child(job_where, "kind"), kind->mark));
  if (!jobfile::IsKnownJobKind(stage->kind)) {
    return errors.At(kind->value, absl::StrCat(job_where, ".kind: unknown job kind '", stage->kind,
                                               "' (known: ", known_kinds, ")"));
  }
  if (stage->kind == jobfile::kCommandKind) {
    PCSWEEP_RETURN_IF_ERROR(ReadMap(job->value, errors, job_where, &kCommandJobKeys).status());
    const MapEntry* command = Find(job_entries, "command");
    if (command == nullptr) {
      return errors.At(job->value, absl::StrCat(job_where, ": missing key 'command'"));
    }
    PCSWEEP_ASSIGN_OR_RETURN(json text,
                             NodeToJson(command->value, errors, Child(job_where, "command")));
    if (!text.is_string() || text.get<std::string>().empty()) {
      return errors.At(command->mark,
                       absl::StrCat(job_where, ".command must be a non-empty string"));
    }
  }

  StageContext context = names;
  context.grid_keys.insert(stage->grid_keys.begin(), stage->grid_keys.end());
  context.after.insert(stage->after.begin(), stage->after.end());
  stage->config.kind = Template::kObject;
  stage->config.mark = job->value.Mark();
  stage->config.where = job_where;
  for (const MapEntry& entry : job_entries) {
    if (entry.key == "kind") continue;
    PCSWEEP_ASSIGN_OR_RETURN(
        Template child, CompileTemplate(entry.value, Child(job_where, entry.key), context, errors));
    stage->config.object.emplace_back(entry.key, std::move(child));
  }
  return absl::OkStatus();
}

// Orders stages so that each comes after the stages it waits for, keeping file order where
// free; names the first cycle found.
absl::StatusOr<std::vector<size_t>> OrderStages(const std::vector<Stage>& stages,
                                                const std::map<std::string, size_t>& by_name,
                                                const Errors& errors) {
  const size_t n = stages.size();
  std::vector<std::vector<size_t>> parents(n);
  for (size_t s = 0; s < n; ++s) {
    for (const std::string& name : stages[s].after) parents[s].push_back(by_name.at(name));
  }
  // Depth-first search for a cycle, in file order so the message is stable.
  enum Color { kWhite, kGrey, kBlack };
  std::vector<Color> color(n, kWhite);
  std::vector<size_t> path;
  std::function<std::optional<absl::Status>(size_t)> visit =
      [&](size_t s) -> std::optional<absl::Status> {
    color[s] = kGrey;
    path.push_back(s);
    for (size_t i = 0; i < parents[s].size(); ++i) {
      size_t p = parents[s][i];
      if (color[p] == kGrey) {
        std::vector<std::string> cycle;
        auto start = std::find(path.begin(), path.end(), p);
        for (auto it = start; it != path.end(); ++it) cycle.push_back(stages[*it].name);
        cycle.push_back(stages[p].name);
        return errors.At(stages[s].after_marks[i],
                         absl::StrCat("dependency cycle: ", absl::StrJoin(cycle, " after ")));
      }
      if (color[p] == kWhite) {
        if (auto status = visit(p)) return status;
      }
    }
    path.pop_back();
    color[s] = kBlack;
    return std::nullopt;
  };
  for (size_t s = 0; s < n; ++s) {
    if (color[s] == kWhite) {
      if (auto status = visit(s)) return *status;
    }
  }
  std::vector<size_t> order;
  std::vector<bool> placed(n, false);
  while (order.size() < n) {
    for (size_t s = 0; s < n; ++s) {
      if (placed[s]) continue;
      if (std::all_of(parents[s].begin(), parents[s].end(), [&](size_t p) { return placed[p]; })) {
        placed[s] = true;
        order.push_back(s);
        break;
      }
    }
  }
  return order;
}

std::string JobKey(const std::string& stage, const std::map<std::string, std::string>& params) {
  if (params.empty()) return stage;
  std::vector<std::string> parts;
  for (const auto& [key, value] : params) parts.push_back(absl::StrCat(key, "=", value));
  return absl::StrCat(stage, "[", absl::StrJoin(parts, ","), "]");
}

absl::StatusOr<SweepSpec> ParseYaml(const YAML::Node& root, const Errors& errors) {
  if (!root.IsMap()) {
    return errors.At(root.Mark().is_null() ? YAML::Mark() : root.Mark(),
                     "the spec must be a map with name, job and grid (or stages)");
  }
  bool multi_stage = false;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "stages") multi_stage = true;
  }
  PCSWEEP_ASSIGN_OR_RETURN(
      std::vector<MapEntry> top,
      ReadMap(root, errors, "", multi_stage ? &kMultiStageKeys : &kSingleStageKeys));

  SweepSpec spec;
  const MapEntry* name = Find(top, "name");
  if (name == nullptr) return errors.At(root, "the spec: missing key 'name'");
  PCSWEEP_ASSIGN_OR_RETURN(spec.name, ReadString(name->value, errors, "name", name->mark));
  if (!IsSweepName(spec.name)) {
    return errors.At(name->value, absl::StrCat("name '", spec.name,
                                               "' must use only letters, digits, _ - and ."));
  }
  if (const MapEntry* max_attempts = Find(top, "max_attempts")) {
    PCSWEEP_ASSIGN_OR_RETURN(spec.max_attempts,
                             ReadMaxAttempts(*max_attempts, errors, "max_attempts"));
  }

  // Stage nodes and names first: placeholders may name any stage.
  std::vector<Stage> stages;
  std::vector<YAML::Node> stage_nodes;
  std::map<std::string, size_t> by_name;
  if (!multi_stage) {
    Stage stage;
    stage.name = spec.name;
    stages.push_back(std::move(stage));
    stage_nodes.push_back(root);
  } else {
    const MapEntry* stages_entry = Find(top, "stages");
    const YAML::Node list = stages_entry->value;
    if (!list.IsSequence()) return errors.At(stages_entry->mark, "stages must be a list of stages");
    if (list.size() == 0) return errors.At(list, "stages is empty");
    for (size_t i = 0; i < list.size(); ++i) {
      Stage stage;
      stage.where = Index("stages", i);
      const YAML::Node node = list[i];
      if (!node.IsMap()) return errors.At(node, absl::StrCat(stage.where, " must be a map"));
      PCSWEEP_ASSIGN_OR_RETURN(std::vector<MapEntry> entries,
                               ReadMap(node, errors, stage.where, &kStageKeys));
      const MapEntry* name_entry = Find(entries, "name");
      if (name_entry == nullptr) {
        return errors.At(node, absl::StrCat(stage.where, ": missing key 'name'"));
      }
      PCSWEEP_ASSIGN_OR_RETURN(
          stage.name,
          ReadString(name_entry->value, errors, Child(stage.where, "name"), name_entry->mark));
      if (!IsIdentifier(stage.name)) {
        return errors.At(name_entry->mark,
                         absl::StrCat(stage.where, ".name '", stage.name,
                                      "' must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"));
      }
      if (by_name.count(stage.name)) {
        return errors.At(name_entry->mark,
                         absl::StrCat(stage.where, ": duplicate stage name '", stage.name,
                                      "' (also ", stages[by_name[stage.name]].where, ")"));
      }
      by_name[stage.name] = stages.size();
      stages.push_back(std::move(stage));
      stage_nodes.push_back(node);
    }
  }
  by_name[stages[0].name] = 0;

  StageContext names;
  for (const Stage& stage : stages) names.all_stages.insert(stage.name);
  for (size_t s = 0; s < stages.size(); ++s) {
    stages[s].max_attempts = spec.max_attempts;
    PCSWEEP_RETURN_IF_ERROR(ReadStage(stage_nodes[s], multi_stage ? kStageKeys : kSingleStageKeys,
                                      names, &stages[s], errors));
    for (size_t i = 0; i < stages[s].after.size(); ++i) {
      if (!by_name.count(stages[s].after[i])) {
        return errors.At(
            stages[s].after_marks[i],
            absl::StrCat(Child(stages[s].where, "after"), ": unknown stage '", stages[s].after[i],
                         "' (stages: ", absl::StrJoin(names.all_stages, ", "), ")"));
      }
    }
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<size_t> order, OrderStages(stages, by_name, errors));

  size_t total_jobs = 0;
  for (const Stage& stage : stages) total_jobs += stage.cells.size();
  if (total_jobs > kMaxJobs) {
    return errors.At(root, absl::StrCat("the sweep has ", total_jobs, " jobs, more than ", kMaxJobs,
                                        "; split it"));
  }

  std::set<std::string> keys;
  size_t edges = 0;
  for (size_t s : order) {
    Stage& stage = stages[s];
    std::map<std::string, std::pair<YAML::Mark, std::string>> parent_refs;
    CollectParentRefs(stage.config, &parent_refs);
    const std::set<std::string> after(stage.after.begin(), stage.after.end());
    // For each after stage: the grid keys shared with it, and its jobs by their values.
    struct ParentIndex {
      const Stage* stage;
      std::vector<std::string> shared;
      std::map<std::vector<std::string>, std::vector<size_t>> jobs_by_shared_values;
    };
    std::vector<ParentIndex> parents;
    for (const std::string& name : stage.after) {
      ParentIndex index{&stages[by_name.at(name)], {}, {}};
      for (const std::string& key : stage.grid_keys) {
        const std::vector<std::string>& keys_of_parent = index.stage->grid_keys;
        if (std::find(keys_of_parent.begin(), keys_of_parent.end(), key) != keys_of_parent.end()) {
          index.shared.push_back(key);
        }
      }
      for (size_t j : index.stage->job_indices) {
        std::vector<std::string> values;
        for (const std::string& key : index.shared) values.push_back(spec.jobs[j].params.at(key));
        index.jobs_by_shared_values[values].push_back(j);
      }
      parents.push_back(std::move(index));
    }
    for (size_t c = 0; c < stage.cells.size(); ++c) {
      if (c % 256 == 0) PCSWEEP_RETURN_IF_ERROR(errors.CheckDeadline(stage.where));
      const Cell& cell = stage.cells[c];
      JobDefinition job;
      job.stage = stage.name;
      job.kind = stage.kind;
      job.max_attempts = stage.max_attempts;
      json typed_params = json::object();
      for (const auto& [key, value] : cell) {
        job.params[key] = CanonicalText(value);
        typed_params[key] = value;
      }
      job.key = JobKey(stage.name, job.params);
      if (!keys.insert(job.key).second) {
        return errors.At(stage.mark, absl::StrCat(Describe(stage.where), ": duplicate cell ",
                                                  job.key, " (see grid and include)"));
      }
      PCSWEEP_ASSIGN_OR_RETURN(
          job.config,
          Instantiate(stage.config, cell, job.key, after, errors,
                      stage.kind == jobfile::kCommandKind ? Quoting::kCommandJob : Quoting::kNone));

      std::vector<std::string> parent_hashes;
      for (size_t a = 0; a < parents.size(); ++a) {
        const Stage& parent = *parents[a].stage;
        const std::vector<std::string>& shared = parents[a].shared;
        std::vector<std::string> values;
        for (const std::string& key : shared) values.push_back(job.params.at(key));
        auto found = parents[a].jobs_by_shared_values.find(values);
        const size_t matches =
            found == parents[a].jobs_by_shared_values.end() ? 0 : found->second.size();
        edges += matches;
        if (edges > kMaxDependencyEdges) {
          return errors.At(stage.after_marks[a],
                           absl::StrCat("the sweep has more than ", kMaxDependencyEdges,
                                        " dependency edges (stage '", stage.name, "' after '",
                                        parent.name, "' shares grid keys: ",
                                        shared.empty() ? "none" : absl::StrJoin(shared, ", "),
                                        "); share grid keys between the stages or split it"));
        }
        for (size_t i = 0; i < matches; ++i) {
          job.depends_on.push_back(spec.jobs[found->second[i]].key);
          parent_hashes.push_back(spec.jobs[found->second[i]].config_hash);
        }
        const std::string shared_text = shared.empty() ? "none" : absl::StrJoin(shared, ", ");
        if (matches == 0) {
          return errors.At(stage.after_marks[a],
                           absl::StrCat("job ", job.key, " has no job of stage '", parent.name,
                                        "' to wait for (shared grid keys: ", shared_text, ")"));
        }
        auto ref = parent_refs.find(parent.name);
        if (ref != parent_refs.end() && matches > 1) {
          return errors.At(ref->second.first,
                           absl::StrCat(ref->second.second, " is ambiguous for job ", job.key,
                                        ": it matches ", matches, " jobs of stage '", parent.name,
                                        "' (shared grid keys: ", shared_text, ")"));
        }
        if (matches > 1) {
          for (const auto& [key, value] : cell) {
            if (!value.is_string() ||
                CountParentRefs(value.get<std::string>(), {parent.name}) == 0) {
              continue;
            }
            return errors.At(
                stage.mark,
                absl::StrCat(Describe(stage.where), ": grid value ", value.get<std::string>(),
                             " of '", key, "' is ambiguous for job ", job.key, ": it matches ",
                             matches, " jobs of stage '", parent.name,
                             "' (shared grid keys: ", shared_text, ")"));
          }
        }
      }
      std::sort(parent_hashes.begin(), parent_hashes.end());
      json canonical = {{"kind", job.kind},
                        {"config", job.config},
                        {"params", typed_params},
                        {"parents", parent_hashes}};
      job.config_hash = Sha256Hex(canonical.dump());
      stage.job_indices.push_back(spec.jobs.size());
      spec.jobs.push_back(std::move(job));
    }
  }
  return spec;
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

absl::StatusOr<json> Resolve(
    const json& value, const std::map<std::string, std::map<std::string, std::string>>& outputs,
    Quoting quoting) {
  if (value.is_object()) {
    json object = json::object();
    for (const auto& [key, child] : value.items()) {
      PCSWEEP_ASSIGN_OR_RETURN(object[key], Resolve(child, outputs, ChildQuoting(quoting, key)));
    }
    return object;
  }
  if (value.is_array()) {
    json array = json::array();
    for (const json& child : value) {
      PCSWEEP_ASSIGN_OR_RETURN(json item, Resolve(child, outputs, quoting));
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

}  // namespace

absl::StatusOr<SweepSpec> ParseSweepSpec(absl::string_view yaml, absl::string_view path,
                                         const std::function<bool()>& expired) {
  if (yaml.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the spec is ", yaml.size(),
                                                   " bytes, more than ", kMaxSpecBytes,
                                                   " (1 MiB); split the sweep"));
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
    return Resolve(config, outputs_by_stage, command_job ? Quoting::kCommandJob : Quoting::kNone);
  } catch (const json::exception& e) {
    return absl::InternalError(absl::StrCat("resolving parent outputs: ", e.what()));
  }
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

}  // namespace pcsweep
