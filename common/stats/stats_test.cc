// Reference values were produced with Debian 12's /usr/bin/python3 (SciPy 1.10.1,
// statsmodels 0.13.5); each block names the exact call. Tolerance 1e-6 on p-values.
#include "common/stats/stats.h"

#include <cmath>
#include <limits>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::stats {
namespace {

using ::pcsweep::testutil::StatusIs;

constexpr double kTol = 1e-6;
constexpr double kInf = std::numeric_limits<double>::infinity();

void ExpectCi(const TestResult& r, double low, double high) {
  if (std::isinf(low)) {
    EXPECT_EQ(r.ci_low, low);
  } else {
    EXPECT_NEAR(r.ci_low, low, kTol);
  }
  if (std::isinf(high)) {
    EXPECT_EQ(r.ci_high, high);
  } else {
    EXPECT_NEAR(r.ci_high, high, kTol);
  }
}

// ---- Two-proportion z-test --------------------------------------------------------------------

struct ZCase {
  int64_t x1, n1, x2, n2;
  double z, p;
};

TEST(TwoProportionZTest, MatchesStatsmodelsPooledTwoSided) {
  // z, p = statsmodels.stats.proportion.proportions_ztest([x1, x2], [n1, n2])
  const std::vector<ZCase> cases = {
      {23, 158, 7, 158, 3.0705762046297154, 0.0021364615909762598},
      {133, 158, 130, 158, 0.45169885219480954, 0.651485945234894},
      {0, 10, 3, 10, -1.8786728732554483, 0.060289173990602164},
      {5, 5, 2, 7, 2.474358296526968, 0.013347575926843137},
      {1, 3, 0, 2, 0.9128709291752767, 0.3613104285261789},
      {34, 250, 20, 250, 2.0171989274827857, 0.04367475796725695},
      {50, 100, 50, 100, 0.0, 1.0},
  };
  for (const ZCase& c : cases) {
    SCOPED_TRACE(testing::Message() << c.x1 << "/" << c.n1 << " vs " << c.x2 << "/" << c.n2);
    auto r = TwoProportionZTest(c.x1, c.n1, c.x2, c.n2);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_NEAR(r->statistic, c.z, kTol);
    EXPECT_NEAR(r->p_value, c.p, kTol);
    EXPECT_EQ(r->n, c.n1 + c.n2);
  }
}

TEST(TwoProportionZTest, PaperNumbers) {
  // Flip rate 14.6% -> 4.4% (23/158 -> 7/158): p = 0.0021; accuracy 133 -> 130: p ~ 0.65.
  auto flips = TwoProportionZTest(23, 158, 7, 158);
  ASSERT_TRUE(flips.ok());
  EXPECT_NEAR(flips->p_value, 0.0021, 0.00005);
  auto accuracy = TwoProportionZTest(133, 158, 130, 158);
  ASSERT_TRUE(accuracy.ok());
  EXPECT_NEAR(accuracy->p_value, 0.65, 0.005);
  // Wald CI of the difference (23-7)/158 = 0.1013 must exclude 0 and contain the estimate.
  EXPECT_GT(flips->ci_low, 0);
  EXPECT_LT(flips->ci_low, 16.0 / 158);
  EXPECT_GT(flips->ci_high, 16.0 / 158);
}

TEST(TwoProportionZTest, WaldIntervalMatchesStatsmodels) {
  // statsmodels.stats.proportion.confint_proportions_2indep(x1, n1, x2, n2, method="wald",
  //                                                         compare="diff")
  struct Case {
    int64_t x1, n1, x2, n2;
    double lo, hi;
  };
  const std::vector<Case> cases = {
      {23, 158, 7, 158, 0.03759895293336328, 0.16493269263625698},
      {133, 158, 130, 158, -0.06337392561205625, 0.10134860915636003},
      {0, 10, 3, 10, -0.5840257650893255, -0.015974234910674567},
  };
  for (const Case& c : cases) {
    auto r = TwoProportionZTest(c.x1, c.n1, c.x2, c.n2);
    ASSERT_TRUE(r.ok());
    ExpectCi(*r, c.lo, c.hi);
  }
}

TEST(TwoProportionZTest, OneSidedMatchesStatsmodels) {
  // proportions_ztest([x1, x2], [n1, n2], alternative="larger" | "smaller")
  struct Case {
    int64_t x1, n1, x2, n2;
    Alternative alt;
    double z, p;
  };
  const std::vector<Case> cases = {
      {23, 158, 7, 158, Alternative::kGreater, 3.0705762046297154, 0.0010682307954881299},
      {23, 158, 7, 158, Alternative::kLess, 3.0705762046297154, 0.9989317692045119},
      {3, 20, 8, 25, Alternative::kGreater, -1.318573609487299, 0.906344149366116},
      {3, 20, 8, 25, Alternative::kLess, -1.318573609487299, 0.09365585063388399},
  };
  for (const Case& c : cases) {
    ZTestOptions options;
    options.alternative = c.alt;
    auto r = TwoProportionZTest(c.x1, c.n1, c.x2, c.n2, options);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->statistic, c.z, kTol);
    EXPECT_NEAR(r->p_value, c.p, kTol);
  }
}

TEST(TwoProportionZTest, ContinuityMatchesYatesChiSquare) {
  // chi2, p, _, _ = scipy.stats.chi2_contingency([[x1, n1-x1], [x2, n2-x2]], correction=True);
  // |z| = sqrt(chi2)
  const std::vector<ZCase> cases = {
      {23, 158, 7, 158, 2.878665191840358, 0.003993620647905085},
      {133, 158, 130, 158, 0.3011325681298732, 0.7633134071833445},
      {0, 10, 3, 10, 1.2524485821702989, 0.2104064530953678},
      {5, 5, 2, 7, 1.8805123053604955, 0.0600382909095792},
      {34, 250, 20, 250, 1.873113289805444, 0.061052742560193524},
  };
  ZTestOptions options;
  options.continuity = true;
  for (const ZCase& c : cases) {
    auto r = TwoProportionZTest(c.x1, c.n1, c.x2, c.n2, options);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(std::fabs(r->statistic), c.z, kTol);
    EXPECT_NEAR(r->p_value, c.p, kTol);
  }
}

TEST(TwoProportionZTest, RejectsInvalidCounts) {
  EXPECT_EQ(TwoProportionZTest(1, 0, 1, 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TwoProportionZTest(6, 5, 1, 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TwoProportionZTest(1, 5, -1, 5).status().code(), absl::StatusCode::kInvalidArgument);
  ZTestOptions bad;
  bad.confidence = 1.0;
  EXPECT_EQ(TwoProportionZTest(1, 5, 1, 5, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(TwoProportionZTest(6, 5, 1, 5).status().message()),
              testing::HasSubstr("x1"));
}

TEST(TwoProportionZTest, ZeroVarianceGivesPOne) {
  auto r = TwoProportionZTest(0, 10, 0, 12);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->statistic, 0);
  EXPECT_EQ(r->p_value, 1);
}

// ---- Wilson
// ---------------------------------------------------------------------------------------

TEST(WilsonInterval, MatchesStatsmodels) {
  // lo, hi = statsmodels.stats.proportion.proportion_confint(x, n, method="wilson")
  struct Case {
    int64_t x, n;
    double lo, hi;
  };
  const std::vector<Case> cases = {
      {23, 158, 0.09900027985224191, 0.2089644356408012},
      {0, 10, 0.0, 0.27753279986288926},
      {10, 10, 0.7224672001371106, 1.0},
      {1, 2, 0.09453120573423068, 0.9054687942657693},
      {133, 158, 0.7768510554269474, 0.890468683204761},
      {7, 158, 0.021623955563445325, 0.08861639292761014},
  };
  for (const Case& c : cases) {
    auto r = WilsonInterval(c.x, c.n);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->statistic, static_cast<double>(c.x) / c.n, 1e-12);
    ExpectCi(*r, c.lo, c.hi);
  }
  // proportion_confint(23, 158, alpha=0.1, method="wilson")
  auto r90 = WilsonInterval(23, 158, 0.90);
  ASSERT_TRUE(r90.ok());
  ExpectCi(*r90, 0.1053892506210291, 0.197683950260855);
  EXPECT_THAT(WilsonInterval(3, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, "x must be in [0, n=2], got 3"));
  EXPECT_THAT(WilsonInterval(0, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, "n must be positive, got 0"));
}

// ---- McNemar ------------------------------------------------------------------------------------

TEST(McNemarTest, MatchesStatsmodelsAllForms) {
  // t = [[0, b], [c, 0]]; statsmodels.stats.contingency_tables.mcnemar(t, exact=True),
  // mcnemar(t, exact=False, correction=True), mcnemar(t, exact=False, correction=False)
  struct Case {
    int64_t b, c;
    double exact_stat, exact_p, cc_stat, cc_p, chi_stat, chi_p;
  };
  const std::vector<Case> cases = {
      {20, 4, 4.0, 0.001543879508972168, 9.375, 0.00219964706111306, 10.666666666666666,
       0.0010908351761252995},
      {5, 5, 5.0, 1.0, 0.1, 0.7518296340458492, 0.0, 1.0},
      {0, 3, 0.0, 0.25, 1.3333333333333333, 0.24821307898992026, 3.0, 0.08326451666355042},
      {1, 0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.31731050786291115},
      {12, 30, 12.0, 0.007915897334896727, 6.880952380952381, 0.008711912962379598,
       7.714285714285714, 0.00547855324254737},
      {100, 80, 80.0, 0.15653146957815126, 2.0055555555555555, 0.1567238679451147,
       2.2222222222222223, 0.13603712811414423},
      {3, 9, 3.0, 0.14599609375, 2.0833333333333335, 0.14891467317876161, 3.0, 0.08326451666355042},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "b=" << c.b << " c=" << c.c);
    auto exact = McNemarTest(c.b, c.c);
    ASSERT_TRUE(exact.ok());
    EXPECT_NEAR(exact->statistic, c.exact_stat, kTol);
    EXPECT_NEAR(exact->p_value, c.exact_p, kTol);
    McNemarOptions chi;
    chi.method = McNemarMethod::kChiSquare;
    auto corrected = McNemarTest(c.b, c.c, chi);
    ASSERT_TRUE(corrected.ok());
    EXPECT_NEAR(corrected->statistic, c.cc_stat, kTol);
    EXPECT_NEAR(corrected->p_value, c.cc_p, kTol);
    chi.continuity = false;
    auto plain = McNemarTest(c.b, c.c, chi);
    ASSERT_TRUE(plain.ok());
    EXPECT_NEAR(plain->statistic, c.chi_stat, kTol);
    EXPECT_NEAR(plain->p_value, c.chi_p, kTol);
  }
}

TEST(McNemarTest, NoDiscordantPairsAndPairedCi) {
  auto none = McNemarTest(0, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->p_value, 1);
  EXPECT_TRUE(std::isnan(none->ci_low));
  McNemarOptions options;
  options.n_pairs = 158;
  auto r = McNemarTest(20, 4, options);
  ASSERT_TRUE(r.ok());
  // Wald interval of (b - c)/n: 16/158 ± 1.96 * sqrt(24 - 16^2/158)/158.
  const double diff = 16.0 / 158;
  const double half = 1.959963984540054 * std::sqrt(24 - 256.0 / 158) / 158;
  ExpectCi(*r, diff - half, diff + half);
  options.n_pairs = 10;
  EXPECT_THAT(McNemarTest(20, 4, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "n_pairs=10 is smaller than the discordant pairs b+c=24"));
  EXPECT_THAT(McNemarTest(-1, 4), StatusIs(absl::StatusCode::kInvalidArgument,
                                           "McNemar counts must be non-negative, got b=-1 c=4"));
}

// ---- Wilcoxon -----------------------------------------------------------------------------------

struct WCase {
  const char* name;
  std::vector<double> d;
  Alternative alt;
  double statistic, p;
};

TEST(WilcoxonSignedRank, ExactMatchesScipy) {
  // scipy.stats.wilcoxon(d, zero_method="wilcox", correction=True, alternative=alt,
  //                      mode="exact")
  const std::vector<double> small = {1.5, -0.3, 2.2, 0.7, -1.1, 3.4, 0.9};
  const std::vector<double> n3 = {0.5, 1.0, 2.0};
  const std::vector<double> neg = {-2.1, -0.4,  -3.3,  0.2, -1.7, -0.9,
                                   -2.8, -0.05, -1.25, 0.6, -4.4, -0.33};
  const std::vector<WCase> cases = {
      {"small", small, Alternative::kTwoSided, 5.0, 0.15625},
      {"small", small, Alternative::kGreater, 23.0, 0.078125},
      {"small", small, Alternative::kLess, 23.0, 0.9453125},
      {"n3", n3, Alternative::kTwoSided, 0.0, 0.25},
      {"n3", n3, Alternative::kGreater, 6.0, 0.125},
      {"n3", n3, Alternative::kLess, 6.0, 1.0},
      {"neg", neg, Alternative::kTwoSided, 7.0, 0.00927734375},
      {"neg", neg, Alternative::kGreater, 7.0, 0.99658203125},
      {"neg", neg, Alternative::kLess, 7.0, 0.004638671875},
  };
  for (const WCase& c : cases) {
    SCOPED_TRACE(testing::Message() << c.name << " " << AlternativeName(c.alt));
    WilcoxonOptions options;
    options.alternative = c.alt;  // kAuto must pick exact: n <= 50, no zeros, no ties
    auto r = WilcoxonSignedRank(c.d, options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(r->method, testing::HasSubstr("exact"));
    EXPECT_NEAR(r->statistic, c.statistic, kTol);
    EXPECT_NEAR(r->p_value, c.p, kTol);
  }
}

TEST(WilcoxonSignedRank, ApproxWithTiesAndZerosMatchesScipy) {
  // scipy.stats.wilcoxon(d, zero_method="wilcox", correction=True, alternative=alt,
  //                      mode="approx")
  const std::vector<double> ties = {1, 2, 2, -3, 3, 3, 4, -1, 5, 2};
  const std::vector<double> zeros = {0, 0, 1.2, -0.5, 2.5, 0.7, -0.1, 3.1, 0, 1.9, 0.8, -0.2};
  const std::vector<double> both = {0, 1, -1, 2, 2, 0, -3, 3, 4, 1, 0, 5, -2, 2};
  const std::vector<double> tiny = {0, 1, 2};
  const std::vector<double> big = {
      0.646,  1.122,  0.63,   -1.003, 1.205,  0.746,  -0.237, 0.881,  0.665,  0.594, 0.328,  0.847,
      -0.436, 0.137,  -0.182, 0.899,  0.34,   0.008,  -0.482, 0.043,  0.308,  0.024, 1.594,  1.307,
      -2.411, -1.589, 0.125,  -0.122, 0.514,  0.517,  2.418,  -0.812, -0.078, 2.343, 0.947,  0.963,
      -0.214, -1.348, 0.467,  0.409,  -0.927, -0.383, 0.228,  -0.645, 0.202,  0.395, 0.336,  -0.206,
      0.894,  1.191,  0.621,  -0.518, 1.032,  -0.201, 1.179,  -0.772, 1.214,  0.28,  -0.949, -0.014,
      0.354,  0.573,  -0.682, -0.807, 0.5,    -0.167, 0.536,  1.06,   -1.349, 0.554, 1.525,  0.002,
      -0.511, 1.052,  0.553,  1.196,  -0.045, -1.182, 0.19,   -0.146};
  const std::vector<WCase> cases = {
      {"ties", ties, Alternative::kTwoSided, 8.5, 0.057852694427290845},
      {"ties", ties, Alternative::kGreater, 46.5, 0.028926347213645422},
      {"ties", ties, Alternative::kLess, 46.5, 0.9772143652036815},
      {"zeros", zeros, Alternative::kTwoSided, 6.0, 0.0580240199462214},
      {"zeros", zeros, Alternative::kGreater, 39.0, 0.0290120099731107},
      {"zeros", zeros, Alternative::kLess, 39.0, 0.9779945079935243},
      {"zeros+ties", both, Alternative::kTwoSided, 16.0, 0.13940147070983608},
      {"zeros+ties", both, Alternative::kGreater, 50.0, 0.06970073535491804},
      {"zeros+ties", both, Alternative::kLess, 50.0, 0.9415128316933253},
      {"tiny", tiny, Alternative::kTwoSided, 0.0, 0.37109336952269756},
      {"tiny", tiny, Alternative::kGreater, 3.0, 0.18554668476134878},
      {"tiny", tiny, Alternative::kLess, 3.0, 0.9631808649398487},
      // n = 80 > 50: auto picks the approximation even without ties or zeros.
      {"big", big, Alternative::kTwoSided, 1082.0, 0.009937274243628055},
      {"big", big, Alternative::kGreater, 2158.0, 0.004968637121814027},
      {"big", big, Alternative::kLess, 2158.0, 0.9950999034412252},
  };
  for (const WCase& c : cases) {
    SCOPED_TRACE(testing::Message() << c.name << " " << AlternativeName(c.alt));
    WilcoxonOptions options;
    options.alternative = c.alt;
    auto r = WilcoxonSignedRank(c.d, options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(r->method, testing::HasSubstr("normal approximation"));
    EXPECT_NEAR(r->statistic, c.statistic, kTol);
    EXPECT_NEAR(r->p_value, c.p, kTol);
  }
}

TEST(WilcoxonSignedRank, ApproxWithoutCorrectionAndPairedForm) {
  // scipy.stats.wilcoxon([1.5, -0.3, 2.2, 0.7, -1.1, 3.4, 0.9], correction=False,
  //                      mode="approx")
  const std::vector<double> d = {1.5, -0.3, 2.2, 0.7, -1.1, 3.4, 0.9};
  WilcoxonOptions options;
  options.method = WilcoxonMethod::kApprox;
  options.continuity = false;
  auto r = WilcoxonSignedRank(d, options);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->statistic, 5.0, kTol);
  EXPECT_NEAR(r->p_value, 0.12819017434510785, kTol);
  // Paired form: x - y reproduces d.
  std::vector<double> x(d.size()), y(d.size(), 10.0);
  for (size_t i = 0; i < d.size(); ++i) x[i] = 10.0 + d[i];
  auto paired = WilcoxonSignedRank(x, y);
  ASSERT_TRUE(paired.ok());
  EXPECT_NEAR(paired->p_value, 0.15625, kTol);
}

TEST(WilcoxonSignedRank, RejectsInvalidInput) {
  EXPECT_THAT(
      WilcoxonSignedRank(std::vector<double>{}),
      StatusIs(absl::StatusCode::kInvalidArgument, "differences needs at least 1 values, got 0"));
  EXPECT_THAT(WilcoxonSignedRank(std::vector<double>{0, 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Wilcoxon signed-rank: every difference is zero, the test is undefined"));
  EXPECT_THAT(
      WilcoxonSignedRank(std::vector<double>{1, std::nan("")}),
      StatusIs(absl::StatusCode::kInvalidArgument, "differences[1] is not a finite number (nan)"));
  EXPECT_THAT(WilcoxonSignedRank(std::vector<double>{1, 2}, std::vector<double>{1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Wilcoxon signed-rank needs paired samples of equal length, got 2 and 1"));
  WilcoxonOptions exact;
  exact.method = WilcoxonMethod::kExact;
  EXPECT_THAT(WilcoxonSignedRank(std::vector<double>{1, 1, 2}, exact),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Wilcoxon exact method needs at most 400 differences without"));  // ties
  EXPECT_THAT(WilcoxonSignedRank(std::vector<double>{0, 1, 2}, exact),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Wilcoxon exact method needs at most 400 differences without"));  // zeros
}

// ---- t procedures -------------------------------------------------------------------------------

TEST(MeanTInterval, MatchesScipy) {
  // lo, hi = scipy.stats.t.interval(conf, len(v) - 1, loc=np.mean(v), scale=scipy.stats.sem(v))
  struct Case {
    std::vector<double> v;
    double mean, lo, hi;
    double confidence = 0.95;
  };
  const std::vector<Case> cases = {
      {{0.97, 0.99, 0.98, 0.995, 0.96}, 0.9789999999999999, 0.961222077053006, 0.9967779229469937},
      {{1, 2}, 1.5, -4.853102368216048, 7.853102368216048},
      {{0.1, 0.4, 0.35, 0.8, 0.05, 0.22}, 0.32, 0.034908682983112616, 0.6050913170168875},
      {{3.3, 3.1, 2.9, 3.6}, 3.225, 2.749848226001271, 3.700151773998729},
      {{0.146, 0.12, 0.15}, 0.1386666666666667, 0.09820240928463533, 0.17913092404869804},
      {{0.2, 0.25, 0.3, 0.28, 0.22, 0.26, 0.27, 0.24},
       0.2525,
       0.21240838224164418,
       0.29259161775835585,
       0.99},
  };
  for (const Case& c : cases) {
    auto r = MeanTInterval(c.v, c.confidence);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->statistic, c.mean, 1e-12);
    ExpectCi(*r, c.lo, c.hi);
  }
  EXPECT_THAT(
      MeanTInterval(std::vector<double>{1.0}),
      StatusIs(absl::StatusCode::kInvalidArgument, "values needs at least 2 values, got 1"));
  // Equal values give a zero-width interval, which is a valid answer for an interval.
  auto flat = MeanTInterval(std::vector<double>{2, 2, 2});
  ASSERT_TRUE(flat.ok());
  ExpectCi(*flat, 2, 2);
}

TEST(OneSampleTTest, MatchesScipy) {
  // r = scipy.stats.ttest_1samp(v, mu, alternative=alt); ci = r.confidence_interval(0.95)
  struct Case {
    std::vector<double> v;
    double mu;
    Alternative alt;
    double t, p, lo, hi;
  };
  const std::vector<double> r2 = {0.97, 0.99, 0.98, 0.995, 0.96};
  const std::vector<double> two = {1, 2};
  const std::vector<double> six = {0.1, 0.4, 0.35, 0.8, 0.05, 0.22};
  const std::vector<double> sae = {0.996, 0.998, 0.997, 0.999, 0.995, 0.997, 0.998};
  const std::vector<double> four = {3.3, 3.1, 2.9, 3.6};
  const std::vector<Case> cases = {
      {r2, 0.95, Alternative::kTwoSided, 4.5290390947695585, 0.010585093036752357,
       0.961222077053006, 0.9967779229469937},
      {r2, 0.95, Alternative::kGreater, 4.5290390947695585, 0.005292546518376178,
       0.9653495202039323, kInf},
      {r2, 0.95, Alternative::kLess, 4.5290390947695585, 0.9947074534816238, -kInf,
       0.9926504797960675},
      {two, 0, Alternative::kTwoSided, 3.0, 0.20483276469913345, -4.853102368216048,
       7.853102368216048},
      {two, 0, Alternative::kGreater, 3.0, 0.10241638234956672, -1.6568757574004662, kInf},
      {two, 0, Alternative::kLess, 3.0, 0.8975836176504333, -kInf, 4.656875757400466},
      {six, 0.5, Alternative::kTwoSided, -1.6230053424013782, 0.16551557456896915,
       0.03490868298311267, 0.6050913170168873},
      {six, 0.5, Alternative::kGreater, -1.6230053424013782, 0.9172422127155154,
       0.09652032460731827, kInf},
      {six, 0.5, Alternative::kLess, -1.6230053424013782, 0.08275778728448457, -kInf,
       0.5434796753926817},
      {sae, 0.95, Alternative::kGreater, 92.72199534658785, 5.301293215525528e-11,
       0.9961548815280211, kInf},
      {four, 3.5, Alternative::kTwoSided, -1.841880388213626, 0.16273310982429376,
       2.749848226001271, 3.700151773998729},
      {four, 3.5, Alternative::kLess, -1.841880388213626, 0.08136655491214688, -kInf,
       3.57636643438512},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "mu=" << c.mu << " " << AlternativeName(c.alt));
    auto r = OneSampleTTest(c.v, c.mu, c.alt);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->statistic, c.t, 1e-6 * std::max(1.0, std::fabs(c.t)));
    EXPECT_NEAR(r->p_value, c.p, kTol);
    ExpectCi(*r, c.lo, c.hi);
  }
  EXPECT_THAT(
      OneSampleTTest(std::vector<double>{0.97, 0.97}, 0.95),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "one-sample t-test: all values are equal (zero variance), t"));  // zero variance
  EXPECT_THAT(
      OneSampleTTest(std::vector<double>{0.97}, 0.95),
      StatusIs(absl::StatusCode::kInvalidArgument, "values needs at least 2 values, got 1"));
}

TEST(WelchTTest, MatchesScipy) {
  // r = scipy.stats.ttest_ind(a, b, equal_var=False, alternative=alt); the CI is
  // diff ± t.ppf(...)·se with the Welch–Satterthwaite df, computed alongside in NumPy.
  struct Case {
    std::vector<double> a, b;
    Alternative alt;
    double t, p, lo, hi;
  };
  const std::vector<double> a1 = {0.146, 0.12, 0.15}, b1 = {0.044, 0.06, 0.05, 0.041};
  const std::vector<double> a2 = {1, 2}, b2 = {3, 4, 5};
  const std::vector<double> a3 = {0.5, 0.52, 0.49, 0.51, 0.5}, b3 = {0.3, 0.9, 0.1, 0.7, 0.4};
  const std::vector<double> a4 = {2.0, 2.0, 2.1}, b4 = {1.0, 1.5, 1.2};
  const std::vector<double> a5 = {10, 11, 12, 13, 14, 15}, b5 = {10.5, 11.5, 12.5};
  const std::vector<Case> cases = {
      {a1, b1, Alternative::kTwoSided, 8.733192645485623, 0.004110881636837699,
       0.055782262981737656, 0.12405107035159571},
      {a1, b1, Alternative::kGreater, 8.733192645485623, 0.0020554408184188496, 0.06496261755244412,
       kInf},
      {a2, b2, Alternative::kTwoSided, -3.273268353539886, 0.049416256862577515, -4.98773379820616,
       -0.012266201793839748},
      {a2, b2, Alternative::kLess, -3.273268353539886, 0.024708128431288758, -kInf,
       -0.6722821200471811},
      {a3, b3, Alternative::kTwoSided, 0.16792663208916447, 0.8747697910739608, -0.3724107335759086,
       0.42041073357590864},
      {a4, b4, Alternative::kTwoSided, 5.366563145999494, 0.026474920191320455, 0.21359308859381754,
       1.386406911406182},
      {a4, b4, Alternative::kLess, 5.366563145999494, 0.9867625399043397, -kInf, 1.208355405573692},
      {a5, b5, Alternative::kTwoSided, 1.0444659357341872, 0.3319825833298761, -1.277681737822082,
       3.277681737822082},
      {a5, b5, Alternative::kGreater, 1.0444659357341872, 0.16599129166493806, -0.8220733117777426,
       kInf},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << AlternativeName(c.alt) << " t=" << c.t);
    auto r = WelchTTest(c.a, c.b, c.alt);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->statistic, c.t, kTol);
    EXPECT_NEAR(r->p_value, c.p, kTol);
    ExpectCi(*r, c.lo, c.hi);
  }
  EXPECT_THAT(
      WelchTTest(std::vector<double>{1}, b1),
      StatusIs(absl::StatusCode::kInvalidArgument, "first sample needs at least 2 values, got 1"));
  EXPECT_THAT(WelchTTest(std::vector<double>{1, 1}, std::vector<double>{2, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Welch t-test: both samples have zero variance, t is undefined"));
}

// ---- Bootstrap and Holm -------------------------------------------------------------------------

TEST(PairedBootstrap, SeededPercentileIntervalOfMeanDifference) {
  std::vector<double> x, y;
  for (int i = 0; i < 200; ++i) {
    x.push_back(std::sin(i * 0.7) + 0.5);
    y.push_back(std::cos(i * 1.3));
  }
  auto mean_diff = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] - b[i];
    return s / a.size();
  };
  BootstrapOptions options;
  options.seed = 7;
  auto r1 = PairedBootstrap(x, y, mean_diff, options);
  auto r2 = PairedBootstrap(x, y, mean_diff, options);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->ci_low, r2->ci_low);  // same seed, same interval
  EXPECT_EQ(r1->ci_high, r2->ci_high);
  std::vector<double> d(x.size());
  for (size_t i = 0; i < x.size(); ++i) d[i] = x[i] - y[i];
  EXPECT_NEAR(r1->statistic, Mean(d), 1e-12);
  EXPECT_LT(r1->ci_low, r1->statistic);
  EXPECT_GT(r1->ci_high, r1->statistic);
  // For a mean of 200 values the percentile interval is close to the t-interval.
  auto t = MeanTInterval(d);
  ASSERT_TRUE(t.ok());
  const double t_width = t->ci_high - t->ci_low;
  EXPECT_NEAR(r1->ci_high - r1->ci_low, t_width, 0.15 * t_width);
  options.seed = 8;
  auto r3 = PairedBootstrap(x, y, mean_diff, options);
  ASSERT_TRUE(r3.ok());
  EXPECT_NE(r3->ci_low, r1->ci_low);
}

TEST(PairedBootstrap, IndexFormAndErrors) {
  // A statistic that is constant gives a degenerate interval at that constant.
  auto constant = PairedBootstrap(5, [](absl::Span<const size_t>) { return 3.0; });
  ASSERT_TRUE(constant.ok());
  EXPECT_EQ(constant->ci_low, 3.0);
  EXPECT_EQ(constant->ci_high, 3.0);
  EXPECT_THAT(
      PairedBootstrap(0, [](absl::Span<const size_t>) { return 1.0; }),
      StatusIs(absl::StatusCode::kInvalidArgument, "bootstrap needs at least one unit, got 0"));
  EXPECT_THAT(PairedBootstrap(3, [](absl::Span<const size_t>) { return std::nan(""); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "bootstrap statistic is not finite on the full sample"));
  BootstrapOptions few;
  few.resamples = 2;
  EXPECT_FALSE(PairedBootstrap(
                   3, [](absl::Span<const size_t>) { return 1.0; }, few)
                   .ok());
}

TEST(HolmBonferroni, MatchesStatsmodels) {
  // statsmodels.stats.multitest.multipletests(p, method="holm")[1]
  struct Case {
    std::vector<double> p, adjusted;
  };
  const std::vector<Case> cases = {
      {{0.01, 0.04, 0.03, 0.005}, {0.03, 0.06, 0.06, 0.02}},
      {{0.5}, {0.5}},
      {{0.02, 0.02, 0.2}, {0.06, 0.06, 0.2}},
      {{0.001, 0.9, 0.04, 0.04, 0.3, 0.0}, {0.005, 0.9, 0.16, 0.16, 0.6, 0.0}},
      {{0.3, 0.6, 0.7}, {0.8999999999999999, 1.0, 1.0}},
  };
  for (const Case& c : cases) {
    auto r = HolmBonferroni(c.p);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), c.adjusted.size());
    for (size_t i = 0; i < c.adjusted.size(); ++i) EXPECT_NEAR((*r)[i], c.adjusted[i], 1e-12);
  }
  EXPECT_TRUE(HolmBonferroni({})->empty());
  EXPECT_THAT(
      HolmBonferroni(std::vector<double>{0.1, 1.5}),
      StatusIs(absl::StatusCode::kInvalidArgument, "p-value [1] must be in [0, 1], got 1.5"));
}

TEST(Alternative, ParsesNames) {
  EXPECT_EQ(*ParseAlternative("greater"), Alternative::kGreater);
  EXPECT_EQ(AlternativeName(*ParseAlternative("two-sided")), "two-sided");
  EXPECT_THAT(ParseAlternative("bigger"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown alternative 'bigger' (expected two-sided, less or greater)"));
}

}  // namespace
}  // namespace pcsweep::stats
