// `pcsweep plot SWEEP --out FILE.svg [--db FILE] [--x KEY] [--eval-set NAME]`: the sweep's
// figure (flip rate and mean margin difference by layer range and loss, error bars, base
// model as a dashed line; common/analysis ResultsPlotSvg) from the per-example rows, rendered
// here from the database file (read-only) or by the coordinator (GetResults): same SVG bytes.
//
// Thread-safety: each call uses only its arguments.
#ifndef PCSWEEP_TOOLS_CLI_PLOT_COMMAND_H_
#define PCSWEEP_TOOLS_CLI_PLOT_COMMAND_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "tools/cli/client.h"

namespace pcsweep::cli {

struct PlotRequest {
  std::string db_path;   // "" = ask the coordinator
  std::string sweep;     // id or name
  std::string out_path;  // the SVG file, replaced atomically
  std::string x_key = "layers";
  std::string eval_set;  // "" = the first in sorted order
};

// Writes the SVG and prints "plot: PATH" on `err`. `api` is used (and required) when
// `db_path` is empty.
// Possible errors: InvalidArgument (missing --out), NotFound (no file, sweep, rows, or no
// adapted result on the eval set), PermissionDenied naming the output path, the database
// errors of StoreReader, and the coordinator's (Unavailable, DeadlineExceeded).
absl::Status RunPlot(const PlotRequest& request, CoordinatorApi* api, std::ostream& err);

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_PLOT_COMMAND_H_
