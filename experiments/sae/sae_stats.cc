#include "experiments/sae/sae_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/stats/stats.h"
#include "common/status/status_macros.h"

namespace pcsweep::sae {

double RSquared(double sse, double sst) {
  if (sst > 0) return 1.0 - sse / sst;
  return sse == 0 ? 1.0 : -std::numeric_limits<double>::infinity();
}

std::map<std::string, double> TransferSummary::ToMap() const {
  return {{"prompts", static_cast<double>(prompts)},
          {"r2_mean", r2_mean},
          {"r2_min", r2_min},
          {"r2_ci_low", r2_ci_low},
          {"r2_ci_high", r2_ci_high},
          {"r2_threshold", threshold},
          {"t", t},
          {"p_value", p_value},
          {"fvu", fvu_mean},
          {"l0", l0_mean}};
}

absl::StatusOr<TransferSummary> SummarizeTransfer(absl::Span<const double> r2,
                                                  absl::Span<const double> fvu,
                                                  absl::Span<const double> l0, double threshold,
                                                  double confidence) {
  if (r2.size() < 2)
    return absl::InvalidArgumentError(absl::StrCat("need at least 2 prompts, got ", r2.size()));
  if (fvu.size() != r2.size() || l0.size() != r2.size()) {
    return absl::InvalidArgumentError("R², FVU and L0 lists differ in length");
  }
  for (size_t i = 0; i < r2.size(); ++i) {
    if (!std::isfinite(r2[i]) || !std::isfinite(fvu[i]) || !std::isfinite(l0[i])) {
      return absl::InvalidArgumentError(absl::StrCat("prompt ", i, ": non-finite R², FVU or L0"));
    }
  }
  TransferSummary s;
  s.prompts = static_cast<int64_t>(r2.size());
  s.threshold = threshold;
  const double n = static_cast<double>(r2.size());
  s.r2_mean = std::accumulate(r2.begin(), r2.end(), 0.0) / n;
  s.r2_min = *std::min_element(r2.begin(), r2.end());
  s.fvu_mean = std::accumulate(fvu.begin(), fvu.end(), 0.0) / n;
  s.l0_mean = std::accumulate(l0.begin(), l0.end(), 0.0) / n;
  const bool constant = std::all_of(r2.begin(), r2.end(), [&](double v) { return v == r2[0]; });
  if (constant) {
    s.r2_ci_low = s.r2_ci_high = s.r2_mean;
    s.t = s.r2_mean > threshold ? INFINITY : (s.r2_mean < threshold ? -INFINITY : 0);
    s.p_value = s.r2_mean > threshold ? 0.0 : 1.0;
    return s;
  }
  PCSWEEP_ASSIGN_OR_RETURN(stats::TestResult interval, stats::MeanTInterval(r2, confidence));
  s.r2_ci_low = interval.ci_low;
  s.r2_ci_high = interval.ci_high;
  PCSWEEP_ASSIGN_OR_RETURN(
      stats::TestResult test,
      stats::OneSampleTTest(r2, threshold, stats::Alternative::kGreater, confidence));
  s.t = test.statistic;
  s.p_value = test.p_value;
  return s;
}

double Auroc(absl::Span<const double> score, const std::vector<bool>& positive) {
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  // Mann–Whitney with average ranks for ties.
  double rank_sum_pos = 0;
  int64_t n_pos = 0, n_neg = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double avg_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      if (positive[order[k]]) rank_sum_pos += avg_rank;
    }
    i = j;
  }
  for (bool p : positive) (p ? n_pos : n_neg)++;
  if (n_pos == 0 || n_neg == 0) return std::numeric_limits<double>::quiet_NaN();
  const double u = rank_sum_pos - 0.5 * static_cast<double>(n_pos) * static_cast<double>(n_pos + 1);
  return u / (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

double Pearson(absl::Span<const double> a, absl::Span<const double> b) {
  const size_t n = std::min(a.size(), b.size());
  if (n == 0) return 0;
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) ma += a[i], mb += b[i];
  ma /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa <= 0 || sbb <= 0) return 0;
  return sab / std::sqrt(saa * sbb);
}

absl::StatusOr<std::vector<FeatureScore>> RankFeatures(absl::Span<const double> delta_f,
                                                       int64_t features,
                                                       absl::Span<const double> delta_margin,
                                                       const std::vector<bool>& flipped, size_t top,
                                                       int64_t min_active_pairs) {
  const size_t pairs = delta_margin.size();
  if (features <= 0 || delta_f.size() != pairs * static_cast<size_t>(features) ||
      flipped.size() != pairs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "feature ranking: ", delta_f.size(), " feature deltas, ", pairs, " margin shifts, ",
        flipped.size(), " flip labels do not fit ", features, " features"));
  }
  if (pairs < 3)
    return absl::InvalidArgumentError(
        absl::StrCat("feature ranking needs at least 3 pairs, got ", pairs));
  std::vector<FeatureScore> scores;
  std::vector<double> column(pairs), magnitude(pairs);
  for (int64_t j = 0; j < features; ++j) {
    int64_t active = 0;
    for (size_t p = 0; p < pairs; ++p) {
      column[p] = delta_f[p * features + j];
      magnitude[p] = std::abs(column[p]);
      if (column[p] != 0) ++active;
    }
    if (active < min_active_pairs) continue;
    FeatureScore s;
    s.feature = j;
    s.correlation = Pearson(column, delta_margin);
    s.score = std::abs(s.correlation);
    s.auroc = Auroc(magnitude, flipped);
    s.active_pairs = active;
    scores.push_back(s);
  }
  std::sort(scores.begin(), scores.end(), [](const FeatureScore& a, const FeatureScore& b) {
    return a.score != b.score ? a.score > b.score : a.feature < b.feature;
  });
  if (top > 0 && scores.size() > top) scores.resize(top);
  return scores;
}

std::pair<int, int> LayerRange(int best, int k, int num_layers) {
  const int width = std::min(2 * k + 1, num_layers);
  int first = std::clamp(best - k, 0, num_layers - width);
  return {first, first + width - 1};
}

std::string LayerRangeText(std::pair<int, int> range) {
  if (range.first == range.second) return absl::StrCat(range.first);
  return absl::StrCat(range.first, "-", range.second);
}

}  // namespace pcsweep::sae
