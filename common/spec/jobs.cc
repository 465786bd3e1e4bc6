#include "common/spec/jobs.h"

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/jobfile/job_kinds.h"
#include "common/spec/spec_limits.h"
#include "common/spec/template.h"
#include "common/status/status_macros.h"

namespace pcsweep {
namespace spec_internal {
namespace {

using nlohmann::json;

// Per parent stage: where the stage's first reference to it is (see CollectParentRefs).
using ParentRefs = std::map<std::string, std::pair<YAML::Mark, std::string>>;

std::string JobKey(const std::string& stage, const std::map<std::string, std::string>& params) {
  if (params.empty()) return stage;
  std::vector<std::string> parts;
  for (const auto& [key, value] : params) parts.push_back(absl::StrCat(key, "=", value));
  return absl::StrCat(stage, "[", absl::StrJoin(parts, ","), "]");
}

std::string SharedText(const std::vector<std::string>& shared) {
  return shared.empty() ? "none" : absl::StrJoin(shared, ", ");
}

// A grid value of `cell` that splices in a reference to `parent` is ambiguous when the job
// matches several jobs of `parent` (`matches`).
absl::Status CheckGridValueRefs(const Stage& stage, const Cell& cell, const std::string& job_key,
                                const std::string& parent, size_t matches,
                                const std::vector<std::string>& shared, const Errors& errors) {
  for (const auto& [key, value] : cell) {
    if (!value.is_string() || CountParentRefs(value.get<std::string>(), {parent}) == 0) {
      continue;
    }
    return errors.At(
        stage.mark,
        absl::StrCat(Describe(stage.where), ": grid value ", value.get<std::string>(), " of '", key,
                     "' is ambiguous for job ", job_key, ": it matches ", matches,
                     " jobs of stage '", parent, "' (shared grid keys: ", SharedText(shared), ")"));
  }
  return absl::OkStatus();
}

// Builds the jobs stage by stage; parents' jobs are built before their children's.
class JobBuilder {
 public:
  JobBuilder(const SweepStages& sweep, const Errors& errors)
      : sweep_(sweep), errors_(errors), job_indices_(sweep.stages.size()) {}

  // Appends the jobs of stage `s`, whose after stages were added before.
  absl::Status AddStage(size_t s);

  std::vector<JobDefinition> TakeJobs() { return std::move(jobs_); }

 private:
  // An after stage of the stage being added: the grid keys it shares with it, and its jobs by
  // their values of those keys.
  struct ParentIndex {
    const Stage* stage;
    std::vector<std::string> shared;
    std::map<std::vector<std::string>, std::vector<size_t>> jobs_by_shared_values;
  };

  std::vector<ParentIndex> IndexParents(const Stage& stage) const;
  // The job of `cell` without its dependencies and hash; `typed_params` gets its grid values.
  absl::StatusOr<JobDefinition> MakeJob(const Stage& stage, const Cell& cell,
                                        const std::set<std::string>& after, json* typed_params);
  // Adds the jobs of after stage `a` (`parent`) that `job` waits for.
  absl::Status LinkParent(const Stage& stage, size_t a, const ParentIndex& parent, const Cell& cell,
                          const ParentRefs& refs, JobDefinition* job,
                          std::vector<std::string>* parent_hashes);

  const SweepStages& sweep_;
  const Errors& errors_;
  std::vector<JobDefinition> jobs_;
  std::vector<std::vector<size_t>> job_indices_;  // per stage, into jobs_
  std::set<std::string> keys_;
  size_t edges_ = 0;
};

std::vector<JobBuilder::ParentIndex> JobBuilder::IndexParents(const Stage& stage) const {
  std::vector<ParentIndex> parents;
  for (const std::string& name : stage.after) {
    const size_t p = sweep_.by_name.at(name);
    ParentIndex index{&sweep_.stages[p], {}, {}};
    for (const std::string& key : stage.grid.keys) {
      const std::vector<std::string>& keys_of_parent = index.stage->grid.keys;
      if (std::find(keys_of_parent.begin(), keys_of_parent.end(), key) != keys_of_parent.end()) {
        index.shared.push_back(key);
      }
    }
    for (size_t j : job_indices_[p]) {
      std::vector<std::string> values;
      for (const std::string& key : index.shared) values.push_back(jobs_[j].params.at(key));
      index.jobs_by_shared_values[values].push_back(j);
    }
    parents.push_back(std::move(index));
  }
  return parents;
}

absl::StatusOr<JobDefinition> JobBuilder::MakeJob(const Stage& stage, const Cell& cell,
                                                  const std::set<std::string>& after,
                                                  json* typed_params) {
  JobDefinition job;
  job.stage = stage.name;
  job.kind = stage.kind;
  job.max_attempts = stage.max_attempts;
  for (const auto& [key, value] : cell) {
    job.params[key] = CanonicalText(value);
    (*typed_params)[key] = value;
  }
  job.key = JobKey(stage.name, job.params);
  if (!keys_.insert(job.key).second) {
    return errors_.At(stage.mark, absl::StrCat(Describe(stage.where), ": duplicate cell ", job.key,
                                               " (see grid and include)"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(
      job.config,
      Instantiate(stage.config, cell, job.key, after, errors_,
                  stage.kind == jobfile::kCommandKind ? Quoting::kCommandJob : Quoting::kNone));
  return job;
}

absl::Status JobBuilder::LinkParent(const Stage& stage, size_t a, const ParentIndex& parent_index,
                                    const Cell& cell, const ParentRefs& refs, JobDefinition* job,
                                    std::vector<std::string>* parent_hashes) {
  const Stage& parent = *parent_index.stage;
  const std::vector<std::string>& shared = parent_index.shared;
  std::vector<std::string> values;
  for (const std::string& key : shared) values.push_back(job->params.at(key));
  auto found = parent_index.jobs_by_shared_values.find(values);
  const size_t matches =
      found == parent_index.jobs_by_shared_values.end() ? 0 : found->second.size();
  edges_ += matches;
  if (edges_ > kMaxDependencyEdges) {
    return errors_.At(stage.after_marks[a],
                      absl::StrCat("the sweep has more than ", kMaxDependencyEdges,
                                   " dependency edges (stage '", stage.name, "' after '",
                                   parent.name, "' shares grid keys: ", SharedText(shared),
                                   "); share grid keys between the stages or split it"));
  }
  for (size_t i = 0; i < matches; ++i) {
    job->depends_on.push_back(jobs_[found->second[i]].key);
    parent_hashes->push_back(jobs_[found->second[i]].config_hash);
  }
  if (matches == 0) {
    return errors_.At(stage.after_marks[a],
                      absl::StrCat("job ", job->key, " has no job of stage '", parent.name,
                                   "' to wait for (shared grid keys: ", SharedText(shared), ")"));
  }
  auto ref = refs.find(parent.name);
  if (ref != refs.end() && matches > 1) {
    return errors_.At(ref->second.first,
                      absl::StrCat(ref->second.second, " is ambiguous for job ", job->key,
                                   ": it matches ", matches, " jobs of stage '", parent.name,
                                   "' (shared grid keys: ", SharedText(shared), ")"));
  }
  if (matches <= 1) return absl::OkStatus();
  return CheckGridValueRefs(stage, cell, job->key, parent.name, matches, shared, errors_);
}

absl::Status JobBuilder::AddStage(size_t s) {
  const Stage& stage = sweep_.stages[s];
  ParentRefs refs;
  CollectParentRefs(stage.config, &refs);
  const std::set<std::string> after(stage.after.begin(), stage.after.end());
  const std::vector<ParentIndex> parents = IndexParents(stage);
  for (size_t c = 0; c < stage.grid.cells.size(); ++c) {
    if (c % 256 == 0) PCSWEEP_RETURN_IF_ERROR(errors_.CheckDeadline(stage.where));
    const Cell& cell = stage.grid.cells[c];
    json typed_params = json::object();
    PCSWEEP_ASSIGN_OR_RETURN(JobDefinition job, MakeJob(stage, cell, after, &typed_params));
    std::vector<std::string> parent_hashes;
    for (size_t a = 0; a < parents.size(); ++a) {
      PCSWEEP_RETURN_IF_ERROR(LinkParent(stage, a, parents[a], cell, refs, &job, &parent_hashes));
    }
    std::sort(parent_hashes.begin(), parent_hashes.end());
    json canonical = {{"kind", job.kind},
                      {"config", job.config},
                      {"params", typed_params},
                      {"parents", parent_hashes}};
    job.config_hash = Sha256Hex(canonical.dump());
    job_indices_[s].push_back(jobs_.size());
    jobs_.push_back(std::move(job));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<JobDefinition>> BuildJobs(const SweepStages& sweep,
                                                     const std::vector<size_t>& order,
                                                     const Errors& errors) {
  JobBuilder builder(sweep, errors);
  for (size_t s : order) PCSWEEP_RETURN_IF_ERROR(builder.AddStage(s));
  return builder.TakeJobs();
}

}  // namespace spec_internal

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
