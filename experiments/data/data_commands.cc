#include "experiments/data/data_commands.h"

#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_format.h"
#include "experiments/data/synth.h"

namespace pcsweep::data {
namespace {

[[noreturn]] void Fail(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  throw CLI::RuntimeError(1);
}

struct InspectArgs {
  std::string file;
  std::string format;
  std::string image_root;
  std::string yesno_filter;
  bool no_image_check = false;
};

void RunInspect(const InspectArgs& args) {
  absl::StatusOr<Format> format =
      args.format.empty() ? GuessFormat(args.file) : ParseFormat(args.format);
  if (!format.ok()) Fail(format.status());
  LoadOptions options;
  options.image_root = args.image_root;
  options.check_images = !args.no_image_check;
  options.skip_bad = true;
  absl::StatusOr<YesNoFilter> filter = ParseYesNoFilter(args.yesno_filter);
  if (!filter.ok()) Fail(filter.status());
  options.yesno_filter = *filter;
  absl::StatusOr<Dataset> dataset = LoadDataset(args.file, *format, options);
  if (!dataset.ok()) Fail(dataset.status());
  PrintInspectReport(args.file, *dataset, std::cout);
  if (dataset->report.skipped > 0) throw CLI::RuntimeError(1);
}

}  // namespace

void PrintInspectReport(const std::string& path, const Dataset& dataset, std::ostream& out) {
  size_t yes = 0, no = 0, other = 0;
  std::set<std::string> groups;
  struct Row {
    size_t pairs = 0, yes = 0, no = 0, inverting = 0;
  };
  std::map<std::string, Row> by_phenomenon;
  std::map<std::string, std::pair<size_t, size_t>> by_finding;
  for (const Question& q : dataset.questions) {
    groups.insert(q.group_key());
    if (q.answer == Answer::kYes) ++yes;
    if (q.answer == Answer::kNo) ++no;
    if (q.answer == Answer::kOther) ++other;
    if (!q.finding.empty() && q.is_yes_no()) {
      auto& f = by_finding[q.finding];
      (q.answer == Answer::kYes ? f.first : f.second)++;
    }
    for (const Paraphrase& p : q.paraphrases) {
      Row& row = by_phenomenon[p.phenomenon];
      ++row.pairs;
      if (q.answer == Answer::kYes) ++row.yes;
      if (q.answer == Answer::kNo) ++row.no;
      if (!p.op_match) ++row.inverting;
    }
  }
  out << absl::StrFormat(
      "%s: %d records, %d questions (yes %d, no %d, other %d), %d patients/images\n", path,
      dataset.report.records, dataset.questions.size(), yes, no, other, groups.size());
  out << absl::StrFormat("%-26s %7s %7s %7s %15s\n", "phenomenon", "pairs", "yes", "no",
                         "op_match=false");
  for (const auto& [phenomenon, row] : by_phenomenon) {
    out << absl::StrFormat("%-26s %7d %7d %7d %15d\n", phenomenon, row.pairs, row.yes, row.no,
                           row.inverting);
  }
  if (!by_finding.empty()) {
    out << absl::StrFormat("%-26s %7s %7s\n", "finding", "yes", "no");
    for (const auto& [finding, counts] : by_finding) {
      out << absl::StrFormat("%-26s %7d %7d\n", finding, counts.first, counts.second);
    }
  }
  if (dataset.report.inferred_op_match > 0) {
    out << absl::StrFormat("op_match inferred for %d paraphrases\n",
                           dataset.report.inferred_op_match);
  }
  if (dataset.report.filtered_questions + dataset.report.filtered_paraphrases > 0) {
    out << absl::StrFormat("not yes/no (filtered out): %d questions, %d paraphrases\n",
                           dataset.report.filtered_questions, dataset.report.filtered_paraphrases);
  }
  out << absl::StrFormat("bad records skipped: %d\n", dataset.report.skipped);
  for (const std::string& reason : dataset.report.first_reasons) out << "  " << reason << "\n";
}

void AddDataCommands(CLI::App& app) {
  auto synth_options = std::make_shared<SynthOptions>();
  auto synth_out = std::make_shared<std::string>();
  CLI::App* synth = app.add_subcommand("synth", "Write the synthetic chest X-ray VQA benchmark");
  synth->add_option("--out", *synth_out, "Output folder")->required();
  synth->add_option("--seed", synth_options->seed, "Random seed (same seed, same bytes)");
  synth->add_option("--image-size", synth_options->image_size, "Image side in pixels");
  synth->add_option("--pretrain", synth_options->pretrain_questions, "Pretraining questions");
  synth->add_option("--train", synth_options->train_questions, "LoRA training questions");
  synth->add_option("--eval-mimic", synth_options->eval_mimic_questions,
                    "MIMIC-like evaluation questions");
  synth->add_option("--eval-balanced", synth_options->eval_balanced_questions,
                    "Balanced evaluation questions (a multiple of 10 balances exactly)");
  synth->add_option("--questions-per-image", synth_options->questions_per_image,
                    "Questions per image (1-5)");
  synth->add_option("--wording-bias", synth_options->pretrain_aligned,
                    "Pretrain: P(register aligned with the answer)");
  synth->add_option("--neutral-wording", synth_options->pretrain_neutral,
                    "Pretrain: P(neutral register)");
  synth->add_flag("--bias-ambiguous-only", synth_options->pretrain_bias_ambiguous_only,
                  "Pretrain: bias the wording only where the image is ambiguous");
  synth->add_flag("--conspicuous-findings", synth_options->conspicuous_findings,
                  "Nodules and consolidations larger and in fixed lung zones");
  synth->add_option("--ambiguous-fraction", synth_options->ambiguous_fraction,
                    "Share of present findings drawn nearly invisible");
  synth->add_option("--mimic-fraction", synth_options->mimic_fraction,
                    "Share of absent findings drawn as faint look-alikes");
  synth->add_option("--clear-subtlety-max", synth_options->clear_subtlety_max,
                    "Subtlety upper bound of clear findings");
  synth->add_option("--ambiguous-subtlety-min", synth_options->ambiguous_subtlety_min,
                    "Subtlety lower bound of ambiguous findings");
  synth->add_option("--inverting-negations", synth_options->inverting_negation_fraction,
                    "Share of negation paraphrases that invert the answer");
  synth->add_option("--open-fraction", synth_options->eval_mimic_open_fraction,
                    "Share of non-yes/no questions in eval_mimic");
  synth->callback([synth_options, synth_out]() {
    absl::StatusOr<SynthSummary> summary = GenerateSyntheticBenchmark(*synth_options, *synth_out);
    if (!summary.ok()) Fail(summary.status());
    for (const char* split : kSplits) {
      const SplitSummary& s = summary->splits.at(split);
      std::cout << absl::StrFormat(
          "%-14s %6d questions (yes %d, no %d, other %d) %6d images %6d patients, "
          "%d answer-inverting paraphrases\n",
          split, s.questions, s.yes, s.no, s.other, s.images, s.patients, s.inverting_paraphrases);
    }
    std::cout << "wrote " << *synth_out << "\n";
  });

  auto inspect_args = std::make_shared<InspectArgs>();
  CLI::App* inspect =
      app.add_subcommand("inspect", "Load a PSF-Med data file and print its counts and errors");
  inspect->add_option("file", inspect_args->file, "Data file")->required();
  inspect->add_option("--format", inspect_args->format, "jsonl, mimic, flipbank or hf")
      ->check(CLI::IsMember({"jsonl", "mimic", "flipbank", "hf"}));
  inspect
      ->add_option("--yesno-filter", inspect_args->yesno_filter,
                   "hf format: keep only records whose is_yesno or is_yesno_claude is true")
      ->check(CLI::IsMember({"none", "is_yesno", "is_yesno_claude"}));
  inspect->add_option("--image-root", inspect_args->image_root,
                      "Folder relative image paths are resolved against (default: the file's)");
  inspect->add_flag("--no-image-check", inspect_args->no_image_check,
                    "Do not require the image files to exist");
  inspect->callback([inspect_args]() { RunInspect(*inspect_args); });
}

}  // namespace pcsweep::data
