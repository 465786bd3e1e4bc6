#include "experiments/sae/sae_jobs.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/analysis/analysis.h"
#include "common/status/status_macros.h"
#include "experiments/data/examples_io.h"
#include "experiments/data/loaders.h"
#include "experiments/data/selection.h"
#include "experiments/engine/safetensors.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/job_settings.h"
#include "experiments/sae/prompt_runner.h"
#include "experiments/sae/sae.h"
#include "experiments/sae/sae_stats.h"
#include "experiments/sae/sae_trainer.h"

#ifndef PCSWEEP_SAE_PROMPTS_DIR
#define PCSWEEP_SAE_PROMPTS_DIR ""
#endif

namespace pcsweep::sae {
namespace {

namespace fs = std::filesystem;
using jobs::ConfigureThreads;
using jobs::EvalSet;
using jobs::Guarded;
using jobs::JobContext;
using jobs::JobSettings;
using jobs::ReadJob;
using jobs::ReadPromptOptions;
using jobs::WriteTextFile;
using nlohmann::json;

constexpr int64_t kBig = int64_t{1} << 40;

// An integer that may arrive as a string from a placeholder ("{layer_select.feature}").
absl::StatusOr<std::optional<int64_t>> IntegerOrString(JobSettings& config, const std::string& key,
                                                       int64_t min, int64_t max) {
  std::optional<json> raw = config.Raw(key);
  if (!raw.has_value() || raw->is_null()) return std::optional<int64_t>();
  int64_t value = 0;
  if (raw->is_number_integer()) {
    value = raw->get<int64_t>();
  } else if (raw->is_number() && std::floor(raw->get<double>()) == raw->get<double>()) {
    value = static_cast<int64_t>(raw->get<double>());
  } else if (!raw->is_string() || !absl::SimpleAtoi(raw->get<std::string>(), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Where(key), ": expected an integer, got ", raw->dump()));
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Where(key), ": ", value, " is outside [", min, ", ", max, "]"));
  }
  return std::optional<int64_t>(value);
}

// Decoder layer of a setting: an integer, a numeric string, "middle" (num_layers / 2) or,
// when absent, `fallback` (-1: required).
absl::StatusOr<int> ReadLayer(JobSettings& config, const std::string& key, int num_layers,
                              int fallback) {
  std::optional<json> raw = config.Raw(key);
  int64_t layer = fallback;
  if (raw.has_value() && raw->is_string() && raw->get<std::string>() == "middle") {
    layer = num_layers / 2;
  } else if (raw.has_value()) {
    JobSettings single(json{{key, *raw}}, "config");
    PCSWEEP_ASSIGN_OR_RETURN(std::optional<int64_t> v, IntegerOrString(single, key, -kBig, kBig));
    if (v.has_value()) layer = *v;
  }
  if (layer < 0 || layer >= num_layers) {
    if (!raw.has_value() && fallback < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.Where(key), ": required (a decoder layer 0-", num_layers - 1, ")"));
    }
    return absl::InvalidArgumentError(absl::StrCat(config.Where(key), ": layer ", layer,
                                                   " is out of range: the model has ", num_layers,
                                                   " decoder layers (0-", num_layers - 1, ")"));
  }
  return static_cast<int>(layer);
}

absl::StatusOr<std::vector<data::Question>> LoadQuestions(const std::string& path) {
  PCSWEEP_ASSIGN_OR_RETURN(data::Format format, data::GuessFormat(path));
  PCSWEEP_ASSIGN_OR_RETURN(data::Dataset dataset, data::LoadDataset(path, format, {}));
  if (dataset.questions.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": no questions"));
  return std::move(dataset.questions);
}

// Every question and paraphrase of `questions` as a prompt on its image, question by
// question (so a split by question index keeps paraphrases together).
std::vector<std::vector<PromptInput>> PromptsPerQuestion(
    const std::vector<data::Question>& questions) {
  std::vector<std::vector<PromptInput>> out;
  for (const data::Question& q : questions) {
    std::vector<PromptInput> prompts = {{q.original_question, q.image}};
    for (const data::Paraphrase& p : q.paraphrases) prompts.push_back({p.text, q.image});
    out.push_back(std::move(prompts));
  }
  return out;
}

// Token positions after BOS of every run, stacked: [positions, hidden].
torch::Tensor StackWithoutBos(const std::vector<PromptRun>& runs, int layer) {
  std::vector<torch::Tensor> rows;
  for (const PromptRun& run : runs) {
    const torch::Tensor& x = run.layers.at(layer);
    if (x.size(0) > 1) rows.push_back(x.narrow(0, 1, x.size(0) - 1));
  }
  return torch::cat(rows, 0);
}

struct SaeTrainSettings {
  SaeTrainOptions options;
  int64_t max_prompts = 400;
  double heldout_fraction = 0.2;
  bool width_given = false;
};

absl::Status ReadSaeTrainSettings(JobSettings& s, SaeTrainSettings* out) {
  SaeTrainOptions& o = out->options;
  out->width_given = s.Has("width");
  PCSWEEP_ASSIGN_OR_RETURN(o.width, s.Integer("width", o.width, 1, 1 << 24));
  PCSWEEP_ASSIGN_OR_RETURN(std::string penalty, s.String("sparsity", "l0"));
  auto parsed = ParseSparsityPenalty(penalty);
  if (!parsed.ok()) return Annotate(parsed.status(), s.Where("sparsity"));
  o.penalty = *parsed;
  PCSWEEP_ASSIGN_OR_RETURN(
      o.sparsity_coefficient,
      s.Number("sparsity_coefficient", o.penalty == SparsityPenalty::kL0 ? 2e-3 : 2e-2, 0, 100));
  PCSWEEP_ASSIGN_OR_RETURN(o.bandwidth, s.Number("bandwidth", o.bandwidth, 1e-6, 10));
  PCSWEEP_ASSIGN_OR_RETURN(o.initial_threshold,
                           s.Number("initial_threshold", o.initial_threshold, 1e-6, 10));
  PCSWEEP_ASSIGN_OR_RETURN(o.steps, s.Integer("steps", o.steps, 1, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(o.batch_size, s.Integer("sae_batch_size", o.batch_size, 1, 1 << 24));
  PCSWEEP_ASSIGN_OR_RETURN(o.lr, s.Number("lr", o.lr, 1e-9, 10));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t seed, s.Integer("seed", 0, 0, kBig));
  o.seed = static_cast<uint64_t>(seed);
  PCSWEEP_ASSIGN_OR_RETURN(out->max_prompts, s.Integer("max_prompts", out->max_prompts, 2, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(out->heldout_fraction,
                           s.Number("heldout_fraction", out->heldout_fraction, 0.01, 0.9));
  return absl::OkStatus();
}

struct TrainedSae {
  std::optional<JumpReluSae> sae;
  SaeTrainReport report;
  std::vector<double> heldout_r2, heldout_fvu, heldout_l0;
  int64_t train_prompts = 0, train_positions = 0;
};

// Trains an SAE at `layer` on prompts of `train_file` (questions split into train / held-out
// by a seeded shuffle) and measures it on the held-out prompts.
absl::StatusOr<TrainedSae> TrainOnBenchmark(PromptRunner& runner, const std::string& train_file,
                                            int layer, SaeTrainSettings settings, int batch_size,
                                            jobs::Progress* progress, double from, double to) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<data::Question> questions, LoadQuestions(train_file));
  std::mt19937_64 rng(settings.options.seed);
  std::shuffle(questions.begin(), questions.end(), rng);
  const auto per_question = PromptsPerQuestion(questions);
  size_t total = 0;
  for (const auto& p : per_question) total += p.size();
  const size_t budget = std::min<size_t>(total, static_cast<size_t>(settings.max_prompts));
  const size_t heldout_budget =
      std::max<size_t>(2, static_cast<size_t>(settings.heldout_fraction * budget));
  std::vector<PromptInput> train, heldout;
  for (const auto& prompts : per_question) {
    std::vector<PromptInput>& target = heldout.size() < heldout_budget ? heldout : train;
    if (train.size() + heldout.size() >= budget) break;
    target.insert(target.end(), prompts.begin(), prompts.end());
  }
  if (train.size() < 2 || heldout.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(train_file, ": too few prompts for SAE training (", train.size(), " train, ",
                     heldout.size(), " held out)"));
  }
  progress->Report(from, absl::StrFormat("layer %d: residuals of %zu train + %zu held-out prompts",
                                         layer, train.size(), heldout.size()));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<PromptRun> train_runs,
                           runner.Run(train, {layer}, nullptr, batch_size));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<PromptRun> heldout_runs,
                           runner.Run(heldout, {layer}, nullptr, batch_size));
  TrainedSae out;
  const torch::Tensor activations = StackWithoutBos(train_runs, layer);
  out.train_prompts = static_cast<int64_t>(train.size());
  out.train_positions = activations.size(0);
  if (!settings.width_given) settings.options.width = 4 * activations.size(1);
  auto sae = TrainJumpReluSae(activations, settings.options, &out.report,
                              [&](int64_t step, int64_t steps, double loss, double l0) {
                                if (step % 500 == 0 || step == steps) {
                                  progress->Report(
                                      from + (to - from) * static_cast<double>(step) / steps,
                                      absl::StrFormat("layer %d: SAE step %d/%d loss %.4f L0 %.1f",
                                                      layer, step, steps, loss, l0));
                                }
                              });
  if (!sae.ok()) return Annotate(sae.status(), absl::StrCat("layer ", layer));
  out.sae = std::move(*sae);
  for (const PromptRun& run : heldout_runs) {
    const torch::Tensor& x = run.layers.at(layer);
    const ReconstructionStats stats =
        MeasureReconstruction(*out.sae, x.narrow(0, 1, x.size(0) - 1));
    out.heldout_r2.push_back(stats.r2());
    out.heldout_fvu.push_back(stats.fvu());
    out.heldout_l0.push_back(stats.l0);
  }
  return out;
}

json SaeConfigJson(int layer, const std::string& model_dir, double l0, const SaeTrainOptions& o) {
  const std::string hook = absl::StrCat("model.layers.", layer, ".output");
  return {{"hf_hook_point_in", hook},
          {"hf_hook_point_out", hook},
          {"model_name", model_dir},
          {"architecture", "jump_relu"},
          {"l0", static_cast<int64_t>(std::lround(l0))},
          {"affine_connection", false},
          {"type", "sae"},
          {"trained_by", "pcsweep-run sae_train"},
          {"sparsity", o.penalty == SparsityPenalty::kL0 ? "l0" : "l1"},
          {"sparsity_coefficient", o.sparsity_coefficient},
          {"bandwidth", o.bandwidth},
          {"steps", o.steps},
          {"seed", o.seed}};
}

void PutSummary(const std::string& prefix, const TransferSummary& s, double confidence,
                std::map<std::string, double>* metrics) {
  for (const auto& [name, value] : s.ToMap()) (*metrics)[prefix + name] = value;
  (*metrics)[prefix + "passed"] = s.p_value < 1.0 - confidence ? 1.0 : 0.0;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// sae_train

absl::Status RunSaeTrainJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  jobs::Progress progress("sae_train", /*log_every_report=*/true);
  PCSWEEP_ASSIGN_OR_RETURN(int threads, ConfigureThreads(config));
  PCSWEEP_ASSIGN_OR_RETURN(std::string model_dir, config.RequiredString("model_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::string data_dir, config.String("data_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(
      std::string train_file,
      config.String("train_file",
                    data_dir.empty() ? "" : (fs::path(data_dir) / "train.jsonl").string()));
  if (train_file.empty())
    return absl::InvalidArgumentError(
        "config.train_file: required when config.data_dir is not given");
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PromptOptions prompt,
                           ReadPromptOptions(config, inputs::PromptOptions().prompt_template));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t batch, config.Integer("batch_size", 32, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(double threshold, config.Number("r2_threshold", 0.9, -1e9, 1));
  SaeTrainSettings settings;
  PCSWEEP_RETURN_IF_ERROR(ReadSaeTrainSettings(config, &settings));
  std::optional<json> layer_raw = config.Raw("layer");
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  progress.Report(0.02, "loading the model");
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           PromptRunner::Load(model_dir, "", threads, prompt));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  JobSettings layer_settings(layer_raw.has_value() ? json{{"layer", *layer_raw}} : json::object(),
                             "config");
  PCSWEEP_ASSIGN_OR_RETURN(int layer, ReadLayer(layer_settings, "layer", num_layers, -1));
  PCSWEEP_ASSIGN_OR_RETURN(TrainedSae trained,
                           TrainOnBenchmark(*runner, train_file, layer, settings,
                                            static_cast<int>(batch), &progress, 0.1, 0.9));
  PCSWEEP_ASSIGN_OR_RETURN(
      TransferSummary heldout,
      SummarizeTransfer(trained.heldout_r2, trained.heldout_fvu, trained.heldout_l0, threshold));
  const std::string sae_dir = (fs::path(ctx.output_dir) / "sae").string();
  PCSWEEP_RETURN_IF_ERROR(trained.sae->Save(
      sae_dir, SaeConfigJson(layer, model_dir, heldout.l0_mean, settings.options)));
  std::map<std::string, double> metrics;
  PutSummary("heldout.", heldout, 0.95, &metrics);
  metrics["sae_train.layer"] = layer;
  metrics["sae_train.width"] = static_cast<double>(trained.sae->d_sae());
  metrics["sae_train.train_prompts"] = static_cast<double>(trained.train_prompts);
  metrics["sae_train.train_positions"] = static_cast<double>(trained.train_positions);
  metrics["sae_train.final_loss"] = trained.report.final_loss;
  metrics["sae_train.final_fvu"] = trained.report.final_reconstruction;
  metrics["sae_train.final_l0"] = trained.report.final_l0;
  metrics["sae_train.seconds"] = trained.report.seconds;
  progress.Report(
      0.95, absl::StrFormat(
                "layer %d: held-out R² %.4f (95%% CI %.4f-%.4f, p(R² > %.2f) = %.2g), L0 %.1f",
                layer, heldout.r2_mean, heldout.r2_ci_low, heldout.r2_ci_high, threshold,
                heldout.p_value, heldout.l0_mean));
  PCSWEEP_RETURN_IF_ERROR(jobs::WriteMetricsAndOutputs(
      ctx.output_dir, metrics,
      {{"sae_dir", sae_dir}, {"layer", absl::StrCat(layer)}, {"model_dir", model_dir}}));
  progress.Report(1.0, "done");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// sae_transfer

namespace {

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

absl::StatusOr<JumpReluSae> LoadSaeFor(PromptRunner& runner, const std::string& sae_dir) {
  PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, JumpReluSae::Load(sae_dir));
  PCSWEEP_RETURN_IF_ERROR(
      sae.CheckDModel(runner.config().text.hidden_size, "the model's hidden_size"));
  return sae.To(runner.engine().device());
}

}  // namespace

absl::Status RunSaeTransferJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  jobs::Progress progress("sae_transfer", /*log_every_report=*/true);
  PCSWEEP_ASSIGN_OR_RETURN(int threads, ConfigureThreads(config));
  PCSWEEP_ASSIGN_OR_RETURN(std::string model_dir, config.RequiredString("model_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::string adapter_dir, config.String("adapter_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::string sae_dir, config.RequiredString("sae_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<PromptSet> sets, ReadPromptSets(config));
  PCSWEEP_ASSIGN_OR_RETURN(double threshold, config.Number("threshold", 0.95, -1e9, 1));
  PCSWEEP_ASSIGN_OR_RETURN(double confidence, config.Number("confidence", 0.95, 0.5, 0.999999));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t max_prompts, config.Integer("max_prompts", 0, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t batch, config.Integer("batch_size", 16, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PromptOptions prompt, ReadPromptOptions(config, "{question}"));
  std::optional<json> layer_raw = config.Raw("layer");
  config.Raw("seed");  // a grid seed changes nothing here
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  progress.Report(0.02, "loading the model and the SAE");
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           PromptRunner::Load(model_dir, adapter_dir, threads, prompt));
  PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, LoadSaeFor(*runner, sae_dir));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  JobSettings layer_settings(layer_raw.has_value() ? json{{"layer", *layer_raw}} : json::object(),
                             "config");
  PCSWEEP_ASSIGN_OR_RETURN(int layer,
                           ReadLayer(layer_settings, "layer", num_layers, sae.ConfigLayer()));

  std::map<std::string, double> metrics;
  json per_prompt = json::array();
  for (size_t s = 0; s < sets.size(); ++s) {
    progress.Report(0.1 + 0.85 * static_cast<double>(s) / sets.size(),
                    absl::StrCat("prompt set ", sets[s].name));
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<std::string> texts,
                             ReadPromptFile(sets[s].path, max_prompts));
    std::vector<PromptInput> prompts;
    for (const std::string& t : texts) prompts.push_back({t, ""});
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<PromptRun> runs,
                             runner->Run(prompts, {layer}, nullptr, static_cast<int>(batch)));
    std::vector<double> r2, fvu, l0;
    for (size_t i = 0; i < runs.size(); ++i) {
      const torch::Tensor& x = runs[i].layers.at(layer);
      if (x.size(0) < 2) {
        return absl::InvalidArgumentError(
            absl::StrCat(sets[s].path, ": prompt ", i + 1, " has no token after BOS"));
      }
      const ReconstructionStats stats = MeasureReconstruction(sae, x.narrow(0, 1, x.size(0) - 1));
      r2.push_back(stats.r2());
      fvu.push_back(stats.fvu());
      l0.push_back(stats.l0);
      per_prompt.push_back({{"set", sets[s].name},
                            {"prompt", i},
                            {"r2", stats.r2()},
                            {"fvu", stats.fvu()},
                            {"l0", stats.l0},
                            {"positions", stats.positions}});
    }
    auto summary = SummarizeTransfer(r2, fvu, l0, threshold, confidence);
    if (!summary.ok())
      return Annotate(summary.status(), absl::StrCat("prompt set '", sets[s].name, "'"));
    PutSummary(sets[s].name + ".", *summary, confidence, &metrics);
    progress.Report(
        0.1 + 0.85 * static_cast<double>(s + 1) / sets.size(),
        absl::StrFormat(
            "%s: %d prompts, R² %.4f (CI %.4f-%.4f), one-sided t-test R² > %.3f: t = %.2f, "
            "p = %.3g; FVU %.4f, L0 %.1f",
            sets[s].name, summary->prompts, summary->r2_mean, summary->r2_ci_low,
            summary->r2_ci_high, threshold, summary->t, summary->p_value, summary->fvu_mean,
            summary->l0_mean));
  }
  metrics["sae_transfer.layer"] = layer;
  metrics["sae_transfer.width"] = static_cast<double>(sae.d_sae());
  std::string lines;
  for (const json& row : per_prompt) lines += row.dump() + "\n";
  PCSWEEP_RETURN_IF_ERROR(
      WriteTextFile((fs::path(ctx.output_dir) / "r2_per_prompt.jsonl").string(), lines));
  PCSWEEP_RETURN_IF_ERROR(jobs::WriteMetricsAndOutputs(
      ctx.output_dir, metrics, {{"sae_dir", sae_dir}, {"layer", absl::StrCat(layer)}}));
  progress.Report(1.0, "done");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// layer_select

namespace {

// The SAE for each analysed layer: from `saes` ({"L": dir} or a pattern with "{layer}"),
// else trained here on the benchmark's train split (the demo model has no published SAEs).
using SaeDirs = std::map<int, std::string>;

absl::StatusOr<SaeDirs> ReadSaeDirs(JobSettings& config, const std::vector<int>& layers) {
  std::map<int, std::string> dirs;
  std::optional<json> raw = config.Raw("saes");
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

absl::StatusOr<std::vector<data::Pair>> LoadPairs(const std::string& path, int64_t max_pairs,
                                                  uint64_t seed, bool keep_inverting) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<data::Question> questions, LoadQuestions(path));
  data::SelectionOptions select;
  select.keep_inverting = keep_inverting;
  select.max_pairs = static_cast<size_t>(max_pairs);
  select.seed = seed;
  std::vector<data::Pair> pairs = data::SelectPairs(questions, select);
  if (pairs.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": no yes/no paraphrase pairs"));
  return pairs;
}

}  // namespace

absl::Status RunLayerSelectJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  jobs::Progress progress("layer_select", /*log_every_report=*/true);
  PCSWEEP_ASSIGN_OR_RETURN(int threads, ConfigureThreads(config));
  PCSWEEP_ASSIGN_OR_RETURN(std::string model_dir, config.RequiredString("model_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::string adapter_dir, config.String("adapter_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::string data_dir, config.String("data_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(
      std::string pairs_file,
      config.String("pairs_file",
                    data_dir.empty() ? "" : (fs::path(data_dir) / "eval_mimic.jsonl").string()));
  if (pairs_file.empty())
    return absl::InvalidArgumentError(
        "config.pairs_file: required when config.data_dir is not given");
  PCSWEEP_ASSIGN_OR_RETURN(
      std::string train_file,
      config.String("train_file",
                    data_dir.empty() ? "" : (fs::path(data_dir) / "train.jsonl").string()));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t max_pairs, config.Integer("max_pairs", 0, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t pairs_seed, config.Integer("pairs_seed", 0, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(bool keep_inverting, config.Bool("keep_inverting", false));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t k, config.Integer("k", 1, 0, 1000));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t top, config.Integer("top", 10, 1, 100000));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t min_active, config.Integer("min_active_pairs", 3, 1, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(std::string position, config.String("position", "mean"));
  if (position != "mean" && position != "last") {
    return absl::InvalidArgumentError(
        absl::StrCat("config.position: '", position, "' is not mean or last"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(int64_t batch, config.Integer("batch_size", 32, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PromptOptions prompt,
                           ReadPromptOptions(config, inputs::PromptOptions().prompt_template));
  const json layers_raw = config.Raw("layers").value_or(json("all"));
  std::optional<json> saes_raw = config.Raw("saes");
  SaeTrainSettings train_settings;
  train_settings.options.steps = 1000;
  train_settings.max_prompts = 300;
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<JobSettings> sae_settings, config.Object("sae"));
  if (sae_settings.has_value()) {
    PCSWEEP_RETURN_IF_ERROR(ReadSaeTrainSettings(*sae_settings, &train_settings));
    PCSWEEP_RETURN_IF_ERROR(sae_settings->CheckAllKeysUsed());
  }
  config.Raw("seed");  // a grid seed changes nothing here
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  progress.Report(0.02, "loading the model and the pairs");
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           PromptRunner::Load(model_dir, adapter_dir, threads, prompt));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<int> layers,
                           engine::ParseLayers(layers_raw, num_layers, "config.layers"));
  JobSettings saes_settings(saes_raw.has_value() ? json{{"saes", *saes_raw}} : json::object(),
                            "config");
  PCSWEEP_ASSIGN_OR_RETURN(SaeDirs sae_dirs, ReadSaeDirs(saes_settings, layers));
  if (sae_dirs.empty() && train_file.empty()) {
    return absl::InvalidArgumentError(
        "config.saes: required when neither config.data_dir nor config.train_file is given");
  }
  PCSWEEP_ASSIGN_OR_RETURN(
      std::vector<data::Pair> pairs,
      LoadPairs(pairs_file, max_pairs, static_cast<uint64_t>(pairs_seed), keep_inverting));

  // SAEs per layer.
  std::map<int, JumpReluSae> saes;
  std::map<std::string, double> metrics;
  for (size_t i = 0; i < layers.size(); ++i) {
    const int layer = layers[i];
    const double from = 0.05 + 0.6 * static_cast<double>(i) / layers.size();
    const double to = 0.05 + 0.6 * static_cast<double>(i + 1) / layers.size();
    if (sae_dirs.count(layer)) {
      PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, LoadSaeFor(*runner, sae_dirs[layer]));
      saes.emplace(layer, std::move(sae));
      continue;
    }
    PCSWEEP_ASSIGN_OR_RETURN(TrainedSae trained,
                             TrainOnBenchmark(*runner, train_file, layer, train_settings,
                                              static_cast<int>(batch), &progress, from, to));
    PCSWEEP_ASSIGN_OR_RETURN(
        TransferSummary heldout,
        SummarizeTransfer(trained.heldout_r2, trained.heldout_fvu, trained.heldout_l0, 0.9));
    const std::string dir =
        (fs::path(ctx.output_dir) / "saes" / absl::StrCat("layer_", layer)).string();
    PCSWEEP_RETURN_IF_ERROR(trained.sae->Save(
        dir, SaeConfigJson(layer, model_dir, heldout.l0_mean, train_settings.options)));
    metrics[absl::StrCat("layer.", layer, ".sae_heldout_r2")] = heldout.r2_mean;
    metrics[absl::StrCat("layer.", layer, ".sae_l0")] = heldout.l0_mean;
    sae_dirs[layer] = dir;
    saes.emplace(layer, std::move(*trained.sae));
  }

  // Distinct prompts of the pairs, one pass over all layers; per prompt and layer the SAE
  // features at the last position or averaged over the positions after BOS.
  progress.Report(
      0.7, absl::StrFormat("features of %zu pairs at %zu layers", pairs.size(), layers.size()));
  std::map<std::pair<std::string, std::string>, size_t> index_of;
  std::vector<PromptInput> prompts;
  std::vector<std::pair<size_t, size_t>> pair_prompts;
  auto add = [&](const std::string& text, const std::string& image) {
    auto [it, inserted] = index_of.emplace(std::make_pair(text, image), prompts.size());
    if (inserted) prompts.push_back({text, image});
    return it->second;
  };
  for (const data::Pair& p : pairs)
    pair_prompts.emplace_back(add(p.original, p.image), add(p.paraphrase, p.image));
  std::map<int, std::vector<torch::Tensor>> features;  // layer -> per prompt [d_sae]
  std::vector<double> margins;
  const size_t chunk = 64;
  for (size_t start = 0; start < prompts.size(); start += chunk) {
    std::vector<PromptInput> part(prompts.begin() + start,
                                  prompts.begin() + std::min(prompts.size(), start + chunk));
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<PromptRun> runs,
                             runner->Run(part, layers, nullptr, static_cast<int>(batch)));
    for (PromptRun& run : runs) {
      margins.push_back(run.margin);
      for (int layer : layers) {
        const torch::Tensor& x = run.layers.at(layer);
        const torch::Tensor f = saes.at(layer).Encode(x.narrow(0, 1, x.size(0) - 1)).cpu();
        features[layer].push_back(position == "last" ? f[f.size(0) - 1].clone() : f.mean(0));
      }
    }
  }
  std::vector<double> delta_margin;
  std::vector<bool> flipped;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double mo = margins[pair_prompts[i].first];
    const double mp =
        pairs[i].op_match ? margins[pair_prompts[i].second] : -margins[pair_prompts[i].second];
    delta_margin.push_back(mp - mo);
    flipped.push_back((mo > 0) != (mp > 0));
  }
  const int64_t flips = std::count(flipped.begin(), flipped.end(), true);

  struct LayerResult {
    int layer = 0;
    std::vector<FeatureScore> top;
  };
  std::vector<LayerResult> results;
  for (int layer : layers) {
    const int64_t width = saes.at(layer).d_sae();
    std::vector<torch::Tensor> deltas;
    for (const auto& [o, p] : pair_prompts)
      deltas.push_back(features[layer][p] - features[layer][o]);
    const torch::Tensor delta = torch::stack(deltas).to(torch::kDouble).contiguous();
    const double* begin = delta.data_ptr<double>();
    auto ranked = RankFeatures(absl::MakeConstSpan(begin, static_cast<size_t>(delta.numel())),
                               width, delta_margin, flipped, static_cast<size_t>(top), min_active);
    if (!ranked.ok()) return Annotate(ranked.status(), absl::StrCat("layer ", layer));
    results.push_back({layer, std::move(*ranked)});
    const LayerResult& r = results.back();
    const std::string prefix = absl::StrCat("layer.", layer, ".");
    if (r.top.empty()) continue;
    metrics[prefix + "feature"] = static_cast<double>(r.top[0].feature);
    metrics[prefix + "score"] = r.top[0].score;
    metrics[prefix + "correlation"] = r.top[0].correlation;
    metrics[prefix + "auroc"] = r.top[0].auroc;
  }
  const LayerResult* best = nullptr;
  for (const LayerResult& r : results) {
    if (!r.top.empty() && (best == nullptr || r.top[0].score > best->top[0].score)) best = &r;
  }
  if (best == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no SAE feature is active on at least ", min_active, " of ", pairs.size(),
                     " pairs at any analysed layer: nothing to rank (lower config.min_active_pairs "
                     "or use more pairs)"));
  }
  const FeatureScore& winner = best->top[0];
  const auto range = LayerRange(best->layer, static_cast<int>(k), num_layers);
  const std::string range_text = LayerRangeText(range);
  std::vector<std::string> top_text;
  for (const LayerResult& r : results) {
    for (const FeatureScore& f : r.top) {
      if (top_text.size() < static_cast<size_t>(top) && &r == best) {
        top_text.push_back(absl::StrFormat("L%d:f%d r=%.3f auroc=%.3f", r.layer, f.feature,
                                           f.correlation, f.auroc));
      }
    }
  }
  const std::string reason = absl::StrFormat(
      "layer %d feature %d: |corr(Δf, Δmargin)| = %.3f over %zu pairs (%d flipped), AUROC flipped "
      "vs stable %.3f "
      "(%s activation); range = layer %d ± %d",
      best->layer, winner.feature, winner.score, pairs.size(), flips, winner.auroc, position,
      best->layer, k);
  metrics["layer_select.layer"] = best->layer;
  metrics["layer_select.feature"] = static_cast<double>(winner.feature);
  metrics["layer_select.score"] = winner.score;
  metrics["layer_select.correlation"] = winner.correlation;
  metrics["layer_select.auroc"] = winner.auroc;
  metrics["layer_select.range_first"] = range.first;
  metrics["layer_select.range_last"] = range.second;
  metrics["layer_select.pairs"] = static_cast<double>(pairs.size());
  metrics["layer_select.flipped_pairs"] = static_cast<double>(flips);
  progress.Report(0.95, reason);
  PCSWEEP_RETURN_IF_ERROR(
      jobs::WriteMetricsAndOutputs(ctx.output_dir, metrics,
                                   {{"range", range_text},
                                    {"layer", absl::StrCat(best->layer)},
                                    {"feature", absl::StrCat(winner.feature)},
                                    {"score", absl::StrFormat("%.4f", winner.score)},
                                    {"auroc", absl::StrFormat("%.4f", winner.auroc)},
                                    {"sae_dir", sae_dirs.at(best->layer)},
                                    {"top_features", absl::StrJoin(top_text, "; ")},
                                    {"reason", reason},
                                    {"model_dir", model_dir}}));
  progress.Report(1.0, "done");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// clamp_eval

namespace {

absl::StatusOr<analysis::ConsistencyMetrics> Score(const EvalSet& set,
                                                   const std::vector<PairMargins>& margins,
                                                   const std::string& variant,
                                                   std::vector<data::ExampleRow>* rows) {
  const size_t first = rows->size();
  for (size_t i = 0; i < set.pairs.size(); ++i) {
    rows->push_back(jobs::ExampleRowOf(set, variant, set.pairs[i], margins[i].original,
                                       margins[i].paraphrase));
  }
  auto m = analysis::ComputeConsistencyMetrics(absl::MakeConstSpan(*rows).subspan(first));
  if (!m.ok())
    return Annotate(m.status(),
                    absl::StrCat("metrics of eval set '", set.name, "' (", variant, ")"));
  return m;
}

}  // namespace

absl::Status RunClampEvalJob(const json& job_in) {
  // `eval` with a `clamp: {sae_dir, layer, feature, scale}` object: its keys join the config.
  json job = job_in;
  if (job.contains("config") && job["config"].is_object() && job["config"].contains("clamp")) {
    const json clamp = job["config"]["clamp"];
    if (!clamp.is_object())
      return absl::InvalidArgumentError("config.clamp: expected {sae_dir, layer, feature, scale}");
    job["config"].erase("clamp");
    for (const auto& [key, value] : clamp.items()) {
      if (job["config"].contains(key)) {
        return absl::InvalidArgumentError(
            absl::StrCat("config.clamp.", key, ": also given outside config.clamp"));
      }
      job["config"][key] = value;
    }
  }
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  jobs::Progress progress("clamp_eval", /*log_every_report=*/true);
  PCSWEEP_ASSIGN_OR_RETURN(int threads, ConfigureThreads(config));
  PCSWEEP_ASSIGN_OR_RETURN(std::string model_dir, config.RequiredString("model_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::string adapter_dir, config.String("adapter_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::string data_dir, config.String("data_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::string sae_dir, config.RequiredString("sae_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<int64_t> feature,
                           IntegerOrString(config, "feature", 0, kBig));
  if (!feature.has_value())
    return absl::InvalidArgumentError("config.feature: required (the SAE feature to clamp)");
  PCSWEEP_ASSIGN_OR_RETURN(double scale, config.Number("scale", 0.0, -1e6, 1e6));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t batch, config.Integer("eval_batch_size", 64, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(std::string variant, config.String("variant", "clamped"));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PromptOptions prompt,
                           ReadPromptOptions(config, inputs::PromptOptions().prompt_template));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<jobs::EvalSetSpec> set_specs,
                           jobs::ReadEvalSets(config, data_dir, /*required=*/true));
  if (set_specs.empty()) return absl::InvalidArgumentError("config.eval_sets: empty list");
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSet> sets, jobs::LoadEvalSets(set_specs));
  std::optional<json> layer_raw = config.Raw("layer");
  config.Raw("seed");
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  progress.Report(0.02, "loading the model and the SAE");
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           PromptRunner::Load(model_dir, adapter_dir, threads, prompt));
  PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, LoadSaeFor(*runner, sae_dir));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  JobSettings layer_settings(layer_raw.has_value() ? json{{"layer", *layer_raw}} : json::object(),
                             "config");
  PCSWEEP_ASSIGN_OR_RETURN(int layer,
                           ReadLayer(layer_settings, "layer", num_layers, sae.ConfigLayer()));
  if (*feature >= sae.d_sae()) {
    return absl::InvalidArgumentError(absl::StrCat("config.feature: ", *feature,
                                                   " is outside the SAE's ", sae.d_sae(),
                                                   " features (", sae_dir, ")"));
  }
  const engine::ResidualHook hook = MakeFeatureClampHook(sae, layer, *feature, scale);

  std::map<std::string, double> metrics;
  std::vector<data::ExampleRow> rows;
  for (size_t i = 0; i < sets.size(); ++i) {
    const EvalSet& set = sets[i];
    progress.Report(0.1 + 0.85 * static_cast<double>(i) / sets.size(),
                    absl::StrCat("evaluating ", set.name));
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<PairMargins> base,
                             runner->ScorePairs(set.pairs, nullptr, static_cast<int>(batch)));
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<PairMargins> clamped,
                             runner->ScorePairs(set.pairs, hook, static_cast<int>(batch)));
    PCSWEEP_ASSIGN_OR_RETURN(analysis::ConsistencyMetrics mb, Score(set, base, "base", &rows));
    PCSWEEP_ASSIGN_OR_RETURN(analysis::ConsistencyMetrics mc, Score(set, clamped, variant, &rows));
    for (const auto& [name, value] : mc.ToMap()) metrics[absl::StrCat(set.name, ".", name)] = value;
    for (const auto& [name, value] : mb.ToMap())
      metrics[absl::StrCat(set.name, ".base.", name)] = value;
    const std::string c = set.name + ".clamp.";
    metrics[c + "flip_rate_change"] = mc.flip_rate - mb.flip_rate;
    if (mb.flip_rate > 0)
      metrics[c + "relative_flip_reduction"] = (mb.flip_rate - mc.flip_rate) / mb.flip_rate;
    metrics[c + "accuracy_original_change"] = mc.accuracy_original - mb.accuracy_original;
    metrics[c + "accuracy_all_change"] = mc.accuracy_all - mb.accuracy_all;
    progress.Report(
        0.1 + 0.85 * static_cast<double>(i + 1) / sets.size(),
        absl::StrFormat(
            "%s: layer %d feature %d × %.2f: flip rate %.3f -> %.3f, accuracy %.3f -> %.3f",
            set.name, layer, *feature, scale, mb.flip_rate, mc.flip_rate, mb.accuracy_all,
            mc.accuracy_all));
  }
  metrics["clamp.layer"] = layer;
  metrics["clamp.feature"] = static_cast<double>(*feature);
  metrics["clamp.scale"] = scale;
  PCSWEEP_RETURN_IF_ERROR(
      data::WriteExamples((fs::path(ctx.output_dir) / "examples.jsonl").string(), rows));
  std::map<std::string, std::string> outputs = {{"model_dir", model_dir},
                                                {"sae_dir", sae_dir},
                                                {"layer", absl::StrCat(layer)},
                                                {"feature", absl::StrCat(*feature)},
                                                {"scale", absl::StrCat(scale)}};
  if (!adapter_dir.empty()) outputs["adapter_dir"] = adapter_dir;
  PCSWEEP_RETURN_IF_ERROR(jobs::WriteMetricsAndOutputs(ctx.output_dir, metrics, outputs));
  progress.Report(1.0, "done");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------

namespace {

// libtorch throws; a job must end with one error line, never an abort.
}  // namespace

absl::Status RegisterSaeJobKinds() {
  PCSWEEP_RETURN_IF_ERROR(jobs::RegisterJobKind("sae_train", Guarded("sae_train", RunSaeTrainJob)));
  PCSWEEP_RETURN_IF_ERROR(
      jobs::RegisterJobKind("sae_transfer", Guarded("sae_transfer", RunSaeTransferJob)));
  PCSWEEP_RETURN_IF_ERROR(
      jobs::RegisterJobKind("layer_select", Guarded("layer_select", RunLayerSelectJob)));
  return jobs::RegisterJobKind("clamp_eval", Guarded("clamp_eval", RunClampEvalJob));
}

absl::Status RunJobFileWithClamp(const std::string& path) {
  std::ifstream in(path);
  json job;
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    job = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  }
  // job["kind"] may be anything (`["eval"]`): only a string is compared (no conversion).
  const bool clamped_eval = job.is_object() && job.contains("kind") && job["kind"].is_string() &&
                            job["kind"].get<std::string>() == "eval" && job.contains("config") &&
                            job["config"].is_object() && job["config"].contains("clamp");
  if (!clamped_eval) return jobs::RunJobFile(path);  // it reports unreadable files itself
  return Guarded("eval", RunClampEvalJob)(job);
}

absl::Status AddSaeReconstructions(const std::string& forward_out,
                                   const std::vector<std::string>& specs) {
  if (specs.empty()) return absl::OkStatus();
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<engine::SafetensorsFile> file,
                           engine::SafetensorsFile::Open(forward_out));
  int last_hidden = -1;
  for (const std::string& name : file->names()) {
    int index = -1;
    if (absl::StartsWith(name, "hidden_states.") && absl::SimpleAtoi(name.substr(14), &index)) {
      last_hidden = std::max(last_hidden, index);
    }
  }
  std::vector<torch::Tensor> keep;  // owns the new tensors until the file is written
  std::vector<engine::TensorToWrite> tensors;
  for (const std::string& name : file->names()) {
    PCSWEEP_ASSIGN_OR_RETURN(engine::TensorView view, file->Get(name));
    tensors.push_back({name, view.dtype, view.shape, view.data, view.nbytes});
  }
  for (const std::string& spec : specs) {
    const std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits(':', 1));
    int layer = -1;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &layer) || layer < 0 || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sae '", spec, "': expected LAYER:DIR, e.g. 2:sae_layer2"));
    }
    if (layer + 1 >= last_hidden) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sae '", spec, "': the output of decoder layer ", layer, " is not in ",
                       forward_out, " before the final norm (hidden_states.1..", last_hidden - 1,
                       " are layers 0..", last_hidden - 2, ")"));
    }
    PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, JumpReluSae::Load(parts[1]));
    const std::string hidden_name = absl::StrCat("hidden_states.", layer + 1);
    PCSWEEP_ASSIGN_OR_RETURN(engine::TensorView view, file->Get(hidden_name));
    if (view.dtype != engine::DType::kF32 || view.shape.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(forward_out, ": tensor '", hidden_name, "' is not F32"));
    }
    PCSWEEP_RETURN_IF_ERROR(sae.CheckDModel(
        view.shape.back(), absl::StrCat(forward_out, " tensor '", hidden_name, "'")));
    try {
      torch::NoGradGuard no_grad;
      const torch::Tensor x =
          torch::from_blob(const_cast<std::byte*>(view.data), view.shape, torch::kFloat);
      keep.push_back(sae.Reconstruct(x).contiguous());
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("--sae '", spec, "': libtorch: ", e.what_without_backtrace()));
    }
    const torch::Tensor& r = keep.back();
    const std::string name = absl::StrCat("sae_recon.", layer);
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [&](const auto& t) { return t.name == name; }),
                  tensors.end());
    tensors.push_back({name, engine::DType::kF32, r.sizes().vec(), r.data_ptr(),
                       static_cast<size_t>(r.nbytes())});
  }
  return engine::WriteSafetensors(forward_out, tensors, file->metadata());
}

}  // namespace pcsweep::sae
