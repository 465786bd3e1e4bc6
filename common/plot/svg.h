// A small SVG writer for the paper's figures: grouped bar or point charts with error bars,
// axes with "nice" ticks, optional dashed reference lines (e.g. the base model), a shared
// legend and a title, several panels side by side ("flip rate | margin difference, by layer
// range and loss weight").
//
// The output is standalone SVG 1.1 (no scripts, no external fonts: font-family sans-serif),
// well-formed XML with every text node escaped, viewable in any browser and convertible with
// rsvg-convert. Pure functions; thread-safe.
#ifndef PCSWEEP_COMMON_PLOT_SVG_H_
#define PCSWEEP_COMMON_PLOT_SVG_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::plot {

// One coloured series: a value per category of its panel. NaN means "no value" (nothing
// drawn). Error bars, when given, are absolute ends (e.g. a CI), one per category, NaN for
// none; leave both vectors empty for no error bars.
struct Series {
  std::string name;
  std::vector<double> values;
  std::vector<double> error_low;
  std::vector<double> error_high;
};

enum class Style { kBars, kPoints };

// A horizontal dashed line across the panel with a label at its right end.
struct ReferenceLine {
  std::string label;
  double value = 0;
};

struct Panel {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> categories;  // x axis groups, left to right
  std::vector<Series> series;           // drawn side by side within each group
  std::vector<ReferenceLine> reference_lines;
  Style style = Style::kBars;
  bool y_percent = false;  // tick labels as "12%" for values that are fractions
  // Axis range; by default from min(0, data) to the data maximum (errors and reference lines
  // included), widened to nice tick values.
  std::optional<double> y_min;
  std::optional<double> y_max;
};

struct Figure {
  std::string title;
  std::vector<Panel> panels;  // left to right
  int panel_width = 460;      // pixels per panel
  int panel_height = 340;
};

// Renders `figure`. Series with the same name share a colour and one legend entry across
// panels.
// Possible errors: InvalidArgument (naming panel and series) when there are no panels, a panel
// has no categories, a series' values or error vectors do not have one entry per category, a
// value is infinite, y_min >= y_max, or the sizes are not positive.
absl::StatusOr<std::string> RenderSvg(const Figure& figure);

// Tick values covering [low, high] with a step of 1, 2 or 5 times a power of ten, about
// `target` of them. low == high gives a unit-wide range around the value.
std::vector<double> NiceTicks(double low, double high, int target = 5);

// Escapes &, <, >, " and ' for XML text and attribute values.
std::string EscapeXml(absl::string_view text);

}  // namespace pcsweep::plot

#endif  // PCSWEEP_COMMON_PLOT_SVG_H_
