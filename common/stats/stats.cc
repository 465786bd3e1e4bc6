#include "common/stats/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "boost/math/distributions/binomial.hpp"
#include "boost/math/distributions/chi_squared.hpp"
#include "boost/math/distributions/normal.hpp"
#include "boost/math/distributions/students_t.hpp"
#include "common/status/status_macros.h"

namespace pcsweep::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

absl::Status CheckConfidence(double confidence) {
  if (!(confidence > 0 && confidence < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("confidence level must be in (0, 1), got ", confidence));
  }
  return absl::OkStatus();
}

absl::Status CheckCount(absl::string_view name_x, int64_t x, absl::string_view name_n, int64_t n) {
  if (n <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(name_n, " must be positive, got ", n));
  }
  if (x < 0 || x > n) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_x, " must be in [0, ", name_n, "=", n, "], got ", x));
  }
  return absl::OkStatus();
}

absl::Status CheckSample(absl::string_view name, absl::Span<const double> values, size_t min_size) {
  if (values.size() < min_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " needs at least ", min_size, " values, got ", values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, "[", i, "] is not a finite number (", values[i], ")"));
    }
  }
  return absl::OkStatus();
}

double NormalSf(double z) {
  return boost::math::cdf(boost::math::complement(boost::math::normal(), z));
}
double NormalCdf(double z) { return boost::math::cdf(boost::math::normal(), z); }
double NormalQuantile(double q) { return boost::math::quantile(boost::math::normal(), q); }

double PValueFromZ(double z, Alternative alternative) {
  switch (alternative) {
    case Alternative::kTwoSided:
      return std::min(1.0, 2 * NormalSf(std::fabs(z)));
    case Alternative::kGreater:
      return NormalSf(z);
    case Alternative::kLess:
      return NormalCdf(z);
  }
  return kNaN;
}

double PValueFromT(double t, double df, Alternative alternative) {
  boost::math::students_t dist(df);
  switch (alternative) {
    case Alternative::kTwoSided:
      return std::min(1.0, 2 * boost::math::cdf(boost::math::complement(dist, std::fabs(t))));
    case Alternative::kGreater:
      return boost::math::cdf(boost::math::complement(dist, t));
    case Alternative::kLess:
      return boost::math::cdf(dist, t);
  }
  return kNaN;
}

// Interval estimate ± t·se matching the alternative, as SciPy's confidence_interval().
std::pair<double, double> TInterval(double estimate, double se, double df, Alternative alternative,
                                    double confidence) {
  boost::math::students_t dist(df);
  if (alternative == Alternative::kTwoSided) {
    double t = boost::math::quantile(dist, (1 + confidence) / 2);
    return {estimate - t * se, estimate + t * se};
  }
  double t = boost::math::quantile(dist, confidence);
  if (alternative == Alternative::kGreater) return {estimate - t * se, kInf};
  return {-kInf, estimate + t * se};
}

double Variance(absl::Span<const double> values) {
  double mean = Mean(values);
  double sum = 0;
  for (double v : values) sum += (v - mean) * (v - mean);
  return sum / static_cast<double>(values.size() - 1);
}

// P(R+ = k) for k in [0, n(n+1)/2] under H0 with n untied, non-zero differences: each rank
// enters R+ with probability 1/2 independently. Kept as probabilities so large n cannot
// overflow.
std::vector<double> SignedRankNullPmf(int n) {
  const int max_sum = n * (n + 1) / 2;
  std::vector<double> pmf(max_sum + 1, 0.0);
  pmf[0] = 1.0;
  int current_max = 0;
  for (int rank = 1; rank <= n; ++rank) {
    current_max += rank;
    for (int s = current_max; s >= 0; --s) {
      double with_rank = s >= rank ? pmf[s - rank] : 0.0;
      pmf[s] = 0.5 * (pmf[s] + with_rank);
    }
  }
  return pmf;
}

}  // namespace

absl::StatusOr<Alternative> ParseAlternative(absl::string_view name) {
  if (name == "two-sided") return Alternative::kTwoSided;
  if (name == "less") return Alternative::kLess;
  if (name == "greater") return Alternative::kGreater;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown alternative '", name, "' (expected two-sided, less or greater)"));
}

std::string AlternativeName(Alternative alternative) {
  switch (alternative) {
    case Alternative::kTwoSided:
      return "two-sided";
    case Alternative::kLess:
      return "less";
    case Alternative::kGreater:
      return "greater";
  }
  return "?";
}

double Mean(absl::Span<const double> values) {
  if (values.empty()) return kNaN;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double SampleStdDev(absl::Span<const double> values) {
  if (values.size() < 2) return kNaN;
  return std::sqrt(Variance(values));
}

absl::StatusOr<TestResult> TwoProportionZTest(int64_t x1, int64_t n1, int64_t x2, int64_t n2,
                                              const ZTestOptions& options) {
  PCSWEEP_RETURN_IF_ERROR(CheckCount("x1", x1, "n1", n1));
  PCSWEEP_RETURN_IF_ERROR(CheckCount("x2", x2, "n2", n2));
  PCSWEEP_RETURN_IF_ERROR(CheckConfidence(options.confidence));
  const double p1 = static_cast<double>(x1) / n1;
  const double p2 = static_cast<double>(x2) / n2;
  const double pooled = static_cast<double>(x1 + x2) / (n1 + n2);
  const double inv_n = 1.0 / n1 + 1.0 / n2;
  const double se = std::sqrt(pooled * (1 - pooled) * inv_n);
  const double diff = p1 - p2;
  double effect = diff;
  if (options.continuity) {
    // R's prop.test: shrink |diff| by the correction but never past zero.
    double shrunk = std::max(0.0, std::fabs(diff) - 0.5 * inv_n);
    effect = diff < 0 ? -shrunk : shrunk;
  }
  TestResult result;
  if (se == 0) {
    result.statistic = 0;
    result.p_value = 1;
  } else {
    result.statistic = effect / se;
    result.p_value = PValueFromZ(result.statistic, options.alternative);
  }
  const double z_crit = NormalQuantile((1 + options.confidence) / 2);
  const double se_unpooled = std::sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2);
  result.ci_low = diff - z_crit * se_unpooled;
  result.ci_high = diff + z_crit * se_unpooled;
  result.n = n1 + n2;
  result.method =
      absl::StrCat("two-proportion z-test (pooled, ", AlternativeName(options.alternative),
                   options.continuity ? ", continuity-corrected" : "", ")");
  return result;
}

absl::StatusOr<TestResult> WilsonInterval(int64_t x, int64_t n, double confidence) {
  PCSWEEP_RETURN_IF_ERROR(CheckCount("x", x, "n", n));
  PCSWEEP_RETURN_IF_ERROR(CheckConfidence(confidence));
  const double p = static_cast<double>(x) / n;
  const double z = NormalQuantile((1 + confidence) / 2);
  const double z2 = z * z;
  const double denom = n + z2;
  const double center = (x + z2 / 2) / denom;
  const double half =
      z * std::sqrt(static_cast<double>(n)) / denom * std::sqrt(p * (1 - p) + z2 / (4.0 * n));
  TestResult result;
  result.statistic = p;
  result.p_value = kNaN;
  result.ci_low = std::max(0.0, center - half);
  result.ci_high = std::min(1.0, center + half);
  result.n = n;
  result.method = "Wilson score interval";
  return result;
}

absl::StatusOr<TestResult> McNemarTest(int64_t b, int64_t c, const McNemarOptions& options) {
  if (b < 0 || c < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("McNemar counts must be non-negative, got b=", b, " c=", c));
  }
  if (options.n_pairs < 0 || (options.n_pairs > 0 && options.n_pairs < b + c)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n_pairs=", options.n_pairs, " is smaller than the discordant pairs b+c=", b + c));
  }
  PCSWEEP_RETURN_IF_ERROR(CheckConfidence(options.confidence));
  const int64_t discordant = b + c;
  TestResult result;
  result.n = discordant;
  if (options.method == McNemarMethod::kExact) {
    result.statistic = static_cast<double>(std::min(b, c));
    if (discordant == 0) {
      result.p_value = 1;
    } else {
      boost::math::binomial dist(static_cast<double>(discordant), 0.5);
      result.p_value =
          std::min(1.0, 2 * boost::math::cdf(dist, static_cast<double>(std::min(b, c))));
    }
    result.method = "McNemar exact (binomial, two-sided)";
  } else {
    if (discordant == 0) {
      result.statistic = 0;
      result.p_value = 1;
    } else {
      const double correction = options.continuity ? 1.0 : 0.0;
      const double numer = std::fabs(static_cast<double>(b - c)) - correction;
      result.statistic = numer * numer / static_cast<double>(discordant);
      result.p_value = boost::math::cdf(
          boost::math::complement(boost::math::chi_squared(1.0), result.statistic));
    }
    result.method =
        options.continuity ? "McNemar chi-square (continuity-corrected)" : "McNemar chi-square";
  }
  if (options.n_pairs > 0) {
    const double n = static_cast<double>(options.n_pairs);
    const double diff = static_cast<double>(b - c) / n;
    const double var = (static_cast<double>(discordant) - diff * diff * n) / (n * n);
    const double z = NormalQuantile((1 + options.confidence) / 2);
    const double half = z * std::sqrt(std::max(0.0, var));
    result.ci_low = diff - half;
    result.ci_high = diff + half;
  } else {
    result.ci_low = result.ci_high = kNaN;
  }
  return result;
}

absl::StatusOr<TestResult> WilcoxonSignedRank(absl::Span<const double> differences,
                                              const WilcoxonOptions& options) {
  PCSWEEP_RETURN_IF_ERROR(CheckSample("differences", differences, 1));
  std::vector<double> nonzero;
  nonzero.reserve(differences.size());
  for (double d : differences) {
    if (d != 0) nonzero.push_back(d);
  }
  const size_t zeros = differences.size() - nonzero.size();
  if (nonzero.empty()) {
    return absl::InvalidArgumentError(
        "Wilcoxon signed-rank: every difference is zero, the test is undefined");
  }
  const size_t n = nonzero.size();
  // Average ranks of |d|; tie groups remembered for the variance correction.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return std::fabs(nonzero[a]) < std::fabs(nonzero[b]); });
  std::vector<double> ranks(n);
  double tie_term = 0;  // sum over tie groups of t(t^2 - 1)
  bool has_ties = false;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && std::fabs(nonzero[order[j + 1]]) == std::fabs(nonzero[order[i]])) ++j;
    const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j + 1)) / 2;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = average_rank;
    const double t = static_cast<double>(j - i + 1);
    if (t > 1) {
      has_ties = true;
      tie_term += t * (t * t - 1);
    }
    i = j + 1;
  }
  double r_plus = 0, r_minus = 0;
  for (size_t i = 0; i < n; ++i) (nonzero[i] > 0 ? r_plus : r_minus) += ranks[i];

  WilcoxonMethod method = options.method;
  if (method == WilcoxonMethod::kAuto) {
    method =
        (n <= 50 && zeros == 0 && !has_ties) ? WilcoxonMethod::kExact : WilcoxonMethod::kApprox;
  }
  if (method == WilcoxonMethod::kExact && (zeros > 0 || has_ties || n > 400)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Wilcoxon exact method needs at most 400 differences without zeros or ties (got ", n,
        " non-zero, ", zeros, " zero", has_ties ? ", with ties" : "", ")"));
  }
  TestResult result;
  result.n = static_cast<int64_t>(n);
  result.ci_low = result.ci_high = kNaN;
  result.statistic =
      options.alternative == Alternative::kTwoSided ? std::min(r_plus, r_minus) : r_plus;
  const double count = static_cast<double>(n);
  if (method == WilcoxonMethod::kApprox) {
    const double mean = count * (count + 1) / 4;
    const double se = std::sqrt((count * (count + 1) * (2 * count + 1) - 0.5 * tie_term) / 24);
    double correction = 0;
    if (options.continuity) {
      switch (options.alternative) {
        case Alternative::kTwoSided:
          correction = 0.5 * ((result.statistic > mean) - (result.statistic < mean));
          break;
        case Alternative::kLess:
          correction = -0.5;
          break;
        case Alternative::kGreater:
          correction = 0.5;
          break;
      }
    }
    const double z = (result.statistic - mean - correction) / se;
    result.p_value = PValueFromZ(z, options.alternative);
    result.method =
        absl::StrCat("Wilcoxon signed-rank (normal approximation",
                     options.continuity ? ", continuity-corrected" : "", ", zero_method=wilcox, ",
                     AlternativeName(options.alternative), ")");
  } else {
    const std::vector<double> pmf = SignedRankNullPmf(static_cast<int>(n));
    const int r = static_cast<int>(std::lround(r_plus));
    auto sum_range = [&](int from, int to) {  // inclusive
      double s = 0;
      for (int k = from; k <= to; ++k) s += pmf[k];
      return s;
    };
    const int last = static_cast<int>(pmf.size()) - 1;
    double p = 0;
    switch (options.alternative) {
      case Alternative::kTwoSided:
        p = (r == last / 2) ? 1.0 : 2 * std::min(sum_range(0, r), sum_range(r, last));
        break;
      case Alternative::kGreater:
        p = sum_range(r, last);
        break;
      case Alternative::kLess:
        p = sum_range(0, r);
        break;
    }
    result.p_value = std::clamp(p, 0.0, 1.0);
    result.method =
        absl::StrCat("Wilcoxon signed-rank (exact, ", AlternativeName(options.alternative), ")");
  }
  return result;
}

absl::StatusOr<TestResult> WilcoxonSignedRank(absl::Span<const double> x,
                                              absl::Span<const double> y,
                                              const WilcoxonOptions& options) {
  if (x.size() != y.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Wilcoxon signed-rank needs paired samples of equal length, got ", x.size(),
                     " and ", y.size()));
  }
  std::vector<double> differences(x.size());
  for (size_t i = 0; i < x.size(); ++i) differences[i] = x[i] - y[i];
  return WilcoxonSignedRank(differences, options);
}

absl::StatusOr<TestResult> MeanTInterval(absl::Span<const double> values, double confidence) {
  PCSWEEP_RETURN_IF_ERROR(CheckSample("values", values, 2));
  PCSWEEP_RETURN_IF_ERROR(CheckConfidence(confidence));
  const double n = static_cast<double>(values.size());
  TestResult result;
  result.statistic = Mean(values);
  result.p_value = kNaN;
  const double se = std::sqrt(Variance(values) / n);
  std::tie(result.ci_low, result.ci_high) =
      TInterval(result.statistic, se, n - 1, Alternative::kTwoSided, confidence);
  result.n = static_cast<int64_t>(values.size());
  result.method = "t-interval of the mean";
  return result;
}

absl::StatusOr<TestResult> OneSampleTTest(absl::Span<const double> values, double mu,
                                          Alternative alternative, double confidence) {
  PCSWEEP_RETURN_IF_ERROR(CheckSample("values", values, 2));
  PCSWEEP_RETURN_IF_ERROR(CheckConfidence(confidence));
  if (!std::isfinite(mu)) return absl::InvalidArgumentError("mu must be a finite number");
  const double n = static_cast<double>(values.size());
  const double mean = Mean(values);
  const double se = std::sqrt(Variance(values) / n);
  if (se == 0) {
    return absl::InvalidArgumentError(
        "one-sample t-test: all values are equal (zero variance), t is undefined");
  }
  TestResult result;
  result.statistic = (mean - mu) / se;
  result.p_value = PValueFromT(result.statistic, n - 1, alternative);
  std::tie(result.ci_low, result.ci_high) = TInterval(mean, se, n - 1, alternative, confidence);
  result.n = static_cast<int64_t>(values.size());
  result.method = absl::StrCat("one-sample t-test (", AlternativeName(alternative), ")");
  return result;
}

absl::StatusOr<TestResult> WelchTTest(absl::Span<const double> a, absl::Span<const double> b,
                                      Alternative alternative, double confidence) {
  PCSWEEP_RETURN_IF_ERROR(CheckSample("first sample", a, 2));
  PCSWEEP_RETURN_IF_ERROR(CheckSample("second sample", b, 2));
  PCSWEEP_RETURN_IF_ERROR(CheckConfidence(confidence));
  const double na = static_cast<double>(a.size());
  const double nb = static_cast<double>(b.size());
  const double va = Variance(a) / na;
  const double vb = Variance(b) / nb;
  if (va + vb == 0) {
    return absl::InvalidArgumentError(
        "Welch t-test: both samples have zero variance, t is undefined");
  }
  const double se = std::sqrt(va + vb);
  const double df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  const double diff = Mean(a) - Mean(b);
  TestResult result;
  result.statistic = diff / se;
  result.p_value = PValueFromT(result.statistic, df, alternative);
  std::tie(result.ci_low, result.ci_high) = TInterval(diff, se, df, alternative, confidence);
  result.n = static_cast<int64_t>(a.size() + b.size());
  result.method = absl::StrFormat("Welch t-test (%s, df=%.4g)", AlternativeName(alternative), df);
  return result;
}

absl::StatusOr<TestResult> PairedBootstrap(
    size_t n, const std::function<double(absl::Span<const size_t> indices)>& statistic,
    const BootstrapOptions& options) {
  if (n == 0) return absl::InvalidArgumentError("bootstrap needs at least one unit, got 0");
  if (options.resamples < 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("bootstrap needs at least 10 resamples, got ", options.resamples));
  }
  PCSWEEP_RETURN_IF_ERROR(CheckConfidence(options.confidence));
  std::vector<size_t> indices(n);
  std::iota(indices.begin(), indices.end(), 0);
  TestResult result;
  result.statistic = statistic(indices);
  if (!std::isfinite(result.statistic)) {
    return absl::InvalidArgumentError("bootstrap statistic is not finite on the full sample");
  }
  std::mt19937_64 rng(options.seed);
  std::vector<double> replicates(options.resamples);
  for (int r = 0; r < options.resamples; ++r) {
    // Multiply-shift maps a 64-bit draw onto [0, n) without a division; its bias is below
    // n / 2^64, far under the Monte Carlo error.
    for (size_t i = 0; i < n; ++i) {
      indices[i] = static_cast<size_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
    }
    replicates[r] = statistic(indices);
    if (!std::isfinite(replicates[r])) {
      return absl::InvalidArgumentError(
          absl::StrCat("bootstrap statistic is not finite on resample ", r));
    }
  }
  std::sort(replicates.begin(), replicates.end());
  auto quantile = [&](double q) {
    const double position = q * static_cast<double>(replicates.size() - 1);
    const size_t below = static_cast<size_t>(std::floor(position));
    const size_t above = std::min(below + 1, replicates.size() - 1);
    const double fraction = position - static_cast<double>(below);
    return replicates[below] + fraction * (replicates[above] - replicates[below]);
  };
  result.p_value = kNaN;
  result.ci_low = quantile((1 - options.confidence) / 2);
  result.ci_high = quantile((1 + options.confidence) / 2);
  result.n = static_cast<int64_t>(n);
  result.method = absl::StrCat("paired percentile bootstrap (", options.resamples,
                               " resamples, seed ", options.seed, ")");
  return result;
}

absl::StatusOr<TestResult> PairedBootstrap(
    absl::Span<const double> x, absl::Span<const double> y,
    const std::function<double(const std::vector<double>&, const std::vector<double>&)>& statistic,
    const BootstrapOptions& options) {
  if (x.size() != y.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "paired bootstrap needs samples of equal length, got ", x.size(), " and ", y.size()));
  }
  std::vector<double> xs, ys;
  return PairedBootstrap(
      x.size(),
      [&](absl::Span<const size_t> indices) {
        xs.resize(indices.size());
        ys.resize(indices.size());
        for (size_t i = 0; i < indices.size(); ++i) {
          xs[i] = x[indices[i]];
          ys[i] = y[indices[i]];
        }
        return statistic(xs, ys);
      },
      options);
}

absl::StatusOr<std::vector<double>> HolmBonferroni(absl::Span<const double> p_values) {
  const size_t m = p_values.size();
  for (size_t i = 0; i < m; ++i) {
    if (!(p_values[i] >= 0 && p_values[i] <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("p-value [", i, "] must be in [0, 1], got ", p_values[i]));
    }
  }
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  std::vector<double> adjusted(m);
  double running_max = 0;
  for (size_t rank = 0; rank < m; ++rank) {
    const double scaled = static_cast<double>(m - rank) * p_values[order[rank]];
    running_max = std::max(running_max, std::min(1.0, scaled));
    adjusted[order[rank]] = running_max;
  }
  return adjusted;
}

}  // namespace pcsweep::stats
