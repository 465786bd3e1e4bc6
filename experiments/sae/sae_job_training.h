// Training an SAE inside a job, on the residual stream of a benchmark's train split: what
// sae_train does for one layer and layer_select for each analysed layer that has no SAE.
// Reads the SAE settings (`width`, `sparsity`, `steps`, ...; experiments/sae/README.md),
// splits the questions (with their paraphrases) into train and held-out prompts by a seeded
// shuffle, trains with TrainJumpReluSae and measures R², FVU and L0 on the held-out prompts.
// Internal to experiments/sae.
//
// Ownership: a TrainedSae owns its SAE; the PromptRunner and Progress are the caller's.
// Thread-safety: one training per process (libtorch's global RNG, seeded).
#ifndef PCSWEEP_EXPERIMENTS_SAE_SAE_JOB_TRAINING_H_
#define PCSWEEP_EXPERIMENTS_SAE_SAE_JOB_TRAINING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/job_settings.h"
#include "experiments/sae/prompt_runner.h"
#include "experiments/sae/sae.h"
#include "experiments/sae/sae_trainer.h"
#include "nlohmann/json.hpp"

namespace pcsweep::sae {

struct SaeTrainSettings {
  SaeTrainOptions options;
  int64_t max_prompts = 400;      // train + held-out prompts
  double heldout_fraction = 0.2;  // of max_prompts (at least 2 prompts)
  bool width_given = false;       // else width = 4 × the model's hidden size
};

// Reads width, sparsity, sparsity_coefficient, bandwidth, initial_threshold, steps,
// sae_batch_size, lr, seed, max_prompts and heldout_fraction from `settings` into `out`,
// whose fields are the defaults.
// Possible errors: InvalidArgument "<prefix>.<key>: ..." for a bad value.
absl::Status ReadSaeTrainSettings(jobs::JobSettings& settings, SaeTrainSettings* out);

struct TrainedSae {
  std::optional<JumpReluSae> sae;  // set when training succeeded
  SaeTrainReport report;
  std::vector<double> heldout_r2, heldout_fvu, heldout_l0;  // per held-out prompt
  int64_t train_prompts = 0, train_positions = 0;
};

// Trains an SAE at decoder layer `layer` on prompts of `train_file` and measures it on the
// held-out prompts, running the model in batches of `batch_size`. Reports progress between
// `from` and `to`.
// Possible errors: those of LoadQuestions and PromptRunner::Run; InvalidArgument naming the
// file when it gives fewer than 2 train or held-out prompts; those of TrainJumpReluSae,
// prefixed "layer <L>".
absl::StatusOr<TrainedSae> TrainOnBenchmark(PromptRunner& runner, const std::string& train_file,
                                            int layer, SaeTrainSettings settings, int batch_size,
                                            jobs::Progress* progress, double from, double to);

// The config.json of an SAE trained here at `layer` of `model_dir` (Gemma Scope 2 keys plus
// the training options), with its measured mean `l0`.
nlohmann::json SaeConfigJson(int layer, const std::string& model_dir, double l0,
                             const SaeTrainOptions& options);

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_SAE_JOB_TRAINING_H_
