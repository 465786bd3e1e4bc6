// layer_select (sae_jobs.h): ranks the SAE features of each analysed decoder layer by how well
// their change between the two prompts of a paraphrase pair predicts the margin shift
// (|corr(Δf_j, Δm)|, with the AUROC of |Δf_j| for flipped vs stable pairs), and hands the best
// layer L* on as `range` = L* ± k. Layers without a given SAE get one trained here.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status/status_macros.h"
#include "experiments/data/selection.h"
#include "experiments/engine/lora_config.h"
#include "experiments/jobs/job_io.h"
#include "experiments/sae/prompt_runner.h"
#include "experiments/sae/sae.h"
#include "experiments/sae/sae_job_common.h"
#include "experiments/sae/sae_job_training.h"
#include "experiments/sae/sae_jobs.h"
#include "experiments/sae/sae_stats.h"

namespace pcsweep::sae {
namespace {

namespace fs = std::filesystem;
using jobs::JobSettings;
using nlohmann::json;

// The settings of layer_select after the preamble, in the order they are read.
struct LayerSelectSettings {
  std::string pairs_file;
  std::string train_file;  // for layers without an SAE in `saes`
  int64_t max_pairs = 0;
  int64_t pairs_seed = 0;
  bool keep_inverting = false;
  int64_t k = 1;
  int64_t top = 10;
  int64_t min_active = 3;
  std::string position = "mean";  // "mean" over the positions after BOS, or "last"
  int64_t batch_size = 32;
  inputs::PromptOptions prompt;
  json layers;                // engine::ParseLayers once the model is loaded
  std::optional<json> saes;   // {"<layer>": dir} or a pattern with {layer}
  SaeTrainSettings training;  // of the SAEs trained here
};

absl::StatusOr<LayerSelectSettings> ReadLayerSelectSettings(SaeJob& job) {
  JobSettings& config = job.config();
  LayerSelectSettings s;
  PCSWEEP_ASSIGN_OR_RETURN(s.pairs_file,
                           config.String("pairs_file", job.DataFile("eval_mimic.jsonl")));
  if (s.pairs_file.empty())
    return absl::InvalidArgumentError(
        "config.pairs_file: required when config.data_dir is not given");
  PCSWEEP_ASSIGN_OR_RETURN(s.train_file, config.String("train_file", job.DataFile("train.jsonl")));
  PCSWEEP_ASSIGN_OR_RETURN(s.max_pairs, config.Integer("max_pairs", 0, 0, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(s.pairs_seed, config.Integer("pairs_seed", 0, 0, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(s.keep_inverting, config.Bool("keep_inverting", false));
  PCSWEEP_ASSIGN_OR_RETURN(s.k, config.Integer("k", 1, 0, 1000));
  PCSWEEP_ASSIGN_OR_RETURN(s.top, config.Integer("top", 10, 1, 100000));
  PCSWEEP_ASSIGN_OR_RETURN(s.min_active, config.Integer("min_active_pairs", 3, 1, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(s.position, config.String("position", "mean"));
  if (s.position != "mean" && s.position != "last") {
    return absl::InvalidArgumentError(
        absl::StrCat("config.position: '", s.position, "' is not mean or last"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(s.batch_size, config.Integer("batch_size", 32, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(
      s.prompt, jobs::ReadPromptOptions(config, inputs::PromptOptions().prompt_template));
  s.layers = config.Raw("layers").value_or(json("all"));
  s.saes = config.Raw("saes");
  s.training.options.steps = 1000;
  s.training.max_prompts = 300;
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<JobSettings> sae_settings, config.Object("sae"));
  if (sae_settings.has_value()) {
    PCSWEEP_RETURN_IF_ERROR(ReadSaeTrainSettings(*sae_settings, &s.training));
    PCSWEEP_RETURN_IF_ERROR(sae_settings->CheckAllKeysUsed());
  }
  return s;
}

// The SAE folder of each analysed layer given by `saes` ({"L": dir} or a pattern with
// "{layer}"); empty without it (every SAE is trained here).
using SaeDirs = std::map<int, std::string>;
using SaeByLayer = std::map<int, JumpReluSae>;

absl::StatusOr<SaeDirs> ReadSaeDirs(const std::optional<json>& raw,
                                    const std::vector<int>& layers) {
  SaeDirs dirs;
  if (!raw.has_value() || raw->is_null()) return dirs;
  if (raw->is_string()) {
    const std::string pattern = raw->get<std::string>();
    if (pattern.find("{layer}") == std::string::npos) {
      return absl::InvalidArgumentError(
          "config.saes: a string must be a folder pattern containing {layer}");
    }
    for (int layer : layers)
      dirs[layer] = absl::StrReplaceAll(pattern, {{"{layer}", absl::StrCat(layer)}});
    return dirs;
  }
  if (!raw->is_object())
    return absl::InvalidArgumentError("config.saes: expected {\"<layer>\": dir} or a pattern");
  for (const auto& [key, value] : raw->items()) {
    int layer = -1;
    if (!absl::SimpleAtoi(key, &layer) || !value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.saes.", key, ": expected a layer number mapped to a folder"));
    }
    dirs[layer] = value.get<std::string>();
  }
  for (int layer : layers) {
    if (!dirs.count(layer))
      return absl::InvalidArgumentError(absl::StrCat("config.saes: no SAE for layer ", layer));
  }
  return dirs;
}

absl::StatusOr<std::vector<data::Pair>> LoadPairs(const LayerSelectSettings& settings) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<data::Question> questions,
                           LoadQuestions(settings.pairs_file));
  data::SelectionOptions select;
  select.keep_inverting = settings.keep_inverting;
  select.max_pairs = static_cast<size_t>(settings.max_pairs);
  select.seed = static_cast<uint64_t>(settings.pairs_seed);
  std::vector<data::Pair> pairs = data::SelectPairs(questions, select);
  if (pairs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(settings.pairs_file, ": no yes/no paraphrase pairs"));
  }
  return pairs;
}

// The SAE of every analysed layer: loaded from `sae_dirs`, else trained on the train split,
// saved under <output_dir>/saes/layer_<L> (added to `sae_dirs`) with its held-out R² and L0
// as metrics `layer.<L>.{sae_heldout_r2, sae_l0}`.
absl::StatusOr<SaeByLayer> ObtainSaes(SaeJob& job, PromptRunner& runner,
                                      const LayerSelectSettings& settings,
                                      const std::vector<int>& layers, SaeDirs* sae_dirs,
                                      std::map<std::string, double>* metrics) {
  SaeByLayer saes;
  for (size_t i = 0; i < layers.size(); ++i) {
    const int layer = layers[i];
    const double from = 0.05 + 0.6 * static_cast<double>(i) / layers.size();
    const double to = 0.05 + 0.6 * static_cast<double>(i + 1) / layers.size();
    if (sae_dirs->count(layer)) {
      PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, LoadSaeFor(runner, (*sae_dirs)[layer]));
      saes.emplace(layer, std::move(sae));
      continue;
    }
    PCSWEEP_ASSIGN_OR_RETURN(
        TrainedSae trained,
        TrainOnBenchmark(runner, settings.train_file, layer, settings.training,
                         static_cast<int>(settings.batch_size), &job.progress, from, to));
    PCSWEEP_ASSIGN_OR_RETURN(
        TransferSummary heldout,
        SummarizeTransfer(trained.heldout_r2, trained.heldout_fvu, trained.heldout_l0, 0.9));
    const std::string dir =
        (fs::path(job.output_dir()) / "saes" / absl::StrCat("layer_", layer)).string();
    PCSWEEP_RETURN_IF_ERROR(trained.sae->Save(
        dir, SaeConfigJson(layer, job.model_dir, heldout.l0_mean, settings.training.options)));
    (*metrics)[absl::StrCat("layer.", layer, ".sae_heldout_r2")] = heldout.r2_mean;
    (*metrics)[absl::StrCat("layer.", layer, ".sae_l0")] = heldout.l0_mean;
    (*sae_dirs)[layer] = dir;
    saes.emplace(layer, std::move(*trained.sae));
  }
  return saes;
}

// The SAE features of the prompts of the pairs at every analysed layer: each distinct prompt
// runs once (all layers in one pass), its features taken at the last position or averaged
// over the positions after BOS.
struct PairFeatures {
  std::vector<std::pair<size_t, size_t>> prompts_of_pair;  // (original, paraphrase) indices
  std::map<int, std::vector<torch::Tensor>> features;      // layer -> per prompt [d_sae]
  std::vector<double> margins;                             // per prompt
};

absl::StatusOr<PairFeatures> RunPairs(PromptRunner& runner, const std::vector<data::Pair>& pairs,
                                      const std::vector<int>& layers, const SaeByLayer& saes,
                                      const LayerSelectSettings& settings) {
  PairFeatures out;
  std::map<std::pair<std::string, std::string>, size_t> index_of;
  std::vector<PromptInput> prompts;
  auto add = [&](const std::string& text, const std::string& image) {
    auto [it, inserted] = index_of.emplace(std::make_pair(text, image), prompts.size());
    if (inserted) prompts.push_back({text, image});
    return it->second;
  };
  for (const data::Pair& p : pairs)
    out.prompts_of_pair.emplace_back(add(p.original, p.image), add(p.paraphrase, p.image));
  const size_t chunk = 64;
  for (size_t start = 0; start < prompts.size(); start += chunk) {
    std::vector<PromptInput> part(prompts.begin() + start,
                                  prompts.begin() + std::min(prompts.size(), start + chunk));
    PCSWEEP_ASSIGN_OR_RETURN(
        std::vector<PromptRun> runs,
        runner.Run(part, layers, nullptr, static_cast<int>(settings.batch_size)));
    for (PromptRun& run : runs) {
      out.margins.push_back(run.margin);
      for (int layer : layers) {
        const torch::Tensor& x = run.layers.at(layer);
        const torch::Tensor f = saes.at(layer).Encode(x.narrow(0, 1, x.size(0) - 1)).cpu();
        out.features[layer].push_back(settings.position == "last" ? f[f.size(0) - 1].clone()
                                                                  : f.mean(0));
      }
    }
  }
  return out;
}

// Per pair: Δm = m_p − m_o with m_p in the original's answer frame, and whether the sign flips.
struct MarginShifts {
  std::vector<double> delta_margin;
  std::vector<bool> flipped;
  int64_t flips = 0;
};

MarginShifts ShiftsOf(const std::vector<data::Pair>& pairs, const PairFeatures& runs) {
  MarginShifts out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double mo = runs.margins[runs.prompts_of_pair[i].first];
    const double mp_raw = runs.margins[runs.prompts_of_pair[i].second];
    const double mp = pairs[i].op_match ? mp_raw : -mp_raw;
    out.delta_margin.push_back(mp - mo);
    out.flipped.push_back((mo > 0) != (mp > 0));
  }
  out.flips = std::count(out.flipped.begin(), out.flipped.end(), true);
  return out;
}

struct LayerResult {
  int layer = 0;
  std::vector<FeatureScore> top;  // best first; empty when no feature is active enough
};

// RankFeatures at every layer; the best feature of each as metrics
// `layer.<L>.{feature, score, correlation, auroc}`.
absl::StatusOr<std::vector<LayerResult>> RankLayers(const std::vector<int>& layers,
                                                    const SaeByLayer& saes,
                                                    const PairFeatures& runs,
                                                    const MarginShifts& shifts,
                                                    const LayerSelectSettings& settings,
                                                    std::map<std::string, double>* metrics) {
  std::vector<LayerResult> results;
  for (int layer : layers) {
    const int64_t width = saes.at(layer).d_sae();
    const std::vector<torch::Tensor>& features = runs.features.at(layer);
    std::vector<torch::Tensor> deltas;
    for (const auto& [o, p] : runs.prompts_of_pair) deltas.push_back(features[p] - features[o]);
    const torch::Tensor delta = torch::stack(deltas).to(torch::kDouble).contiguous();
    const double* begin = delta.data_ptr<double>();
    auto ranked = RankFeatures(absl::MakeConstSpan(begin, static_cast<size_t>(delta.numel())),
                               width, shifts.delta_margin, shifts.flipped,
                               static_cast<size_t>(settings.top), settings.min_active);
    if (!ranked.ok()) return Annotate(ranked.status(), absl::StrCat("layer ", layer));
    results.push_back({layer, std::move(*ranked)});
    const LayerResult& r = results.back();
    const std::string prefix = absl::StrCat("layer.", layer, ".");
    if (r.top.empty()) continue;
    (*metrics)[prefix + "feature"] = static_cast<double>(r.top[0].feature);
    (*metrics)[prefix + "score"] = r.top[0].score;
    (*metrics)[prefix + "correlation"] = r.top[0].correlation;
    (*metrics)[prefix + "auroc"] = r.top[0].auroc;
  }
  return results;
}

// The layer whose best feature scores highest (the first of equals).
// Possible errors: FailedPrecondition when no layer has a feature active on enough pairs.
absl::StatusOr<const LayerResult*> BestLayer(const std::vector<LayerResult>& results,
                                             int64_t min_active, size_t pairs) {
  const LayerResult* best = nullptr;
  for (const LayerResult& r : results) {
    if (!r.top.empty() && (best == nullptr || r.top[0].score > best->top[0].score)) best = &r;
  }
  if (best == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no SAE feature is active on at least ", min_active, " of ", pairs,
                     " pairs at any analysed layer: nothing to rank (lower config.min_active_pairs "
                     "or use more pairs)"));
  }
  return best;
}

// Reports the choice and writes outputs.json and metrics.json (`metrics` holds the per-layer
// ones already).
absl::Status WriteSelection(SaeJob& job, const LayerSelectSettings& settings, int num_layers,
                            const LayerResult& best, size_t pairs, const MarginShifts& shifts,
                            const SaeDirs& sae_dirs, std::map<std::string, double> metrics) {
  const FeatureScore& winner = best.top[0];
  const auto range = LayerRange(best.layer, static_cast<int>(settings.k), num_layers);
  std::vector<std::string> top_text;
  for (const FeatureScore& f : best.top) {
    if (top_text.size() >= static_cast<size_t>(settings.top)) break;
    top_text.push_back(absl::StrFormat("L%d:f%d r=%.3f auroc=%.3f", best.layer, f.feature,
                                       f.correlation, f.auroc));
  }
  const std::string reason = absl::StrFormat(
      "layer %d feature %d: |corr(Δf, Δmargin)| = %.3f over %zu pairs (%d flipped), AUROC flipped "
      "vs stable %.3f "
      "(%s activation); range = layer %d ± %d",
      best.layer, winner.feature, winner.score, pairs, shifts.flips, winner.auroc,
      settings.position, best.layer, settings.k);
  metrics["layer_select.layer"] = best.layer;
  metrics["layer_select.feature"] = static_cast<double>(winner.feature);
  metrics["layer_select.score"] = winner.score;
  metrics["layer_select.correlation"] = winner.correlation;
  metrics["layer_select.auroc"] = winner.auroc;
  metrics["layer_select.range_first"] = range.first;
  metrics["layer_select.range_last"] = range.second;
  metrics["layer_select.pairs"] = static_cast<double>(pairs);
  metrics["layer_select.flipped_pairs"] = static_cast<double>(shifts.flips);
  job.progress.Report(0.95, reason);
  return jobs::WriteMetricsAndOutputs(job.output_dir(), metrics,
                                      {{"range", LayerRangeText(range)},
                                       {"layer", absl::StrCat(best.layer)},
                                       {"feature", absl::StrCat(winner.feature)},
                                       {"score", absl::StrFormat("%.4f", winner.score)},
                                       {"auroc", absl::StrFormat("%.4f", winner.auroc)},
                                       {"sae_dir", sae_dirs.at(best.layer)},
                                       {"top_features", absl::StrJoin(top_text, "; ")},
                                       {"reason", reason},
                                       {"model_dir", job.model_dir}});
}

}  // namespace

absl::Status RunLayerSelectJob(const json& job_json) {
  PCSWEEP_ASSIGN_OR_RETURN(
      SaeJob job,
      OpenSaeJob(job_json, "layer_select", SaeJobFolders{/*adapter_dir=*/true, /*data_dir=*/true}));
  PCSWEEP_ASSIGN_OR_RETURN(LayerSelectSettings settings, ReadLayerSelectSettings(job));
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           LoadJobModel(job, settings.prompt, "loading the model and the pairs"));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<int> layers,
                           engine::ParseLayers(settings.layers, num_layers, "config.layers"));
  PCSWEEP_ASSIGN_OR_RETURN(SaeDirs sae_dirs, ReadSaeDirs(settings.saes, layers));
  if (sae_dirs.empty() && settings.train_file.empty()) {
    return absl::InvalidArgumentError(
        "config.saes: required when neither config.data_dir nor config.train_file is given");
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<data::Pair> pairs, LoadPairs(settings));
  std::map<std::string, double> metrics;
  PCSWEEP_ASSIGN_OR_RETURN(SaeByLayer saes,
                           ObtainSaes(job, *runner, settings, layers, &sae_dirs, &metrics));
  job.progress.Report(
      0.7, absl::StrFormat("features of %zu pairs at %zu layers", pairs.size(), layers.size()));
  PCSWEEP_ASSIGN_OR_RETURN(PairFeatures runs, RunPairs(*runner, pairs, layers, saes, settings));
  const MarginShifts shifts = ShiftsOf(pairs, runs);
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<LayerResult> results,
                           RankLayers(layers, saes, runs, shifts, settings, &metrics));
  PCSWEEP_ASSIGN_OR_RETURN(const LayerResult* best,
                           BestLayer(results, settings.min_active, pairs.size()));
  PCSWEEP_RETURN_IF_ERROR(WriteSelection(job, settings, num_layers, *best, pairs.size(), shifts,
                                         sae_dirs, std::move(metrics)));
  job.progress.Report(1.0, "done");
  return absl::OkStatus();
}

}  // namespace pcsweep::sae
