#include "experiments/jobs/jobs.h"

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
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/analysis/analysis.h"
#include "common/status/status_macros.h"
#include "experiments/data/examples_io.h"
#include "experiments/data/loaders.h"
#include "experiments/data/selection.h"
#include "experiments/data/synth.h"
#include "experiments/engine/engine.h"
#include "experiments/inputs/image.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/benchmark_job.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/job_settings.h"
#include "experiments/train/trainer.h"

namespace pcsweep::jobs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kBig = int64_t{1} << 40;

// ---------------------------------------------------------------------------------------
// Eval sets.

void PutMetrics(const std::string& prefix, const analysis::ConsistencyMetrics& m, bool full,
                std::map<std::string, double>* metrics) {
  for (const auto& [name, value] : m.ToMap()) {
    if (full || name == "flip_rate" || name == "mean_margin_diff" || name == "pairs" ||
        name == "accuracy_all") {
      (*metrics)[prefix + name] = value;
    }
  }
}

// The row the consistency metrics read, for one scored pair.
analysis::ExampleRow AnalysisRow(const data::Pair& p, const train::PairMargins& margins) {
  return {p.question_id,
          p.pair_id,
          p.image,
          p.phenomenon,
          std::string(data::AnswerName(p.label)),
          margins.original,
          margins.paraphrase};
}

// Scores one eval set and appends its rows and metrics ("<prefix><metric>" and
// "<prefix>phenomenon.<name>.<metric>").
absl::Status Evaluate(train::ModelSession& session, const EvalSet& set, const std::string& variant,
                      const std::string& prefix, int batch_size,
                      std::vector<data::ExampleRow>* rows, std::map<std::string, double>* metrics) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<train::PairMargins> margins,
                           train::ScorePairs(session, set.pairs, batch_size));
  std::vector<analysis::ExampleRow> analysis_rows;
  std::map<std::string, std::vector<analysis::ExampleRow>> by_phenomenon;
  for (size_t i = 0; i < set.pairs.size(); ++i) {
    const data::Pair& p = set.pairs[i];
    rows->push_back(ExampleRowOf(set, variant, p, margins[i].original, margins[i].paraphrase));
    const analysis::ExampleRow a = AnalysisRow(p, margins[i]);
    analysis_rows.push_back(a);
    if (!p.phenomenon.empty()) by_phenomenon[p.phenomenon].push_back(a);
  }
  auto computed = analysis::ComputeConsistencyMetrics(analysis_rows);
  if (!computed.ok())
    return Annotate(computed.status(), absl::StrCat("metrics of eval set '", set.name, "'"));
  PutMetrics(prefix, *computed, /*full=*/true, metrics);
  for (const auto& [phenomenon, subset] : by_phenomenon) {
    auto m = analysis::ComputeConsistencyMetrics(subset);
    if (!m.ok())
      return Annotate(m.status(),
                      absl::StrCat("metrics of eval set '", set.name, "', ", phenomenon));
    PutMetrics(absl::StrCat(prefix, "phenomenon.", phenomenon, "."), *m, /*full=*/false, metrics);
  }
  std::fprintf(
      stderr,
      "%s %s: %zu pairs, flip rate %.3f, mean |m_q-m_p| %.3f, accuracy %.3f, yes rate %.3f\n",
      set.name.c_str(), variant.c_str(), set.pairs.size(), computed->flip_rate,
      computed->mean_margin_diff, computed->accuracy_original, computed->yes_rate);
  return absl::OkStatus();
}

absl::StatusOr<train::TrainOptions> ReadTrainOptions(JobSettings& config,
                                                     const train::TrainOptions& defaults) {
  train::TrainOptions o = defaults;
  PCSWEEP_ASSIGN_OR_RETURN(int64_t epochs, config.Integer("epochs", o.epochs, 1, 100000));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t batch, config.Integer("batch_size", o.batch_size, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t accum, config.Integer("grad_accum", o.grad_accum, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(o.lr, config.Number("lr", o.lr, 1e-12, 10));
  PCSWEEP_ASSIGN_OR_RETURN(o.weight_decay, config.Number("weight_decay", o.weight_decay, 0, 10));
  PCSWEEP_ASSIGN_OR_RETURN(o.warmup_steps, config.Integer("warmup_steps", o.warmup_steps, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(
      std::string schedule,
      config.String("schedule", o.schedule == train::LrSchedule::kCosine   ? "cosine"
                                : o.schedule == train::LrSchedule::kLinear ? "linear"
                                                                           : "constant"));
  auto parsed_schedule = train::ParseLrSchedule(schedule);
  if (!parsed_schedule.ok()) return Annotate(parsed_schedule.status(), "config.schedule");
  o.schedule = *parsed_schedule;
  PCSWEEP_ASSIGN_OR_RETURN(o.max_grad_norm,
                           config.Number("max_grad_norm", o.max_grad_norm, 0, 1e9));
  PCSWEEP_ASSIGN_OR_RETURN(o.max_steps, config.Integer("max_steps", o.max_steps, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(o.checkpoint_layers,
                           config.Bool("activation_checkpointing", o.checkpoint_layers));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t seed,
                           config.Integer("seed", static_cast<int64_t>(o.seed), 0, kBig));
  o.epochs = static_cast<int>(epochs);
  o.batch_size = static_cast<int>(batch);
  o.grad_accum = static_cast<int>(accum);
  o.seed = static_cast<uint64_t>(seed);
  return o;
}

void PutTrainMetrics(const train::TrainReport& report, std::map<std::string, double>* metrics) {
  auto& m = *metrics;
  m["train.steps"] = static_cast<double>(report.steps);
  m["train.examples"] = static_cast<double>(report.examples);
  m["train.seconds"] = report.seconds;
  m["train.examples_per_s"] = report.seconds > 0 ? report.examples / report.seconds : 0;
  m["train.tokens_per_s"] = report.seconds > 0 ? report.tokens / report.seconds : 0;
  if (!report.epoch_loss.empty()) {
    m["train.loss_first_epoch"] = report.epoch_loss.front();
    m["train.loss_last_epoch"] = report.epoch_loss.back();
  }
  if (!report.log.empty()) {
    m["train.loss_first_step"] = report.log.front().loss;
    m["train.final_loss"] = report.log.back().loss;
    m["train.final_ce"] = report.log.back().ce;
    m["train.final_consistency"] = report.log.back().consistency;
  }
}

train::StepCallback ProgressCallback(Progress* progress, double from, double to,
                                     const std::string& what) {
  return [=](const train::StepLog& s) {
    const double f = from + (to - from) * static_cast<double>(s.step) /
                                static_cast<double>(std::max<int64_t>(1, s.total_steps));
    progress->Report(
        f,
        absl::StrFormat("%s step %d/%d epoch %d loss %.4f ce %.4f cons %.4f lr %.2e %.1f ex/s",
                        what, s.step, s.total_steps, s.epoch + 1, s.loss, s.ce, s.consistency, s.lr,
                        s.examples_per_s),
        s.eta_s, s.step == s.total_steps);
  };
}

struct LoadedModel {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<inputs::Gemma3Tokenizer> tokenizer;
  std::unique_ptr<train::ModelSession> session;
};

absl::StatusOr<LoadedModel> LoadModel(const std::string& model_dir, const std::string& adapter_dir,
                                      int threads, const inputs::PromptOptions& prompt) {
  LoadedModel loaded;
  engine::EngineOptions options;
  options.model_dir = model_dir;
  options.adapter_dir = adapter_dir;
  options.num_threads = threads;
  PCSWEEP_ASSIGN_OR_RETURN(loaded.engine, engine::Engine::Load(options));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::Gemma3Tokenizer tokenizer,
                           inputs::Gemma3Tokenizer::Load(model_dir));
  loaded.tokenizer = std::make_unique<inputs::Gemma3Tokenizer>(std::move(tokenizer));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::ImageProcessorConfig image_config,
                           inputs::LoadImageProcessorConfig(model_dir));
  auto session = train::ModelSession::Create(loaded.engine->model(), loaded.tokenizer.get(),
                                             image_config, prompt);
  if (!session.ok()) return Annotate(session.status(), model_dir);
  loaded.session = std::make_unique<train::ModelSession>(std::move(*session));
  return loaded;
}

// ---------------------------------------------------------------------------------------
// pretrain

struct ModelShape {
  int64_t hidden = 64, intermediate = 128, layers = 8, heads = 4, kv_heads = 2, head_dim = 16;
  int64_t sliding_window = 512, full_every = 6;
  double query_pre_attn_scalar = 0;  // 0: head_dim, as Gemma 3
  int64_t vision_hidden = 64, vision_intermediate = 128, vision_layers = 2, vision_heads = 2;
  int64_t image_size = 64, patch_size = 8, mm_tokens = 16;
  int64_t vocab_size =
      1000;  // tokenizer request (fewer pieces per prompt than 320: 91 vs 129 tokens)
};

absl::Status ReadModelShape(JobSettings& s, ModelShape* m) {
  for (auto [key, field, lo, hi] :
       std::initializer_list<std::tuple<const char*, int64_t*, int64_t, int64_t>>{
           {"hidden_size", &m->hidden, 8, 8192},
           {"intermediate_size", &m->intermediate, 8, 65536},
           {"num_hidden_layers", &m->layers, 1, 128},
           {"num_attention_heads", &m->heads, 1, 128},
           {"num_key_value_heads", &m->kv_heads, 1, 128},
           {"head_dim", &m->head_dim, 2, 1024},
           {"sliding_window", &m->sliding_window, 1, 1 << 20},
           {"full_attention_every", &m->full_every, 1, 128},
           {"vision_hidden_size", &m->vision_hidden, 8, 8192},
           {"vision_intermediate_size", &m->vision_intermediate, 8, 65536},
           {"vision_layers", &m->vision_layers, 1, 64},
           {"vision_heads", &m->vision_heads, 1, 64},
           {"image_size", &m->image_size, 8, 1024},
           {"patch_size", &m->patch_size, 1, 256},
           {"mm_tokens_per_image", &m->mm_tokens, 1, 4096},
           {"vocab_size", &m->vocab_size, 64, 1 << 20}}) {
    PCSWEEP_ASSIGN_OR_RETURN(*field, s.Integer(key, *field, lo, hi));
  }
  PCSWEEP_ASSIGN_OR_RETURN(m->query_pre_attn_scalar,
                           s.Number("query_pre_attn_scalar", m->query_pre_attn_scalar, 0, 1 << 20));
  return s.CheckAllKeysUsed();
}

// The config.json of the pretrained model, validated by the engine's own parser.
absl::StatusOr<engine::Gemma3Config> MakeConfig(const ModelShape& m,
                                                const inputs::TrainedTokenizer& tok) {
  engine::Gemma3Config c;
  c.text.vocab_size = tok.vocab_size;
  c.text.hidden_size = m.hidden;
  c.text.intermediate_size = m.intermediate;
  c.text.num_hidden_layers = m.layers;
  c.text.num_attention_heads = m.heads;
  c.text.num_key_value_heads = m.kv_heads;
  c.text.head_dim = m.head_dim;
  c.text.query_pre_attn_scalar =
      m.query_pre_attn_scalar > 0 ? m.query_pre_attn_scalar : static_cast<double>(m.head_dim);
  c.text.sliding_window = m.sliding_window;
  c.text.layer_types.clear();
  for (int64_t i = 0; i < m.layers; ++i) {
    c.text.layer_types.push_back((i + 1) % m.full_every == 0 ? engine::LayerType::kFull
                                                             : engine::LayerType::kSliding);
  }
  c.text.pad_token_id = tok.special_ids.pad;
  c.vision.hidden_size = m.vision_hidden;
  c.vision.intermediate_size = m.vision_intermediate;
  c.vision.num_hidden_layers = m.vision_layers;
  c.vision.num_attention_heads = m.vision_heads;
  c.vision.image_size = m.image_size;
  c.vision.patch_size = m.patch_size;
  c.mm_tokens_per_image = m.mm_tokens;
  c.boi_token_index = tok.special_ids.boi;
  c.eoi_token_index = tok.special_ids.eoi;
  c.image_token_index = tok.special_ids.image;
  auto parsed = engine::ParseGemma3Config(train::Gemma3ConfigJson(c), "config.model");
  if (!parsed.ok()) return parsed.status();
  return *parsed;
}

// The learning curve of `curve_every`: after every N optimizer steps, the model (as it is
// then) scores a held-out pair set; metrics `curve.step_<step>.{holdout_accuracy,
// holdout_loss, flip_rate, train_loss}` (step zero-padded so the names sort by step) and
// `curve.{every,points,pairs}`. holdout_loss is the mean two-way CE of both prompts of every
// pair; train_loss the mean training loss of the steps since the previous point.
struct CurveState {
  double train_loss_sum = 0;  // since the previous point
  int64_t train_steps = 0;
  int64_t points = 0;
};

// Wraps `on_step` to add each step's loss to `state`.
train::StepCallback CountingTrainLoss(train::StepCallback on_step,
                                      std::shared_ptr<CurveState> state) {
  return [on_step = std::move(on_step), state](const train::StepLog& log) {
    state->train_loss_sum += log.loss;
    ++state->train_steps;
    if (on_step) on_step(log);
  };
}

train::PeriodicHook CurveHook(int64_t every, const EvalSet* set, train::ModelSession* session,
                              bool vision_changes, int batch_size,
                              std::shared_ptr<CurveState> state, Progress* progress,
                              double progress_from, double progress_to,
                              std::map<std::string, double>* metrics) {
  train::PeriodicHook hook;
  hook.every = every;
  hook.run = [=](const train::StepLog& log) -> absl::Status {
    if (vision_changes) session->ClearImageFeatures();
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<train::PairMargins> margins,
                             train::ScorePairs(*session, set->pairs, batch_size));
    std::vector<analysis::ExampleRow> rows;
    double ce = 0;
    for (size_t i = 0; i < set->pairs.size(); ++i) {
      const data::Pair& p = set->pairs[i];
      const double sign = p.label == data::Answer::kYes ? 1.0 : -1.0;
      // -log sigmoid(sign * margin), stable for large margins.
      for (double m : {margins[i].original, margins[i].paraphrase})
        ce += std::log1p(std::exp(-std::abs(sign * m))) + std::max(0.0, -sign * m);
      rows.push_back(AnalysisRow(p, margins[i]));
    }
    auto computed = analysis::ComputeConsistencyMetrics(rows);
    if (!computed.ok()) return Annotate(computed.status(), "learning curve (config.curve_every)");
    const double train_loss = state->train_steps > 0
                                  ? state->train_loss_sum / static_cast<double>(state->train_steps)
                                  : log.loss;
    state->train_loss_sum = 0;
    state->train_steps = 0;
    ++state->points;
    const int width = static_cast<int>(std::to_string(log.total_steps).size());
    const std::string prefix = absl::StrFormat("curve.step_%0*d.", width, log.step);
    (*metrics)[prefix + "holdout_accuracy"] = computed->accuracy_original;
    (*metrics)[prefix + "holdout_loss"] = ce / (2.0 * static_cast<double>(set->pairs.size()));
    (*metrics)[prefix + "flip_rate"] = computed->flip_rate;
    (*metrics)[prefix + "train_loss"] = train_loss;
    (*metrics)["curve.every"] = static_cast<double>(every);
    (*metrics)["curve.points"] = static_cast<double>(state->points);
    (*metrics)["curve.pairs"] = static_cast<double>(set->pairs.size());
    const double fraction =
        progress_from + (progress_to - progress_from) * static_cast<double>(log.step) /
                            static_cast<double>(std::max<int64_t>(1, log.total_steps));
    progress->Report(
        fraction,
        absl::StrFormat("curve step %d/%d: held-out accuracy %.3f, loss %.4f, "
                        "flip rate %.3f, train loss %.4f",
                        log.step, log.total_steps, computed->accuracy_original,
                        (*metrics)[prefix + "holdout_loss"], computed->flip_rate, train_loss),
        0, true);
    return absl::OkStatus();
  };
  return hook;
}

}  // namespace

absl::Status RunPretrainJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  Progress progress("pretrain");
  PCSWEEP_ASSIGN_OR_RETURN(int threads, ConfigureThreads(config));
  PCSWEEP_ASSIGN_OR_RETURN(std::string data_dir, config.String("data_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<JobSettings> synth, config.Object("synth"));
  data::SynthOptions synth_options;
  if (synth.has_value()) {
    if (!data_dir.empty())
      return absl::InvalidArgumentError("config.synth: give either data_dir or synth, not both");
    PCSWEEP_RETURN_IF_ERROR(ApplySynthOptions(*synth, &synth_options));
  } else if (data_dir.empty()) {
    return absl::InvalidArgumentError(
        "config.data_dir: required unless config.synth gives generator options");
  }
  ModelShape shape;
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<JobSettings> model_settings, config.Object("model"));
  if (model_settings.has_value()) PCSWEEP_RETURN_IF_ERROR(ReadModelShape(*model_settings, &shape));
  train::TrainOptions defaults;
  // Sized for ~1-2 minutes on one idle core (about 1 s of CPU per step of 32 prompts).
  defaults.epochs = 1;
  defaults.batch_size = 32;
  defaults.lr = 3e-3;
  defaults.warmup_steps = 10;
  defaults.schedule = train::LrSchedule::kCosine;
  defaults.max_grad_norm = 1.0;
  PCSWEEP_ASSIGN_OR_RETURN(train::TrainOptions options, ReadTrainOptions(config, defaults));
  PCSWEEP_ASSIGN_OR_RETURN(
      int64_t init_seed, config.Integer("init_seed", static_cast<int64_t>(options.seed), 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(double init_std, config.Number("init_std", 0.02, 1e-6, 1));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t max_questions,
                           config.Integer("max_pretrain_questions", 600, 0, kBig));
  // Texts per question (the original first, then paraphrases taken in turn from a rotating
  // start so every paraphrase kind is used); 0 keeps all of them.
  PCSWEEP_ASSIGN_OR_RETURN(int64_t texts_per_question,
                           config.Integer("texts_per_question", 0, 0, 64));
  train::VisionWarmupOptions warmup;
  PCSWEEP_ASSIGN_OR_RETURN(warmup.steps, config.Integer("vision_warmup_steps", 0, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(warmup.lr, config.Number("vision_warmup_lr", warmup.lr, 1e-7, 1));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t warmup_batch,
                           config.Integer("vision_warmup_batch_size", warmup.batch_size, 1, 4096));
  warmup.batch_size = static_cast<int>(warmup_batch);
  warmup.seed = options.seed;
  PCSWEEP_ASSIGN_OR_RETURN(bool freeze_vision, config.Bool("freeze_vision", warmup.steps > 0));
  PCSWEEP_ASSIGN_OR_RETURN(bool evaluate, config.Bool("evaluate", true));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t eval_batch, config.Integer("eval_batch_size", 64, 1, 1 << 20));
  // Learning curve: a held-out pair set scored every `curve_every` optimizer steps.
  PCSWEEP_ASSIGN_OR_RETURN(int64_t curve_every, config.Integer("curve_every", 0, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(std::string curve_file, config.String("curve_file", ""));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t curve_max_pairs,
                           config.Integer("curve_max_pairs", 200, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PromptOptions prompt, ReadPromptOptions(config));
  if (prompt.prompt_template != inputs::PromptOptions().prompt_template) {
    return absl::InvalidArgumentError(
        "config.prompt_template: pretrain uses the default template (the eval and train_eval jobs "
        "would not know "
        "another one)");
  }
  const std::string data_dir_out =
      data_dir.empty() ? (fs::path(ctx.output_dir) / "data").string() : data_dir;
  std::vector<EvalSetSpec> eval_specs;
  if (evaluate) {
    PCSWEEP_ASSIGN_OR_RETURN(eval_specs, ReadEvalSets(config, data_dir_out, false));
  } else {
    config.Raw("eval_sets");
  }
  if (curve_file.empty()) curve_file = (fs::path(data_dir_out) / "train.jsonl").string();
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  if (data_dir.empty()) {
    progress.Report(0.01, "generating the synthetic benchmark", 0, true);
    auto summary = data::GenerateSyntheticBenchmark(synth_options, data_dir_out);
    if (!summary.ok()) return Annotate(summary.status(), "generating the synthetic benchmark");
  }
  const std::string model_dir = (fs::path(ctx.output_dir) / "model").string();
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(model_dir, ": cannot create folder: ", ec.message()));
  progress.Report(0.05, "training the tokenizer", 0, true);
  inputs::TokenizerTrainingOptions tok_options;
  tok_options.vocab_size = static_cast<int>(shape.vocab_size);
  tok_options.num_threads = std::max(1, threads);
  auto trained = inputs::TrainGemmaLikeTokenizer((fs::path(data_dir_out) / "corpus.txt").string(),
                                                 model_dir, tok_options);
  if (!trained.ok())
    return Annotate(trained.status(), "training the tokenizer (config.model.vocab_size)");
  PCSWEEP_ASSIGN_OR_RETURN(engine::Gemma3Config model_config, MakeConfig(shape, *trained));
  PCSWEEP_RETURN_IF_ERROR(WriteTextFile((fs::path(model_dir) / "config.json").string(),
                                        train::Gemma3ConfigJson(model_config)));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::Gemma3Tokenizer tokenizer,
                           inputs::Gemma3Tokenizer::Load(model_dir));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::ImageProcessorConfig image_config,
                           inputs::LoadImageProcessorConfig(model_dir));

  // Every text of the pretraining split (originals and paraphrases) with the answer it expects.
  const std::string pretrain_path = (fs::path(data_dir_out) / "pretrain.jsonl").string();
  PCSWEEP_ASSIGN_OR_RETURN(data::Dataset dataset,
                           data::LoadCanonicalJsonl(pretrain_path, data::LoadOptions{}));
  std::vector<train::LabeledPrompt> examples;
  // Per image, what its questions say about its findings: the vision warm-up's labels.
  std::map<std::string, int> finding_index;
  std::map<std::string, train::ImageFindingLabels> image_labels;
  int64_t used_questions = 0;
  for (const data::Question& q : dataset.questions) {
    if (!q.is_yes_no()) continue;
    // The vision warm-up sees every image: its steps are cheap and it overfits a few hundred.
    if (warmup.steps > 0 && !q.finding.empty()) {
      const int finding =
          finding_index.emplace(q.finding, static_cast<int>(finding_index.size())).first->second;
      train::ImageFindingLabels& labels = image_labels[q.image];
      labels.image = q.image;
      labels.known.emplace_back(finding, q.answer == data::Answer::kYes ? 1.f : 0.f);
    }
    if (max_questions > 0 && used_questions >= max_questions) continue;
    examples.push_back({q.original_question, q.image, q.answer});
    const size_t n = q.paraphrases.size();
    const size_t take =
        texts_per_question > 0 ? std::min(n, static_cast<size_t>(texts_per_question - 1)) : n;
    for (size_t j = 0; j < take; ++j) {
      const data::Paraphrase& p = q.paraphrases[(static_cast<size_t>(used_questions) + j) % n];
      examples.push_back({p.text, q.image, p.op_match ? q.answer : data::Invert(q.answer)});
    }
    ++used_questions;
  }
  if (examples.empty())
    return absl::InvalidArgumentError(absl::StrCat(pretrain_path, ": no yes/no questions"));

  train::TrainReport report;
  std::map<std::string, double> metrics;
  int64_t parameter_count = 0;
  {
    engine::Gemma3Model model(model_config, torch::TensorOptions().dtype(torch::kFloat));
    train::InitializeRandomWeights(model, static_cast<uint64_t>(init_seed), init_std);
    PCSWEEP_ASSIGN_OR_RETURN(train::ModelSession session,
                             train::ModelSession::Create(model, &tokenizer, image_config, prompt));
    if (warmup.steps > 0) {
      if (finding_index.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            pretrain_path, ": config.vision_warmup_steps needs questions with a 'finding'"));
      }
      std::vector<train::ImageFindingLabels> labelled;
      for (auto& [image, labels] : image_labels) labelled.push_back(std::move(labels));
      warmup.num_findings = static_cast<int>(finding_index.size());
      progress.Report(0.1, absl::StrCat("vision warm-up on ", labelled.size(), " images"), 0, true);
      PCSWEEP_ASSIGN_OR_RETURN(
          train::VisionWarmupReport vision,
          train::WarmUpVision(session, labelled, warmup,
                              ProgressCallback(&progress, 0.1, 0.3, "vision warm-up")));
      metrics["vision_warmup.steps"] = static_cast<double>(vision.steps);
      metrics["vision_warmup.seconds"] = vision.seconds;
      metrics["vision_warmup.first_loss"] = vision.first_loss;
      metrics["vision_warmup.last_loss"] = vision.last_loss;
      metrics["vision_warmup.holdout_accuracy"] = vision.holdout_accuracy;
      metrics["vision_warmup.holdout_images"] = static_cast<double>(vision.holdout_images);
      progress.Report(0.3,
                      absl::StrFormat("vision warm-up: loss %.3f -> %.3f, held-out accuracy %.3f",
                                      vision.first_loss, vision.last_loss, vision.holdout_accuracy),
                      0, true);
    }
    std::vector<torch::Tensor> parameters;
    for (const auto& item : model->named_parameters()) {
      parameter_count += item.value().numel();
      if (!(freeze_vision && train::IsVisionParameter(item.key())))
        parameters.push_back(item.value());
    }
    const double from = warmup.steps > 0 ? 0.3 : 0.1;
    progress.Report(from, absl::StrCat("pretraining on ", examples.size(), " prompts"), 0, true);
    train::StepCallback on_step = ProgressCallback(&progress, from, 0.85, "pretrain");
    train::PeriodicHook curve;
    std::vector<EvalSet> curve_sets;
    if (curve_every > 0) {
      EvalSetSpec spec;
      spec.name = "curve";
      spec.path = curve_file;
      spec.max_pairs = curve_max_pairs;
      auto loaded = LoadEvalSets({spec});
      if (!loaded.ok()) return Annotate(loaded.status(), "config.curve_file");
      curve_sets = std::move(*loaded);
      auto state = std::make_shared<CurveState>();
      on_step = CountingTrainLoss(std::move(on_step), state);
      curve = CurveHook(curve_every, &curve_sets.front(), &session, !freeze_vision,
                        static_cast<int>(eval_batch), state, &progress, from, 0.85, &metrics);
    }
    PCSWEEP_ASSIGN_OR_RETURN(report, train::TrainOnPrompts(session, parameters, examples, options,
                                                           on_step, freeze_vision, curve));
    PCSWEEP_RETURN_IF_ERROR(train::SaveModelFolder(model, model_dir));
  }
  // A model trained on generated data says which: a later sweep can start from it (job kind
  // `benchmark`) on exactly the benchmark it learnt.
  if (data_dir.empty()) PCSWEEP_RETURN_IF_ERROR(WriteBenchmarkFile(model_dir, data_dir_out));
  PutTrainMetrics(report, &metrics);
  metrics["model.parameters"] = static_cast<double>(parameter_count);
  metrics["pretrain.questions"] = static_cast<double>(used_questions);
  metrics["pretrain.prompts"] = static_cast<double>(examples.size());
  std::vector<data::ExampleRow> rows;
  if (evaluate && !eval_specs.empty()) {
    progress.Report(0.87, "evaluating the saved model", 0, true);
    // Reload from disk: proves the folder loads, and scores exactly what later jobs will use.
    PCSWEEP_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(model_dir, "", threads, prompt));
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSet> sets, LoadEvalSets(eval_specs));
    for (const EvalSet& set : sets) {
      PCSWEEP_RETURN_IF_ERROR(Evaluate(*loaded.session, set, "base", set.name + ".",
                                       static_cast<int>(eval_batch), &rows, &metrics));
    }
  }
  PCSWEEP_RETURN_IF_ERROR(WriteResults(ctx.output_dir, metrics, rows,
                                       {{"model_dir", model_dir}, {"data_dir", data_dir_out}}));
  progress.Report(1.0, absl::StrCat("done: ", model_dir), 0, true);
  return absl::OkStatus();
}

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

absl::Status RunTrainEvalJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  Progress progress("train_eval");
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
  PCSWEEP_ASSIGN_OR_RETURN(std::string train_format, config.String("train_format", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::string image_root, config.String("image_root", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSetSpec> specs, ReadEvalSets(config, data_dir, true));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t eval_batch, config.Integer("eval_batch_size", 64, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(bool eval_base, config.Bool("eval_base", true));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PromptOptions prompt, ReadPromptOptions(config));
  // LoRA.
  const json layers_raw = config.Raw("layers").value_or(json("all"));
  const json targets_raw = config.Raw("targets").value_or(json("all"));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<engine::LoraModule> modules,
                           ParseTargetModules(targets_raw, "config.targets"));
  engine::LoraSettings lora;
  PCSWEEP_ASSIGN_OR_RETURN(int64_t r, config.Integer("r", 8, 1, 4096));
  lora.r = static_cast<int>(r);
  PCSWEEP_ASSIGN_OR_RETURN(lora.lora_alpha, config.Number("alpha", 2.0 * r, 1e-9, 1e9));
  PCSWEEP_ASSIGN_OR_RETURN(lora.lora_dropout, config.Number("dropout", 0.05, 0, 0.99));
  PCSWEEP_ASSIGN_OR_RETURN(lora.use_rslora, config.Bool("use_rslora", false));
  // Optimisation and loss.
  train::TrainOptions defaults;
  defaults.epochs = 3;
  defaults.batch_size = 8;
  defaults.lr = 2e-4;
  PCSWEEP_ASSIGN_OR_RETURN(train::TrainOptions options, ReadTrainOptions(config, defaults));
  PCSWEEP_ASSIGN_OR_RETURN(double warmup_ratio, config.Number("warmup_ratio", 0, 0, 1));
  PCSWEEP_ASSIGN_OR_RETURN(std::string loss_name, config.String("loss", "combined"));
  auto loss_kind = train::ParseLossKind(loss_name);
  if (!loss_kind.ok()) return Annotate(loss_kind.status(), "config.loss");
  options.loss.kind = *loss_kind;
  PCSWEEP_ASSIGN_OR_RETURN(options.loss.lambda, config.Number("lambda", 1.0, 0, 1e6));
  PCSWEEP_ASSIGN_OR_RETURN(std::string consistency, config.String("consistency", "symmetric_kl"));
  auto term = train::ParseConsistencyTerm(consistency);
  if (!term.ok()) return Annotate(term.status(), "config.consistency");
  options.loss.consistency = *term;
  PCSWEEP_ASSIGN_OR_RETURN(int64_t max_train_questions,
                           config.Integer("max_train_questions", 0, 0, kBig));
  PCSWEEP_ASSIGN_OR_RETURN(bool keep_inverting_train, config.Bool("keep_inverting_train", false));
  PCSWEEP_ASSIGN_OR_RETURN(bool shared_prefix, config.Bool("shared_prefix_scoring", true));
  PCSWEEP_ASSIGN_OR_RETURN(bool frozen_prefix, config.Bool("frozen_prefix", true));
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  progress.Report(0.01, "loading the model", 0, true);
  PCSWEEP_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(model_dir, "", threads, prompt));
  loaded.session->set_shared_prefix_scoring(shared_prefix);
  const int num_layers = static_cast<int>(loaded.engine->config().text.num_hidden_layers);
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<int> layers,
                           engine::ParseLayers(layers_raw, num_layers, "config.layers"));
  // Nothing below the lowest adapted layer trains: run it once per prompt.
  if (frozen_prefix) options.frozen_prefix_layer = *std::min_element(layers.begin(), layers.end());
  std::set<engine::LoraTarget> targets;
  for (int layer : layers) {
    for (engine::LoraModule m : modules) targets.insert({layer, m});
  }

  // Data.
  data::Format format;
  if (train_format.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(format, data::GuessFormat(train_file));
  } else {
    auto parsed = data::ParseFormat(train_format);
    if (!parsed.ok()) return Annotate(parsed.status(), "config.train_format");
    format = *parsed;
  }
  data::LoadOptions load;
  load.image_root = image_root;
  PCSWEEP_ASSIGN_OR_RETURN(data::Dataset train_data, data::LoadDataset(train_file, format, load));
  std::vector<data::Question> questions = data::YesNoOnly(train_data.questions);
  if (max_train_questions > 0 && questions.size() > static_cast<size_t>(max_train_questions)) {
    questions.resize(static_cast<size_t>(max_train_questions));
  }
  const data::EpochSampler sampler(std::move(questions), keep_inverting_train, options.seed);
  if (sampler.num_questions() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(train_file, ": no yes/no question with a usable paraphrase"));
  }
  if (warmup_ratio > 0) {
    const int64_t batches =
        (static_cast<int64_t>(sampler.num_questions()) + options.batch_size - 1) /
        options.batch_size;
    int64_t total = (batches + options.grad_accum - 1) / options.grad_accum * options.epochs;
    if (options.max_steps > 0) total = std::min(total, options.max_steps);
    options.warmup_steps =
        static_cast<int64_t>(std::lround(warmup_ratio * static_cast<double>(total)));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSet> sets, LoadEvalSets(specs));

  std::map<std::string, double> metrics;
  std::vector<data::ExampleRow> rows;
  if (eval_base) {
    for (const EvalSet& set : sets) {
      progress.Report(0.03, absl::StrCat("evaluating the base model on ", set.name));
      PCSWEEP_RETURN_IF_ERROR(Evaluate(*loaded.session, set, "base", set.name + ".base.",
                                       static_cast<int>(eval_batch), &rows, &metrics));
    }
  }
  PCSWEEP_RETURN_IF_ERROR(loaded.engine->AttachLora(targets, lora, options.seed));
  progress.Report(0.1,
                  absl::StrCat("training LoRA r=", lora.r, " on ", layers.size(), " layer(s), ",
                               targets.size(), " modules, ", sampler.num_questions(),
                               " questions x ", options.epochs, " epochs"),
                  0, true);
  PCSWEEP_ASSIGN_OR_RETURN(
      train::TrainReport report,
      train::TrainOnPairs(*loaded.session, loaded.engine->LoraParameters(), sampler, options,
                          ProgressCallback(&progress, 0.1, 0.85, "train")));
  PutTrainMetrics(report, &metrics);
  metrics["train.questions"] = static_cast<double>(sampler.num_questions());
  metrics["train.frozen_prefix_layer"] = options.frozen_prefix_layer;
  metrics["train.frozen_cache_prompts"] =
      static_cast<double>(loaded.session->frozen_cache_prompts());
  metrics["train.lora_targets"] = static_cast<double>(targets.size());
  int64_t trainable = 0;
  for (const auto& p : loaded.engine->LoraParameters()) trainable += p.numel();
  metrics["train.trainable_parameters"] = static_cast<double>(trainable);
  metrics["train.forward_share"] = report.seconds > 0 ? report.forward_s / report.seconds : 0;
  metrics["train.backward_share"] = report.seconds > 0 ? report.backward_s / report.seconds : 0;
  metrics["train.optimizer_share"] = report.seconds > 0 ? report.optimizer_s / report.seconds : 0;
  for (const EvalSet& set : sets) {
    progress.Report(0.9, absl::StrCat("evaluating the adapted model on ", set.name));
    PCSWEEP_RETURN_IF_ERROR(Evaluate(*loaded.session, set, "adapted", set.name + ".",
                                     static_cast<int>(eval_batch), &rows, &metrics));
  }
  const std::string adapter_dir = (fs::path(ctx.output_dir) / "adapter").string();
  PCSWEEP_RETURN_IF_ERROR(loaded.engine->SaveAdapter(adapter_dir));
  PCSWEEP_RETURN_IF_ERROR(WriteResults(ctx.output_dir, metrics, rows,
                                       {{"adapter_dir", adapter_dir}, {"model_dir", model_dir}}));
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
