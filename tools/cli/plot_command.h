// `pcsweep plot SWEEP --out FILE.svg --db FILE [--x KEY] [--eval-set NAME]`: the sweep's
// figure (flip rate and mean margin difference by layer range and loss, error bars, base
// model as a dashed line; common/analysis ResultsPlotSvg) from the database's per-example
// rows, read read-only.
//
// Thread-safety: each call uses only its arguments.
#ifndef PCSWEEP_TOOLS_CLI_PLOT_COMMAND_H_
#define PCSWEEP_TOOLS_CLI_PLOT_COMMAND_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace pcsweep::cli {

struct PlotRequest {
  std::string db_path;   // required
  std::string sweep;     // id or name
  std::string out_path;  // the SVG file, replaced atomically
  std::string x_key = "layers";
  std::string eval_set;  // "" = the first in sorted order
};

// Writes the SVG and prints "plot: PATH" on `err`.
// Possible errors: InvalidArgument (missing --db/--out), NotFound (no file, sweep, rows, or
// no adapted result on the eval set), PermissionDenied naming the output path, and the
// database errors of StoreReader.
absl::Status RunPlot(const PlotRequest& request, std::ostream& err);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_PLOT_COMMAND_H_
