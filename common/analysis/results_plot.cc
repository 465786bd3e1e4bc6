// The paper's figure (ResultsPlotSvg): flip rate and mean margin difference per arm, as bars
// with error bars over seeds and a dashed line for the base model.
#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/analysis/analysis.h"
#include "common/analysis/internal.h"
#include "common/plot/svg.h"
#include "common/stats/stats.h"
#include "common/status/status_macros.h"

namespace pcsweep::analysis {
namespace {

using internal::kNaN;
using internal::Prepared;

// options.plot_eval_set, else the first eval set (sorted) with an adapted result, else "".
std::string PlotEvalSet(const std::vector<Prepared>& prepared, const AnalysisOptions& options) {
  std::string eval_set = options.plot_eval_set;
  if (eval_set.empty()) {
    for (const std::string& set : internal::EvalSets(prepared)) {
      for (const Prepared& p : prepared) {
        if (p.result->eval_set == set && p.result->variant == "adapted" && eval_set.empty()) {
          eval_set = set;
        }
      }
    }
  }
  return eval_set;
}

// The runs on the plotted eval set: x values and series names in order of first appearance,
// the adapted runs of each (x value, series) and the base runs.
struct PlotRuns {
  std::vector<std::string> categories;
  std::vector<std::string> series_names;
  std::map<std::pair<std::string, std::string>, std::vector<const Prepared*>> cells;
  std::vector<const Prepared*> base_runs;
};

PlotRuns GroupPlotRuns(const std::vector<Prepared>& prepared, const std::string& eval_set,
                       const AnalysisOptions& options) {
  PlotRuns out;
  for (const Prepared& p : prepared) {
    if (p.result->eval_set != eval_set) continue;
    if (p.result->variant == "base") {
      out.base_runs.push_back(&p);
      continue;
    }
    auto params = internal::WithoutSeed(p.result->arm_params, options.seed_key);
    std::string x = "all";
    if (auto it = params.find(options.plot_x_key); it != params.end()) {
      x = it->second;
      params.erase(it);
    }
    const std::string series = params.empty() ? "adapted" : ArmName(params, options.seed_key);
    if (std::find(out.categories.begin(), out.categories.end(), x) == out.categories.end()) {
      out.categories.push_back(x);
    }
    if (std::find(out.series_names.begin(), out.series_names.end(), series) ==
        out.series_names.end()) {
      out.series_names.push_back(series);
    }
    out.cells[{x, series}].push_back(&p);
  }
  return out;
}

// Appends the bar of `runs` (one cell) to the flip-rate series `f` and the margin series `m`:
// the mean over seeds with its t-interval, or for one run its Wilson CI (flip rate) and the
// t-interval over pairs (margin).
void AddBar(const std::vector<const Prepared*>& runs, const AnalysisOptions& options,
            plot::Series* f, plot::Series* m) {
  std::vector<double> flip_values, margin_values;
  for (const Prepared* p : runs) {
    flip_values.push_back(p->metrics.flip_rate);
    margin_values.push_back(p->metrics.mean_margin_diff);
  }
  absl::StatusOr<stats::TestResult> flip_ci, margin_ci;
  if (runs.size() >= 2) {
    flip_ci = stats::MeanTInterval(flip_values, options.confidence);
    margin_ci = stats::MeanTInterval(margin_values, options.confidence);
  } else {
    const ConsistencyMetrics& mm = runs.front()->metrics;
    flip_ci = stats::WilsonInterval(mm.flipped_pairs, mm.pairs, options.confidence);
    margin_ci = stats::MeanTInterval(runs.front()->margin_diffs, options.confidence);
  }
  f->values.push_back(stats::Mean(flip_values));
  m->values.push_back(stats::Mean(margin_values));
  // A t-interval over 2-3 seeds can leave [0, 1]; rates and |dm| cannot.
  f->error_low.push_back(flip_ci.ok() ? std::max(0.0, flip_ci->ci_low) : kNaN);
  f->error_high.push_back(flip_ci.ok() ? std::min(1.0, flip_ci->ci_high) : kNaN);
  m->error_low.push_back(margin_ci.ok() ? std::max(0.0, margin_ci->ci_low) : kNaN);
  m->error_high.push_back(margin_ci.ok() ? margin_ci->ci_high : kNaN);
}

// Adds one flip-rate and one margin series per series name, a bar per x value (NaN where the
// series has no run there).
void AddSeries(const PlotRuns& runs, const AnalysisOptions& options, plot::Panel* flips,
               plot::Panel* margins) {
  for (const std::string& name : runs.series_names) {
    plot::Series f{name, {}, {}, {}};
    plot::Series m{name, {}, {}, {}};
    for (const std::string& x : runs.categories) {
      auto it = runs.cells.find({x, name});
      if (it == runs.cells.end()) {
        for (plot::Series* s : {&f, &m}) {
          s->values.push_back(kNaN);
          s->error_low.push_back(kNaN);
          s->error_high.push_back(kNaN);
        }
        continue;
      }
      AddBar(it->second, options, &f, &m);
    }
    flips->series.push_back(std::move(f));
    margins->series.push_back(std::move(m));
  }
}

// The dashed base-model lines: the mean over the base runs, when there are any.
void AddBaseLines(const std::vector<const Prepared*>& base_runs, plot::Panel* flips,
                  plot::Panel* margins) {
  if (base_runs.empty()) return;
  double flip = 0, margin = 0;
  for (const Prepared* p : base_runs) {
    flip += p->metrics.flip_rate / base_runs.size();
    margin += p->metrics.mean_margin_diff / base_runs.size();
  }
  flips->reference_lines.push_back({absl::StrCat("base ", internal::Percent(flip)), flip});
  margins->reference_lines.push_back({absl::StrFormat("base %.2f", margin), margin});
}

}  // namespace

absl::StatusOr<std::string> ResultsPlotSvg(absl::Span<const EvalResult> results,
                                           const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Prepared> prepared, internal::Prepare(results, options));
  const std::string eval_set = PlotEvalSet(prepared, options);
  PlotRuns runs = GroupPlotRuns(prepared, eval_set, options);
  if (runs.categories.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no adapted results on eval set '", eval_set, "' to plot"));
  }
  std::sort(runs.series_names.begin(), runs.series_names.end());
  plot::Panel flips;
  flips.title = "Flip rate";
  flips.y_label = "Flip rate (pairs)";
  flips.y_percent = true;
  plot::Panel margins;
  margins.title = "Mean margin difference |m_q - m_p|";
  margins.y_label = "logits";
  for (plot::Panel* panel : {&flips, &margins}) {
    panel->x_label = options.plot_x_key;
    panel->categories = runs.categories;
  }
  AddSeries(runs, options, &flips, &margins);
  AddBaseLines(runs.base_runs, &flips, &margins);
  plot::Figure figure;
  figure.title =
      absl::StrCat("Flip rate and margin difference by ", options.plot_x_key, " (", eval_set,
                   "; error bars: ", internal::ConfidenceLabel(options.confidence), " CI)");
  figure.panels = {flips, margins};
  return plot::RenderSvg(figure);
}

}  // namespace pcsweep::analysis
