#include "common/table/listing.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/table/table.h"
#include "nlohmann/json.hpp"

namespace pcsweep::table {
namespace {

// The text of column `i` of `row`; empty past the row's end.
const std::string& CellText(const std::vector<ListingCell>& row, size_t i) {
  static const std::string kEmpty;
  return i < row.size() ? row[i].text : kEmpty;
}

// The cells of `row` under the listing's columns, each through `convert`.
template <typename Convert>
std::vector<std::string> RowFields(const Listing& listing, const std::vector<ListingCell>& row,
                                   Convert convert) {
  std::vector<std::string> fields;
  for (size_t i = 0; i < listing.columns.size(); ++i) fields.push_back(convert(CellText(row, i)));
  return fields;
}

std::string RenderText(const Listing& listing) {
  const size_t n = listing.columns.size();
  std::vector<size_t> widths(n);
  for (size_t i = 0; i < n; ++i) widths[i] = DisplayWidth(listing.columns[i]);
  for (const auto& row : listing.rows) {
    for (size_t i = 0; i < n; ++i) widths[i] = std::max(widths[i], DisplayWidth(CellText(row, i)));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::vector<std::string> padded;
    for (size_t i = 0; i < n; ++i) padded.push_back(PadToWidth(cells[i], widths[i], Align::kLeft));
    return absl::StrCat(absl::StripTrailingAsciiWhitespace(absl::StrJoin(padded, "  ")), "\n");
  };
  std::string out = line(listing.columns);
  std::vector<std::string> rules;
  for (size_t width : widths) rules.push_back(std::string(width, '-'));
  out += line(rules);
  auto as_is = [](const std::string& text) { return text; };
  for (const auto& row : listing.rows) out += line(RowFields(listing, row, as_is));
  return out;
}

std::string RenderCsv(const Listing& listing) {
  auto record = [](const std::vector<std::string>& fields) {
    return absl::StrCat(absl::StrJoin(fields, ","), "\n");
  };
  std::vector<std::string> headers;
  for (const std::string& column : listing.columns) headers.push_back(CsvField(column));
  std::string out = record(headers);
  auto quote = [](const std::string& text) { return CsvField(text); };
  for (const auto& row : listing.rows) out += record(RowFields(listing, row, quote));
  return out;
}

std::string RenderJson(const Listing& listing) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : listing.rows) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (size_t i = 0; i < listing.columns.size(); ++i) {
      const std::string& key = listing.columns[i];
      if (i < row.size() && row[i].number.has_value() && std::isfinite(*row[i].number)) {
        object[key] = *row[i].number;
      } else if (i < row.size() && !row[i].text.empty()) {
        object[key] = row[i].text;
      } else {
        object[key] = nullptr;
      }
    }
    rows.push_back(std::move(object));
  }
  return absl::StrCat(rows.dump(2), "\n");
}

std::string RenderMarkdown(const Listing& listing) {
  auto field = [](const std::string& text) {
    return absl::StrReplaceAll(text, {{"|", "\\|"}, {"\n", " "}});
  };
  auto record = [](const std::vector<std::string>& fields) {
    return absl::StrCat("| ", absl::StrJoin(fields, " | "), " |\n");
  };
  std::vector<std::string> headers;
  for (const std::string& column : listing.columns) headers.push_back(field(column));
  std::string out = record(headers);
  absl::StrAppend(&out, "|", absl::StrJoin(std::vector<std::string>(headers.size(), "---"), "|"),
                  "|\n");
  for (const auto& row : listing.rows) out += record(RowFields(listing, row, field));
  return out;
}

}  // namespace

ListingCell ListingCell::Number(double value) {
  ListingCell cell;
  cell.number = value;
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    cell.text = absl::StrFormat("%.0f", value);
  } else {
    cell.text = absl::StrFormat("%.6g", value);
  }
  return cell;
}

absl::StatusOr<ListingFormat> ParseListingFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "table" || lower == "text") return ListingFormat::kText;
  if (lower == "csv") return ListingFormat::kCsv;
  if (lower == "json") return ListingFormat::kJson;
  if (lower == "markdown" || lower == "md") return ListingFormat::kMarkdown;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", name, "' (expected table, csv, json or markdown)"));
}

std::string RenderListing(const Listing& listing, ListingFormat format) {
  switch (format) {
    case ListingFormat::kText:
      return RenderText(listing);
    case ListingFormat::kCsv:
      return RenderCsv(listing);
    case ListingFormat::kJson:
      return RenderJson(listing);
    case ListingFormat::kMarkdown:
      return RenderMarkdown(listing);
  }
  return RenderText(listing);
}

}  // namespace pcsweep::table
