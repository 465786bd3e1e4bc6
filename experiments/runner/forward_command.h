// `pcsweep-run forward`: runs the engine on inputs from a safetensors file and writes its
// outputs to another, so anyone can compare the engine with transformers on their own
// checkpoint. Include only from experiments/ (engine is libtorch-based).
#ifndef PCSWEEP_EXPERIMENTS_RUNNER_FORWARD_COMMAND_H_
#define PCSWEEP_EXPERIMENTS_RUNNER_FORWARD_COMMAND_H_

#include <string>

#include "absl/status/status.h"

namespace pcsweep::runner {

struct ForwardCommandOptions {
  std::string model_dir;
  std::string adapter_dir;  // optional
  std::string dtype = "auto";
  std::string device = "cpu";
  bool bf16_rope_frequencies = false;  // see EngineOptions
  std::string inputs;  // input_ids, attention_mask, token_type_ids, pixel_values, text_input_ids
  std::string out;     // logits, hidden_states.<i>, image_features, text_logits (all F32)
};

// Possible errors: those of Engine::Load / Forward; InvalidArgument naming the inputs file
// when input_ids is missing or a tensor has the wrong type.
absl::Status RunForwardCommand(const ForwardCommandOptions& options);

}  // namespace pcsweep::runner

#endif  // PCSWEEP_EXPERIMENTS_RUNNER_FORWARD_COMMAND_H_
