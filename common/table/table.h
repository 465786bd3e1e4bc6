// A paper-ready table (title, aligned columns, rows of text cells, footnotes) and its
// renderings: plain text for terminals, Markdown, CSV (RFC 4180), a LaTeX `tabular`, JSON.
// The CLI's listings (rows of records, as scripts read them) are listing.h; both share the
// text helpers at the end of this header.
//
// Cells are already-formatted text: the producer decides digits and units, the renderer only
// lays them out and escapes them for the target format. The one format-aware substitution is
// "+/-", which LaTeX renders as $\pm$ (the text form stays ASCII).
//
// A Table is a value type; rendering is const and thread-safe.
#ifndef PCSWEEP_COMMON_TABLE_TABLE_H_
#define PCSWEEP_COMMON_TABLE_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::table {

enum class Align { kLeft, kRight, kCenter };

struct Column {
  std::string header;
  Align align = Align::kLeft;
};

class Table {
 public:
  // Possible errors: InvalidArgument when there are no columns, a header is empty, or two
  // headers are equal (JSON rows are keyed by header).
  static absl::StatusOr<Table> Create(std::string title, std::vector<Column> columns);

  // Appends a row. Possible errors: InvalidArgument when the row does not have exactly one
  // cell per column (the message names the row number and both counts).
  absl::Status AddRow(std::vector<std::string> cells);
  void AddNote(std::string note) { notes_.push_back(std::move(note)); }

  const std::string& title() const { return title_; }
  const std::vector<Column>& columns() const { return columns_; }
  const std::vector<std::vector<std::string>>& rows() const { return rows_; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  Table(std::string title, std::vector<Column> columns)
      : title_(std::move(title)), columns_(std::move(columns)) {}

  std::string title_;
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::string> notes_;
};

enum class Format { kText, kMarkdown, kCsv, kLatex, kJson };

// "text" | "markdown" (or "md") | "csv" | "latex" (or "tex") | "json".
// Possible errors: InvalidArgument naming the bad value and the accepted ones.
absl::StatusOr<Format> ParseFormat(absl::string_view name);
// The name ParseFormat reads back: "text", "markdown", "csv", "latex" or "json".
const char* FormatName(Format format);

// Title line, header, a dashed rule, rows, then notes; columns padded to their widest cell
// (width counted in UTF-8 code points) and separated by two spaces. Trailing spaces trimmed.
std::string RenderText(const Table& table);
// "**title**", a pipe table with :--/--:/:-: alignment markers ('|' in cells escaped), notes
// as paragraphs.
std::string RenderMarkdown(const Table& table);
// Header row and data rows only (title and notes have no place in CSV), CRLF line ends,
// fields with a comma, quote, CR or LF are quoted with inner quotes doubled.
std::string RenderCsv(const Table& table);
// A standalone `tabular` (booktabs-free: \hline rules) with the title as a leading comment and
// notes as full-width \multicolumn rows; LaTeX special characters (and <, >, |) are escaped.
// Non-ASCII text is passed through: keep cells ASCII for pdflatex without extra packages.
std::string RenderLatex(const Table& table);
// {"title":..., "columns":[{"name":..., "align":"left"|"right"|"center"}], "rows":[{header:
// cell}], "notes":[...]}, pretty-printed with 2 spaces.
std::string RenderJson(const Table& table);

std::string Render(const Table& table, Format format);

// LaTeX-escapes one cell (exposed for tests and callers that build captions).
std::string EscapeLatex(absl::string_view text);

// --- Text helpers shared by the renderers -------------------------------------------------

// Width in terminal columns, counted in UTF-8 code points: continuation bytes (10xxxxxx) take
// no column (wide and combining characters are not told apart).
size_t DisplayWidth(absl::string_view text);
// `text` filled with spaces to `width` columns on the side(s) `align` says (centred: the odd
// space goes right); text already that wide comes back as it is.
std::string PadToWidth(absl::string_view text, size_t width, Align align);
// One CSV field: as it is, or, when it holds a comma, quote, CR or LF, in double quotes with
// inner quotes doubled (RFC 4180).
std::string CsvField(absl::string_view text);

}  // namespace pcsweep::table

#endif  // PCSWEEP_COMMON_TABLE_TABLE_H_
