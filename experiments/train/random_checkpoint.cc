#include "experiments/train/random_checkpoint.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "experiments/engine/gemma3_config.h"
#include "experiments/engine/safetensors.h"
#include "experiments/engine/torch_status.h"
#include "experiments/engine/weight_names.h"
#include "experiments/train/trainer.h"
#include "nlohmann/json.hpp"

namespace pcsweep::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

absl::StatusOr<json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot read"));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not valid JSON: ", e.what()));
  }
}

// Keeps the first `layers` entries of `section`'s layer list; 0 keeps them all.
absl::Status TrimLayers(json& config, const char* section, int layers, const fs::path& path) {
  if (layers <= 0) return absl::OkStatus();
  if (!config.contains(section) || !config[section].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": no ", section, " object"));
  }
  json& s = config[section];
  const int64_t have = s.value("num_hidden_layers", int64_t{0});
  if (layers > have) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", section,
                                                   ".num_hidden_layers is ", have, ", cannot keep ",
                                                   layers, " layers"));
  }
  s["num_hidden_layers"] = layers;
  if (s.contains("layer_types") && s["layer_types"].is_array()) {
    json kept = json::array();
    for (int i = 0; i < layers && i < static_cast<int>(s["layer_types"].size()); ++i)
      kept.push_back(s["layer_types"][i]);
    s["layer_types"] = kept;
  }
  return absl::OkStatus();
}

// Stored name -> shard file name, as the folder lists them.
absl::StatusOr<std::map<std::string, std::string>> StoredLayout(const fs::path& dir,
                                                                bool* sharded) {
  std::map<std::string, std::string> layout;
  const fs::path index = dir / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    *sharded = true;
    PCSWEEP_ASSIGN_OR_RETURN(json j, ReadJson(index));
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return absl::InvalidArgumentError(absl::StrCat(index.string(), ": no weight_map object"));
    for (const auto& [name, shard] : j["weight_map"].items()) {
      const std::string file = shard.is_string() ? shard.get<std::string>() : "";
      if (file.empty() || file.find('/') != std::string::npos || file == "..") {
        return absl::InvalidArgumentError(absl::StrCat(index.string(), ": weight_map['", name,
                                                       "'] is not a file name in the folder"));
      }
      layout[name] = file;
    }
    return layout;
  }
  *sharded = false;
  const fs::path single = dir / "model.safetensors";
  if (!fs::exists(single, ec)) {
    return absl::NotFoundError(
        absl::StrCat(dir.string(), ": neither model.safetensors.index.json nor model.safetensors"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(auto file, engine::SafetensorsFile::Open(single.string()));
  for (const std::string& name : file->names()) layout[name] = "model.safetensors";
  return layout;
}

uint64_t NameHash(const std::string& name) {  // FNV-1a: stable across runs and compilers
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

struct PlannedTensor {
  std::string stored, canonical;
  std::vector<int64_t> shape;
};

absl::Status WriteShard(const fs::path& path, const std::vector<PlannedTensor>& planned,
                        torch::ScalarType dtype, engine::DType stored_dtype,
                        const RandomCheckpointOptions& options, int64_t* bytes) {
  std::vector<torch::Tensor> keep;
  std::vector<engine::TensorToWrite> tensors;
  torch::NoGradGuard no_grad;
  for (const PlannedTensor& p : planned) {
    torch::Tensor t = torch::empty(p.shape, torch::TensorOptions().dtype(dtype));
    torch::manual_seed(options.seed ^ NameHash(p.canonical));
    FillInitial(t, p.canonical, options.std);
    engine::TensorToWrite w;
    w.name = p.stored;
    w.dtype = stored_dtype;
    w.shape = p.shape;
    w.data = t.data_ptr();
    w.nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    *bytes += static_cast<int64_t>(w.nbytes);
    keep.push_back(std::move(t));
    tensors.push_back(std::move(w));
  }
  return engine::WriteSafetensors(path.string(), tensors, {{"format", "pt"}});
}

absl::Status CopyOtherFiles(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "config.json" ||
        name == "model.safetensors.index.json" || entry.path().extension() == ".safetensors")
      continue;
    fs::copy_file(entry.path(), to / name, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat((to / name).string(), ": cannot copy from ",
                                              from.string(), ": ", ec.message()));
    }
  }
  if (ec) return absl::InternalError(absl::StrCat(from.string(), ": cannot list: ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path.string(), ": cannot write"));
  return absl::OkStatus();
}

}  // namespace

InitialFill InitialFillOf(const std::string& name) {
  if (absl::EndsWith(name, ".bias")) return InitialFill::kZeros;
  if (absl::StartsWith(name, "vision_tower") &&
      (absl::StrContains(name, "layer_norm") || absl::StrContains(name, "post_layernorm")))
    return InitialFill::kOnes;  // SigLIP LayerNorm: y = w * x̂ + b
  if (absl::StrContains(name, "norm")) return InitialFill::kZeros;  // Gemma: y = (1 + w) * x̂
  return InitialFill::kNormal;
}

void FillInitial(at::Tensor& weight, const std::string& name, double std) {
  torch::NoGradGuard no_grad;
  switch (InitialFillOf(name)) {
    case InitialFill::kZeros:
      weight.zero_();
      break;
    case InitialFill::kOnes:
      weight.fill_(1.0);
      break;
    case InitialFill::kNormal:
      weight.normal_(0.0, std);
      break;
  }
}

absl::StatusOr<RandomCheckpointReport> WriteRandomCheckpoint(
    const RandomCheckpointOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path like(options.like_dir), out(options.out_dir);
  torch::ScalarType dtype;
  engine::DType stored_dtype;
  std::string dtype_name;
  if (options.dtype == "bf16") {
    dtype = torch::kBFloat16, stored_dtype = engine::DType::kBF16, dtype_name = "bfloat16";
  } else if (options.dtype == "fp32") {
    dtype = torch::kFloat, stored_dtype = engine::DType::kF32, dtype_name = "float32";
  } else if (options.dtype == "fp16") {
    dtype = torch::kHalf, stored_dtype = engine::DType::kF16, dtype_name = "float16";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("bad dtype '", options.dtype, "' (bf16, fp32, fp16)"));
  }
  std::error_code ec;
  if (fs::exists(out / "config.json", ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        out.string(), ": already holds a model (config.json); choose an empty folder"));
  }

  const fs::path config_path = like / "config.json";
  PCSWEEP_ASSIGN_OR_RETURN(json config, ReadJson(config_path));
  PCSWEEP_ASSIGN_OR_RETURN(const engine::Gemma3Config full,
                           engine::ParseGemma3Config(config.dump(), config_path.string()));
  PCSWEEP_RETURN_IF_ERROR(TrimLayers(config, "text_config", options.text_layers, config_path));
  PCSWEEP_RETURN_IF_ERROR(TrimLayers(config, "vision_config", options.vision_layers, config_path));
  for (json* section : {&config, &config["text_config"]}) {
    for (const char* key : {"torch_dtype", "dtype"}) {
      if (section->contains(key)) (*section)[key] = dtype_name;
    }
  }
  PCSWEEP_ASSIGN_OR_RETURN(const engine::Gemma3Config kept,
                           engine::ParseGemma3Config(config.dump(), config_path.string()));

  bool sharded = false;
  PCSWEEP_ASSIGN_OR_RETURN(const auto layout, StoredLayout(like, &sharded));
  const std::string listing =
      (like / (sharded ? "model.safetensors.index.json" : "model.safetensors")).string();
  std::map<std::string, std::vector<int64_t>> wanted, any_size;
  for (auto& w : engine::ExpectedWeights(kept)) wanted[w.name] = w.shape;
  for (auto& w : engine::ExpectedWeights(full)) any_size[w.name] = w.shape;

  std::map<std::string, std::vector<PlannedTensor>> by_shard;
  std::set<std::string> covered;
  for (const auto& [stored, shard] : layout) {
    auto canonical = engine::CanonicalWeightName(stored);
    if (!canonical.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(listing, ": ", canonical.status().message()));
    }
    if (!canonical->has_value()) continue;  // a tied lm_head: the engine ignores it too
    auto it = wanted.find(**canonical);
    if (it == wanted.end()) {
      if (any_size.count(**canonical)) continue;  // a layer left out by text/vision_layers
      return absl::InvalidArgumentError(absl::StrCat(
          listing, ": tensor '", stored, "' is not part of the model config.json describes"));
    }
    covered.insert(it->first);
    by_shard[shard].push_back({stored, it->first, it->second});
  }
  for (const auto& [name, shape] : wanted) {
    if (!covered.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(listing, ": lists no tensor for weight '", name, "' of config.json"));
    }
  }

  return engine::GuardTorch(
      absl::StrCat("writing a random checkpoint to ", out.string()),
      [&]() -> absl::StatusOr<RandomCheckpointReport> {
        fs::create_directories(out, ec);
        if (ec) {
          return absl::InternalError(
              absl::StrCat(out.string(), ": cannot create folder: ", ec.message()));
        }
        RandomCheckpointReport report;
        json weight_map = json::object();
        for (const auto& [shard, planned] : by_shard) {
          PCSWEEP_RETURN_IF_ERROR(
              WriteShard(out / shard, planned, dtype, stored_dtype, options, &report.bytes));
          for (const PlannedTensor& p : planned) weight_map[p.stored] = shard;
          report.tensors += static_cast<int64_t>(planned.size());
          ++report.shards;
        }
        if (sharded) {
          json index = {{"metadata", {{"total_size", report.bytes}}}, {"weight_map", weight_map}};
          PCSWEEP_RETURN_IF_ERROR(
              WriteText(out / "model.safetensors.index.json", index.dump(2) + "\n"));
        }
        PCSWEEP_RETURN_IF_ERROR(CopyOtherFiles(like, out));
        PCSWEEP_RETURN_IF_ERROR(WriteText(out / "config.json", config.dump(2) + "\n"));
        report.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return report;
      });
}

}  // namespace pcsweep::train
