#include "common/table/table.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::table {
namespace {

using ::pcsweep::testutil::StatusIs;

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

fs::path TestdataDir() {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  return fs::path(root ? root : ".") / "common/table/testdata";
}

// Compares with testdata/NAME; PCSWEEP_UPDATE_GOLDEN=1 rewrites the file instead.
void ExpectGolden(const std::string& name, const std::string& actual) {
  const fs::path path = TestdataDir() / name;
  if (std::getenv("PCSWEEP_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  ASSERT_TRUE(fs::exists(path)) << path << " missing; run with PCSWEEP_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, ReadFile(path)) << "golden mismatch: " << path;
}

// A results-like table whose cells exercise every escaping rule.
Table SampleTable() {
  auto table = Table::Create("Main results: MIMIC-CXR binary (n=158)",
                             {{"Model", Align::kLeft},
                              {"Flip rate [95% CI]", Align::kRight},
                              {"p (z)", Align::kRight},
                              {"Note", Align::kCenter}});
  EXPECT_TRUE(table.ok());
  EXPECT_TRUE(table->AddRow({"base", "14.6% [9.9, 20.9]", "-", "ref"}).ok());
  EXPECT_TRUE(
      table->AddRow({"layers=15-19,loss=combined", "4.4% [2.2, 8.9]", "0.0021", "say \"hi\", ok"})
          .ok());
  EXPECT_TRUE(table->AddRow({"a|b & c_d", "0.33 +/- 0.05", "<0.001", "$5 #1 {x} ~^\\"}).ok());
  table->AddNote("p: two-proportion z-test (pooled, two-sided); 50% of n_1");
  return *std::move(table);
}

TEST(Table, GoldenText) { ExpectGolden("sample.txt.golden", RenderText(SampleTable())); }
TEST(Table, GoldenMarkdown) { ExpectGolden("sample.md.golden", RenderMarkdown(SampleTable())); }
TEST(Table, GoldenCsv) { ExpectGolden("sample.csv.golden", RenderCsv(SampleTable())); }
TEST(Table, GoldenLatex) { ExpectGolden("sample.tex.golden", RenderLatex(SampleTable())); }
TEST(Table, GoldenJson) { ExpectGolden("sample.json.golden", RenderJson(SampleTable())); }

TEST(Table, TextAlignsColumnsAndStaysAscii) {
  const std::string text = RenderText(SampleTable());
  for (unsigned char c : text) EXPECT_LT(c, 128) << "non-ASCII byte in text rendering";
  std::istringstream lines(text);
  std::string line;
  std::vector<std::string> all;
  while (std::getline(lines, line)) all.push_back(line);
  // all: title, blank, header, rule, 3 rows, blank, note. "p (z)" is right-aligned, so
  // its cells end in the same column as its header.
  ASSERT_EQ(all.size(), 9u);
  const size_t header_end = all[2].find("p (z)") + 5;
  EXPECT_EQ(all[4].find(" -  ") + 2, header_end);
  EXPECT_EQ(all[5].find("0.0021") + 6, header_end);
  EXPECT_EQ(all[6].find("<0.001") + 6, header_end);
}

TEST(Table, TextCountsUtf8CodePoints) {
  auto table = Table::Create("", {{"a", Align::kLeft}, {"b", Align::kLeft}});
  ASSERT_TRUE(table.ok());
  ASSERT_TRUE(table->AddRow({"\xc3\xa9t\xc3\xa9", "x"}).ok());  // "été": 3 code points
  ASSERT_TRUE(table->AddRow({"abc", "y"}).ok());
  EXPECT_EQ(RenderText(*table), "a    b\n---  -\n\xc3\xa9t\xc3\xa9  x\nabc  y\n");
}

TEST(Table, CsvQuotesPerRfc4180) {
  const std::string csv = RenderCsv(SampleTable());
  EXPECT_THAT(csv, testing::HasSubstr("\"say \"\"hi\"\", ok\""));
  EXPECT_EQ(csv.substr(0, csv.find("\r\n")), "Model,Flip rate [95% CI],p (z),Note");
  auto multiline = Table::Create("", {{"x", Align::kLeft}});
  ASSERT_TRUE(multiline.ok());
  ASSERT_TRUE(multiline->AddRow({"line1\nline2"}).ok());
  EXPECT_EQ(RenderCsv(*multiline), "x\r\n\"line1\nline2\"\r\n");
}

TEST(Table, LatexEscapesSpecialCharacters) {
  EXPECT_EQ(EscapeLatex("50% & $x_1$ #2 {a} ~ ^ \\"),
            "50\\% \\& \\$x\\_1\\$ \\#2 \\{a\\} \\textasciitilde{} \\textasciicircum{} "
            "\\textbackslash{}");
  EXPECT_EQ(EscapeLatex("0.33 +/- 0.05"), "0.33 $\\pm$ 0.05");
  EXPECT_EQ(EscapeLatex("<0.001"), "\\textless{}0.001");
}

// Compiles the LaTeX rendering inside a minimal document when pdflatex is installed
// (texlive-latex-base, listed in tools/setup.sh); skipped otherwise.
TEST(Table, LatexCompiles) {
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "pdflatex not installed";
  }
  const fs::path dir =
      fs::temp_directory_path() / ("pcsweep_table_latex_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "t.tex") << "\\documentclass{article}\n\\begin{document}\n"
                               << RenderLatex(SampleTable()) << "\\end{document}\n";
  const std::string command = "cd '" + dir.string() +
                              "' && pdflatex -interaction=nonstopmode -halt-on-error t.tex "
                              "> log.txt 2>&1";
  const int rc = std::system(command.c_str());
  EXPECT_EQ(rc, 0) << ReadFile(dir / "log.txt");
  EXPECT_TRUE(fs::exists(dir / "t.pdf"));
  fs::remove_all(dir);
}

TEST(Table, RejectsMalformedInput) {
  EXPECT_THAT(Table::Create("t", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "table 't' has no columns"));
  EXPECT_THAT(
      Table::Create("t", {{"a", Align::kLeft}, {"a", Align::kRight}}),
      StatusIs(absl::StatusCode::kInvalidArgument, "table 't': duplicate column header 'a'"));
  EXPECT_THAT(
      Table::Create("t", {{"", Align::kLeft}}),
      StatusIs(absl::StatusCode::kInvalidArgument, "table 't': column 0 has an empty header"));
  auto table = Table::Create("t", {{"a", Align::kLeft}, {"b", Align::kLeft}});
  ASSERT_TRUE(table.ok());
  absl::Status status = table->AddRow({"only one"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), testing::HasSubstr("row 1 has 1 cells, expected 2"));
}

TEST(Table, FormatNamesReadBack) {
  for (Format format :
       {Format::kText, Format::kMarkdown, Format::kCsv, Format::kLatex, Format::kJson}) {
    EXPECT_EQ(*ParseFormat(FormatName(format)), format) << FormatName(format);
  }
}

TEST(Table, TextHelpers) {
  EXPECT_EQ(DisplayWidth("\xc3\xa9t\xc3\xa9"), 3u);
  EXPECT_EQ(PadToWidth("ab", 5, Align::kLeft), "ab   ");
  EXPECT_EQ(PadToWidth("ab", 5, Align::kRight), "   ab");
  EXPECT_EQ(PadToWidth("ab", 5, Align::kCenter), " ab  ");
  EXPECT_EQ(PadToWidth("abcdef", 5, Align::kRight), "abcdef");
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a\rb"), "\"a\rb\"");
}

TEST(Table, ParsesFormats) {
  EXPECT_EQ(*ParseFormat("md"), Format::kMarkdown);
  EXPECT_EQ(*ParseFormat("latex"), Format::kLatex);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_THAT(ParseFormat("xlsx"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown table format 'xlsx' (expected text, markdown, csv,"));
}

}  // namespace
}  // namespace pcsweep::table
