// A random-weight checkpoint in the exact layout of a real one: the same config.json (with
// fewer layers if asked), the same stored tensor names split over the same shard files with
// the same model.safetensors.index.json, the same dtype, and every other file of the folder
// (tokenizer, chat template, processor config) copied. It lets the full-size path (sharding,
// bf16 conversion, memory) run on a machine that has the layout of MedGemma-4B but not its
// weights: `pcsweep-run random-checkpoint --like experiments/testdata/medgemma-4b-it`.
//
// Values follow InitializeRandomWeights (normal(0, std) for matrices and embeddings, zeros for
// biases and Gemma's (1 + w) norms, ones for SigLIP LayerNorm weights), seeded per tensor so
// a tensor's values do not depend on which shard holds it. Memory: one shard at a time.
// Include only from experiments/ (libtorch).
#ifndef PCSWEEP_EXPERIMENTS_TRAIN_RANDOM_CHECKPOINT_H_
#define PCSWEEP_EXPERIMENTS_TRAIN_RANDOM_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace at {
class Tensor;  // keeps libtorch's headers out of this one
}  // namespace at

namespace pcsweep::train {

// How a freshly initialised weight is filled, from its canonical (or in-memory) name:
// zeros for biases and Gemma's (1 + w) RMSNorm weights, ones for SigLIP LayerNorm weights,
// normal(0, std) for the rest. Shared with InitializeRandomWeights.
enum class InitialFill { kNormal, kZeros, kOnes };
InitialFill InitialFillOf(const std::string& name);
// Fills `weight` (in place, no grad) as InitialFillOf(name) says; kNormal draws from torch's
// global generator, so callers seed it.
void FillInitial(at::Tensor& weight, const std::string& name, double std);

struct RandomCheckpointOptions {
  // A model folder to copy the layout of: config.json with model.safetensors.index.json (its
  // shards need not exist) or with a model.safetensors (one shard, its header read).
  std::string like_dir;
  std::string out_dir;         // created; must not hold a config.json already
  int text_layers = 0;         // > 0: keep only the first N decoder layers (config edited to match)
  int vision_layers = 0;       // > 0: likewise for the SigLIP encoder
  std::string dtype = "bf16";  // bf16 | fp32 | fp16
  uint64_t seed = 1;
  double std = 0.02;
};

struct RandomCheckpointReport {
  int64_t tensors = 0;
  int64_t bytes = 0;  // of tensor data, what the index's total_size says
  int shards = 0;
  double seconds = 0;
};

// Possible errors: NotFound (no config.json or no weight listing in like_dir);
// InvalidArgument naming the file for a malformed index, a stored name that is not a Gemma 3
// weight or that the config does not expect, a weight of the config that the layout lacks,
// an out_dir that already holds a model, layer counts above the config's, a bad dtype;
// Internal naming the path on I/O failure.
absl::StatusOr<RandomCheckpointReport> WriteRandomCheckpoint(
    const RandomCheckpointOptions& options);

}  // namespace pcsweep::train

#endif  // PCSWEEP_EXPERIMENTS_TRAIN_RANDOM_CHECKPOINT_H_
