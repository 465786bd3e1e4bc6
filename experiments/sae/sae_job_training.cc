#include "experiments/sae/sae_job_training.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"
#include "experiments/data/types.h"
#include "experiments/sae/sae_job_common.h"

namespace pcsweep::sae {
namespace {

using jobs::JobSettings;
using nlohmann::json;

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

}  // namespace

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
  PCSWEEP_ASSIGN_OR_RETURN(o.steps, s.Integer("steps", o.steps, 1, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(o.batch_size, s.Integer("sae_batch_size", o.batch_size, 1, 1 << 24));
  PCSWEEP_ASSIGN_OR_RETURN(o.lr, s.Number("lr", o.lr, 1e-9, 10));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t seed, s.Integer("seed", 0, 0, kMaxCount));
  o.seed = static_cast<uint64_t>(seed);
  PCSWEEP_ASSIGN_OR_RETURN(out->max_prompts,
                           s.Integer("max_prompts", out->max_prompts, 2, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(out->heldout_fraction,
                           s.Number("heldout_fraction", out->heldout_fraction, 0.01, 0.9));
  return absl::OkStatus();
}

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

}  // namespace pcsweep::sae
