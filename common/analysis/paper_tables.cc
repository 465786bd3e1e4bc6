// The paper's tables (MainTable, AblationTable, PhenomenaTable) and the formatting of their
// cells: proportions and margins with CIs, p-values with their Holm adjustment, run labels.
#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/analysis/analysis.h"
#include "common/analysis/internal.h"
#include "common/stats/stats.h"
#include "common/status/status_macros.h"

namespace pcsweep::analysis {
namespace internal {

std::string Percent(double fraction) { return absl::StrFormat("%.1f%%", 100 * fraction); }

std::string ConfidenceLabel(double confidence) { return absl::StrFormat("%g%%", 100 * confidence); }

}  // namespace internal

namespace {

using internal::Analysis;
using internal::ConfidenceLabel;
using internal::EvalSets;
using internal::kNaN;
using internal::Percent;
using internal::Prepare;
using internal::Prepared;
using internal::RunLess;

const Comparison* FindComparison(const SweepAnalysis& sweep, const Prepared& arm,
                                 absl::string_view metric, absl::string_view test) {
  for (const Comparison& c : sweep.comparisons) {
    if (c.arm_job_key == arm.result->job_key && c.eval_set == arm.result->eval_set &&
        c.metric == metric && c.test == test) {
      return &c;
    }
  }
  return nullptr;
}

std::string PWithHolm(const Comparison* c) {
  if (c == nullptr) return "-";
  return absl::StrCat(FormatP(c->p_value), " (", FormatP(c->adjusted_p), ")");
}

std::string RunLabel(const Prepared& p) {
  if (p.result->variant != "base") {
    return p.has_seed ? absl::StrCat(p.arm, " seed=", p.seed) : p.arm;
  }
  std::string label = p.has_seed ? absl::StrCat("base seed=", p.seed) : "base";
  // A base model evaluated inside a training job carries that job's arm parameters: say which
  // arm's job it came from so that several base rows can be told apart.
  if (p.arm != "adapted") absl::StrAppend(&label, " (in ", p.arm, ")");
  return label;
}

std::string ProportionWithCi(int64_t x, int64_t n, double confidence) {
  auto wilson = stats::WilsonInterval(x, n, confidence);
  if (!wilson.ok()) return "-";
  return absl::StrFormat("%.1f%% [%.1f, %.1f]", 100 * wilson->statistic, 100 * wilson->ci_low,
                         100 * wilson->ci_high);
}

std::string MarginWithCi(const std::vector<double>& diffs, double confidence) {
  auto t = stats::MeanTInterval(diffs, confidence);
  if (!t.ok()) return absl::StrFormat("%.2f", stats::Mean(diffs));
  return absl::StrFormat("%.2f [%.2f, %.2f]", t->statistic, t->ci_low, t->ci_high);
}

// "mean +/- sd [lo, hi]" over seeds (scaled), or the single value.
std::string MeanSdCi(const std::vector<double>& values, double scale, int decimals,
                     double confidence) {
  auto format = [decimals](double v) { return absl::StrFormat("%.*f", decimals, v); };
  std::vector<double> scaled;
  for (double v : values) scaled.push_back(v * scale);
  if (scaled.size() < 2) return format(scaled.empty() ? kNaN : scaled[0]);
  const double sd = stats::SampleStdDev(scaled);
  auto t = stats::MeanTInterval(scaled, confidence);
  std::string out = absl::StrCat(format(stats::Mean(scaled)), " +/- ", format(sd));
  if (t.ok()) {
    absl::StrAppend(&out, " [", format(t->ci_low), ", ", format(t->ci_high), "]");
  }
  return out;
}

// The main table without rows; `ci` labels the confidence level.
absl::StatusOr<table::Table> CreateMainTable(const std::string& ci) {
  using table::Align;
  return table::Table::Create("Main results: each arm vs its base model",
                              {{"Eval set", Align::kLeft},
                               {"Model", Align::kLeft},
                               {absl::StrCat("Flip rate [", ci, " CI]"), Align::kRight},
                               {"Flip change (pp)", Align::kRight},
                               {"p z (Holm)", Align::kRight},
                               {"p McNemar (Holm)", Align::kRight},
                               {absl::StrCat("Margin diff [", ci, " CI]"), Align::kRight},
                               {"Reduction", Align::kRight},
                               {"p Wilcoxon (Holm)", Align::kRight},
                               {absl::StrCat("Accuracy [", ci, " CI]"), Align::kRight},
                               {"Acc change (pp)", Align::kRight},
                               {"p acc z (Holm)", Align::kRight},
                               {"p acc McNemar (Holm)", Align::kRight},
                               {"n pairs", Align::kRight},
                               {"Majority class", Align::kRight}});
}

// The cells every main-table row has: flip rate, margin difference, accuracy (with CIs),
// pairs and majority class.
std::vector<std::string> MainCommonCells(const Prepared& p, const AnalysisOptions& options) {
  const ConsistencyMetrics& m = p.metrics;
  return std::vector<std::string>{
      ProportionWithCi(m.flipped_pairs, m.pairs, options.confidence),
      MarginWithCi(p.margin_diffs, options.confidence),
      ProportionWithCi(m.correct_originals, m.questions, options.confidence), absl::StrCat(m.pairs),
      absl::StrCat(Percent(m.majority_class_rate), m.collapsed ? " COLLAPSED" : "")};
}

// The baselines that the `adapted` runs on `eval_set` were compared with, sorted.
std::vector<const Prepared*> BaselinesOn(const Analysis& analysis,
                                         const std::vector<const Prepared*>& adapted,
                                         const std::string& eval_set) {
  std::vector<const Prepared*> baselines;
  for (const Prepared* a : adapted) {
    const Prepared* b = analysis.baseline_of.at(a);
    if (a->result->eval_set == eval_set &&
        std::find(baselines.begin(), baselines.end(), b) == baselines.end()) {
      baselines.push_back(b);
    }
  }
  std::sort(baselines.begin(), baselines.end(), RunLess);
  return baselines;
}

// The main-table row of adapted run `a`: its cells, changes and p-values against its baseline.
absl::Status AddComparedRow(const Analysis& analysis, const Prepared& a,
                            const std::string& eval_set, const AnalysisOptions& options,
                            table::Table* out) {
  auto c = MainCommonCells(a, options);
  const Comparison* flip_z = FindComparison(analysis.sweep, a, "flip_rate", "z_test");
  const Comparison* margin = FindComparison(analysis.sweep, a, "margin_diff", "wilcoxon");
  const Comparison* acc_z = FindComparison(analysis.sweep, a, "accuracy", "z_test");
  const std::string reduction = margin == nullptr || std::isnan(margin->relative_change)
                                    ? "-"
                                    : Percent(-margin->relative_change);
  return out->AddRow(
      {eval_set, RunLabel(a), c[0], absl::StrFormat("%+.1f", 100 * flip_z->change),
       PWithHolm(flip_z),
       PWithHolm(FindComparison(analysis.sweep, a, "flip_rate", "mcnemar_exact")), c[1], reduction,
       PWithHolm(margin), c[2], absl::StrFormat("%+.1f", 100 * acc_z->change), PWithHolm(acc_z),
       PWithHolm(FindComparison(analysis.sweep, a, "accuracy", "mcnemar_exact")), c[3], c[4]});
}

// The main table's notes: what its columns mean, then the analysis warnings.
void AddMainTableNotes(const Analysis& analysis, const AnalysisOptions& options,
                       const std::string& ci, table::Table* out) {
  out->AddNote(absl::StrCat(
      "Flip rate: pairs whose yes/no prediction differs between original and paraphrase; "
      "Wilson ",
      ci,
      " CIs. Margin diff: mean |m_q - m_p| in logits, t-interval over pairs; reduction vs "
      "base. Accuracy: originals."));
  out->AddNote(
      "p z: pooled two-proportion z-test vs base (unpaired, as the paper); McNemar: exact, "
      "paired by pair/question; Wilcoxon: signed-rank on paired |dm| changes. Holm-adjusted "
      "across arms in parentheses.");
  out->AddNote(absl::StrFormat(
      "Majority class: share of prompts given the more frequent answer; COLLAPSED: one answer "
      "for >= %.0f%% of prompts although the labels are not that lopsided.",
      100 * options.collapse_threshold));
  for (const std::string& w : analysis.sweep.warnings) out->AddNote("Warning: " + w);
}

}  // namespace

std::string FormatP(double p) {
  if (std::isnan(p)) return "-";
  if (p < 0.001) return "<0.001";
  if (p < 0.01) return absl::StrFormat("%.4f", p);
  return absl::StrFormat("%.3f", p);
}

absl::StatusOr<table::Table> MainTable(absl::Span<const EvalResult> results,
                                       const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(Analysis analysis, internal::Analyze(results, options));
  const std::string ci = ConfidenceLabel(options.confidence);
  PCSWEEP_ASSIGN_OR_RETURN(table::Table out, CreateMainTable(ci));
  std::vector<const Prepared*> adapted;
  for (const auto& [arm, base] : analysis.baseline_of) adapted.push_back(arm);
  std::sort(adapted.begin(), adapted.end(), RunLess);
  for (const std::string& eval_set : EvalSets(analysis.prepared)) {
    // Each baseline row is followed by the runs compared with it.
    for (const Prepared* b : BaselinesOn(analysis, adapted, eval_set)) {
      auto c = MainCommonCells(*b, options);
      PCSWEEP_RETURN_IF_ERROR(out.AddRow({eval_set, RunLabel(*b), c[0], "-", "-", "-", c[1], "-",
                                          "-", c[2], "-", "-", "-", c[3], c[4]}));
      for (const Prepared* a : adapted) {
        if (a->result->eval_set != eval_set || analysis.baseline_of.at(a) != b) continue;
        PCSWEEP_RETURN_IF_ERROR(AddComparedRow(analysis, *a, eval_set, options, &out));
      }
    }
  }
  AddMainTableNotes(analysis, options, ci, &out);
  return out;
}

absl::StatusOr<table::Table> AblationTable(absl::Span<const EvalResult> results,
                                           const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Prepared> prepared, Prepare(results, options));
  std::set<std::string> keys;
  for (const Prepared& p : prepared) {
    if (p.result->variant != "adapted") continue;
    for (const auto& [key, value] : p.result->arm_params) {
      if (key != options.seed_key) keys.insert(key);
    }
  }
  using table::Align;
  const std::string ci = ConfidenceLabel(options.confidence);
  std::vector<table::Column> columns = {{"Eval set", Align::kLeft}};
  // Without arm parameters a "Model" column tells the base model from the adapted one.
  if (keys.empty()) keys.insert("Model");
  for (const std::string& key : keys) columns.push_back({key, Align::kLeft});
  columns.push_back({"Seeds", Align::kRight});
  columns.push_back({absl::StrCat("Flip rate % (mean +/- sd [", ci, " t-CI])"), Align::kRight});
  columns.push_back({absl::StrCat("Margin diff (mean +/- sd [", ci, " t-CI])"), Align::kRight});
  columns.push_back({absl::StrCat("Accuracy % (mean +/- sd [", ci, " t-CI])"), Align::kRight});
  columns.push_back({"Collapsed", Align::kRight});
  PCSWEEP_ASSIGN_OR_RETURN(
      table::Table out,
      table::Table::Create("Ablation: arms over seeds (layers x loss x ...)", std::move(columns)));
  for (const std::string& eval_set : EvalSets(prepared)) {
    // Arm name -> runs; the base model first under the name "".
    std::map<std::string, std::vector<const Prepared*>> groups;
    for (const Prepared& p : prepared) {
      if (p.result->eval_set != eval_set) continue;
      groups[p.result->variant == "base" ? "" : p.arm].push_back(&p);
    }
    for (const auto& [arm, runs] : groups) {
      std::vector<double> flips, margins, accuracy;
      int collapsed = 0;
      for (const Prepared* p : runs) {
        flips.push_back(p->metrics.flip_rate);
        margins.push_back(p->metrics.mean_margin_diff);
        accuracy.push_back(p->metrics.accuracy_original);
        collapsed += p->metrics.collapsed;
      }
      std::vector<std::string> row = {eval_set};
      for (const std::string& key : keys) {
        if (arm.empty()) {
          row.push_back(key == *keys.begin() ? "base" : "-");
          continue;
        }
        const auto& params = runs.front()->result->arm_params;
        auto it = params.find(key);
        row.push_back(it != params.end() ? it->second : key == "Model" ? arm : "-");
      }
      row.push_back(absl::StrCat(runs.size()));
      row.push_back(MeanSdCi(flips, 100, 1, options.confidence));
      row.push_back(MeanSdCi(margins, 1, 2, options.confidence));
      row.push_back(MeanSdCi(accuracy, 100, 1, options.confidence));
      row.push_back(absl::StrCat(collapsed, "/", runs.size()));
      PCSWEEP_RETURN_IF_ERROR(out.AddRow(std::move(row)));
    }
  }
  out.AddNote(
      "Mean +/- sample sd over seeds; the interval is the Student-t CI of the mean (shown "
      "with >= 2 seeds). Base rows pool the base model's evaluations.");
  return out;
}

absl::StatusOr<table::Table> PhenomenaTable(absl::Span<const EvalResult> results,
                                            const AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Prepared> prepared, Prepare(results, options));
  std::set<std::string> arms;
  for (const Prepared& p : prepared) {
    if (p.result->variant == "adapted") arms.insert(p.arm);
  }
  using table::Align;
  std::vector<table::Column> columns = {
      {"Eval set", Align::kLeft}, {"Phenomenon", Align::kLeft}, {"base", Align::kRight}};
  for (const std::string& arm : arms) {
    columns.push_back({arm == "base" ? "arm base" : arm, Align::kRight});
  }
  PCSWEEP_ASSIGN_OR_RETURN(
      table::Table out,
      table::Table::Create("Flip rate by paraphrase phenomenon", std::move(columns)));
  for (const std::string& eval_set : EvalSets(prepared)) {
    // phenomenon -> column ("" = base) -> (flips, pairs), pooled over seeds.
    std::map<std::string, std::map<std::string, std::pair<int64_t, int64_t>>> counts;
    for (const Prepared& p : prepared) {
      if (p.result->eval_set != eval_set) continue;
      const std::string column = p.result->variant == "base" ? "" : p.arm;
      for (const auto& [phenomenon, fn] : p.by_phenomenon) {
        auto& cell = counts[phenomenon][column];
        cell.first += fn.first;
        cell.second += fn.second;
      }
    }
    for (const auto& [phenomenon, by_column] : counts) {
      std::vector<std::string> row = {eval_set, phenomenon.empty() ? "(untagged)" : phenomenon};
      const auto& columns_of_row = by_column;  // a structured binding cannot be captured in C++17
      auto cell = [&columns_of_row](const std::string& column) -> std::string {
        auto it = columns_of_row.find(column);
        if (it == columns_of_row.end() || it->second.second == 0) return "-";
        return absl::StrFormat("%d/%d (%s)", it->second.first, it->second.second,
                               Percent(static_cast<double>(it->second.first) / it->second.second));
      };
      row.push_back(cell(""));
      for (const std::string& arm : arms) row.push_back(cell(arm));
      PCSWEEP_RETURN_IF_ERROR(out.AddRow(std::move(row)));
    }
  }
  out.AddNote("Flipped pairs / pairs per phenomenon, pooled over seeds and base evaluations.");
  return out;
}

}  // namespace pcsweep::analysis
