// `pcsweep stats ...`: quick statistical checks from the command line, the same functions the
// result tables use (common/stats):
//   stats z-test   --x1 23 --n1 158 --x2 7 --n2 158 [--continuity] [--alternative A]
//   stats mcnemar  --b B --c C [--exact | --chi2] [--no-correction] [--n PAIRS]
//   stats wilcoxon --pairs FILE [--alternative A] [--method auto|exact|approx]
//                  [--no-correction] [--seed S]
//   stats t-test   --values FILE [--mu 0.95] [--alternative greater] [--values2 FILE2 (Welch)]
// each with [--confidence 0.95] [--format text|json]; output: test, statistic, p-value, CI, n.
// Files hold numbers separated by whitespace or commas; '#' starts a comment; a first line
// that is not numeric is taken as a header. `--pairs` needs exactly two columns (x y; the test
// is on x - y).
//
// Thread-safety: RunStatsCommand uses only its arguments.
#ifndef PCSWEEP_TOOLS_CLI_STATS_COMMAND_H_
#define PCSWEEP_TOOLS_CLI_STATS_COMMAND_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace pcsweep::cli {

// Adds the `stats` subcommand tree to `app`. Each leaf runs in its CLI11 callback: it prints
// the result on stdout, or one error line on stderr and then throws CLI::RuntimeError(1) so
// that the caller's `app.exit(e)` returns exit code 1.
void AddStatsCommand(CLI::App& app);

// Runs `stats` with `args` (the words after "stats", e.g. {"z-test", "--x1", "23", ...}) and
// returns what it would print.
// Possible errors: InvalidArgument for bad flags (CLI11's message) or invalid statistics input
// (e.g. x > n), with "FILE:LINE: ..." for a malformed number in a file; NotFound for an
// unreadable file.
absl::StatusOr<std::string> RunStatsCommand(const std::vector<std::string>& args);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_STATS_COMMAND_H_
