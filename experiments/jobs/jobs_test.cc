// End-to-end tests of the ML job kinds on a tiny model that the pretrain job itself trains
// (once per test binary) on a small synthetic benchmark.
#include "experiments/jobs/jobs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "common/testing/source_path.h"
#include "common/testing/status_matchers.h"
#include "experiments/data/examples_io.h"
#include "experiments/data/synth.h"
#include "experiments/engine/engine.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/benchmark_job.h"
#include "experiments/jobs/job_settings.h"

namespace pcsweep::jobs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(base ? base : fs::temp_directory_path().string()) /
                 ("pcsweep_jobs_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

json TinyPretrainConfig() {
  return json{{"threads", 1},
              {"seed", 3},
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
}

class JobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(TempDir("suite"));
    const std::string out = *root_ + "/pretrain";
    const absl::Status status = RunPretrainJob(
        json{{"kind", "pretrain"}, {"config", TinyPretrainConfig()}, {"output_dir", out}});
    ASSERT_TRUE(status.ok()) << status;
    const json outputs = ReadJson(out + "/outputs.json");
    model_dir_ = new std::string(outputs["model_dir"].get<std::string>());
    data_dir_ = new std::string(outputs["data_dir"].get<std::string>());
  }

  static json TrainEvalConfig() {
    return json{{"threads", 1},
                {"model_dir", *model_dir_},
                {"data_dir", *data_dir_},
                {"layers", "1-2"},
                {"r", 4},
                {"alpha", 8},
                {"dropout", 0.1},
                {"lr", 5e-3},
                {"epochs", 3},
                {"batch_size", 4},
                {"seed", 11},
                {"loss", "combined"},
                {"lambda", 1.0},
                {"schedule", "linear"},
                {"warmup_steps", 1},
                {"eval_batch_size", 7}};
  }

  static absl::Status Run(const std::string& kind, const json& config, const std::string& out) {
    const json job = {
        {"job_id", "j"}, {"attempt", 1}, {"kind", kind}, {"config", config}, {"output_dir", out}};
    if (kind == "train_eval") return RunTrainEvalJob(job);
    if (kind == "eval") return RunEvalJob(job);
    if (kind == "benchmark") return RunBenchmarkJob(job);
    return RunPretrainJob(job);
  }

  static std::string* root_;
  static std::string* model_dir_;
  static std::string* data_dir_;
};
std::string* JobsTest::root_ = nullptr;
std::string* JobsTest::model_dir_ = nullptr;
std::string* JobsTest::data_dir_ = nullptr;

TEST_F(JobsTest, PretrainWritesALoadableHuggingFaceFolder) {
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.model"}) {
    EXPECT_TRUE(fs::exists(fs::path(*model_dir_) / file)) << file;
  }
  const json config = ReadJson(*model_dir_ + "/config.json");
  EXPECT_EQ(config["text_config"]["num_hidden_layers"], 4);
  EXPECT_TRUE(config["text_config"].contains("rope_parameters"));  // transformers 5.x style
  engine::EngineOptions options;
  options.model_dir = *model_dir_;
  auto engine = engine::Engine::Load(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto tokenizer = inputs::Gemma3Tokenizer::Load(*model_dir_);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_FALSE(tokenizer->answer_tokens().yes_ids.empty());
  const json metrics = ReadJson(*root_ + "/pretrain/metrics.json");
  EXPECT_EQ(metrics["train.steps"], 4);
  EXPECT_TRUE(metrics.contains("eval_mimic.flip_rate"));
  EXPECT_TRUE(metrics.contains("eval_balanced.accuracy_original"));
  auto rows = data::ReadExamples(*root_ + "/pretrain/examples.jsonl");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_FALSE(rows->empty());
}

TEST_F(JobsTest, BenchmarkJobWritesAgainTheDataThePretrainedModelLearnt) {
  const json recorded = ReadJson(*model_dir_ + "/benchmark.json");
  EXPECT_EQ(recorded["options"]["seed"], 7);
  EXPECT_EQ(recorded["fingerprint"], *data::BenchmarkFingerprint(*data_dir_));
  const std::string out = TempDir("benchmark");
  const absl::Status status = Run("benchmark", {{"model_dir", *model_dir_}, {"seed", 5}}, out);
  ASSERT_TRUE(status.ok()) << status;
  const json outputs = ReadJson(out + "/outputs.json");
  EXPECT_EQ(outputs["model_dir"], fs::absolute(*model_dir_).string());
  EXPECT_EQ(*data::BenchmarkFingerprint(outputs["data_dir"].get<std::string>()),
            recorded["fingerprint"]);
  EXPECT_EQ(ReadJson(out + "/metrics.json")["benchmark.eval_balanced.questions"], 10);
}

TEST_F(JobsTest, BenchmarkJobRefusesAModelWhoseDataTheGeneratorNoLongerWrites) {
  const std::string model = TempDir("benchmark_stale_model");
  fs::copy(*model_dir_, model, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  json recorded = ReadJson(model + "/benchmark.json");
  recorded["fingerprint"] = "0123456789abcdef";
  std::ofstream(model + "/benchmark.json") << recorded.dump();
  EXPECT_THAT(Run("benchmark", {{"model_dir", model}}, TempDir("benchmark_stale")),
              testutil::StatusIs(absl::StatusCode::kFailedPrecondition,
                                 "than the model was trained on "
                                 "(0123456789abcdef): train the model again"));
  fs::remove(model + "/benchmark.json");
  EXPECT_THAT(Run("benchmark", {{"model_dir", model}}, TempDir("benchmark_missing")),
              testutil::StatusIs(absl::StatusCode::kNotFound, "benchmark.json: cannot read"));
  EXPECT_THAT(
      Run("benchmark", {{"model_dir", model}, {"model", 1}}, TempDir("benchmark_key")),
      testutil::StatusIs(absl::StatusCode::kInvalidArgument, "config: unknown key 'model'"));
}

// The demo's base model as shipped (experiments/models/demo-vlm-v1): its benchmark comes back
// byte for byte from the generator, and it reads the images and flips as PROVENANCE.md says
// (75.5% accuracy on originals, 17.7% flips on eval_mimic's 158 pairs when shipped).
TEST_F(JobsTest, ShippedDemoBaseModelRegeneratesItsBenchmarkAndReadsTheImages) {
  const std::string model = testutil::SourcePath("experiments/models/demo-vlm-v1");
  const std::string bench = TempDir("shipped_benchmark");
  const absl::Status regenerated = Run("benchmark", {{"model_dir", model}}, bench);
  ASSERT_TRUE(regenerated.ok()) << regenerated;
  const json outputs = ReadJson(bench + "/outputs.json");
  const std::string out = TempDir("shipped_eval");
  const json eval_sets =
      json::array({{{"name", "eval_mimic"}, {"path", "eval_mimic.jsonl"}, {"max_pairs", 158}}});
  const absl::Status scored = Run("eval",
                                  {{"model_dir", outputs["model_dir"]},
                                   {"data_dir", outputs["data_dir"]},
                                   {"eval_sets", eval_sets}},
                                  out);
  ASSERT_TRUE(scored.ok()) << scored;
  const json metrics = ReadJson(out + "/metrics.json");
  EXPECT_EQ(metrics["eval_mimic.pairs"], 158);
  EXPECT_GE(metrics["eval_mimic.accuracy_original"].get<double>(), 0.72);  // chance: ~0.5
  EXPECT_GE(metrics["eval_mimic.flip_rate"].get<double>(), 0.10);
  // Not one answer for everything: both answers are given to a fair share of the prompts.
  EXPECT_GT(metrics["eval_mimic.yes_rate"].get<double>(), 0.2);
  EXPECT_LT(metrics["eval_mimic.yes_rate"].get<double>(), 0.8);
}

TEST_F(JobsTest, VisionWarmUpLowersItsLossAndAttentionScaleReachesTheConfig) {
  const std::string out = TempDir("warmup");
  json config = TinyPretrainConfig();
  config["model"]["query_pre_attn_scalar"] = 1;
  config["vision_warmup_steps"] = 30;
  config["vision_warmup_batch_size"] = 16;
  config["evaluate"] = false;
  ASSERT_TRUE(Run("pretrain", config, out).ok());
  const json metrics = ReadJson(out + "/metrics.json");
  EXPECT_EQ(metrics["vision_warmup.steps"], 30);
  EXPECT_GT(metrics["vision_warmup.holdout_images"].get<double>(), 0);
  EXPECT_LT(metrics["vision_warmup.last_loss"].get<double>(),
            metrics["vision_warmup.first_loss"].get<double>() - 0.05);
  EXPECT_EQ(metrics["train.steps"], 4);
  const json saved =
      ReadJson(ReadJson(out + "/outputs.json")["model_dir"].get<std::string>() + "/config.json");
  EXPECT_EQ(saved["text_config"]["query_pre_attn_scalar"], 1.0);
}

TEST_F(JobsTest, TextsPerQuestionKeepsTheOriginalAndThatManyMinusOneParaphrases) {
  const std::string out = TempDir("texts_per_question");
  json config = TinyPretrainConfig();
  config["max_pretrain_questions"] = 20;
  config["texts_per_question"] = 3;
  config["max_steps"] = 1;
  config["evaluate"] = false;
  ASSERT_TRUE(Run("pretrain", config, out).ok());
  json metrics = ReadJson(out + "/metrics.json");
  EXPECT_EQ(metrics["pretrain.questions"], 20);
  EXPECT_EQ(metrics["pretrain.prompts"], 60);

  const std::string all = TempDir("texts_per_question_default");
  config.erase("texts_per_question");  // default: the original and all five paraphrases
  ASSERT_TRUE(Run("pretrain", config, all).ok());
  metrics = ReadJson(all + "/metrics.json");
  EXPECT_EQ(metrics["pretrain.prompts"], 120);
}

TEST_F(JobsTest, CurveEveryLogsHeldOutAccuracyAndLossEveryNStepsAndAfterTheLast) {
  const std::string out = TempDir("curve");
  json config = TinyPretrainConfig();
  config["max_steps"] = 5;
  config["curve_every"] = 2;
  config["curve_max_pairs"] = 12;
  config["evaluate"] = false;
  const absl::Status status = Run("pretrain", config, out);
  ASSERT_TRUE(status.ok()) << status;
  const json metrics = ReadJson(out + "/metrics.json");
  EXPECT_EQ(metrics["curve.every"], 2);
  EXPECT_EQ(metrics["curve.points"], 3);  // steps 2, 4 and the last, 5
  EXPECT_EQ(metrics["curve.pairs"], 12);
  for (const char* step : {"2", "4", "5"}) {
    const std::string prefix = std::string("curve.step_") + step + ".";
    for (const char* name : {"holdout_accuracy", "holdout_loss", "flip_rate", "train_loss"})
      ASSERT_TRUE(metrics.contains(prefix + name)) << prefix + name;
    const double accuracy = metrics[prefix + "holdout_accuracy"].get<double>();
    EXPECT_GE(accuracy, 0.0);
    EXPECT_LE(accuracy, 1.0);
    // Two-way CE of a model near init is close to log 2, never 0 or huge.
    EXPECT_GT(metrics[prefix + "holdout_loss"].get<double>(), 0.3) << step;
    EXPECT_LT(metrics[prefix + "holdout_loss"].get<double>(), 2.0) << step;
  }
  EXPECT_FALSE(metrics.contains("curve.step_1.holdout_accuracy"));
  EXPECT_FALSE(metrics.contains("curve.step_3.holdout_accuracy"));
  // The last point's training loss is the mean of step 5 alone.
  EXPECT_NEAR(metrics["curve.step_5.train_loss"].get<double>(),
              metrics["train.final_loss"].get<double>(), 1e-9);
  EXPECT_EQ(metrics["train.steps"], 5);

  // Training is unchanged by the curve: same seed, same final loss without it.
  const std::string plain = TempDir("curve_off");
  config.erase("curve_every");
  ASSERT_TRUE(Run("pretrain", config, plain).ok());
  EXPECT_EQ(ReadJson(plain + "/metrics.json")["train.final_loss"], metrics["train.final_loss"]);

  config["curve_every"] = 2;
  config["curve_file"] = out + "/missing.jsonl";
  const absl::Status missing = Run("pretrain", config, TempDir("curve_missing"));
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_THAT(std::string(missing.message()),
              AllOf(HasSubstr("config.curve_file"), HasSubstr("missing.jsonl")));
}

TEST_F(JobsTest, TrainEvalLowersTrainingLossAndWritesEverything) {
  const std::string out = TempDir("train_eval");
  json config = TrainEvalConfig();
  config["loss"] = "ce_only";
  config["epochs"] = 6;
  ASSERT_TRUE(Run("train_eval", config, out).ok());
  const json metrics = ReadJson(out + "/metrics.json");
  EXPECT_LT(metrics["train.loss_last_epoch"].get<double>(),
            metrics["train.loss_first_epoch"].get<double>());
  EXPECT_TRUE(metrics.contains("eval_mimic.flip_rate"));
  EXPECT_TRUE(metrics.contains("eval_mimic.base.flip_rate"));
  EXPECT_TRUE(fs::exists(out + "/adapter/adapter_config.json"));
  EXPECT_TRUE(fs::exists(out + "/adapter/adapter_model.safetensors"));
  auto rows = data::ReadExamples(out + "/examples.jsonl");
  ASSERT_TRUE(rows.ok()) << rows.status();
  size_t base = 0, adapted = 0;
  for (const auto& r : *rows) (r.variant == "base" ? base : adapted) += 1;
  EXPECT_EQ(base, adapted);
  EXPECT_GT(base, 0u);
  EXPECT_EQ(ReadJson(out + "/outputs.json")["adapter_dir"], out + "/adapter");
}

TEST_F(JobsTest, SameJobAndSeedGiveSameMetricsAndSavedAdapterReproducesMargins) {
  const std::string a = TempDir("det_a"), b = TempDir("det_b");
  ASSERT_TRUE(Run("train_eval", TrainEvalConfig(), a).ok());
  ASSERT_TRUE(Run("train_eval", TrainEvalConfig(), b).ok());
  json ma = ReadJson(a + "/metrics.json"), mb = ReadJson(b + "/metrics.json");
  for (const char* timing :
       {"train.seconds", "train.examples_per_s", "train.tokens_per_s", "train.forward_share",
        "train.backward_share", "train.optimizer_share"}) {
    ma.erase(timing);
    mb.erase(timing);
  }
  EXPECT_EQ(ma, mb);
  EXPECT_NE(ma["eval_mimic.mean_margin_diff"],
            ma["eval_mimic.base.mean_margin_diff"]);  // training did something

  // A different seed gives a different run.
  const std::string c = TempDir("det_c");
  json other = TrainEvalConfig();
  other["seed"] = 12;
  ASSERT_TRUE(Run("train_eval", other, c).ok());
  EXPECT_NE(ReadJson(c + "/metrics.json")["train.final_loss"], ma["train.final_loss"]);

  // The saved adapter, reloaded by an eval job, reproduces the adapted margins.
  const std::string e = TempDir("reload");
  json eval = {{"threads", 1},
               {"model_dir", *model_dir_},
               {"adapter_dir", a + "/adapter"},
               {"data_dir", *data_dir_}};
  ASSERT_TRUE(Run("eval", eval, e).ok());
  auto trained = data::ReadExamples(a + "/examples.jsonl");
  auto reloaded = data::ReadExamples(e + "/examples.jsonl");
  ASSERT_TRUE(trained.ok() && reloaded.ok());
  std::map<std::string, std::pair<double, double>> adapted;
  for (const auto& r : *trained) {
    if (r.variant == "adapted")
      adapted[r.eval_set + "/" + r.pair_id] = {r.margin_original, r.margin_paraphrase};
  }
  ASSERT_EQ(adapted.size(), reloaded->size());
  for (const auto& r : *reloaded) {
    EXPECT_EQ(r.variant, "adapted");
    const auto& m = adapted.at(r.eval_set + "/" + r.pair_id);
    EXPECT_NEAR(r.margin_original, m.first, 1e-4) << r.pair_id;
    EXPECT_NEAR(r.margin_paraphrase, m.second, 1e-4) << r.pair_id;
  }
  EXPECT_EQ(ReadJson(e + "/metrics.json")["eval_mimic.flip_rate"], ma["eval_mimic.flip_rate"]);
}

// Shared-prefix scoring, frozen-prefix training and activation checkpointing are ways to
// run the same computation: with each switched off, every figure stays within 1e-5.
TEST_F(JobsTest, SpeedModesChangeNoLossNoMarginAndNoMetric) {
  const std::string fast = TempDir("modes_fast"), plain = TempDir("modes_plain");
  json fast_config = TrainEvalConfig();
  fast_config["activation_checkpointing"] = true;  // frozen_prefix, shared prefix: defaults
  json plain_config = TrainEvalConfig();
  plain_config["frozen_prefix"] = false;
  plain_config["shared_prefix_scoring"] = false;
  ASSERT_TRUE(Run("train_eval", fast_config, fast).ok());
  ASSERT_TRUE(Run("train_eval", plain_config, plain).ok());
  const json mf = ReadJson(fast + "/metrics.json"), mp = ReadJson(plain + "/metrics.json");
  EXPECT_EQ(mf["train.frozen_prefix_layer"], 1);
  EXPECT_EQ(mp["train.frozen_prefix_layer"], 0);
  EXPECT_GT(mf["train.frozen_cache_prompts"].get<double>(), 0);
  const std::set<std::string> differ = {"train.seconds",
                                        "train.examples_per_s",
                                        "train.tokens_per_s",
                                        "train.forward_share",
                                        "train.backward_share",
                                        "train.optimizer_share",
                                        "train.frozen_prefix_layer",
                                        "train.frozen_cache_prompts"};
  ASSERT_EQ(mf.size(), mp.size());
  for (const auto& [key, value] : mp.items()) {
    if (differ.count(key) || !value.is_number()) continue;
    EXPECT_NEAR(mf.at(key).get<double>(), value.get<double>(), 1e-5) << key;
  }
  auto rows_fast = data::ReadExamples(fast + "/examples.jsonl");
  auto rows_plain = data::ReadExamples(plain + "/examples.jsonl");
  ASSERT_TRUE(rows_fast.ok() && rows_plain.ok());
  ASSERT_EQ(rows_fast->size(), rows_plain->size());
  for (size_t i = 0; i < rows_plain->size(); ++i) {
    EXPECT_NEAR((*rows_fast)[i].margin_original, (*rows_plain)[i].margin_original, 1e-5) << i;
    EXPECT_NEAR((*rows_fast)[i].margin_paraphrase, (*rows_plain)[i].margin_paraphrase, 1e-5) << i;
  }
}

TEST_F(JobsTest, BadSettingsEndWithOneErrorNamingTheKey) {
  const std::string out = TempDir("bad");
  const std::vector<std::pair<std::pair<std::string, json>, std::string>> cases = {
      {{"lamda", 2}, "unknown key 'lamda'"},
      {{"lr", "fast"}, "config.lr: expected a number"},
      {{"lr", -1}, "config.lr"},
      {{"loss", "kl_only"}, "config.loss: unknown loss 'kl_only'"},
      {{"layers", "2-9"}, "config.layers: layer 4 is out of range"},
      {{"targets", json::array({"q", "qkv"})}, "config.targets"},
      {{"schedule", "step"}, "config.schedule"},
      {{"epochs", 0}, "config.epochs"},
      {{"eval_sets", json::array({"nope"})}, "nope.jsonl"},
  };
  for (const auto& [setting, expected] : cases) {
    json config = TrainEvalConfig();
    config[setting.first] = setting.second;
    const absl::Status status = Run("train_eval", config, out);
    ASSERT_FALSE(status.ok()) << setting.first;
    EXPECT_THAT(std::string(status.message()), HasSubstr(expected)) << setting.first;
    EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos) << status;
  }
  json missing = TrainEvalConfig();
  missing.erase("model_dir");
  EXPECT_THAT(std::string(Run("train_eval", missing, out).message()),
              HasSubstr("config.model_dir: required"));
  EXPECT_THAT(std::string(Run("eval", json{{"model_dir", "/nonexistent"}}, out).message()),
              HasSubstr("config.eval_sets"));
  EXPECT_THAT(
      std::string(
          Run("pretrain", json{{"model", {{"hidden", 3}}}, {"data_dir", "x"}}, out).message()),
      HasSubstr("config.model: unknown key 'hidden'"));
  EXPECT_FALSE(fs::exists(out + "/metrics.json"));
}

TEST(JobSettingsTest, TargetsAndTypedReads) {
  EXPECT_EQ(ParseTargetModules("all", "t")->size(), 7u);
  EXPECT_EQ(ParseTargetModules(json::array({"q_proj", "v"}), "t")->size(), 2u);
  EXPECT_EQ(ParseTargetModules("mlp", "t")->size(), 3u);
  JobSettings s(json{{"a", "3"}, {"b", 2.5}, {"c", true}}, "config");
  EXPECT_EQ(*s.Integer("a", 0, 0, 10), 3);
  EXPECT_THAT(std::string(s.Integer("b", 0, 0, 10).status().message()),
              HasSubstr("config.b: expected an integer"));
  EXPECT_TRUE(*s.Bool("c", false));
  EXPECT_EQ(*s.Number("missing", 1.5, 0, 2), 1.5);
  EXPECT_TRUE(s.CheckAllKeysUsed().ok());
}

TEST(JobSettingsTest, HugeWholeDoubleIsOutOfRangeNotCast) {
  // 1e300 is a whole number as a double; casting it to int64_t would be undefined behaviour.
  JobSettings s(json{{"threads", 1e300}, {"n", -1e19}, {"k", 4.0}}, "config");
  absl::StatusOr<int64_t> threads = s.Integer("threads", 0, 0, 1024);
  EXPECT_EQ(threads.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(threads.status().message()),
              AllOf(HasSubstr("config.threads: "), HasSubstr("is outside [0, 1024]")));
  EXPECT_EQ(s.Integer("n", 0, INT64_MIN, INT64_MAX).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*s.Integer("k", 0, 0, 10), 4);
}

}  // namespace
}  // namespace pcsweep::jobs
