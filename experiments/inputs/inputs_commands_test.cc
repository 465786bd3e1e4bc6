#include "experiments/inputs/inputs_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/testing/status_matchers.h"
#include "experiments/inputs/testing_safetensors.h"
#include "experiments/inputs/tokenizer.h"

namespace pcsweep::inputs {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string TinyDir() {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/experiments/testdata/gemma3-tiny";
}

// Runs `args` through a CLI::App with the inputs commands; returns the exit status.
int RunCli(std::vector<std::string> args) {
  CLI::App app("test");
  AddInputsCommands(app);
  app.require_subcommand(1);
  std::vector<const char*> argv = {"pcsweep-run"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

TEST(PreprocessCommandTest, WritesTransformersPixelValues) {
  const std::string out = (fs::path(::testing::TempDir()) / "pixel_values.safetensors").string();
  fs::remove(out);
  ASSERT_EQ(RunCli({"preprocess", "--image", TinyDir() + "/image0.png", "--image",
                    TinyDir() + "/image1.png", "--size", "32", "--out", out}),
            0);
  const auto written = testing::ReadSafetensors(out);
  const auto& pixels = written.at("pixel_values");
  EXPECT_EQ(pixels.dtype, "F32");
  EXPECT_EQ(pixels.shape, (std::vector<int64_t>{2, 3, 32, 32}));
  const auto reference = testing::ReadSafetensors(TinyDir() + "/reference.safetensors");
  const auto expected = reference.at("pixel_values").As<float>();
  const auto actual = pixels.As<float>();
  ASSERT_EQ(actual.size(), expected.size());
  double max_diff = 0;
  for (size_t i = 0; i < actual.size(); ++i)
    max_diff = std::max(max_diff, std::fabs(double(actual[i]) - expected[i]));
  EXPECT_LE(max_diff, 1e-6);
}

TEST(PreprocessCommandTest, BadImageFailsWithOneLineNamingTheFile) {
  const std::string bad = (fs::path(::testing::TempDir()) / "broken.png").string();
  std::ofstream(bad) << "\x89PNG\r\n\x1a\n garbage";
  std::ostringstream out;
  PreprocessArgs args;
  args.images = {bad};
  args.size = 8;
  args.out = (fs::path(::testing::TempDir()) / "never.safetensors").string();
  const absl::Status status = RunPreprocess(args, out);
  ASSERT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               "broken.png: cannot decode image: unknown image type"));
  EXPECT_THAT(status.message(), HasSubstr(bad));
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
  EXPECT_FALSE(fs::exists(args.out));
  EXPECT_EQ(RunCli({"preprocess", "--image", bad, "--size", "8", "--out", args.out}), 1);
  args.images = {TinyDir() + "/image0.png"};
  args.size = 0;
  EXPECT_THAT(RunPreprocess(args, out),
              StatusIs(absl::StatusCode::kInvalidArgument, "--size must be >= 1, got 0"));
}

TEST(TokenizeCommandTest, PrintsIdsAndWritesTheInputs) {
  const std::string dir = (fs::path(::testing::TempDir()) / "inputs_commands_tokenizer").string();
  fs::remove_all(dir);
  std::vector<std::string> corpus;
  for (int i = 0; i < 200; ++i)
    corpus.push_back("Is there edema in the left lung? Answer: no. " + std::to_string(i));
  TokenizerTrainingOptions options;
  options.vocab_size = 360;
  ASSERT_TRUE(TrainGemmaLikeTokenizerFromSentences(corpus, dir, options).ok());
  std::ofstream(dir + "/config.json") << R"({"mm_tokens_per_image": 4})";

  TokenizeArgs args;
  args.model_dir = dir;
  args.question = "Is there edema?";
  args.with_image = true;
  args.out = dir + "/inputs.safetensors";
  std::ostringstream out;
  ASSERT_TRUE(RunTokenize(args, out).ok());
  auto tokenizer = Gemma3Tokenizer::Load(dir);
  ASSERT_TRUE(tokenizer.ok());
  PromptOptions prompt_options;
  const auto prompt = tokenizer->BuildPrompt("Is there edema?", prompt_options);
  ASSERT_TRUE(prompt.ok());
  std::ostringstream ids;
  for (size_t i = 0; i < prompt->input_ids.size(); ++i)
    ids << (i ? " " : "") << prompt->input_ids[i];
  EXPECT_EQ(out.str().substr(0, out.str().find('\n')), ids.str());
  EXPECT_THAT(out.str(), HasSubstr("yes ids: "));

  const auto written = testing::ReadSafetensors(args.out);
  EXPECT_EQ(written.at("input_ids").dtype, "I64");
  EXPECT_EQ(written.at("input_ids").As<int64_t>(), prompt->input_ids);
  EXPECT_EQ(written.at("token_type_ids").As<int64_t>(), prompt->token_type_ids);
  const auto mask = written.at("attention_mask").As<int64_t>();
  EXPECT_EQ(mask, std::vector<int64_t>(prompt->input_ids.size(), 1));

  // Templates typed on a shell use "\n".
  EXPECT_EQ(RunCli({"tokenize", "--model", dir, "--question", "Edema?", "--template",
                    "Q: {question}\\nA:"}),
            0);
  EXPECT_EQ(RunCli({"tokenize", "--model", dir + "/missing", "--question", "Edema?"}), 1);
}

}  // namespace
}  // namespace pcsweep::inputs
