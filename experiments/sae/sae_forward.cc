// `pcsweep-run forward --sae L:DIR` (sae_jobs.h): SAE reconstructions of the hidden states
// that `forward` wrote, added to its output file.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "experiments/engine/safetensors.h"
#include "experiments/sae/sae.h"
#include "experiments/sae/sae_jobs.h"

namespace pcsweep::sae {

absl::Status AddSaeReconstructions(const std::string& forward_out,
                                   const std::vector<std::string>& specs) {
  if (specs.empty()) return absl::OkStatus();
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<engine::SafetensorsFile> file,
                           engine::SafetensorsFile::Open(forward_out));
  int last_hidden = -1;
  for (const std::string& name : file->names()) {
    int index = -1;
    if (absl::StartsWith(name, "hidden_states.") && absl::SimpleAtoi(name.substr(14), &index)) {
      last_hidden = std::max(last_hidden, index);
    }
  }
  std::vector<torch::Tensor> keep;  // owns the new tensors until the file is written
  std::vector<engine::TensorToWrite> tensors;
  for (const std::string& name : file->names()) {
    PCSWEEP_ASSIGN_OR_RETURN(engine::TensorView view, file->Get(name));
    tensors.push_back({name, view.dtype, view.shape, view.data, view.nbytes});
  }
  for (const std::string& spec : specs) {
    const std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits(':', 1));
    int layer = -1;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &layer) || layer < 0 || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sae '", spec, "': expected LAYER:DIR, e.g. 2:sae_layer2"));
    }
    if (layer + 1 >= last_hidden) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sae '", spec, "': the output of decoder layer ", layer, " is not in ",
                       forward_out, " before the final norm (hidden_states.1..", last_hidden - 1,
                       " are layers 0..", last_hidden - 2, ")"));
    }
    PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, JumpReluSae::Load(parts[1]));
    const std::string hidden_name = absl::StrCat("hidden_states.", layer + 1);
    PCSWEEP_ASSIGN_OR_RETURN(engine::TensorView view, file->Get(hidden_name));
    if (view.dtype != engine::DType::kF32 || view.shape.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(forward_out, ": tensor '", hidden_name, "' is not F32"));
    }
    PCSWEEP_RETURN_IF_ERROR(sae.CheckDModel(
        view.shape.back(), absl::StrCat(forward_out, " tensor '", hidden_name, "'")));
    try {
      torch::NoGradGuard no_grad;
      const torch::Tensor x =
          torch::from_blob(const_cast<std::byte*>(view.data), view.shape, torch::kFloat);
      keep.push_back(sae.Reconstruct(x).contiguous());
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("--sae '", spec, "': libtorch: ", e.what_without_backtrace()));
    }
    const torch::Tensor& r = keep.back();
    const std::string name = absl::StrCat("sae_recon.", layer);
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [&](const auto& t) { return t.name == name; }),
                  tensors.end());
    tensors.push_back({name, engine::DType::kF32, r.sizes().vec(), r.data_ptr(),
                       static_cast<size_t>(r.nbytes())});
  }
  return engine::WriteSafetensors(forward_out, tensors, file->metadata());
}

}  // namespace pcsweep::sae
