#include "tools/cli/stats_command.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/stats/stats.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::cli {
namespace {

struct StatsFlags {
  std::string format = "text";
  double confidence = 0.95;
  std::string alternative = "two-sided";
  // z-test
  int64_t x1 = 0, n1 = 0, x2 = 0, n2 = 0;
  bool continuity = false;
  // mcnemar
  int64_t b = 0, c = 0, n_pairs = 0;
  bool exact = false, chi2 = false, no_correction = false;
  // wilcoxon
  std::string pairs_file;
  std::string method = "auto";
  uint64_t seed = 0;
  // t-test
  std::string values_file, values2_file;
  double mu = 0;
};

// What one leaf computed, ready to print.
struct Report {
  stats::TestResult result;
  std::string ci_of;  // what the CI is an interval of
  double confidence = 0.95;
};

// Numbers separated by whitespace or commas; '#' comments; a non-numeric first line is a
// header. Returns the rows (each a list of numbers).
absl::StatusOr<std::vector<std::vector<double>>> ReadNumbers(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<std::vector<double>> rows;
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t,\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    std::vector<double> row;
    for (const std::string& field : fields) {
      double value;
      if (!absl::SimpleAtod(field, &value) || !std::isfinite(value)) {
        if (line_number == 1) break;  // header
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line_number, ": '", field, "' is not a finite number"));
      }
      row.push_back(value);
    }
    if (row.size() == fields.size()) rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<std::vector<double>> ReadValues(const std::string& path) {
  PCSWEEP_ASSIGN_OR_RETURN(auto rows, ReadNumbers(path));
  std::vector<double> values;
  for (const auto& row : rows) values.insert(values.end(), row.begin(), row.end());
  return values;
}

std::string Render(const Report& report, const std::string& format) {
  const stats::TestResult& r = report.result;
  if (format == "json") {
    nlohmann::ordered_json j;
    j["test"] = r.method;
    auto number = [](double v) -> nlohmann::ordered_json {
      return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
    };
    j["statistic"] = number(r.statistic);
    j["p_value"] = number(r.p_value);
    // null bounds: unbounded (one-sided interval) or not available.
    j["ci_low"] = number(r.ci_low);
    j["ci_high"] = number(r.ci_high);
    j["ci_of"] = report.ci_of;
    j["confidence"] = report.confidence;
    j["n"] = r.n;
    return j.dump(2) + "\n";
  }
  std::string ci = "-";
  if (!std::isnan(r.ci_low) || !std::isnan(r.ci_high)) {
    ci = absl::StrFormat("[%.6g, %.6g]", r.ci_low, r.ci_high);
    if (!report.ci_of.empty()) absl::StrAppend(&ci, "  (", report.ci_of, ")");
  }
  return absl::StrFormat(
      "test:       %s\nstatistic:  %.6g\np-value:    %.6g\n%-11s %s\nn:          %d\n", r.method,
      r.statistic, r.p_value, absl::StrFormat("%g%% CI:", 100 * report.confidence), ci, r.n);
}

absl::StatusOr<Report> ZTest(const StatsFlags& f) {
  stats::ZTestOptions options;
  PCSWEEP_ASSIGN_OR_RETURN(options.alternative, stats::ParseAlternative(f.alternative));
  options.continuity = f.continuity;
  options.confidence = f.confidence;
  PCSWEEP_ASSIGN_OR_RETURN(auto r, stats::TwoProportionZTest(f.x1, f.n1, f.x2, f.n2, options));
  return Report{r, "p1 - p2, Wald", f.confidence};
}

absl::StatusOr<Report> McNemar(const StatsFlags& f) {
  if (f.exact && f.chi2) return absl::InvalidArgumentError("--exact and --chi2 exclude each other");
  stats::McNemarOptions options;
  options.method = f.chi2 ? stats::McNemarMethod::kChiSquare : stats::McNemarMethod::kExact;
  options.continuity = !f.no_correction;
  options.n_pairs = f.n_pairs;
  options.confidence = f.confidence;
  PCSWEEP_ASSIGN_OR_RETURN(auto r, stats::McNemarTest(f.b, f.c, options));
  return Report{r, f.n_pairs > 0 ? "(b - c) / n, paired Wald" : "", f.confidence};
}

absl::StatusOr<Report> Wilcoxon(const StatsFlags& f) {
  PCSWEEP_ASSIGN_OR_RETURN(auto rows, ReadNumbers(f.pairs_file));
  std::vector<double> x, y;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(f.pairs_file, ": data row ", i + 1, " has ",
                                                     rows[i].size(), " columns, expected 2"));
    }
    x.push_back(rows[i][0]);
    y.push_back(rows[i][1]);
  }
  stats::WilcoxonOptions options;
  PCSWEEP_ASSIGN_OR_RETURN(options.alternative, stats::ParseAlternative(f.alternative));
  if (f.method == "auto") {
    options.method = stats::WilcoxonMethod::kAuto;
  } else if (f.method == "exact") {
    options.method = stats::WilcoxonMethod::kExact;
  } else if (f.method == "approx") {
    options.method = stats::WilcoxonMethod::kApprox;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--method must be auto, exact or approx, got '", f.method, "'"));
  }
  options.continuity = !f.no_correction;
  auto r = stats::WilcoxonSignedRank(x, y, options);
  if (!r.ok()) return Annotate(r.status(), f.pairs_file);
  stats::BootstrapOptions boot;
  boot.seed = f.seed;
  boot.confidence = f.confidence;
  PCSWEEP_ASSIGN_OR_RETURN(auto ci,
                           stats::PairedBootstrap(
                               x, y,
                               [](const std::vector<double>& a, const std::vector<double>& b) {
                                 double s = 0;
                                 for (size_t i = 0; i < a.size(); ++i) s += a[i] - b[i];
                                 return s / static_cast<double>(a.size());
                               },
                               boot));
  r->ci_low = ci.ci_low;
  r->ci_high = ci.ci_high;
  return Report{*r, absl::StrCat("mean x - y, percentile bootstrap, seed ", f.seed), f.confidence};
}

absl::StatusOr<Report> TTest(const StatsFlags& f) {
  PCSWEEP_ASSIGN_OR_RETURN(auto values, ReadValues(f.values_file));
  PCSWEEP_ASSIGN_OR_RETURN(auto alternative, stats::ParseAlternative(f.alternative));
  if (!f.values2_file.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(auto values2, ReadValues(f.values2_file));
    auto r = stats::WelchTTest(values, values2, alternative, f.confidence);
    if (!r.ok()) return Annotate(r.status(), f.values_file + " vs " + f.values2_file);
    return Report{*r, "mean1 - mean2", f.confidence};
  }
  auto r = stats::OneSampleTTest(values, f.mu, alternative, f.confidence);
  if (!r.ok()) return Annotate(r.status(), f.values_file);
  return Report{*r, "mean", f.confidence};
}

using Runner = std::function<absl::StatusOr<Report>(const StatsFlags&)>;
using Sink = std::function<void(absl::StatusOr<std::string>)>;

void AddCommon(CLI::App* sub, StatsFlags* f) {
  sub->add_option("--format", f->format, "Output: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub->add_option("--confidence", f->confidence, "Confidence level of the interval")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
}

void AddAlternative(CLI::App* sub, StatsFlags* f) {
  sub->add_option("--alternative", f->alternative, "two-sided, less or greater")
      ->check(CLI::IsMember({"two-sided", "less", "greater"}))
      ->capture_default_str();
}

// Builds the leaves under `stats`; each leaf's callback computes and hands the text to `sink`.
void Configure(CLI::App* stats, std::shared_ptr<StatsFlags> f, Sink sink) {
  stats->require_subcommand(1);
  auto leaf = [&](const char* name, const char* description, Runner run) {
    CLI::App* sub = stats->add_subcommand(name, description);
    AddCommon(sub, f.get());
    sub->callback([f, run, sink] {
      absl::StatusOr<Report> report = run(*f);
      if (!report.ok()) {
        sink(report.status());
        return;
      }
      sink(Render(*report, f->format));
    });
    return sub;
  };
  CLI::App* z = leaf("z-test", "Pooled two-proportion z-test of x1/n1 vs x2/n2", ZTest);
  z->add_option("--x1", f->x1, "Successes in group 1")->required();
  z->add_option("--n1", f->n1, "Size of group 1")->required();
  z->add_option("--x2", f->x2, "Successes in group 2")->required();
  z->add_option("--n2", f->n2, "Size of group 2")->required();
  z->add_flag("--continuity", f->continuity, "Apply the continuity correction");
  AddAlternative(z, f.get());

  CLI::App* m = leaf("mcnemar", "McNemar's test from the discordant counts b and c", McNemar);
  m->add_option("--b", f->b, "Pairs positive only in the first condition")->required();
  m->add_option("--c", f->c, "Pairs positive only in the second condition")->required();
  m->add_flag("--exact", f->exact, "Exact binomial form (default)");
  m->add_flag("--chi2", f->chi2, "Chi-square form");
  m->add_flag("--no-correction", f->no_correction, "Chi-square form without correction");
  m->add_option("--n", f->n_pairs, "Total pairs, for a CI of (b - c) / n");

  CLI::App* w = leaf("wilcoxon", "Wilcoxon signed-rank test on paired values (x - y)", Wilcoxon);
  w->add_option("--pairs", f->pairs_file, "File with two columns x y")->required();
  w->add_option("--method", f->method, "auto, exact or approx")->capture_default_str();
  w->add_flag("--no-correction", f->no_correction, "No continuity correction (approx)");
  w->add_option("--seed", f->seed, "Bootstrap seed of the CI")->capture_default_str();
  AddAlternative(w, f.get());

  CLI::App* t =
      leaf("t-test", "One-sample t-test against --mu, or Welch's test with --values2", TTest);
  t->add_option("--values", f->values_file, "File of numbers")->required();
  t->add_option("--values2", f->values2_file, "Second sample: Welch's t-test");
  t->add_option("--mu", f->mu, "Hypothesised mean (one-sample)")->capture_default_str();
  AddAlternative(t, f.get());
}

}  // namespace

void AddStatsCommand(CLI::App& app) {
  CLI::App* stats = app.add_subcommand("stats", "Statistical tests for quick checks");
  Configure(stats, std::make_shared<StatsFlags>(), [](absl::StatusOr<std::string> out) {
    if (!out.ok()) {
      std::cerr << out.status().message() << std::endl;
      throw CLI::RuntimeError(1);
    }
    std::cout << *out;
  });
}

absl::StatusOr<std::string> RunStatsCommand(const std::vector<std::string>& args) {
  CLI::App app("pcsweep stats");
  absl::StatusOr<std::string> output = absl::InvalidArgumentError("no stats subcommand ran");
  Configure(&app, std::make_shared<StatsFlags>(),
            [&output](absl::StatusOr<std::string> out) { output = std::move(out); });
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(absl::StrCat("stats: ", e.what()));
  }
  return output;
}

}  // namespace pcsweep::cli
