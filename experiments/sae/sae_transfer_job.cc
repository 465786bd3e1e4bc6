// sae_transfer (sae_jobs.h): how well an SAE reconstructs the residual stream of prompt
// sets other than its training data: per-prompt R², FVU and L0, and per set the mean with its
// t interval and a one-sided one-sample t-test of R² > threshold.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"
#include "experiments/jobs/job_io.h"
#include "experiments/sae/prompt_runner.h"
#include "experiments/sae/sae.h"
#include "experiments/sae/sae_job_common.h"
#include "experiments/sae/sae_jobs.h"
#include "experiments/sae/sae_stats.h"

#ifndef PCSWEEP_SAE_PROMPTS_DIR
#define PCSWEEP_SAE_PROMPTS_DIR ""
#endif

namespace pcsweep::sae {
namespace {

namespace fs = std::filesystem;
using jobs::JobSettings;
using nlohmann::json;

struct PromptSet {
  std::string name;
  std::string path;
};

// A name without extension is one of the shipped sets: experiments/sae/prompts/<name>.txt
// under $PCSWEEP_SOURCE_ROOT or the source tree this binary was built from.
std::string ResolvePromptFile(const std::string& entry) {
  if (fs::exists(entry) || fs::path(entry).has_extension()) return entry;
  const std::string file = entry + ".txt";
  if (const char* root = std::getenv("PCSWEEP_SOURCE_ROOT"); root != nullptr) {
    const fs::path p = fs::path(root) / "experiments/sae/prompts" / file;
    if (fs::exists(p)) return p.string();
  }
  return (fs::path(PCSWEEP_SAE_PROMPTS_DIR) / file).string();
}

absl::StatusOr<std::vector<PromptSet>> ReadPromptSets(JobSettings& config) {
  json raw = config.Raw("prompt_sets").value_or(json::array({"medical", "general"}));
  if (raw.is_string()) raw = json::array({raw});
  if (!raw.is_array() || raw.empty()) {
    return absl::InvalidArgumentError(
        "config.prompt_sets: expected a non-empty list of names, paths or {name, path}");
  }
  std::vector<PromptSet> sets;
  std::set<std::string> names;
  for (size_t i = 0; i < raw.size(); ++i) {
    const std::string where = absl::StrCat("config.prompt_sets[", i, "]");
    PromptSet set;
    if (raw[i].is_string()) {
      set.path = ResolvePromptFile(raw[i].get<std::string>());
      set.name = fs::path(raw[i].get<std::string>()).stem().string();
    } else if (raw[i].is_object()) {
      JobSettings s(raw[i], where);
      PCSWEEP_ASSIGN_OR_RETURN(std::string path, s.RequiredString("path"));
      set.path = ResolvePromptFile(path);
      PCSWEEP_ASSIGN_OR_RETURN(set.name, s.String("name", fs::path(path).stem().string()));
      PCSWEEP_RETURN_IF_ERROR(s.CheckAllKeysUsed());
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected a name, a path or {name, path}"));
    }
    if (set.name.empty() || set.name.find('.') != std::string::npos ||
        !names.insert(set.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": set name '", set.name, "' must be unique, without dots"));
    }
    sets.push_back(std::move(set));
  }
  return sets;
}

// One prompt per line; blank lines and lines starting with '#' are skipped.
absl::StatusOr<std::vector<std::string>> ReadPromptFile(const std::string& path,
                                                        int64_t max_prompts) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open prompt set"));
  std::vector<std::string> prompts;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    prompts.push_back(line);
    if (max_prompts > 0 && static_cast<int64_t>(prompts.size()) >= max_prompts) break;
  }
  if (prompts.size() < 2)
    return absl::InvalidArgumentError(absl::StrCat(path, ": needs at least 2 prompts"));
  return prompts;
}

// The settings of sae_transfer after the preamble, in the order they are read.
struct SaeTransferSettings {
  std::string sae_dir;
  std::vector<PromptSet> sets;
  double threshold = 0.95;
  double confidence = 0.95;
  int64_t max_prompts = 0;  // per set; 0 = all
  int64_t batch_size = 16;
  inputs::PromptOptions prompt;
  std::optional<json> layer;  // resolved once the model and the SAE are loaded
};

absl::StatusOr<SaeTransferSettings> ReadSaeTransferSettings(JobSettings& config) {
  SaeTransferSettings s;
  PCSWEEP_ASSIGN_OR_RETURN(s.sae_dir, config.RequiredString("sae_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(s.sets, ReadPromptSets(config));
  PCSWEEP_ASSIGN_OR_RETURN(s.threshold, config.Number("threshold", 0.95, -1e9, 1));
  PCSWEEP_ASSIGN_OR_RETURN(s.confidence, config.Number("confidence", 0.95, 0.5, 0.999999));
  PCSWEEP_ASSIGN_OR_RETURN(s.max_prompts, config.Integer("max_prompts", 0, 0, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(s.batch_size, config.Integer("batch_size", 16, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(s.prompt, jobs::ReadPromptOptions(config, "{question}"));
  s.layer = config.Raw("layer");
  return s;
}

// Runs the prompts of `set` (text only), measures the SAE's reconstruction at `layer` on the
// positions after BOS, appends one row per prompt to `per_prompt` and returns the summary.
absl::StatusOr<TransferSummary> MeasurePromptSet(PromptRunner& runner, const JumpReluSae& sae,
                                                 int layer, const PromptSet& set,
                                                 const SaeTransferSettings& settings,
                                                 json* per_prompt) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<std::string> texts,
                           ReadPromptFile(set.path, settings.max_prompts));
  std::vector<PromptInput> prompts;
  for (const std::string& t : texts) prompts.push_back({t, ""});
  PCSWEEP_ASSIGN_OR_RETURN(
      std::vector<PromptRun> runs,
      runner.Run(prompts, {layer}, nullptr, static_cast<int>(settings.batch_size)));
  std::vector<double> r2, fvu, l0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const torch::Tensor& x = runs[i].layers.at(layer);
    if (x.size(0) < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(set.path, ": prompt ", i + 1, " has no token after BOS"));
    }
    const ReconstructionStats stats = MeasureReconstruction(sae, x.narrow(0, 1, x.size(0) - 1));
    r2.push_back(stats.r2());
    fvu.push_back(stats.fvu());
    l0.push_back(stats.l0);
    per_prompt->push_back({{"set", set.name},
                           {"prompt", i},
                           {"r2", stats.r2()},
                           {"fvu", stats.fvu()},
                           {"l0", stats.l0},
                           {"positions", stats.positions}});
  }
  auto summary = SummarizeTransfer(r2, fvu, l0, settings.threshold, settings.confidence);
  if (!summary.ok()) return Annotate(summary.status(), absl::StrCat("prompt set '", set.name, "'"));
  return summary;
}

}  // namespace

absl::Status RunSaeTransferJob(const json& job_json) {
  PCSWEEP_ASSIGN_OR_RETURN(SaeJob job,
                           OpenSaeJob(job_json, "sae_transfer",
                                      SaeJobFolders{/*adapter_dir=*/true, /*data_dir=*/false}));
  PCSWEEP_ASSIGN_OR_RETURN(SaeTransferSettings settings, ReadSaeTransferSettings(job.config()));
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           LoadJobModel(job, settings.prompt, "loading the model and the SAE"));
  PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, LoadSaeFor(*runner, settings.sae_dir));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  PCSWEEP_ASSIGN_OR_RETURN(int layer, ResolveLayer(settings.layer, num_layers, sae.ConfigLayer()));

  std::map<std::string, double> metrics;
  json per_prompt = json::array();
  const std::vector<PromptSet>& sets = settings.sets;
  for (size_t s = 0; s < sets.size(); ++s) {
    job.progress.Report(0.1 + 0.85 * static_cast<double>(s) / sets.size(),
                        absl::StrCat("prompt set ", sets[s].name));
    PCSWEEP_ASSIGN_OR_RETURN(TransferSummary summary,
                             MeasurePromptSet(*runner, sae, layer, sets[s], settings, &per_prompt));
    PutTransferSummary(sets[s].name + ".", summary, settings.confidence, &metrics);
    job.progress.Report(
        0.1 + 0.85 * static_cast<double>(s + 1) / sets.size(),
        absl::StrFormat(
            "%s: %d prompts, R² %.4f (CI %.4f-%.4f), one-sided t-test R² > %.3f: t = %.2f, "
            "p = %.3g; FVU %.4f, L0 %.1f",
            sets[s].name, summary.prompts, summary.r2_mean, summary.r2_ci_low, summary.r2_ci_high,
            settings.threshold, summary.t, summary.p_value, summary.fvu_mean, summary.l0_mean));
  }
  metrics["sae_transfer.layer"] = layer;
  metrics["sae_transfer.width"] = static_cast<double>(sae.d_sae());
  std::string lines;
  for (const json& row : per_prompt) lines += row.dump() + "\n";
  PCSWEEP_RETURN_IF_ERROR(
      jobs::WriteTextFile((fs::path(job.output_dir()) / "r2_per_prompt.jsonl").string(), lines));
  PCSWEEP_RETURN_IF_ERROR(jobs::WriteMetricsAndOutputs(
      job.output_dir(), metrics, {{"sae_dir", settings.sae_dir}, {"layer", absl::StrCat(layer)}}));
  job.progress.Report(1.0, "done");
  return absl::OkStatus();
}

}  // namespace pcsweep::sae
