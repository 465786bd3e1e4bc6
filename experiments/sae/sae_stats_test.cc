#include "experiments/sae/sae_stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/stats/stats.h"

namespace pcsweep::sae {
namespace {

using ::testing::HasSubstr;

TEST(RSquaredTest, Definition) {
  EXPECT_DOUBLE_EQ(RSquared(1.0, 4.0), 0.75);
  EXPECT_DOUBLE_EQ(RSquared(0.0, 0.0), 1.0);
  EXPECT_TRUE(std::isinf(RSquared(1.0, 0.0)));
  EXPECT_DOUBLE_EQ(RSquared(8.0, 4.0), -1.0);
}

TEST(SummarizeTransferTest, OneSidedTTestAgainstThreshold) {
  // mean 0.97, sd 0.01, n 3: t = 0.02 / (0.01/√3) = 2√3; with 2 df, P(T > t) = ½(1 − t/√(t² + 2)).
  const std::vector<double> r2 = {0.96, 0.97, 0.98};
  const std::vector<double> fvu = {0.04, 0.03, 0.02};
  const std::vector<double> l0 = {10, 20, 30};
  auto s = SummarizeTransfer(r2, fvu, l0, 0.95);
  ASSERT_TRUE(s.ok()) << s.status();
  const double t = 2 * std::sqrt(3.0);
  EXPECT_NEAR(s->t, t, 1e-9);
  EXPECT_NEAR(s->p_value, 0.5 * (1 - t / std::sqrt(t * t + 2)), 1e-9);
  EXPECT_NEAR(s->r2_mean, 0.97, 1e-12);
  EXPECT_NEAR(s->r2_min, 0.96, 1e-12);
  EXPECT_NEAR(s->fvu_mean, 0.03, 1e-12);
  EXPECT_NEAR(s->l0_mean, 20, 1e-12);
  // Two-sided 95% t interval: mean ± t_{0.975, 2} · s/√n, t_{0.975,2} = 4.302652729911275.
  EXPECT_NEAR(s->r2_ci_low, 0.97 - 4.302652729911275 * 0.01 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(s->r2_ci_high, 0.97 + 4.302652729911275 * 0.01 / std::sqrt(3.0), 1e-9);
  // Same numbers as common/stats directly: the wiring is the greater-than alternative.
  auto direct = stats::OneSampleTTest(r2, 0.95, stats::Alternative::kGreater);
  ASSERT_TRUE(direct.ok());
  EXPECT_DOUBLE_EQ(s->p_value, direct->p_value);
  // Below the threshold the one-sided p is large.
  auto below = SummarizeTransfer({0.90, 0.91, 0.92}, fvu, l0, 0.95);
  ASSERT_TRUE(below.ok());
  const double t_below = -4 * std::sqrt(3.0);
  EXPECT_NEAR(below->p_value, 0.5 * (1 - t_below / std::sqrt(t_below * t_below + 2)), 1e-9);
  EXPECT_LT(below->t, 0);
  EXPECT_EQ(s->ToMap().at("p_value"), s->p_value);
}

TEST(SummarizeTransferTest, ConstantValuesAndErrors) {
  auto constant = SummarizeTransfer({1.0, 1.0}, {0, 0}, {1, 1}, 0.95);
  ASSERT_TRUE(constant.ok());
  EXPECT_EQ(constant->p_value, 0.0);
  EXPECT_THAT(SummarizeTransfer({0.9}, {0.1}, {1}, 0.95).status().message(),
              HasSubstr("at least 2"));
  EXPECT_THAT(SummarizeTransfer({0.9, NAN}, {0.1, 0.1}, {1, 1}, 0.95).status().message(),
              HasSubstr("prompt 1"));
}

TEST(AurocTest, MannWhitneyWithTies) {
  EXPECT_DOUBLE_EQ(Auroc(std::vector<double>{0.1, 0.4, 0.35, 0.8}, {false, false, true, true}),
                   0.75);
  EXPECT_DOUBLE_EQ(Auroc(std::vector<double>{1, 1, 1, 1}, {false, true, false, true}), 0.5);
  EXPECT_DOUBLE_EQ(Auroc(std::vector<double>{3, 4, 1, 2}, {true, true, false, false}), 1.0);
  EXPECT_TRUE(std::isnan(Auroc(std::vector<double>{1, 2}, {true, true})));
}

// Pairs whose margin shift is driven by feature 7 (and, more noisily and with the opposite
// sign, by feature 3); the others are noise, and feature 19 never changes.
TEST(RankFeaturesTest, FindsTheFeatureThatDrivesTheMarginShift) {
  const int64_t pairs = 60, features = 20;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> dm(pairs), df(pairs * features, 0.0);
  std::vector<bool> flipped(pairs);
  for (int64_t p = 0; p < pairs; ++p) {
    dm[p] = normal(rng);
    flipped[p] = std::abs(dm[p]) > 1.0;
    for (int64_t j = 0; j < features - 1; ++j) df[p * features + j] = normal(rng);
    df[p * features + 7] = 2.0 * dm[p] + 0.001 * normal(rng);
    df[p * features + 3] = -dm[p] + 0.5 * normal(rng);
  }
  auto ranked = RankFeatures(df, features, dm, flipped, 3);
  ASSERT_TRUE(ranked.ok()) << ranked.status();
  ASSERT_EQ(ranked->size(), 3u);
  EXPECT_EQ((*ranked)[0].feature, 7);
  EXPECT_GT((*ranked)[0].correlation, 0.999);
  EXPECT_DOUBLE_EQ((*ranked)[0].auroc, 1.0);  // |Δf_7| orders the pairs as |Δm| does
  EXPECT_EQ((*ranked)[1].feature, 3);
  EXPECT_LT((*ranked)[1].correlation, -0.7);
  auto all = RankFeatures(df, features, dm, flipped);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), static_cast<size_t>(features - 1));  // feature 19 is never active
  for (size_t i = 1; i < all->size(); ++i) EXPECT_GE((*all)[i - 1].score, (*all)[i].score);
}

TEST(RankFeaturesTest, Errors) {
  EXPECT_THAT(RankFeatures(std::vector<double>(5), 2, std::vector<double>(3), {true, false, true})
                  .status()
                  .message(),
              HasSubstr("do not fit"));
  EXPECT_THAT(RankFeatures(std::vector<double>(2), 1, std::vector<double>(2), {true, false})
                  .status()
                  .message(),
              HasSubstr("at least 3 pairs"));
}

TEST(LayerRangeTest, BestLayerPlusMinusK) {
  EXPECT_EQ(LayerRange(17, 2, 34), std::make_pair(15, 19));
  EXPECT_EQ(LayerRange(0, 1, 8), std::make_pair(0, 2));
  EXPECT_EQ(LayerRange(7, 1, 8), std::make_pair(5, 7));
  EXPECT_EQ(LayerRange(3, 5, 4), std::make_pair(0, 3));
  EXPECT_EQ(LayerRange(4, 0, 8), std::make_pair(4, 4));
  EXPECT_EQ(LayerRangeText({3, 5}), "3-5");
  EXPECT_EQ(LayerRangeText({4, 4}), "4");
}

}  // namespace
}  // namespace pcsweep::sae
