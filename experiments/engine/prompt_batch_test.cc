// Shared-prefix scoring, frozen-prefix (start-layer) forwards and activation checkpointing
// give the plain forward's logits, captured layers and LoRA gradients within 1e-5 (fp32, CPU)
// on the gemma3-tiny fixture, whose sliding window (8) is shorter than its prompts.
#include "experiments/engine/prompt_batch.h"

#include <algorithm>
#include <random>

#include "common/testing/source_path.h"
#include "experiments/engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::engine {
namespace {

constexpr double kTolerance = 1e-5;

std::string TestData(const std::string& rel) {
  return testutil::SourcePath("experiments/testdata/gemma3-tiny/" + rel);
}

// max |a - b| relative to the largest |a| (at least 1): fp32 rounding of sums that are
// ordered differently grows with the values' scale.
double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  const double scale = std::max(1.0, a.abs().max().item<double>());
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>() / scale;
}

class PromptBatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions o;
    o.model_dir = TestData("model_fp32");
    o.dtype = "fp32";
    auto e = Engine::Load(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = e->release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }

  void SetUp() override {
    engine_->DetachLora();
    engine_->model()->eval();
    const Gemma3Config& c = engine_->config();
    torch::manual_seed(7);
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 2; ++i) {
      features_.push_back(
          engine_->ImageFeatures(torch::randn({1, 3, c.vision.image_size, c.vision.image_size}))
              .value()[0]);
    }
    // <bos>, a turn header, boi, the image block, eoi, the template, then a question: the
    // layout of a PSF-Med prompt. Suffixes of 3 to 14 tokens cross the sliding window.
    std::mt19937 rng(3);
    auto words = [&](int n) {
      std::vector<int64_t> out;
      for (int i = 0; i < n; ++i) out.push_back(20 + static_cast<int64_t>(rng() % 900));
      return out;
    };
    for (int image = 0; image < 2; ++image) {
      for (int length : {3, 9, 14, 6}) {
        std::vector<int64_t> t = {2, 105, 30, 31, c.boi_token_index};
        t.insert(t.end(), c.mm_tokens_per_image, c.image_token_index);
        t.push_back(c.eoi_token_index);
        for (int64_t w : {40, 41, 42}) t.push_back(w);
        for (int64_t w : words(length)) t.push_back(w);
        tokens_.push_back(t);
        images_.push_back(image);
      }
    }
    tokens_.push_back(words(11));  // text only: takes the plain path
    images_.push_back(-1);
  }

  std::vector<BatchPrompt> Prompts() const {
    std::vector<BatchPrompt> out;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      BatchPrompt p;
      p.token_ids = &tokens_[i];
      if (images_[i] >= 0) {
        p.image_features = features_[images_[i]];
        p.image_key = "image" + std::to_string(images_[i]);
      }
      out.push_back(p);
    }
    return out;
  }

  LastPositionOptions Options() const {
    LastPositionOptions o;
    o.vocab_rows = torch::tensor({10, 11, 12, 500}, torch::kLong);
    o.pad_id = engine_->config().text.pad_token_id;
    return o;
  }

  // LoRA on `layers` with random A and B, so every adapted weight gets a gradient.
  void AttachRandomLora(std::vector<int> layers, double dropout) {
    std::set<LoraTarget> targets;
    for (int layer : layers) {
      for (LoraModule m : {LoraModule::kQ, LoraModule::kK, LoraModule::kV, LoraModule::kO,
                           LoraModule::kGate, LoraModule::kUp, LoraModule::kDown}) {
        targets.insert({layer, m});
      }
    }
    LoraSettings settings;
    settings.r = 4;
    settings.lora_alpha = 8;
    settings.lora_dropout = dropout;
    ASSERT_TRUE(engine_->AttachLora(targets, settings, 11).ok());
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : engine_->LoraParameters()) p.normal_(0, 0.05);
  }

  // The logits' loss-like sum and the gradient of every LoRA tensor.
  std::pair<torch::Tensor, std::vector<torch::Tensor>> LossAndGradients(
      const std::vector<BatchPrompt>& prompts, const LastPositionOptions& options) {
    std::vector<torch::Tensor> params = engine_->LoraParameters();
    for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
    const torch::Tensor logits = LastPositionLogits(*engine_->model(), prompts, options).logits;
    const torch::Tensor loss = (logits * logits).sum() + logits.select(1, 0).sum();
    loss.backward();
    std::vector<torch::Tensor> grads;
    for (const torch::Tensor& p : params) grads.push_back(p.grad().clone());
    return {logits.detach(), grads};
  }

  static Engine* engine_;
  std::vector<torch::Tensor> features_;
  std::vector<std::vector<int64_t>> tokens_;
  std::vector<int> images_;
};
Engine* PromptBatchTest::engine_ = nullptr;

TEST_F(PromptBatchTest, SharedPrefixScoringEqualsThePlainForward) {
  torch::NoGradGuard no_grad;
  LastPositionOptions plain = Options();
  plain.capture_layers = {0, 2, 5};
  LastPositionOptions shared = plain;
  shared.shared_prefix = true;
  const LastPositionOutputs a = LastPositionLogits(*engine_->model(), Prompts(), plain);
  const LastPositionOutputs b = LastPositionLogits(*engine_->model(), Prompts(), shared);
  EXPECT_LE(MaxAbsDiff(a.logits, b.logits), kTolerance);
  ASSERT_EQ(b.layer_outputs.size(), tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    for (int layer : {0, 2, 5}) {
      EXPECT_LE(MaxAbsDiff(a.layer_outputs[i].at(layer), b.layer_outputs[i].at(layer)), kTolerance)
          << "prompt " << i << " layer " << layer;
    }
  }
  // Plain: nine prompts padded to 39. Shared: two prefixes of 25 tokens, eight suffixes
  // padded to 14, the text-only prompt alone.
  EXPECT_EQ(a.tokens_run, 9 * 39);
  EXPECT_EQ(b.tokens_run, 2 * 25 + 8 * 14 + 11);
}

TEST_F(PromptBatchTest, SharedPrefixGradientsFlowThroughThePrefixKeysAndValues) {
  AttachRandomLora({0, 1, 3, 4}, 0.0);
  LastPositionOptions shared = Options();
  shared.shared_prefix = true;
  const auto [plain_logits, plain_grads] = LossAndGradients(Prompts(), Options());
  const auto [shared_logits, shared_grads] = LossAndGradients(Prompts(), shared);
  EXPECT_LE(MaxAbsDiff(plain_logits, shared_logits), kTolerance);
  ASSERT_EQ(plain_grads.size(), shared_grads.size());
  for (size_t i = 0; i < plain_grads.size(); ++i) {
    EXPECT_GT(plain_grads[i].abs().max().item<double>(), 0) << i;
    EXPECT_LE(MaxAbsDiff(plain_grads[i], shared_grads[i]), kTolerance) << "LoRA tensor " << i;
  }
}

TEST_F(PromptBatchTest, StartingAboveFrozenLayersGivesTheSameLogitsAndGradients) {
  AttachRandomLora({3, 4, 5}, 0.0);
  constexpr int kFirstAdapted = 3;
  std::vector<BatchPrompt> frozen = Prompts();
  for (BatchPrompt& p : frozen) {  // each prompt alone: no padding in the cached stream
    p.hidden_input = StreamEnteringLayer(*engine_->model(), {p}, kFirstAdapted, 0).front();
  }
  LastPositionOptions start = Options();
  start.start_layer = kFirstAdapted;
  const auto [plain_logits, plain_grads] = LossAndGradients(Prompts(), Options());
  const auto [start_logits, start_grads] = LossAndGradients(frozen, start);
  EXPECT_LE(MaxAbsDiff(plain_logits, start_logits), kTolerance);
  for (size_t i = 0; i < plain_grads.size(); ++i) {
    EXPECT_GT(plain_grads[i].abs().max().item<double>(), 0) << i;
    EXPECT_LE(MaxAbsDiff(plain_grads[i], start_grads[i]), kTolerance) << "LoRA tensor " << i;
  }
}

TEST_F(PromptBatchTest, CheckpointedLayersRecomputeTheSameDropoutAndGradients) {
  AttachRandomLora({0, 1, 2, 3, 4, 5}, 0.2);
  engine_->model()->train();
  LastPositionOptions checkpointed = Options();
  checkpointed.checkpoint_layers = true;
  torch::manual_seed(5);
  const auto [plain_logits, plain_grads] = LossAndGradients(Prompts(), Options());
  torch::manual_seed(5);
  const auto [ckpt_logits, ckpt_grads] = LossAndGradients(Prompts(), checkpointed);
  torch::manual_seed(6);  // another dropout draw: the comparison above is not vacuous
  const auto [other_logits, other_grads] = LossAndGradients(Prompts(), Options());
  engine_->model()->eval();
  EXPECT_LE(MaxAbsDiff(plain_logits, ckpt_logits), kTolerance);
  EXPECT_GT(MaxAbsDiff(plain_logits, other_logits), 1e-3);
  for (size_t i = 0; i < plain_grads.size(); ++i)
    EXPECT_LE(MaxAbsDiff(plain_grads[i], ckpt_grads[i]), kTolerance) << "LoRA tensor " << i;
}

}  // namespace
}  // namespace pcsweep::engine
