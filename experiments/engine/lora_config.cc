#include "experiments/engine/lora_config.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::engine {
namespace {

// A JSON value as an error shows it: dumped, cut at 60 characters.
std::string ShownJson(const nlohmann::json& value) {
  std::string s = value.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

const char* LoraModulePath(LoraModule module) {
  switch (module) {
    case LoraModule::kQ:
      return "self_attn.q_proj";
    case LoraModule::kK:
      return "self_attn.k_proj";
    case LoraModule::kV:
      return "self_attn.v_proj";
    case LoraModule::kO:
      return "self_attn.o_proj";
    case LoraModule::kGate:
      return "mlp.gate_proj";
    case LoraModule::kUp:
      return "mlp.up_proj";
    case LoraModule::kDown:
      return "mlp.down_proj";
  }
  return "?";
}

absl::StatusOr<LoraModule> ParseLoraModule(absl::string_view name) {
  static const std::map<std::string, LoraModule, std::less<>> kNames = {
      {"q", LoraModule::kQ},        {"k", LoraModule::kK},
      {"v", LoraModule::kV},        {"o", LoraModule::kO},
      {"gate", LoraModule::kGate},  {"up", LoraModule::kUp},
      {"down", LoraModule::kDown},  {"q_proj", LoraModule::kQ},
      {"k_proj", LoraModule::kK},   {"v_proj", LoraModule::kV},
      {"o_proj", LoraModule::kO},   {"gate_proj", LoraModule::kGate},
      {"up_proj", LoraModule::kUp}, {"down_proj", LoraModule::kDown}};
  auto it = kNames.find(name);
  if (it == kNames.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown LoRA module '", name, "' (expected q/k/v/o/gate/up/down or *_proj)"));
  }
  return it->second;
}

double LoraSettings::scaling() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / r;
}

absl::StatusOr<AdapterConfig> ParseAdapterConfig(absl::string_view json_text,
                                                 absl::string_view path_view) {
  const std::string path(path_view);
  using nlohmann::json;
  json j;
  try {
    j = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON: ", e.what()));
  }
  auto err = [&](absl::string_view key, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", key, ": ", what));
  };
  if (!j.is_object()) return err("(top)", "not a JSON object");
  auto has = [&](const char* k) { return j.contains(k) && !j[k].is_null(); };
  AdapterConfig c;
  if (has("peft_type") && j["peft_type"] != "LORA") {
    return err("peft_type", absl::StrCat("expected \"LORA\", got ", j["peft_type"].dump()));
  }
  if (has("r")) {
    if (!j["r"].is_number_integer() || j["r"].get<int>() <= 0)
      return err("r", "must be a positive integer");
    c.settings.r = j["r"].get<int>();
  }
  if (has("lora_alpha")) {
    if (!j["lora_alpha"].is_number()) return err("lora_alpha", "must be a number");
    c.settings.lora_alpha = j["lora_alpha"].get<double>();
  }
  if (has("lora_dropout")) {
    if (!j["lora_dropout"].is_number()) return err("lora_dropout", "must be a number");
    c.settings.lora_dropout = j["lora_dropout"].get<double>();
    if (c.settings.lora_dropout < 0 || c.settings.lora_dropout >= 1)
      return err("lora_dropout", "must be in [0, 1)");
  }
  if (has("use_rslora")) {
    if (!j["use_rslora"].is_boolean()) return err("use_rslora", "must be true or false");
    c.settings.use_rslora = j["use_rslora"].get<bool>();
  }
  for (const char* flag : {"use_dora", "fan_in_fan_out", "lora_bias"}) {
    if (has(flag) && j[flag].is_boolean() && j[flag].get<bool>())
      return err(flag, "not supported by the engine");
  }
  if (has("bias") && j["bias"] != "none") return err("bias", "only \"none\" is supported");
  for (const char* pattern : {"rank_pattern", "alpha_pattern"}) {
    if (has(pattern) && j[pattern].is_object() && !j[pattern].empty()) {
      return err(pattern, "per-module ranks/alphas are not supported");
    }
  }
  if (has("target_modules")) {
    const json& t = j["target_modules"];
    if (t.is_string()) {
      c.target_modules_regex = t.get<std::string>();
    } else if (t.is_array()) {
      for (const auto& m : t) {
        if (!m.is_string()) return err("target_modules", "list entries must be strings");
        c.target_modules_list.push_back(m.get<std::string>());
      }
    } else {
      return err("target_modules", "must be a string (regex) or a list of names");
    }
  }
  if (has("layers_to_transform")) {
    const json& l = j["layers_to_transform"];
    if (l.is_number_integer()) {
      c.layers_to_transform.push_back(l.get<int>());
    } else if (l.is_array()) {
      for (const auto& v : l) {
        if (!v.is_number_integer()) return err("layers_to_transform", "entries must be integers");
        c.layers_to_transform.push_back(v.get<int>());
      }
    } else {
      return err("layers_to_transform", "must be an integer or a list of integers");
    }
  }
  if (has("base_model_name_or_path") && j["base_model_name_or_path"].is_string()) {
    c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  }
  return c;
}

absl::StatusOr<LoraTarget> ParseAdapterKey(absl::string_view key, bool* is_a) {
  static const std::regex kKey(
      R"(^base_model\.model\.(?:model\.language_model|language_model\.model|model|language_model)\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)(?:\.default)?\.weight$)");
  const std::string s(key);
  std::smatch m;
  if (!std::regex_match(s, m, kKey)) {
    if (s.find("vision") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter tensor '", s, "' targets the vision tower (LoRA is language-model only)"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("adapter tensor '", s,
                     "' is not a LoRA weight of a decoder q/k/v/o/gate/up/down projection"));
  }
  auto module = ParseLoraModule(m[3].str());
  if (!module.ok()) return module.status();
  const std::string expected_block =
      (*module == LoraModule::kGate || *module == LoraModule::kUp || *module == LoraModule::kDown)
          ? "mlp"
          : "self_attn";
  if (m[2].str() != expected_block) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter tensor '", s, "': ", m[3].str(), " is not under ", m[2].str()));
  }
  *is_a = m[4].str() == "A";
  return LoraTarget{std::stoi(m[1].str()), *module};
}

std::string AdapterKey(const LoraTarget& target, bool is_a) {
  return absl::StrCat("base_model.model.model.language_model.layers.", target.layer, ".",
                      LoraModulePath(target.module), is_a ? ".lora_A.weight" : ".lora_B.weight");
}

std::string TargetModulesRegex(const std::set<LoraTarget>& targets) {
  // Group layers that share one module set so the regex stays short for layer ranges.
  std::map<int, std::set<LoraModule>> by_layer;
  for (const auto& t : targets) by_layer[t.layer].insert(t.module);
  std::map<std::set<LoraModule>, std::vector<int>> by_modules;
  for (const auto& [layer, modules] : by_layer) by_modules[modules].push_back(layer);
  std::vector<std::string> groups;
  for (const auto& [modules, layers] : by_modules) {
    std::vector<std::string> attn, mlp;
    for (LoraModule m : modules) {
      switch (m) {
        case LoraModule::kQ:
          attn.push_back("q");
          break;
        case LoraModule::kK:
          attn.push_back("k");
          break;
        case LoraModule::kV:
          attn.push_back("v");
          break;
        case LoraModule::kO:
          attn.push_back("o");
          break;
        case LoraModule::kGate:
          mlp.push_back("gate");
          break;
        case LoraModule::kUp:
          mlp.push_back("up");
          break;
        case LoraModule::kDown:
          mlp.push_back("down");
          break;
      }
    }
    std::vector<std::string> alternatives;
    if (!attn.empty())
      alternatives.push_back(absl::StrCat("self_attn\\.(?:", absl::StrJoin(attn, "|"), ")_proj"));
    if (!mlp.empty())
      alternatives.push_back(absl::StrCat("mlp\\.(?:", absl::StrJoin(mlp, "|"), ")_proj"));
    groups.push_back(absl::StrCat("(?:", absl::StrJoin(layers, "|"),
                                  ")\\.(?:", absl::StrJoin(alternatives, "|"), ")"));
  }
  return absl::StrCat(".*language_model.*\\.layers\\.(?:", absl::StrJoin(groups, "|"), ")");
}

std::string AdapterConfigJson(const LoraSettings& settings, const std::set<LoraTarget>& targets,
                              const std::string& base_model_name_or_path) {
  nlohmann::json j = {
      {"peft_type", "LORA"},
      {"task_type", nullptr},
      {"base_model_name_or_path", base_model_name_or_path.empty()
                                      ? nlohmann::json(nullptr)
                                      : nlohmann::json(base_model_name_or_path)},
      {"revision", nullptr},
      {"inference_mode", true},
      {"r", settings.r},
      {"lora_alpha", settings.lora_alpha},
      {"lora_dropout", settings.lora_dropout},
      {"use_rslora", settings.use_rslora},
      {"use_dora", false},
      {"fan_in_fan_out", false},
      {"bias", "none"},
      {"lora_bias", false},
      {"init_lora_weights", true},
      {"target_modules", TargetModulesRegex(targets)},
      {"exclude_modules", nullptr},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"modules_to_save", nullptr},
      {"auto_mapping",
       {{"base_model_class", "Gemma3ForConditionalGeneration"},
        {"parent_library", "transformers.models.gemma3.modeling_gemma3"}}},
  };
  return j.dump(2);
}

absl::StatusOr<std::vector<int>> ParseLayers(const nlohmann::json& value, int num_layers,
                                             const std::string& where) {
  std::vector<int> layers;
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", what, " (model has ", num_layers,
                     " layers; use \"all\", \"early\", \"middle\", \"late\", "
                     "\"a-b\" or a list)"));
  };
  auto add_layer = [&](int64_t layer) -> absl::Status {
    if (layer < 0 || layer >= num_layers)
      return bad(absl::StrCat("layer ", layer, " is out of range"));
    layers.push_back(static_cast<int>(layer));
    return absl::OkStatus();
  };
  // The paper's 5 of 34 layers, scaled to the depth.
  const int count = std::max(2, static_cast<int>(std::lround(5.0 * num_layers / 34.0)));
  auto add_token = [&](std::string token) -> absl::Status {
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.empty()) return bad("empty layer entry");
    if (token == "all") {
      for (int i = 0; i < num_layers; ++i) layers.push_back(i);
      return absl::OkStatus();
    }
    if (token == "early" || token == "middle" || token == "late") {
      const int n = std::min(count, num_layers);
      int first = 0;
      if (token == "middle") first = static_cast<int>(std::lround(0.5 * num_layers - 0.5 * n));
      if (token == "late") first = num_layers - n;
      first = std::clamp(first, 0, num_layers - n);
      for (int i = first; i < first + n; ++i) layers.push_back(i);
      return absl::OkStatus();
    }
    const std::vector<std::string> ends = absl::StrSplit(token, '-');
    int64_t a = 0, b = 0;
    if (ends.size() == 1 && absl::SimpleAtoi(ends[0], &a)) return add_layer(a);
    if (ends.size() == 2 && absl::SimpleAtoi(ends[0], &a) && absl::SimpleAtoi(ends[1], &b)) {
      if (a > b) return bad(absl::StrCat("range '", token, "' is reversed"));
      for (int64_t i = a; i <= b; ++i) PCSWEEP_RETURN_IF_ERROR(add_layer(i));
      return absl::OkStatus();
    }
    return bad(absl::StrCat("cannot read '", token, "'"));
  };
  if (value.is_string()) {
    for (const auto& part : absl::StrSplit(value.get<std::string>(), ',')) {
      PCSWEEP_RETURN_IF_ERROR(add_token(std::string(part)));
    }
  } else if (value.is_number_integer()) {
    PCSWEEP_RETURN_IF_ERROR(add_layer(value.get<int64_t>()));
  } else if (value.is_array() && !value.empty()) {
    for (const auto& item : value) {
      if (item.is_number_integer()) {
        PCSWEEP_RETURN_IF_ERROR(add_layer(item.get<int64_t>()));
      } else if (item.is_string()) {
        PCSWEEP_RETURN_IF_ERROR(add_token(item.get<std::string>()));
      } else {
        return bad(absl::StrCat("cannot read ", ShownJson(item)));
      }
    }
  } else {
    return bad(absl::StrCat("cannot read ", ShownJson(value)));
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

}  // namespace pcsweep::engine
