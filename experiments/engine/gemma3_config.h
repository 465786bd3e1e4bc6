// Gemma 3 multimodal configuration (Gemma3ForConditionalGeneration's config.json), parsed from
// both transformers styles: 4.5x (rope_theta, rope_local_base_freq, rope_scaling,
// sliding_window_pattern) and 5.x (rope_parameters per layer type, layer_types). Missing keys
// take the defaults of transformers' Gemma3TextConfig / SiglipVisionConfig / Gemma3Config.
// Torch-free plain data; copyable and thread-compatible.
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_GEMMA3_CONFIG_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_GEMMA3_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::engine {

enum class LayerType { kSliding, kFull };

// RoPE of one layer type. Only "default" and "linear" exist in Gemma 3 checkpoints; other
// rope types are rejected at parse time rather than silently computed wrong.
struct RopeParams {
  double theta = 10000.0;
  double linear_factor = 1.0;  // inv_freq is divided by this ("linear" rope_type)
};

struct Gemma3TextConfig {
  int64_t vocab_size = 262208;
  int64_t hidden_size = 2304;
  int64_t intermediate_size = 9216;
  int64_t num_hidden_layers = 26;
  int64_t num_attention_heads = 8;
  int64_t num_key_value_heads = 4;
  int64_t head_dim = 256;
  double rms_norm_eps = 1e-6;
  double query_pre_attn_scalar = 256;
  int64_t sliding_window = 4096;
  std::vector<LayerType> layer_types;
  RopeParams rope_full{1'000'000.0, 1.0};
  RopeParams rope_sliding{10'000.0, 1.0};
  std::optional<double> attn_logit_softcapping;
  std::optional<double> final_logit_softcapping;
  bool tie_word_embeddings = true;
  int64_t pad_token_id = 0;
};

struct SiglipVisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 16;
  double layer_norm_eps = 1e-6;
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

struct Gemma3Config {
  Gemma3TextConfig text;
  SiglipVisionConfig vision;
  int64_t mm_tokens_per_image = 256;
  int64_t boi_token_index = 255999;
  int64_t eoi_token_index = 256000;
  int64_t image_token_index = 262144;
};

// Parses config.json text. `path` only appears in errors.
// Possible errors: InvalidArgument "<path>: <key>: what" for malformed JSON, wrong types,
// unsupported activations / rope types / vision heads, and inconsistent sizes (heads not a
// multiple of KV heads, layer_types length, image not divisible into patches / soft tokens).
absl::StatusOr<Gemma3Config> ParseGemma3Config(absl::string_view json_text,
                                               absl::string_view path = "<config.json>");
// Reads `<dir>/config.json` (or the file itself when `path` is a file).
// Possible errors: NotFound, plus those of ParseGemma3Config.
absl::StatusOr<Gemma3Config> LoadGemma3Config(const std::string& path);

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_GEMMA3_CONFIG_H_
