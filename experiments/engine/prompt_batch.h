// Batching prompts for the model: one left-padded batch (the plain path), and shared-prefix
// scoring, which runs the common prefix of each image's prompts once and only the suffixes
// against its keys and values. Both read each prompt at its last position, where the answer
// is read, and give the same numbers (within float rounding): positions count from each
// prompt's first token, and an image's bidirectional block lies inside the shared prefix.
//
// Used by Engine::Score and train::ModelSession (scoring pairs, training). Include only from
// experiments/ (libtorch header). Thread-safety: functions of a model; see model.h.
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_PROMPT_BATCH_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_PROMPT_BATCH_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "experiments/engine/model.h"

namespace pcsweep::engine {

// One prompt. Not owning: token_ids must outlive the call.
struct BatchPrompt {
  const std::vector<int64_t>* token_ids = nullptr;
  // [T, hidden] features of the prompt's image (T = its image tokens); undefined for a
  // text-only prompt. Prompts with the same image_key must carry the same features.
  torch::Tensor image_features;
  std::string image_key;
  // [len, hidden]: the stream entering ModelInputs::start_layer for this prompt, when the
  // batch starts above layer 0 (frozen-prefix training).
  torch::Tensor hidden_input;
};

// Left-padded ids, attention mask, positions from each prompt's first token, token types
// (1 = image token), stacked image features (prompts with an image, in order) and, when
// every prompt has one, left-padded hidden inputs (zeros on padding).
ModelInputs LeftPaddedBatch(const std::vector<BatchPrompt>& prompts, int64_t pad_id,
                            int64_t image_token_index);

// The residual stream entering decoder layer `layer` for each prompt ([len, hidden], padding
// removed, a copy): what BatchPrompt::hidden_input takes to start a batch there. One batch,
// no gradients.
std::vector<torch::Tensor> StreamEnteringLayer(Gemma3ModelImpl& model,
                                               const std::vector<BatchPrompt>& prompts, int layer,
                                               int64_t pad_id);

struct LastPositionOutputs {
  torch::Tensor logits;  // [N, rows of vocab_rows] at each prompt's last position
  // Per prompt: resid_post of each capture layer, [len, hidden], padding removed.
  std::vector<std::map<int, torch::Tensor>> layer_outputs;
  int64_t tokens_run = 0;  // token positions the decoder ran (padding and prefixes included)
};

struct LastPositionOptions {
  torch::Tensor vocab_rows;  // int64 ids of the head rows to compute
  int64_t pad_id = 0;
  std::vector<int> capture_layers;
  // Run each image's common prefix once (see the file comment). Prompts without an image,
  // and groups whose prefix does not cover their image block, take the plain path.
  bool shared_prefix = false;
  int start_layer = 0;  // > 0: every prompt carries hidden_input (plain path only)
  bool checkpoint_layers = false;
};

// Runs under the caller's grad mode; gradients flow through a shared prefix's K/V too.
// Inputs must be valid (token ids in range, image-token counts matching features).
LastPositionOutputs LastPositionLogits(Gemma3ModelImpl& model,
                                       const std::vector<BatchPrompt>& prompts,
                                       const LastPositionOptions& options);

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_PROMPT_BATCH_H_
