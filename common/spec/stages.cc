#include "common/spec/stages.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/jobfile/job_kinds.h"
#include "common/status/status_macros.h"

namespace pcsweep::spec_internal {
namespace {

using nlohmann::json;

const std::vector<std::string> kSingleStageKeys = {"name",    "job",     "grid",
                                                   "include", "exclude", "max_attempts"};
const std::vector<std::string> kMultiStageKeys = {"name", "stages", "max_attempts"};
const std::vector<std::string> kStageKeys = {"name",    "job",   "grid",        "include",
                                             "exclude", "after", "max_attempts"};
const std::vector<std::string> kCommandJobKeys = {"kind", "command"};

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

// The `job` entry's kind, checked against the known kinds; for a command job, its keys and
// its `command`. `job_entries` is the job map read as it is.
absl::Status ReadJobKind(const MapEntry& job, const std::vector<MapEntry>& job_entries,
                         absl::string_view job_where, Stage* stage, const Errors& errors) {
  const MapEntry* kind = Find(job_entries, "kind");
  const std::string known_kinds = jobfile::KnownJobKindsText();
  if (kind == nullptr) {
    return errors.At(job.value,
                     absl::StrCat(job_where, ": missing key 'kind' (one of ", known_kinds, ")"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(stage->kind,
                           ReadString(kind->value, errors, Child(job_where, "kind"), kind->mark));
  if (!jobfile::IsKnownJobKind(stage->kind)) {
    return errors.At(kind->value, absl::StrCat(job_where, ".kind: unknown job kind '", stage->kind,
                                               "' (known: ", known_kinds, ")"));
  }
  if (stage->kind != jobfile::kCommandKind) return absl::OkStatus();
  PCSWEEP_RETURN_IF_ERROR(ReadMap(job.value, errors, job_where, &kCommandJobKeys).status());
  const MapEntry* command = Find(job_entries, "command");
  if (command == nullptr) {
    return errors.At(job.value, absl::StrCat(job_where, ": missing key 'command'"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(json text,
                           NodeToJson(command->value, errors, Child(job_where, "command")));
  if (!text.is_string() || text.get<std::string>().empty()) {
    return errors.At(command->mark, absl::StrCat(job_where, ".command must be a non-empty string"));
  }
  return absl::OkStatus();
}

// The stage's `job`: its kind, and its other keys compiled as templates. Runs after the grid
// is expanded (placeholders may name its keys).
absl::Status ReadJob(const YAML::Node& node, const StageContext& names, Stage* stage,
                     const Errors& errors) {
  const MapEntry* job = Find(stage->entries, "job");
  const std::string job_where = Child(stage->where, "job");
  if (job == nullptr) {
    return errors.At(node, absl::StrCat(Describe(stage->where), ": missing key 'job'"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<MapEntry> job_entries,
                           ReadMap(job->value, errors, job_where, nullptr, job->mark));
  PCSWEEP_RETURN_IF_ERROR(ReadJobKind(*job, job_entries, job_where, stage, errors));

  StageContext context = names;
  context.grid_keys.insert(stage->grid.keys.begin(), stage->grid.keys.end());
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
  PCSWEEP_ASSIGN_OR_RETURN(stage->grid,
                           ExpandGrid(stage->entries, stage->where, stage->after, errors));
  return ReadJob(node, names, stage, errors);
}

// The `stages` list's names (each stage's map is read in full later: placeholders may name
// any stage), into `sweep`; `nodes` gets each stage's map.
absl::Status ReadStageNames(const MapEntry& stages_entry, const Errors& errors, SweepStages* sweep,
                            std::vector<YAML::Node>* nodes) {
  const YAML::Node list = stages_entry.value;
  if (!list.IsSequence()) return errors.At(stages_entry.mark, "stages must be a list of stages");
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
    PCSWEEP_ASSIGN_OR_RETURN(stage.name, ReadString(name_entry->value, errors,
                                                    Child(stage.where, "name"), name_entry->mark));
    if (!IsIdentifier(stage.name)) {
      return errors.At(name_entry->mark,
                       absl::StrCat(stage.where, ".name '", stage.name,
                                    "' must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"));
    }
    if (sweep->by_name.count(stage.name)) {
      return errors.At(name_entry->mark,
                       absl::StrCat(stage.where, ": duplicate stage name '", stage.name, "' (also ",
                                    sweep->stages[sweep->by_name[stage.name]].where, ")"));
    }
    sweep->by_name[stage.name] = sweep->stages.size();
    sweep->stages.push_back(std::move(stage));
    nodes->push_back(node);
  }
  return absl::OkStatus();
}

// Reads each stage of `sweep` from its map in `nodes` and checks that its after list names
// stages of the sweep.
absl::Status ReadStageBodies(const std::vector<YAML::Node>& nodes, bool multi_stage,
                             const Errors& errors, SweepStages* sweep) {
  StageContext names;
  for (const Stage& stage : sweep->stages) names.all_stages.insert(stage.name);
  for (size_t s = 0; s < sweep->stages.size(); ++s) {
    Stage& stage = sweep->stages[s];
    stage.max_attempts = sweep->max_attempts;
    PCSWEEP_RETURN_IF_ERROR(
        ReadStage(nodes[s], multi_stage ? kStageKeys : kSingleStageKeys, names, &stage, errors));
    for (size_t i = 0; i < stage.after.size(); ++i) {
      if (!sweep->by_name.count(stage.after[i])) {
        return errors.At(
            stage.after_marks[i],
            absl::StrCat(Child(stage.where, "after"), ": unknown stage '", stage.after[i],
                         "' (stages: ", absl::StrJoin(names.all_stages, ", "), ")"));
      }
    }
  }
  return absl::OkStatus();
}

// The first cycle of the stage DAG (`parents[s]`: the stages s waits for), searched depth
// first in file order so the message is stable; nullopt when there is none.
std::optional<absl::Status> FindCycle(const SweepStages& sweep,
                                      const std::vector<std::vector<size_t>>& parents,
                                      const Errors& errors) {
  const std::vector<Stage>& stages = sweep.stages;
  const size_t n = stages.size();
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
      if (auto status = visit(s)) return status;
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<SweepStages> ReadStages(const YAML::Node& root, const Errors& errors) {
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

  SweepStages sweep;
  const MapEntry* name = Find(top, "name");
  if (name == nullptr) return errors.At(root, "the spec: missing key 'name'");
  PCSWEEP_ASSIGN_OR_RETURN(sweep.name, ReadString(name->value, errors, "name", name->mark));
  if (!IsSweepName(sweep.name)) {
    return errors.At(name->value, absl::StrCat("name '", sweep.name,
                                               "' must use only letters, digits, _ - and ."));
  }
  if (const MapEntry* max_attempts = Find(top, "max_attempts")) {
    PCSWEEP_ASSIGN_OR_RETURN(sweep.max_attempts,
                             ReadMaxAttempts(*max_attempts, errors, "max_attempts"));
  }

  // Stage nodes and names first: placeholders may name any stage.
  std::vector<YAML::Node> nodes;
  if (!multi_stage) {
    Stage stage;
    stage.name = sweep.name;
    sweep.stages.push_back(std::move(stage));
    nodes.push_back(root);
  } else {
    PCSWEEP_RETURN_IF_ERROR(ReadStageNames(*Find(top, "stages"), errors, &sweep, &nodes));
  }
  sweep.by_name[sweep.stages[0].name] = 0;
  PCSWEEP_RETURN_IF_ERROR(ReadStageBodies(nodes, multi_stage, errors, &sweep));
  return sweep;
}

absl::StatusOr<std::vector<size_t>> OrderStages(const SweepStages& sweep, const Errors& errors) {
  const size_t n = sweep.stages.size();
  std::vector<std::vector<size_t>> parents(n);
  for (size_t s = 0; s < n; ++s) {
    for (const std::string& name : sweep.stages[s].after) {
      parents[s].push_back(sweep.by_name.at(name));
    }
  }
  if (std::optional<absl::Status> cycle = FindCycle(sweep, parents, errors)) return *cycle;
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

}  // namespace pcsweep::spec_internal
