// Golden tests of the libtorch engine against transformers 5.17 / PEFT 0.21 on the
// gemma3-tiny fixture (experiments/testdata/PROVENANCE.md), CPU fp32, plus LoRA round trips,
// scoring and error handling.
#include "experiments/engine/engine.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/testing/source_path.h"
#include "common/testing/status_matchers.h"
#include "experiments/engine/model.h"
#include "experiments/engine/safetensors.h"
#include "experiments/engine/torch_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::engine {
namespace {

using ::pcsweep::testutil::StatusIs;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string TestData(const std::string& rel) {
  return testutil::SourcePath("experiments/testdata/gemma3-tiny/" + rel);
}

// PCSWEEP_TEST_DEVICE=cuda runs the golden comparisons on a GPU (tools/gpu-check.sh); the
// reference tensors stay on the CPU and outputs are compared there.
std::string TestDevice() {
  const char* device = std::getenv("PCSWEEP_TEST_DEVICE");
  return device != nullptr && *device != '\0' ? device : "cpu";
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("pcsweep_engine_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

torch::Tensor Ref(const std::string& name) {
  static auto* file = [] {
    auto f = SafetensorsFile::Open(TestData("reference.safetensors"));
    EXPECT_TRUE(f.ok()) << f.status();
    return f->release();
  }();
  auto v = file->Get(name);
  EXPECT_TRUE(v.ok()) << v.status();
  return torch::from_blob(const_cast<std::byte*>(v->data), v->shape,
                          torch::TensorOptions().dtype(ToTorchDType(v->dtype)))
      .clone();
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kCPU, torch::kFloat) - b.to(torch::kCPU, torch::kFloat))
      .abs()
      .max()
      .item<double>();
}

ModelInputs ReferenceInputs() {
  ModelInputs in;
  in.input_ids = Ref("input_ids");
  in.attention_mask = Ref("attention_mask");
  in.token_type_ids = Ref("token_type_ids");
  in.pixel_values = Ref("pixel_values");
  return in;
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The fixture script cast the model to bf16 and back before computing the reference, so
    // the reference used the bf16-rounded weights (= model_bf16, computed in fp32 on CPU) and
    // a bf16-rounded RoPE inv_freq buffer.
    EngineOptions o;
    o.model_dir = TestData("model_bf16");
    o.device = TestDevice();
    o.dtype = "fp32";  // "auto" would keep the checkpoint's bf16 on a GPU
    o.bf16_rope_frequencies = true;
    auto e = Engine::Load(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = e->release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override { engine_->DetachLora(); }
  static Engine* engine_;
};
Engine* EngineTest::engine_ = nullptr;

TEST_F(EngineTest, MatchesTransformersImageFeaturesHiddenStatesAndLogits) {
  torch::NoGradGuard no_grad;
  ForwardOptions o;
  o.output_hidden_states = true;
  auto out = engine_->Forward(ReferenceInputs(), o);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LE(MaxAbsDiff(out->image_features, Ref("image_features")), 1e-4);
  ASSERT_EQ(out->hidden_states.size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_LE(MaxAbsDiff(out->hidden_states[i], Ref("hidden_states." + std::to_string(i))), 1e-4)
        << i;
  }
  EXPECT_LE(MaxAbsDiff(out->logits, Ref("logits")), 1e-4);
}

TEST_F(EngineTest, MatchesTransformersTextOnlyLogits) {
  torch::NoGradGuard no_grad;
  ModelInputs in;
  in.input_ids = Ref("text_input_ids");
  auto out = engine_->Forward(in, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LE(MaxAbsDiff(out->logits, Ref("text_logits")), 1e-4);
}

TEST_F(EngineTest, LastPositionVocabRowsAndCapturedLayersAgreeWithFullForward) {
  torch::NoGradGuard no_grad;
  ForwardOptions o;
  o.logits = LogitsMode::kLastPosition;
  o.vocab_rows = torch::tensor({5, 17, 900}, torch::kLong);
  o.capture_layers = {2};
  auto out = engine_->Forward(ReferenceInputs(), o);
  ASSERT_TRUE(out.ok()) << out.status();
  const torch::Tensor ref = Ref("logits").select(1, 51).index_select(1, o.vocab_rows);
  EXPECT_LE(MaxAbsDiff(out->logits, ref), 1e-4);
  EXPECT_LE(MaxAbsDiff(out->layer_outputs.at(2), Ref("hidden_states.3")), 1e-4);
}

TEST_F(EngineTest, ResidualHookCanReplaceALayerOutput) {
  torch::NoGradGuard no_grad;
  std::vector<int> seen;
  ForwardOptions o;
  o.residual_hook = [&](int layer, const torch::Tensor& x) {
    seen.push_back(layer);
    return layer == 4 ? torch::zeros_like(x) : torch::Tensor();
  };
  o.output_hidden_states = true;
  auto out = engine_->Forward(ReferenceInputs(), o);
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_LE(MaxAbsDiff(out->hidden_states[4], Ref("hidden_states.4")), 1e-4);
  EXPECT_EQ(out->hidden_states[5].abs().max().item<double>(), 0.0);
  EXPECT_GT(MaxAbsDiff(out->logits, Ref("logits")), 1e-2);
}

TEST_F(EngineTest, PeftAdapterMatchesLoraLogitsAndSurvivesSaveAndReload) {
  torch::NoGradGuard no_grad;
  ASSERT_TRUE(engine_->LoadAdapter(TestData("lora_adapter")).ok());
  EXPECT_EQ(engine_->lora_targets().size(), 14u);
  auto out = engine_->Forward(ReferenceInputs(), {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LE(MaxAbsDiff(out->logits, Ref("lora_logits")), 1e-4);
  EXPECT_GT(MaxAbsDiff(Ref("lora_logits"), Ref("logits")), 1e-2);  // the adapter matters

  TempDir dir;
  ASSERT_TRUE(engine_->SaveAdapter(dir.path()).ok());
  engine_->DetachLora();
  auto base = engine_->Forward(ReferenceInputs(), {});
  ASSERT_TRUE(base.ok());
  EXPECT_LE(MaxAbsDiff(base->logits, Ref("logits")), 1e-4);
  ASSERT_TRUE(engine_->LoadAdapter(dir.path()).ok());
  auto again = engine_->Forward(ReferenceInputs(), {});
  ASSERT_TRUE(again.ok());
  EXPECT_LE(MaxAbsDiff(again->logits, Ref("lora_logits")), 1e-4);

  // Same keys, shapes and values as PEFT's own file.
  auto ours = SafetensorsFile::Open(dir.File("adapter_model.safetensors"));
  auto theirs = SafetensorsFile::Open(TestData("lora_adapter/adapter_model.safetensors"));
  ASSERT_TRUE(ours.ok() && theirs.ok());
  EXPECT_EQ((*ours)->names(), (*theirs)->names());
  EXPECT_EQ((*ours)->metadata().at("format"), "pt");
  for (const auto& name : (*theirs)->names()) {
    auto a = (*ours)->Get(name), b = (*theirs)->Get(name);
    ASSERT_EQ(a->nbytes, b->nbytes);
    EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << name;
  }
  std::ifstream cfg(dir.File("adapter_config.json"));
  std::stringstream ss;
  ss << cfg.rdbuf();
  auto parsed = ParseAdapterConfig(ss.str(), "saved");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->settings.r, 4);
  EXPECT_DOUBLE_EQ(parsed->settings.lora_alpha, 8);
}

TEST_F(EngineTest, FreshLoraIsANoOpAndTrainsWithAutograd) {
  std::set<LoraTarget> targets;
  for (LoraModule m : kAllLoraModules) targets.insert({3, m});
  ASSERT_TRUE(engine_->AttachLora(targets, {4, 8, false, 0.0}, 7).ok());
  const auto params = engine_->LoraParameters();
  ASSERT_EQ(params.size(), 14u);
  const double bound = 1.0 / std::sqrt(64.0);  // kaiming-uniform(a=sqrt 5) on q_proj's A
  EXPECT_LE(params[0].abs().max().item<double>(), bound);
  EXPECT_GT(params[0].abs().max().item<double>(), bound / 2);
  EXPECT_EQ(params[1].abs().max().item<double>(), 0.0);
  auto out = engine_->Forward(ReferenceInputs(), {});
  ASSERT_TRUE(out.ok());
  EXPECT_LE(MaxAbsDiff(out->logits.detach(), Ref("logits")), 1e-4);
  out->logits.select(1, 51).select(1, 7).sum().backward();
  for (size_t i = 1; i < params.size(); i += 2) {
    ASSERT_TRUE(params[i].grad().defined());
    EXPECT_GT(params[i].grad().abs().sum().item<double>(), 0.0) << i;
  }
  for (auto& p : engine_->model()->named_parameters()) {
    if (p.key().find(".lora_") == std::string::npos) {
      EXPECT_FALSE(p.value().requires_grad()) << p.key();
    }
  }
  EXPECT_THAT(engine_->AttachLora({{6, LoraModule::kQ}}, {4, 8, false, 0.0}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "LoRA layer 6 out of range [0, 6)"));
}

TEST_F(EngineTest, AdapterForAnotherModelFailsClearly) {
  TempDir dir;
  fs::copy_file(TestData("lora_adapter/adapter_config.json"), dir.File("adapter_config.json"));
  std::vector<float> a(4 * 48, 0.1f), b(64 * 4, 0.1f);
  ASSERT_TRUE(WriteSafetensors(
                  dir.File("adapter_model.safetensors"),
                  {{"base_model.model.model.language_model.layers.1.self_attn.q_proj.lora_A.weight",
                    DType::kF32,
                    {4, 48},
                    a.data(),
                    a.size() * 4},
                   {"base_model.model.model.language_model.layers.1.self_attn.q_proj.lora_B.weight",
                    DType::kF32,
                    {64, 4},
                    b.data(),
                    b.size() * 4}})
                  .ok());
  absl::Status s = engine_->LoadAdapter(dir.path());
  ASSERT_THAT(
      s, StatusIs(
             absl::StatusCode::kInvalidArgument,
             "has shape [4, 48] but this model and r=4 need [4, 64] (adapter for another model?)"));
  EXPECT_THAT(s.message(), HasSubstr("adapter_model.safetensors"));
  EXPECT_THAT(s.message(), HasSubstr("layers.1.self_attn.q_proj.lora_A"));
  EXPECT_THAT(s.message(), HasSubstr("another model"));
  EXPECT_TRUE(engine_->lora_targets().empty());  // nothing half-attached

  ASSERT_TRUE(WriteSafetensors(
                  dir.File("adapter_model.safetensors"),
                  {{"base_model.model.model.language_model.layers.30.mlp.up_proj.lora_A.weight",
                    DType::kF32,
                    {4, 48},
                    a.data(),
                    a.size() * 4}})
                  .ok());
  s = engine_->LoadAdapter(dir.path());
  EXPECT_THAT(s.message(), HasSubstr("layer 30"));
}

TEST_F(EngineTest, ScoringMatchesUnbatchedForwardAndCachesImages) {
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = Ref("input_ids"), mask = Ref("attention_mask"),
                      pixels = Ref("pixel_values");
  std::vector<ScoreRequest> requests;
  for (int64_t row : {0, 1, 1}) {
    ScoreRequest r;
    const torch::Tensor keep = mask[row].nonzero().squeeze(1);
    const torch::Tensor tokens = ids[row].index_select(0, keep);
    r.token_ids.assign(tokens.data_ptr<int64_t>(), tokens.data_ptr<int64_t>() + tokens.numel());
    r.pixel_values = pixels[row];
    requests.push_back(r);
  }
  requests.back().token_ids.pop_back();  // a different prompt on the same image
  ScoreOptions o;
  o.yes_ids = {10, 11};
  o.no_ids = {12};
  o.capture_layers = {1};
  auto scores = engine_->Score(requests, o);
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_EQ(engine_->image_cache_misses(), 2);
  for (size_t i = 0; i < requests.size(); ++i) {
    ModelInputs in;
    in.input_ids = torch::tensor(requests[i].token_ids, torch::kLong).unsqueeze(0);
    in.pixel_values = requests[i].pixel_values.unsqueeze(0);
    ForwardOptions fo;
    fo.capture_layers = {1};
    auto out = engine_->Forward(in, fo);
    ASSERT_TRUE(out.ok());
    const torch::Tensor last = out->logits[0][-1];
    const double yes =
        torch::logsumexp(last.index_select(0, torch::tensor(o.yes_ids)), 0).item<double>();
    const double no = last[12].item<double>();
    EXPECT_NEAR((*scores)[i].margin, yes - no, 1e-4) << i;
    EXPECT_LE(MaxAbsDiff((*scores)[i].layer_outputs.at(1), out->layer_outputs.at(1)[0]), 1e-4);
  }
  // By key, without pixels: served from the cache.
  std::vector<ScoreRequest> named(1);
  named[0].pixel_values = pixels[0];
  named[0].image_key = "img0";
  named[0].token_ids = requests[0].token_ids;
  ASSERT_TRUE(engine_->Score(named, o).ok());
  named[0].pixel_values = torch::Tensor();
  auto by_key = engine_->Score(named, o);
  ASSERT_TRUE(by_key.ok()) << by_key.status();
  EXPECT_NEAR((*by_key)[0].margin, (*scores)[0].margin, 1e-5);
  EXPECT_EQ(engine_->image_cache_misses(), 2);
  named[0].image_key = "unknown";
  EXPECT_THAT(engine_->Score(named, o).status().message(), HasSubstr("not cached"));
  // A training step reuses the features Score bound to the key.
  auto cached = engine_->CachedImageFeatures("img0");
  ASSERT_TRUE(cached.ok()) << cached.status();
  auto fresh = engine_->ImageFeatures(pixels[0].unsqueeze(0));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_LE(MaxAbsDiff(*cached, (*fresh)[0]), 1e-6);
  EXPECT_THAT(engine_->CachedImageFeatures("unknown"),
              StatusIs(absl::StatusCode::kNotFound, "image key 'unknown' names no image"));
}

TEST_F(EngineTest, BadInputsFailWithoutCrashing) {
  ModelInputs in = ReferenceInputs();
  in.pixel_values = in.pixel_values.slice(0, 0, 1);
  EXPECT_THAT(engine_->Forward(in, {}).status().message(), HasSubstr("image tokens"));
  in = ReferenceInputs();
  in.input_ids = in.input_ids.clone();
  in.input_ids[0][3] = 5000;
  EXPECT_THAT(engine_->Forward(in, {}).status().message(), HasSubstr("outside the vocabulary"));
  in = ReferenceInputs();
  in.pixel_values = torch::zeros({2, 3, 16, 16});
  EXPECT_THAT(engine_->Forward(in, {}).status().message(), HasSubstr("pixel_values"));
  in = ReferenceInputs();
  in.attention_mask = in.attention_mask.slice(1, 0, 10);
  EXPECT_THAT(engine_->Forward(in, {}).status().message(), HasSubstr("attention_mask"));
}

// Blocks of query rows (the SigLIP path on libtorch 1.x) give the whole attention and its
// gradients, with a mask (rows that may attend nothing included), soft-capping, or neither.
TEST(BlockedAttentionTest, BlocksOfQueryRowsGiveTheWholeResultAndItsGradients) {
  torch::manual_seed(3);
  const auto grad = torch::TensorOptions().requires_grad(true);
  const torch::Tensor q = torch::randn({2, 3, 37, 8}, grad), k = torch::randn({2, 3, 41, 8}, grad),
                      v = torch::randn({2, 3, 41, 8}, grad);
  torch::Tensor mask = torch::rand({2, 1, 37, 41}) > 0.3;
  mask.index_put_({0, 0, 5}, false);  // a query with no key: its output row is 0
  const torch::Tensor weights = torch::randn({2, 3, 37, 8});
  for (const torch::Tensor& m : {mask, torch::Tensor()}) {
    for (const std::optional<double> softcap : {std::optional<double>(), std::optional(20.0)}) {
      auto run = [&](int64_t max_scores) {
        for (const torch::Tensor& t : {q, k, v}) t.mutable_grad() = torch::Tensor();
        const torch::Tensor out = BlockedAttention(q, k, v, m, 0.35, softcap, max_scores);
        (out * weights).sum().backward();
        return std::vector<torch::Tensor>{out.detach(), q.grad().clone(), k.grad().clone(),
                                          v.grad().clone()};
      };
      const std::vector<torch::Tensor> whole = run(int64_t{1} << 40);
      for (int64_t max_scores : {int64_t{2 * 3 * 41 * 5}, int64_t{1}}) {  // 5 rows, 1 row
        const std::vector<torch::Tensor> blocked = run(max_scores);
        for (size_t i = 0; i < whole.size(); ++i) {
          EXPECT_LT((blocked[i] - whole[i]).abs().max().item<double>(), 1e-6)
              << "tensor " << i << ", " << max_scores << " scores per block, mask " << m.defined()
              << ", softcap " << softcap.has_value();
        }
      }
      if (m.defined()) {
        EXPECT_EQ(whole[0][0][0][5].abs().max().item<double>(), 0.0);
      }
    }
  }
}

TEST(GuardTorchTest, TurnsLibtorchAndStdExceptionsIntoStatusWithContext) {
  const absl::Status shapes = GuardTorch("adding", []() -> absl::Status {
    (void)(torch::zeros({2, 3}) + torch::zeros({4}));
    return absl::OkStatus();
  });
  EXPECT_EQ(shapes.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(shapes.message()), ::testing::StartsWith("adding: libtorch: "));
  EXPECT_THAT(std::string(shapes.message()), ::testing::Not(HasSubstr("Exception raised from")));
  const absl::StatusOr<int> thrown =
      GuardTorch("parsing", []() -> absl::StatusOr<int> { throw std::runtime_error("bad"); });
  EXPECT_EQ(thrown.status().message(), "parsing: bad");
  const absl::StatusOr<int> fine = GuardTorch("x", []() -> absl::StatusOr<int> { return 7; });
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(*fine, 7);
}

// model_fp32 holds the weights before the fixture's bf16 round trip. Exactly that rounding
// must explain its difference from the reference: rounding its weights to bf16 reproduces the
// reference to fp32 round-off. Unrounded, each weight differs by up to 2^-9 relative, and
// through 6 random layers the logits may move by a few percent of their range; 5% is the
// bound (the measured figure is printed).
TEST(EngineFp32CheckpointTest, AgreesWithTheBf16ReferenceWithinBf16Rounding) {
  torch::NoGradGuard no_grad;
  EngineOptions o;
  o.model_dir = TestData("model_fp32");
  o.device = TestDevice();
  o.bf16_rope_frequencies = true;
  auto fp32 = Engine::Load(o);
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  EXPECT_EQ((*fp32)->compute_dtype(), torch::kFloat);
  auto out = (*fp32)->Forward(ReferenceInputs(), {});
  ASSERT_TRUE(out.ok()) << out.status();
  const torch::Tensor ref = Ref("logits");
  const double range = (ref.max() - ref.min()).item<double>();
  const double diff = MaxAbsDiff(out->logits, ref);
  std::printf(
      "fp32 checkpoint vs bf16-weight reference: max |diff| %.4g = %.3g%% of the logit range\n",
      diff, 100 * diff / range);
  EXPECT_LE(diff, 0.05 * range);
  EXPECT_GT(diff, 1e-4);  // the rounding is visible, so the next check is meaningful

  for (auto& p : (*fp32)->model()->parameters()) p.copy_(p.to(torch::kBFloat16).to(torch::kFloat));
  auto rounded = (*fp32)->Forward(ReferenceInputs(), {});
  ASSERT_TRUE(rounded.ok());
  EXPECT_LE(MaxAbsDiff(rounded->logits, ref), 1e-4);
}

// bf16 compute (what a GPU run uses) also works on CPU; agreement is bounded by bf16
// activations (8 mantissa bits through 6 layers): 10% of the logit range.
TEST(EngineBf16ComputeTest, Bf16ComputeAgreesRoughly) {
  torch::NoGradGuard no_grad;
  EngineOptions o;
  o.model_dir = TestData("model_bf16");
  o.device = TestDevice();
  o.dtype = "bf16";
  auto bf16 = Engine::Load(o);
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ((*bf16)->compute_dtype(), torch::kBFloat16);
  auto out = (*bf16)->Forward(ReferenceInputs(), {});
  ASSERT_TRUE(out.ok()) << out.status();
  const torch::Tensor ref = Ref("logits");
  const double range = (ref.max() - ref.min()).item<double>();
  const double diff = MaxAbsDiff(out->logits, ref);
  std::printf("bf16 compute vs fp32 reference: max |diff| %.4g = %.3g%% of the logit range\n", diff,
              100 * diff / range);
  EXPECT_LE(diff, 0.10 * range);
}

class BrokenModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::copy_file(TestData("model_fp32/config.json"), dir_.File("config.json"));
    fs::copy_file(TestData("model_fp32/model.safetensors"), dir_.File("model.safetensors"));
  }
  absl::Status Load() {
    EngineOptions o;
    o.model_dir = dir_.path();
    return Engine::Load(o).status();
  }
  TempDir dir_;
};

TEST_F(BrokenModelTest, TruncatedWeightsNameTheFileAndTensor) {
  fs::resize_file(dir_.File("model.safetensors"),
                  fs::file_size(dir_.File("model.safetensors")) - 4096);
  absl::Status s = Load();
  ASSERT_THAT(
      s,
      StatusIs(absl::StatusCode::kInvalidArgument,
               "model.safetensors: tensor 'vision_tower.encoder.layers.1.self_attn.v_proj.weight': "
               "data_offsets end 1245184 is past"));
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors"));
  EXPECT_THAT(s.message(), HasSubstr("tensor '"));
}

TEST_F(BrokenModelTest, WrongHiddenSizeInConfigNamesTheTensor) {
  std::ifstream in(dir_.File("config.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const std::string from = "\"hidden_size\": 64";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), "\"hidden_size\": 96");
  std::ofstream(dir_.File("config.json"), std::ios::trunc) << text;
  absl::Status s = Load();
  ASSERT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          "model.safetensors: tensor 'language_model.model.embed_tokens.weight' "
                          "has shape [1024, 64] but config.json implies [1024, 96]"));
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors"));
  EXPECT_THAT(s.message(), HasSubstr("has shape"));
  EXPECT_THAT(s.message(), HasSubstr("config.json implies"));
}

TEST_F(BrokenModelTest, MissingWeightsAndBadOptionsFail) {
  fs::remove(dir_.File("model.safetensors"));
  EXPECT_EQ(Load().code(), absl::StatusCode::kNotFound);
  EngineOptions o;
  o.model_dir = TestData("model_fp32");
  o.dtype = "int4";
  EXPECT_THAT(Engine::Load(o).status().message(), HasSubstr("bad dtype"));
  o.dtype = "auto";
  o.device = "potato";
  EXPECT_THAT(Engine::Load(o).status().message(), HasSubstr("bad device"));
}

}  // namespace
}  // namespace pcsweep::engine
