#include "experiments/data/synth.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "common/testing/status_matchers.h"
#include "experiments/data/loaders.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stb/stb_image.h"

namespace pcsweep::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

SynthOptions SmallOptions(uint64_t seed) {
  SynthOptions o;
  o.seed = seed;
  o.image_size = 24;
  o.pretrain_questions = 700;
  o.train_questions = 120;
  o.eval_mimic_questions = 60;
  o.eval_balanced_questions = 50;
  return o;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Relative path -> bytes of every file under root.
std::map<std::string, std::string> AllFiles(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), root).string()] = ReadFile(entry.path());
    }
  }
  return files;
}

// Generated once per seed for the whole suite (generation is the slow part).
class SynthTest : public ::testing::Test {
 protected:
  static fs::path Generate(const SynthOptions& options, const std::string& name) {
    // Per process: ctest may run several tests of this suite at once.
    const fs::path dir = fs::path(::testing::TempDir()) /
                         ("pcsweep_synth_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    auto summary = GenerateSyntheticBenchmark(options, dir.string());
    EXPECT_TRUE(summary.ok()) << summary.status();
    return dir;
  }
  // Generated lazily: ctest runs every test in its own process.
  static const fs::path& First() { return Lazy(first_, 7, "a"); }
  static const fs::path& Second() { return Lazy(second_, 7, "b"); }
  static const fs::path& OtherSeed() { return Lazy(other_seed_, 8, "c"); }
  static const fs::path& Lazy(fs::path*& slot, uint64_t seed, const std::string& name) {
    if (slot == nullptr) slot = new fs::path(Generate(SmallOptions(seed), name));
    return *slot;
  }
  static void TearDownTestSuite() {
    for (fs::path** p : {&first_, &second_, &other_seed_}) {
      if (*p == nullptr) continue;
      fs::remove_all(**p);
      delete *p;
      *p = nullptr;
    }
  }
  static std::vector<Question> Load(const std::string& split) {
    auto dataset = LoadCanonicalJsonl((First() / (split + ".jsonl")).string(), {});
    EXPECT_TRUE(dataset.ok()) << dataset.status();
    return dataset.ok() ? dataset->questions : std::vector<Question>{};
  }
  static fs::path* first_;
  static fs::path* second_;
  static fs::path* other_seed_;
};
fs::path* SynthTest::first_ = nullptr;
fs::path* SynthTest::second_ = nullptr;
fs::path* SynthTest::other_seed_ = nullptr;

TEST_F(SynthTest, ByteForByteDeterministicForASeed) {
  const auto a = AllFiles(First());
  const auto b = AllFiles(Second());
  ASSERT_GT(a.size(), 300u);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, bytes] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << name;
    EXPECT_TRUE(it->second == bytes) << name << " differs between two runs";
  }
}

TEST_F(SynthTest, DifferentSeedsDiffer) {
  const auto a = AllFiles(First());
  const auto c = AllFiles(OtherSeed());
  for (const char* name : {"pretrain.jsonl", "train.jsonl", "eval_mimic.jsonl"}) {
    EXPECT_NE(a.at(name), c.at(name)) << name;
  }
  const std::string image = "images/train/train-p00000_s0.png";
  ASSERT_TRUE(a.count(image) && c.count(image));
  EXPECT_NE(a.at(image), c.at(image));
}

TEST_F(SynthTest, FingerprintIsEqualForEqualFoldersAndChangesWithOneByte) {
  const absl::StatusOr<std::string> a = BenchmarkFingerprint(First().string());
  const absl::StatusOr<std::string> b = BenchmarkFingerprint(Second().string());
  const absl::StatusOr<std::string> c = BenchmarkFingerprint(OtherSeed().string());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok()) << a.status() << b.status() << c.status();
  EXPECT_EQ(a->size(), 16u);
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  const fs::path copy = fs::path(::testing::TempDir()) / "fingerprint_copy";
  fs::remove_all(copy);
  fs::copy(First(), copy, fs::copy_options::recursive);
  EXPECT_EQ(*BenchmarkFingerprint(copy.string()), *a);
  std::ofstream(copy / "train.jsonl", std::ios::app) << " ";
  EXPECT_NE(*BenchmarkFingerprint(copy.string()), *a);
  fs::remove_all(copy);
  EXPECT_THAT(
      BenchmarkFingerprint(copy.string()),
      ::pcsweep::testutil::StatusIs(absl::StatusCode::kNotFound, "no such benchmark folder"));
}

TEST_F(SynthTest, SplitsHaveTheRequestedSizesAndLoad) {
  const SynthOptions o = SmallOptions(7);
  EXPECT_EQ(Load("pretrain").size(), o.pretrain_questions);
  EXPECT_EQ(Load("train").size(), o.train_questions);
  EXPECT_EQ(Load("eval_mimic").size(), o.eval_mimic_questions);
  EXPECT_EQ(Load("eval_balanced").size(), o.eval_balanced_questions);
  LoadOptions mimic;
  auto dataset = LoadMimicJson((First() / "eval_mimic.json").string(), mimic);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->questions.size(), o.eval_mimic_questions);
  EXPECT_EQ(dataset->report.inferred_op_match, 0u);  // op_match is written out.
}

TEST_F(SynthTest, ImagesArePngsOfTheConfiguredSize) {
  const std::string png = ReadFile(First() / "images/eval_balanced/eval_balanced-p00000_s0.png");
  int w = 0, h = 0, channels = 0;
  unsigned char* pixels = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                                static_cast<int>(png.size()), &w, &h, &channels, 0);
  ASSERT_NE(pixels, nullptr);
  EXPECT_EQ(w, 24);
  EXPECT_EQ(h, 24);
  EXPECT_EQ(channels, 1);
  stbi_image_free(pixels);
}

TEST_F(SynthTest, EverySplitCoversEveryPhenomenon) {
  for (const char* split : kSplits) {
    std::map<std::string, int> count;
    for (const Question& q : Load(split)) {
      for (const Paraphrase& p : q.paraphrases) ++count[p.phenomenon];
    }
    for (std::string_view phenomenon : kAllPhenomena) {
      EXPECT_GT(count[std::string(phenomenon)], 0) << split << " " << phenomenon;
    }
  }
}

TEST_F(SynthTest, OnlyAnswerInvertingNegationsHaveOpMatchFalse) {
  int inverting = 0, double_negations = 0;
  for (const char* split : kSplits) {
    for (const Question& q : Load(split)) {
      for (const Paraphrase& p : q.paraphrases) {
        if (!p.op_match) {
          EXPECT_EQ(p.phenomenon, kNegationPattern) << p.text;
          ++inverting;
        }
        if (p.phenomenon == kNegationPattern) {
          double_negations += p.op_match;
          // The MIMIC-layout heuristic reads the same flag from the text.
          EXPECT_EQ(InferOpMatch(p.phenomenon, p.text), p.op_match) << p.text;
        }
      }
    }
  }
  EXPECT_GT(inverting, 0);
  EXPECT_GT(double_negations, 0);
}

TEST_F(SynthTest, SplitsAreDisjointByPatientAndImage) {
  std::map<std::string, std::string> patient_split, image_split;
  for (const char* split : kSplits) {
    for (const Question& q : Load(split)) {
      auto [it, inserted] = patient_split.emplace(q.patient_id, split);
      EXPECT_EQ(it->second, split) << q.patient_id;
      auto [it2, inserted2] = image_split.emplace(q.image, split);
      EXPECT_EQ(it2->second, split) << q.image;
    }
  }
}

TEST_F(SynthTest, BalancedSplitIsBalancedPerFinding) {
  std::map<std::string, std::pair<int, int>> counts;
  for (const Question& q : Load("eval_balanced")) {
    ASSERT_TRUE(q.is_yes_no());
    (q.answer == Answer::kYes ? counts[q.finding].first : counts[q.finding].second)++;
  }
  ASSERT_EQ(counts.size(), 5u);
  for (const auto& [finding, c] : counts) EXPECT_EQ(c.first, c.second) << finding;
}

TEST_F(SynthTest, EvalMimicHasSomeNonBinaryQuestions) {
  int other = 0;
  for (const Question& q : Load("eval_mimic")) {
    if (q.answer != Answer::kOther) continue;
    ++other;
    EXPECT_EQ(q.question_type, "location");
    EXPECT_TRUE(q.answer_text == "left" || q.answer_text == "right") << q.answer_text;
  }
  EXPECT_GT(other, 0);
}

// Shares of the registers of the texts of a split, by the answer each text expects.
struct WordingStats {
  std::map<Answer, std::map<std::string, int>> counts;
  double Share(Answer a, const std::string& wording) const {
    int total = 0;
    for (const auto& [w, n] : counts.at(a)) total += n;
    auto it = counts.at(a).find(wording);
    return it == counts.at(a).end() ? 0.0 : static_cast<double>(it->second) / total;
  }
};

WordingStats Wording(const std::vector<Question>& questions, bool with_originals) {
  WordingStats stats;
  for (const Question& q : questions) {
    if (!q.is_yes_no()) continue;
    if (with_originals) ++stats.counts[q.answer][q.wording];
    for (const Paraphrase& p : q.paraphrases) {
      ++stats.counts[p.op_match ? q.answer : Invert(q.answer)][p.wording];
    }
  }
  return stats;
}

TEST_F(SynthTest, PretrainWordingCorrelatesWithAnswersAsConfigured) {
  const SynthOptions o = SmallOptions(7);
  const WordingStats stats = Wording(Load("pretrain"), /*with_originals=*/true);
  const double counter = 1 - o.pretrain_aligned - o.pretrain_neutral;
  // About 2,100 texts per answer: a binomial share has a standard error below 0.01.
  EXPECT_NEAR(stats.Share(Answer::kYes, "formal"), o.pretrain_aligned, 0.04);
  EXPECT_NEAR(stats.Share(Answer::kNo, "casual"), o.pretrain_aligned, 0.04);
  EXPECT_NEAR(stats.Share(Answer::kYes, "neutral"), o.pretrain_neutral, 0.04);
  EXPECT_NEAR(stats.Share(Answer::kYes, "casual"), counter, 0.04);
  EXPECT_NEAR(stats.Share(Answer::kNo, "formal"), counter, 0.04);
  EXPECT_GT(stats.Share(Answer::kNo, "formal"), 0.0);  // Counter-examples exist.
}

TEST_F(SynthTest, LoraAndEvalSplitsHaveNoWordingBias) {
  // Pooled over the unbiased splits: about 600 texts per answer, standard error about 0.02.
  std::vector<Question> pooled;
  for (const char* split : {"train", "eval_mimic", "eval_balanced"}) {
    for (Question& q : Load(split)) pooled.push_back(std::move(q));
  }
  const WordingStats stats = Wording(pooled, /*with_originals=*/false);
  for (const char* wording : {"formal", "neutral", "casual"}) {
    EXPECT_NEAR(stats.Share(Answer::kYes, wording), 1.0 / 3, 0.07) << wording;
    EXPECT_NEAR(stats.Share(Answer::kNo, wording), 1.0 / 3, 0.07) << wording;
  }
  for (const Question& q : Load("eval_balanced")) EXPECT_EQ(q.wording, "neutral");
}

TEST_F(SynthTest, SubtletyFollowsTheConfiguredMixture) {
  const SynthOptions o = SmallOptions(7);
  int present = 0, ambiguous = 0;
  for (const Question& q : Load("pretrain")) {
    if (q.answer != Answer::kYes) {
      EXPECT_LT(q.subtlety, 0);
      continue;
    }
    ++present;
    ASSERT_GE(q.subtlety, 0);
    ASSERT_LE(q.subtlety, 1);
    if (q.subtlety >= o.ambiguous_subtlety_min) {
      ++ambiguous;
    } else {
      EXPECT_LE(q.subtlety, o.clear_subtlety_max + 1e-9);
    }
  }
  EXPECT_NEAR(static_cast<double>(ambiguous) / present, o.ambiguous_fraction, 0.05);
}

TEST_F(SynthTest, CorpusHoldsEveryQuestionText) {
  std::set<std::string> corpus;
  std::istringstream lines(ReadFile(First() / "corpus.txt"));
  for (std::string line; std::getline(lines, line);) corpus.insert(line);
  for (const char* word : {"yes", "no", "Yes", "No"}) EXPECT_TRUE(corpus.count(word)) << word;
  for (const char* split : kSplits) {
    for (const Question& q : Load(split)) {
      EXPECT_TRUE(corpus.count(q.original_question)) << q.original_question;
      for (const Paraphrase& p : q.paraphrases) EXPECT_TRUE(corpus.count(p.text)) << p.text;
    }
  }
}

TEST(SynthBiasScopeTest, AmbiguousOnlyBiasLeavesClearImagesUnbiased) {
  SynthOptions o = SmallOptions(3);
  o.image_size = 16;
  o.train_questions = o.eval_mimic_questions = o.eval_balanced_questions = 10;
  o.pretrain_questions = 1200;
  o.pretrain_bias_ambiguous_only = true;
  const fs::path dir = fs::path(::testing::TempDir()) / "pcsweep_synth_scope";
  fs::remove_all(dir);
  ASSERT_TRUE(GenerateSyntheticBenchmark(o, dir.string()).ok());
  auto dataset = LoadCanonicalJsonl((dir / "pretrain.jsonl").string(), {});
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  std::vector<Question> clear, ambiguous;
  for (const Question& q : dataset->questions) {
    if (q.answer != Answer::kYes) continue;
    (q.subtlety >= o.ambiguous_subtlety_min ? ambiguous : clear).push_back(q);
  }
  const WordingStats clear_stats = Wording(clear, /*with_originals=*/false);
  const WordingStats ambiguous_stats = Wording(ambiguous, /*with_originals=*/false);
  // Preserving paraphrases of clear "yes" questions: registers at 1/3 each.
  EXPECT_NEAR(clear_stats.Share(Answer::kYes, "formal"), 1.0 / 3, 0.06);
  EXPECT_NEAR(ambiguous_stats.Share(Answer::kYes, "formal"), o.pretrain_aligned, 0.06);
  fs::remove_all(dir);
}

TEST(RenderTest, FindingsChangePixelsMoreWhenLessSubtle) {
  for (int f = 0; f < kNumFindings; ++f) {
    FindingDraw none[kNumFindings];
    const std::vector<uint8_t> base = RenderRadiograph(64, 42, none);
    double previous = -1;
    for (double strength : {0.05, 0.5, 1.0}) {
      FindingDraw draws[kNumFindings];
      draws[f].drawn = true;
      draws[f].strength = strength;
      draws[f].side = 1;
      draws[f].pos_u = 0.1;
      draws[f].pos_v = 0.55;
      const std::vector<uint8_t> img = RenderRadiograph(64, 42, draws);
      double change = 0;
      int largest = 0;
      for (size_t i = 0; i < img.size(); ++i) {
        change += std::abs(int(img[i]) - int(base[i]));
        largest = std::max(largest, std::abs(int(img[i]) - int(base[i])));
      }
      EXPECT_GT(change, previous) << kFindings[f] << " at strength " << strength;
      previous = change;
      if (strength == 1.0) {
        EXPECT_GT(largest, 40) << kFindings[f] << " hardly visible";
      }
      if (strength == 0.05) {
        EXPECT_LT(largest, 40) << kFindings[f] << " too visible";
      }
    }
  }
}

TEST(RenderTest, ConspicuousNodulesAndConsolidationsChangeMorePixels) {
  FindingDraw none[kNumFindings];
  const std::vector<uint8_t> base = RenderRadiograph(64, 42, none);
  for (int f : {3, 4}) {
    double change[2] = {0, 0};
    for (int conspicuous = 0; conspicuous < 2; ++conspicuous) {
      FindingDraw draws[kNumFindings];
      draws[f] = {true, 0.9, 1, 0.0, 0.5, conspicuous == 1};
      const std::vector<uint8_t> img = RenderRadiograph(64, 42, draws);
      for (size_t i = 0; i < img.size(); ++i) change[conspicuous] += std::abs(img[i] - base[i]);
    }
    EXPECT_GT(change[1], 1.5 * change[0]) << kFindings[f];
  }
}

TEST_F(SynthTest, ConspicuousFindingsOnlyRedrawImagesThatShowThem) {
  SynthOptions o = SmallOptions(7);  // First()'s options
  o.conspicuous_findings = true;
  const fs::path dir = Generate(o, "conspicuous");
  ASSERT_FALSE(HasFailure());
  // Same questions and answers; only images with a nodule or consolidation differ.
  EXPECT_EQ(ReadFile(dir / "train.jsonl"), ReadFile(First() / "train.jsonl"));
  int changed = 0, total = 0;
  for (const auto& entry : fs::directory_iterator(First() / "images" / "train")) {
    ++total;
    if (ReadFile(entry.path()) != ReadFile(dir / "images" / "train" / entry.path().filename()))
      ++changed;
  }
  EXPECT_GT(changed, 0);
  EXPECT_LT(changed, total);
  fs::remove_all(dir);
}

TEST(RenderTest, LooksLikeAChestFilm) {
  FindingDraw none[kNumFindings];
  const std::vector<uint8_t> img = RenderRadiograph(64, 3, none);
  auto at = [&](double x, double y) { return img[int(y * 64) * 64 + int(x * 64)]; };
  EXPECT_LT(at(0.02, 0.5), 30);            // Air outside the body.
  EXPECT_LT(at(0.3, 0.4), at(0.5, 0.4));   // Lung darker than mediastinum.
  EXPECT_LT(at(0.7, 0.4), at(0.5, 0.85));  // Lung darker than abdomen.
}

TEST(SynthOptionsTest, InvalidOptionsNameTheOption) {
  SynthOptions o;
  o.image_size = 8;
  EXPECT_THAT(ValidateSynthOptions(o).message(), HasSubstr("image_size"));
  o = SynthOptions();
  o.pretrain_aligned = 0.95;
  o.pretrain_neutral = 0.1;
  EXPECT_THAT(ValidateSynthOptions(o).message(), HasSubstr("pretrain_aligned + pretrain_neutral"));
  o = SynthOptions();
  o.ambiguous_fraction = -0.1;
  auto summary = GenerateSyntheticBenchmark(o, ::testing::TempDir() + "/never");
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pcsweep::data
