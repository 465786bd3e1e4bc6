// The SAE job kinds of pcsweep-run (issue 7), the `clamp` option of `eval` and the
// `forward --sae L:DIR` extension. One file per kind; what they share is in sae_job_common.h
// (the job preamble, layers, SAE loading) and sae_job_training.h (SAEs trained inside a job).
//
//   sae_train     trains a JumpReLU SAE on the residual stream after decoder layer L over
//                 prompts of a benchmark's train split; saves it in the Gemma Scope 2 layout
//                 (outputs.sae_dir) and reports held-out R² with its t-test.
//                 (sae_train_job.cc)
//   sae_transfer  per-prompt R² = 1 − SSE/SST over non-BOS positions for prompt sets, with
//                 mean, t interval, one-sided one-sample t-test of R² > threshold, FVU, L0.
//                 (sae_transfer_job.cc)
//   layer_select  ranks SAE features at each analysed layer by corr(Δf_j, Δm) over
//                 paraphrase pairs (+ AUROC for flipped vs stable pairs); outputs `range`
//                 (best layer ± k), `layer`, `feature`, `score`, `sae_dir`, `reason`.
//                 (layer_select_job.cc)
//   clamp_eval    scores eval sets with one SAE feature scaled (0 = removed) at layer L and
//                 reports flip rate and accuracy against the unclamped run. An `eval` job
//                 whose config has a `clamp` object ({sae_dir, layer, feature, scale}) runs
//                 as clamp_eval: RegisterSaeJobKinds registers that option of `eval` with
//                 jobs::RegisterEvalOption. (clamp_eval_job.cc)
// Settings and outputs are listed in experiments/sae/README.md. Every job validates its
// config first (one line naming the key), writes metrics.json last.
// Thread-safety: one job per process (libtorch global state). Register at startup, before
// any job file is dispatched.
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
// libtorch failures. Nothing partial is reported as a result: metrics.json is written last.
absl::Status RunSaeTrainJob(const nlohmann::json& job);
absl::Status RunSaeTransferJob(const nlohmann::json& job);
// Also FailedPrecondition when no feature is active on `min_active_pairs` pairs at any layer.
absl::Status RunLayerSelectJob(const nlohmann::json& job);
// `job` may be an `eval` job with a `config.clamp` object, whose keys join the config: also
// InvalidArgument "config.clamp: ..." when it is not an object or repeats a config key.
absl::Status RunClampEvalJob(const nlohmann::json& job);

// Registers sae_train, sae_transfer, layer_select and clamp_eval with the pcsweep-run
// dispatcher, and `clamp` as an option of `eval` (jobs::RegisterEvalOption; `eval` itself is
// registered by jobs::RegisterTrainJobKinds). Possible errors: AlreadyExists when called twice.
absl::Status RegisterSaeJobKinds();

// `pcsweep-run forward --sae L:DIR`: adds `sae_recon.L` (the SAE in DIR applied to the
// output of decoder layer L, i.e. `hidden_states.<L+1>`) to the forward output file.
// Possible errors: InvalidArgument for a malformed spec, a layer whose pre-norm output is not
// in the file (the last layer's hidden state is after the final norm), or a d_model
// mismatch (naming the SAE file and both sizes); those of JumpReluSae::Load; Internal (I/O).
absl::Status AddSaeReconstructions(const std::string& forward_out,
                                   const std::vector<std::string>& specs);

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_SAE_JOBS_H_
