// Grid expansion: a stage's `grid`, `exclude` and `include` keys turned into its cells, each
// cell one job of the stage. Cells are the cartesian product of the axes, first key outermost
// and values in file order, minus the cells the `exclude` entries match (partial cells, each
// must match at least one), plus the `include` cells (full cells) appended after. Internal to
// the spec library.
//
// Thread-safety: pure functions (the Errors object is the caller's, one parse per thread).
#ifndef PCSWEEP_COMMON_SPEC_GRID_H_
#define PCSWEEP_COMMON_SPEC_GRID_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/spec/yaml_scalar.h"
#include "nlohmann/json.hpp"

namespace pcsweep::spec_internal {

// One grid cell: grid key -> its typed value (a scalar or a map).
using Cell = std::map<std::string, nlohmann::json>;

struct Grid {
  std::vector<std::string> keys;  // file order; empty without a grid
  // Without a grid: one empty cell.
  std::vector<Cell> cells;
};

// Expands the grid of the stage whose map is `stage_entries`, at YAML path `stage_where`;
// `after` is the stage's after list (grid keys may not share a name with one).
// Possible errors: InvalidArgument for include/exclude without a grid, a grid that is not a
// map or is empty, a key that is not an identifier or names an after stage, an axis that is
// not a non-empty list, a grid value that is a list, null or holds a control character, a
// duplicate value in an axis, more than kMaxJobs cells, an include or exclude that is not a
// list of maps of grid keys, an include cell missing grid keys or duplicating a cell, an
// exclude entry matching no cell, an exclude dropping every cell; DeadlineExceeded once
// `errors`' deadline has passed.
absl::StatusOr<Grid> ExpandGrid(const std::vector<MapEntry>& stage_entries,
                                absl::string_view stage_where,
                                const std::vector<std::string>& after, const Errors& errors);

}  // namespace pcsweep::spec_internal

#endif  // PCSWEEP_COMMON_SPEC_GRID_H_
