#include "common/table/table.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace pcsweep::table {
namespace {

std::string RightTrim(std::string line) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// Newlines inside a cell would break every line-oriented format but CSV and JSON.
std::string OneLine(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
}

const char* AlignName(Align align) {
  switch (align) {
    case Align::kLeft:
      return "left";
    case Align::kRight:
      return "right";
    case Align::kCenter:
      return "center";
  }
  return "left";
}

}  // namespace

size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string PadToWidth(absl::string_view text, size_t width, Align align) {
  const size_t fill = width > DisplayWidth(text) ? width - DisplayWidth(text) : 0;
  switch (align) {
    case Align::kLeft:
      return absl::StrCat(text, std::string(fill, ' '));
    case Align::kRight:
      return absl::StrCat(std::string(fill, ' '), text);
    case Align::kCenter:
      return absl::StrCat(std::string(fill / 2, ' '), text, std::string(fill - fill / 2, ' '));
  }
  return std::string(text);
}

std::string CsvField(absl::string_view text) {
  if (text.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(text);
  return absl::StrCat("\"", absl::StrReplaceAll(text, {{"\"", "\"\""}}), "\"");
}

absl::StatusOr<Table> Table::Create(std::string title, std::vector<Column> columns) {
  if (columns.empty()) return absl::InvalidArgumentError("table '" + title + "' has no columns");
  std::set<std::string> seen;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].header.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("table '", title, "': column ", i, " has an empty header"));
    }
    if (!seen.insert(columns[i].header).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("table '", title, "': duplicate column header '", columns[i].header, "'"));
    }
  }
  return Table(std::move(title), std::move(columns));
}

absl::Status Table::AddRow(std::vector<std::string> cells) {
  if (cells.size() != columns_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("table '", title_, "' row ", rows_.size() + 1,
                                                   " has ", cells.size(), " cells, expected ",
                                                   columns_.size()));
  }
  rows_.push_back(std::move(cells));
  return absl::OkStatus();
}

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "markdown" || name == "md") return Format::kMarkdown;
  if (name == "csv") return Format::kCsv;
  if (name == "latex" || name == "tex") return Format::kLatex;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown table format '", name, "' (expected text, markdown, csv, latex or json)"));
}

const char* FormatName(Format format) {
  switch (format) {
    case Format::kText:
      return "text";
    case Format::kMarkdown:
      return "markdown";
    case Format::kCsv:
      return "csv";
    case Format::kLatex:
      return "latex";
    case Format::kJson:
      return "json";
  }
  return "text";
}

std::string RenderText(const Table& table) {
  const auto& columns = table.columns();
  std::vector<size_t> widths(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) widths[c] = DisplayWidth(columns[c].header);
  for (const auto& row : table.rows()) {
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], DisplayWidth(OneLine(row[c])));
    }
  }
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::vector<std::string> padded;
    for (size_t c = 0; c < cells.size(); ++c) {
      // Headers follow their column's alignment so numbers and titles line up.
      padded.push_back(PadToWidth(OneLine(cells[c]), widths[c], columns[c].align));
    }
    return RightTrim(absl::StrJoin(padded, "  ")) + "\n";
  };
  std::string out;
  if (!table.title().empty()) absl::StrAppend(&out, OneLine(table.title()), "\n\n");
  std::vector<std::string> headers;
  for (const Column& column : columns) headers.push_back(column.header);
  absl::StrAppend(&out, line(headers, true));
  std::vector<std::string> rules;
  for (size_t w : widths) rules.push_back(std::string(w, '-'));
  absl::StrAppend(&out, absl::StrJoin(rules, "  "), "\n");
  for (const auto& row : table.rows()) absl::StrAppend(&out, line(row, false));
  if (!table.notes().empty()) {
    out += "\n";
    for (const std::string& note : table.notes()) absl::StrAppend(&out, OneLine(note), "\n");
  }
  return out;
}

std::string RenderMarkdown(const Table& table) {
  auto cell = [](absl::string_view text) {
    return absl::StrReplaceAll(OneLine(text), {{"\\", "\\\\"}, {"|", "\\|"}});
  };
  std::string out;
  if (!table.title().empty()) absl::StrAppend(&out, "**", cell(table.title()), "**\n\n");
  std::vector<std::string> headers, markers;
  for (const Column& column : table.columns()) {
    headers.push_back(cell(column.header));
    switch (column.align) {
      case Align::kLeft:
        markers.push_back(":---");
        break;
      case Align::kRight:
        markers.push_back("---:");
        break;
      case Align::kCenter:
        markers.push_back(":---:");
        break;
    }
  }
  absl::StrAppend(&out, "| ", absl::StrJoin(headers, " | "), " |\n");
  absl::StrAppend(&out, "|", absl::StrJoin(markers, "|"), "|\n");
  for (const auto& row : table.rows()) {
    std::vector<std::string> cells;
    for (const std::string& c : row) cells.push_back(cell(c));
    absl::StrAppend(&out, "| ", absl::StrJoin(cells, " | "), " |\n");
  }
  for (const std::string& note : table.notes()) absl::StrAppend(&out, "\n", cell(note), "\n");
  return out;
}

std::string RenderCsv(const Table& table) {
  auto record = [](const std::vector<std::string>& cells) {
    std::vector<std::string> fields;
    for (const std::string& c : cells) fields.push_back(CsvField(c));
    return absl::StrJoin(fields, ",") + "\r\n";
  };
  std::vector<std::string> headers;
  for (const Column& column : table.columns()) headers.push_back(column.header);
  std::string out = record(headers);
  for (const auto& row : table.rows()) out += record(row);
  return out;
}

std::string EscapeLatex(absl::string_view text) {
  std::string out;
  const std::string line = OneLine(text);
  for (size_t i = 0; i < line.size(); ++i) {
    if (line.compare(i, 3, "+/-") == 0) {
      out += "$\\pm$";
      i += 2;
      continue;
    }
    switch (line[i]) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        out += '\\';
        out += line[i];
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      case '|':
        out += "\\textbar{}";
        break;
      case '<':
        out += "\\textless{}";
        break;
      case '>':
        out += "\\textgreater{}";
        break;
      default:
        out += line[i];
    }
  }
  return out;
}

std::string RenderLatex(const Table& table) {
  std::string spec;
  for (const Column& column : table.columns()) {
    spec += column.align == Align::kRight ? 'r' : column.align == Align::kCenter ? 'c' : 'l';
  }
  std::string out;
  if (!table.title().empty()) absl::StrAppend(&out, "% ", OneLine(table.title()), "\n");
  absl::StrAppend(&out, "\\begin{tabular}{", spec, "}\n\\hline\n");
  auto row_line = [](const std::vector<std::string>& cells) {
    std::vector<std::string> escaped;
    for (const std::string& c : cells) escaped.push_back(EscapeLatex(c));
    return absl::StrJoin(escaped, " & ") + " \\\\\n";
  };
  std::vector<std::string> headers;
  for (const Column& column : table.columns()) headers.push_back(column.header);
  absl::StrAppend(&out, row_line(headers), "\\hline\n");
  for (const auto& row : table.rows()) out += row_line(row);
  out += "\\hline\n";
  for (const std::string& note : table.notes()) {
    absl::StrAppend(&out, "\\multicolumn{", table.columns().size(), "}{l}{\\footnotesize ",
                    EscapeLatex(note), "} \\\\\n");
  }
  out += "\\end{tabular}\n";
  return out;
}

std::string RenderJson(const Table& table) {
  nlohmann::ordered_json doc;
  doc["title"] = table.title();
  doc["columns"] = nlohmann::ordered_json::array();
  for (const Column& column : table.columns()) {
    doc["columns"].push_back({{"name", column.header}, {"align", AlignName(column.align)}});
  }
  doc["rows"] = nlohmann::ordered_json::array();
  for (const auto& row : table.rows()) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (size_t c = 0; c < row.size(); ++c) object[table.columns()[c].header] = row[c];
    doc["rows"].push_back(std::move(object));
  }
  doc["notes"] = table.notes();
  // Replace invalid UTF-8 rather than throw: a cell from a file must not crash rendering.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string Render(const Table& table, Format format) {
  switch (format) {
    case Format::kText:
      return RenderText(table);
    case Format::kMarkdown:
      return RenderMarkdown(table);
    case Format::kCsv:
      return RenderCsv(table);
    case Format::kLatex:
      return RenderLatex(table);
    case Format::kJson:
      return RenderJson(table);
  }
  return RenderText(table);
}

}  // namespace pcsweep::table
