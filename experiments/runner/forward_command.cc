#include "experiments/runner/forward_command.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "experiments/engine/engine.h"
#include "experiments/engine/safetensors.h"

namespace pcsweep::runner {
namespace {

using engine::DType;

absl::StatusOr<torch::Tensor> ReadTensor(const engine::SafetensorsFile& file,
                                         const std::string& name) {
  PCSWEEP_ASSIGN_OR_RETURN(engine::TensorView v, file.Get(name));
  return torch::from_blob(const_cast<std::byte*>(v.data), v.shape,
                          torch::TensorOptions().dtype(engine::ToTorchDType(v.dtype)))
      .clone();
}

}  // namespace

absl::Status RunForwardCommand(const ForwardCommandOptions& o) {
  PCSWEEP_ASSIGN_OR_RETURN(auto inputs, engine::SafetensorsFile::Open(o.inputs));
  if (!inputs->Contains("input_ids")) {
    return absl::InvalidArgumentError(absl::StrCat(o.inputs, ": no tensor 'input_ids'"));
  }
  engine::EngineOptions eo;
  eo.model_dir = o.model_dir;
  eo.adapter_dir = o.adapter_dir;
  eo.dtype = o.dtype;
  eo.device = o.device;
  eo.bf16_rope_frequencies = o.bf16_rope_frequencies;
  PCSWEEP_ASSIGN_OR_RETURN(auto eng, engine::Engine::Load(eo));
  torch::NoGradGuard no_grad;
  engine::ModelInputs in;
  PCSWEEP_ASSIGN_OR_RETURN(in.input_ids, ReadTensor(*inputs, "input_ids"));
  if (inputs->Contains("attention_mask")) {
    PCSWEEP_ASSIGN_OR_RETURN(in.attention_mask, ReadTensor(*inputs, "attention_mask"));
  }
  if (inputs->Contains("token_type_ids")) {
    PCSWEEP_ASSIGN_OR_RETURN(in.token_type_ids, ReadTensor(*inputs, "token_type_ids"));
  }
  if (inputs->Contains("pixel_values")) {
    PCSWEEP_ASSIGN_OR_RETURN(in.pixel_values, ReadTensor(*inputs, "pixel_values"));
  }
  for (const auto* t : {&in.input_ids, &in.attention_mask, &in.token_type_ids}) {
    if (t->defined() && t->is_floating_point()) {
      return absl::InvalidArgumentError(absl::StrCat(
          o.inputs, ": input_ids, attention_mask and token_type_ids must be integer tensors"));
    }
  }
  if (in.pixel_values.defined() && !in.pixel_values.is_floating_point()) {
    return absl::InvalidArgumentError(
        absl::StrCat(o.inputs, ": pixel_values must be a float tensor"));
  }
  engine::ForwardOptions fo;
  fo.output_hidden_states = true;
  auto out = eng->Forward(in, fo);
  if (!out.ok()) return Annotate(out.status(), o.inputs);

  std::map<std::string, torch::Tensor> results;
  results["logits"] = out->logits;
  for (size_t i = 0; i < out->hidden_states.size(); ++i)
    results[absl::StrCat("hidden_states.", i)] = out->hidden_states[i];
  if (out->image_features.defined()) results["image_features"] = out->image_features;
  if (inputs->Contains("text_input_ids")) {
    engine::ModelInputs text;
    PCSWEEP_ASSIGN_OR_RETURN(text.input_ids, ReadTensor(*inputs, "text_input_ids"));
    engine::ForwardOptions text_options;
    auto text_out = eng->Forward(text, text_options);
    if (!text_out.ok())
      return Annotate(text_out.status(), absl::StrCat(o.inputs, ": text_input_ids"));
    results["text_logits"] = text_out->logits;
  }
  std::vector<torch::Tensor> keep;
  std::vector<engine::TensorToWrite> tensors;
  for (auto& [name, t] : results) {
    torch::Tensor c = t.to(torch::kCPU, torch::kFloat).contiguous();
    keep.push_back(c);
    tensors.push_back({name, DType::kF32, c.sizes().vec(), c.data_ptr(),
                       static_cast<size_t>(c.numel()) * sizeof(float)});
  }
  return engine::WriteSafetensors(o.out, tensors, {{"format", "pt"}});
}

}  // namespace pcsweep::runner
