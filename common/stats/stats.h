// Hypothesis tests and confidence intervals for paraphrase-consistency results: the tests a
// reviewer expects next to a flip-rate or accuracy table (paper-notes.md §5).
//
// Every function is pure and thread-compatible (no shared state; the bootstrap takes its seed
// explicitly). Distribution functions come from Boost.Math; only the exact Wilcoxon null
// distribution and the bootstrap are written here. Each function's behaviour is pinned to the
// SciPy/statsmodels call named in its comment (see stats_test.cc for the recorded values).
//
// All results use one shape, `TestResult`. Fields that do not apply are NaN, e.g. the p-value
// of a confidence interval, or the CI of a test that has none.
#ifndef PCSWEEP_COMMON_STATS_STATS_H_
#define PCSWEEP_COMMON_STATS_STATS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace pcsweep::stats {

// Direction of the alternative hypothesis, as SciPy's `alternative=`. kGreater means "the
// first sample (or the mean) is larger than the second (or mu)".
enum class Alternative { kTwoSided, kLess, kGreater };

// Parses "two-sided" | "less" | "greater".
// Possible errors: InvalidArgument naming the bad value.
absl::StatusOr<Alternative> ParseAlternative(absl::string_view name);
std::string AlternativeName(Alternative alternative);

struct TestResult {
  double statistic = 0;  // z, chi2, T, t, or the point estimate of an interval
  double p_value = 0;    // NaN for intervals
  double ci_low = 0;     // confidence interval of the effect named by `method`; NaN if none
  double ci_high = 0;
  int64_t n = 0;       // units the result is based on (documented per function)
  std::string method;  // human-readable, e.g. "two-proportion z-test (pooled, two-sided)"
};

// ---- Proportions ---------------------------------------------------------------------------

struct ZTestOptions {
  Alternative alternative = Alternative::kTwoSided;
  // Yates-style correction: |p1 - p2| is reduced by (1/n1 + 1/n2)/2 (not below 0). Equals
  // scipy.stats.chi2_contingency(correction=True) / R's prop.test for the two-sided test.
  bool continuity = false;
  double confidence = 0.95;
};

// Pooled two-proportion z-test of x1/n1 vs x2/n2 (statsmodels proportions_ztest with
// prop_var=False). statistic = z; CI = unpooled Wald interval of p1 - p2; n = n1 + n2.
// The paper's test: 23/158 vs 7/158 gives p = 0.0021.
// Possible errors: InvalidArgument when n1 or n2 <= 0, x < 0 or x > n, confidence outside
// (0, 1). When both proportions are 0 or both 1 the variance is 0: z = 0, p = 1.
absl::StatusOr<TestResult> TwoProportionZTest(int64_t x1, int64_t n1, int64_t x2, int64_t n2,
                                              const ZTestOptions& options = {});

// Wilson score interval of x/n (statsmodels proportion_confint(method="wilson")).
// statistic = x/n, p = NaN, n = n.
// Possible errors: InvalidArgument when n <= 0, x < 0, x > n, confidence outside (0, 1).
absl::StatusOr<TestResult> WilsonInterval(int64_t x, int64_t n, double confidence = 0.95);

enum class McNemarMethod { kExact, kChiSquare };

struct McNemarOptions {
  McNemarMethod method = McNemarMethod::kExact;
  bool continuity = true;  // chi-square form only: (|b - c| - 1)^2 / (b + c)
  // Total number of pairs (concordant included). When > 0 the CI is the Wald interval of the
  // paired difference (b - c) / n_pairs; otherwise the CI is NaN.
  int64_t n_pairs = 0;
  double confidence = 0.95;
};

// McNemar's test for paired binary outcomes from the discordant counts b (yes->no, or
// "only the first is positive") and c (the reverse).
// kExact: statsmodels mcnemar(exact=True): statistic = min(b, c), p = two-sided binomial
//   test of b against Binomial(b + c, 1/2), capped at 1.
// kChiSquare: statsmodels mcnemar(exact=False, correction=...): statistic = chi2 (1 df).
// b + c = 0 (no discordant pairs) gives statistic 0, p = 1 for both forms (statsmodels
// returns NaN for the chi-square form there). n = b + c.
// Possible errors: InvalidArgument when b or c < 0, n_pairs in (0, b + c), bad confidence.
absl::StatusOr<TestResult> McNemarTest(int64_t b, int64_t c, const McNemarOptions& options = {});

// ---- Paired differences ----------------------------------------------------------------------

enum class WilcoxonMethod { kAuto, kExact, kApprox };

struct WilcoxonOptions {
  Alternative alternative = Alternative::kTwoSided;
  // kAuto picks kExact when there are at most 50 non-zero differences and no zeros and no
  // tied |d|; otherwise kApprox. (SciPy 1.10's auto also goes exact with ties, where its
  // exact p is wrong; we do not.)
  WilcoxonMethod method = WilcoxonMethod::kAuto;
  bool continuity = true;  // normal approximation only (SciPy's correction=True)
};

// Wilcoxon signed-rank test on the differences d (pairs with x - y), zero_method "wilcox":
// zero differences are dropped before ranking. Ties get average ranks and the tie-corrected
// variance. statistic = min(R+, R-) for two-sided, R+ otherwise (SciPy's convention);
// n = number of non-zero differences; CI = NaN (use PairedBootstrap for an interval).
// Matches scipy.stats.wilcoxon(d, zero_method="wilcox", correction=continuity,
// alternative=..., mode="exact"|"approx") for the method picked, which `method` names.
// kExact with zeros or ties is refused: the exact null distribution assumes neither.
// Possible errors: InvalidArgument when d is empty, all differences are zero, a value is not
// finite, or kExact is asked for with zeros/ties or more than 400 differences.
absl::StatusOr<TestResult> WilcoxonSignedRank(absl::Span<const double> differences,
                                              const WilcoxonOptions& options = {});
// Same on x[i] - y[i]. Possible errors: as above, plus InvalidArgument on unequal lengths.
absl::StatusOr<TestResult> WilcoxonSignedRank(absl::Span<const double> x,
                                              absl::Span<const double> y,
                                              const WilcoxonOptions& options = {});

// ---- Means -------------------------------------------------------------------------------------

// Student-t interval of the mean: mean ± t_{(1+c)/2, n-1} · s/√n
// (scipy.stats.t.interval(c, n - 1, loc=mean, scale=sem)). statistic = mean, p = NaN.
// Possible errors: InvalidArgument for fewer than 2 values, non-finite values, bad confidence.
absl::StatusOr<TestResult> MeanTInterval(absl::Span<const double> values, double confidence = 0.95);

// One-sample t-test of mean(values) against mu (scipy.stats.ttest_1samp). CI is the
// interval of the mean matching the alternative (one-sided ones are unbounded on one side,
// as SciPy's confidence_interval()). statistic = t; n = values.size().
// Possible errors: InvalidArgument for fewer than 2 values, non-finite values, zero variance,
// bad confidence.
absl::StatusOr<TestResult> OneSampleTTest(absl::Span<const double> values, double mu,
                                          Alternative alternative = Alternative::kTwoSided,
                                          double confidence = 0.95);

// Welch's unequal-variance t-test of mean(a) - mean(b) (scipy.stats.ttest_ind(a, b,
// equal_var=False)). CI is the Welch–Satterthwaite interval of the difference, one-sided
// for one-sided alternatives. statistic = t; n = a.size() + b.size().
// Possible errors: InvalidArgument when a sample has fewer than 2 values, a value is not
// finite, both variances are zero, or confidence is outside (0, 1).
absl::StatusOr<TestResult> WelchTTest(absl::Span<const double> a, absl::Span<const double> b,
                                      Alternative alternative = Alternative::kTwoSided,
                                      double confidence = 0.95);

// ---- Resampling and multiplicity ---------------------------------------------------------------

struct BootstrapOptions {
  int resamples = 2000;
  double confidence = 0.95;
  uint64_t seed = 0;  // the same seed and inputs always give the same interval
};

// Paired (case-resampling) percentile bootstrap of any statistic over n paired units: each
// resample draws n unit indices with replacement (mt19937_64 seeded by `seed`) and calls
// `statistic(indices)`. The CI is the (1-c)/2 and (1+c)/2 quantiles of the resampled
// statistics (linear interpolation, NumPy's default). statistic = statistic on all units in
// order; p = NaN; n = n. Non-finite resampled values are an error rather than silently dropped.
// Possible errors: InvalidArgument when n == 0, resamples < 10, bad confidence, or the
// statistic returns a non-finite value.
absl::StatusOr<TestResult> PairedBootstrap(
    size_t n, const std::function<double(absl::Span<const size_t> indices)>& statistic,
    const BootstrapOptions& options = {});

// Convenience form: resamples pairs (x[i], y[i]) together and calls statistic(x*, y*).
// Possible errors: as above, plus InvalidArgument on unequal lengths.
absl::StatusOr<TestResult> PairedBootstrap(
    absl::Span<const double> x, absl::Span<const double> y,
    const std::function<double(const std::vector<double>&, const std::vector<double>&)>& statistic,
    const BootstrapOptions& options = {});

// Holm–Bonferroni step-down adjusted p-values, in the input order
// (statsmodels multipletests(p, method="holm")[1]). Empty input gives empty output.
// Possible errors: InvalidArgument when a p-value is NaN or outside [0, 1].
absl::StatusOr<std::vector<double>> HolmBonferroni(absl::Span<const double> p_values);

// Shared helpers for callers that summarise samples.
double Mean(absl::Span<const double> values);          // NaN when empty
double SampleStdDev(absl::Span<const double> values);  // n-1 denominator; NaN when n < 2

}  // namespace pcsweep::stats

#endif  // PCSWEEP_COMMON_STATS_STATS_H_
