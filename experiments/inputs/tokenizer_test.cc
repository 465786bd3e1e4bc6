#include "experiments/inputs/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/testing/status_matchers.h"

namespace pcsweep::inputs {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// A small radiology-flavoured corpus, generated deterministically.
std::vector<std::string> MakeCorpus(int lines) {
  const std::vector<std::string> findings = {"pneumothorax",  "pleural effusion", "cardiomegaly",
                                             "consolidation", "atelectasis",      "a nodule",
                                             "edema",         "a fracture"};
  const std::vector<std::string> places = {"left lower lobe", "right upper lobe", "both lungs",
                                           "the mediastinum", "the left apex",    "the right base"};
  const std::vector<std::string> frames = {"The chest X-ray shows {f} in the {p}.",
                                           "There is no evidence of {f}.",
                                           "Is there {f} in the {p}?",
                                           "No {f} is seen; the {p} is clear.",
                                           "Findings: {f}, size 12 mm.",
                                           "Impression: stable {f} since 2019."};
  std::mt19937 rng(7);
  std::vector<std::string> corpus;
  for (int i = 0; i < lines; ++i) {
    std::string s = frames[rng() % frames.size()];
    s.replace(s.find("{f}"), 3, findings[rng() % findings.size()]);
    if (const auto at = s.find("{p}"); at != std::string::npos)
      s.replace(at, 3, places[rng() % places.size()]);
    corpus.push_back(s);
    if (i % 5 == 0)
      corpus.push_back(rng() % 2 ? "Answer: yes, it is present." : "Answer: No, it is absent.");
  }
  return corpus;
}

class TrainedTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::path(::testing::TempDir()) / "inputs_tokenizer_test").string());
    fs::remove_all(*dir_);
    TokenizerTrainingOptions options;
    options.vocab_size = 700;
    auto trained = TrainGemmaLikeTokenizerFromSentences(MakeCorpus(3000), *dir_, options);
    ASSERT_TRUE(trained.ok()) << trained.status();
    trained_ = new TrainedTokenizer(*trained);
    // The model's config: tiny image sequence so prompts stay short.
    std::ofstream(*dir_ + "/config.json") << R"({"boi_token_index": 7, "eoi_token_index": 8,
        "image_token_index": 9, "mm_tokens_per_image": 16})";
    auto tokenizer = Gemma3Tokenizer::Load(*dir_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = new Gemma3Tokenizer(std::move(*tokenizer));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete trained_;
    delete dir_;
  }

  static std::vector<int64_t> Enc(const std::string& text) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<int64_t>{};
  }

  static std::string* dir_;
  static TrainedTokenizer* trained_;
  static Gemma3Tokenizer* tokenizer_;
};
std::string* TrainedTokenizerTest::dir_ = nullptr;
TrainedTokenizer* TrainedTokenizerTest::trained_ = nullptr;
Gemma3Tokenizer* TrainedTokenizerTest::tokenizer_ = nullptr;

TEST_F(TrainedTokenizerTest, SpecialPiecesSitAtTheirFixedIds) {
  const std::vector<std::string> expected = {"<pad>",
                                             "<eos>",
                                             "<bos>",
                                             "<unk>",
                                             "<mask>",
                                             "<start_of_turn>",
                                             "<end_of_turn>",
                                             "<start_of_image>",
                                             "<end_of_image>",
                                             "<image_soft_token>",
                                             "\n",
                                             "\n\n"};
  for (size_t id = 0; id < expected.size(); ++id)
    EXPECT_EQ(tokenizer_->IdToPiece(id), expected[id]) << id;
  const SpecialTokenIds& s = tokenizer_->special_ids();
  EXPECT_EQ(s.pad, 0);
  EXPECT_EQ(s.eos, 1);
  EXPECT_EQ(s.bos, 2);
  EXPECT_EQ(s.unk, 3);
  EXPECT_EQ(s.start_of_turn, 5);
  EXPECT_EQ(s.end_of_turn, 6);
  EXPECT_EQ(s.boi, 7);
  EXPECT_EQ(s.eoi, 8);
  EXPECT_EQ(s.image, 9);
  EXPECT_EQ(trained_->special_ids.image, 9);
  EXPECT_EQ(tokenizer_->mm_tokens_per_image(), 16);
  EXPECT_GT(trained_->vocab_size, 300);  // a soft limit: the small corpus has fewer pieces
  EXPECT_LE(trained_->vocab_size, 704);
  EXPECT_EQ(tokenizer_->vocab_size(), trained_->vocab_size);
}

TEST_F(TrainedTokenizerTest, AnswerWordsAreSinglePieces) {
  for (const char* word : {"yes", "Yes", "no", "No"}) {
    EXPECT_EQ(Enc(word).size(), 1u) << word;
    EXPECT_GE(tokenizer_->PieceToId(word), 0) << word;
  }
  const AnswerTokens& answers = tokenizer_->answer_tokens();
  EXPECT_THAT(answers.yes_pieces, ::testing::Contains("yes"));
  EXPECT_THAT(answers.yes_pieces, ::testing::Contains("Yes"));
  EXPECT_THAT(answers.no_pieces, ::testing::Contains("no"));
  EXPECT_THAT(answers.no_pieces, ::testing::Contains("No"));
  ASSERT_EQ(answers.yes_ids.size(), answers.yes_pieces.size());
  for (size_t i = 0; i < answers.yes_ids.size(); ++i) {
    EXPECT_EQ(tokenizer_->IdToPiece(answers.yes_ids[i]), answers.yes_pieces[i]);
  }
  for (size_t i = 0; i < answers.no_ids.size(); ++i) {
    EXPECT_EQ(tokenizer_->IdToPiece(answers.no_ids[i]), answers.no_pieces[i]);
  }
}

TEST_F(TrainedTokenizerTest, RoundTripsTextIncludingUnseenCharacters) {
  for (const std::string text :
       {"The chest X-ray shows edema in the left lower lobe.", "Line one\nline two\n\n\nend",
        "  leading spaces and\ttabs", "Ünïcode ✓ 12345 — ok?", "no\nYes"}) {
    const auto ids = Enc(text);
    for (int64_t id : ids) EXPECT_NE(id, tokenizer_->special_ids().unk) << text;
    const auto decoded = tokenizer_->Decode(ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, text);
  }
}

TEST_F(TrainedTokenizerTest, DigitsAreSplit) {
  const auto ids = Enc("2019");
  EXPECT_EQ(ids.size(), 4u);
}

// model-spec §2.2/2.3: bos, <start_of_turn>user\n, "\n\n" boi image×N eoi "\n\n", the text,
// <end_of_turn>\n<start_of_turn>model\n; newlines around the image merge with their
// neighbours because the expanded string is tokenized as a whole.
TEST_F(TrainedTokenizerTest, PromptLayoutMatchesTheModelSpec) {
  const std::string question = "Is there a pneumothorax?";
  const auto prompt = tokenizer_->BuildPrompt(question);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  const SpecialTokenIds& s = tokenizer_->special_ids();
  std::vector<int64_t> expected = {s.bos, s.start_of_turn};
  auto append = [&](const std::vector<int64_t>& ids) {
    expected.insert(expected.end(), ids.begin(), ids.end());
  };
  append(Enc("user\n\n\n"));
  expected.push_back(s.boi);
  expected.insert(expected.end(), 16, s.image);
  expected.push_back(s.eoi);
  append(Enc("\n\nQuestion: Is there a pneumothorax?\nAnswer with only 'yes' or 'no'."));
  expected.push_back(s.end_of_turn);
  append(Enc("\n"));
  expected.push_back(s.start_of_turn);
  append(Enc("model\n"));
  EXPECT_EQ(prompt->input_ids, expected);

  // The merge matters: "user\n" then "\n\n" tokenized apart would give other ids.
  std::vector<int64_t> spliced = Enc("user\n");
  const auto nn = Enc("\n\n");
  spliced.insert(spliced.end(), nn.begin(), nn.end());
  EXPECT_NE(Enc("user\n\n\n"), spliced);

  // Exactly one bos, at position 0; token types mark image tokens only.
  EXPECT_EQ(std::count(prompt->input_ids.begin(), prompt->input_ids.end(), s.bos), 1);
  ASSERT_EQ(prompt->token_type_ids.size(), prompt->input_ids.size());
  int images = 0;
  for (size_t i = 0; i < prompt->input_ids.size(); ++i) {
    EXPECT_EQ(prompt->token_type_ids[i], prompt->input_ids[i] == s.image ? 1 : 0);
    images += prompt->token_type_ids[i];
  }
  EXPECT_EQ(images, 16);
  // Rendered text = what HF's processor tokenizes.
  const auto rendered = tokenizer_->RenderPrompt(question);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(rendered->rfind("<bos><start_of_turn>user\n\n\n<start_of_image><image_soft_token>", 0),
            0u);
  EXPECT_THAT(
      *rendered,
      HasSubstr("<image_soft_token><end_of_image>\n\nQuestion: Is there a pneumothorax?\n"));
  EXPECT_THAT(*rendered, ::testing::EndsWith("'no'.<end_of_turn>\n<start_of_turn>model\n"));
}

TEST_F(TrainedTokenizerTest, ImageAfterTextNoImageAndSystemPrompt) {
  const SpecialTokenIds& s = tokenizer_->special_ids();
  PromptOptions options;
  options.prompt_template = "{question}";
  options.image_position = ImagePosition::kAfterText;
  auto after = tokenizer_->BuildPrompt("Is it normal?", options);
  ASSERT_TRUE(after.ok());
  std::vector<int64_t> expected = {s.bos, s.start_of_turn};
  auto append = [&](const std::vector<int64_t>& ids) {
    expected.insert(expected.end(), ids.begin(), ids.end());
  };
  append(Enc("user\nIs it normal?\n\n"));
  expected.push_back(s.boi);
  expected.insert(expected.end(), 16, s.image);
  expected.push_back(s.eoi);
  append(Enc("\n\n"));
  expected.push_back(s.end_of_turn);
  append(Enc("\n"));
  expected.push_back(s.start_of_turn);
  append(Enc("model\n"));
  EXPECT_EQ(after->input_ids, expected);

  options.image_position = ImagePosition::kNone;
  options.system_prompt = "You are a radiologist.";
  auto text_only = tokenizer_->BuildPrompt("Is it normal?", options);
  ASSERT_TRUE(text_only.ok());
  expected = {s.bos, s.start_of_turn};
  append(Enc("user\nYou are a radiologist.\n\nIs it normal?"));
  expected.push_back(s.end_of_turn);
  append(Enc("\n"));
  expected.push_back(s.start_of_turn);
  append(Enc("model\n"));
  EXPECT_EQ(text_only->input_ids, expected);
  EXPECT_EQ(std::count(text_only->token_type_ids.begin(), text_only->token_type_ids.end(), 1), 0);
}

TEST_F(TrainedTokenizerTest, TemplateWithoutPlaceholderIsRejected) {
  PromptOptions options;
  options.prompt_template = "Answer yes or no.";
  const auto prompt = tokenizer_->BuildPrompt("Is there edema?", options);
  ASSERT_THAT(prompt,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "prompt template has no {question} placeholder: \"Answer yes or no.\""));
  EXPECT_THAT(prompt.status().message(), HasSubstr("{question}"));
}

TEST_F(TrainedTokenizerTest, BatchesArePaddedOnTheLeft) {
  const auto long_prompt =
      tokenizer_->BuildPrompt("Is there a large left pleural effusion with atelectasis?");
  const auto short_prompt = tokenizer_->BuildPrompt("Edema?");
  ASSERT_TRUE(long_prompt.ok() && short_prompt.ok());
  const int64_t pad = tokenizer_->special_ids().pad;
  const TokenBatch batch = PadBatchLeft({*long_prompt, *short_prompt}, pad);
  ASSERT_EQ(batch.batch, 2);
  ASSERT_EQ(batch.length, static_cast<int64_t>(long_prompt->input_ids.size()));
  const int64_t padding = batch.length - static_cast<int64_t>(short_prompt->input_ids.size());
  ASSERT_GT(padding, 0);
  for (int64_t t = 0; t < batch.length; ++t) {
    EXPECT_EQ(batch.input_ids[t], long_prompt->input_ids[t]);
    EXPECT_EQ(batch.attention_mask[t], 1);
    const int64_t i = batch.length + t;
    if (t < padding) {
      EXPECT_EQ(batch.input_ids[i], pad);
      EXPECT_EQ(batch.attention_mask[i], 0);
      EXPECT_EQ(batch.token_type_ids[i], 0);
    } else {
      EXPECT_EQ(batch.input_ids[i], short_prompt->input_ids[t - padding]);
      EXPECT_EQ(batch.attention_mask[i], 1);
      EXPECT_EQ(batch.token_type_ids[i], short_prompt->token_type_ids[t - padding]);
    }
  }
  // Both rows end with the same "model\n" tail: the answer is read at the last column.
  EXPECT_EQ(batch.input_ids[batch.length - 1], batch.input_ids[2 * batch.length - 1]);
  EXPECT_EQ(PadBatchLeft({}, pad).input_ids.size(), 0u);
}

TEST(YesNoMarginTest, IsLogSumExpDifference) {
  std::vector<float> logits = {0.f, 1.f, 2.f, -1.f, 3.f};
  AnswerTokens answers;
  answers.yes_ids = {1, 4};
  answers.no_ids = {2};
  const double expected = std::log(std::exp(1.0) + std::exp(3.0)) - 2.0;
  EXPECT_NEAR(YesNoMargin(logits.data(), 5, answers), expected, 1e-9);
  // Large logits do not overflow.
  logits = {0.f, 1000.f, 999.f, 0.f, 0.f};
  answers.yes_ids = {1};
  answers.no_ids = {2};
  EXPECT_NEAR(YesNoMargin(logits.data(), 5, answers), 1.0, 1e-9);
  answers.no_ids = {7};  // out of range
  EXPECT_TRUE(std::isnan(YesNoMargin(logits.data(), 5, answers)));
}

TEST_F(TrainedTokenizerTest, AddedTokensAreSplitOutAndDecoded) {
  const std::string dir = (fs::path(::testing::TempDir()) / "inputs_tokenizer_added").string();
  fs::create_directories(dir);
  fs::copy_file(*dir_ + "/tokenizer.model", dir + "/tokenizer.model",
                fs::copy_options::overwrite_existing);
  const int64_t extra = tokenizer_->vocab_size() + 3;
  std::ofstream(dir + "/added_tokens.json") << "{\"<extra_marker>\": " << extra << "}";
  auto tokenizer = Gemma3Tokenizer::Load(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->vocab_size(), extra + 1);
  const auto ids = tokenizer->Encode("edema<extra_marker>edema");
  ASSERT_TRUE(ids.ok());
  const auto edema = Enc("edema");
  std::vector<int64_t> expected = edema;
  expected.push_back(extra);
  expected.insert(expected.end(), edema.begin(), edema.end());
  EXPECT_EQ(*ids, expected);
  EXPECT_EQ(*tokenizer->Decode(*ids), "edema<extra_marker>edema");
  EXPECT_EQ(tokenizer->mm_tokens_per_image(), 256);  // no config.json here
}

TEST_F(TrainedTokenizerTest, ConfigThatContradictsTheVocabularyNamesTheKey) {
  const std::string dir = (fs::path(::testing::TempDir()) / "inputs_tokenizer_badcfg").string();
  fs::create_directories(dir);
  fs::copy_file(*dir_ + "/tokenizer.model", dir + "/tokenizer.model",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir + "/config.json") << R"({"image_token_index": 262144})";
  const auto tokenizer = Gemma3Tokenizer::Load(dir);
  ASSERT_THAT(tokenizer, StatusIs(absl::StatusCode::kInvalidArgument,
                                  "config.json: key 'image_token_index' = 262144 but the"));
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("image_token_index"));
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("config.json"));
}

TEST(TokenizerLoadTest, MissingOrCorruptModelNamesThePath) {
  const std::string dir = (fs::path(::testing::TempDir()) / "inputs_tokenizer_corrupt").string();
  fs::create_directories(dir);
  fs::remove(dir + "/tokenizer.model");
  auto missing = Gemma3Tokenizer::Load(dir);
  ASSERT_THAT(missing, StatusIs(absl::StatusCode::kNotFound,
                                "tokenizer.model: cannot open: No such file or directory"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(dir + "/tokenizer.model"));
  std::ofstream(dir + "/tokenizer.model") << "definitely not a protobuf";
  auto corrupt = Gemma3Tokenizer::Load(dir);
  ASSERT_THAT(corrupt, StatusIs(absl::StatusCode::kInvalidArgument,
                                "tokenizer.model: cannot load as a SentencePiece model:"));
  EXPECT_THAT(corrupt.status().message(), HasSubstr(dir + "/tokenizer.model"));
}

TEST(TokenizerTrainingTest, RejectsBadInputsClearly) {
  const std::string dir =
      (fs::path(::testing::TempDir()) / "inputs_tokenizer_bad_training").string();
  auto empty = TrainGemmaLikeTokenizerFromSentences({"", ""}, dir, {}, "empty.txt");
  ASSERT_THAT(empty, StatusIs(absl::StatusCode::kInvalidArgument, "empty.txt: corpus has no text"));
  EXPECT_THAT(empty.status().message(), HasSubstr("empty.txt"));
  TokenizerTrainingOptions tiny;
  tiny.vocab_size = 100;
  auto small = TrainGemmaLikeTokenizerFromSentences({"some text"}, dir, tiny);
  ASSERT_THAT(small, StatusIs(absl::StatusCode::kInvalidArgument,
                              "tokenizer vocab_size 100 is too small: the fixed pieces and"));
  EXPECT_THAT(small.status().message(), HasSubstr("vocab_size"));
  auto no_file = TrainGemmaLikeTokenizer("/nonexistent/corpus.txt", dir);
  ASSERT_THAT(no_file, StatusIs(absl::StatusCode::kNotFound,
                                "corpus.txt: cannot open corpus: No such file or directory"));
  EXPECT_THAT(no_file.status().message(), HasSubstr("/nonexistent/corpus.txt"));
}

// A corpus where the answers never appear on their own still yields single pieces.
TEST(TokenizerTrainingTest, AnswerPiecesExistEvenWithoutAnswersInTheCorpus) {
  const std::string dir = (fs::path(::testing::TempDir()) / "inputs_tokenizer_no_answers").string();
  fs::remove_all(dir);
  std::vector<std::string> corpus;
  for (int i = 0; i < 300; ++i) corpus.push_back("abcdefghijklmnopqrstuvwxyz " + std::to_string(i));
  TokenizerTrainingOptions options;
  options.vocab_size = 320;
  auto trained = TrainGemmaLikeTokenizerFromSentences(corpus, dir, options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  std::ofstream(dir + "/config.json") << "{}";
  auto tokenizer = Gemma3Tokenizer::Load(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  for (const char* word : {"yes", "Yes", "no", "No"}) {
    const auto ids = tokenizer->Encode(word);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids->size(), 1u) << word;
  }
}

}  // namespace
}  // namespace pcsweep::inputs
