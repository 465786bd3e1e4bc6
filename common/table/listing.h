// A listing: rows of records under column names, the shape of the CLI's `status`, `results`
// and `workers` output, and its four renderings. Unlike a paper table (table.h: title, notes,
// alignment, escaping per target) a listing is what scripts read, so each format keeps the
// cells as they are: aligned text, CSV with LF line ends, a JSON array of objects (numbers as
// numbers) and a plain Markdown pipe table.
//
// A listing is loose on purpose: headers may repeat or be empty, and a row shorter than the
// columns reads as empty cells (cells past the last column are not shown).
//
// Listing and ListingCell are value types; rendering is const and thread-safe.
#ifndef PCSWEEP_COMMON_TABLE_LISTING_H_
#define PCSWEEP_COMMON_TABLE_LISTING_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::table {

// One cell: its text, and its numeric value when it is a number (JSON prints it unquoted).
struct ListingCell {
  std::string text;
  std::optional<double> number;

  ListingCell() = default;
  ListingCell(std::string t) : text(std::move(t)) {}  // NOLINT: implicit for row literals
  ListingCell(const char* t) : text(t) {}             // NOLINT
  // The value with the text "%.0f" for integers below 1e15, else "%.6g".
  static ListingCell Number(double value);
};

struct Listing {
  std::vector<std::string> columns;
  std::vector<std::vector<ListingCell>> rows;  // each as long as `columns`
};

enum class ListingFormat { kText, kCsv, kJson, kMarkdown };

// "table" or "text", "csv", "json", "markdown" or "md", in any case.
// Possible errors: InvalidArgument "unknown format 'X' (expected table, csv, json or markdown)".
absl::StatusOr<ListingFormat> ParseListingFormat(absl::string_view name);

// Text: a header line, a dashed rule and the rows, columns padded to their widest cell
// (DisplayWidth) and two spaces apart, trailing whitespace trimmed. CSV: RFC 4180 quoting
// (CsvField), "\n" line ends. JSON: an array of objects, one per row, keys in column order
// (a repeated header keeps its first place and its last value); a finite number unquoted, an
// empty cell null, text as a string; invalid UTF-8 throws nlohmann::json::type_error.
// Markdown: a pipe table, '|' escaped and "\n" as a space. Every format ends with a newline.
std::string RenderListing(const Listing& listing, ListingFormat format);

}  // namespace pcsweep::table

#endif  // PCSWEEP_COMMON_TABLE_LISTING_H_
