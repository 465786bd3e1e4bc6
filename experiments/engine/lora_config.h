// PEFT LoRA adapter metadata, torch-free: adapter_config.json parsing and writing, the
// adapter_model.safetensors key <-> (layer, module) mapping, and the target_modules regex the
// engine writes so that `PeftModel.from_pretrained` attaches to exactly the same modules.
// LoRA is attached to language-model decoder layers only, never the vision tower.
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_LORA_CONFIG_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_LORA_CONFIG_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace pcsweep::engine {

enum class LoraModule { kQ, kK, kV, kO, kGate, kUp, kDown };
constexpr LoraModule kAllLoraModules[] = {LoraModule::kQ,   LoraModule::kK,    LoraModule::kV,
                                          LoraModule::kO,   LoraModule::kGate, LoraModule::kUp,
                                          LoraModule::kDown};
// "self_attn.q_proj", "mlp.gate_proj", ...
const char* LoraModulePath(LoraModule module);
// Accepts "q_proj" / "q" style names. Possible errors: InvalidArgument naming the module.
absl::StatusOr<LoraModule> ParseLoraModule(absl::string_view name);

struct LoraTarget {
  int layer = 0;
  LoraModule module = LoraModule::kQ;
  bool operator<(const LoraTarget& o) const {
    return layer != o.layer ? layer < o.layer : module < o.module;
  }
  bool operator==(const LoraTarget& o) const { return layer == o.layer && module == o.module; }
};

struct LoraSettings {
  int r = 8;
  double lora_alpha = 8;
  bool use_rslora = false;
  double lora_dropout = 0.0;
  double scaling() const;  // alpha / r, or alpha / sqrt(r) with rsLoRA
};

struct AdapterConfig {
  LoraSettings settings;
  std::string target_modules_regex;              // when target_modules is a string
  std::vector<std::string> target_modules_list;  // when it is a list
  std::vector<int> layers_to_transform;
  std::string base_model_name_or_path;
};

// Possible errors: InvalidArgument "<path>: <key>: what" for malformed JSON, peft_type other
// than LORA, non-positive r, and features the engine does not implement (DoRA, rank/alpha
// patterns, LoRA biases, fan_in_fan_out).
absl::StatusOr<AdapterConfig> ParseAdapterConfig(absl::string_view json_text,
                                                 absl::string_view path);

// Parses an adapter_model.safetensors key, e.g.
// `base_model.model.model.language_model.layers.3.mlp.up_proj.lora_B.weight` (also the legacy
// `base_model.model.language_model.model.layers...` form). Sets *is_a to true for lora_A.
// Possible errors: InvalidArgument for vision-tower keys and anything that is not a decoder
// q/k/v/o/gate/up/down LoRA weight.
absl::StatusOr<LoraTarget> ParseAdapterKey(absl::string_view key, bool* is_a);
// The key PEFT writes for Gemma3ForConditionalGeneration (transformers >= 4.52 module tree).
std::string AdapterKey(const LoraTarget& target, bool is_a);

// A Python-`re.fullmatch` regex selecting exactly `targets` among the model's module names
// (language model only), e.g.
// `.*language_model.*\.layers\.(?:(?:1|2)\.(?:self_attn\.(?:q|v)_proj))`.
std::string TargetModulesRegex(const std::set<LoraTarget>& targets);
// adapter_config.json content with the fields PEFT needs to load the adapter.
std::string AdapterConfigJson(const LoraSettings& settings, const std::set<LoraTarget>& targets,
                              const std::string& base_model_name_or_path);

// Decoder layers from a setting: "all", "early", "middle", "late" (relative to the depth:
// the paper's 0-4 / 15-19 / 29-33 of 34 scaled, at least 2 layers), "a-b", "n", "a,b,c", or a
// JSON list of numbers and such strings. Sorted, unique.
// Possible errors: InvalidArgument "<where>: ..." for a malformed range or a layer outside
// [0, num_layers).
absl::StatusOr<std::vector<int>> ParseLayers(const nlohmann::json& value, int num_layers,
                                             const std::string& where);

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_LORA_CONFIG_H_
