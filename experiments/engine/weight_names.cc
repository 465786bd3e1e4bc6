#include "experiments/engine/weight_names.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pcsweep::engine {

std::vector<ExpectedWeight> ExpectedWeights(const Gemma3Config& config) {
  const Gemma3TextConfig& t = config.text;
  const SiglipVisionConfig& v = config.vision;
  std::vector<ExpectedWeight> out;
  const std::string lm = "language_model.model.";
  out.push_back({lm + "embed_tokens.weight", {t.vocab_size, t.hidden_size}});
  out.push_back({lm + "norm.weight", {t.hidden_size}});
  const int64_t q_out = t.num_attention_heads * t.head_dim;
  const int64_t kv_out = t.num_key_value_heads * t.head_dim;
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat(lm, "layers.", i, ".");
    for (const char* norm : {"input_layernorm", "post_attention_layernorm",
                             "pre_feedforward_layernorm", "post_feedforward_layernorm"}) {
      out.push_back({p + norm + ".weight", {t.hidden_size}});
    }
    out.push_back({p + "self_attn.q_proj.weight", {q_out, t.hidden_size}});
    out.push_back({p + "self_attn.k_proj.weight", {kv_out, t.hidden_size}});
    out.push_back({p + "self_attn.v_proj.weight", {kv_out, t.hidden_size}});
    out.push_back({p + "self_attn.o_proj.weight", {t.hidden_size, q_out}});
    out.push_back({p + "self_attn.q_norm.weight", {t.head_dim}});
    out.push_back({p + "self_attn.k_norm.weight", {t.head_dim}});
    out.push_back({p + "mlp.gate_proj.weight", {t.intermediate_size, t.hidden_size}});
    out.push_back({p + "mlp.up_proj.weight", {t.intermediate_size, t.hidden_size}});
    out.push_back({p + "mlp.down_proj.weight", {t.hidden_size, t.intermediate_size}});
  }
  out.push_back(
      {"multi_modal_projector.mm_input_projection_weight", {v.hidden_size, t.hidden_size}});
  out.push_back({"multi_modal_projector.mm_soft_emb_norm.weight", {v.hidden_size}});
  const std::string vm = "vision_tower.vision_model.";
  out.push_back({vm + "embeddings.patch_embedding.weight",
                 {v.hidden_size, v.num_channels, v.patch_size, v.patch_size}});
  out.push_back({vm + "embeddings.patch_embedding.bias", {v.hidden_size}});
  out.push_back({vm + "embeddings.position_embedding.weight", {v.num_patches(), v.hidden_size}});
  for (int64_t j = 0; j < v.num_hidden_layers; ++j) {
    const std::string p = absl::StrCat(vm, "encoder.layers.", j, ".");
    for (const char* ln : {"layer_norm1", "layer_norm2"}) {
      out.push_back({absl::StrCat(p, ln, ".weight"), {v.hidden_size}});
      out.push_back({absl::StrCat(p, ln, ".bias"), {v.hidden_size}});
    }
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      out.push_back(
          {absl::StrCat(p, "self_attn.", proj, ".weight"), {v.hidden_size, v.hidden_size}});
      out.push_back({absl::StrCat(p, "self_attn.", proj, ".bias"), {v.hidden_size}});
    }
    out.push_back({p + "mlp.fc1.weight", {v.intermediate_size, v.hidden_size}});
    out.push_back({p + "mlp.fc1.bias", {v.intermediate_size}});
    out.push_back({p + "mlp.fc2.weight", {v.hidden_size, v.intermediate_size}});
    out.push_back({p + "mlp.fc2.bias", {v.hidden_size}});
  }
  out.push_back({vm + "post_layernorm.weight", {v.hidden_size}});
  out.push_back({vm + "post_layernorm.bias", {v.hidden_size}});
  std::sort(out.begin(), out.end(),
            [](const ExpectedWeight& a, const ExpectedWeight& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<std::optional<std::string>> CanonicalWeightName(absl::string_view stored) {
  if (stored == "lm_head.weight" || stored == "language_model.lm_head.weight") return std::nullopt;
  // Longest prefixes first: "vision_tower.vision_model." before "vision_tower.".
  static const std::pair<const char*, const char*> kPrefixes[] = {
      {"model.language_model.", "language_model.model."},
      {"language_model.model.", "language_model.model."},
      {"model.vision_tower.vision_model.", "vision_tower.vision_model."},
      {"model.vision_tower.", "vision_tower.vision_model."},
      {"vision_tower.vision_model.", "vision_tower.vision_model."},
      {"vision_tower.", "vision_tower.vision_model."},
      {"model.multi_modal_projector.", "multi_modal_projector."},
      {"multi_modal_projector.", "multi_modal_projector."},
  };
  for (const auto& [from, to] : kPrefixes) {
    if (absl::StartsWith(stored, from)) {
      return std::optional<std::string>(
          absl::StrCat(to, stored.substr(std::string_view(from).size())));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected tensor name '", stored,
                   "' (not a Gemma3ForConditionalGeneration weight in any known layout)"));
}

}  // namespace pcsweep::engine
