// Tests of the SAE module: the Gemma Scope layout against the transformers-made fixture,
// errors, R², clamping, training, `forward --sae`, and the job kinds end to end on a tiny
// model that the pretrain job trains once per test binary.
#include "experiments/sae/sae.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/jobfile/job_kinds.h"
#include "common/testing/status_matchers.h"
#include "experiments/engine/engine.h"
#include "experiments/engine/safetensors.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/jobs.h"
#include "experiments/sae/sae_jobs.h"
#include "experiments/sae/sae_trainer.h"

namespace pcsweep::sae {
namespace {

using ::pcsweep::testutil::StatusIs;

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

std::string Root() {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  return root ? root : ".";
}
std::string Tiny() { return Root() + "/experiments/testdata/gemma3-tiny"; }

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(base ? base : fs::temp_directory_path().string()) /
                 ("pcsweep_sae_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

torch::Tensor ReadTensor(const std::string& path, const std::string& name) {
  auto file = engine::SafetensorsFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  auto view = (*file)->Get(name);
  EXPECT_TRUE(view.ok()) << view.status();
  return torch::from_blob(const_cast<std::byte*>(view->data), view->shape, torch::kFloat).clone();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json ReadJson(const std::string& path) { return json::parse(ReadText(path)); }

// Every job kind and eval option, registered once per process: by the registry test when it
// ran before (its calls must be the first), else here.
void EnsureJobKindsRegistered() {
  static const bool registered = [] {
    jobs::RegisterTrainJobKinds().IgnoreError();
    RegisterSaeJobKinds().IgnoreError();
    return true;
  }();
  (void)registered;
}

// The spec parser accepts exactly common/jobfile's kinds; pcsweep-run must serve each of them
// but `command` (the worker's own), or a spec that parses fails only on a worker.
TEST(JobKindRegistryTest, PcsweepRunServesEveryKindASpecAcceptsButCommand) {
  ASSERT_THAT(jobs::RegisterTrainJobKinds(), ::pcsweep::testutil::IsOk());
  ASSERT_THAT(RegisterSaeJobKinds(), ::pcsweep::testutil::IsOk());
  std::vector<std::string> expected;
  for (absl::string_view kind : jobfile::kJobKinds) {
    if (kind != jobfile::kCommandKind) expected.emplace_back(kind);
  }
  EXPECT_THAT(jobs::RegisteredJobKinds(), ::testing::UnorderedElementsAreArray(expected));
  EXPECT_THAT(RegisterSaeJobKinds(),
              StatusIs(absl::StatusCode::kAlreadyExists, "job kind 'sae_train'"));
  // ... and `clamp` as an option of `eval`.
  EXPECT_THAT(jobs::RegisterEvalOption({"clamp", nullptr}),
              StatusIs(absl::StatusCode::kAlreadyExists, "eval option 'clamp'"));
}

TEST(JumpReluSaeTest, ReproducesTheFixtureReconstruction) {
  auto sae = JumpReluSae::Load(Tiny() + "/sae_layer2");
  ASSERT_TRUE(sae.ok()) << sae.status();
  EXPECT_EQ(sae->d_model(), 64);
  EXPECT_EQ(sae->d_sae(), 256);
  const torch::Tensor x = ReadTensor(Tiny() + "/reference.safetensors", "hidden_states.3");
  const torch::Tensor expected = ReadTensor(Tiny() + "/reference.safetensors", "sae_recon");
  const torch::Tensor recon = sae->Reconstruct(x);
  EXPECT_LE((recon - expected).abs().max().item<double>(), 1e-5);
  EXPECT_GT(sae->Encode(x).ne(0).sum().item<int64_t>(), 0);  // some features fire
}

TEST(JumpReluSaeTest, MismatchedDModelNamesFileAndSizes) {
  auto sae = JumpReluSae::Load(Tiny() + "/sae_layer2");
  ASSERT_TRUE(sae.ok());
  const absl::Status status = sae->CheckDModel(2560, "the model's hidden_size");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("params.safetensors"));
  EXPECT_THAT(status.message(), HasSubstr("64"));
  EXPECT_THAT(status.message(), HasSubstr("2560"));
}

TEST(JumpReluSaeTest, MalformedFilesNameTheTensor) {
  const std::string dir = TempDir("bad_sae");
  std::vector<float> w_enc(4 * 8), w_dec(8 * 3), b_enc(8), b_dec(4),
      threshold(8);  // w_dec: wrong d_model
  std::vector<engine::TensorToWrite> tensors = {
      {"w_enc", engine::DType::kF32, {4, 8}, w_enc.data(), w_enc.size() * 4},
      {"w_dec", engine::DType::kF32, {8, 3}, w_dec.data(), w_dec.size() * 4},
      {"b_enc", engine::DType::kF32, {8}, b_enc.data(), b_enc.size() * 4},
      {"b_dec", engine::DType::kF32, {4}, b_dec.data(), b_dec.size() * 4},
      {"threshold", engine::DType::kF32, {8}, threshold.data(), threshold.size() * 4}};
  ASSERT_TRUE(engine::WriteSafetensors(dir + "/params.safetensors", tensors).ok());
  auto bad = JumpReluSae::Load(dir);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("params.safetensors: tensor 'w_dec' has shape [8, 3], expected [8, 4]"));
  tensors.erase(tensors.begin() + 4);
  ASSERT_TRUE(engine::WriteSafetensors(dir + "/params.safetensors", tensors).ok());
  EXPECT_THAT(JumpReluSae::Load(dir).status().message(),
              HasSubstr("missing SAE tensor 'threshold'"));
  EXPECT_EQ(JumpReluSae::Load(dir + "/nothing").status().code(), absl::StatusCode::kNotFound);
}

TEST(JumpReluSaeTest, SaveLoadRoundTripAndConfigLayer) {
  torch::manual_seed(1);
  auto sae = JumpReluSae::FromTensors(torch::randn({6, 10}), torch::randn({10, 6}),
                                      torch::randn({10}), torch::randn({6}), torch::rand({10}));
  ASSERT_TRUE(sae.ok());
  const std::string dir = TempDir("roundtrip");
  ASSERT_TRUE(sae->Save(dir, {{"hf_hook_point_in", "model.layers.5.output"}}).ok());
  auto loaded = JumpReluSae::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(torch::equal(loaded->w_dec(), sae->w_dec()));
  EXPECT_TRUE(torch::equal(loaded->threshold(), sae->threshold()));
  EXPECT_EQ(loaded->ConfigLayer(), 5);
  EXPECT_EQ(loaded->config()["width"], 10);
  EXPECT_EQ(loaded->config()["architecture"], "jump_relu");
}

// An SAE that reconstructs exactly (features relu(x) and relu(−x)) and then is shifted by
// b_dec = c, so SSE = T·‖c‖² and R² is known in closed form.
TEST(ReconstructionStatsTest, RSquaredAndL0) {
  const torch::Tensor eye = torch::eye(3);
  auto exact = JumpReluSae::FromTensors(torch::cat({eye, -eye}, 1), torch::cat({eye, -eye}, 0),
                                        torch::zeros({6}), torch::zeros({3}), torch::zeros({6}));
  ASSERT_TRUE(exact.ok());
  const torch::Tensor x =
      torch::tensor({1.0f, -2.0f, 0.5f, 3.0f, 1.0f, -1.0f, -1.0f, 0.0f, 2.0f}).view({3, 3});
  ReconstructionStats s = MeasureReconstruction(*exact, x);
  EXPECT_NEAR(s.r2(), 1.0, 1e-12);
  EXPECT_NEAR(s.l0, 8.0 / 3.0, 1e-12);  // one zero entry
  const torch::Tensor c = torch::tensor({0.5f, -1.0f, 0.25f});
  auto shifted = JumpReluSae::FromTensors(torch::cat({eye, -eye}, 1), torch::cat({eye, -eye}, 0),
                                          torch::zeros({6}), c, torch::zeros({6}));
  ASSERT_TRUE(shifted.ok());
  s = MeasureReconstruction(*shifted, x);
  const double sse = 3 * (0.25 + 1.0 + 0.0625);
  const double sst = 8.0 + 42.0 / 9.0 + 4.5;  // per column: Σ (x − column mean)²
  EXPECT_NEAR(s.sse, sse, 1e-9);
  EXPECT_NEAR(s.sst, sst, 1e-9);
  EXPECT_NEAR(s.r2(), 1.0 - sse / sst, 1e-12);
  EXPECT_NEAR(s.fvu(), sse / sst, 1e-12);
}

TEST(FeatureClampTest, ScaleOneIsANoOpAndZeroRemovesTheFeature) {
  engine::EngineOptions options;
  options.model_dir = Tiny() + "/model_fp32";
  auto engine = engine::Engine::Load(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto sae = JumpReluSae::Load(Tiny() + "/sae_layer2");
  ASSERT_TRUE(sae.ok());
  engine::ModelInputs in;
  in.input_ids = ReadTensor(Tiny() + "/reference.safetensors", "text_input_ids").to(torch::kLong);
  if (in.input_ids.numel() == 0) GTEST_SKIP();
  torch::NoGradGuard no_grad;
  engine::ForwardOptions plain;
  plain.capture_layers = {2};
  auto base = (*engine)->Forward(in, plain);
  ASSERT_TRUE(base.ok()) << base.status();
  // The strongest feature at layer 2.
  const torch::Tensor f = sae->Encode(base->layer_outputs.at(2));
  const int64_t feature = f.abs().sum(std::vector<int64_t>{0, 1}).argmax().item<int64_t>();
  ASSERT_GT(f.select(-1, feature).abs().max().item<double>(), 0);

  engine::ForwardOptions one = plain;
  one.residual_hook = MakeFeatureClampHook(*sae, 2, feature, 1.0);
  auto same = (*engine)->Forward(in, one);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(torch::equal(same->logits, base->logits));

  engine::ForwardOptions zero = plain;
  zero.residual_hook = MakeFeatureClampHook(*sae, 2, feature, 0.0);
  auto clamped = (*engine)->Forward(in, zero);
  ASSERT_TRUE(clamped.ok());
  const torch::Tensor expected =
      base->layer_outputs.at(2) - f.select(-1, feature).unsqueeze(-1) * sae->w_dec()[feature];
  EXPECT_LE((clamped->layer_outputs.at(2) - expected).abs().max().item<double>(), 1e-5);
  EXPECT_FALSE(torch::allclose(clamped->logits, base->logits));
  // The clamped feature is gone from the edited stream (up to the encoder's re-read).
  EXPECT_LT(
      sae->Encode(clamped->layer_outputs.at(2)).select(-1, feature).abs().max().item<double>(),
      f.select(-1, feature).abs().max().item<double>());
}

// Sparse data: each row mixes 2 of 24 directions with positive weights.
TEST(SaeTrainerTest, LearnsASparseDictionary) {
  torch::manual_seed(0);
  const int64_t d = 16, atoms = 24, n = 3000;
  torch::Tensor dict = torch::randn({atoms, d});
  dict = dict / dict.norm(2, 1, true);
  torch::Tensor codes = torch::zeros({n, atoms});
  const torch::Tensor idx = torch::randint(atoms, {n, 2}, torch::kLong);
  codes.scatter_(1, idx, torch::rand({n, 2}) + 0.5);
  const torch::Tensor x = torch::matmul(codes, dict) + 3.0;  // an offset like a residual mean
  SaeTrainOptions options;
  options.width = 64;
  options.steps = 1500;
  options.batch_size = 256;
  SaeTrainReport report;
  auto sae = TrainJumpReluSae(x.narrow(0, 0, 2500), options, &report);
  ASSERT_TRUE(sae.ok()) << sae.status();
  const ReconstructionStats held = MeasureReconstruction(*sae, x.narrow(0, 2500, 500));
  EXPECT_GT(held.r2(), 0.9) << "L0 " << held.l0;
  EXPECT_LT(held.l0, 24);
  EXPECT_GT(sae->threshold().min().item<double>(), 0);
  EXPECT_EQ(TrainJumpReluSae(x.narrow(0, 0, 1), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseSparsityPenalty("l2"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   "unknown sparsity penalty 'l2' (l0, l1)"));
}

TEST(ForwardSaeTest, AddsSaeReconOfTheLayerOutput) {
  const std::string dir = TempDir("forward");
  const std::string out = dir + "/out.safetensors";
  fs::copy_file(Tiny() + "/reference.safetensors", out);
  ASSERT_TRUE(AddSaeReconstructions(out, {"2:" + Tiny() + "/sae_layer2"}).ok());
  const torch::Tensor ours = ReadTensor(out, "sae_recon.2");
  const torch::Tensor expected = ReadTensor(out, "sae_recon");
  EXPECT_LE((ours - expected).abs().max().item<double>(), 1e-5);
  EXPECT_THAT(AddSaeReconstructions(out, {"5:" + Tiny() + "/sae_layer2"}).message(),
              HasSubstr("final norm"));
  EXPECT_THAT(AddSaeReconstructions(out, {"two:x"}).message(), HasSubstr("expected LAYER:DIR"));
}

// ---------------------------------------------------------------------------------------
// Job kinds on a tiny pretrained model.

class SaeJobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(TempDir("suite"));
    const json pretrain = {{"threads", 1},
                           {"seed", 3},
                           {"evaluate", false},
                           {"synth",
                            {{"seed", 7},
                             {"image_size", 32},
                             {"pretrain_questions", 60},
                             {"train_questions", 24},
                             {"eval_mimic_questions", 10},
                             {"eval_balanced_questions", 10}}},
                           {"model",
                            {{"hidden_size", 32},
                             {"intermediate_size", 64},
                             {"num_hidden_layers", 4},
                             {"num_attention_heads", 2},
                             {"num_key_value_heads", 1},
                             {"head_dim", 16},
                             {"vision_hidden_size", 32},
                             {"vision_intermediate_size", 64},
                             {"vision_layers", 1},
                             {"vision_heads", 2},
                             {"image_size", 32},
                             {"patch_size", 8},
                             {"mm_tokens_per_image", 4}}},
                           {"epochs", 1},
                           {"max_steps", 4},
                           {"batch_size", 16},
                           {"warmup_steps", 1}};
    const absl::Status status = jobs::RunPretrainJob(
        {{"kind", "pretrain"}, {"config", pretrain}, {"output_dir", *root_ + "/pretrain"}});
    ASSERT_TRUE(status.ok()) << status;
    model_dir_ = new std::string(*root_ + "/pretrain/model");
    data_dir_ = new std::string(*root_ + "/pretrain/data");
  }
  static std::string* root_;
  static std::string* model_dir_;
  static std::string* data_dir_;
};
std::string* SaeJobsTest::root_ = nullptr;
std::string* SaeJobsTest::model_dir_ = nullptr;
std::string* SaeJobsTest::data_dir_ = nullptr;

TEST_F(SaeJobsTest, TrainTransferSelectClamp) {
  const std::string train_out = *root_ + "/sae_train";
  absl::Status status = RunSaeTrainJob({{"kind", "sae_train"},
                                        {"output_dir", train_out},
                                        {"config",
                                         {{"threads", 1},
                                          {"model_dir", *model_dir_},
                                          {"data_dir", *data_dir_},
                                          {"layer", "middle"},
                                          {"steps", 300},
                                          {"max_prompts", 80}}}});
  ASSERT_TRUE(status.ok()) << status;
  const json train_metrics = ReadJson(train_out + "/metrics.json");
  EXPECT_EQ(train_metrics["sae_train.layer"], 2);
  EXPECT_TRUE(train_metrics.contains("heldout.r2_mean"));
  const json train_outputs = ReadJson(train_out + "/outputs.json");
  const std::string sae_dir = train_outputs["sae_dir"];
  auto sae = JumpReluSae::Load(sae_dir);
  ASSERT_TRUE(sae.ok()) << sae.status();
  EXPECT_EQ(sae->ConfigLayer(), 2);
  EXPECT_EQ(sae->d_model(), 32);

  const std::string prompts = *root_ + "/prompts.txt";
  std::ofstream(prompts)
      << "# comment\nIs there a pleural effusion?\nWhat is the capital of France?\n"
         "Describe the weather today.\n";
  const std::string transfer_out = *root_ + "/sae_transfer";
  status = RunSaeTransferJob({{"kind", "sae_transfer"},
                              {"output_dir", transfer_out},
                              {"config",
                               {{"threads", 1},
                                {"model_dir", *model_dir_},
                                {"sae_dir", sae_dir},
                                {"prompt_sets", {{{"name", "mine"}, {"path", prompts}}, "medical"}},
                                {"max_prompts", 5}}}});
  ASSERT_TRUE(status.ok()) << status;
  const json transfer = ReadJson(transfer_out + "/metrics.json");
  EXPECT_EQ(transfer["mine.prompts"], 3);
  EXPECT_EQ(transfer["medical.prompts"], 5);
  EXPECT_EQ(transfer["sae_transfer.layer"], 2);  // from the SAE's config.json
  for (const char* key :
       {"mine.r2_mean", "mine.p_value", "mine.fvu", "mine.l0", "mine.r2_ci_low"}) {
    EXPECT_TRUE(transfer.contains(key)) << key;
  }
  EXPECT_NEAR(transfer["mine.fvu"].get<double>(), 1.0 - transfer["mine.r2_mean"].get<double>(),
              1e-9);

  const std::string select_out = *root_ + "/layer_select";
  status = RunLayerSelectJob({{"kind", "layer_select"},
                              {"output_dir", select_out},
                              {"config",
                               {{"threads", 1},
                                {"model_dir", *model_dir_},
                                {"data_dir", *data_dir_},
                                {"layers", "1-3"},
                                {"min_active_pairs", 1},
                                {"sae", {{"steps", 200}, {"max_prompts", 60}}}}}});
  ASSERT_TRUE(status.ok()) << status;
  const json selected = ReadJson(select_out + "/outputs.json");
  const int layer = std::stoi(selected["layer"].get<std::string>());
  EXPECT_GE(layer, 1);
  EXPECT_LE(layer, 3);
  EXPECT_EQ(selected["range"], absl::StrCat(std::max(0, std::min(layer - 1, 1)), "-",
                                            std::max(0, std::min(layer - 1, 1)) + 2));
  EXPECT_THAT(selected["reason"].get<std::string>(),
              HasSubstr("feature " + selected["feature"].get<std::string>()));
  const json select_metrics = ReadJson(select_out + "/metrics.json");
  EXPECT_EQ(select_metrics["layer_select.layer"], layer);
  EXPECT_TRUE(fs::exists(selected["sae_dir"].get<std::string>() + "/params.safetensors"));

  // A bad key is one clear line.
  status = RunLayerSelectJob(
      {{"kind", "layer_select"},
       {"output_dir", select_out + "_bad"},
       {"config", {{"model_dir", *model_dir_}, {"data_dir", *data_dir_}, {"lyers", "1"}}}});
  EXPECT_THAT(status.message(), HasSubstr("unknown key 'lyers'"));

  const std::string clamp_out = *root_ + "/clamp";
  status = RunClampEvalJob(
      {{"kind", "clamp_eval"},
       {"output_dir", clamp_out},
       {"config",
        {{"threads", 1},
         {"model_dir", *model_dir_},
         {"data_dir", *data_dir_},
         // The same eval-set entries as eval/train_eval (objects, caps).
         {"eval_sets", {{{"name", "eval_mimic"}, {"path", "eval_mimic.jsonl"}, {"max_pairs", 5}}}},
         {"sae_dir", selected["sae_dir"]},
         {"feature", selected["feature"]},  // a string, as a placeholder gives it
         {"scale", 1.0}}}});
  ASSERT_TRUE(status.ok()) << status;
  const json clamp = ReadJson(clamp_out + "/metrics.json");
  // Scale 1 changes nothing: the clamped run equals the unclamped one.
  EXPECT_EQ(clamp["eval_mimic.flip_rate"], clamp["eval_mimic.base.flip_rate"]);
  EXPECT_EQ(clamp["eval_mimic.accuracy_all"], clamp["eval_mimic.base.accuracy_all"]);
  EXPECT_EQ(clamp["eval_mimic.clamp.flip_rate_change"], 0.0);
  EXPECT_EQ(clamp["clamp.layer"], layer);
  EXPECT_EQ(clamp["eval_mimic.pairs"], 5);

  status = RunClampEvalJob({{"kind", "clamp_eval"},
                            {"output_dir", clamp_out + "_bad"},
                            {"config",
                             {{"model_dir", *model_dir_},
                              {"data_dir", *data_dir_},
                              {"sae_dir", selected["sae_dir"]},
                              {"feature", 100000}}}});
  EXPECT_THAT(status.message(), HasSubstr("config.feature: 100000 is outside"));
  status = RunSaeTransferJob(
      {{"kind", "sae_transfer"},
       {"output_dir", transfer_out + "_bad"},
       {"config", {{"model_dir", *model_dir_}, {"sae_dir", Tiny() + "/sae_layer2"}}}});
  EXPECT_THAT(status.message(), HasSubstr("d_model 64 but the model's hidden_size has 32"));
}

// Clamping as the `clamp` option of an `eval` job (the kind a sweep spec gives), through the
// dispatcher: the same files as the clamp_eval job with the same settings.
TEST_F(SaeJobsTest, EvalWithClampRunsAsClampEval) {
  torch::manual_seed(5);
  auto random_sae =
      JumpReluSae::FromTensors(0.3 * torch::randn({32, 16}), 0.3 * torch::randn({16, 32}),
                               torch::zeros({16}), torch::zeros({32}), torch::full({16}, 0.01));
  ASSERT_TRUE(random_sae.ok()) << random_sae.status();
  const std::string sae_dir = *root_ + "/random_sae";
  ASSERT_TRUE(random_sae->Save(sae_dir, {{"hf_hook_point_in", "model.layers.2.output"}}).ok());
  const json config = {
      {"threads", 1},
      {"model_dir", *model_dir_},
      {"data_dir", *data_dir_},
      {"eval_sets", {{{"name", "eval_mimic"}, {"path", "eval_mimic.jsonl"}, {"max_pairs", 6}}}}};
  const json clamp = {{"sae_dir", sae_dir}, {"feature", "3"}, {"scale", 0.0}};
  json clamp_eval_config = config;
  clamp_eval_config.update(clamp);
  const std::string clamp_out = *root_ + "/clamp_eval_random";
  ASSERT_THAT(
      RunClampEvalJob(
          {{"kind", "clamp_eval"}, {"output_dir", clamp_out}, {"config", clamp_eval_config}}),
      ::pcsweep::testutil::IsOk());

  EnsureJobKindsRegistered();
  const std::string eval_out = *root_ + "/eval_clamp_random";
  json eval = {{"kind", "eval"}, {"output_dir", eval_out}, {"config", config}};
  eval["config"]["clamp"] = clamp;
  std::ofstream(*root_ + "/eval_clamp.json") << eval.dump();
  ASSERT_THAT(jobs::RunJobFile(*root_ + "/eval_clamp.json"), ::pcsweep::testutil::IsOk());
  for (const char* file : {"metrics.json", "outputs.json", "examples.jsonl"}) {
    EXPECT_EQ(ReadText(eval_out + "/" + file), ReadText(clamp_out + "/" + file)) << file;
  }
  EXPECT_TRUE(ReadJson(eval_out + "/metrics.json").contains("eval_mimic.clamp.flip_rate_change"));

  // The option's own errors are the job's.
  eval["config"]["clamp"] = 5;
  std::ofstream(*root_ + "/eval_clamp_bad.json") << eval.dump();
  EXPECT_THAT(jobs::RunJobFile(*root_ + "/eval_clamp_bad.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "config.clamp: expected {sae_dir, layer, feature, scale}"));
  eval["config"]["clamp"] = {{"threads", 2}};
  std::ofstream(*root_ + "/eval_clamp_bad.json") << eval.dump();
  EXPECT_THAT(jobs::RunJobFile(*root_ + "/eval_clamp_bad.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "config.clamp.threads: also given outside config.clamp"));
}

}  // namespace
}  // namespace pcsweep::sae
