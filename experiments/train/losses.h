// Training losses of the paraphrase-consistency experiments (paper-notes §2.3), on the
// two-way yes/no logits read at the first answer position of both prompts of a pair:
//
//   z = [logsumexp(logits[yes ids]), logsumexp(logits[no ids])]   (column 0 yes, 1 no)
//
// Taking the logsumexp over every single-piece spelling (yes/Yes/▁yes, no/No/▁no) keeps the
// training target identical to the margin we evaluate (inputs::AnswerTokens), so a model
// cannot "fix" consistency by moving mass between spellings.
//
//   ce          = CE(softmax z_q, y) + CE(softmax z_p, y)   (summed over the two prompts)
//   consistency = ½[KL(P_q‖P_p) + KL(P_p‖P_q)]               (kSymmetricKl, default)
//               | (m_q − m_p)², m = z_yes − z_no               (kMarginSquared)
//   total       = ce (ce_only) | ce + λ·consistency (combined) | consistency (consistency_only)
//
// Every term is a mean over the pairs of the batch. Neither side is detached: both prompts
// move toward each other. For an answer-inverting paraphrase (op_match = false) the caller
// swaps its two columns first, so that "same answer" means "same meaning".
// Thread-safety: pure functions.
#ifndef PCSWEEP_EXPERIMENTS_TRAIN_LOSSES_H_
#define PCSWEEP_EXPERIMENTS_TRAIN_LOSSES_H_

#include <torch/torch.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::train {

enum class LossKind { kCeOnly, kCombined, kConsistencyOnly };
enum class ConsistencyTerm { kSymmetricKl, kMarginSquared };

// "ce_only" | "combined" | "consistency_only". Possible errors: InvalidArgument naming the value.
absl::StatusOr<LossKind> ParseLossKind(absl::string_view name);
std::string LossKindName(LossKind kind);
// "symmetric_kl" (or "kl") | "margin_squared" (or "margin").
// Possible errors: InvalidArgument naming the value.
absl::StatusOr<ConsistencyTerm> ParseConsistencyTerm(absl::string_view name);
std::string ConsistencyTermName(ConsistencyTerm term);

struct LossOptions {
  LossKind kind = LossKind::kCombined;
  double lambda = 1.0;  // weight of the consistency term in kCombined
  ConsistencyTerm consistency = ConsistencyTerm::kSymmetricKl;
};

struct PairLoss {
  torch::Tensor total;        // scalar, what backward() runs on
  torch::Tensor ce;           // scalar, always computed (for logging)
  torch::Tensor consistency;  // scalar, always computed (for logging)
};

// [N, Y + M] logits of the yes ids (first num_yes columns) then the no ids -> [N, 2].
torch::Tensor TwoWayLogits(const torch::Tensor& answer_logits, int64_t num_yes);

// Per-pair consistency terms, [B] each. Inputs are [B, 2] two-way logits.
torch::Tensor SymmetricKl(const torch::Tensor& two_way_q, const torch::Tensor& two_way_p);
torch::Tensor MarginSquaredDifference(const torch::Tensor& two_way_q,
                                      const torch::Tensor& two_way_p);

// two_way_q, two_way_p: [B, 2]; labels: [B] int64 with 0 = yes, 1 = no (the label of both
// prompts after the caller's column swap for inverting paraphrases).
PairLoss ComputePairLoss(const torch::Tensor& two_way_q, const torch::Tensor& two_way_p,
                         const torch::Tensor& labels, const LossOptions& options);

}  // namespace pcsweep::train

#endif  // PCSWEEP_EXPERIMENTS_TRAIN_LOSSES_H_
