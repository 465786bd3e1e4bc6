// `pcsweep-run smoke`: the full-size path of a job, end to end, on any checkpoint folder
// (MedGemma-4B, or a random one in its layout from WriteRandomCheckpoint): load (shards,
// bf16 -> compute dtype), score one paraphrase pair by its yes/no margins, one LoRA step of
// the combined loss on a layer range with the frozen-prefix path, save the adapter, load it
// back and check that it scores the same. Each phase prints its wall time and the process's
// resident and peak memory, so "fits in 24 GB" is measured, not assumed.
//
// Token ids stand in for a tokenizer (a layout folder has none): the prompts are Gemma 3's
// image block between fixed ids drawn from the vocabulary, and the pixels are seeded noise.
// Include only from experiments/ (libtorch).
#ifndef PCSWEEP_EXPERIMENTS_TRAIN_SMOKE_H_
#define PCSWEEP_EXPERIMENTS_TRAIN_SMOKE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace pcsweep::train {

struct SmokeOptions {
  std::string model_dir;
  std::string work_dir;  // the adapter is saved here (created); default: a temp folder
  std::string device = "cpu";
  std::string dtype = "auto";    // as EngineOptions::dtype
  int threads = 0;               // intra-op threads; 0 keeps libtorch's default
  std::string layers = "15-19";  // the LoRA layers, as engine::ParseLayers reads them
  int lora_rank = 16;
  std::string stop_after;  // "" (all) | load | score | train | reload
  double max_rss_gb = 0;   // > 0: fail when the peak resident set ends above it
  uint64_t seed = 1;
};

// Prints one line per phase and a last line "smoke: ok, ..." to stdout.
// Possible errors: InvalidArgument for bad options (layers outside the model, a bad
// stop_after); those of Engine::Load / Score / SaveAdapter / LoadAdapter; Internal when the
// LoRA step produces no gradient or a non-finite loss, or the reloaded adapter scores
// differently; ResourceExhausted when the peak resident set exceeds max_rss_gb.
absl::Status RunSmoke(const SmokeOptions& options);

}  // namespace pcsweep::train

#endif  // PCSWEEP_EXPERIMENTS_TRAIN_SMOKE_H_
