// Torch-free statistics of the SAE analysis: the transfer test over per-prompt R² values
// (mean, t interval, one-sided one-sample t-test against a threshold, via common/stats),
// the ranking of SAE features by how well their activation differences between the two
// prompts of a paraphrase pair predict the margin shift, AUROC, and the layer range
// around the best layer that layer_select hands to later stages.
// Pure functions; thread-compatible.
#ifndef PCSWEEP_EXPERIMENTS_SAE_SAE_STATS_H_
#define PCSWEEP_EXPERIMENTS_SAE_SAE_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace pcsweep::sae {

// R² = 1 − SSE/SST. SST = 0 gives 1 when SSE = 0 and −inf otherwise.
double RSquared(double sse, double sst);

struct TransferSummary {
  int64_t prompts = 0;
  double r2_mean = 0, r2_min = 0, r2_ci_low = 0, r2_ci_high = 0;  // two-sided t interval
  double threshold = 0;
  double t = 0, p_value = 1;  // H1: mean R² > threshold (one-sided one-sample t-test)
  double fvu_mean = 0, l0_mean = 0;
  // name -> value for metrics.json ("r2_mean", "r2_ci_low", ..., "p_value", "fvu", "l0").
  std::map<std::string, double> ToMap() const;
};

// Possible errors: InvalidArgument for fewer than 2 prompts, sizes that differ, non-finite
// values, or a confidence outside (0, 1). All R² equal (zero variance): t = ±inf and p = 0
// or 1 by the sign of mean − threshold, instead of the t-test's error.
absl::StatusOr<TransferSummary> SummarizeTransfer(absl::Span<const double> r2,
                                                  absl::Span<const double> fvu,
                                                  absl::Span<const double> l0, double threshold,
                                                  double confidence = 0.95);

// Area under the ROC curve of `score` for separating positives from negatives (ties count
// one half; the Mann–Whitney U / (n_pos · n_neg)). NaN when a class is empty.
double Auroc(absl::Span<const double> score, const std::vector<bool>& positive);

// Pearson correlation; 0 when either side has zero variance.
double Pearson(absl::Span<const double> a, absl::Span<const double> b);

struct FeatureScore {
  int64_t feature = 0;
  double correlation = 0;    // Pearson r of Δf_j with Δm over pairs
  double score = 0;          // |correlation|: the ranking key
  double auroc = 0;          // of |Δf_j| for flipped vs stable pairs (NaN when one class is empty)
  int64_t active_pairs = 0;  // pairs where Δf_j ≠ 0
};

// Ranks features by |corr(Δf_j, Δm)| over pairs, best first (ties by feature index), and
// keeps the `top` best (0 = all). `delta_f` is row-major [pairs, features]; features whose
// Δf is zero on fewer than `min_active_pairs` pairs are left out (a feature active on one
// pair correlates by chance).
// Possible errors: InvalidArgument when sizes disagree or there are fewer than 3 pairs.
absl::StatusOr<std::vector<FeatureScore>> RankFeatures(
    absl::Span<const double> delta_f, int64_t features, absl::Span<const double> delta_margin,
    const std::vector<bool>& flipped, size_t top = 0, int64_t min_active_pairs = 3);

// [best − k, best + k] clipped to [0, num_layers), shifted inwards at the ends so that it
// keeps 2k+1 layers when the model has them. Returns {first, last}.
std::pair<int, int> LayerRange(int best, int k, int num_layers);
// "3-5" (or "4" for a one-layer range), the form ParseLayers reads.
std::string LayerRangeText(std::pair<int, int> range);

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_SAE_STATS_H_
