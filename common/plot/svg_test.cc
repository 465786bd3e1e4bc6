#include "common/plot/svg.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::plot {
namespace {

using ::pcsweep::testutil::StatusIs;

// Minimal well-formedness check: balanced, properly nested tags, quoted attributes, no raw
// '<' or stray '&' in text. Returns "" when well-formed, else what is wrong.
std::string CheckWellFormed(const std::string& xml) {
  std::vector<std::string> stack;
  size_t i = 0;
  auto check_entities = [](const std::string& text) -> std::string {
    for (size_t k = text.find('&'); k != std::string::npos; k = text.find('&', k + 1)) {
      const size_t end = text.find(';', k);
      if (end == std::string::npos) return "unterminated entity";
      const std::string name = text.substr(k + 1, end - k - 1);
      if (name != "amp" && name != "lt" && name != "gt" && name != "quot" && name != "apos") {
        return "unknown entity &" + name + ";";
      }
    }
    return "";
  };
  while (i < xml.size()) {
    const size_t open = xml.find('<', i);
    const std::string text = xml.substr(i, open == std::string::npos ? open : open - i);
    if (text.find('>') != std::string::npos) return "raw '>' in text";
    if (std::string e = check_entities(text); !e.empty()) return e;
    if (open == std::string::npos) break;
    const size_t close = xml.find('>', open);
    if (close == std::string::npos) return "unterminated tag";
    std::string tag = xml.substr(open + 1, close - open - 1);
    i = close + 1;
    if (tag.rfind("?xml", 0) == 0) continue;
    if (!tag.empty() && tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return "mismatched </" + tag + ">";
      stack.pop_back();
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    const std::string name = tag.substr(0, tag.find_first_of(" \n"));
    if (name.empty()) return "empty tag name";
    // Attributes: name="value" pairs, values without '<' and with valid entities.
    size_t a = name.size();
    while (a < tag.size()) {
      while (a < tag.size() && tag[a] == ' ') ++a;
      if (a >= tag.size()) break;
      const size_t eq = tag.find('=', a);
      if (eq == std::string::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"') {
        return "unquoted attribute in <" + name + ">";
      }
      const size_t end = tag.find('"', eq + 2);
      if (end == std::string::npos) return "unterminated attribute in <" + name + ">";
      const std::string value = tag.substr(eq + 2, end - eq - 2);
      if (value.find('<') != std::string::npos) return "'<' in attribute";
      if (std::string e = check_entities(value); !e.empty()) return e;
      a = end + 1;
    }
    if (!self_closing) stack.push_back(name);
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  return "";
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t k = haystack.find(needle); k != std::string::npos; k = haystack.find(needle, k + 1)) {
    ++count;
  }
  return count;
}

Figure PaperFigure() {
  Figure figure;
  figure.title = "Flip rate & margin difference by layer range <MIMIC-CXR, n=158>";
  Panel flips;
  flips.title = "Flip rate";
  flips.x_label = "LoRA layer range";
  flips.y_label = "Flip rate (pairs)";
  flips.y_percent = true;
  flips.categories = {"0-4", "15-19", "0-33"};
  flips.series = {{"lambda=0.1", {0.061, 0.044, 0.09}, {0.04, 0.03, 0.06}, {0.08, 0.06, 0.12}},
                  {"lambda=1", {0.05, NAN, 0.11}, {0.03, NAN, 0.08}, {0.07, NAN, 0.14}}};
  flips.reference_lines = {{"base 14.6%", 0.146}};
  Panel margins = flips;
  margins.title = "Mean |m_q - m_p|";
  margins.y_label = "logits";
  margins.y_percent = false;
  margins.style = Style::kPoints;
  margins.series = {{"lambda=0.1", {0.2, 0.33, 0.8}, {0.15, 0.28, 0.7}, {0.25, 0.38, 0.9}},
                    {"lambda=1", {0.1, 0.3, 0.5}, {}, {}}};
  margins.reference_lines = {{"base 1.63", 1.63}};
  figure.panels = {flips, margins};
  return figure;
}

TEST(RenderSvg, PaperFigureIsWellFormedAndComplete) {
  auto svg = RenderSvg(PaperFigure());
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_EQ(CheckWellFormed(*svg), "");
  EXPECT_THAT(*svg, testing::HasSubstr("Flip rate &amp; margin difference by layer range "
                                       "&lt;MIMIC-CXR, n=158&gt;"));
  // 5 bars (one NaN skipped) in panel 1; 6 points in panel 2; error bars: 5 + 3.
  EXPECT_EQ(Count(*svg, "<rect x=") - 1 /*background*/ - 2 /*legend*/, 5u);
  EXPECT_EQ(Count(*svg, "<circle"), 6u);
  EXPECT_EQ(Count(*svg, "class=\"errorbar\""), 8u);
  EXPECT_EQ(Count(*svg, "class=\"reference\""), 2u);
  // One legend entry per distinct series name, shared by both panels.
  EXPECT_EQ(Count(*svg, "font-size=\"12\">lambda=0.1</text>"), 1u);
  EXPECT_THAT(*svg, testing::HasSubstr(">10%</text>"));  // percent ticks
  EXPECT_THAT(*svg, testing::HasSubstr(">1.5</text>"));  // plain ticks
  // xmllint, when present, must agree.
  if (std::system("command -v xmllint > /dev/null 2>&1") == 0) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("pcsweep_svg_" + std::to_string(::getpid()) + ".svg");
    std::ofstream(path) << *svg;
    EXPECT_EQ(std::system(("xmllint --noout '" + path.string() + "'").c_str()), 0);
    std::filesystem::remove(path);
  }
}

TEST(RenderSvg, WellFormednessCheckerCatchesErrors) {
  EXPECT_NE(CheckWellFormed("<svg><g></svg>"), "");
  EXPECT_NE(CheckWellFormed("<svg>a & b</svg>"), "");
  EXPECT_NE(CheckWellFormed("<svg x=1/>"), "");
  EXPECT_EQ(CheckWellFormed("<svg x=\"1\"><g/>a &amp; b</svg>"), "");
}

TEST(RenderSvg, RejectsBadFigures) {
  EXPECT_THAT(RenderSvg(Figure{}),
              StatusIs(absl::StatusCode::kInvalidArgument, "figure has no panels"));
  Figure figure = PaperFigure();
  figure.panels[1].series[0].values.pop_back();
  auto bad = RenderSvg(figure);
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            "panel 1 ('Mean |m_q - m_p|') series 'lambda=0.1' has 2"));
  EXPECT_THAT(std::string(bad.status().message()),
              testing::HasSubstr("panel 1 ('Mean |m_q - m_p|') series 'lambda=0.1' has 2 values "
                                 "for 3 categories"));
  figure = PaperFigure();
  figure.panels[0].series[0].error_high = {1, 2};
  EXPECT_THAT(RenderSvg(figure),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "panel 0 ('Flip rate') series 'lambda=0.1' has 2 error-bar"));
  figure = PaperFigure();
  figure.panels[0].series[0].values[0] = INFINITY;
  EXPECT_THAT(RenderSvg(figure),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "panel 0 ('Flip rate') series 'lambda=0.1' has an infinite value"));
  figure = PaperFigure();
  figure.panels[0].y_min = 1;
  figure.panels[0].y_max = 0;
  EXPECT_THAT(RenderSvg(figure), StatusIs(absl::StatusCode::kInvalidArgument,
                                          "panel 0 ('Flip rate'): y_min must be below y_max"));
}

TEST(NiceTicks, CoversRangeWithRoundSteps) {
  using testing::DoubleNear;
  EXPECT_THAT(NiceTicks(0, 0.146),
              testing::ElementsAre(DoubleNear(0, 1e-12), DoubleNear(0.05, 1e-12),
                                   DoubleNear(0.1, 1e-12), DoubleNear(0.15, 1e-12)));
  EXPECT_THAT(NiceTicks(0, 1.63), testing::ElementsAre(0, 0.5, 1, 1.5, 2));
  EXPECT_THAT(NiceTicks(-3, 7), testing::ElementsAre(-4, -2, 0, 2, 4, 6, 8));
  const auto flat = NiceTicks(2, 2);
  EXPECT_LE(flat.front(), 1.5);
  EXPECT_GE(flat.back(), 2.5);
}

TEST(EscapeXml, EscapesMarkupCharacters) {
  EXPECT_EQ(EscapeXml("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
}

// Writes the figure for a human to look at when PCSWEEP_PLOT_OUT is set.
TEST(RenderSvg, WritesSampleWhenAsked) {
  const char* out = std::getenv("PCSWEEP_PLOT_OUT");
  if (out == nullptr) GTEST_SKIP() << "set PCSWEEP_PLOT_OUT=FILE.svg to write the sample";
  auto svg = RenderSvg(PaperFigure());
  ASSERT_TRUE(svg.ok());
  std::ofstream(out) << *svg;
}

}  // namespace
}  // namespace pcsweep::plot
