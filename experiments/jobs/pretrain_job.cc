// The `pretrain` job kind (jobs.h): trains a small Gemma 3 model from random weights on the
// synthetic benchmark (or a given data_dir), saves it as a Hugging Face folder and scores it.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/analysis/analysis.h"
#include "common/status/status_macros.h"
#include "experiments/data/loaders.h"
#include "experiments/data/synth.h"
#include "experiments/engine/engine.h"
#include "experiments/inputs/image.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/benchmark_job.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/jobs.h"
#include "experiments/jobs/train_job_helpers.h"
#include "experiments/train/trainer.h"

namespace pcsweep::jobs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

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
    std::vector<data::ExampleRow> rows;
    double ce = 0;
    for (size_t i = 0; i < set->pairs.size(); ++i) {
      const data::Pair& p = set->pairs[i];
      const double sign = p.label == data::Answer::kYes ? 1.0 : -1.0;
      // -log sigmoid(sign * margin), stable for large margins.
      for (double m : {margins[i].original, margins[i].paraphrase})
        ce += std::log1p(std::exp(-std::abs(sign * m))) + std::max(0.0, -sign * m);
      rows.push_back(ExampleRowOf(*set, "curve", p, margins[i].original, margins[i].paraphrase));
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

// What a pretrain job was asked for: its settings, read and checked in the order the job
// always read them (so the first bad key named stays the same).
struct PretrainRequest {
  std::string output_dir;
  int threads = 0;
  std::string data_dir;      // as given; empty: generate the benchmark into data_dir_out
  std::string data_dir_out;  // where the benchmark is read from
  std::string model_dir;     // <output_dir>/model
  data::SynthOptions synth;
  ModelShape shape;
  train::TrainOptions options;
  int64_t init_seed = 0;
  double init_std = 0.02;
  int64_t max_questions = 600;
  int64_t texts_per_question = 0;
  train::VisionWarmupOptions warmup;
  bool freeze_vision = false;
  bool evaluate = true;
  int64_t eval_batch = 64;
  int64_t curve_every = 0;
  std::string curve_file;
  int64_t curve_max_pairs = 200;
  inputs::PromptOptions prompt;
  std::vector<EvalSetSpec> eval_specs;
};

// The data source (data_dir or synth) and the model's shape.
absl::Status ReadPretrainSource(JobSettings& config, PretrainRequest* r) {
  PCSWEEP_ASSIGN_OR_RETURN(r->data_dir, config.String("data_dir", ""));
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<JobSettings> synth, config.Object("synth"));
  if (synth.has_value()) {
    if (!r->data_dir.empty())
      return absl::InvalidArgumentError("config.synth: give either data_dir or synth, not both");
    PCSWEEP_RETURN_IF_ERROR(ApplySynthOptions(*synth, &r->synth));
  } else if (r->data_dir.empty()) {
    return absl::InvalidArgumentError(
        "config.data_dir: required unless config.synth gives generator options");
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::optional<JobSettings> model_settings, config.Object("model"));
  if (model_settings.has_value())
    PCSWEEP_RETURN_IF_ERROR(ReadModelShape(*model_settings, &r->shape));
  return absl::OkStatus();
}

// The optimiser, initialisation, corpus and vision warm-up settings.
absl::Status ReadPretrainTraining(JobSettings& config, PretrainRequest* r) {
  train::TrainOptions defaults;
  // Sized for ~1-2 minutes on one idle core (about 1 s of CPU per step of 32 prompts).
  defaults.epochs = 1;
  defaults.batch_size = 32;
  defaults.lr = 3e-3;
  defaults.warmup_steps = 10;
  defaults.schedule = train::LrSchedule::kCosine;
  defaults.max_grad_norm = 1.0;
  PCSWEEP_ASSIGN_OR_RETURN(r->options, ReadTrainOptions(config, defaults));
  PCSWEEP_ASSIGN_OR_RETURN(
      r->init_seed,
      config.Integer("init_seed", static_cast<int64_t>(r->options.seed), 0, kUnboundedCount));
  PCSWEEP_ASSIGN_OR_RETURN(r->init_std, config.Number("init_std", 0.02, 1e-6, 1));
  PCSWEEP_ASSIGN_OR_RETURN(r->max_questions,
                           config.Integer("max_pretrain_questions", 600, 0, kUnboundedCount));
  // Texts per question (the original first, then paraphrases taken in turn from a rotating
  // start so every paraphrase kind is used); 0 keeps all of them.
  PCSWEEP_ASSIGN_OR_RETURN(r->texts_per_question, config.Integer("texts_per_question", 0, 0, 64));
  train::VisionWarmupOptions& warmup = r->warmup;
  PCSWEEP_ASSIGN_OR_RETURN(warmup.steps,
                           config.Integer("vision_warmup_steps", 0, 0, kUnboundedCount));
  PCSWEEP_ASSIGN_OR_RETURN(warmup.lr, config.Number("vision_warmup_lr", warmup.lr, 1e-7, 1));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t warmup_batch,
                           config.Integer("vision_warmup_batch_size", warmup.batch_size, 1, 4096));
  warmup.batch_size = static_cast<int>(warmup_batch);
  warmup.seed = r->options.seed;
  PCSWEEP_ASSIGN_OR_RETURN(r->freeze_vision, config.Bool("freeze_vision", warmup.steps > 0));
  return absl::OkStatus();
}

// Evaluation, the learning curve and the prompt; then no key may be left unread.
absl::Status ReadPretrainEvaluation(JobSettings& config, PretrainRequest* r) {
  PCSWEEP_ASSIGN_OR_RETURN(r->evaluate, config.Bool("evaluate", true));
  PCSWEEP_ASSIGN_OR_RETURN(r->eval_batch, config.Integer("eval_batch_size", 64, 1, 1 << 20));
  // Learning curve: a held-out pair set scored every `curve_every` optimizer steps.
  PCSWEEP_ASSIGN_OR_RETURN(r->curve_every, config.Integer("curve_every", 0, 0, kUnboundedCount));
  PCSWEEP_ASSIGN_OR_RETURN(r->curve_file, config.String("curve_file", ""));
  PCSWEEP_ASSIGN_OR_RETURN(r->curve_max_pairs,
                           config.Integer("curve_max_pairs", 200, 0, kUnboundedCount));
  PCSWEEP_ASSIGN_OR_RETURN(r->prompt, ReadPromptOptions(config));
  if (r->prompt.prompt_template != inputs::PromptOptions().prompt_template) {
    return absl::InvalidArgumentError(
        "config.prompt_template: pretrain uses the default template (the eval and train_eval jobs "
        "would not know "
        "another one)");
  }
  r->data_dir_out = r->data_dir.empty() ? (fs::path(r->output_dir) / "data").string() : r->data_dir;
  if (r->evaluate) {
    PCSWEEP_ASSIGN_OR_RETURN(r->eval_specs, ReadEvalSets(config, r->data_dir_out, false));
  } else {
    config.Raw("eval_sets");
  }
  if (r->curve_file.empty()) r->curve_file = (fs::path(r->data_dir_out) / "train.jsonl").string();
  return config.CheckAllKeysUsed();
}

absl::StatusOr<PretrainRequest> ReadPretrainRequest(JobContext& ctx) {
  PretrainRequest r;
  r.output_dir = ctx.output_dir;
  r.model_dir = (fs::path(ctx.output_dir) / "model").string();
  PCSWEEP_ASSIGN_OR_RETURN(r.threads, ConfigureThreads(ctx.config));
  PCSWEEP_RETURN_IF_ERROR(ReadPretrainSource(ctx.config, &r));
  PCSWEEP_RETURN_IF_ERROR(ReadPretrainTraining(ctx.config, &r));
  PCSWEEP_RETURN_IF_ERROR(ReadPretrainEvaluation(ctx.config, &r));
  return r;
}

// The model folder before training: the benchmark (generated when asked), a tokenizer
// trained on its corpus, config.json; and what the session needs to read prompts.
struct ModelFolder {
  engine::Gemma3Config config;
  std::unique_ptr<inputs::Gemma3Tokenizer> tokenizer;  // the session points at it
  inputs::ImageProcessorConfig image_config;
};

absl::StatusOr<ModelFolder> PrepareModelFolder(const PretrainRequest& r, Progress* progress) {
  if (r.data_dir.empty()) {
    progress->Report(0.01, "generating the synthetic benchmark", 0, true);
    auto summary = data::GenerateSyntheticBenchmark(r.synth, r.data_dir_out);
    if (!summary.ok()) return Annotate(summary.status(), "generating the synthetic benchmark");
  }
  std::error_code ec;
  fs::create_directories(r.model_dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(r.model_dir, ": cannot create folder: ", ec.message()));
  progress->Report(0.05, "training the tokenizer", 0, true);
  inputs::TokenizerTrainingOptions tok_options;
  tok_options.vocab_size = static_cast<int>(r.shape.vocab_size);
  tok_options.num_threads = std::max(1, r.threads);
  auto trained = inputs::TrainGemmaLikeTokenizer((fs::path(r.data_dir_out) / "corpus.txt").string(),
                                                 r.model_dir, tok_options);
  if (!trained.ok())
    return Annotate(trained.status(), "training the tokenizer (config.model.vocab_size)");
  ModelFolder folder;
  PCSWEEP_ASSIGN_OR_RETURN(folder.config, MakeConfig(r.shape, *trained));
  PCSWEEP_RETURN_IF_ERROR(WriteTextFile((fs::path(r.model_dir) / "config.json").string(),
                                        train::Gemma3ConfigJson(folder.config)));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::Gemma3Tokenizer tokenizer,
                           inputs::Gemma3Tokenizer::Load(r.model_dir));
  folder.tokenizer = std::make_unique<inputs::Gemma3Tokenizer>(std::move(tokenizer));
  PCSWEEP_ASSIGN_OR_RETURN(folder.image_config, inputs::LoadImageProcessorConfig(r.model_dir));
  return folder;
}

// Every text of the pretraining split (originals and paraphrases) with the answer it
// expects, and per image what its questions say about its findings (the vision warm-up's
// labels, in image order).
struct PretrainCorpus {
  std::string path;
  std::vector<train::LabeledPrompt> examples;
  std::vector<train::ImageFindingLabels> image_labels;
  int num_findings = 0;
  int64_t used_questions = 0;
};

absl::StatusOr<PretrainCorpus> LoadPretrainCorpus(const PretrainRequest& r) {
  PretrainCorpus corpus;
  corpus.path = (fs::path(r.data_dir_out) / "pretrain.jsonl").string();
  PCSWEEP_ASSIGN_OR_RETURN(data::Dataset dataset,
                           data::LoadCanonicalJsonl(corpus.path, data::LoadOptions{}));
  std::map<std::string, int> finding_index;
  std::map<std::string, train::ImageFindingLabels> image_labels;
  for (const data::Question& q : dataset.questions) {
    if (!q.is_yes_no()) continue;
    // The vision warm-up sees every image: its steps are cheap and it overfits a few hundred.
    if (r.warmup.steps > 0 && !q.finding.empty()) {
      const int finding =
          finding_index.emplace(q.finding, static_cast<int>(finding_index.size())).first->second;
      train::ImageFindingLabels& labels = image_labels[q.image];
      labels.image = q.image;
      labels.known.emplace_back(finding, q.answer == data::Answer::kYes ? 1.f : 0.f);
    }
    if (r.max_questions > 0 && corpus.used_questions >= r.max_questions) continue;
    corpus.examples.push_back({q.original_question, q.image, q.answer});
    const size_t n = q.paraphrases.size();
    const size_t take =
        r.texts_per_question > 0 ? std::min(n, static_cast<size_t>(r.texts_per_question - 1)) : n;
    for (size_t j = 0; j < take; ++j) {
      const data::Paraphrase& p =
          q.paraphrases[(static_cast<size_t>(corpus.used_questions) + j) % n];
      corpus.examples.push_back({p.text, q.image, p.op_match ? q.answer : data::Invert(q.answer)});
    }
    ++corpus.used_questions;
  }
  if (corpus.examples.empty())
    return absl::InvalidArgumentError(absl::StrCat(corpus.path, ": no yes/no questions"));
  corpus.num_findings = static_cast<int>(finding_index.size());
  for (auto& [image, labels] : image_labels) corpus.image_labels.push_back(std::move(labels));
  return corpus;
}

// Trains the vision tower to tell the findings of each image apart ("vision_warmup.*").
absl::Status WarmUpVisionStage(train::ModelSession& session, const PretrainRequest& r,
                               const PretrainCorpus& corpus, Progress* progress,
                               std::map<std::string, double>* metrics) {
  if (corpus.num_findings == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(corpus.path, ": config.vision_warmup_steps needs questions with a 'finding'"));
  }
  train::VisionWarmupOptions warmup = r.warmup;
  warmup.num_findings = corpus.num_findings;
  progress->Report(0.1, absl::StrCat("vision warm-up on ", corpus.image_labels.size(), " images"),
                   0, true);
  PCSWEEP_ASSIGN_OR_RETURN(
      train::VisionWarmupReport vision,
      train::WarmUpVision(session, corpus.image_labels, warmup,
                          ProgressCallback(progress, 0.1, 0.3, "vision warm-up")));
  (*metrics)["vision_warmup.steps"] = static_cast<double>(vision.steps);
  (*metrics)["vision_warmup.seconds"] = vision.seconds;
  (*metrics)["vision_warmup.first_loss"] = vision.first_loss;
  (*metrics)["vision_warmup.last_loss"] = vision.last_loss;
  (*metrics)["vision_warmup.holdout_accuracy"] = vision.holdout_accuracy;
  (*metrics)["vision_warmup.holdout_images"] = static_cast<double>(vision.holdout_images);
  progress->Report(0.3,
                   absl::StrFormat("vision warm-up: loss %.3f -> %.3f, held-out accuracy %.3f",
                                   vision.first_loss, vision.last_loss, vision.holdout_accuracy),
                   0, true);
  return absl::OkStatus();
}

// What training produced besides the saved folder.
struct PretrainOutcome {
  train::TrainReport report;
  int64_t parameter_count = 0;
};

// Builds the randomly initialised model, warms up its vision tower when asked, trains it on
// the corpus (scoring the learning curve when asked) and saves it into r.model_dir.
absl::StatusOr<PretrainOutcome> TrainAndSave(const PretrainRequest& r, const ModelFolder& folder,
                                             const PretrainCorpus& corpus, Progress* progress,
                                             std::map<std::string, double>* metrics) {
  PretrainOutcome outcome;
  engine::Gemma3Model model(folder.config, torch::TensorOptions().dtype(torch::kFloat));
  train::InitializeRandomWeights(model, static_cast<uint64_t>(r.init_seed), r.init_std);
  PCSWEEP_ASSIGN_OR_RETURN(
      train::ModelSession session,
      train::ModelSession::Create(model, folder.tokenizer.get(), folder.image_config, r.prompt));
  if (r.warmup.steps > 0)
    PCSWEEP_RETURN_IF_ERROR(WarmUpVisionStage(session, r, corpus, progress, metrics));
  std::vector<torch::Tensor> parameters;
  for (const auto& item : model->named_parameters()) {
    outcome.parameter_count += item.value().numel();
    if (!(r.freeze_vision && train::IsVisionParameter(item.key())))
      parameters.push_back(item.value());
  }
  const double from = r.warmup.steps > 0 ? 0.3 : 0.1;
  progress->Report(from, absl::StrCat("pretraining on ", corpus.examples.size(), " prompts"), 0,
                   true);
  train::StepCallback on_step = ProgressCallback(progress, from, 0.85, "pretrain");
  train::PeriodicHook curve;
  std::vector<EvalSet> curve_sets;
  if (r.curve_every > 0) {
    EvalSetSpec spec;
    spec.name = "curve";
    spec.path = r.curve_file;
    spec.max_pairs = r.curve_max_pairs;
    auto loaded = LoadEvalSets({spec});
    if (!loaded.ok()) return Annotate(loaded.status(), "config.curve_file");
    curve_sets = std::move(*loaded);
    auto state = std::make_shared<CurveState>();
    on_step = CountingTrainLoss(std::move(on_step), state);
    curve = CurveHook(r.curve_every, &curve_sets.front(), &session, !r.freeze_vision,
                      static_cast<int>(r.eval_batch), state, progress, from, 0.85, metrics);
  }
  PCSWEEP_ASSIGN_OR_RETURN(outcome.report,
                           train::TrainOnPrompts(session, parameters, corpus.examples, r.options,
                                                 on_step, r.freeze_vision, curve));
  PCSWEEP_RETURN_IF_ERROR(train::SaveModelFolder(model, r.model_dir));
  return outcome;
}

}  // namespace

absl::Status RunPretrainJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  Progress progress("pretrain");
  PCSWEEP_ASSIGN_OR_RETURN(PretrainRequest r, ReadPretrainRequest(ctx));
  PCSWEEP_ASSIGN_OR_RETURN(ModelFolder folder, PrepareModelFolder(r, &progress));
  PCSWEEP_ASSIGN_OR_RETURN(PretrainCorpus corpus, LoadPretrainCorpus(r));
  std::map<std::string, double> metrics;
  PCSWEEP_ASSIGN_OR_RETURN(PretrainOutcome trained,
                           TrainAndSave(r, folder, corpus, &progress, &metrics));
  // A model trained on generated data says which: a later sweep can start from it (job kind
  // `benchmark`) on exactly the benchmark it learnt.
  if (r.data_dir.empty()) PCSWEEP_RETURN_IF_ERROR(WriteBenchmarkFile(r.model_dir, r.data_dir_out));
  PutTrainMetrics(trained.report, &metrics);
  metrics["model.parameters"] = static_cast<double>(trained.parameter_count);
  metrics["pretrain.questions"] = static_cast<double>(corpus.used_questions);
  metrics["pretrain.prompts"] = static_cast<double>(corpus.examples.size());
  std::vector<data::ExampleRow> rows;
  if (r.evaluate && !r.eval_specs.empty()) {
    progress.Report(0.87, "evaluating the saved model", 0, true);
    // Reload from disk: proves the folder loads, and scores exactly what later jobs will use.
    PCSWEEP_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(r.model_dir, "", r.threads, r.prompt));
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<EvalSet> sets, LoadEvalSets(r.eval_specs));
    for (const EvalSet& set : sets) {
      PCSWEEP_RETURN_IF_ERROR(Evaluate(*loaded.session, set, "base", set.name + ".",
                                       static_cast<int>(r.eval_batch), &rows, &metrics));
    }
  }
  PCSWEEP_RETURN_IF_ERROR(WriteResults(ctx.output_dir, metrics, rows,
                                       {{"model_dir", r.model_dir}, {"data_dir", r.data_dir_out}}));
  progress.Report(1.0, absl::StrCat("done: ", r.model_dir), 0, true);
  return absl::OkStatus();
}

}  // namespace pcsweep::jobs
