// The Gemma 3 multimodal model (MedGemma-4B's Gemma3ForConditionalGeneration) as libtorch
// modules: SigLIP vision encoder (no head), the multimodal projector, and the Gemma 3 text
// decoder, per shared/docs/model-spec.md §4-7. Parameter names equal MedGemma's checkpoint
// names (`language_model.model.*`, `vision_tower.vision_model.*`, `multi_modal_projector.*`),
// so loading is a name-for-name copy; LoRA parameters are named `...q_proj.lora_A` etc.
//
// Parameters are allocated uninitialised on the chosen device in the chosen dtype (loading
// fills them; random init of a 4B model would waste minutes). Base weights never require
// grad; LoRA parameters (fp32, as PEFT keeps them) do, so training uses plain autograd.
// Include only from experiments/ (libtorch header). Thread-safety: a module is not safe for
// concurrent forward calls that mutate state (train/eval switches, LoRA attach); concurrent
// forwards of a fixed model are fine.
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_MODEL_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_MODEL_H_

#include <torch/torch.h>

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "experiments/engine/gemma3_config.h"
#include "experiments/engine/lora_config.h"
#include "experiments/engine/safetensors.h"

namespace pcsweep::engine {

// y = x W^T (no bias) + scaling * B(A(dropout(x))) when a LoRA branch is attached. The LoRA
// branch runs in fp32 and is cast back to the base result's dtype, as PEFT does.
class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in_features, int64_t out_features, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // Adds fresh trainable lora_A [r, in] (kaiming-uniform, a = sqrt(5)) and lora_B [out, r]
  // (zeros) in fp32 on the weight's device; replaces an existing branch.
  void AttachLora(int r, double scaling, double dropout);
  void DetachLora();
  bool has_lora() const { return lora_A.defined(); }
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  torch::Tensor weight;
  torch::Tensor lora_A, lora_B;
  double scaling = 0.0;
  double dropout = 0.0;
};
TORCH_MODULE(LoraLinear);

// Called with each decoder layer's output (resid_post, before the final norm); returning a
// defined tensor replaces it (SAE feature clamping / splicing), an undefined one keeps it.
using ResidualHook = std::function<torch::Tensor(int layer, const torch::Tensor& resid_post)>;

// The keys and values every decoder layer computed for a batch of token sequences (after
// k_norm and RoPE, before the KV heads are repeated): what later tokens need to attend to
// those sequences without running them again. Shared-prefix scoring fills one from a forward
// over the common prefixes (ForwardOptions::return_kv) and runs the suffixes against it.
struct KvCache {
  std::vector<torch::Tensor> keys, values;  // per layer [G, kv_heads, P, head_dim]
  int64_t length() const { return keys.empty() ? 0 : keys.front().size(2); }
  int64_t batch() const { return keys.empty() ? 0 : keys.front().size(0); }
};

struct ModelInputs {
  torch::Tensor input_ids;       // [B, L] int64
  torch::Tensor attention_mask;  // [B, L], optional: 1 = token, 0 = padding (left padding)
  torch::Tensor token_type_ids;  // [B, L], optional: 1 = image token; default ids == image token
  torch::Tensor position_ids;    // [B, L] or [L], optional; default arange(L) as transformers does
  torch::Tensor pixel_values;    // [N, 3, H, W], optional
  torch::Tensor image_features;  // [N, T, hidden], optional precomputed features; wins over pixels

  // Suffix mode: input_ids continue the sequences whose K/V `prefix` holds (unpadded, length
  // P, every image inside it). Row b continues prefix row prefix_rows[b] (default b); its
  // position_ids must be given (P + offset within the suffix, left padding allowed); the
  // attention mask covers the suffix only. The suffix may hold no image tokens: an image's
  // bidirectional block has to lie entirely inside the prefix for the result to equal the
  // full forward. Not owned; must outlive the call.
  const KvCache* prefix = nullptr;
  torch::Tensor prefix_rows;  // [B] int64, optional

  // Start mode: the residual stream entering decoder layer `start_layer` ([B, L, hidden],
  // what layer start_layer - 1 output for these input_ids), so layers below it do not run.
  // input_ids (and the masks) still describe the sequence; no embedding or image merge runs.
  torch::Tensor hidden_input;
  int start_layer = 0;
};

enum class LogitsMode { kAll, kLastPosition, kNone };

struct ForwardOptions {
  LogitsMode logits = LogitsMode::kAll;
  // When defined (int64 ids): compute only these rows of the tied head, so a yes/no score
  // costs a few dot products instead of a 262k-row matmul.
  torch::Tensor vocab_rows;
  bool output_hidden_states = false;  // transformers' hidden_states (num_layers + 1 entries)
  std::vector<int> capture_layers;    // resid_post of these decoder layers, raw
  ResidualHook residual_hook;
  // Run decoder layers up to this one (exclusive; -1 = all). Below the top there are no
  // logits (logits must be kNone) and ModelOutputs::residual is what layer end_layer gets.
  int end_layer = -1;
  // Fill ModelOutputs::kv with every layer's keys and values (prefix runs).
  bool return_kv = false;
  // Activation checkpointing per decoder layer: under grad mode, keep only each layer's input
  // and recompute the layer in backward (the RNG state is restored, so LoRA dropout draws the
  // same mask). Same outputs and gradients, less memory, ~1/3 more compute. Ignored without
  // grad mode and in suffix mode.
  bool checkpoint_layers = false;
};

struct ModelOutputs {
  torch::Tensor logits;          // [B, L, V], [B, V] (last position) or with vocab_rows columns
  torch::Tensor image_features;  // [N, T, hidden] when images were given
  std::vector<torch::Tensor> hidden_states;
  std::map<int, torch::Tensor> layer_outputs;
  torch::Tensor residual;  // the stream after the last layer run, before the final norm
  KvCache kv;              // with return_kv
};

class Gemma3ModelImpl : public torch::nn::Module {
 public:
  Gemma3ModelImpl(const Gemma3Config& config, const torch::TensorOptions& options);

  // SigLIP + projector: [N, 3, H, W] -> [N, mm_tokens_per_image, hidden].
  torch::Tensor ImageFeatures(const torch::Tensor& pixel_values);
  // The whole forward (or a suffix / layer range of it, see ModelInputs). Inputs must be
  // validated by the caller (Engine does it; see also ValidateSuffixInputs).
  ModelOutputs Forward(const ModelInputs& inputs, const ForwardOptions& options);
  // The LoRA site of decoder layer `layer`.
  LoraLinear& LoraSite(int layer, LoraModule module);
  const Gemma3Config& config() const { return config_; }

  // Rounds RoPE's inv_freq to bf16, as in a transformers model that was cast to bf16 and back
  // (`model.to(torch.bfloat16).float()` casts the inv_freq buffer too). Off by default; the
  // gemma3-tiny reference tensors were made that way.
  bool bf16_rope_frequencies = false;

 private:
  // The residual stream entering layer in.start_layer: the hidden input, or the token
  // embeddings with the image features merged in (recorded in out.image_features).
  torch::Tensor EmbedInputs(const ModelInputs& in, ModelOutputs& out);

  struct Impl;
  std::shared_ptr<Impl> impl_;
  Gemma3Config config_;
};
TORCH_MODULE(Gemma3Model);

torch::ScalarType ToTorchDType(DType dtype);

// Attention without SDPA (libtorch 1.x, soft-capping) over blocks of query rows, so that no
// score matrix holds more than `max_score_elements`: q [B, H, L, d], k/v [B, H, S, d], mask
// bool [B, 1, L, S] (true = may attend) or undefined. Exposed for its test; the model calls it
// with 2^24 (64 MiB of fp32 scores per block).
torch::Tensor BlockedAttention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask, double scaling,
                               std::optional<double> softcap, int64_t max_score_elements);

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_MODEL_H_
