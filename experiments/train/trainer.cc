#include "experiments/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fileio/durable_rename.h"
#include "common/status/status_macros.h"
#include "experiments/engine/safetensors.h"
#include "experiments/engine/torch_status.h"
#include "experiments/train/random_checkpoint.h"
#include "nlohmann/json.hpp"

namespace pcsweep::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

using engine::GuardTorch;

int64_t AnswerIndex(data::Answer answer) { return answer == data::Answer::kYes ? 0 : 1; }

// Fisher-Yates with our own draws: std::shuffle's algorithm is implementation-defined.
void ShuffleIndices(std::vector<size_t>& indices, std::mt19937_64& rng) {
  for (size_t i = indices.size(); i > 1; --i) std::swap(indices[i - 1], indices[rng() % i]);
}

}  // namespace

absl::StatusOr<ModelSession> ModelSession::Create(engine::Gemma3Model model,
                                                  const inputs::Gemma3Tokenizer* tokenizer,
                                                  const inputs::ImageProcessorConfig& image_config,
                                                  inputs::PromptOptions prompt_options) {
  const engine::Gemma3Config& config = model->config();
  const auto& special = tokenizer->special_ids();
  if (special.image != config.image_token_index ||
      tokenizer->mm_tokens_per_image() != config.mm_tokens_per_image) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tokenizer (image token ", special.image, ", ", tokenizer->mm_tokens_per_image(),
        " per image) does not match the model config (image_token_index ", config.image_token_index,
        ", mm_tokens_per_image ", config.mm_tokens_per_image, ")"));
  }
  const auto& answers = tokenizer->answer_tokens();
  std::vector<int64_t> rows;
  for (int64_t id : answers.yes_ids) rows.push_back(id);
  for (int64_t id : answers.no_ids) rows.push_back(id);
  for (int64_t id : rows) {
    if (id < 0 || id >= config.text.vocab_size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "yes/no token id ", id, " is outside the model vocabulary of ", config.text.vocab_size));
    }
  }
  ModelSession session;
  session.model_ = model;
  session.tokenizer_ = tokenizer;
  session.processor_ = std::make_unique<inputs::Gemma3ImageProcessor>(image_config);
  session.prompt_options_ = std::move(prompt_options);
  session.num_yes_ = static_cast<int64_t>(answers.yes_ids.size());
  session.answer_rows_ = torch::tensor(rows, torch::kLong);
  session.pad_id_ = special.pad;
  return session;
}

absl::StatusOr<const std::vector<int64_t>*> ModelSession::Tokens(const std::string& question) {
  auto it = tokens_.find(question);
  if (it != tokens_.end()) return &it->second;
  PCSWEEP_ASSIGN_OR_RETURN(inputs::TokenizedPrompt prompt,
                           tokenizer_->BuildPrompt(question, prompt_options_));
  return &tokens_.emplace(question, std::move(prompt.input_ids)).first->second;
}

absl::StatusOr<const torch::Tensor*> ModelSession::Pixels(const std::string& image) {
  auto it = pixels_.find(image);
  if (it != pixels_.end()) return &it->second;
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PixelValues pv, processor_->PreprocessFile(image));
  torch::Tensor t =
      torch::from_blob(pv.data.data(), {pv.channels, pv.height, pv.width}, torch::kFloat).clone();
  const auto& vision = model_->config().vision;
  if (pv.height != vision.image_size || pv.width != vision.image_size) {
    return absl::InvalidArgumentError(absl::StrCat(image, ": preprocessed to ", pv.height, "x",
                                                   pv.width, " but the vision tower expects ",
                                                   vision.image_size));
  }
  return &pixels_.emplace(image, std::move(t)).first->second;
}

absl::StatusOr<torch::Tensor> ModelSession::PixelBatch(
    const std::vector<const std::string*>& images) {
  std::vector<torch::Tensor> pixels;
  pixels.reserve(images.size());
  for (const std::string* image : images) {
    PCSWEEP_ASSIGN_OR_RETURN(const torch::Tensor* px, Pixels(*image));
    pixels.push_back(*px);
  }
  if (pixels.empty()) return absl::InvalidArgumentError("no images");
  return torch::stack(pixels);
}

absl::Status ModelSession::EnsureFeatures(const std::vector<PromptSpec>& prompts) {
  std::vector<std::string> missing;
  for (const PromptSpec& p : prompts) {
    if (!features_.count(*p.image) &&
        std::find(missing.begin(), missing.end(), *p.image) == missing.end()) {
      missing.push_back(*p.image);
    }
  }
  if (missing.empty()) return absl::OkStatus();
  std::vector<torch::Tensor> pixels;
  for (const std::string& image : missing) {
    PCSWEEP_ASSIGN_OR_RETURN(const torch::Tensor* px, Pixels(image));
    pixels.push_back(*px);
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor feats = model_->ImageFeatures(torch::stack(pixels));
  for (size_t i = 0; i < missing.size(); ++i)
    features_[missing[i]] = feats[static_cast<int64_t>(i)].clone();
  feature_computations_ += static_cast<int64_t>(missing.size());
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> ModelSession::TwoWay(const std::vector<PromptSpec>& prompts,
                                                   const RunMode& mode) {
  return GuardTorch("forward", [&]() -> absl::StatusOr<torch::Tensor> {
    if (prompts.empty()) return absl::InvalidArgumentError("no prompts");
    const engine::Gemma3Config& config = model_->config();
    const int64_t n = static_cast<int64_t>(prompts.size());
    std::vector<engine::BatchPrompt> batch(prompts.size());
    int64_t length = 0;
    for (int64_t i = 0; i < n; ++i) {
      PCSWEEP_ASSIGN_OR_RETURN(const std::vector<int64_t>* t, Tokens(*prompts[i].question));
      const int64_t image_tokens = std::count(t->begin(), t->end(), config.image_token_index);
      if (image_tokens != config.mm_tokens_per_image) {
        return absl::InvalidArgumentError(absl::StrCat("prompt '", *prompts[i].question, "' holds ",
                                                       image_tokens, " image tokens, expected ",
                                                       config.mm_tokens_per_image));
      }
      batch[i].token_ids = t;
      batch[i].image_key = *prompts[i].image;
      length = std::max<int64_t>(length, static_cast<int64_t>(t->size()));
    }
    // Counted as one left-padded batch, whatever the mode, so tokens/s stay comparable.
    tokens_seen_ += n * length;
    if (mode.frozen_vision) {
      PCSWEEP_RETURN_IF_ERROR(EnsureFeatures(prompts));
      for (int64_t i = 0; i < n; ++i) batch[i].image_features = features_.at(*prompts[i].image);
    } else {  // the vision tower trains: its features take part in autograd
      std::vector<const std::string*> images;
      for (const PromptSpec& p : prompts) images.push_back(p.image);
      PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor pixels, PixelBatch(images));
      const torch::Tensor feats = model_->ImageFeatures(pixels);
      for (int64_t i = 0; i < n; ++i) batch[i].image_features = feats[i];
    }
    if (mode.frozen_prefix_layer > 0) {
      PCSWEEP_ASSIGN_OR_RETURN(std::vector<torch::Tensor> hidden,
                               FrozenPrefix(prompts, batch, mode.frozen_prefix_layer));
      for (int64_t i = 0; i < n; ++i) batch[i].hidden_input = hidden[i];
    }
    engine::LastPositionOptions lo;
    lo.vocab_rows = answer_rows_;
    lo.pad_id = pad_id_;
    lo.shared_prefix = mode.shared_prefix;
    lo.start_layer = mode.frozen_prefix_layer;
    lo.checkpoint_layers = mode.checkpoint_layers;
    return TwoWayLogits(engine::LastPositionLogits(*model_, batch, lo).logits, num_yes_);
  });
}

absl::StatusOr<std::vector<torch::Tensor>> ModelSession::FrozenPrefix(
    const std::vector<PromptSpec>& prompts, const std::vector<engine::BatchPrompt>& batch,
    int layer) {
  if (layer >= model_->config().text.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat("frozen prefix layer ", layer,
                                                   " is not below the model's ",
                                                   model_->config().text.num_hidden_layers));
  }
  if (layer != frozen_layer_) {
    frozen_.clear();
    frozen_bytes_ = 0;
    frozen_layer_ = layer;
  }
  std::vector<torch::Tensor> out(prompts.size());
  std::vector<engine::BatchPrompt> missing;
  std::vector<size_t> missing_at;
  std::map<std::pair<std::string, std::string>, size_t> first_missing;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto key = std::make_pair(*prompts[i].question, *prompts[i].image);
    auto it = frozen_.find(key);
    if (it != frozen_.end()) {
      out[i] = it->second;
    } else if (first_missing.emplace(key, missing.size()).second) {
      missing.push_back(batch[i]);
      missing_at.push_back(i);
    }
  }
  if (!missing.empty()) {
    const std::vector<torch::Tensor> computed =
        engine::StreamEnteringLayer(*model_, missing, layer, pad_id_);
    for (size_t m = 0; m < missing.size(); ++m) {
      const torch::Tensor& h = computed[m];
      const auto key =
          std::make_pair(*prompts[missing_at[m]].question, *prompts[missing_at[m]].image);
      const int64_t bytes = h.numel() * static_cast<int64_t>(h.element_size());
      if (frozen_bytes_ + bytes <= frozen_limit_) {
        frozen_.emplace(key, h);
        frozen_bytes_ += bytes;
      }
      out[missing_at[m]] = h;
    }
    for (size_t i = 0; i < prompts.size(); ++i) {  // repeats of a prompt missing above
      if (!out[i].defined())
        out[i] = out[missing_at[first_missing.at({*prompts[i].question, *prompts[i].image})]];
    }
  }
  return out;
}

absl::StatusOr<std::vector<PairMargins>> ScorePairs(ModelSession& session,
                                                    const std::vector<data::Pair>& pairs,
                                                    int batch_size) {
  if (batch_size <= 0) return absl::InvalidArgumentError("batch_size must be positive");
  // Distinct prompts: an original shared by several pairs runs once.
  std::map<std::pair<std::string, std::string>, size_t> index_of;
  std::vector<PromptSpec> prompts;
  std::vector<std::pair<size_t, size_t>> pair_prompts;
  auto add = [&](const std::string& text, const std::string& image) {
    auto [it, inserted] = index_of.emplace(std::make_pair(text, image), prompts.size());
    if (inserted) prompts.push_back({&it->first.first, &it->first.second});
    return it->second;
  };
  for (const data::Pair& p : pairs)
    pair_prompts.emplace_back(add(p.original, p.image), add(p.paraphrase, p.image));

  // With a shared prefix, one image's prompts go into the same batch where they can.
  std::vector<size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), 0);
  ModelSession::RunMode mode;
  mode.shared_prefix = session.shared_prefix_scoring();
  if (mode.shared_prefix) {
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return *prompts[a].image < *prompts[b].image; });
  }
  std::vector<double> margins(prompts.size());
  torch::NoGradGuard no_grad;
  session.model()->eval();
  for (size_t start = 0; start < order.size(); start += batch_size) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
    std::vector<PromptSpec> chunk;
    for (size_t i = start; i < end; ++i) chunk.push_back(prompts[order[i]]);
    PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor z, session.TwoWay(chunk, mode));
    const torch::Tensor m = (z.select(1, 0) - z.select(1, 1)).to(torch::kDouble).contiguous();
    for (size_t i = start; i < end; ++i)
      margins[order[i]] = m[static_cast<int64_t>(i - start)].item<double>();
  }
  std::vector<PairMargins> out;
  out.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double mp = margins[pair_prompts[i].second];
    out.push_back({margins[pair_prompts[i].first], pairs[i].op_match ? mp : -mp});
  }
  return out;
}

absl::StatusOr<LrSchedule> ParseLrSchedule(const std::string& name) {
  if (name == "constant") return LrSchedule::kConstant;
  if (name == "linear") return LrSchedule::kLinear;
  if (name == "cosine") return LrSchedule::kCosine;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown schedule '", name, "' (constant, linear, cosine)"));
}

double LearningRateAt(int64_t step, int64_t total, int64_t warmup, double lr, LrSchedule schedule) {
  if (warmup > 0 && step < warmup)
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (schedule == LrSchedule::kConstant) return lr;
  const int64_t span = std::max<int64_t>(1, total - warmup);
  const double progress =
      std::clamp(static_cast<double>(step - warmup) / static_cast<double>(span), 0.0, 1.0);
  if (schedule == LrSchedule::kLinear) return lr * (1.0 - progress);
  return lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

namespace {

absl::Status ValidateTrainOptions(const TrainOptions& o,
                                  const std::vector<torch::Tensor>& parameters) {
  if (o.epochs <= 0) return absl::InvalidArgumentError("epochs must be positive");
  if (o.batch_size <= 0) return absl::InvalidArgumentError("batch_size must be positive");
  if (o.grad_accum <= 0) return absl::InvalidArgumentError("grad_accum must be positive");
  if (!(o.lr > 0)) return absl::InvalidArgumentError("lr must be positive");
  if (parameters.empty()) return absl::InvalidArgumentError("no trainable parameters");
  return absl::OkStatus();
}

// Frozen-prefix training skips the layers below `layer`: refuse if any trained parameter
// lives there (embeddings, vision tower, projector, a lower decoder layer).
absl::Status CheckNothingTrainsBelow(engine::Gemma3Model& model,
                                     const std::vector<torch::Tensor>& parameters, int layer) {
  if (layer <= 0) return absl::OkStatus();
  std::set<const void*> trained;
  for (const torch::Tensor& p : parameters) trained.insert(p.unsafeGetTensorImpl());
  const std::string layers_prefix = "language_model.model.layers.";
  for (const auto& item : model->named_parameters()) {
    if (!trained.count(item.value().unsafeGetTensorImpl())) continue;
    const std::string& name = item.key();
    bool below = !absl::StartsWith(name, layers_prefix) &&
                 !absl::StartsWith(name, "language_model.model.norm");
    if (absl::StartsWith(name, layers_prefix)) {
      below = std::stoi(name.substr(layers_prefix.size())) < layer;
    }
    if (below) {
      return absl::InvalidArgumentError(absl::StrCat("frozen_prefix_layer ", layer, ": parameter ",
                                                     name, " lies below it and is being trained"));
    }
  }
  return absl::OkStatus();
}

// The loop shared by pair training and pretraining. `micro_batches(epoch)` lists the
// micro-batches of an epoch; `loss_of(batch)` runs the forward and returns the loss.
template <typename Batch>
absl::StatusOr<TrainReport> RunTraining(
    ModelSession& session, const std::vector<torch::Tensor>& parameters,
    const TrainOptions& options, const std::function<std::vector<Batch>(int)>& micro_batches,
    const std::function<absl::StatusOr<PairLoss>(const Batch&)>& loss_of,
    const std::function<int64_t(const Batch&)>& examples_in, const StepCallback& on_step,
    const PeriodicHook& periodic = {}) {
  PCSWEEP_RETURN_IF_ERROR(ValidateTrainOptions(options, parameters));
  return GuardTorch("training", [&]() -> absl::StatusOr<TrainReport> {
    torch::manual_seed(options.seed);
    std::vector<Batch> first_epoch = micro_batches(0);
    const int64_t per_epoch_batches = static_cast<int64_t>(first_epoch.size());
    if (per_epoch_batches == 0) return absl::InvalidArgumentError("no training examples");
    const int64_t steps_per_epoch =
        (per_epoch_batches + options.grad_accum - 1) / options.grad_accum;
    int64_t total_steps = steps_per_epoch * options.epochs;
    if (options.max_steps > 0) total_steps = std::min(total_steps, options.max_steps);

    torch::optim::AdamW optimizer(
        parameters, torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
    TrainReport report;
    const auto start = Clock::now();
    const int64_t tokens_before = session.tokens_seen();
    session.model()->train();
    int64_t step = 0;
    for (int epoch = 0; epoch < options.epochs && step < total_steps; ++epoch) {
      const std::vector<Batch> batches = epoch == 0 ? std::move(first_epoch) : micro_batches(epoch);
      double epoch_loss_sum = 0;
      int64_t epoch_batches = 0;
      for (size_t first = 0; first < batches.size() && step < total_steps;
           first += options.grad_accum) {
        const size_t last =
            std::min(batches.size(), first + static_cast<size_t>(options.grad_accum));
        const double lr =
            LearningRateAt(step, total_steps, options.warmup_steps, options.lr, options.schedule);
        for (auto& group : optimizer.param_groups())
          static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
        optimizer.zero_grad();
        StepLog log;
        for (size_t b = first; b < last; ++b) {
          auto t0 = Clock::now();
          PCSWEEP_ASSIGN_OR_RETURN(PairLoss loss, loss_of(batches[b]));
          report.forward_s += SecondsSince(t0);
          t0 = Clock::now();
          (loss.total / static_cast<double>(last - first)).backward();
          report.backward_s += SecondsSince(t0);
          log.loss += loss.total.item<double>() / static_cast<double>(last - first);
          log.ce += loss.ce.item<double>() / static_cast<double>(last - first);
          log.consistency += loss.consistency.item<double>() / static_cast<double>(last - first);
          report.examples += examples_in(batches[b]);
          epoch_loss_sum += loss.total.item<double>();
          ++epoch_batches;
        }
        if (!std::isfinite(log.loss)) {
          session.model()->eval();
          return absl::InternalError(absl::StrCat("loss became ", log.loss, " at step ", step + 1,
                                                  " (lr ", lr,
                                                  "): lower lr or enable max_grad_norm"));
        }
        auto t0 = Clock::now();
        if (options.max_grad_norm > 0)
          torch::nn::utils::clip_grad_norm_(parameters, options.max_grad_norm);
        optimizer.step();
        report.optimizer_s += SecondsSince(t0);
        ++step;
        const double elapsed = SecondsSince(start) - report.periodic_s;
        log.step = step;
        log.total_steps = total_steps;
        log.epoch = epoch;
        log.lr = lr;
        log.examples_per_s = elapsed > 0 ? static_cast<double>(report.examples) / elapsed : 0;
        log.eta_s = elapsed / static_cast<double>(step) * static_cast<double>(total_steps - step);
        report.log.push_back(log);
        if (on_step) on_step(log);
        if (periodic.every > 0 && periodic.run &&
            (step % periodic.every == 0 || step == total_steps)) {
          const auto hook_start = Clock::now();
          session.model()->eval();
          absl::Status status;
          {
            torch::NoGradGuard no_grad;
            status = periodic.run(log);
          }
          session.model()->train();
          report.periodic_s += SecondsSince(hook_start);
          if (!status.ok()) {
            session.model()->eval();
            return status;
          }
        }
      }
      report.epoch_loss.push_back(
          epoch_batches > 0 ? epoch_loss_sum / static_cast<double>(epoch_batches) : 0);
    }
    session.model()->eval();
    report.steps = step;
    report.seconds = SecondsSince(start) - report.periodic_s;
    report.tokens = session.tokens_seen() - tokens_before;
    return report;
  });
}

}  // namespace

absl::StatusOr<TrainReport> TrainOnPairs(ModelSession& session,
                                         const std::vector<torch::Tensor>& parameters,
                                         const data::EpochSampler& sampler,
                                         const TrainOptions& options, const StepCallback& on_step) {
  using Batch = std::vector<data::Pair>;
  PCSWEEP_RETURN_IF_ERROR(
      CheckNothingTrainsBelow(session.model(), parameters, options.frozen_prefix_layer));
  ModelSession::RunMode mode;
  mode.frozen_prefix_layer = options.frozen_prefix_layer;
  mode.checkpoint_layers = options.checkpoint_layers;
  std::function<std::vector<Batch>(int)> micro_batches = [&](int epoch) {
    const std::vector<data::Pair> pairs = sampler.Epoch(epoch);
    std::vector<Batch> batches;
    for (size_t i = 0; i < pairs.size(); i += options.batch_size) {
      batches.emplace_back(pairs.begin() + i,
                           pairs.begin() + std::min(pairs.size(), i + options.batch_size));
    }
    return batches;
  };
  std::function<absl::StatusOr<PairLoss>(const Batch&)> loss_of =
      [&](const Batch& batch) -> absl::StatusOr<PairLoss> {
    // Originals then paraphrases in one forward: one padded batch, one pass through the model.
    std::vector<PromptSpec> prompts;
    std::vector<int64_t> labels;
    for (const data::Pair& p : batch) {
      prompts.push_back({&p.original, &p.image});
      labels.push_back(AnswerIndex(p.label));
    }
    for (const data::Pair& p : batch) prompts.push_back({&p.paraphrase, &p.image});
    PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor z, session.TwoWay(prompts, mode));
    const int64_t b = static_cast<int64_t>(batch.size());
    torch::Tensor zq = z.narrow(0, 0, b);
    torch::Tensor zp = z.narrow(0, b, b);
    // An inverting paraphrase means the same when its answer is the opposite: swap columns.
    std::vector<int64_t> inverted;
    bool any_inverted = false;
    for (const data::Pair& p : batch) {
      inverted.push_back(p.op_match ? 0 : 1);
      any_inverted |= !p.op_match;
    }
    if (any_inverted) {
      const torch::Tensor flip =
          torch::tensor(inverted, torch::kLong).to(torch::kBool).unsqueeze(1);
      zp = torch::where(flip, zp.flip({1}), zp);
    }
    return ComputePairLoss(zq, zp, torch::tensor(labels, torch::kLong), options.loss);
  };
  std::function<int64_t(const Batch&)> examples_in = [](const Batch& b) {
    return static_cast<int64_t>(b.size());
  };
  return RunTraining<Batch>(session, parameters, options, micro_batches, loss_of, examples_in,
                            on_step);
}

absl::StatusOr<TrainReport> TrainOnPrompts(ModelSession& session,
                                           const std::vector<torch::Tensor>& parameters,
                                           const std::vector<LabeledPrompt>& examples,
                                           const TrainOptions& options, const StepCallback& on_step,
                                           bool frozen_vision, const PeriodicHook& periodic) {
  using Batch = std::vector<const LabeledPrompt*>;
  std::function<std::vector<Batch>(int)> micro_batches = [&](int epoch) {
    std::vector<size_t> order(examples.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(options.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    ShuffleIndices(order, rng);
    std::vector<Batch> batches;
    for (size_t i = 0; i < order.size(); i += options.batch_size) {
      Batch b;
      for (size_t j = i; j < std::min(order.size(), i + options.batch_size); ++j)
        b.push_back(&examples[order[j]]);
      batches.push_back(std::move(b));
    }
    return batches;
  };
  std::function<absl::StatusOr<PairLoss>(const Batch&)> loss_of =
      [&](const Batch& batch) -> absl::StatusOr<PairLoss> {
    std::vector<PromptSpec> prompts;
    std::vector<int64_t> labels;
    for (const LabeledPrompt* e : batch) {
      prompts.push_back({&e->question, &e->image});
      labels.push_back(AnswerIndex(e->answer));
    }
    ModelSession::RunMode mode;
    mode.frozen_vision = frozen_vision;
    mode.checkpoint_layers = options.checkpoint_layers;
    PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor z, session.TwoWay(prompts, mode));
    PairLoss loss;
    loss.ce = torch::nn::functional::cross_entropy(z, torch::tensor(labels, torch::kLong));
    loss.consistency = torch::zeros({});
    loss.total = loss.ce;
    return loss;
  };
  std::function<int64_t(const Batch&)> examples_in = [](const Batch& b) {
    return static_cast<int64_t>(b.size());
  };
  return RunTraining<Batch>(session, parameters, options, micro_batches, loss_of, examples_in,
                            on_step, periodic);
}

bool IsVisionParameter(const std::string& name) {
  return absl::StartsWith(name, "vision_tower") || absl::StartsWith(name, "multi_modal_projector");
}

absl::StatusOr<VisionWarmupReport> WarmUpVision(ModelSession& session,
                                                const std::vector<ImageFindingLabels>& images,
                                                const VisionWarmupOptions& options,
                                                const StepCallback& on_step) {
  if (images.empty()) return absl::InvalidArgumentError("vision warm-up: no labelled images");
  if (options.steps <= 0 || options.batch_size <= 0 || options.num_findings <= 0)
    return absl::InvalidArgumentError(
        "vision warm-up: steps, batch_size and findings must be positive");
  return GuardTorch("vision warm-up", [&]() -> absl::StatusOr<VisionWarmupReport> {
    const auto start = Clock::now();
    torch::manual_seed(options.seed);
    std::mt19937_64 rng(options.seed * 7919ULL + 17);
    std::vector<size_t> order(images.size());
    std::iota(order.begin(), order.end(), 0);
    ShuffleIndices(order, rng);
    const size_t holdout =
        std::min(order.size() - 1, static_cast<size_t>(options.holdout_fraction * order.size()));
    const std::vector<size_t> held(order.begin(), order.begin() + holdout);
    std::vector<size_t> train(order.begin() + holdout, order.end());

    auto targets_of = [&](const std::vector<size_t>& batch) {
      std::vector<float> target(batch.size() * options.num_findings, 0.f), mask(target.size(), 0.f);
      for (size_t i = 0; i < batch.size(); ++i) {
        for (const auto& [finding, value] : images[batch[i]].known) {
          target[i * options.num_findings + finding] = value;
          mask[i * options.num_findings + finding] = 1.f;
        }
      }
      const int64_t n = static_cast<int64_t>(batch.size());
      return std::make_pair(torch::tensor(target).view({n, options.num_findings}),
                            torch::tensor(mask).view({n, options.num_findings}));
    };
    auto pixels_of = [&](const std::vector<size_t>& batch) {
      std::vector<const std::string*> paths;
      for (size_t i : batch) paths.push_back(&images[i].image);
      return session.PixelBatch(paths);
    };

    engine::Gemma3Model& model = session.model();
    // Per-token weights: where in the film a density sits tells findings apart.
    torch::nn::Linear head(torch::nn::LinearOptions(
        model->config().text.hidden_size * model->config().mm_tokens_per_image,
        options.num_findings));
    std::vector<torch::Tensor> parameters = head->parameters();
    for (const auto& item : model->named_parameters()) {
      if (IsVisionParameter(item.key())) parameters.push_back(item.value());
    }
    torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(options.lr));
    VisionWarmupReport report;
    report.train_images = static_cast<int64_t>(train.size());
    report.holdout_images = static_cast<int64_t>(held.size());
    std::vector<double> losses;
    size_t cursor = train.size();
    model->train();
    for (int64_t step = 0; step < options.steps; ++step) {
      std::vector<size_t> batch;
      while (batch.size() < static_cast<size_t>(options.batch_size)) {
        if (cursor == train.size()) {
          ShuffleIndices(train, rng);
          cursor = 0;
        }
        batch.push_back(train[cursor++]);
        if (batch.size() == train.size()) break;
      }
      PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor pixels, pixels_of(batch));
      auto [target, mask] = targets_of(batch);
      const double lr = LearningRateAt(step, options.steps, std::min<int64_t>(10, options.steps),
                                       options.lr, LrSchedule::kCosine);
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      optimizer.zero_grad();
      const torch::Tensor logits = head(model->ImageFeatures(pixels).flatten(1));
      const torch::Tensor loss =
          (torch::binary_cross_entropy_with_logits(logits, target, {}, {}, at::Reduction::None) *
           mask)
              .sum() /
          mask.sum().clamp_min(1);
      loss.backward();
      torch::nn::utils::clip_grad_norm_(parameters, 1.0);
      optimizer.step();
      losses.push_back(loss.item<double>());
      if (on_step) {
        StepLog log;
        log.step = step + 1;
        log.total_steps = options.steps;
        log.loss = log.ce = losses.back();
        log.lr = lr;
        const double elapsed = SecondsSince(start);
        log.examples_per_s = static_cast<double>((step + 1) * options.batch_size) / elapsed;
        log.eta_s =
            elapsed / static_cast<double>(step + 1) * static_cast<double>(options.steps - step - 1);
        on_step(log);
      }
    }
    model->eval();
    auto mean_of = [](std::vector<double>::const_iterator a,
                      std::vector<double>::const_iterator b) {
      return b > a ? std::accumulate(a, b, 0.0) / static_cast<double>(b - a) : 0.0;
    };
    const size_t window = std::min<size_t>(10, losses.size());
    report.first_loss = mean_of(losses.begin(), losses.begin() + window);
    report.last_loss = mean_of(losses.end() - window, losses.end());
    report.steps = options.steps;
    if (!held.empty()) {
      torch::NoGradGuard no_grad;
      double correct = 0, total = 0;
      for (size_t first = 0; first < held.size(); first += options.batch_size) {
        const std::vector<size_t> batch(
            held.begin() + first, held.begin() + std::min(held.size(), first + options.batch_size));
        PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor pixels, pixels_of(batch));
        auto [target, mask] = targets_of(batch);
        const torch::Tensor predicted = head(model->ImageFeatures(pixels).flatten(1)).gt(0);
        correct += (predicted.eq(target.gt(0.5)).to(torch::kFloat) * mask).sum().item<double>();
        total += mask.sum().item<double>();
      }
      report.holdout_accuracy = total > 0 ? correct / total : 0;
    }
    report.seconds = SecondsSince(start);
    return report;
  });
}

void InitializeRandomWeights(engine::Gemma3Model& model, uint64_t seed, double std) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (absl::StrContains(name, ".lora_")) continue;
    FillInitial(p, name, std);
    p.set_requires_grad(true);
  }
}

std::string Gemma3ConfigJson(const engine::Gemma3Config& c) {
  using nlohmann::json;
  const auto& t = c.text;
  json layer_types = json::array();
  for (auto type : t.layer_types) {
    layer_types.push_back(type == engine::LayerType::kFull ? "full_attention"
                                                           : "sliding_attention");
  }
  auto rope = [](const engine::RopeParams& r) {
    json j = {{"rope_theta", r.theta},
              {"rope_type", r.linear_factor == 1.0 ? "default" : "linear"}};
    if (r.linear_factor != 1.0) j["factor"] = r.linear_factor;
    return j;
  };
  json text = {
      {"model_type", "gemma3_text"},
      {"vocab_size", t.vocab_size},
      {"hidden_size", t.hidden_size},
      {"intermediate_size", t.intermediate_size},
      {"num_hidden_layers", t.num_hidden_layers},
      {"num_attention_heads", t.num_attention_heads},
      {"num_key_value_heads", t.num_key_value_heads},
      {"head_dim", t.head_dim},
      {"hidden_activation", "gelu_pytorch_tanh"},
      {"rms_norm_eps", t.rms_norm_eps},
      {"query_pre_attn_scalar", t.query_pre_attn_scalar},
      {"sliding_window", t.sliding_window},
      {"layer_types", layer_types},
      {"rope_parameters",
       {{"full_attention", rope(t.rope_full)}, {"sliding_attention", rope(t.rope_sliding)}}},
      {"attn_logit_softcapping", nullptr},
      {"final_logit_softcapping", nullptr},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"max_position_embeddings", 1024},
      {"tie_word_embeddings", true},
      {"pad_token_id", t.pad_token_id},
      {"bos_token_id", 2},
      {"eos_token_id", 1},
      {"use_bidirectional_attention", false},
      {"use_cache", true}};
  const auto& v = c.vision;
  json vision = {{"model_type", "siglip_vision_model"},
                 {"hidden_size", v.hidden_size},
                 {"intermediate_size", v.intermediate_size},
                 {"num_hidden_layers", v.num_hidden_layers},
                 {"num_attention_heads", v.num_attention_heads},
                 {"num_channels", v.num_channels},
                 {"image_size", v.image_size},
                 {"patch_size", v.patch_size},
                 {"layer_norm_eps", v.layer_norm_eps},
                 {"hidden_act", "gelu_pytorch_tanh"},
                 {"attention_dropout", 0.0},
                 {"vision_use_head", false}};
  json root = {{"architectures", {"Gemma3ForConditionalGeneration"}},
               {"model_type", "gemma3"},
               {"dtype", "float32"},
               {"boi_token_index", c.boi_token_index},
               {"eoi_token_index", c.eoi_token_index},
               {"image_token_index", c.image_token_index},
               {"mm_tokens_per_image", c.mm_tokens_per_image},
               {"initializer_range", 0.02},
               {"tie_word_embeddings", true},
               {"transformers_version", "5.0.0"},
               {"text_config", text},
               {"vision_config", vision}};
  return root.dump(2) + "\n";
}

absl::Status SaveModelFolder(engine::Gemma3Model& model, const std::string& dir) {
  return GuardTorch(absl::StrCat("saving model to ", dir), [&]() -> absl::Status {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create folder: ", ec.message()));
    const std::string config_path = (fs::path(dir) / "config.json").string();
    PCSWEEP_RETURN_IF_ERROR(WriteFileDurably(config_path, Gemma3ConfigJson(model->config())));
    std::vector<torch::Tensor> keep;  // owns the contiguous fp32 copies while writing
    std::vector<engine::TensorToWrite> tensors;
    for (const auto& item : model->named_parameters()) {
      std::string name = item.key();
      if (absl::StrContains(name, ".lora_")) continue;
      if (absl::StartsWith(name, "language_model.model.")) {
        name = "model.language_model." + name.substr(std::string("language_model.model.").size());
      } else {
        name = "model." + name;  // vision_tower.vision_model.*, multi_modal_projector.*
      }
      torch::Tensor t = item.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
      keep.push_back(t);
      engine::TensorToWrite w;
      w.name = name;
      w.dtype = engine::DType::kF32;
      w.shape = t.sizes().vec();
      w.data = t.data_ptr();
      w.nbytes = static_cast<size_t>(t.numel()) * sizeof(float);
      tensors.push_back(std::move(w));
    }
    return engine::WriteSafetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                                    {{"format", "pt"}});
  });
}

}  // namespace pcsweep::train
