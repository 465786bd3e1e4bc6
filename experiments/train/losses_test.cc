#include "experiments/train/losses.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/testing/status_matchers.h"

namespace pcsweep::train {
namespace {

using ::pcsweep::testutil::StatusIs;

double Scalar(const torch::Tensor& t) { return t.item<double>(); }

TEST(LossesTest, TwoWayLogitsTakeLogsumexpPerSide) {
  // yes ids: 2 columns, no ids: 1 column.
  const torch::Tensor logits = torch::tensor({{1.0, 2.0, 0.5}}, torch::kDouble);
  const torch::Tensor z = TwoWayLogits(logits, 2);
  EXPECT_NEAR(Scalar(z[0][0]), std::log(std::exp(1.0) + std::exp(2.0)), 1e-12);
  EXPECT_NEAR(Scalar(z[0][1]), 0.5, 1e-12);
}

TEST(LossesTest, ConsistencyTermAndGradientAreZeroForIdenticalPrompts) {
  for (ConsistencyTerm term : {ConsistencyTerm::kSymmetricKl, ConsistencyTerm::kMarginSquared}) {
    const torch::Tensor base = torch::tensor({{1.5, -0.3}, {0.2, 0.9}, {-2.0, 3.0}});
    torch::Tensor q = base.clone().requires_grad_(true);
    torch::Tensor p = base.clone().requires_grad_(true);
    LossOptions options;
    options.kind = LossKind::kConsistencyOnly;
    options.consistency = term;
    const PairLoss loss = ComputePairLoss(q, p, torch::tensor({0, 1, 1}, torch::kLong), options);
    EXPECT_NEAR(Scalar(loss.consistency), 0.0, 1e-7) << ConsistencyTermName(term);
    loss.total.backward();
    EXPECT_LT(Scalar(q.grad().abs().max()), 1e-6) << ConsistencyTermName(term);
    EXPECT_LT(Scalar(p.grad().abs().max()), 1e-6) << ConsistencyTermName(term);
  }
}

TEST(LossesTest, SymmetricKlMatchesHandComputedValue) {
  // P_q = softmax([0, 0]) = (0.5, 0.5); P_p = softmax([log 3, 0]) = (0.75, 0.25).
  const torch::Tensor q = torch::tensor({{0.0, 0.0}}, torch::kDouble);
  const torch::Tensor p = torch::tensor({{std::log(3.0), 0.0}}, torch::kDouble);
  const double kl_qp = 0.5 * std::log(0.5 / 0.75) + 0.5 * std::log(0.5 / 0.25);
  const double kl_pq = 0.75 * std::log(0.75 / 0.5) + 0.25 * std::log(0.25 / 0.5);
  EXPECT_NEAR(Scalar(SymmetricKl(q, p)[0]), 0.5 * (kl_qp + kl_pq), 1e-6);
  EXPECT_NEAR(Scalar(SymmetricKl(p, q)[0]), Scalar(SymmetricKl(q, p)[0]), 1e-9);
}

TEST(LossesTest, MarginSquaredMatchesHandComputedValue) {
  // m_q = 2 - 0.5 = 1.5, m_p = -1 - 1 = -2: (1.5 + 2)^2 = 12.25.
  const torch::Tensor q = torch::tensor({{2.0, 0.5}});
  const torch::Tensor p = torch::tensor({{-1.0, 1.0}});
  EXPECT_NEAR(Scalar(MarginSquaredDifference(q, p)[0]), 12.25, 1e-5);
}

TEST(LossesTest, CrossEntropySumsBothPromptsAndKindsCombineTerms) {
  const torch::Tensor q = torch::tensor({{1.0, 0.0}});
  const torch::Tensor p = torch::tensor({{0.0, 2.0}});
  const torch::Tensor yes = torch::tensor({0}, torch::kLong);
  // CE(q, yes) = log(1 + e^-1); CE(p, yes) = log(1 + e^2).
  const double ce = std::log1p(std::exp(-1.0)) + std::log1p(std::exp(2.0));
  LossOptions options;
  options.consistency = ConsistencyTerm::kMarginSquared;  // (1 - (-2))^2 = 9
  options.kind = LossKind::kCeOnly;
  PairLoss loss = ComputePairLoss(q, p, yes, options);
  EXPECT_NEAR(Scalar(loss.ce), ce, 1e-5);
  EXPECT_NEAR(Scalar(loss.consistency), 9.0, 1e-5);
  EXPECT_NEAR(Scalar(loss.total), ce, 1e-5);
  options.kind = LossKind::kCombined;
  options.lambda = 0.5;
  EXPECT_NEAR(Scalar(ComputePairLoss(q, p, yes, options).total), ce + 4.5, 1e-5);
  options.kind = LossKind::kConsistencyOnly;
  EXPECT_NEAR(Scalar(ComputePairLoss(q, p, yes, options).total), 9.0, 1e-5);
}

TEST(LossesTest, ConsistencyOnlyGradientPullsMarginsTogether) {
  torch::Tensor q = torch::tensor({{1.0, 0.0}}).requires_grad_(true);
  torch::Tensor p = torch::tensor({{0.0, 1.0}}).requires_grad_(true);
  LossOptions options;
  options.kind = LossKind::kConsistencyOnly;
  ComputePairLoss(q, p, torch::tensor({0}, torch::kLong), options).total.backward();
  // Gradient descent lowers q's yes logit and raises p's.
  EXPECT_GT(Scalar(q.grad()[0][0]), 0);
  EXPECT_LT(Scalar(p.grad()[0][0]), 0);
}

TEST(LossesTest, ParsesNamesAndRejectsUnknownOnes) {
  EXPECT_EQ(*ParseLossKind("combined"), LossKind::kCombined);
  EXPECT_EQ(*ParseLossKind("consistency_only"), LossKind::kConsistencyOnly);
  EXPECT_EQ(*ParseConsistencyTerm("margin_squared"), ConsistencyTerm::kMarginSquared);
  const auto bad = ParseLossKind("kl_only");
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            "unknown loss 'kl_only' (ce_only, combined, consistency_only)"));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("kl_only"));
  EXPECT_THAT(ParseConsistencyTerm("l1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown consistency term 'l1' (symmetric_kl, margin_squared)"));
}

}  // namespace
}  // namespace pcsweep::train
