#include "experiments/data/loaders.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path, ": file not found"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::DataLossError(absl::StrCat(path, ": cannot open for reading"));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return buffer.str();
}

std::string ImageRootFor(const std::string& data_path, const LoadOptions& options) {
  if (!options.image_root.empty()) return options.image_root;
  fs::path parent = fs::path(data_path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

std::string ResolveImage(const std::string& root, const std::string& image) {
  fs::path p(image);
  if (p.is_absolute()) return p.lexically_normal().string();
  return (fs::path(root) / p).lexically_normal().string();
}

// Collects bad records: fails on the first one, or counts them with skip_bad.
class BadRecords {
 public:
  BadRecords(const LoadOptions& options, LoadReport& report) : options_(options), report_(report) {}

  // Returns OK when the record may be skipped, else the error to return.
  absl::Status Handle(const std::string& where, const absl::Status& status) {
    std::string reason = absl::StrCat(where, ": ", status.message());
    if (!options_.skip_bad) return absl::Status(status.code(), reason);
    ++report_.skipped;
    if (report_.first_reasons.size() < options_.max_reasons) {
      report_.first_reasons.push_back(std::move(reason));
    }
    return absl::OkStatus();
  }

 private:
  const LoadOptions& options_;
  LoadReport& report_;
};

// A string field, also accepting numbers (ids are often numeric). Missing -> error when
// required, else empty.
absl::StatusOr<std::string> StringField(const json& record, const char* key, bool required) {
  auto it = record.find(key);
  if (it == record.end() || it->is_null()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat("missing key '", key, "'"));
    return std::string();
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  if (it->is_number_unsigned()) return std::to_string(it->get<unsigned long long>());
  return absl::InvalidArgumentError(
      absl::StrCat("key '", key, "' must be a string, found ", it->type_name()));
}

absl::StatusOr<bool> ParseBool(const std::string& text, const char* name = "op_match") {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (lower == "true" || lower == "1" || lower == "yes") return true;
  if (lower == "false" || lower == "0" || lower == "no") return false;
  return absl::InvalidArgumentError(absl::StrCat(name, " must be true/false, found '", text, "'"));
}

absl::StatusOr<bool> BoolField(const json& value, const char* name = "op_match") {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) return ParseBool(value.get<std::string>(), name);
  if (value.is_number_integer()) return value.get<long long>() != 0;
  return absl::InvalidArgumentError(
      absl::StrCat(name, " must be a boolean, found ", value.type_name()));
}

enum class MissingOpMatch { kTrue, kInfer };

absl::StatusOr<std::vector<Paraphrase>> ParaphrasesField(const json& record, MissingOpMatch missing,
                                                         size_t& inferred) {
  std::vector<Paraphrase> out;
  auto it = record.find("paraphrases");
  if (it == record.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key 'paraphrases' must be an array, found ", it->type_name()));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    std::string where = absl::StrCat("paraphrases[", i, "]");
    if (!item.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " must be an object"));
    }
    Paraphrase p;
    auto text = StringField(item, "text", true);
    if (!text.ok()) return Annotate(text.status(), where);
    p.text = *std::move(text);
    if (absl::StripAsciiWhitespace(p.text).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": empty 'text'"));
    }
    auto phenomenon = StringField(item, "phenomenon", true);
    if (!phenomenon.ok()) return Annotate(phenomenon.status(), where);
    p.phenomenon = *std::move(phenomenon);
    auto wording = StringField(item, "wording", false);
    if (!wording.ok()) return Annotate(wording.status(), where);
    p.wording = *std::move(wording);
    auto op = item.find("op_match");
    if (op != item.end() && !op->is_null()) {
      auto value = BoolField(*op);
      if (!value.ok()) return Annotate(value.status(), where);
      p.op_match = *value;
    } else if (missing == MissingOpMatch::kInfer) {
      p.op_match = InferOpMatch(p.phenomenon, p.text);
      ++inferred;
    }
    out.push_back(std::move(p));
  }
  return out;
}

absl::Status CheckImage(const Question& q, const LoadOptions& options) {
  if (!options.check_images) return absl::OkStatus();
  std::error_code ec;
  if (q.image.empty()) return absl::InvalidArgumentError("empty image path");
  if (!fs::is_regular_file(q.image, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("image not found: ", q.image));
  }
  return absl::OkStatus();
}

absl::Status CheckQuestionText(const Question& q) {
  if (q.question_id.empty()) return absl::InvalidArgumentError("empty 'question_id'");
  if (absl::StripAsciiWhitespace(q.original_question).empty()) {
    return absl::InvalidArgumentError("empty original question");
  }
  return absl::OkStatus();
}

absl::StatusOr<Question> ParseCanonicalRecord(const json& record, const std::string& root,
                                              size_t& inferred) {
  if (!record.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a JSON object, found ", record.type_name()));
  }
  Question q;
  PCSWEEP_ASSIGN_OR_RETURN(q.question_id, StringField(record, "question_id", true));
  PCSWEEP_ASSIGN_OR_RETURN(std::string image, StringField(record, "image", true));
  q.image = ResolveImage(root, image);
  PCSWEEP_ASSIGN_OR_RETURN(q.answer_text, StringField(record, "answer", true));
  q.answer = ParseAnswer(q.answer_text);
  PCSWEEP_ASSIGN_OR_RETURN(q.original_question, StringField(record, "original_question", true));
  PCSWEEP_ASSIGN_OR_RETURN(q.paraphrases,
                           ParaphrasesField(record, MissingOpMatch::kTrue, inferred));
  PCSWEEP_ASSIGN_OR_RETURN(q.patient_id, StringField(record, "patient_id", false));
  PCSWEEP_ASSIGN_OR_RETURN(q.study_id, StringField(record, "study_id", false));
  PCSWEEP_ASSIGN_OR_RETURN(q.finding, StringField(record, "finding", false));
  PCSWEEP_ASSIGN_OR_RETURN(q.question_type, StringField(record, "question_type", false));
  PCSWEEP_ASSIGN_OR_RETURN(q.wording, StringField(record, "wording", false));
  auto subtlety = record.find("subtlety");
  if (subtlety != record.end() && subtlety->is_number()) q.subtlety = subtlety->get<double>();
  PCSWEEP_RETURN_IF_ERROR(CheckQuestionText(q));
  return q;
}

// MIMIC-CXR-JPG paths look like files/p10/p10000032/s50414267/<dicom>.jpg: the last "p<digits>"
// component with more than 2 digits is the subject, the "s<digits>" one the study.
void PatientFromMimicPath(const std::string& filename, std::string& patient, std::string& study) {
  for (const fs::path& part : fs::path(filename)) {
    const std::string s = part.string();
    if (s.size() < 4) continue;
    bool digits = true;
    for (size_t i = 1; i < s.size(); ++i) digits = digits && std::isdigit((unsigned char)s[i]);
    if (!digits) continue;
    if (s[0] == 'p') patient = s;
    if (s[0] == 's') study = s;
  }
}

// The first present of several alternative keys (exports name some columns differently).
absl::StatusOr<std::string> FirstStringField(const json& record,
                                             std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (record.contains(key) && !record[key].is_null()) return StringField(record, key, true);
  }
  std::vector<std::string> quoted;
  for (const char* key : keys) quoted.push_back(absl::StrCat("'", key, "'"));
  return absl::InvalidArgumentError(absl::StrCat("missing key ", absl::StrJoin(quoted, " or ")));
}

// Where a MIMIC-style question record keeps its image, answer and patient: the lab's split
// JSON has one name for each, the Hugging Face export several.
struct RecordColumns {
  std::initializer_list<const char*> image;
  std::initializer_list<const char*> answer;
  std::initializer_list<const char*> patient;
};
constexpr RecordColumns kMimicColumns{{"filename"}, {"answer"}, {"subject_id"}};
constexpr RecordColumns kHfColumns{
    {"filename", "image_path", "image"}, {"answer", "ground_truth"}, {"subject_id", "patient_id"}};

absl::StatusOr<Question> ParseMimicRecord(const json& record, const std::string& root,
                                          const RecordColumns& columns, size_t& inferred) {
  if (!record.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a JSON object, found ", record.type_name()));
  }
  Question q;
  PCSWEEP_ASSIGN_OR_RETURN(q.question_id, StringField(record, "question_id", true));
  PCSWEEP_ASSIGN_OR_RETURN(q.question_type, StringField(record, "question_type", false));
  PCSWEEP_ASSIGN_OR_RETURN(std::string filename, FirstStringField(record, columns.image));
  q.image = ResolveImage(root, filename);
  PCSWEEP_ASSIGN_OR_RETURN(q.original_question, StringField(record, "original_question", true));
  PCSWEEP_ASSIGN_OR_RETURN(q.answer_text, FirstStringField(record, columns.answer));
  q.answer = ParseAnswer(q.answer_text);
  PCSWEEP_ASSIGN_OR_RETURN(q.paraphrases,
                           ParaphrasesField(record, MissingOpMatch::kInfer, inferred));
  PatientFromMimicPath(filename, q.patient_id, q.study_id);
  for (const char* key : columns.patient) {
    PCSWEEP_ASSIGN_OR_RETURN(std::string subject, StringField(record, key, false));
    if (!subject.empty()) q.patient_id = subject;
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::string study, StringField(record, "study_id", false));
  if (!study.empty()) q.study_id = study;
  PCSWEEP_ASSIGN_OR_RETURN(q.finding, StringField(record, "finding", false));
  PCSWEEP_RETURN_IF_ERROR(CheckQuestionText(q));
  return q;
}

}  // namespace

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "jsonl") return Format::kJsonl;
  if (name == "mimic") return Format::kMimic;
  if (name == "flipbank") return Format::kFlipBank;
  if (name == "hf") return Format::kHfJsonl;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown data format '", name, "' (expected jsonl, mimic, flipbank or hf)"));
}

absl::StatusOr<Format> GuessFormat(const std::string& path) {
  const std::string ext = absl::AsciiStrToLower(fs::path(path).extension().string());
  if (ext == ".jsonl") return Format::kJsonl;
  if (ext == ".json") return Format::kMimic;
  if (ext == ".csv") return Format::kFlipBank;
  return absl::InvalidArgumentError(
      absl::StrCat(path,
                   ": cannot tell the format from the extension; pass jsonl, mimic, "
                   "flipbank or hf"));
}

bool InferOpMatch(const std::string& phenomenon, const std::string& text) {
  if (phenomenon != kNegationPattern) return true;
  const std::string lower = absl::AsciiStrToLower(text);
  for (const char* cue : {"not absent", "not the case", "incorrect", "inaccurate", "false that",
                          "wrong to say", "isn't missing"}) {
    if (absl::StrContains(lower, cue)) return true;  // A double negation keeps the answer.
  }
  for (const char* cue : {"rule out", "ruled out", "exclude", "absent", "is there no ", "free of",
                          "no evidence", "without", "negative for", "isn't", "there is no"}) {
    if (absl::StrContains(lower, cue)) return false;
  }
  return true;
}

namespace {

// Parses one JSON-lines record: a question, nullopt when a filter drops it, or the error that
// makes the record bad.
using JsonLineParser = std::function<absl::StatusOr<std::optional<Question>>(
    const json& record, const std::string& root, LoadReport& report)>;

absl::StatusOr<Dataset> LoadJsonLines(const std::string& path, const LoadOptions& options,
                                      const JsonLineParser& parse) {
  PCSWEEP_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  Dataset out;
  BadRecords bad(options, out.report);
  const std::string root = ImageRootFor(path, options);
  std::istringstream lines(text);
  std::string line;
  size_t line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    ++out.report.records;
    const std::string where = absl::StrCat(path, ":", line_number);
    json record;
    try {
      record = json::parse(line);
    } catch (const json::exception& e) {
      PCSWEEP_RETURN_IF_ERROR(bad.Handle(
          where, absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", e.what()))));
      continue;
    }
    absl::StatusOr<std::optional<Question>> question = parse(record, root, out.report);
    if (question.ok() && question->has_value()) {
      absl::Status image = CheckImage(**question, options);
      if (!image.ok()) question = image;
    }
    if (!question.ok()) {
      PCSWEEP_RETURN_IF_ERROR(bad.Handle(where, question.status()));
      continue;
    }
    if (question->has_value()) out.questions.push_back(**std::move(question));
  }
  return out;
}

const char* FlagName(YesNoFilter filter) {
  return filter == YesNoFilter::kHeuristic ? "is_yesno" : "is_yesno_claude";
}

// The record's yes/no flag for `filter`. Possible errors: InvalidArgument (missing or not a
// boolean).
absl::StatusOr<bool> YesNoFlag(const json& record, YesNoFilter filter) {
  const char* key = FlagName(filter);
  auto it = record.find(key);
  if (it == record.end() || it->is_null()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing key '", key, "' (asked for by the yes/no filter)"));
  }
  return BoolField(*it, key);
}

// A MIMIC-style record under the export's column names, with the yes/no filter applied to the
// question and then to each paraphrase that carries the flag.
absl::StatusOr<std::optional<Question>> ParseHfRecord(const json& record, const std::string& root,
                                                      YesNoFilter filter, LoadReport& report) {
  if (filter != YesNoFilter::kNone && record.is_object()) {
    PCSWEEP_ASSIGN_OR_RETURN(bool yesno, YesNoFlag(record, filter));
    if (!yesno) {
      ++report.filtered_questions;
      return std::nullopt;
    }
  }
  PCSWEEP_ASSIGN_OR_RETURN(Question q,
                           ParseMimicRecord(record, root, kHfColumns, report.inferred_op_match));
  if (filter == YesNoFilter::kNone) return q;
  std::vector<Paraphrase> kept;
  for (size_t i = 0; i < q.paraphrases.size(); ++i) {
    const json& item = record["paraphrases"][i];  // ParaphrasesField keeps the order
    if (item.contains(FlagName(filter))) {
      auto keep = YesNoFlag(item, filter);
      if (!keep.ok()) return Annotate(keep.status(), absl::StrCat("paraphrases[", i, "]"));
      if (!*keep) {
        ++report.filtered_paraphrases;
        continue;
      }
    }
    kept.push_back(std::move(q.paraphrases[i]));
  }
  q.paraphrases = std::move(kept);
  return q;
}

}  // namespace

absl::StatusOr<YesNoFilter> ParseYesNoFilter(const std::string& name) {
  if (name.empty() || name == "none") return YesNoFilter::kNone;
  if (name == "is_yesno") return YesNoFilter::kHeuristic;
  if (name == "is_yesno_claude") return YesNoFilter::kClassifier;
  return absl::InvalidArgumentError(absl::StrCat("unknown yes/no filter '", name,
                                                 "' (expected none, is_yesno or is_yesno_claude)"));
}

absl::StatusOr<Dataset> LoadCanonicalJsonl(const std::string& path, const LoadOptions& options) {
  return LoadJsonLines(path, options,
                       [](const json& record, const std::string& root,
                          LoadReport& report) -> absl::StatusOr<std::optional<Question>> {
                         return ParseCanonicalRecord(record, root, report.inferred_op_match);
                       });
}

absl::StatusOr<Dataset> LoadHfJsonl(const std::string& path, const LoadOptions& options) {
  return LoadJsonLines(path, options,
                       [filter = options.yesno_filter](const json& record, const std::string& root,
                                                       LoadReport& report) {
                         return ParseHfRecord(record, root, filter, report);
                       });
}

absl::StatusOr<Dataset> LoadMimicJson(const std::string& path, const LoadOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": malformed JSON: ", e.what()));
  }
  auto results = document.is_object() ? document.find("results") : document.end();
  if (!document.is_object() || results == document.end() || !results->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected an object with a 'results' array"));
  }
  Dataset out;
  BadRecords bad(options, out.report);
  const std::string root = ImageRootFor(path, options);
  for (size_t i = 0; i < results->size(); ++i) {
    ++out.report.records;
    const std::string where = absl::StrCat(path, ": results[", i, "]");
    auto question =
        ParseMimicRecord((*results)[i], root, kMimicColumns, out.report.inferred_op_match);
    if (question.ok()) {
      absl::Status image = CheckImage(*question, options);
      if (!image.ok()) question = image;
    }
    if (!question.ok()) {
      PCSWEEP_RETURN_IF_ERROR(bad.Handle(where, question.status()));
      continue;
    }
    out.questions.push_back(*std::move(question));
  }
  return out;
}

absl::StatusOr<std::vector<CsvRecord>> ParseCsv(const std::string& text) {
  std::vector<CsvRecord> records;
  size_t pos = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;  // UTF-8 byte-order mark.
  size_t line = 1;
  const size_t n = text.size();
  while (pos < n) {
    CsvRecord record;
    record.line = line;
    std::string field;
    bool end_of_record = false;
    while (!end_of_record) {
      field.clear();
      if (pos < n && text[pos] == '"') {
        const size_t quote_line = line;
        ++pos;
        while (true) {
          if (pos >= n) {
            return absl::InvalidArgumentError(
                absl::StrCat("line ", quote_line, ": unterminated quoted field"));
          }
          char c = text[pos++];
          if (c == '"') {
            if (pos < n && text[pos] == '"') {
              field.push_back('"');
              ++pos;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line;
            field.push_back(c);
          }
        }
        if (pos < n && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r') {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", line, ": unexpected character after a closing quote"));
        }
      } else {
        while (pos < n && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r') {
          if (text[pos] == '"') {
            return absl::InvalidArgumentError(
                absl::StrCat("line ", line, ": quote inside an unquoted field"));
          }
          field.push_back(text[pos++]);
        }
      }
      record.fields.push_back(field);
      if (pos >= n) {
        end_of_record = true;
      } else if (text[pos] == ',') {
        ++pos;
      } else {
        if (text[pos] == '\r') ++pos;
        if (pos < n && text[pos] == '\n') ++pos;
        ++line;
        end_of_record = true;
      }
    }
    const bool blank = record.fields.size() == 1 && record.fields[0].empty();
    if (!blank) records.push_back(std::move(record));
  }
  return records;
}

absl::StatusOr<Dataset> LoadFlipBankCsv(const std::string& path, const LoadOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  auto parsed = ParseCsv(text);
  if (!parsed.ok()) return Annotate(parsed.status(), path);
  std::vector<CsvRecord>& rows = *parsed;
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": empty CSV file"));

  std::map<std::string, size_t> column;
  for (size_t i = 0; i < rows[0].fields.size(); ++i) {
    column[std::string(absl::StripAsciiWhitespace(rows[0].fields[i]))] = i;
  }
  const char* required[] = {"question_id", "image_path", "ground_truth", "original_question",
                            "paraphrase",  "phenomenon", "op_match"};
  for (const char* name : required) {
    if (!column.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", rows[0].line, ": header lacks column '", name, "'"));
    }
  }
  auto optional_column = [&](const char* name) -> long {
    auto it = column.find(name);
    return it == column.end() ? -1 : static_cast<long>(it->second);
  };
  const long patient_col = optional_column("patient_id");
  const long study_col = optional_column("study_id");
  const long finding_col = optional_column("finding");
  const long type_col = optional_column("question_type");

  Dataset out;
  BadRecords bad(options, out.report);
  const std::string root = ImageRootFor(path, options);
  std::unordered_map<std::string, size_t> index_of;
  const size_t width = rows[0].fields.size();
  for (size_t r = 1; r < rows.size(); ++r) {
    const CsvRecord& row = rows[r];
    ++out.report.records;
    const std::string where = absl::StrCat(path, ":", row.line);
    if (row.fields.size() != width) {
      PCSWEEP_RETURN_IF_ERROR(
          bad.Handle(where, absl::InvalidArgumentError(absl::StrCat(
                                "expected ", width, " fields, found ", row.fields.size()))));
      continue;
    }
    auto field = [&](const char* name) { return row.fields[column.at(name)]; };
    auto optional = [&](long col) { return col < 0 ? std::string() : row.fields[col]; };
    Question q;
    q.question_id = std::string(absl::StripAsciiWhitespace(field("question_id")));
    q.image = ResolveImage(root, field("image_path"));
    q.answer_text = field("ground_truth");
    q.answer = ParseAnswer(q.answer_text);
    q.original_question = field("original_question");
    q.patient_id = optional(patient_col);
    q.study_id = optional(study_col);
    q.finding = optional(finding_col);
    q.question_type = optional(type_col);
    absl::Status status = CheckQuestionText(q);
    Paraphrase p;
    p.text = field("paraphrase");
    p.phenomenon = field("phenomenon");
    if (status.ok() && !absl::StripAsciiWhitespace(p.text).empty()) {
      if (p.phenomenon.empty()) status = absl::InvalidArgumentError("empty 'phenomenon'");
      if (status.ok()) {
        auto op = ParseBool(field("op_match"));
        if (op.ok()) {
          p.op_match = *op;
        } else {
          status = op.status();
        }
      }
    }
    auto existing = index_of.find(q.question_id);
    if (status.ok() && existing != index_of.end()) {
      const Question& first = out.questions[existing->second];
      if (first.image != q.image || first.answer_text != q.answer_text ||
          first.original_question != q.original_question) {
        status = absl::InvalidArgumentError(
            absl::StrCat("question '", q.question_id,
                         "' has an image, ground_truth or original_question different from "
                         "its earlier rows"));
      }
    }
    if (status.ok() && existing == index_of.end()) status = CheckImage(q, options);
    if (!status.ok()) {
      PCSWEEP_RETURN_IF_ERROR(bad.Handle(where, status));
      continue;
    }
    if (existing == index_of.end()) {
      index_of.emplace(q.question_id, out.questions.size());
      out.questions.push_back(std::move(q));
      existing = index_of.find(out.questions.back().question_id);
    }
    if (!absl::StripAsciiWhitespace(p.text).empty()) {
      out.questions[existing->second].paraphrases.push_back(std::move(p));
    }
  }
  return out;
}

absl::StatusOr<Dataset> LoadDataset(const std::string& path, Format format,
                                    const LoadOptions& options) {
  switch (format) {
    case Format::kJsonl:
      return LoadCanonicalJsonl(path, options);
    case Format::kMimic:
      return LoadMimicJson(path, options);
    case Format::kFlipBank:
      return LoadFlipBankCsv(path, options);
    case Format::kHfJsonl:
      return LoadHfJsonl(path, options);
  }
  return absl::InvalidArgumentError("unknown format");
}

std::string ToCanonicalJsonLine(const Question& q) {
  nlohmann::ordered_json record;
  record["question_id"] = q.question_id;
  record["image"] = q.image;
  record["answer"] = q.answer_text.empty() ? std::string(AnswerName(q.answer)) : q.answer_text;
  record["original_question"] = q.original_question;
  nlohmann::ordered_json paraphrases = nlohmann::ordered_json::array();
  for (const Paraphrase& p : q.paraphrases) {
    nlohmann::ordered_json item;
    item["text"] = p.text;
    item["phenomenon"] = p.phenomenon;
    item["op_match"] = p.op_match;
    if (!p.wording.empty()) item["wording"] = p.wording;
    paraphrases.push_back(std::move(item));
  }
  record["paraphrases"] = std::move(paraphrases);
  if (!q.patient_id.empty()) record["patient_id"] = q.patient_id;
  if (!q.study_id.empty()) record["study_id"] = q.study_id;
  if (!q.finding.empty()) record["finding"] = q.finding;
  if (!q.question_type.empty()) record["question_type"] = q.question_type;
  if (!q.wording.empty()) record["wording"] = q.wording;
  if (q.subtlety >= 0) record["subtlety"] = q.subtlety;
  return record.dump();
}

absl::Status WriteCanonicalJsonl(const std::string& path, const std::vector<Question>& questions) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  for (const Question& q : questions) out << ToCanonicalJsonLine(q) << '\n';
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace pcsweep::data
