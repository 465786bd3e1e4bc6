// The weight-name table of Gemma3ForConditionalGeneration: which tensors a config needs,
// with their shapes, under one canonical naming (MedGemma's legacy layout:
// `language_model.model.*`, `vision_tower.vision_model.*`, `multi_modal_projector.*`), and
// the mapping from every layout met in practice to it. Torch-free; pure functions.
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_WEIGHT_NAMES_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_WEIGHT_NAMES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experiments/engine/gemma3_config.h"

namespace pcsweep::engine {

struct ExpectedWeight {
  std::string name;  // canonical
  std::vector<int64_t> shape;
};

// Every tensor the checkpoint of `config` must hold (no lm_head: it is tied), sorted by name.
std::vector<ExpectedWeight> ExpectedWeights(const Gemma3Config& config);

// Maps a stored or in-memory name to the canonical one. Accepts MedGemma's legacy names,
// transformers 5.x saves (`vision_tower.*` without `vision_model`) and in-memory names
// (`model.language_model.*`, `model.vision_tower.vision_model.*`,
// `model.multi_modal_projector.*`). Returns nullopt for a tied lm_head, which is ignored.
// Possible errors: InvalidArgument "unexpected tensor name '<name>'" for other prefixes.
absl::StatusOr<std::optional<std::string>> CanonicalWeightName(absl::string_view stored);

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_WEIGHT_NAMES_H_
