// Command-line entry points of the data library, added as subcommands of a CLI11 app
// (pcsweep-run wires them in):
//   synth --out DIR --seed N [--image-size N] [--pretrain N] [--train N] [--eval-mimic N]
//         [--eval-balanced N] [--wording-bias P] [--ambiguous-fraction P] ...
//       writes the synthetic benchmark (synth.h) and prints a per-split summary;
//   inspect FILE [--format jsonl|mimic|flipbank|hf] [--yesno-filter is_yesno|is_yesno_claude]
//       [--image-root DIR] [--no-image-check]
//       loads a data file with skip_bad and prints questions, answers and pairs per
//       phenomenon, the number of bad records and the first reasons; exits 1 when a record
//       was bad.
// Errors are printed as one line on stderr and end the command with exit code 1 (through
// CLI::RuntimeError, which CLI11_PARSE / app.exit turn into the exit code).
#ifndef PCSWEEP_EXPERIMENTS_DATA_DATA_COMMANDS_H_
#define PCSWEEP_EXPERIMENTS_DATA_DATA_COMMANDS_H_

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "experiments/data/loaders.h"

namespace pcsweep::data {

void AddDataCommands(CLI::App& app);

// The `inspect` report for a loaded dataset (exposed for tests).
void PrintInspectReport(const std::string& path, const Dataset& dataset, std::ostream& out);

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_DATA_COMMANDS_H_
