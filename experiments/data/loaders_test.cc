#include "experiments/data/loaders.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::data {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string TestData(const std::string& name) {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  return (fs::path(root ? root : ".") / "experiments/data/testdata" / name).string();
}

TEST(CanonicalJsonlTest, ReadsEveryField) {
  auto dataset = LoadCanonicalJsonl(TestData("canonical.jsonl"), {});
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->questions.size(), 3u);
  EXPECT_EQ(dataset->report.records, 3u);
  const Question& q1 = dataset->questions[0];
  EXPECT_EQ(q1.question_id, "q1");
  EXPECT_EQ(q1.answer, Answer::kYes);
  EXPECT_EQ(q1.original_question, "Is there pleural effusion?");
  EXPECT_EQ(q1.patient_id, "P1");
  EXPECT_EQ(q1.study_id, "S1");
  EXPECT_EQ(q1.finding, "effusion");
  EXPECT_EQ(fs::path(q1.image), fs::path(TestData("images/img_a.png")).lexically_normal());
  ASSERT_EQ(q1.paraphrases.size(), 3u);
  EXPECT_EQ(q1.paraphrases[1].phenomenon, "negation_pattern");
  EXPECT_FALSE(q1.paraphrases[1].op_match);
  EXPECT_TRUE(q1.paraphrases[0].op_match);
  // Numeric ids become strings; a missing op_match means the answer is preserved.
  const Question& q2 = dataset->questions[1];
  EXPECT_EQ(q2.question_id, "2");
  EXPECT_EQ(q2.answer, Answer::kNo);
  EXPECT_TRUE(q2.paraphrases[0].op_match);
  const Question& q3 = dataset->questions[2];
  EXPECT_EQ(q3.answer, Answer::kOther);
  EXPECT_EQ(q3.answer_text, "left");
  EXPECT_EQ(q3.group_key(), q3.image);  // No patient: grouped by image.
}

TEST(CanonicalJsonlTest, BadRecordIsAnErrorWithFileAndLine) {
  auto dataset = LoadCanonicalJsonl(TestData("canonical_bad.jsonl"), {});
  ASSERT_THAT(dataset, StatusIs(absl::StatusCode::kInvalidArgument,
                                "canonical_bad.jsonl:2: malformed JSON:"));
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dataset.status().message(), HasSubstr("canonical_bad.jsonl:2: malformed JSON"));
}

TEST(CanonicalJsonlTest, SkipBadCountsAndKeepsReasons) {
  LoadOptions options;
  options.skip_bad = true;
  options.max_reasons = 3;
  auto dataset = LoadCanonicalJsonl(TestData("canonical_bad.jsonl"), options);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->questions.size(), 2u);
  EXPECT_EQ(dataset->questions[0].question_id, "ok1");
  EXPECT_EQ(dataset->questions[1].question_id, "ok2");
  EXPECT_EQ(dataset->report.records, 6u);
  EXPECT_EQ(dataset->report.skipped, 4u);
  ASSERT_EQ(dataset->report.first_reasons.size(), 3u);
  EXPECT_THAT(dataset->report.first_reasons[0], HasSubstr("canonical_bad.jsonl:2:"));
  EXPECT_THAT(dataset->report.first_reasons[1],
              HasSubstr("canonical_bad.jsonl:3: missing key 'image'"));
  EXPECT_THAT(dataset->report.first_reasons[2],
              HasSubstr("canonical_bad.jsonl:4: image not found"));
}

TEST(CanonicalJsonlTest, BadOpMatchNamesTheParaphrase) {
  LoadOptions options;
  options.skip_bad = true;
  options.max_reasons = 10;
  auto dataset = LoadCanonicalJsonl(TestData("canonical_bad.jsonl"), options);
  ASSERT_TRUE(dataset.ok());
  ASSERT_EQ(dataset->report.first_reasons.size(), 4u);
  EXPECT_THAT(dataset->report.first_reasons[3],
              HasSubstr("canonical_bad.jsonl:5: paraphrases[0]: op_match must be true/false"));
}

TEST(CanonicalJsonlTest, MissingImagesAcceptedWithoutCheck) {
  LoadOptions options;
  options.check_images = false;
  options.skip_bad = true;
  auto dataset = LoadCanonicalJsonl(TestData("canonical_bad.jsonl"), options);
  ASSERT_TRUE(dataset.ok());
  EXPECT_EQ(dataset->questions.size(), 3u);  // "missingimage" is kept.
}

TEST(CanonicalJsonlTest, MissingFileIsNotFound) {
  auto dataset = LoadCanonicalJsonl(TestData("nope.jsonl"), {});
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(dataset.status().message(), HasSubstr("nope.jsonl"));
}

TEST(CanonicalJsonlTest, WriteThenReadRoundTrips) {
  auto dataset = LoadCanonicalJsonl(TestData("canonical.jsonl"), {});
  ASSERT_TRUE(dataset.ok());
  const std::string path = ::testing::TempDir() + "/roundtrip.jsonl";
  ASSERT_TRUE(WriteCanonicalJsonl(path, dataset->questions).ok());
  auto again = LoadCanonicalJsonl(path, {});
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->questions.size(), dataset->questions.size());
  for (size_t i = 0; i < again->questions.size(); ++i) {
    EXPECT_EQ(ToCanonicalJsonLine(again->questions[i]), ToCanonicalJsonLine(dataset->questions[i]));
  }
}

TEST(MimicJsonTest, ReadsRecordsAndPatientFromPath) {
  LoadOptions options;
  options.image_root = TestData("mimic");
  auto dataset = LoadMimicJson(TestData("mimic_split.json"), options);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->questions.size(), 2u);
  const Question& q = dataset->questions[0];
  EXPECT_EQ(q.question_id, "101");
  EXPECT_EQ(q.question_type, "presence");
  EXPECT_EQ(q.answer, Answer::kNo);
  EXPECT_EQ(q.patient_id, "p10000032");
  EXPECT_EQ(q.study_id, "s50414267");
  EXPECT_EQ(fs::path(q.image),
            fs::path(TestData("mimic/files/p10/p10000032/s50414267/view1.png")).lexically_normal());
  ASSERT_EQ(q.paraphrases.size(), 3u);
  // op_match is inferred: "ruled out" inverts, the double negation does not.
  EXPECT_TRUE(q.paraphrases[0].op_match);
  EXPECT_FALSE(q.paraphrases[1].op_match);
  EXPECT_TRUE(q.paraphrases[2].op_match);
  EXPECT_EQ(dataset->report.inferred_op_match, 4u);
  EXPECT_EQ(dataset->questions[1].answer, Answer::kOther);
}

TEST(MimicJsonTest, ImagesResolvedAgainstImageRoot) {
  // The default root is the JSON's folder; these images live under testdata/mimic.
  auto default_root = LoadMimicJson(TestData("mimic_split.json"), {});
  ASSERT_THAT(default_root, StatusIs(absl::StatusCode::kInvalidArgument,
                                     "mimic_split.json: results[0]: image not found:"));
  EXPECT_THAT(default_root.status().message(), HasSubstr("results[0]: image not found"));
  LoadOptions options;
  options.image_root = TestData("mimic");
  auto dataset = LoadMimicJson(TestData("mimic_split.json"), options);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_TRUE(fs::exists(dataset->questions[0].image));
}

TEST(MimicJsonTest, BadRecordNamesIndex) {
  LoadOptions options;
  options.image_root = TestData("mimic");
  auto dataset = LoadMimicJson(TestData("mimic_bad.json"), options);
  ASSERT_THAT(dataset, StatusIs(absl::StatusCode::kInvalidArgument,
                                "mimic_bad.json: results[1]: missing key 'filename'"));
  EXPECT_THAT(dataset.status().message(),
              HasSubstr("mimic_bad.json: results[1]: missing key 'filename'"));
  options.skip_bad = true;
  dataset = LoadMimicJson(TestData("mimic_bad.json"), options);
  ASSERT_TRUE(dataset.ok());
  EXPECT_EQ(dataset->questions.size(), 1u);
  EXPECT_EQ(dataset->report.skipped, 2u);
  EXPECT_THAT(dataset->report.first_reasons[1],
              HasSubstr("results[2]: paraphrases[0]: missing key 'phenomenon'"));
}

TEST(MimicJsonTest, NotAnObjectWithResults) {
  const std::string path = ::testing::TempDir() + "/no_results.json";
  {
    std::ofstream out(path);
    out << "[1, 2]";
  }
  auto dataset = LoadMimicJson(path, {});
  ASSERT_THAT(dataset, StatusIs(absl::StatusCode::kInvalidArgument,
                                "no_results.json: expected an object with a 'results' array"));
  EXPECT_THAT(dataset.status().message(), HasSubstr("'results' array"));
}

TEST(FlipBankCsvTest, GroupsRowsIntoQuestionsWithRfc4180Quoting) {
  auto dataset = LoadFlipBankCsv(TestData("flipbank.csv"), {});
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->report.records, 5u);
  ASSERT_EQ(dataset->questions.size(), 2u);
  const Question& pc1 = dataset->questions[0];
  EXPECT_EQ(pc1.question_id, "pc1");
  EXPECT_EQ(pc1.answer, Answer::kYes);
  EXPECT_EQ(pc1.finding, "nodule");
  ASSERT_EQ(pc1.paraphrases.size(), 3u);  // Rows 2, 3 and 7: grouped though not adjacent.
  EXPECT_EQ(pc1.paraphrases[0].text, "Is there a nodule, a small round opacity?");
  EXPECT_EQ(pc1.paraphrases[1].text, "Is there a \"spot\" on the lung?");
  EXPECT_EQ(pc1.paraphrases[2].phenomenon, "syntactic_restructuring");
  const Question& pc2 = dataset->questions[1];
  ASSERT_EQ(pc2.paraphrases.size(), 2u);
  EXPECT_FALSE(pc2.paraphrases[0].op_match);
  EXPECT_EQ(pc2.paraphrases[1].text, "Is there fluid\r\nat the lung base?");
  EXPECT_TRUE(pc2.paraphrases[1].op_match);
}

TEST(FlipBankCsvTest, BadRowsNameFileAndLine) {
  auto dataset = LoadFlipBankCsv(TestData("flipbank_bad.csv"), {});
  ASSERT_THAT(dataset, StatusIs(absl::StatusCode::kInvalidArgument,
                                "flipbank_bad.csv:3: expected 7 fields, found 6"));
  EXPECT_THAT(dataset.status().message(),
              HasSubstr("flipbank_bad.csv:3: expected 7 fields, found 6"));

  LoadOptions options;
  options.skip_bad = true;
  options.max_reasons = 10;
  dataset = LoadFlipBankCsv(TestData("flipbank_bad.csv"), options);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->report.skipped, 4u);
  ASSERT_EQ(dataset->report.first_reasons.size(), 4u);
  EXPECT_THAT(dataset->report.first_reasons[1], HasSubstr("flipbank_bad.csv:4: op_match"));
  EXPECT_THAT(dataset->report.first_reasons[2], HasSubstr("flipbank_bad.csv:5: question 'b1'"));
  EXPECT_THAT(dataset->report.first_reasons[3], HasSubstr("flipbank_bad.csv:6: image not found"));
  ASSERT_EQ(dataset->questions.size(), 2u);
  EXPECT_EQ(dataset->questions[0].paraphrases.size(), 1u);
  EXPECT_EQ(dataset->questions[1].question_id, "b3");
}

TEST(FlipBankCsvTest, HeaderMustHaveTheColumns) {
  const std::string path = ::testing::TempDir() + "/header.csv";
  {
    std::ofstream out(path);
    out << "question_id,image_path,ground_truth\nq,a.png,yes\n";
  }
  auto dataset = LoadFlipBankCsv(path, {});
  ASSERT_THAT(dataset, StatusIs(absl::StatusCode::kInvalidArgument,
                                "header.csv:1: header lacks column 'original_question'"));
  EXPECT_THAT(dataset.status().message(), HasSubstr(":1: header lacks column 'original_question'"));
}

TEST(CsvTest, ParsesQuotesNewlinesAndLineNumbers) {
  auto records = ParseCsv("a,b\r\n\"x,1\",\"he said \"\"hi\"\"\"\n\"multi\nline\",z\n\nlast,");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 4u);
  EXPECT_EQ((*records)[1].fields, (std::vector<std::string>{"x,1", "he said \"hi\""}));
  EXPECT_EQ((*records)[1].line, 2u);
  EXPECT_EQ((*records)[2].fields[0], "multi\nline");
  EXPECT_EQ((*records)[2].line, 3u);
  EXPECT_EQ((*records)[3].line, 6u);
  EXPECT_EQ((*records)[3].fields, (std::vector<std::string>{"last", ""}));
}

TEST(CsvTest, UnterminatedQuoteIsAnError) {
  auto records = ParseCsv("a,b\n\"open,field\n");
  ASSERT_THAT(records,
              StatusIs(absl::StatusCode::kInvalidArgument, "line 2: unterminated quoted field"));
  EXPECT_THAT(records.status().message(), HasSubstr("line 2: unterminated quoted field"));
  records = ParseCsv("a,b\nx\"y,z\n");
  ASSERT_THAT(records, StatusIs(absl::StatusCode::kInvalidArgument,
                                "line 2: quote inside an unquoted field"));
  EXPECT_THAT(records.status().message(), HasSubstr("line 2"));
}

TEST(InferOpMatchTest, NegationCues) {
  EXPECT_FALSE(InferOpMatch("negation_pattern", "Can X be ruled out?"));
  EXPECT_FALSE(InferOpMatch("negation_pattern", "Is the study negative for X?"));
  EXPECT_FALSE(InferOpMatch("negation_pattern", "Is X absent?"));
  EXPECT_TRUE(InferOpMatch("negation_pattern", "Is it not the case that X is absent?"));
  EXPECT_TRUE(InferOpMatch("negation_pattern", "Is there X?"));
  EXPECT_TRUE(InferOpMatch("scope_quantification", "Can X be ruled out?"));
}

TEST(HfJsonlTest, ReadsTheDatasetsExportWithItsAlternativeColumnNames) {
  auto dataset = LoadHfJsonl(TestData("psfmed_hf.jsonl"), {});
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->questions.size(), 3u);
  const Question& m1 = dataset->questions[0];
  EXPECT_EQ(m1.answer, Answer::kNo);
  EXPECT_EQ(m1.patient_id, "p10000032");  // from the MIMIC path, as in the split JSON
  EXPECT_EQ(m1.study_id, "s50414267");
  ASSERT_EQ(m1.paraphrases.size(), 3u);
  EXPECT_FALSE(m1.paraphrases[1].op_match);  // inferred: "ruled out" inverts the answer
  EXPECT_EQ(dataset->report.inferred_op_match, 4u);
  const Question& p7 = dataset->questions[1];
  EXPECT_EQ(p7.answer, Answer::kYes);  // ground_truth
  EXPECT_EQ(fs::path(p7.image), fs::path(TestData("images/img_a.png")).lexically_normal());
  EXPECT_EQ(dataset->questions[2].answer, Answer::kOther);
  EXPECT_EQ(dataset->report.filtered_questions, 0u);
}

TEST(HfJsonlTest, YesNoFilterDropsQuestionsAndParaphrasesByTheChosenFlag) {
  LoadOptions claude;
  claude.yesno_filter = YesNoFilter::kClassifier;
  auto by_claude = LoadDataset(TestData("psfmed_hf.jsonl"), Format::kHfJsonl, claude);
  ASSERT_TRUE(by_claude.ok()) << by_claude.status();
  ASSERT_EQ(by_claude->questions.size(), 2u);
  EXPECT_EQ(by_claude->questions[0].paraphrases.size(), 2u);  // "Describe ..." dropped
  EXPECT_EQ(by_claude->report.filtered_questions, 1u);
  EXPECT_EQ(by_claude->report.filtered_paraphrases, 1u);

  LoadOptions heuristic;
  heuristic.yesno_filter = YesNoFilter::kHeuristic;
  auto by_regex = LoadHfJsonl(TestData("psfmed_hf.jsonl"), heuristic);
  ASSERT_TRUE(by_regex.ok()) << by_regex.status();
  ASSERT_EQ(by_regex->questions.size(), 2u);
  EXPECT_EQ(by_regex->questions[0].paraphrases.size(), 3u);  // its is_yesno is true
  EXPECT_EQ(by_regex->report.filtered_paraphrases, 0u);
}

TEST(HfJsonlTest, BadRecordsNameFileLineAndKey) {
  LoadOptions claude;
  claude.yesno_filter = YesNoFilter::kClassifier;
  EXPECT_THAT(LoadHfJsonl(TestData("psfmed_hf_bad.jsonl"), claude),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "psfmed_hf_bad.jsonl:1: missing key 'is_yesno_claude' (asked for by the "
                       "yes/no filter)"));
  claude.skip_bad = true;
  auto skipped = LoadHfJsonl(TestData("psfmed_hf_bad.jsonl"), claude);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->report.skipped, 2u);
  ASSERT_EQ(skipped->report.first_reasons.size(), 2u);
  EXPECT_THAT(skipped->report.first_reasons[1],
              HasSubstr("psfmed_hf_bad.jsonl:2: missing key 'filename' or 'image_path' or "
                        "'image'"));
  LoadOptions regex;
  regex.yesno_filter = YesNoFilter::kHeuristic;
  regex.skip_bad = true;
  auto bad_flag = LoadHfJsonl(TestData("psfmed_hf_bad.jsonl"), regex);
  ASSERT_TRUE(bad_flag.ok());
  ASSERT_EQ(bad_flag->report.first_reasons.size(), 2u);
  EXPECT_THAT(bad_flag->report.first_reasons[1],
              HasSubstr("psfmed_hf_bad.jsonl:3: is_yesno must be true/false, found 'maybe'"));
}

TEST(HfJsonlTest, ParsesTheFilterNames) {
  for (const auto& [name, filter] : std::vector<std::pair<std::string, YesNoFilter>>{
           {"is_yesno", YesNoFilter::kHeuristic},
           {"is_yesno_claude", YesNoFilter::kClassifier},
           {"", YesNoFilter::kNone},
           {"none", YesNoFilter::kNone}}) {
    auto parsed = ParseYesNoFilter(name);
    ASSERT_TRUE(parsed.ok()) << name;
    EXPECT_EQ(*parsed, filter) << name;
  }
  EXPECT_THAT(ParseYesNoFilter("claude"),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown yes/no filter 'claude'"));
  auto hf = ParseFormat("hf");
  ASSERT_TRUE(hf.ok());
  EXPECT_EQ(*hf, Format::kHfJsonl);
}

TEST(FormatTest, ParseAndGuess) {
  EXPECT_EQ(*ParseFormat("flipbank"), Format::kFlipBank);
  EXPECT_THAT(ParseFormat("parquet"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown data format 'parquet' (expected jsonl, mimic, flipbank or hf)"));
  EXPECT_EQ(*GuessFormat("x/y.jsonl"), Format::kJsonl);
  EXPECT_EQ(*GuessFormat("x/y.json"), Format::kMimic);
  EXPECT_EQ(*GuessFormat("x/y.CSV"), Format::kFlipBank);
  EXPECT_THAT(GuessFormat("x/y.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "y.txt: cannot tell the format from the extension; pass"));
}

}  // namespace
}  // namespace pcsweep::data
