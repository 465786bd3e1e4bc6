// The SAE job kinds of pcsweep-run (issue 7) and the `forward --sae L:DIR` extension.
//
//   sae_train     trains a JumpReLU SAE on the residual stream after decoder layer L over
//                 prompts of a benchmark's train split; saves it in the Gemma Scope 2 layout
//                 (outputs.sae_dir) and reports held-out R² with its t-test.
//   sae_transfer  per-prompt R² = 1 − SSE/SST over non-BOS positions for prompt sets, with
//                 mean, t interval, one-sided one-sample t-test of R² > threshold, FVU, L0.
//   layer_select  ranks SAE features at each analysed layer by corr(Δf_j, Δm) over
//                 paraphrase pairs (+ AUROC for flipped vs stable pairs); outputs `range`
//                 (best layer ± k), `layer`, `feature`, `score`, `sae_dir`, `reason`.
//   clamp_eval    scores eval sets with one SAE feature scaled (0 = removed) at layer L and
//                 reports flip rate and accuracy against the unclamped run; also an `eval`
//                 job with a `clamp` object (RunJobFileWithClamp).
// Settings and outputs are listed in experiments/sae/README.md. Every job validates its
// config first (one line naming the key), writes metrics.json last.
// Thread-safety: one job per process (libtorch global state).
#ifndef PCSWEEP_EXPERIMENTS_SAE_SAE_JOBS_H_
#define PCSWEEP_EXPERIMENTS_SAE_SAE_JOBS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace pcsweep::sae {

// Possible errors: InvalidArgument "config.<key>: ..." for a bad setting or an unknown key;
// NotFound / InvalidArgument naming the file for missing or malformed model, SAE, data or
// prompt files, and for an SAE whose d_model differs from the model's; Internal for I/O and
// libtorch failures.
absl::Status RunSaeTrainJob(const nlohmann::json& job);
absl::Status RunSaeTransferJob(const nlohmann::json& job);
absl::Status RunLayerSelectJob(const nlohmann::json& job);
absl::Status RunClampEvalJob(const nlohmann::json& job);

// Registers sae_train, sae_transfer, layer_select and clamp_eval with the pcsweep-run
// dispatcher. Possible errors: AlreadyExists when called twice.
absl::Status RegisterSaeJobKinds();

// jobs::RunJobFile, except that an `eval` job whose config has a `clamp` object
// ({sae_dir, layer, feature, scale}) runs as clamp_eval: feature clamping as an eval option
// (the sweep spec knows the kind `eval`). Possible errors: those of RunJobFile / the jobs.
absl::Status RunJobFileWithClamp(const std::string& path);

// `pcsweep-run forward --sae L:DIR`: adds `sae_recon.L` (the SAE in DIR applied to the
// output of decoder layer L, i.e. `hidden_states.<L+1>`) to the forward output file.
// Possible errors: InvalidArgument for a malformed spec, a layer whose pre-norm output is not
// in the file (the last layer's hidden state is after the final norm), or a d_model
// mismatch (naming the SAE file and both sizes); those of JumpReluSae::Load; Internal (I/O).
absl::Status AddSaeReconstructions(const std::string& forward_out,
                                   const std::vector<std::string>& specs);

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_SAE_JOBS_H_
