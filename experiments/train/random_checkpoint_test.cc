// WriteRandomCheckpoint on the tiny fixture's config, in a sharded layout made here (the
// MedGemma-4B layout has the same form at 8.6 GB) and in the fixture's own single file.
#include "experiments/train/random_checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/testing/source_path.h"
#include "common/testing/status_matchers.h"
#include "experiments/engine/engine.h"
#include "experiments/engine/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::pcsweep::testutil::StatusIs;
using ::testing::HasSubstr;

const std::string kTinyDir = "experiments/testdata/gemma3-tiny/model_fp32";

class RandomCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("pcsweep_random_ckpt_" + std::to_string(getpid()));
    fs::remove_all(root_);
    like_ = root_ / "like";
    fs::create_directories(like_);
    const fs::path tiny = testutil::SourcePath(kTinyDir);
    fs::copy_file(tiny / "config.json", like_ / "config.json");
    std::ofstream(like_ / "tokenizer_config.json") << "{\"x\": 1}\n";
    // The fixture's names over two shards, as MedGemma's index splits its own.
    auto file = engine::SafetensorsFile::Open((tiny / "model.safetensors").string());
    ASSERT_TRUE(file.ok()) << file.status();
    json map = json::object();
    for (const std::string& name : (*file)->names()) {
      map[name] = name.rfind("vision_tower", 0) == 0 ? "model-00002-of-00002.safetensors"
                                                     : "model-00001-of-00002.safetensors";
    }
    index_ = {{"metadata", {{"total_size", 0}}}, {"weight_map", map}};
    WriteIndex();
  }
  void TearDown() override { fs::remove_all(root_); }

  void WriteIndex() { std::ofstream(like_ / "model.safetensors.index.json") << index_.dump(); }
  RandomCheckpointOptions Options(const std::string& out) const {
    RandomCheckpointOptions o;
    o.like_dir = like_.string();
    o.out_dir = (root_ / out).string();
    return o;
  }
  static json ReadJson(const fs::path& path) { return json::parse(std::ifstream(path)); }

  fs::path root_, like_;
  json index_;
};

TEST_F(RandomCheckpointTest, CopiesTheShardedLayoutAndTheEngineLoadsIt) {
  auto report = WriteRandomCheckpoint(Options("out"));
  ASSERT_TRUE(report.ok()) << report.status();
  const fs::path out = root_ / "out";
  EXPECT_EQ(report->shards, 2);
  EXPECT_EQ(report->tensors, static_cast<int64_t>(index_["weight_map"].size()));
  const json index = ReadJson(out / "model.safetensors.index.json");
  EXPECT_EQ(index["weight_map"], index_["weight_map"]);
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), report->bytes);
  EXPECT_TRUE(fs::exists(out / "tokenizer_config.json"));
  EXPECT_EQ(ReadJson(out / "config.json")["text_config"], [&] {
    json want = ReadJson(like_ / "config.json")["text_config"];
    if (want.contains("dtype")) want["dtype"] = "bfloat16";
    if (want.contains("torch_dtype")) want["torch_dtype"] = "bfloat16";
    return want;
  }());

  auto ckpt = engine::Checkpoint::Open(out.string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  int64_t bytes = 0;
  for (const std::string& name : (*ckpt)->names()) {
    auto view = (*ckpt)->Get(name);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(view->dtype, engine::DType::kBF16) << name;
    bytes += static_cast<int64_t>(view->nbytes);
  }
  EXPECT_EQ(bytes, report->bytes);
  EXPECT_THAT((*ckpt)->FileOf("vision_tower.encoder.layers.0.layer_norm1.weight"),
              HasSubstr("model-00002-of-00002"));

  engine::EngineOptions eo;
  eo.model_dir = out.string();
  auto e = engine::Engine::Load(eo);
  ASSERT_TRUE(e.ok()) << e.status();
  std::map<std::string, torch::Tensor> params;
  for (const auto& item : (*e)->model()->named_parameters()) params[item.key()] = item.value();
  EXPECT_TRUE(
      params.at("language_model.model.layers.0.input_layernorm.weight").eq(0).all().item<bool>());
  EXPECT_TRUE(params.at("vision_tower.vision_model.encoder.layers.0.layer_norm1.weight")
                  .eq(1)
                  .all()
                  .item<bool>());
  const double sd = params.at("language_model.model.embed_tokens.weight").std().item<double>();
  EXPECT_NEAR(sd, 0.02, 0.002);
}

TEST_F(RandomCheckpointTest, FewerLayersEditTheConfigAndDropTheirTensors) {
  RandomCheckpointOptions o = Options("small");
  o.text_layers = 2;
  o.vision_layers = 1;
  o.dtype = "fp32";
  auto report = WriteRandomCheckpoint(o);
  ASSERT_TRUE(report.ok()) << report.status();
  const json config = ReadJson(root_ / "small" / "config.json");
  EXPECT_EQ(config["text_config"]["num_hidden_layers"], 2);
  EXPECT_EQ(config["text_config"]["layer_types"].size(), 2u);
  EXPECT_EQ(config["vision_config"]["num_hidden_layers"], 1);
  for (const auto& [name, shard] :
       ReadJson(root_ / "small" / "model.safetensors.index.json")["weight_map"].items()) {
    EXPECT_THAT(name, ::testing::Not(HasSubstr("layers.2."))) << name;
    EXPECT_THAT(name, ::testing::Not(HasSubstr("encoder.layers.1."))) << name;
  }
  engine::EngineOptions eo;
  eo.model_dir = (root_ / "small").string();
  auto e = engine::Engine::Load(eo);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->config().text.num_hidden_layers, 2);
}

TEST_F(RandomCheckpointTest, ValuesDependOnTheTensorNotOnItsShard) {
  RandomCheckpointOptions single = Options("single");
  single.like_dir = testutil::SourcePath(kTinyDir);  // one model.safetensors
  ASSERT_TRUE(WriteRandomCheckpoint(single).ok());
  ASSERT_TRUE(WriteRandomCheckpoint(Options("sharded")).ok());
  auto a = engine::Checkpoint::Open((root_ / "single").string());
  auto b = engine::Checkpoint::Open((root_ / "sharded").string());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->names(), (*b)->names());
  for (const std::string& name : (*a)->names()) {
    auto va = (*a)->Get(name), vb = (*b)->Get(name);
    ASSERT_EQ(va->nbytes, vb->nbytes) << name;
    EXPECT_EQ(std::memcmp(va->data, vb->data, va->nbytes), 0) << name;
  }
}

TEST_F(RandomCheckpointTest, BadLayoutsAndTargetsFailNamingWhat) {
  ASSERT_TRUE(WriteRandomCheckpoint(Options("out")).ok());
  EXPECT_THAT(WriteRandomCheckpoint(Options("out")),
              StatusIs(absl::StatusCode::kInvalidArgument, "already holds a model"));

  RandomCheckpointOptions too_deep = Options("deep");
  too_deep.text_layers = 99;
  EXPECT_THAT(WriteRandomCheckpoint(too_deep),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "text_config.num_hidden_layers is 6, cannot keep 99 layers"));

  index_["weight_map"]["language_model.model.layers.0.mlp.extra_proj.weight"] =
      "model-00001-of-00002.safetensors";
  WriteIndex();
  EXPECT_THAT(WriteRandomCheckpoint(Options("extra")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tensor 'language_model.model.layers.0.mlp.extra_proj.weight' is not part"));

  index_["weight_map"].erase("language_model.model.layers.0.mlp.extra_proj.weight");
  index_["weight_map"].erase("language_model.model.layers.1.mlp.up_proj.weight");
  WriteIndex();
  auto missing = WriteRandomCheckpoint(Options("missing"));
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kInvalidArgument,
                                "lists no tensor for weight "
                                "'language_model.model.layers.1.mlp.up_proj.weight'"));
  EXPECT_THAT(missing.status().message(), HasSubstr("model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(root_ / "missing"));  // nothing written before the layout checks

  RandomCheckpointOptions bad_dtype = Options("dtype");
  bad_dtype.dtype = "int8";
  EXPECT_THAT(WriteRandomCheckpoint(bad_dtype),
              StatusIs(absl::StatusCode::kInvalidArgument, "bad dtype 'int8'"));
}

}  // namespace
}  // namespace pcsweep::train
