#include "coordinator/web/results_html.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/web/pages.h"
#include "nlohmann/json.hpp"

namespace pcsweep::coordinator::web {
namespace {

std::string CellText(const nlohmann::ordered_json& cell) {
  if (cell.is_string()) return cell.get<std::string>();
  if (cell.is_null()) return "";
  return cell.dump();
}

std::string CompareColumn(const CompareSide& side) {
  const SweepRecord& sweep = side.summary.summary.sweep;
  return absl::StrCat("<div class=\"side\"><h2><a href=\"/sweeps/", UrlEncode(sweep.sweep_id),
                      "\">", HtmlEscape(sweep.name), " <small>", HtmlEscape(sweep.sweep_id),
                      "</small></a></h2>", SummaryHtml(side.summary, false), side.table_html,
                      side.figure_html, "</div>\n");
}

}  // namespace

absl::StatusOr<std::string> ResultsTableHtml(absl::string_view json, absl::string_view kind) {
  nlohmann::ordered_json doc =
      nlohmann::ordered_json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("results table: not a JSON object");
  }
  if (!doc.contains("columns") || !doc["columns"].is_array() || !doc.contains("rows") ||
      !doc["rows"].is_array()) {
    return absl::InvalidArgumentError("results table: no columns or rows");
  }
  std::vector<std::pair<std::string, std::string>> columns;  // name, align
  for (const auto& column : doc["columns"]) {
    if (!column.is_object() || !column.contains("name") || !column["name"].is_string()) {
      return absl::InvalidArgumentError("results table: a column without a name");
    }
    columns.emplace_back(column["name"].get<std::string>(), column.value("align", "left"));
  }
  std::string out = "<div class=\"table-block\">";
  if (doc.contains("title") && doc["title"].is_string()) {
    absl::StrAppend(&out, "<p class=\"table-title\">", HtmlEscape(doc["title"].get<std::string>()),
                    "</p>");
  }
  absl::StrAppend(&out, "<div class=\"scroll\"><table class=\"results\" id=\"table-",
                  HtmlEscape(kind), "\"><thead><tr>");
  for (const auto& [name, align] : columns) {
    absl::StrAppend(&out, "<th class=\"", HtmlEscape(align), "\">", HtmlEscape(name), "</th>");
  }
  out += "</tr></thead><tbody>\n";
  for (const auto& row : doc["rows"]) {
    if (!row.is_object())
      return absl::InvalidArgumentError("results table: a row is not an object");
    out += "<tr>";
    for (const auto& [name, align] : columns) {
      const std::string text = row.contains(name) ? CellText(row[name]) : "";
      const bool collapsed = absl::StrContains(text, "COLLAPSED");
      absl::StrAppend(&out, "<td class=\"", HtmlEscape(align), collapsed ? " collapsed" : "", "\">",
                      HtmlEscape(text), "</td>");
    }
    out += "</tr>\n";
  }
  out += "</tbody></table></div>";
  if (doc.contains("notes") && doc["notes"].is_array() && !doc["notes"].empty()) {
    out += "<ul class=\"notes\">";
    for (const auto& note : doc["notes"])
      absl::StrAppend(&out, "<li>", HtmlEscape(CellText(note)), "</li>");
    out += "</ul>";
  }
  out += "</div>\n";
  return out;
}

std::string FigureHtml(const std::string& sweep_id, const std::string& version) {
  return absl::StrCat(
      "<img class=\"figure\" alt=\"flip rate and margin difference by layer range\" "
      "src=\"/sweeps/",
      UrlEncode(sweep_id), "/figure.svg?v=", UrlEncode(version), "\">\n");
}

std::string UnavailableHtml(absl::string_view message) {
  return absl::StrCat("<p class=\"muted\">", HtmlEscape(message), "</p>\n");
}

std::string ComparePage(const CompareSide& a, const CompareSide& b, absl::string_view kind,
                        const std::vector<SweepSummaryView>& sweeps) {
  const std::string& a_id = a.summary.summary.sweep.sweep_id;
  const std::string& b_id = b.summary.summary.sweep.sweep_id;
  return absl::StrCat(
      "<h1>", HtmlEscape(a.summary.summary.sweep.name), " vs ",
      HtmlEscape(b.summary.summary.sweep.name), " <small>", HtmlEscape(kind),
      " table</small></h1>\n<form class=\"filter\" method=\"get\" "
      "action=\"/compare\"><select name=\"a\">",
      SweepOptionsHtml(sweeps, a_id), "</select> <select name=\"b\">",
      SweepOptionsHtml(sweeps, b_id), "</select> <select name=\"table\">",
      TableKindOptionsHtml(kind),
      "</select> <button type=\"submit\">Compare</button></form>\n<div class=\"compare\">",
      CompareColumn(a), CompareColumn(b), "</div>\n");
}

}  // namespace pcsweep::coordinator::web
