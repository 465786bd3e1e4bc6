// The notes that explain SAE-guided sweeps (SaeSweepNotes): which layers were selected and
// why, how well the SAE transfers to each prompt set, and what clamping a feature changed.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/analysis/analysis.h"
#include "common/analysis/internal.h"

namespace pcsweep::analysis {
namespace {

using internal::Percent;

// The metric `name` of `job`, or NaN when the job did not report it.
double MetricOr(const JobReport& job, const std::string& name) {
  auto it = job.metrics.find(name);
  return it == job.metrics.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

std::string LayerSelectNote(const JobReport& job) {
  const double layer = MetricOr(job, "layer_select.layer");
  const double feature = MetricOr(job, "layer_select.feature");
  const double score = MetricOr(job, "layer_select.score");
  if (std::isnan(layer) || std::isnan(feature) || std::isnan(score)) {
    return absl::StrCat("Layer selection (", job.job_key,
                        "): the job reported no layer_select.{layer, feature, score} metrics.");
  }
  std::string range;
  if (auto it = job.outputs.find("range"); it != job.outputs.end() && !it->second.empty()) {
    range = it->second;
  } else {
    const double first = MetricOr(job, "layer_select.range_first");
    const double last = MetricOr(job, "layer_select.range_last");
    range = std::isnan(first) || std::isnan(last) ? absl::StrFormat("%.0f", layer)
                                                  : absl::StrFormat("%.0f-%.0f", first, last);
  }
  std::string note = absl::StrFormat(
      "Layer selection (%s): layers %s, around layer %.0f, whose SAE feature %.0f tracks the "
      "paraphrase margin change best: |corr(feature change, margin change)| = %.3f",
      job.job_key, range, layer, feature, score);
  const double pairs = MetricOr(job, "layer_select.pairs");
  if (!std::isnan(pairs)) {
    absl::StrAppend(&note, absl::StrFormat(" over %.0f pairs", pairs));
    const double flipped = MetricOr(job, "layer_select.flipped_pairs");
    if (!std::isnan(flipped)) absl::StrAppend(&note, absl::StrFormat(" (%.0f flipped)", flipped));
  }
  const double auroc = MetricOr(job, "layer_select.auroc");
  if (!std::isnan(auroc)) {
    absl::StrAppend(&note, absl::StrFormat("; AUROC flipped vs stable pairs %.3f", auroc));
  }
  absl::StrAppend(&note, ".");
  return note;
}

std::string SaeTransferNote(const JobReport& job) {
  static constexpr absl::string_view kSuffix = ".r2_mean";
  std::vector<std::string> sets;
  for (const auto& [name, value] : job.metrics) {
    if (name.size() > kSuffix.size() && absl::EndsWith(name, kSuffix)) {
      const std::string set = name.substr(0, name.size() - kSuffix.size());
      const double low = MetricOr(job, set + ".r2_ci_low");
      const double high = MetricOr(job, set + ".r2_ci_high");
      const double p = MetricOr(job, set + ".p_value");
      const double passed = MetricOr(job, set + ".passed");
      std::string text = absl::StrFormat("%s R^2 %.3f", set, value);
      if (!std::isnan(low) && !std::isnan(high)) {
        absl::StrAppend(&text, absl::StrFormat(" [CI %.3f, %.3f]", low, high));
      }
      const std::string p_text = FormatP(p);
      absl::StrAppend(
          &text, ", p ",
          p_text[0] == '<' ? absl::StrCat("< ", p_text.substr(1)) : absl::StrCat("= ", p_text));
      if (!std::isnan(passed)) absl::StrAppend(&text, passed != 0 ? " (passed)" : " (failed)");
      sets.push_back(std::move(text));
    }
  }
  if (sets.empty()) {
    return absl::StrCat("SAE transfer (", job.job_key, "): the job reported no S.r2_mean metrics.");
  }
  return absl::StrCat("SAE transfer (", job.job_key,
                      "; one-sided t-test of mean R^2 > threshold): ", absl::StrJoin(sets, "; "),
                      ".");
}

std::string ClampNote(const JobReport& job) {
  const double layer = MetricOr(job, "clamp.layer");
  const double feature = MetricOr(job, "clamp.feature");
  const double scale = MetricOr(job, "clamp.scale");
  static constexpr absl::string_view kSuffix = ".clamp.flip_rate_change";
  std::vector<std::string> sets;
  for (const auto& [name, value] : job.metrics) {
    if (name.size() <= kSuffix.size() || !absl::EndsWith(name, kSuffix)) continue;
    const std::string set = name.substr(0, name.size() - kSuffix.size());
    const double before = MetricOr(job, set + ".base.flip_rate");
    const double after = MetricOr(job, set + ".flip_rate");
    const double relative = MetricOr(job, set + ".clamp.relative_flip_reduction");
    const double accuracy = MetricOr(job, set + ".clamp.accuracy_original_change");
    std::string text = absl::StrFormat("%s flips %s -> %s", set, Percent(before), Percent(after));
    if (!std::isnan(relative)) {
      absl::StrAppend(&text, " (", Percent(relative), " fewer)");
    }
    if (!std::isnan(accuracy)) {
      absl::StrAppend(&text, absl::StrFormat(", accuracy %+.1f pts", 100 * accuracy));
    }
    sets.push_back(std::move(text));
  }
  if (std::isnan(layer) || std::isnan(feature) || sets.empty()) {
    return absl::StrCat("Feature clamping (", job.job_key,
                        "): the job reported no clamp.{layer, feature} or S.clamp.* metrics.");
  }
  return absl::StrFormat("Feature clamping (%s): SAE feature %.0f at layer %.0f scaled by %g: %s.",
                         job.job_key, feature, layer, std::isnan(scale) ? 0.0 : scale,
                         absl::StrJoin(sets, "; "));
}

}  // namespace

std::vector<std::string> SaeSweepNotes(absl::Span<const JobReport> jobs) {
  std::vector<std::string> notes;
  for (const JobReport& job : jobs) {
    if (job.kind == "layer_select") notes.push_back(LayerSelectNote(job));
    if (job.kind == "sae_transfer") notes.push_back(SaeTransferNote(job));
    if (job.kind == "clamp_eval") notes.push_back(ClampNote(job));
  }
  return notes;
}

}  // namespace pcsweep::analysis
