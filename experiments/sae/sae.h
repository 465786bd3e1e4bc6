// JumpReLU sparse autoencoders on the residual stream (Gemma Scope 2 layout, model-spec §12):
// loading and saving `params.safetensors` (+ optional `config.json`), encode / decode, the
// per-prompt reconstruction statistics of the transfer check, and the residual hook that
// scales one feature's contribution (feature clamping).
//
//   pre   = x · w_enc + b_enc                 (no b_dec subtraction, as Gemma Scope 2)
//   f     = pre · 1[pre > threshold]          (JumpReLU; trained thresholds are positive)
//   x_hat = f · w_dec + b_dec
//
// Ownership: a JumpReluSae owns its tensors (fp32, on one device). Thread-safety: const
// methods are safe to call concurrently; Load/To create new objects.
// Include only from experiments/ (libtorch header).
#ifndef PCSWEEP_EXPERIMENTS_SAE_SAE_H_
#define PCSWEEP_EXPERIMENTS_SAE_SAE_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/engine/model.h"
#include "nlohmann/json.hpp"

namespace pcsweep::sae {

class JumpReluSae {
 public:
  // Reads `<dir>/params.safetensors` (w_enc [d_model, d_sae], w_dec [d_sae, d_model],
  // b_enc [d_sae], b_dec [d_model], threshold [d_sae]; F32/F16/BF16, kept as fp32) and
  // `<dir>/config.json` when present. `dir` may also name the .safetensors file itself.
  // Possible errors: NotFound (no params file); InvalidArgument naming the file and tensor
  // for a missing tensor, an unsupported dtype or inconsistent shapes, or naming config.json
  // when it is not valid JSON.
  static absl::StatusOr<JumpReluSae> Load(const std::string& dir);

  // Validates the shapes (as Load) of tensors made in memory; `where` names them in errors.
  // Possible errors: InvalidArgument naming the tensor and both sizes.
  static absl::StatusOr<JumpReluSae> FromTensors(torch::Tensor w_enc, torch::Tensor w_dec,
                                                 torch::Tensor b_enc, torch::Tensor b_dec,
                                                 torch::Tensor threshold,
                                                 const std::string& where = "sae");

  // Writes params.safetensors (fp32) and config.json (`config`, with architecture / width /
  // d_in filled in when absent) into `dir` (created).
  // Possible errors: Internal naming the file on I/O failure.
  absl::Status Save(const std::string& dir, nlohmann::json config = nlohmann::json::object()) const;

  // InvalidArgument "<source>: w_enc has d_model N but <what> has M" when the residual width
  // of the model (or tensor) differs from the SAE's. Call before Encode on foreign data.
  absl::Status CheckDModel(int64_t d_model, const std::string& what) const;

  // x [..., d_model] (any float dtype/device) -> features [..., d_sae] fp32 on the SAE's
  // device. Throws c10::Error on a shape mismatch: call CheckDModel first.
  torch::Tensor Encode(const torch::Tensor& x) const;
  torch::Tensor Decode(const torch::Tensor& features) const;  // [..., d_sae] -> [..., d_model]
  torch::Tensor Reconstruct(const torch::Tensor& x) const { return Decode(Encode(x)); }

  // A copy on `device`.
  JumpReluSae To(const torch::Device& device) const;

  int64_t d_model() const { return w_enc_.size(0); }
  int64_t d_sae() const { return w_enc_.size(1); }
  const torch::Tensor& w_enc() const { return w_enc_; }
  const torch::Tensor& w_dec() const { return w_dec_; }
  const torch::Tensor& b_enc() const { return b_enc_; }
  const torch::Tensor& b_dec() const { return b_dec_; }
  const torch::Tensor& threshold() const { return threshold_; }
  const nlohmann::json& config() const { return config_; }
  const std::string& source() const { return source_; }
  // The decoder layer of `config.json` ("hf_hook_point_in": "model.layers.{L}.output"), or -1.
  int ConfigLayer() const;

 private:
  JumpReluSae() = default;
  torch::Tensor w_enc_, w_dec_, b_enc_, b_dec_, threshold_;
  nlohmann::json config_ = nlohmann::json::object();
  std::string source_;
};

// Reconstruction quality of one prompt: positions are the rows of x (callers drop BOS and
// padding). SST is taken about the prompt's own mean activation (per dimension).
struct ReconstructionStats {
  double sse = 0;  // Σ_t ‖x_t − x̂_t‖²
  double sst = 0;  // Σ_t ‖x_t − x̄‖²
  double l0 = 0;   // mean number of active features per position
  int64_t positions = 0;
  double r2() const { return sst > 0 ? 1.0 - sse / sst : (sse == 0 ? 1.0 : -INFINITY); }
  double fvu() const { return 1.0 - r2(); }
};

// x [T, d_model] with T >= 1. Throws c10::Error on a shape mismatch (CheckDModel first).
ReconstructionStats MeasureReconstruction(const JumpReluSae& sae, const torch::Tensor& x);

// The residual hook of feature clamping at decoder layer `layer`: there,
// x ← x − (1 − scale) · f_j(x) · w_dec[j], i.e. the feature's contribution to the SAE
// reconstruction is scaled by `scale` (0 removes it, 1 changes nothing) while the SAE's
// error term stays in the stream. Other layers pass through. The hook keeps a copy of the
// SAE's column j / row j on the model's device and dtype.
engine::ResidualHook MakeFeatureClampHook(const JumpReluSae& sae, int layer, int64_t feature,
                                          double scale);

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_SAE_H_
