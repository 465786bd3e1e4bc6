// sae_train (sae_jobs.h): an SAE trained at one decoder layer on a benchmark's train split,
// saved in the Gemma Scope 2 layout (outputs.sae_dir), with its held-out R² t-test.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"
#include "experiments/jobs/job_io.h"
#include "experiments/sae/prompt_runner.h"
#include "experiments/sae/sae_job_common.h"
#include "experiments/sae/sae_job_training.h"
#include "experiments/sae/sae_jobs.h"
#include "experiments/sae/sae_stats.h"

namespace pcsweep::sae {
namespace {

namespace fs = std::filesystem;
using jobs::JobSettings;
using nlohmann::json;

// The settings of sae_train after the preamble, in the order they are read.
struct SaeTrainJobSettings {
  std::string train_file;
  inputs::PromptOptions prompt;
  int64_t batch_size = 32;
  double r2_threshold = 0.9;
  SaeTrainSettings sae;
  std::optional<json> layer;  // resolved once the model is loaded
};

absl::StatusOr<SaeTrainJobSettings> ReadSaeTrainJobSettings(SaeJob& job) {
  JobSettings& config = job.config();
  SaeTrainJobSettings s;
  PCSWEEP_ASSIGN_OR_RETURN(s.train_file, config.String("train_file", job.DataFile("train.jsonl")));
  if (s.train_file.empty())
    return absl::InvalidArgumentError(
        "config.train_file: required when config.data_dir is not given");
  PCSWEEP_ASSIGN_OR_RETURN(s.prompt,
                           ReadPromptOptions(config, inputs::PromptOptions().prompt_template));
  PCSWEEP_ASSIGN_OR_RETURN(s.batch_size, config.Integer("batch_size", 32, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(s.r2_threshold, config.Number("r2_threshold", 0.9, -1e9, 1));
  PCSWEEP_RETURN_IF_ERROR(ReadSaeTrainSettings(config, &s.sae));
  s.layer = config.Raw("layer");
  return s;
}

std::map<std::string, double> SaeTrainMetrics(int layer, const TrainedSae& trained,
                                              const TransferSummary& heldout) {
  std::map<std::string, double> metrics;
  PutTransferSummary("heldout.", heldout, 0.95, &metrics);
  metrics["sae_train.layer"] = layer;
  metrics["sae_train.width"] = static_cast<double>(trained.sae->d_sae());
  metrics["sae_train.train_prompts"] = static_cast<double>(trained.train_prompts);
  metrics["sae_train.train_positions"] = static_cast<double>(trained.train_positions);
  metrics["sae_train.final_loss"] = trained.report.final_loss;
  metrics["sae_train.final_fvu"] = trained.report.final_reconstruction;
  metrics["sae_train.final_l0"] = trained.report.final_l0;
  metrics["sae_train.seconds"] = trained.report.seconds;
  return metrics;
}

}  // namespace

absl::Status RunSaeTrainJob(const json& job_json) {
  PCSWEEP_ASSIGN_OR_RETURN(
      SaeJob job,
      OpenSaeJob(job_json, "sae_train", SaeJobFolders{/*adapter_dir=*/false, /*data_dir=*/true}));
  PCSWEEP_ASSIGN_OR_RETURN(SaeTrainJobSettings settings, ReadSaeTrainJobSettings(job));
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<PromptRunner> runner,
                           LoadJobModel(job, settings.prompt, "loading the model"));
  const int num_layers = static_cast<int>(runner->config().text.num_hidden_layers);
  PCSWEEP_ASSIGN_OR_RETURN(int layer, ResolveLayer(settings.layer, num_layers, -1));
  PCSWEEP_ASSIGN_OR_RETURN(
      TrainedSae trained,
      TrainOnBenchmark(*runner, settings.train_file, layer, settings.sae,
                       static_cast<int>(settings.batch_size), &job.progress, 0.1, 0.9));
  PCSWEEP_ASSIGN_OR_RETURN(TransferSummary heldout,
                           SummarizeTransfer(trained.heldout_r2, trained.heldout_fvu,
                                             trained.heldout_l0, settings.r2_threshold));
  const std::string sae_dir = (fs::path(job.output_dir()) / "sae").string();
  PCSWEEP_RETURN_IF_ERROR(trained.sae->Save(
      sae_dir, SaeConfigJson(layer, job.model_dir, heldout.l0_mean, settings.sae.options)));
  job.progress.Report(
      0.95, absl::StrFormat(
                "layer %d: held-out R² %.4f (95%% CI %.4f-%.4f, p(R² > %.2f) = %.2g), L0 %.1f",
                layer, heldout.r2_mean, heldout.r2_ci_low, heldout.r2_ci_high,
                settings.r2_threshold, heldout.p_value, heldout.l0_mean));
  PCSWEEP_RETURN_IF_ERROR(jobs::WriteMetricsAndOutputs(
      job.output_dir(), SaeTrainMetrics(layer, trained, heldout),
      {{"sae_dir", sae_dir}, {"layer", absl::StrCat(layer)}, {"model_dir", job.model_dir}}));
  job.progress.Report(1.0, "done");
  return absl::OkStatus();
}

}  // namespace pcsweep::sae
