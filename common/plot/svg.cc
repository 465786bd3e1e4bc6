#include "common/plot/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pcsweep::plot {
namespace {

// Okabe–Ito: distinguishable for the common forms of colour blindness.
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                    "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
constexpr int kTitleHeight = 34;
constexpr int kLegendHeight = 34;
constexpr double kMarginLeft = 64, kMarginRight = 16, kMarginTop = 30, kMarginBottom = 52;

std::string Num(double v) { return absl::StrFormat("%.2f", v); }

std::string TickLabel(double value, double step, bool percent) {
  if (percent) {
    value *= 100;
    step *= 100;
  }
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  std::string text = absl::StrFormat("%.*f", decimals, value);
  if (text == "-0" || text.rfind("-0.", 0) == 0) {
    // "-0.00" for a value that is zero up to rounding reads as a bug on an axis.
    if (std::fabs(value) < step / 2) text = text.substr(1);
  }
  return percent ? text + "%" : text;
}

absl::Status ValidatePanel(const Panel& panel, size_t index) {
  const std::string where = absl::StrCat("panel ", index, " ('", panel.title, "')");
  if (panel.categories.empty()) {
    return absl::InvalidArgumentError(where + " has no categories");
  }
  if (panel.y_min && panel.y_max && !(*panel.y_min < *panel.y_max)) {
    return absl::InvalidArgumentError(where + ": y_min must be below y_max");
  }
  for (const Series& series : panel.series) {
    const std::string at = absl::StrCat(where, " series '", series.name, "'");
    if (series.values.size() != panel.categories.size()) {
      return absl::InvalidArgumentError(absl::StrCat(at, " has ", series.values.size(),
                                                     " values for ", panel.categories.size(),
                                                     " categories"));
    }
    for (const auto* errors : {&series.error_low, &series.error_high}) {
      if (!errors->empty() && errors->size() != panel.categories.size()) {
        return absl::InvalidArgumentError(absl::StrCat(at, " has ", errors->size(),
                                                       " error-bar ends for ",
                                                       panel.categories.size(), " categories"));
      }
    }
    for (const auto* values : {&series.values, &series.error_low, &series.error_high}) {
      for (double v : *values) {
        if (std::isinf(v)) return absl::InvalidArgumentError(at + " has an infinite value");
      }
    }
  }
  for (const ReferenceLine& line : panel.reference_lines) {
    if (!std::isfinite(line.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " reference line '", line.label, "' is not finite"));
    }
  }
  return absl::OkStatus();
}

class PanelWriter {
 public:
  PanelWriter(const Panel& panel, double x0, double y0, double width, double height,
              const std::map<std::string, const char*>& colors)
      : panel_(panel), colors_(colors) {
    left_ = x0 + kMarginLeft;
    right_ = x0 + width - kMarginRight;
    top_ = y0 + kMarginTop;
    bottom_ = y0 + height - kMarginBottom;
    x0_ = x0;
  }

  std::string Write() {
    ComputeRange();
    std::string out = "<g class=\"panel\">\n";
    const double center = (left_ + right_) / 2;
    absl::StrAppend(&out, "<text x=\"", Num(center), "\" y=\"", Num(top_ - 12),
                    "\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">",
                    EscapeXml(panel_.title), "</text>\n");
    WriteAxes(&out);
    WriteData(&out);
    WriteReferenceLines(&out);
    out += "</g>\n";
    return out;
  }

 private:
  void ComputeRange() {
    double low = std::numeric_limits<double>::infinity();
    double high = -low;
    auto see = [&](double v) {
      if (std::isfinite(v)) {
        low = std::min(low, v);
        high = std::max(high, v);
      }
    };
    for (const Series& s : panel_.series) {
      for (double v : s.values) see(v);
      for (double v : s.error_low) see(v);
      for (double v : s.error_high) see(v);
    }
    for (const ReferenceLine& line : panel_.reference_lines) see(line.value);
    if (!std::isfinite(low)) low = high = 0;
    low = std::min(low, 0.0);
    if (panel_.y_min) low = *panel_.y_min;
    if (panel_.y_max) high = *panel_.y_max;
    if (high <= low) high = low + 1;
    ticks_ = NiceTicks(low, high);
    y_low_ = panel_.y_min ? *panel_.y_min : std::min(low, ticks_.front());
    y_high_ = panel_.y_max ? *panel_.y_max : std::max(high, ticks_.back());
  }

  double Y(double value) const {
    return bottom_ - (value - y_low_) / (y_high_ - y_low_) * (bottom_ - top_);
  }

  void WriteAxes(std::string* out) const {
    const double step = ticks_.size() > 1 ? ticks_[1] - ticks_[0] : 1;
    for (double tick : ticks_) {
      if (tick < y_low_ - 1e-12 || tick > y_high_ + 1e-12) continue;
      const double y = Y(tick);
      absl::StrAppend(out, "<line x1=\"", Num(left_), "\" y1=\"", Num(y), "\" x2=\"", Num(right_),
                      "\" y2=\"", Num(y), "\" stroke=\"#e0e0e0\"/>\n");
      absl::StrAppend(out, "<line x1=\"", Num(left_ - 5), "\" y1=\"", Num(y), "\" x2=\"",
                      Num(left_), "\" y2=\"", Num(y), "\" stroke=\"#333\"/>\n");
      absl::StrAppend(out, "<text x=\"", Num(left_ - 8), "\" y=\"", Num(y + 4),
                      "\" text-anchor=\"end\" font-size=\"11\">",
                      EscapeXml(TickLabel(tick, step, panel_.y_percent)), "</text>\n");
    }
    absl::StrAppend(out, "<line x1=\"", Num(left_), "\" y1=\"", Num(top_), "\" x2=\"", Num(left_),
                    "\" y2=\"", Num(bottom_), "\" stroke=\"#333\"/>\n");
    absl::StrAppend(out, "<line x1=\"", Num(left_), "\" y1=\"", Num(Y(std::max(y_low_, 0.0))),
                    "\" x2=\"", Num(right_), "\" y2=\"", Num(Y(std::max(y_low_, 0.0))),
                    "\" stroke=\"#333\"/>\n");
    const double group = (right_ - left_) / panel_.categories.size();
    for (size_t c = 0; c < panel_.categories.size(); ++c) {
      const double x = left_ + group * (c + 0.5);
      absl::StrAppend(out, "<text x=\"", Num(x), "\" y=\"", Num(bottom_ + 16),
                      "\" text-anchor=\"middle\" font-size=\"11\">",
                      EscapeXml(panel_.categories[c]), "</text>\n");
    }
    absl::StrAppend(out, "<text x=\"", Num((left_ + right_) / 2), "\" y=\"", Num(bottom_ + 38),
                    "\" text-anchor=\"middle\" font-size=\"12\">", EscapeXml(panel_.x_label),
                    "</text>\n");
    const double mid_y = (top_ + bottom_) / 2;
    const double label_x = x0_ + 16;
    absl::StrAppend(out, "<text x=\"", Num(label_x), "\" y=\"", Num(mid_y),
                    "\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 ",
                    Num(label_x), " ", Num(mid_y), ")\">", EscapeXml(panel_.y_label), "</text>\n");
  }

  void WriteData(std::string* out) const {
    const size_t n_series = std::max<size_t>(1, panel_.series.size());
    const double group = (right_ - left_) / panel_.categories.size();
    const double slot = group * 0.8 / n_series;
    const double baseline = Y(std::clamp(0.0, y_low_, y_high_));
    for (size_t s = 0; s < panel_.series.size(); ++s) {
      const Series& series = panel_.series[s];
      const char* color = colors_.at(series.name);
      absl::StrAppend(out, "<g class=\"series\" data-name=\"", EscapeXml(series.name), "\">\n");
      for (size_t c = 0; c < panel_.categories.size(); ++c) {
        const double value = series.values[c];
        if (std::isnan(value)) continue;
        const double slot_left = left_ + group * c + group * 0.1 + slot * s;
        const double x = slot_left + slot / 2;
        const double y = Y(std::clamp(value, y_low_, y_high_));
        if (panel_.style == Style::kBars) {
          absl::StrAppend(out, "<rect x=\"", Num(slot_left + slot * 0.08), "\" y=\"",
                          Num(std::min(y, baseline)), "\" width=\"", Num(slot * 0.84),
                          "\" height=\"", Num(std::fabs(baseline - y)), "\" fill=\"", color,
                          "\"><title>", EscapeXml(series.name), ", ",
                          EscapeXml(panel_.categories[c]), ": ", absl::StrFormat("%.4g", value),
                          "</title></rect>\n");
        } else {
          absl::StrAppend(out, "<circle cx=\"", Num(x), "\" cy=\"", Num(y), "\" r=\"4.5\" fill=\"",
                          color, "\"><title>", EscapeXml(series.name), ", ",
                          EscapeXml(panel_.categories[c]), ": ", absl::StrFormat("%.4g", value),
                          "</title></circle>\n");
        }
        const double lo = series.error_low.empty() ? NAN : series.error_low[c];
        const double hi = series.error_high.empty() ? NAN : series.error_high[c];
        if (std::isnan(lo) && std::isnan(hi)) continue;
        const double y_lo = Y(std::clamp(std::isnan(lo) ? value : lo, y_low_, y_high_));
        const double y_hi = Y(std::clamp(std::isnan(hi) ? value : hi, y_low_, y_high_));
        const double cap = std::min(6.0, slot * 0.25);
        absl::StrAppend(out, "<path class=\"errorbar\" d=\"M", Num(x), " ", Num(y_lo), " V",
                        Num(y_hi), " M", Num(x - cap), " ", Num(y_lo), " H", Num(x + cap), " M",
                        Num(x - cap), " ", Num(y_hi), " H", Num(x + cap),
                        "\" stroke=\"#222\" stroke-width=\"1.3\" fill=\"none\"/>\n");
      }
      *out += "</g>\n";
    }
  }

  void WriteReferenceLines(std::string* out) const {
    for (const ReferenceLine& line : panel_.reference_lines) {
      if (line.value < y_low_ || line.value > y_high_) continue;
      const double y = Y(line.value);
      absl::StrAppend(out, "<line class=\"reference\" x1=\"", Num(left_), "\" y1=\"", Num(y),
                      "\" x2=\"", Num(right_), "\" y2=\"", Num(y),
                      "\" stroke=\"#555\" stroke-dasharray=\"6 4\" stroke-width=\"1.2\"/>\n");
      absl::StrAppend(out, "<text x=\"", Num(right_ - 2), "\" y=\"", Num(y - 4),
                      "\" text-anchor=\"end\" font-size=\"11\" fill=\"#333\">",
                      EscapeXml(line.label), "</text>\n");
    }
  }

  const Panel& panel_;
  const std::map<std::string, const char*>& colors_;
  double left_ = 0, right_ = 0, top_ = 0, bottom_ = 0, x0_ = 0;
  double y_low_ = 0, y_high_ = 1;
  std::vector<double> ticks_;
};

}  // namespace

std::string EscapeXml(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::vector<double> NiceTicks(double low, double high, int target) {
  if (!(high > low)) {
    low -= 0.5;
    high += 0.5;
  }
  target = std::max(2, target);
  const double raw = (high - low) / target;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * magnitude;
    if (raw <= step) break;
  }
  const double first = std::floor(low / step + 1e-9) * step;
  const double last = std::ceil(high / step - 1e-9) * step;
  std::vector<double> ticks;
  for (double t = first; t <= last + step * 1e-6; t += step) {
    // Snap to the step grid so 0.30000000000000004 prints and compares as 0.3.
    ticks.push_back(std::round(t / step) * step);
  }
  return ticks;
}

absl::StatusOr<std::string> RenderSvg(const Figure& figure) {
  if (figure.panels.empty()) return absl::InvalidArgumentError("figure has no panels");
  if (figure.panel_width <= 0 || figure.panel_height <= 0) {
    return absl::InvalidArgumentError("figure panel sizes must be positive");
  }
  std::map<std::string, const char*> colors;
  std::vector<std::string> legend;
  for (size_t p = 0; p < figure.panels.size(); ++p) {
    if (absl::Status s = ValidatePanel(figure.panels[p], p); !s.ok()) return s;
    for (const Series& series : figure.panels[p].series) {
      if (colors.count(series.name)) continue;
      colors[series.name] = kPalette[legend.size() % (sizeof(kPalette) / sizeof(kPalette[0]))];
      legend.push_back(series.name);
    }
  }
  const int width = figure.panel_width * static_cast<int>(figure.panels.size());
  const int height = kTitleHeight + figure.panel_height + kLegendHeight;
  std::string out =
      absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"", width,
                   "\" height=\"", height, "\" viewBox=\"0 0 ", width, " ", height,
                   "\" font-family=\"Helvetica, Arial, sans-serif\">\n");
  absl::StrAppend(&out, "<rect x=\"0\" y=\"0\" width=\"", width, "\" height=\"", height,
                  "\" fill=\"white\"/>\n");
  absl::StrAppend(&out, "<text x=\"", width / 2,
                  "\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">",
                  EscapeXml(figure.title), "</text>\n");
  for (size_t p = 0; p < figure.panels.size(); ++p) {
    PanelWriter writer(figure.panels[p], static_cast<double>(p) * figure.panel_width, kTitleHeight,
                       figure.panel_width, figure.panel_height, colors);
    out += writer.Write();
  }
  // Legend: swatch + name, laid out left to right, centred under the panels.
  const double entry_width = 150;
  double x = std::max(8.0, (width - entry_width * legend.size()) / 2);
  const double y = kTitleHeight + figure.panel_height + 12;
  out += "<g class=\"legend\">\n";
  for (const std::string& name : legend) {
    absl::StrAppend(&out, "<rect x=\"", Num(x), "\" y=\"", Num(y),
                    "\" width=\"14\" height=\"14\" fill=\"", colors.at(name), "\"/>\n");
    absl::StrAppend(&out, "<text x=\"", Num(x + 20), "\" y=\"", Num(y + 12), "\" font-size=\"12\">",
                    EscapeXml(name), "</text>\n");
    x += entry_width;
  }
  out += "</g>\n</svg>\n";
  return out;
}

}  // namespace pcsweep::plot
