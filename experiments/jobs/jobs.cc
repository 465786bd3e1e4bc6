#include "experiments/jobs/jobs.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"
#include "experiments/data/examples_io.h"
#include "experiments/data/loaders.h"
#include "experiments/data/selection.h"
#include "experiments/engine/engine.h"
#include "experiments/inputs/image.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/benchmark_job.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/job_settings.h"
#include "experiments/jobs/train_job_helpers.h"
#include "experiments/train/trainer.h"

namespace pcsweep::jobs {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::map<std::string, JobHandler>& EvalOptions() {
  static auto* options = new std::map<std::string, JobHandler>();
  return *options;
}

}  // namespace

absl::Status RegisterEvalOption(EvalOption option) {
  if (!EvalOptions().emplace(option.key, std::move(option.run)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("eval option '", option.key, "' is already registered"));
  }
  return absl::OkStatus();
}

absl::Status RunEvalJob(const json& job) {
  // A registered option (RegisterEvalOption) named in the config takes the whole job.
  const auto raw_config = job.find("config");  // end() when `job` is not an object
  if (raw_config != job.end() && raw_config->is_object()) {
    for (const auto& [key, run] : EvalOptions()) {
      if (raw_config->contains(key)) return run(job);
    }
  }
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  Progress progress("eval");
  PCSWEEP_ASSIGN_OR_RETURN(int threads, ConfigureThreads(config));
  PCSWEEP_ASSIGN_OR_RETURN(std::string model_dir, config.RequiredString("model_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::string adapter_dir, config.String("adapter_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::string data_dir, config.String("data_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::string variant,
                           config.String("variant", adapter_dir.empty() ? "base" : "adapted"));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t eval_batch, config.Integer("eval_batch_size", 64, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PromptOptions prompt, ReadPromptOptions(config));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSetSpec> specs, ReadEvalSets(config, data_dir, true));
  PCSWEEP_ASSIGN_OR_RETURN(bool shared_prefix, config.Bool("shared_prefix_scoring", true));
  config.Raw("seed");  // a grid seed of an eval cell changes nothing here
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  progress.Report(0.02, "loading the model", 0, true);
  PCSWEEP_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(model_dir, adapter_dir, threads, prompt));
  loaded.session->set_shared_prefix_scoring(shared_prefix);
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSet> sets, LoadEvalSets(specs));
  std::map<std::string, double> metrics;
  std::vector<data::ExampleRow> rows;
  for (size_t i = 0; i < sets.size(); ++i) {
    progress.Report(0.1 + 0.85 * static_cast<double>(i) / static_cast<double>(sets.size()),
                    absl::StrCat("evaluating ", sets[i].name));
    PCSWEEP_RETURN_IF_ERROR(Evaluate(*loaded.session, sets[i], variant, sets[i].name + ".",
                                     static_cast<int>(eval_batch), &rows, &metrics));
  }
  std::map<std::string, std::string> outputs = {{"model_dir", model_dir}};
  if (!adapter_dir.empty()) outputs["adapter_dir"] = adapter_dir;
  PCSWEEP_RETURN_IF_ERROR(WriteResults(ctx.output_dir, metrics, rows, outputs));
  progress.Report(1.0, "done", 0, true);
  return absl::OkStatus();
}

namespace {

// What a train_eval job was asked for: its settings, read and checked in the order the job
// always read them (so the first bad key named stays the same).
struct TrainEvalRequest {
  std::string output_dir;
  int threads = 0;
  std::string model_dir;
  std::string train_file;
  std::string train_format;  // "" = from the extension
  std::string image_root;
  std::vector<EvalSetSpec> specs;
  int64_t eval_batch = 64;
  bool eval_base = true;
  inputs::PromptOptions prompt;
  json layers_raw;  // resolved against the model's layer count once it is loaded
  std::vector<engine::LoraModule> modules;
  engine::LoraSettings lora;
  train::TrainOptions options;
  double warmup_ratio = 0;
  int64_t max_train_questions = 0;
  bool keep_inverting_train = false;
  bool shared_prefix = true;
  bool frozen_prefix = true;
};

// The model, the training data and the eval sets.
absl::Status ReadTrainEvalInputs(JobSettings& config, TrainEvalRequest* r) {
  PCSWEEP_ASSIGN_OR_RETURN(r->model_dir, config.RequiredString("model_dir"));
  PCSWEEP_ASSIGN_OR_RETURN(std::string data_dir, config.String("data_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(
      r->train_file,
      config.String("train_file",
                    data_dir.empty() ? "" : (fs::path(data_dir) / "train.jsonl").string()));
  if (r->train_file.empty())
    return absl::InvalidArgumentError(
        "config.train_file: required when config.data_dir is not given");
  PCSWEEP_ASSIGN_OR_RETURN(r->train_format, config.String("train_format", ""));
  PCSWEEP_ASSIGN_OR_RETURN(r->image_root, config.String("image_root", ""));
  PCSWEEP_ASSIGN_OR_RETURN(r->specs, ReadEvalSets(config, data_dir, true));
  PCSWEEP_ASSIGN_OR_RETURN(r->eval_batch, config.Integer("eval_batch_size", 64, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(r->eval_base, config.Bool("eval_base", true));
  PCSWEEP_ASSIGN_OR_RETURN(r->prompt, ReadPromptOptions(config));
  return absl::OkStatus();
}

// The LoRA adapter: layers, target modules, rank, alpha, dropout.
absl::Status ReadLoraRequest(JobSettings& config, TrainEvalRequest* r) {
  r->layers_raw = config.Raw("layers").value_or(json("all"));
  const json targets_raw = config.Raw("targets").value_or(json("all"));
  PCSWEEP_ASSIGN_OR_RETURN(r->modules, ParseTargetModules(targets_raw, "config.targets"));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t rank, config.Integer("r", 8, 1, 4096));
  r->lora.r = static_cast<int>(rank);
  PCSWEEP_ASSIGN_OR_RETURN(r->lora.lora_alpha, config.Number("alpha", 2.0 * rank, 1e-9, 1e9));
  PCSWEEP_ASSIGN_OR_RETURN(r->lora.lora_dropout, config.Number("dropout", 0.05, 0, 0.99));
  PCSWEEP_ASSIGN_OR_RETURN(r->lora.use_rslora, config.Bool("use_rslora", false));
  return absl::OkStatus();
}

// Optimisation and the loss; then no key may be left unread.
absl::Status ReadTrainingRequest(JobSettings& config, TrainEvalRequest* r) {
  train::TrainOptions defaults;
  defaults.epochs = 3;
  defaults.batch_size = 8;
  defaults.lr = 2e-4;
  PCSWEEP_ASSIGN_OR_RETURN(r->options, ReadTrainOptions(config, defaults));
  PCSWEEP_ASSIGN_OR_RETURN(r->warmup_ratio, config.Number("warmup_ratio", 0, 0, 1));
  PCSWEEP_ASSIGN_OR_RETURN(std::string loss_name, config.String("loss", "combined"));
  auto loss_kind = train::ParseLossKind(loss_name);
  if (!loss_kind.ok()) return Annotate(loss_kind.status(), "config.loss");
  r->options.loss.kind = *loss_kind;
  PCSWEEP_ASSIGN_OR_RETURN(r->options.loss.lambda, config.Number("lambda", 1.0, 0, 1e6));
  PCSWEEP_ASSIGN_OR_RETURN(std::string consistency, config.String("consistency", "symmetric_kl"));
  auto term = train::ParseConsistencyTerm(consistency);
  if (!term.ok()) return Annotate(term.status(), "config.consistency");
  r->options.loss.consistency = *term;
  PCSWEEP_ASSIGN_OR_RETURN(r->max_train_questions,
                           config.Integer("max_train_questions", 0, 0, kUnboundedCount));
  PCSWEEP_ASSIGN_OR_RETURN(r->keep_inverting_train, config.Bool("keep_inverting_train", false));
  PCSWEEP_ASSIGN_OR_RETURN(r->shared_prefix, config.Bool("shared_prefix_scoring", true));
  PCSWEEP_ASSIGN_OR_RETURN(r->frozen_prefix, config.Bool("frozen_prefix", true));
  return config.CheckAllKeysUsed();
}

absl::StatusOr<TrainEvalRequest> ReadTrainEvalRequest(JobContext& ctx) {
  TrainEvalRequest r;
  r.output_dir = ctx.output_dir;
  PCSWEEP_ASSIGN_OR_RETURN(r.threads, ConfigureThreads(ctx.config));
  PCSWEEP_RETURN_IF_ERROR(ReadTrainEvalInputs(ctx.config, &r));
  PCSWEEP_RETURN_IF_ERROR(ReadLoraRequest(ctx.config, &r));
  PCSWEEP_RETURN_IF_ERROR(ReadTrainingRequest(ctx.config, &r));
  return r;
}

// The yes/no training questions (at most max_train_questions) in epoch order.
absl::StatusOr<data::EpochSampler> LoadTrainingQuestions(const TrainEvalRequest& r) {
  data::Format format;
  if (r.train_format.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(format, data::GuessFormat(r.train_file));
  } else {
    auto parsed = data::ParseFormat(r.train_format);
    if (!parsed.ok()) return Annotate(parsed.status(), "config.train_format");
    format = *parsed;
  }
  data::LoadOptions load;
  load.image_root = r.image_root;
  PCSWEEP_ASSIGN_OR_RETURN(data::Dataset train_data, data::LoadDataset(r.train_file, format, load));
  std::vector<data::Question> questions = data::YesNoOnly(train_data.questions);
  if (r.max_train_questions > 0 && questions.size() > static_cast<size_t>(r.max_train_questions)) {
    questions.resize(static_cast<size_t>(r.max_train_questions));
  }
  data::EpochSampler sampler(std::move(questions), r.keep_inverting_train, r.options.seed);
  if (sampler.num_questions() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.train_file, ": no yes/no question with a usable paraphrase"));
  }
  return sampler;
}

// warmup_ratio of the optimizer steps the run will take.
int64_t WarmupSteps(double warmup_ratio, const train::TrainOptions& options, size_t num_questions) {
  const int64_t batches =
      (static_cast<int64_t>(num_questions) + options.batch_size - 1) / options.batch_size;
  int64_t total = (batches + options.grad_accum - 1) / options.grad_accum * options.epochs;
  if (options.max_steps > 0) total = std::min(total, options.max_steps);
  return static_cast<int64_t>(std::lround(warmup_ratio * static_cast<double>(total)));
}

// "train.*" metrics of the adapter and of where training time went.
void PutLoraMetrics(const LoadedModel& loaded, const train::TrainOptions& options,
                    const train::TrainReport& report, size_t num_questions, size_t num_targets,
                    std::map<std::string, double>* metrics) {
  auto& m = *metrics;
  m["train.questions"] = static_cast<double>(num_questions);
  m["train.frozen_prefix_layer"] = options.frozen_prefix_layer;
  m["train.frozen_cache_prompts"] = static_cast<double>(loaded.session->frozen_cache_prompts());
  m["train.lora_targets"] = static_cast<double>(num_targets);
  int64_t trainable = 0;
  for (const auto& p : loaded.engine->LoraParameters()) trainable += p.numel();
  m["train.trainable_parameters"] = static_cast<double>(trainable);
  m["train.forward_share"] = report.seconds > 0 ? report.forward_s / report.seconds : 0;
  m["train.backward_share"] = report.seconds > 0 ? report.backward_s / report.seconds : 0;
  m["train.optimizer_share"] = report.seconds > 0 ? report.optimizer_s / report.seconds : 0;
}

}  // namespace

absl::Status RunTrainEvalJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  Progress progress("train_eval");
  PCSWEEP_ASSIGN_OR_RETURN(TrainEvalRequest r, ReadTrainEvalRequest(ctx));
  train::TrainOptions options = r.options;

  progress.Report(0.01, "loading the model", 0, true);
  PCSWEEP_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(r.model_dir, "", r.threads, r.prompt));
  loaded.session->set_shared_prefix_scoring(r.shared_prefix);
  const int num_layers = static_cast<int>(loaded.engine->config().text.num_hidden_layers);
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<int> layers,
                           engine::ParseLayers(r.layers_raw, num_layers, "config.layers"));
  // Nothing below the lowest adapted layer trains: run it once per prompt.
  if (r.frozen_prefix)
    options.frozen_prefix_layer = *std::min_element(layers.begin(), layers.end());
  std::set<engine::LoraTarget> targets;
  for (int layer : layers) {
    for (engine::LoraModule m : r.modules) targets.insert({layer, m});
  }
  PCSWEEP_ASSIGN_OR_RETURN(const data::EpochSampler sampler, LoadTrainingQuestions(r));
  if (r.warmup_ratio > 0)
    options.warmup_steps = WarmupSteps(r.warmup_ratio, options, sampler.num_questions());
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSet> sets, LoadEvalSets(r.specs));

  std::map<std::string, double> metrics;
  std::vector<data::ExampleRow> rows;
  if (r.eval_base) {
    for (const EvalSet& set : sets) {
      progress.Report(0.03, absl::StrCat("evaluating the base model on ", set.name));
      PCSWEEP_RETURN_IF_ERROR(Evaluate(*loaded.session, set, "base", set.name + ".base.",
                                       static_cast<int>(r.eval_batch), &rows, &metrics));
    }
  }
  PCSWEEP_RETURN_IF_ERROR(loaded.engine->AttachLora(targets, r.lora, options.seed));
  progress.Report(0.1,
                  absl::StrCat("training LoRA r=", r.lora.r, " on ", layers.size(), " layer(s), ",
                               targets.size(), " modules, ", sampler.num_questions(),
                               " questions x ", options.epochs, " epochs"),
                  0, true);
  PCSWEEP_ASSIGN_OR_RETURN(
      train::TrainReport report,
      train::TrainOnPairs(*loaded.session, loaded.engine->LoraParameters(), sampler, options,
                          ProgressCallback(&progress, 0.1, 0.85, "train")));
  PutTrainMetrics(report, &metrics);
  PutLoraMetrics(loaded, options, report, sampler.num_questions(), targets.size(), &metrics);
  for (const EvalSet& set : sets) {
    progress.Report(0.9, absl::StrCat("evaluating the adapted model on ", set.name));
    PCSWEEP_RETURN_IF_ERROR(Evaluate(*loaded.session, set, "adapted", set.name + ".",
                                     static_cast<int>(r.eval_batch), &rows, &metrics));
  }
  const std::string adapter_dir = (fs::path(ctx.output_dir) / "adapter").string();
  PCSWEEP_RETURN_IF_ERROR(loaded.engine->SaveAdapter(adapter_dir));
  PCSWEEP_RETURN_IF_ERROR(WriteResults(ctx.output_dir, metrics, rows,
                                       {{"adapter_dir", adapter_dir}, {"model_dir", r.model_dir}}));
  progress.Report(1.0, "done", 0, true);
  return absl::OkStatus();
}

absl::Status RegisterTrainJobKinds() {
  PCSWEEP_RETURN_IF_ERROR(jobs::RegisterJobKind("pretrain", Guarded("pretrain", RunPretrainJob)));
  PCSWEEP_RETURN_IF_ERROR(
      jobs::RegisterJobKind("benchmark", Guarded("benchmark", RunBenchmarkJob)));
  PCSWEEP_RETURN_IF_ERROR(jobs::RegisterJobKind("eval", Guarded("eval", RunEvalJob)));
  return jobs::RegisterJobKind("train_eval", Guarded("train_eval", RunTrainEvalJob));
}

}  // namespace pcsweep::jobs
