// Training a JumpReLU SAE on residual-stream activations (for models without published
// SAEs, e.g. the demo model), after Rajamanoharan et al. 2024 ("Jumping Ahead"):
//
//   loss = ‖x − x̂‖² / E‖x − μ‖²  +  λ · sparsity
//   sparsity = Σ_j H(pre_j − θ_j)                     ("l0", the paper's L0 penalty), or
//            = Σ_j f_j · ‖w_dec[j]‖                   ("l1")
//
// The step function has no gradient, so both H in the JumpReLU and H in the L0 count use
// straight-through pseudo-derivatives with a rectangle kernel K(u) = 1[|u| < ½] of bandwidth
// ε: ∂f_j/∂θ_j = −(θ_j/ε)·K((pre_j − θ_j)/ε) and ∂H_j/∂θ_j = −(1/ε)·K((pre_j − θ_j)/ε),
// while ∂f_j/∂pre_j = H(pre_j − θ_j) as for a ReLU. θ = exp(log θ) stays positive.
// Activations are centred and scaled by one scalar for training (so λ, ε and the learning
// rate do not depend on the model's residual norm); the scale is folded into the saved
// weights, which therefore apply to raw residuals as Gemma Scope's do.
// Thread-safety: uses libtorch's global RNG (seeded); one training per process at a time.
#ifndef PCSWEEP_EXPERIMENTS_SAE_SAE_TRAINER_H_
#define PCSWEEP_EXPERIMENTS_SAE_SAE_TRAINER_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/sae/sae.h"

namespace pcsweep::sae {

enum class SparsityPenalty { kL0, kL1 };
// "l0" | "l1". Possible errors: InvalidArgument naming the value.
absl::StatusOr<SparsityPenalty> ParseSparsityPenalty(const std::string& name);

struct SaeTrainOptions {
  int64_t width = 256;  // d_sae
  SparsityPenalty penalty = SparsityPenalty::kL0;
  double sparsity_coefficient = 2e-3;  // λ
  double bandwidth = 0.05;             // ε, in units of the normalised activations
  double initial_threshold = 0.05;
  int64_t steps = 1500;
  int64_t batch_size = 512;
  double lr = 3e-3;  // Adam
  uint64_t seed = 0;
};

struct SaeTrainReport {
  double final_loss = 0;
  double final_reconstruction = 0;  // normalised MSE of the last step (≈ FVU)
  double final_l0 = 0;
  double seconds = 0;
};

// Trains on `activations` [N, d_model] (rows are token positions). `on_step(step, total,
// loss, l0)` is called every 100 steps and at the end.
// Possible errors: InvalidArgument for fewer than 2 rows or bad options; Internal for a
// libtorch failure.
absl::StatusOr<JumpReluSae> TrainJumpReluSae(
    const torch::Tensor& activations, const SaeTrainOptions& options,
    SaeTrainReport* report = nullptr,
    const std::function<void(int64_t, int64_t, double, double)>& on_step = nullptr);

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_SAE_TRAINER_H_
