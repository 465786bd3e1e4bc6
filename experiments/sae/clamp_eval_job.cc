// clamp_eval (sae_jobs.h), also the `clamp` option of `eval` (jobs::RegisterEvalOption): each
// eval set scored unclamped and with one SAE feature scaled at its layer, with flip rate and
// accuracy changes against the unclamped run.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "common/analysis/analysis.h"
#include "common/status/status_macros.h"
#include "experiments/data/examples_io.h"
#include "experiments/jobs/job_io.h"
#include "experiments/sae/prompt_runner.h"
#include "experiments/sae/sae.h"
#include "experiments/sae/sae_job_common.h"
#include "experiments/sae/sae_jobs.h"

namespace pcsweep::sae {
namespace {

using jobs::EvalSet;
using jobs::JobSettings;
using nlohmann::json;

// `job` with the keys of its `config.clamp` object ({sae_dir, layer, feature, scale}, as an
// `eval` job gives them) moved into its config.
// Possible errors: InvalidArgument when `clamp` is not an object or repeats a config key.
absl::StatusOr<json> WithClampKeysInConfig(const json& job) {
  json out = job;
  if (!out.contains("config") || !out["config"].is_object() || !out["config"].contains("clamp"))
    return out;
  const json clamp = out["config"]["clamp"];
  if (!clamp.is_object())
    return absl::InvalidArgumentError("config.clamp: expected {sae_dir, layer, feature, scale}");
  out["config"].erase("clamp");
  for (const auto& [key, value] : clamp.items()) {
    if (out["config"].contains(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.clamp.", key, ": also given outside config.clamp"));
    }
    out["config"][key] = value;
  }
  return out;
}

// The settings of clamp_eval after the preamble, in the order they are read.
struct ClampEvalSettings {
  std::string sae_dir;
  int64_t feature = 0;
  double scale = 0;
  int64_t batch_size = 64;
  std::string variant = "clamped";  // of the clamped rows
  inputs::PromptOptions prompt;
  std::vector<EvalSet> sets;  // loaded
  std::optional<json> layer;  // resolved once the SAE is loaded
};

absl::StatusOr<ClampEvalSettings> ReadClampEvalSettings(SaeJob& job) {
  JobSettings& config = job.config();
  ClampEvalSettings s;
  PCSWEEP_ASSIGN_OR_RETURN(s.sae_dir, config.RequiredString("sae_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<int64_t> feature,
                           IntegerOrString(config, "feature", 0, kMaxCount));
  if (!feature.has_value())
    return absl::InvalidArgumentError("config.feature: required (the SAE feature to clamp)");
  s.feature = *feature;
  PCSWEEP_ASSIGN_OR_RETURN(s.scale, config.Number("scale", 0.0, -1e6, 1e6));
  PCSWEEP_ASSIGN_OR_RETURN(s.batch_size, config.Integer("eval_batch_size", 64, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(s.variant, config.String("variant", "clamped"));
  PCSWEEP_ASSIGN_OR_RETURN(
      s.prompt, jobs::ReadPromptOptions(config, inputs::PromptOptions().prompt_template));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<jobs::EvalSetSpec> set_specs,
                           jobs::ReadEvalSets(config, job.data_dir, /*required=*/true));
  if (set_specs.empty()) return absl::InvalidArgumentError("config.eval_sets: empty list");
  PCSWEEP_ASSIGN_OR_RETURN(s.sets, jobs::LoadEvalSets(set_specs));
  s.layer = config.Raw("layer");
  return s;
}

// The rows of `set` scored as `variant` (appended to `rows`) and their consistency metrics.
absl::StatusOr<analysis::ConsistencyMetrics> Score(const EvalSet& set,
                                                   const std::vector<PairMargins>& margins,
                                                   const std::string& variant,
                                                   std::vector<data::ExampleRow>* rows) {
  const size_t first = rows->size();
  for (size_t i = 0; i < set.pairs.size(); ++i) {
    rows->push_back(
        jobs::ExampleRowOf(set, variant, set.pairs[i], margins[i].original, margins[i].paraphrase));
  }
  auto m = analysis::ComputeConsistencyMetrics(absl::MakeConstSpan(*rows).subspan(first));
  if (!m.ok())
    return Annotate(m.status(),
                    absl::StrCat("metrics of eval set '", set.name, "' (", variant, ")"));
  return m;
}

// One eval set scored without and with the clamp: its metrics "S.<metric>" (clamped),
// "S.base.<metric>" and "S.clamp.*" go into `metrics`, its rows (base, then clamped) into
// `rows`. Returns the progress line of the set.
absl::StatusOr<std::string> EvaluateClamped(PromptRunner& runner, const engine::ResidualHook& hook,
                                            const EvalSet& set, int layer,
                                            const ClampEvalSettings& settings,
                                            std::vector<data::ExampleRow>* rows,
                                            std::map<std::string, double>* metrics) {
  const int batch = static_cast<int>(settings.batch_size);
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<PairMargins> base,
                           runner.ScorePairs(set.pairs, nullptr, batch));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<PairMargins> clamped,
                           runner.ScorePairs(set.pairs, hook, batch));
  PCSWEEP_ASSIGN_OR_RETURN(analysis::ConsistencyMetrics mb, Score(set, base, "base", rows));
  PCSWEEP_ASSIGN_OR_RETURN(analysis::ConsistencyMetrics mc,
                           Score(set, clamped, settings.variant, rows));
  std::map<std::string, double>& m = *metrics;
  for (const auto& [name, value] : mc.ToMap()) m[absl::StrCat(set.name, ".", name)] = value;
  for (const auto& [name, value] : mb.ToMap()) m[absl::StrCat(set.name, ".base.", name)] = value;
  const std::string c = set.name + ".clamp.";
  m[c + "flip_rate_change"] = mc.flip_rate - mb.flip_rate;
  if (mb.flip_rate > 0)
    m[c + "relative_flip_reduction"] = (mb.flip_rate - mc.flip_rate) / mb.flip_rate;
  m[c + "accuracy_original_change"] = mc.accuracy_original - mb.accuracy_original;
  m[c + "accuracy_all_change"] = mc.accuracy_all - mb.accuracy_all;
  return absl::StrFormat(
      "%s: layer %d feature %d × %.2f: flip rate %.3f -> %.3f, accuracy %.3f -> %.3f", set.name,
      layer, settings.feature, settings.scale, mb.flip_rate, mc.flip_rate, mb.accuracy_all,
      mc.accuracy_all);
}

}  // namespace

absl::Status RunClampEvalJob(const json& job_in) {
  PCSWEEP_ASSIGN_OR_RETURN(const json job_json, WithClampKeysInConfig(job_in));
  PCSWEEP_ASSIGN_OR_RETURN(
      SaeJob job,
      OpenSaeJob(job_json, "clamp_eval", SaeJobFolders{/*adapter_dir=*/true, /*data_dir=*/true}));
  PCSWEEP_ASSIGN_OR_RETURN(ClampEvalSettings settings, ReadClampEvalSettings(job));
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           LoadJobModel(job, settings.prompt, "loading the model and the SAE"));
  PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, LoadSaeFor(*runner, settings.sae_dir));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  PCSWEEP_ASSIGN_OR_RETURN(int layer, ResolveLayer(settings.layer, num_layers, sae.ConfigLayer()));
  if (settings.feature >= sae.d_sae()) {
    return absl::InvalidArgumentError(absl::StrCat("config.feature: ", settings.feature,
                                                   " is outside the SAE's ", sae.d_sae(),
                                                   " features (", settings.sae_dir, ")"));
  }
  const engine::ResidualHook hook =
      MakeFeatureClampHook(sae, layer, settings.feature, settings.scale);

  std::map<std::string, double> metrics;
  std::vector<data::ExampleRow> rows;
  const std::vector<EvalSet>& sets = settings.sets;
  for (size_t i = 0; i < sets.size(); ++i) {
    job.progress.Report(0.1 + 0.85 * static_cast<double>(i) / sets.size(),
                        absl::StrCat("evaluating ", sets[i].name));
    PCSWEEP_ASSIGN_OR_RETURN(std::string line, EvaluateClamped(*runner, hook, sets[i], layer,
                                                               settings, &rows, &metrics));
    job.progress.Report(0.1 + 0.85 * static_cast<double>(i + 1) / sets.size(), line);
  }
  metrics["clamp.layer"] = layer;
  metrics["clamp.feature"] = static_cast<double>(settings.feature);
  metrics["clamp.scale"] = settings.scale;
  std::map<std::string, std::string> outputs = {{"model_dir", job.model_dir},
                                                {"sae_dir", settings.sae_dir},
                                                {"layer", absl::StrCat(layer)},
                                                {"feature", absl::StrCat(settings.feature)},
                                                {"scale", absl::StrCat(settings.scale)}};
  if (!job.adapter_dir.empty()) outputs["adapter_dir"] = job.adapter_dir;
  PCSWEEP_RETURN_IF_ERROR(jobs::WriteResults(job.output_dir(), metrics, rows, outputs));
  job.progress.Report(1.0, "done");
  return absl::OkStatus();
}

}  // namespace pcsweep::sae
