#include "experiments/sae/sae.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "experiments/engine/safetensors.h"
#include "experiments/engine/torch_status.h"

namespace pcsweep::sae {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

absl::StatusOr<torch::Tensor> ToTensor(const engine::TensorView& view, const std::string& file) {
  torch::ScalarType type;
  switch (view.dtype) {
    case engine::DType::kF32:
      type = torch::kFloat;
      break;
    case engine::DType::kF16:
      type = torch::kHalf;
      break;
    case engine::DType::kBF16:
      type = torch::kBFloat16;
      break;
    case engine::DType::kF64:
      type = torch::kDouble;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(file, ": tensor '", view.name, "' has dtype ",
                                                     engine::DTypeName(view.dtype),
                                                     ", expected a float type"));
  }
  // from_blob borrows the mapping; the clone owns the data after the file is closed.
  return torch::from_blob(const_cast<std::byte*>(view.data), view.shape,
                          torch::TensorOptions().dtype(type))
      .to(torch::kFloat)
      .clone();
}

std::string ShapeText(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) absl::StrAppend(&s, i ? ", " : "", t.size(i));
  return s + "]";
}

using engine::GuardTorch;

}  // namespace

absl::StatusOr<JumpReluSae> JumpReluSae::FromTensors(torch::Tensor w_enc, torch::Tensor w_dec,
                                                     torch::Tensor b_enc, torch::Tensor b_dec,
                                                     torch::Tensor threshold,
                                                     const std::string& where) {
  if (w_enc.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": w_enc must be [d_model, d_sae], got ", ShapeText(w_enc)));
  }
  const int64_t d_model = w_enc.size(0), d_sae = w_enc.size(1);
  auto expect = [&](const torch::Tensor& t, const char* name,
                    std::vector<int64_t> shape) -> absl::Status {
    if (t.sizes().vec() != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": tensor '", name, "' has shape ", ShapeText(t), ", expected [",
          absl::StrJoin(shape, ", "), "] for w_enc [d_model=", d_model, ", d_sae=", d_sae, "]"));
    }
    return absl::OkStatus();
  };
  PCSWEEP_RETURN_IF_ERROR(expect(w_dec, "w_dec", {d_sae, d_model}));
  PCSWEEP_RETURN_IF_ERROR(expect(b_enc, "b_enc", {d_sae}));
  PCSWEEP_RETURN_IF_ERROR(expect(b_dec, "b_dec", {d_model}));
  PCSWEEP_RETURN_IF_ERROR(expect(threshold, "threshold", {d_sae}));
  JumpReluSae sae;
  sae.w_enc_ = w_enc.to(torch::kFloat).contiguous();
  sae.w_dec_ = w_dec.to(torch::kFloat).contiguous();
  sae.b_enc_ = b_enc.to(torch::kFloat).contiguous();
  sae.b_dec_ = b_dec.to(torch::kFloat).contiguous();
  sae.threshold_ = threshold.to(torch::kFloat).contiguous();
  sae.source_ = where;
  return sae;
}

absl::StatusOr<JumpReluSae> JumpReluSae::Load(const std::string& dir) {
  const bool is_file = fs::is_regular_file(dir);
  const std::string params = is_file ? dir : (fs::path(dir) / "params.safetensors").string();
  if (!fs::exists(params))
    return absl::NotFoundError(absl::StrCat(params, ": no SAE parameters (params.safetensors)"));
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<engine::SafetensorsFile> file,
                           engine::SafetensorsFile::Open(params));
  std::map<std::string, torch::Tensor> tensors;
  for (const char* name : {"w_enc", "w_dec", "b_enc", "b_dec", "threshold"}) {
    auto view = file->Get(name);
    if (!view.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(params, ": missing SAE tensor '", name,
                       "' (expected w_enc, w_dec, b_enc, b_dec, threshold)"));
    }
    auto tensor = GuardTorch(params, [&]() { return ToTensor(*view, params); });
    if (!tensor.ok()) return tensor.status();
    tensors[name] = *tensor;
  }
  PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae,
                           FromTensors(tensors["w_enc"], tensors["w_dec"], tensors["b_enc"],
                                       tensors["b_dec"], tensors["threshold"], params));
  const fs::path config_path =
      (is_file ? fs::path(dir).parent_path() : fs::path(dir)) / "config.json";
  if (fs::exists(config_path)) {
    std::ifstream in(config_path);
    std::stringstream text;
    text << in.rdbuf();
    try {
      sae.config_ = json::parse(text.str());
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path.string(), ": not valid JSON: ", e.what()));
    }
    if (!sae.config_.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path.string(), ": expected a JSON object"));
    }
  }
  return sae;
}

absl::Status JumpReluSae::Save(const std::string& dir, json config) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create folder: ", ec.message()));
  const std::map<std::string, torch::Tensor> named = {{"w_enc", w_enc_.cpu().contiguous()},
                                                      {"w_dec", w_dec_.cpu().contiguous()},
                                                      {"b_enc", b_enc_.cpu().contiguous()},
                                                      {"b_dec", b_dec_.cpu().contiguous()},
                                                      {"threshold", threshold_.cpu().contiguous()}};
  std::vector<engine::TensorToWrite> tensors;
  for (const auto& [name, t] : named) {
    tensors.push_back({name, engine::DType::kF32, t.sizes().vec(), t.data_ptr(),
                       static_cast<size_t>(t.nbytes())});
  }
  const std::string params = (fs::path(dir) / "params.safetensors").string();
  PCSWEEP_RETURN_IF_ERROR(engine::WriteSafetensors(params, tensors, {{"format", "pt"}}));
  if (!config.is_object()) config = json::object();
  if (!config.contains("architecture")) config["architecture"] = "jump_relu";
  if (!config.contains("type")) config["type"] = "sae";
  config["width"] = d_sae();
  config["d_in"] = d_model();
  const std::string config_path = (fs::path(dir) / "config.json").string();
  std::ofstream out(config_path, std::ios::trunc);
  out << config.dump(2) << "\n";
  if (!out.good()) return absl::InternalError(absl::StrCat(config_path, ": cannot write"));
  return absl::OkStatus();
}

absl::Status JumpReluSae::CheckDModel(int64_t d_model, const std::string& what) const {
  if (d_model == this->d_model()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(source_, ": tensor 'w_enc' has d_model ",
                                                 this->d_model(), " but ", what, " has ", d_model));
}

torch::Tensor JumpReluSae::Encode(const torch::Tensor& x) const {
  const torch::Tensor pre = torch::matmul(x.to(w_enc_.device(), torch::kFloat), w_enc_) + b_enc_;
  return pre * pre.gt(threshold_).to(torch::kFloat);
}

torch::Tensor JumpReluSae::Decode(const torch::Tensor& features) const {
  return torch::matmul(features, w_dec_) + b_dec_;
}

JumpReluSae JumpReluSae::To(const torch::Device& device) const {
  JumpReluSae copy = *this;
  copy.w_enc_ = w_enc_.to(device);
  copy.w_dec_ = w_dec_.to(device);
  copy.b_enc_ = b_enc_.to(device);
  copy.b_dec_ = b_dec_.to(device);
  copy.threshold_ = threshold_.to(device);
  return copy;
}

int JumpReluSae::ConfigLayer() const {
  if (!config_.contains("hf_hook_point_in") || !config_["hf_hook_point_in"].is_string()) return -1;
  static const std::regex pattern(R"(layers\.(\d+)\.output$)");
  std::smatch match;
  const std::string hook = config_["hf_hook_point_in"].get<std::string>();
  if (!std::regex_search(hook, match, pattern)) return -1;
  return std::stoi(match[1].str());
}

ReconstructionStats MeasureReconstruction(const JumpReluSae& sae, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const torch::Tensor xs = x.to(sae.w_enc().device(), torch::kDouble);
  const torch::Tensor features = sae.Encode(x);
  const torch::Tensor recon = sae.Decode(features).to(torch::kDouble);
  ReconstructionStats stats;
  stats.positions = xs.size(0);
  stats.sse = (xs - recon).pow(2).sum().item<double>();
  stats.sst = (xs - xs.mean(0, /*keepdim=*/true)).pow(2).sum().item<double>();
  stats.l0 =
      features.gt(0).logical_or(features.lt(0)).to(torch::kDouble).sum(-1).mean().item<double>();
  return stats;
}

engine::ResidualHook MakeFeatureClampHook(const JumpReluSae& sae, int layer, int64_t feature,
                                          double scale) {
  torch::Tensor w_enc_col = sae.w_enc().select(1, feature).contiguous();  // [d_model]
  torch::Tensor w_dec_row = sae.w_dec().select(0, feature).contiguous();  // [d_model]
  const double b_enc = sae.b_enc()[feature].item<double>();
  const double theta = sae.threshold()[feature].item<double>();
  return [=](int at, const torch::Tensor& x) -> torch::Tensor {
    if (at != layer) return torch::Tensor();
    // The feature is read in fp32 whatever the model's dtype, so the edit is the SAE's own.
    const torch::Tensor xf = x.to(torch::kFloat);
    const torch::Tensor pre = torch::matmul(xf, w_enc_col.to(x.device())) + b_enc;  // [B, L]
    const torch::Tensor f = pre * pre.gt(theta).to(torch::kFloat);
    const torch::Tensor delta = (1.0 - scale) * f.unsqueeze(-1) * w_dec_row.to(x.device());
    return (xf - delta).to(x.scalar_type());
  };
}

}  // namespace pcsweep::sae
