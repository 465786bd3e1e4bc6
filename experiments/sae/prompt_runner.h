// Runs a model on prompts for the SAE analysis: the same prompt layout, left padding,
// position ids and yes/no margin as the eval jobs (train::ScorePairs), plus what those do
// not expose: the residual stream of chosen decoder layers per prompt and a residual hook
// (feature clamping). Owns an Engine, the tokenizer and the image processor of a model folder.
// Thread-safety: not thread-safe (one runner per thread). Include only from experiments/.
#ifndef PCSWEEP_EXPERIMENTS_SAE_PROMPT_RUNNER_H_
#define PCSWEEP_EXPERIMENTS_SAE_PROMPT_RUNNER_H_

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/data/types.h"
#include "experiments/engine/engine.h"
#include "experiments/inputs/image.h"
#include "experiments/inputs/tokenizer.h"

namespace pcsweep::sae {

// A question about an image file, or a text-only prompt when `image` is empty.
struct PromptInput {
  std::string text;
  std::string image;
};

struct PromptRun {
  double margin = 0;  // logsumexp(yes) − logsumexp(no) at the last position
  // Decoder layer -> resid_post [tokens, hidden] fp32 on the CPU, padding removed; row 0 is BOS.
  std::map<int, torch::Tensor> layers;
};

// Margins of a pair as train::PairMargins: the paraphrase's is negated for an
// answer-inverting paraphrase, so that a sign change always means a flip.
struct PairMargins {
  double original = 0;
  double paraphrase = 0;
};

class PromptRunner {
 public:
  // Possible errors: those of Engine::Load, Gemma3Tokenizer::Load and
  // LoadImageProcessorConfig (each naming the folder); FailedPrecondition when the
  // tokenizer does not fit the model.
  static absl::StatusOr<std::unique_ptr<PromptRunner>> Load(const std::string& model_dir,
                                                            const std::string& adapter_dir,
                                                            int threads,
                                                            inputs::PromptOptions prompt);

  // Runs `prompts` in batches without gradients. `hook` (may be empty) edits the residual
  // stream. Possible errors: InvalidArgument naming a layer out of range or an unreadable
  // image; Internal for libtorch failures.
  absl::StatusOr<std::vector<PromptRun>> Run(const std::vector<PromptInput>& prompts,
                                             const std::vector<int>& capture_layers,
                                             const engine::ResidualHook& hook, int batch_size);

  // Both prompts of every pair, each distinct prompt run once. Possible errors: as Run.
  absl::StatusOr<std::vector<PairMargins>> ScorePairs(const std::vector<data::Pair>& pairs,
                                                      const engine::ResidualHook& hook,
                                                      int batch_size);

  const engine::Gemma3Config& config() const { return engine_->config(); }
  engine::Engine& engine() { return *engine_; }

 private:
  PromptRunner() = default;
  absl::StatusOr<std::vector<int64_t>> Tokens(const PromptInput& prompt);
  absl::StatusOr<torch::Tensor> Features(const std::string& image);

  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<inputs::Gemma3Tokenizer> tokenizer_;
  std::unique_ptr<inputs::Gemma3ImageProcessor> processor_;
  inputs::PromptOptions prompt_;
  torch::Tensor answer_rows_;  // yes ids then no ids
  int64_t num_yes_ = 0;
  std::unordered_map<std::string, torch::Tensor> features_;  // image -> [T, hidden] on device
};

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_PROMPT_RUNNER_H_
