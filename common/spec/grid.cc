#include "common/spec/grid.h"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/spec/shell_quote.h"
#include "common/spec/spec_limits.h"
#include "common/status/status_macros.h"

namespace pcsweep::spec_internal {
namespace {

using nlohmann::json;

// A grid value: a scalar or a map (lists and nulls are refused as likely mistakes).
// Grid values reach commands, file names and terminals: a control character (a newline, an
// escape sequence) in one, or in a map key of one, is refused where it is.
absl::Status RefuseControlCharacters(const YAML::Node& node, const Errors& errors,
                                     absl::string_view where) {
  if (node.IsScalar()) {
    const int c = FirstControlCharacter(node.Scalar());
    if (c < 0) return absl::OkStatus();
    return errors.At(node, absl::StrFormat("%s holds a control character (0x%02x); grid values "
                                           "must be printable text",
                                           Describe(where), c));
  }
  if (node.IsMap()) {
    for (const auto& pair : node) {
      PCSWEEP_RETURN_IF_ERROR(RefuseControlCharacters(pair.first, errors, where));
      PCSWEEP_RETURN_IF_ERROR(
          RefuseControlCharacters(pair.second, errors, Child(where, pair.first.Scalar())));
    }
  }
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      PCSWEEP_RETURN_IF_ERROR(RefuseControlCharacters(node[i], errors, Index(where, i)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ReadGridValue(const YAML::Node& node, const Errors& errors,
                                   absl::string_view where) {
  if (!node.IsScalar() && !node.IsMap()) {
    return errors.At(node, absl::StrCat(Describe(where), " must be a scalar or a map"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(json value, NodeToJson(node, errors, where));
  if (value.is_null()) {
    return errors.At(node, absl::StrCat(Describe(where), " is empty (null)"));
  }
  PCSWEEP_RETURN_IF_ERROR(RefuseControlCharacters(node, errors, where));
  return value;
}

// One line per cell: its values in grid-key order (canonical text, JSON-quoted so that no two
// cells share one).
std::string CellText(const Cell& cell, const std::vector<std::string>& keys) {
  json texts = json::array();
  for (const std::string& key : keys) {
    auto it = cell.find(key);
    texts.push_back(it == cell.end() ? json(nullptr) : json(CanonicalText(it->second)));
  }
  return texts.dump();
}

// Which cells of `product` the (partial) `excluded` cells drop: entries are grouped by the
// keys they name and each cell is looked up once per group in a hash map, so the cost is
// cells x groups, not cells x entries. Error: an entry matching no cell, at the entry.
absl::StatusOr<std::vector<bool>> DropExcluded(const std::vector<Cell>& product,
                                               const std::vector<Cell>& excluded,
                                               const MapEntry* exclude,
                                               absl::string_view stage_where,
                                               const Errors& errors) {
  std::map<std::vector<std::string>, std::unordered_map<std::string, std::vector<size_t>>> groups;
  for (size_t e = 0; e < excluded.size(); ++e) {
    std::vector<std::string> keys;
    for (const auto& [key, unused] : excluded[e]) keys.push_back(key);
    groups[keys][CellText(excluded[e], keys)].push_back(e);
  }
  std::vector<bool> dropped(product.size(), false);
  std::vector<bool> matched(excluded.size(), false);
  for (size_t c = 0; c < product.size(); ++c) {
    for (const auto& [keys, entries] : groups) {
      auto found = entries.find(CellText(product[c], keys));
      if (found == entries.end()) continue;
      dropped[c] = true;
      for (size_t e : found->second) matched[e] = true;
    }
  }
  for (size_t e = 0; e < excluded.size(); ++e) {
    if (!matched[e]) {
      return errors.At(exclude->value[e], absl::StrCat(Index(Child(stage_where, "exclude"), e),
                                                       " matches no cell of the grid"));
    }
  }
  return dropped;
}

// One axis of the grid: its values, in file order.
absl::StatusOr<std::vector<json>> ReadAxis(const MapEntry& axis, absl::string_view grid_where,
                                           const std::vector<std::string>& after,
                                           const Errors& errors) {
  const std::string where = Child(grid_where, axis.key);
  if (!IsIdentifier(axis.key)) {
    return errors.At(axis.key_node,
                     absl::StrCat(grid_where, ": key '", axis.key,
                                  "' must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"));
  }
  if (std::find(after.begin(), after.end(), axis.key) != after.end()) {
    return errors.At(axis.key_node, absl::StrCat(grid_where, ": key '", axis.key,
                                                 "' has the name of an after stage"));
  }
  if (!axis.value.IsSequence()) {
    return errors.At(axis.mark, absl::StrCat(where, " must be a list"));
  }
  if (axis.value.size() == 0) return errors.At(axis.value, absl::StrCat(where, " is empty"));
  std::vector<json> values;
  std::set<std::string> seen;
  for (size_t i = 0; i < axis.value.size(); ++i) {
    PCSWEEP_ASSIGN_OR_RETURN(json value, ReadGridValue(axis.value[i], errors, Index(where, i)));
    if (!seen.insert(CanonicalText(value)).second) {
      return errors.At(axis.value[i],
                       absl::StrCat(Index(where, i), ": duplicate value ", CanonicalText(value)));
    }
    values.push_back(std::move(value));
  }
  return values;
}

// The cartesian product of the axes (`values[k]` for `keys[k]`), first key outermost.
absl::StatusOr<std::vector<Cell>> CartesianProduct(const std::vector<std::string>& keys,
                                                   const std::vector<std::vector<json>>& values,
                                                   const MapEntry& grid,
                                                   absl::string_view grid_where,
                                                   const Errors& errors) {
  size_t product_size = 1;
  for (const std::vector<json>& axis : values) {
    product_size *= axis.size();
    if (product_size > kMaxJobs) {
      return errors.At(grid.value, absl::StrCat(grid_where, " has more than ", kMaxJobs,
                                                " cells; split the sweep"));
    }
  }
  std::vector<Cell> product;
  std::vector<size_t> odometer(values.size(), 0);
  while (true) {
    Cell cell;
    for (size_t k = 0; k < values.size(); ++k) cell[keys[k]] = values[k][odometer[k]];
    product.push_back(std::move(cell));
    if (product.size() % 1024 == 0) PCSWEEP_RETURN_IF_ERROR(errors.CheckDeadline(grid_where));
    size_t k = values.size();
    while (k > 0 && ++odometer[k - 1] == values[k - 1].size()) odometer[--k] = 0;
    if (k == 0) break;
  }
  return product;
}

// The cells listed under `include` or `exclude` (`list`; none when it is null). `partial`:
// a cell may name only some grid keys (exclude).
absl::StatusOr<std::vector<Cell>> ReadCells(const MapEntry* list, bool partial,
                                            absl::string_view stage_where,
                                            const std::vector<std::string>& keys,
                                            const Errors& errors) {
  std::vector<Cell> cells;
  if (list == nullptr) return cells;
  const std::string where = Child(stage_where, list->key);
  if (!list->value.IsSequence()) {
    return errors.At(list->mark, absl::StrCat(where, " must be a list of cells"));
  }
  for (size_t i = 0; i < list->value.size(); ++i) {
    const YAML::Node& node = list->value[i];
    const std::string cell_where = Index(where, i);
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<MapEntry> entries,
                             ReadMap(node, errors, cell_where, &keys));
    Cell cell;
    for (const MapEntry& entry : entries) {
      PCSWEEP_ASSIGN_OR_RETURN(cell[entry.key],
                               ReadGridValue(entry.value, errors, Child(cell_where, entry.key)));
    }
    if (cell.empty()) return errors.At(node, absl::StrCat(cell_where, " is empty"));
    if (!partial) {
      std::vector<std::string> missing;
      for (const std::string& key : keys) {
        if (!cell.count(key)) missing.push_back(key);
      }
      if (!missing.empty()) {
        return errors.At(node, absl::StrCat(cell_where, " is missing grid key(s) ",
                                            absl::StrJoin(missing, ", ")));
      }
    }
    cells.push_back(std::move(cell));
  }
  return cells;
}

// Appends the `include` cells to `grid`.
// Error: an included cell that is already there, at its entry.
absl::Status AppendIncluded(std::vector<Cell> included, const MapEntry* include,
                            absl::string_view stage_where, Grid* grid, const Errors& errors) {
  std::unordered_set<std::string> cells_seen;
  for (const Cell& cell : grid->cells) cells_seen.insert(CellText(cell, grid->keys));
  for (size_t i = 0; i < included.size(); ++i) {
    if (!cells_seen.insert(CellText(included[i], grid->keys)).second) {
      return errors.At(include->value[i], absl::StrCat(Index(Child(stage_where, "include"), i),
                                                       " duplicates a cell already in the sweep"));
    }
    grid->cells.push_back(std::move(included[i]));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Grid> ExpandGrid(const std::vector<MapEntry>& stage_entries,
                                absl::string_view stage_where,
                                const std::vector<std::string>& after, const Errors& errors) {
  const MapEntry* grid_entry = Find(stage_entries, "grid");
  const MapEntry* include = Find(stage_entries, "include");
  const MapEntry* exclude = Find(stage_entries, "exclude");
  const std::string grid_where = Child(stage_where, "grid");
  Grid grid;
  if (grid_entry == nullptr) {
    for (const MapEntry* list : {include, exclude}) {
      if (list != nullptr) {
        return errors.At(list->key_node,
                         absl::StrCat(Child(stage_where, list->key), " needs a grid"));
      }
    }
    grid.cells.push_back({});
    return grid;
  }

  if (!grid_entry->value.IsMap()) {
    return errors.At(grid_entry->mark, absl::StrCat(grid_where, " must be a map of key: [values]"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<MapEntry> axes,
                           ReadMap(grid_entry->value, errors, grid_where, nullptr));
  if (axes.empty()) return errors.At(grid_entry->value, absl::StrCat(grid_where, " is empty"));
  std::vector<std::vector<json>> values;
  for (const MapEntry& axis : axes) {
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<json> axis_values,
                             ReadAxis(axis, grid_where, after, errors));
    grid.keys.push_back(axis.key);
    values.push_back(std::move(axis_values));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Cell> product,
                           CartesianProduct(grid.keys, values, *grid_entry, grid_where, errors));

  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Cell> excluded,
                           ReadCells(exclude, /*partial=*/true, stage_where, grid.keys, errors));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<bool> dropped,
                           DropExcluded(product, excluded, exclude, stage_where, errors));
  for (size_t c = 0; c < product.size(); ++c) {
    if (!dropped[c]) grid.cells.push_back(std::move(product[c]));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<Cell> included,
                           ReadCells(include, /*partial=*/false, stage_where, grid.keys, errors));
  PCSWEEP_RETURN_IF_ERROR(AppendIncluded(std::move(included), include, stage_where, &grid, errors));
  if (grid.cells.empty()) {
    return errors.At(grid_entry->value, absl::StrCat(grid_where, ": exclude drops every cell"));
  }
  return grid;
}

}  // namespace pcsweep::spec_internal
