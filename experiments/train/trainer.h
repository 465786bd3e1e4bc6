// The training and scoring core of the ML jobs: a ModelSession (a Gemma 3 model with its
// tokenizer, image processor and per-image caches) that turns (question, image) prompts into
// two-way yes/no logits at the first answer position, batched and left-padded; pair scoring
// for evaluation; the optimisation loops of LoRA pair training and of pretraining a small
// model from random initialisation; random initialisation and saving of a whole model as a
// Hugging Face folder. The same code path scores MedGemma-4B and the demo model.
//
// Ownership: a ModelSession shares the model (a libtorch module handle) with its creator and
// borrows the tokenizer, which must outlive it. Thread-safety: not thread-safe (caches and
// the model's train/eval mode); one session per thread.
#ifndef PCSWEEP_EXPERIMENTS_TRAIN_TRAINER_H_
#define PCSWEEP_EXPERIMENTS_TRAIN_TRAINER_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/data/selection.h"
#include "experiments/data/types.h"
#include "experiments/engine/gemma3_config.h"
#include "experiments/engine/model.h"
#include "experiments/engine/prompt_batch.h"
#include "experiments/inputs/image.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/train/losses.h"

namespace pcsweep::train {

// One prompt: a question about an image file.
struct PromptSpec {
  const std::string* question = nullptr;
  const std::string* image = nullptr;
};

class ModelSession {
 public:
  // Possible errors: FailedPrecondition when the tokenizer's image ids or image-token count
  // disagree with the model config (a tokenizer from another model).
  static absl::StatusOr<ModelSession> Create(engine::Gemma3Model model,
                                             const inputs::Gemma3Tokenizer* tokenizer,
                                             const inputs::ImageProcessorConfig& image_config,
                                             inputs::PromptOptions prompt_options = {});

  // How TwoWay runs the model; every mode gives the plain forward's numbers (to float
  // rounding) and gradients.
  struct RunMode {
    // The image features come from the per-image cache (computed once, without gradients);
    // otherwise the vision tower runs on the pixels and takes part in autograd (pretraining).
    bool frozen_vision = true;
    // Each image's prompts run their common prefix once (engine/prompt_batch.h).
    bool shared_prefix = false;
    // > 0: layers below it take no part in training, so their output for each prompt is
    // computed once without gradients, cached, and the forward starts at this layer.
    int frozen_prefix_layer = 0;
    bool checkpoint_layers = false;  // activation checkpointing per decoder layer
  };
  // [N, 2] two-way logits (column 0 yes, 1 no) of the prompts under the caller's grad mode.
  // Possible errors: NotFound / InvalidArgument naming an unreadable image or a prompt whose
  // image-token count is not the model's; Internal with the tokenizer's or libtorch's message.
  absl::StatusOr<torch::Tensor> TwoWay(const std::vector<PromptSpec>& prompts, const RunMode& mode);

  // Whether ScorePairs uses shared-prefix scoring (default on).
  void set_shared_prefix_scoring(bool on) { shared_prefix_scoring_ = on; }
  bool shared_prefix_scoring() const { return shared_prefix_scoring_; }
  // Frozen-prefix cache: prompts held and their bytes. It is bounded (frozen_cache_limit
  // bytes, default 4 GiB); prompts beyond it are recomputed (still without gradients).
  size_t frozen_cache_prompts() const { return frozen_.size(); }
  int64_t frozen_cache_bytes() const { return frozen_bytes_; }
  void set_frozen_cache_limit(int64_t bytes) { frozen_limit_ = bytes; }

  engine::Gemma3Model& model() { return model_; }
  const engine::Gemma3Config& config() const { return model_->config(); }
  int64_t tokens_seen() const { return tokens_seen_; }
  // Drops the cached image features: needed before scoring a model whose vision tower has
  // changed since they were computed (pretraining without freeze_vision).
  void ClearImageFeatures() { features_.clear(); }
  int64_t image_feature_computations() const { return feature_computations_; }

  // Preprocessed pixels of `images` stacked as [N, 3, H, W] (cached per path). Errors: an
  // image that cannot be read or preprocesses to another size than the vision tower's.
  absl::StatusOr<torch::Tensor> PixelBatch(const std::vector<const std::string*>& images);

 private:
  ModelSession() = default;
  absl::StatusOr<const std::vector<int64_t>*> Tokens(const std::string& question);
  absl::StatusOr<const torch::Tensor*> Pixels(const std::string& image);
  absl::Status EnsureFeatures(const std::vector<PromptSpec>& prompts);
  // The stream entering `layer` for each prompt ([len, hidden]), from the cache or computed
  // without gradients (and cached while the cache has room).
  absl::StatusOr<std::vector<torch::Tensor>> FrozenPrefix(
      const std::vector<PromptSpec>& prompts, const std::vector<engine::BatchPrompt>& batch,
      int layer);

  engine::Gemma3Model model_{nullptr};
  const inputs::Gemma3Tokenizer* tokenizer_ = nullptr;
  std::unique_ptr<inputs::Gemma3ImageProcessor> processor_;
  inputs::PromptOptions prompt_options_;
  torch::Tensor answer_rows_;  // yes ids then no ids
  int64_t num_yes_ = 0;
  int64_t pad_id_ = 0;
  std::unordered_map<std::string, std::vector<int64_t>> tokens_;
  std::unordered_map<std::string, torch::Tensor> pixels_;    // [3, H, W]
  std::unordered_map<std::string, torch::Tensor> features_;  // [T, hidden], frozen vision
  int64_t tokens_seen_ = 0;
  int64_t feature_computations_ = 0;
  bool shared_prefix_scoring_ = true;
  // (question, image) -> [len, hidden] entering frozen_layer_.
  std::map<std::pair<std::string, std::string>, torch::Tensor> frozen_;
  int frozen_layer_ = 0;
  int64_t frozen_bytes_ = 0;
  int64_t frozen_limit_ = int64_t{4} << 30;
};

// Margins (logit yes − logit no, logsumexp over the spellings) of both prompts of a pair.
// For an answer-inverting paraphrase (op_match = false) `paraphrase` is negated, i.e. given
// in the original question's answer frame, so that sign agreement means consistency.
struct PairMargins {
  double original = 0;
  double paraphrase = 0;
};

// Scores every pair without gradients, in eval mode; each distinct (text, image) prompt is
// run once. Possible errors: those of TwoWay.
absl::StatusOr<std::vector<PairMargins>> ScorePairs(ModelSession& session,
                                                    const std::vector<data::Pair>& pairs,
                                                    int batch_size);

enum class LrSchedule { kConstant, kLinear, kCosine };
// "constant" | "linear" | "cosine". Possible errors: InvalidArgument naming the value.
absl::StatusOr<LrSchedule> ParseLrSchedule(const std::string& name);
// Learning rate at optimizer step `step` (0-based) of `total`: linear warmup from lr/warmup
// to lr over `warmup` steps, then constant, linear decay to 0, or half-cosine to 0.
double LearningRateAt(int64_t step, int64_t total, int64_t warmup, double lr, LrSchedule schedule);

struct TrainOptions {
  int epochs = 1;
  int batch_size = 8;  // pairs (LoRA) or prompts (pretraining) per micro-batch
  int grad_accum = 1;  // micro-batches per optimizer step
  double lr = 2e-4;
  double weight_decay = 0.0;
  int64_t warmup_steps = 0;
  LrSchedule schedule = LrSchedule::kConstant;
  double max_grad_norm = 0;  // 0 = no clipping
  int64_t max_steps = 0;     // stop after this many optimizer steps (0 = all epochs)
  uint64_t seed = 0;         // dropout and (pretraining) shuffling
  LossOptions loss;
  // Pair training: > 0 runs the layers below it once per prompt (see RunMode); every trained
  // parameter must lie at or above it. Usually the first adapted layer.
  int frozen_prefix_layer = 0;
  bool checkpoint_layers = false;  // activation checkpointing per decoder layer
};

struct StepLog {
  int64_t step = 0;  // 1-based optimizer step
  int64_t total_steps = 0;
  int epoch = 0;
  double loss = 0, ce = 0, consistency = 0;  // means over the step's micro-batches
  double lr = 0;
  double examples_per_s = 0;  // pairs/s (LoRA) or prompts/s (pretraining), so far
  double eta_s = 0;
};
using StepCallback = std::function<void(const StepLog&)>;

// Work done between optimizer steps, e.g. scoring a held-out set for a learning curve: `run`
// is called after every `every`-th step and after the last one, in eval mode and without
// gradients (train mode is restored afterwards). An error from `run` stops training and is
// returned. Its time is left out of the report's seconds and throughput.
struct PeriodicHook {
  int64_t every = 0;  // 0 = never
  std::function<absl::Status(const StepLog&)> run;
};

struct TrainReport {
  int64_t steps = 0;
  int64_t examples = 0;            // pairs or prompts trained on
  int64_t tokens = 0;              // prompt tokens (with padding) through forward
  std::vector<double> epoch_loss;  // mean total loss per epoch
  std::vector<StepLog> log;        // every step
  double seconds = 0;
  double forward_s = 0, backward_s = 0, optimizer_s = 0;
  double periodic_s = 0;  // spent in the PeriodicHook, not counted in `seconds`
};

// LoRA (or any parameters') training on pairs: every epoch takes sampler.Epoch(e) (each
// question with one random paraphrase), micro-batches of batch_size pairs, both prompts of a
// pair in the same forward, AdamW on `parameters`. The model is in train mode while it runs
// (LoRA dropout), eval mode after. Deterministic for a seed at a fixed thread count.
// Possible errors: InvalidArgument for bad options (non-positive sizes, no parameters, no
// pairs, a trained parameter below frozen_prefix_layer); those of TwoWay.
absl::StatusOr<TrainReport> TrainOnPairs(ModelSession& session,
                                         const std::vector<torch::Tensor>& parameters,
                                         const data::EpochSampler& sampler,
                                         const TrainOptions& options,
                                         const StepCallback& on_step = nullptr);

// One pretraining example: a question text about an image with the answer it expects.
struct LabeledPrompt {
  std::string question;
  std::string image;
  data::Answer answer = data::Answer::kYes;
};

// Pretraining from random init: two-way CE at the first answer position on single prompts,
// shuffled per epoch by seed, the vision tower trained too. Possible errors: as TrainOnPairs.
// With `frozen_vision` the image embeddings are computed once per image without gradient
// (leave the vision tower and projector out of `parameters`).
absl::StatusOr<TrainReport> TrainOnPrompts(ModelSession& session,
                                           const std::vector<torch::Tensor>& parameters,
                                           const std::vector<LabeledPrompt>& examples,
                                           const TrainOptions& options,
                                           const StepCallback& on_step = nullptr,
                                           bool frozen_vision = false,
                                           const PeriodicHook& periodic = {});

// What the questions of one image say about its findings: (finding index, 1 present /
// 0 absent) for each finding asked about; findings nobody asked about are not scored.
struct ImageFindingLabels {
  std::string image;
  std::vector<std::pair<int, float>> known;
};

// Whether a Gemma3Model parameter name (as named_parameters() gives it) belongs to the
// vision tower or the multimodal projector: what WarmUpVision trains and freeze_vision freezes.
bool IsVisionParameter(const std::string& name);

struct VisionWarmupOptions {
  int64_t steps = 0;
  int batch_size = 64;  // images per step
  // 1e-3: held-out accuracy 0.685 after 300 steps on 4,000 images, against 0.588 at 3e-3
  // and 0.675 at 5e-4 (synthetic benchmark, clear_subtlety_max 0.2).
  double lr = 1e-3;
  uint64_t seed = 0;
  int num_findings = 0;
  double holdout_fraction = 0.1;  // images kept out of training to measure accuracy
};

struct VisionWarmupReport {
  int64_t steps = 0;
  int64_t train_images = 0, holdout_images = 0;
  double seconds = 0;
  double first_loss = 0, last_loss = 0;  // mean masked BCE of the first / last 10 steps
  double holdout_accuracy = 0;           // over the held-out (image, finding) labels
};

// Trains the vision tower and projector alone, before the language model sees them: a linear
// head with weights per image token predicts which findings an image shows (masked BCE). This is
// how Gemma 3 came to be (a SigLIP encoder pretrained first); a tower trained from scratch
// through the language model gets almost no gradient while the model still reads the answer
// off the wording. The head is discarded afterwards. Errors: no images, an unreadable image.
absl::StatusOr<VisionWarmupReport> WarmUpVision(ModelSession& session,
                                                const std::vector<ImageFindingLabels>& images,
                                                const VisionWarmupOptions& options,
                                                const StepCallback& on_step = nullptr);

// Random initialisation as transformers does for Gemma 3 / SigLIP: normal(0, std) for
// matrices and embeddings, zeros for biases and Gemma's (1 + w) RMSNorm weights, ones for
// SigLIP LayerNorm weights (InitialFillOf). Every base parameter is made trainable.
void InitializeRandomWeights(engine::Gemma3Model& model, uint64_t seed, double std = 0.02);

// config.json in transformers 5.x style (rope_parameters, layer_types) for `config`.
std::string Gemma3ConfigJson(const engine::Gemma3Config& config);

// Writes config.json and model.safetensors (fp32, transformers 5.x names
// `model.language_model.*`, `model.vision_tower.vision_model.*`,
// `model.multi_modal_projector.*`, tied head omitted) into `dir` (created).
// Possible errors: Internal naming the file on I/O failure.
absl::Status SaveModelFolder(engine::Gemma3Model& model, const std::string& dir);

}  // namespace pcsweep::train

#endif  // PCSWEEP_EXPERIMENTS_TRAIN_TRAINER_H_
