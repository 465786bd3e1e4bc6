// Engine: the facade over the Gemma 3 / MedGemma model for jobs and tools. Loads a Hugging
// Face folder (config.json + safetensors, any weight layout), optionally a PEFT LoRA adapter,
// runs forwards (logits, hidden states, image features) and scores batches of
// (image, prompt) as yes/no margins with an image-feature cache. Every libtorch exception is
// caught here and becomes a Status with context.
//
// Ownership: the Engine owns the model and the image cache. Thread-safety: not thread-safe;
// use one Engine per thread (or lock around it).
// Include only from experiments/ (libtorch header).
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_ENGINE_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_ENGINE_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/engine/gemma3_config.h"
#include "experiments/engine/lora_config.h"
#include "experiments/engine/model.h"

namespace pcsweep::engine {

struct EngineOptions {
  std::string model_dir;       // config.json + model.safetensors or shards with an index
  std::string adapter_dir;     // optional PEFT adapter folder
  std::string device = "cpu";  // "cpu", "cuda", "cuda:1"
  // "auto": fp32 on CPU (bf16 weights are converted), the checkpoint's dtype on GPU.
  std::string dtype = "auto";  // auto | fp32 | bf16 | fp16
  int num_threads = 0;         // intra-op threads; 0 keeps libtorch's default
  // See Gemma3ModelImpl::bf16_rope_frequencies.
  bool bf16_rope_frequencies = false;
};

// One prompt to score. Give pixel_values ([3, H, W] or [1, 3, H, W], float) or the key of an
// image scored before (its features are cached); none for a text-only prompt.
struct ScoreRequest {
  torch::Tensor pixel_values;
  std::string image_key;           // optional name; pixel content is hashed either way
  std::vector<int64_t> token_ids;  // with mm_tokens_per_image image tokens if an image is used
};

struct ScoreOptions {
  std::vector<int64_t> yes_ids;  // every single-token variant of yes/Yes
  std::vector<int64_t> no_ids;
  std::vector<int> capture_layers;  // return resid_post of these layers per prompt
  int batch_size = 16;
  // Run the common prefix of one image's prompts (the image block and the template around
  // it) once per batch and only the suffixes against its keys and values: the same margins
  // (to float rounding) for a fraction of the work. See prompt_batch.h.
  bool shared_prefix = true;
};

struct ScoreResult {
  double margin = 0;  // yes_logsumexp - no_logsumexp at the last position
  double yes_logsumexp = 0;
  double no_logsumexp = 0;
  std::map<int, torch::Tensor> layer_outputs;  // [len, hidden] fp32 on CPU, padding removed
};

class Engine {
 public:
  // Possible errors: NotFound (no config or weights), InvalidArgument naming the file and
  // tensor for a corrupt file, an unexpected or missing tensor, or a shape that disagrees
  // with config.json; errors of LoadAdapter; InvalidArgument for a bad device or dtype.
  static absl::StatusOr<std::unique_ptr<Engine>> Load(const EngineOptions& options);

  const Gemma3Config& config() const { return config_; }
  Gemma3Model& model() { return model_; }
  torch::Device device() const { return device_; }
  torch::ScalarType compute_dtype() const { return dtype_; }

  // Validates shapes, ids and the image-token count, then runs the model. Runs under the
  // caller's grad mode (training wants gradients into the LoRA parameters).
  // Possible errors: InvalidArgument naming the offending input; Internal for a libtorch error.
  absl::StatusOr<ModelOutputs> Forward(const ModelInputs& inputs, const ForwardOptions& options);
  // [N, 3, H, W] -> [N, mm_tokens_per_image, hidden], no grad.
  // Possible errors: InvalidArgument for a wrong image shape; Internal.
  absl::StatusOr<torch::Tensor> ImageFeatures(const torch::Tensor& pixel_values);

  // --- LoRA (PEFT-compatible) ---
  // Attaches fresh trainable adapters (A kaiming-uniform, B zeros; seeded) to `targets`,
  // replacing any adapter. Possible errors: InvalidArgument for a layer out of range or r <= 0.
  absl::Status AttachLora(const std::set<LoraTarget>& targets, const LoraSettings& settings,
                          uint64_t seed);
  // Loads adapter_config.json + adapter_model.safetensors; the attachment set comes from the
  // keys present. Possible errors: NotFound; InvalidArgument naming the file and tensor for
  // a malformed file, a vision-tower key, a layer out of range or a shape mismatch (an
  // adapter made for another model), or a missing A/B half.
  absl::Status LoadAdapter(const std::string& dir);
  // Writes adapter_config.json and adapter_model.safetensors (fp32) so that
  // `PeftModel.from_pretrained` loads them. Possible errors: FailedPrecondition (no adapter),
  // Internal (I/O).
  absl::Status SaveAdapter(const std::string& dir) const;
  void DetachLora();
  std::vector<torch::Tensor> LoraParameters() const;  // A, B of every target (trainable)
  const std::set<LoraTarget>& lora_targets() const { return lora_targets_; }

  // --- Scoring ---
  // Margins for each request, in order. Prompts are left-padded per batch with position ids
  // counted from each prompt's first token, so a margin does not depend on its batch-mates.
  // Possible errors: InvalidArgument (empty yes/no ids, bad token ids, an image-token count
  // other than 0 or mm_tokens_per_image, an unknown image_key); Internal.
  absl::StatusOr<std::vector<ScoreResult>> Score(const std::vector<ScoreRequest>& requests,
                                                 const ScoreOptions& options);
  // The [mm_tokens_per_image, hidden] features Score computed (or reused) for `image_key`,
  // so a training step on the same image need not run the vision tower again.
  // Possible errors: NotFound when no scored request named that key.
  absl::StatusOr<torch::Tensor> CachedImageFeatures(const std::string& image_key) const;
  size_t image_cache_size() const { return image_cache_.size(); }
  int64_t image_cache_misses() const { return image_cache_misses_; }
  // Token positions the decoder has run for Score (prefixes and padding included).
  int64_t tokens_run() const { return tokens_run_; }
  void ClearImageCache() { image_cache_.clear(); }

 private:
  Engine(Gemma3Config config, Gemma3Model model, torch::Device device, torch::ScalarType dtype)
      : config_(std::move(config)), model_(std::move(model)), device_(device), dtype_(dtype) {}
  absl::Status ValidateInputs(const ModelInputs& inputs) const;
  absl::StatusOr<std::vector<ScoreResult>> ScoreChunk(const std::vector<const ScoreRequest*>& chunk,
                                                      const std::vector<std::string>& image_keys,
                                                      const ScoreOptions& options);

  Gemma3Config config_;
  Gemma3Model model_;
  torch::Device device_;
  torch::ScalarType dtype_;
  std::string model_dir_;
  LoraSettings lora_settings_;
  std::set<LoraTarget> lora_targets_;
  // Content hash of the pixels -> [T, hidden] features on the device. The vision tower is
  // frozen, so features never go stale while the engine lives.
  std::unordered_map<std::string, torch::Tensor> image_cache_;
  int64_t image_cache_misses_ = 0;
  int64_t tokens_run_ = 0;
};

// "cpu" BLAS / thread report, logged once per process by Engine::Load.
std::string RuntimeReport();

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_ENGINE_H_
