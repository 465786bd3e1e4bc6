#include "experiments/train/losses.h"

#include "absl/strings/str_cat.h"

namespace pcsweep::train {

absl::StatusOr<LossKind> ParseLossKind(absl::string_view name) {
  if (name == "ce_only") return LossKind::kCeOnly;
  if (name == "combined") return LossKind::kCombined;
  if (name == "consistency_only") return LossKind::kConsistencyOnly;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown loss '", name, "' (ce_only, combined, consistency_only)"));
}

std::string LossKindName(LossKind kind) {
  switch (kind) {
    case LossKind::kCeOnly:
      return "ce_only";
    case LossKind::kCombined:
      return "combined";
    case LossKind::kConsistencyOnly:
      return "consistency_only";
  }
  return "?";
}

absl::StatusOr<ConsistencyTerm> ParseConsistencyTerm(absl::string_view name) {
  if (name == "symmetric_kl" || name == "kl") return ConsistencyTerm::kSymmetricKl;
  if (name == "margin_squared" || name == "margin") return ConsistencyTerm::kMarginSquared;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown consistency term '", name, "' (symmetric_kl, margin_squared)"));
}

std::string ConsistencyTermName(ConsistencyTerm term) {
  return term == ConsistencyTerm::kSymmetricKl ? "symmetric_kl" : "margin_squared";
}

torch::Tensor TwoWayLogits(const torch::Tensor& answer_logits, int64_t num_yes) {
  const int64_t total = answer_logits.size(-1);
  const torch::Tensor yes = answer_logits.narrow(-1, 0, num_yes).logsumexp(-1);
  const torch::Tensor no = answer_logits.narrow(-1, num_yes, total - num_yes).logsumexp(-1);
  return torch::stack({yes, no}, -1);
}

torch::Tensor SymmetricKl(const torch::Tensor& two_way_q, const torch::Tensor& two_way_p) {
  const torch::Tensor log_q = torch::log_softmax(two_way_q.to(torch::kFloat), -1);
  const torch::Tensor log_p = torch::log_softmax(two_way_p.to(torch::kFloat), -1);
  // KL(Q||P) + KL(P||Q) = sum (q - p)(log q - log p): one expression, exactly symmetric.
  return 0.5 * ((log_q.exp() - log_p.exp()) * (log_q - log_p)).sum(-1);
}

torch::Tensor MarginSquaredDifference(const torch::Tensor& two_way_q,
                                      const torch::Tensor& two_way_p) {
  const torch::Tensor m_q = two_way_q.select(-1, 0) - two_way_q.select(-1, 1);
  const torch::Tensor m_p = two_way_p.select(-1, 0) - two_way_p.select(-1, 1);
  return (m_q - m_p).to(torch::kFloat).pow(2);
}

PairLoss ComputePairLoss(const torch::Tensor& two_way_q, const torch::Tensor& two_way_p,
                         const torch::Tensor& labels, const LossOptions& options) {
  PairLoss loss;
  const torch::Tensor target = labels.to(two_way_q.device(), torch::kLong);
  loss.ce = torch::nn::functional::cross_entropy(two_way_q.to(torch::kFloat), target) +
            torch::nn::functional::cross_entropy(two_way_p.to(torch::kFloat), target);
  loss.consistency = options.consistency == ConsistencyTerm::kSymmetricKl
                         ? SymmetricKl(two_way_q, two_way_p).mean()
                         : MarginSquaredDifference(two_way_q, two_way_p).mean();
  switch (options.kind) {
    case LossKind::kCeOnly:
      loss.total = loss.ce;
      break;
    case LossKind::kCombined:
      loss.total = loss.ce + options.lambda * loss.consistency;
      break;
    case LossKind::kConsistencyOnly:
      loss.total = loss.consistency;
      break;
  }
  return loss;
}

}  // namespace pcsweep::train
