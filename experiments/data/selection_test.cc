#include "experiments/data/selection.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pcsweep::data {
namespace {

// n questions over `patients` patients and 3 findings, alternating answers, each with a
// preserving lexical paraphrase, an inverting negation and a scope paraphrase.
std::vector<Question> MakeQuestions(int n, int patients) {
  const char* findings[] = {"effusion", "nodule", "cardiomegaly"};
  std::vector<Question> out;
  for (int i = 0; i < n; ++i) {
    Question q;
    q.question_id = absl::StrCat("q", i);
    q.patient_id = absl::StrCat("P", i % patients);
    q.image = absl::StrCat("img", i / 2, ".png");
    q.finding = findings[i % 3];
    q.answer = (i / 3) % 3 == 0 ? Answer::kNo : Answer::kYes;  // Unbalanced on purpose.
    q.original_question = absl::StrCat("Is there ", q.finding, "?");
    q.paraphrases = {{"Lexical " + q.finding, "lexical_substitution", true, ""},
                     {"Can it be ruled out?", "negation_pattern", false, ""},
                     {"Any " + q.finding, "scope_quantification", true, ""}};
    out.push_back(q);
  }
  return out;
}

TEST(SelectionTest, YesNoOnlyDropsOtherAnswers) {
  auto questions = MakeQuestions(6, 3);
  questions[2].answer = Answer::kOther;
  auto kept = YesNoOnly(questions);
  ASSERT_EQ(kept.size(), 5u);
  for (const Question& q : kept) EXPECT_TRUE(q.is_yes_no());
}

TEST(SelectionTest, InvertingParaphrasesDroppedOrInverted) {
  auto questions = MakeQuestions(4, 2);
  auto dropped = MakePairs(questions, /*keep_inverting=*/false);
  ASSERT_EQ(dropped.size(), 8u);
  for (const Pair& p : dropped) {
    EXPECT_TRUE(p.op_match);
    EXPECT_EQ(p.label, p.paraphrase_label);
  }
  auto kept = MakePairs(questions, /*keep_inverting=*/true);
  ASSERT_EQ(kept.size(), 12u);
  int inverted = 0;
  for (const Pair& p : kept) {
    if (p.op_match) continue;
    ++inverted;
    EXPECT_EQ(p.paraphrase_label, Invert(p.label));
    EXPECT_EQ(p.phenomenon, "negation_pattern");
    EXPECT_EQ(p.pair_id, p.question_id + "#1");  // Index in the source record.
  }
  EXPECT_EQ(inverted, 4);
}

TEST(SelectionTest, BalancedSubsetIsBalancedPerFinding) {
  auto questions = MakeQuestions(90, 30);
  auto balanced = BalancedSubset(questions, 5);
  std::map<std::string, std::pair<int, int>> counts;
  for (const Question& q : balanced) {
    (q.answer == Answer::kYes ? counts[q.finding].first : counts[q.finding].second)++;
  }
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [finding, c] : counts) {
    EXPECT_EQ(c.first, c.second) << finding;
    EXPECT_GT(c.first, 0) << finding;
  }
  // Deterministic for a seed; another seed picks other yes questions.
  auto again = BalancedSubset(questions, 5);
  auto other = BalancedSubset(questions, 6);
  auto ids = [](const std::vector<Question>& qs) {
    std::vector<std::string> out;
    for (const Question& q : qs) out.push_back(q.question_id);
    return out;
  };
  EXPECT_EQ(ids(balanced), ids(again));
  EXPECT_NE(ids(balanced), ids(other));
}

TEST(SelectionTest, SplitIsDisjointByPatientAndDeterministic) {
  auto questions = MakeQuestions(200, 40);
  Split split = SplitByPatient(questions, 0.25, 11);
  EXPECT_EQ(split.train.size() + split.eval.size(), questions.size());
  std::set<std::string> train_patients, eval_patients;
  for (const Question& q : split.train) train_patients.insert(q.patient_id);
  for (const Question& q : split.eval) eval_patients.insert(q.patient_id);
  for (const std::string& p : eval_patients) EXPECT_EQ(train_patients.count(p), 0u) << p;
  EXPECT_GE(split.eval.size(), 50u);
  EXPECT_LE(split.eval.size(), 55u);  // Whole patients of 5 questions each.

  // Independent of input order.
  auto reversed = questions;
  std::reverse(reversed.begin(), reversed.end());
  Split split2 = SplitByPatient(reversed, 0.25, 11);
  std::set<std::string> eval2;
  for (const Question& q : split2.eval) eval2.insert(q.patient_id);
  EXPECT_EQ(eval_patients, eval2);
  // Another seed, another split.
  Split split3 = SplitByPatient(questions, 0.25, 12);
  std::set<std::string> eval3;
  for (const Question& q : split3.eval) eval3.insert(q.patient_id);
  EXPECT_NE(eval_patients, eval3);
}

TEST(SelectionTest, SplitGroupsByImageWithoutPatient) {
  auto questions = MakeQuestions(40, 1);
  for (Question& q : questions) q.patient_id.clear();
  Split split = SplitByPatient(questions, 0.5, 3);
  std::set<std::string> train_images;
  for (const Question& q : split.train) train_images.insert(q.image);
  for (const Question& q : split.eval) EXPECT_EQ(train_images.count(q.image), 0u);
  EXPECT_EQ(split.eval.size(), 20u);
}

TEST(SelectionTest, FixedNumberOfEvalPairs) {
  auto questions = MakeQuestions(60, 20);
  SelectionOptions options;
  options.max_pairs = 25;
  options.seed = 9;
  auto pairs = SelectPairs(questions, options);
  ASSERT_EQ(pairs.size(), 25u);
  std::set<std::string> ids;
  for (const Pair& p : pairs) {
    EXPECT_TRUE(p.op_match);
    ids.insert(p.pair_id);
  }
  EXPECT_EQ(ids.size(), 25u);
  auto again = SelectPairs(questions, options);
  for (size_t i = 0; i < pairs.size(); ++i) EXPECT_EQ(pairs[i].pair_id, again[i].pair_id);
  options.max_pairs = 0;
  EXPECT_EQ(SelectPairs(questions, options).size(), 120u);
  options.balanced = true;
  for (const Pair& p : SelectPairs(questions, options)) EXPECT_TRUE(p.label != Answer::kOther);
}

TEST(EpochSamplerTest, EachQuestionOncePerEpochWithAUsableParaphrase) {
  auto questions = MakeQuestions(30, 10);
  questions[4].paraphrases.resize(2);
  questions[4].paraphrases[0].op_match = false;  // Only the inverting one left: unusable.
  EpochSampler sampler(questions, /*keep_inverting=*/false, 21);
  EXPECT_EQ(sampler.num_questions(), 29u);
  EXPECT_EQ(sampler.num_unusable(), 1u);
  std::map<std::string, std::set<std::string>> seen;
  std::vector<std::string> first_order;
  for (int epoch = 0; epoch < 8; ++epoch) {
    auto pairs = sampler.Epoch(epoch);
    ASSERT_EQ(pairs.size(), 29u);
    std::set<std::string> qids;
    for (const Pair& p : pairs) {
      EXPECT_TRUE(p.op_match);
      EXPECT_TRUE(qids.insert(p.question_id).second);
      EXPECT_EQ(p.image, questions[std::stoi(p.question_id.substr(1))].image);
      seen[p.question_id].insert(p.pair_id);
      if (epoch == 0) first_order.push_back(p.pair_id);
    }
  }
  // Over 8 epochs the sampler used both usable paraphrases of most questions.
  int both = 0;
  for (const auto& entry : seen) both += entry.second.size() == 2;
  EXPECT_GT(both, 20);
  // Same (seed, epoch), same pairs; another epoch, another order.
  auto again = sampler.Epoch(0);
  for (size_t i = 0; i < again.size(); ++i) EXPECT_EQ(again[i].pair_id, first_order[i]);
  auto next = sampler.Epoch(1);
  bool differs = false;
  for (size_t i = 0; i < next.size(); ++i) differs |= next[i].pair_id != first_order[i];
  EXPECT_TRUE(differs);
}

TEST(EpochSamplerTest, KeepInvertingUsesInvertedLabels) {
  auto questions = MakeQuestions(12, 4);
  EpochSampler sampler(questions, /*keep_inverting=*/true, 1);
  int inverted = 0;
  for (int epoch = 0; epoch < 10; ++epoch) {
    for (const Pair& p : sampler.Epoch(epoch)) {
      if (!p.op_match) {
        ++inverted;
        EXPECT_EQ(p.paraphrase_label, Invert(p.label));
      }
    }
  }
  EXPECT_GT(inverted, 0);
}

}  // namespace
}  // namespace pcsweep::data
