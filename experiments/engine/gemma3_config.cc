#include "experiments/engine/gemma3_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::engine {
namespace {

using nlohmann::json;

// Reads one optional key, keeping the default when absent or null; errors name the key path.
class Reader {
 public:
  Reader(const json& obj, std::string prefix, std::string path)
      : obj_(obj), prefix_(std::move(prefix)), path_(std::move(path)) {}

  absl::Status Int(const char* key, int64_t* out) const {
    if (!Has(key)) return absl::OkStatus();
    const json& v = obj_[key];
    if (!v.is_number_integer() &&
        !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
      return Error(key, "expected an integer");
    }
    *out = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
    return absl::OkStatus();
  }
  absl::Status Double(const char* key, double* out) const {
    if (!Has(key)) return absl::OkStatus();
    if (!obj_[key].is_number()) return Error(key, "expected a number");
    *out = obj_[key].get<double>();
    return absl::OkStatus();
  }
  absl::Status OptDouble(const char* key, std::optional<double>* out) const {
    if (!obj_.contains(key) || obj_[key].is_null()) return absl::OkStatus();
    if (!obj_[key].is_number()) return Error(key, "expected a number or null");
    *out = obj_[key].get<double>();
    return absl::OkStatus();
  }
  absl::Status Bool(const char* key, bool* out) const {
    if (!Has(key)) return absl::OkStatus();
    if (!obj_[key].is_boolean()) return Error(key, "expected true or false");
    *out = obj_[key].get<bool>();
    return absl::OkStatus();
  }
  bool Has(const char* key) const { return obj_.contains(key) && !obj_[key].is_null(); }
  absl::Status Error(absl::string_view key, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", prefix_, key, ": ", what));
  }

 private:
  const json& obj_;
  std::string prefix_;
  std::string path_;
};

absl::StatusOr<RopeParams> ParseRope(const json& rope, double default_theta, const Reader& where,
                                     const std::string& key) {
  RopeParams p;
  p.theta = default_theta;
  if (!rope.is_object()) return where.Error(key, "expected an object");
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    if (rope.contains(k) && rope[k].is_string()) {
      type = rope[k].get<std::string>();
      break;
    }
  }
  if (rope.contains("rope_theta")) {
    if (!rope["rope_theta"].is_number())
      return where.Error(key + ".rope_theta", "expected a number");
    p.theta = rope["rope_theta"].get<double>();
  }
  if (type == "linear") {
    if (!rope.contains("factor") || !rope["factor"].is_number()) {
      return where.Error(key + ".factor", "linear rope needs a numeric factor");
    }
    p.linear_factor = rope["factor"].get<double>();
    if (p.linear_factor <= 0) return where.Error(key + ".factor", "must be positive");
  } else if (type != "default") {
    return where.Error(key + ".rope_type",
                       absl::StrCat("unsupported rope type '", type, "' (default or linear only)"));
  }
  return p;
}

absl::Status ParseText(const json& t, const std::string& path, Gemma3TextConfig* c) {
  Reader r(t, "text_config.", path);
  PCSWEEP_RETURN_IF_ERROR(r.Int("vocab_size", &c->vocab_size));
  PCSWEEP_RETURN_IF_ERROR(r.Int("hidden_size", &c->hidden_size));
  PCSWEEP_RETURN_IF_ERROR(r.Int("intermediate_size", &c->intermediate_size));
  PCSWEEP_RETURN_IF_ERROR(r.Int("num_hidden_layers", &c->num_hidden_layers));
  PCSWEEP_RETURN_IF_ERROR(r.Int("num_attention_heads", &c->num_attention_heads));
  PCSWEEP_RETURN_IF_ERROR(r.Int("num_key_value_heads", &c->num_key_value_heads));
  PCSWEEP_RETURN_IF_ERROR(r.Int("head_dim", &c->head_dim));
  PCSWEEP_RETURN_IF_ERROR(r.Double("rms_norm_eps", &c->rms_norm_eps));
  PCSWEEP_RETURN_IF_ERROR(r.Double("query_pre_attn_scalar", &c->query_pre_attn_scalar));
  PCSWEEP_RETURN_IF_ERROR(r.Int("sliding_window", &c->sliding_window));
  PCSWEEP_RETURN_IF_ERROR(r.OptDouble("attn_logit_softcapping", &c->attn_logit_softcapping));
  PCSWEEP_RETURN_IF_ERROR(r.OptDouble("final_logit_softcapping", &c->final_logit_softcapping));
  PCSWEEP_RETURN_IF_ERROR(r.Int("pad_token_id", &c->pad_token_id));
  for (const char* key : {"hidden_activation", "hidden_act"}) {
    if (r.Has(key)) {
      if (!t[key].is_string() || t[key].get<std::string>() != "gelu_pytorch_tanh") {
        return r.Error(key, "only gelu_pytorch_tanh is supported");
      }
    }
  }
  if (r.Has("attention_bias") && t["attention_bias"].is_boolean() &&
      t["attention_bias"].get<bool>()) {
    return r.Error("attention_bias", "attention biases are not supported (Gemma 3 has none)");
  }
  for (auto [key, value] : {std::pair{"hidden_size", c->hidden_size},
                            {"num_hidden_layers", c->num_hidden_layers},
                            {"num_attention_heads", c->num_attention_heads},
                            {"num_key_value_heads", c->num_key_value_heads},
                            {"head_dim", c->head_dim},
                            {"intermediate_size", c->intermediate_size},
                            {"vocab_size", c->vocab_size},
                            {"sliding_window", c->sliding_window}}) {
    if (value <= 0) return r.Error(key, "must be positive");
  }
  if (c->num_attention_heads % c->num_key_value_heads != 0) {
    return r.Error("num_key_value_heads", "must divide num_attention_heads");
  }
  if (c->head_dim % 2 != 0) return r.Error("head_dim", "must be even for RoPE");

  // Layer types: explicit list (4.54+, 5.x) or the sliding_window_pattern rule.
  c->layer_types.clear();
  if (r.Has("layer_types")) {
    if (!t["layer_types"].is_array()) return r.Error("layer_types", "expected a list");
    for (const auto& v : t["layer_types"]) {
      const std::string s = v.is_string() ? v.get<std::string>() : "";
      if (s == "sliding_attention") {
        c->layer_types.push_back(LayerType::kSliding);
      } else if (s == "full_attention") {
        c->layer_types.push_back(LayerType::kFull);
      } else {
        return r.Error("layer_types", absl::StrCat("unknown layer type ", v.dump()));
      }
    }
    if (static_cast<int64_t>(c->layer_types.size()) != c->num_hidden_layers) {
      return r.Error("layer_types",
                     absl::StrCat("has ", c->layer_types.size(),
                                  " entries but num_hidden_layers is ", c->num_hidden_layers));
    }
  } else {
    int64_t pattern = 6;
    PCSWEEP_RETURN_IF_ERROR(r.Int("_sliding_window_pattern", &pattern));
    PCSWEEP_RETURN_IF_ERROR(r.Int("sliding_window_pattern", &pattern));
    if (pattern <= 0) return r.Error("sliding_window_pattern", "must be positive");
    for (int64_t i = 0; i < c->num_hidden_layers; ++i) {
      c->layer_types.push_back((i + 1) % pattern != 0 ? LayerType::kSliding : LayerType::kFull);
    }
  }

  // RoPE: 5.x rope_parameters (per layer type, or one flat dict) wins over the 4.5x keys.
  if (r.Has("rope_parameters")) {
    const json& rp = t["rope_parameters"];
    if (!rp.is_object()) return r.Error("rope_parameters", "expected an object");
    if (rp.contains("full_attention") || rp.contains("sliding_attention")) {
      if (rp.contains("full_attention")) {
        PCSWEEP_ASSIGN_OR_RETURN(c->rope_full, ParseRope(rp["full_attention"], 1e6, r,
                                                         "rope_parameters.full_attention"));
      }
      if (rp.contains("sliding_attention")) {
        PCSWEEP_ASSIGN_OR_RETURN(c->rope_sliding, ParseRope(rp["sliding_attention"], 1e4, r,
                                                            "rope_parameters.sliding_attention"));
      }
    } else {
      PCSWEEP_ASSIGN_OR_RETURN(c->rope_full, ParseRope(rp, 1e6, r, "rope_parameters"));
    }
  } else {
    PCSWEEP_RETURN_IF_ERROR(r.Double("rope_theta", &c->rope_full.theta));
    PCSWEEP_RETURN_IF_ERROR(r.Double("rope_local_base_freq", &c->rope_sliding.theta));
    if (r.Has("rope_scaling")) {
      PCSWEEP_ASSIGN_OR_RETURN(c->rope_full,
                               ParseRope(t["rope_scaling"], c->rope_full.theta, r, "rope_scaling"));
    }
  }
  PCSWEEP_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c->tie_word_embeddings));
  return absl::OkStatus();
}

absl::Status ParseVision(const json& v, const std::string& path, SiglipVisionConfig* c) {
  Reader r(v, "vision_config.", path);
  PCSWEEP_RETURN_IF_ERROR(r.Int("hidden_size", &c->hidden_size));
  PCSWEEP_RETURN_IF_ERROR(r.Int("intermediate_size", &c->intermediate_size));
  PCSWEEP_RETURN_IF_ERROR(r.Int("num_hidden_layers", &c->num_hidden_layers));
  PCSWEEP_RETURN_IF_ERROR(r.Int("num_attention_heads", &c->num_attention_heads));
  PCSWEEP_RETURN_IF_ERROR(r.Int("num_channels", &c->num_channels));
  PCSWEEP_RETURN_IF_ERROR(r.Int("image_size", &c->image_size));
  PCSWEEP_RETURN_IF_ERROR(r.Int("patch_size", &c->patch_size));
  PCSWEEP_RETURN_IF_ERROR(r.Double("layer_norm_eps", &c->layer_norm_eps));
  if (r.Has("hidden_act") &&
      (!v["hidden_act"].is_string() || v["hidden_act"].get<std::string>() != "gelu_pytorch_tanh")) {
    return r.Error("hidden_act", "only gelu_pytorch_tanh is supported");
  }
  if (r.Has("vision_use_head") && v["vision_use_head"].is_boolean() &&
      v["vision_use_head"].get<bool>()) {
    return r.Error("vision_use_head",
                   "the SigLIP attention-pooling head is not supported (Gemma 3 has none)");
  }
  for (auto [key, value] : {std::pair{"hidden_size", c->hidden_size},
                            {"num_attention_heads", c->num_attention_heads},
                            {"num_hidden_layers", c->num_hidden_layers},
                            {"patch_size", c->patch_size},
                            {"image_size", c->image_size}}) {
    if (value <= 0) return r.Error(key, "must be positive");
  }
  if (c->hidden_size % c->num_attention_heads != 0) {
    return r.Error("num_attention_heads", "must divide hidden_size");
  }
  if (c->image_size % c->patch_size != 0) return r.Error("patch_size", "must divide image_size");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Gemma3Config> ParseGemma3Config(absl::string_view json_text,
                                               absl::string_view path_view) {
  const std::string path(path_view);
  json j;
  try {
    j = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  Gemma3Config c;
  Reader r(j, "", path);
  if (r.Has("model_type") && j["model_type"] != "gemma3") {
    return r.Error("model_type", absl::StrCat("expected \"gemma3\", got ", j["model_type"].dump()));
  }
  PCSWEEP_RETURN_IF_ERROR(r.Int("mm_tokens_per_image", &c.mm_tokens_per_image));
  PCSWEEP_RETURN_IF_ERROR(r.Int("boi_token_index", &c.boi_token_index));
  PCSWEEP_RETURN_IF_ERROR(r.Int("eoi_token_index", &c.eoi_token_index));
  PCSWEEP_RETURN_IF_ERROR(r.Int("image_token_index", &c.image_token_index));
  if (r.Has("text_config")) {
    if (!j["text_config"].is_object()) return r.Error("text_config", "expected an object");
    PCSWEEP_RETURN_IF_ERROR(ParseText(j["text_config"], path, &c.text));
  } else {
    PCSWEEP_RETURN_IF_ERROR(ParseText(json::object(), path, &c.text));
  }
  if (r.Has("vision_config")) {
    if (!j["vision_config"].is_object()) return r.Error("vision_config", "expected an object");
    PCSWEEP_RETURN_IF_ERROR(ParseVision(j["vision_config"], path, &c.vision));
  }
  // The top-level flag is what Gemma3ForConditionalGeneration ties on.
  PCSWEEP_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c.text.tie_word_embeddings));
  if (!c.text.tie_word_embeddings) {
    return r.Error("tie_word_embeddings", "an untied lm_head is not supported (Gemma 3 ties it)");
  }
  const int64_t per_side = c.vision.image_size / c.vision.patch_size;
  const int64_t tokens_side =
      static_cast<int64_t>(std::llround(std::sqrt(double(c.mm_tokens_per_image))));
  if (c.mm_tokens_per_image <= 0 || tokens_side * tokens_side != c.mm_tokens_per_image ||
      per_side % tokens_side != 0) {
    return r.Error("mm_tokens_per_image",
                   absl::StrCat(c.mm_tokens_per_image, " is not a square that divides the ",
                                per_side, "x", per_side, " patch grid"));
  }
  return c;
}

absl::StatusOr<Gemma3Config> LoadGemma3Config(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string file =
      fs::is_directory(path, ec) ? (fs::path(path) / "config.json").string() : path;
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat(file, ": cannot read config"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseGemma3Config(ss.str(), file);
}

}  // namespace pcsweep::engine
