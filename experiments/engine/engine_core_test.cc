// Torch-free tests of the engine's loading layer: safetensors, config.json, weight names,
// LoRA metadata. Fixtures: experiments/testdata (see PROVENANCE.md).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/testing/source_path.h"
#include "common/testing/status_matchers.h"
#include "experiments/engine/gemma3_config.h"
#include "experiments/engine/lora_config.h"
#include "experiments/engine/safetensors.h"
#include "experiments/engine/weight_names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::engine {
namespace {

using ::pcsweep::testutil::StatusIs;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string TestData(const std::string& rel) {
  return testutil::SourcePath("experiments/testdata/" + rel);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A raw file from a header JSON and a data buffer, for corrupt-file cases.
std::string RawSafetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("pcsweep_engine_core_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(SafetensorsTest, WriteThenReadRoundTrips) {
  TempDir dir;
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<int64_t> b = {42, -7};
  ASSERT_TRUE(WriteSafetensors(dir.File("x.safetensors"),
                               {{"b", DType::kI64, {2}, b.data(), b.size() * 8},
                                {"a", DType::kF32, {2, 3}, a.data(), a.size() * 4}},
                               {{"format", "pt"}})
                  .ok());
  const std::string raw = ReadFile(dir.File("x.safetensors"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(raw[i]);
  EXPECT_EQ(header_len % 8, 0u);
  auto file = SafetensorsFile::Open(dir.File("x.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  EXPECT_THAT((*file)->names(), ::testing::ElementsAre("a", "b"));
  auto view = (*file)->Get("a");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(view->data, a.data(), 24), 0);
  auto vb = (*file)->Get("b");
  ASSERT_TRUE(vb.ok());
  EXPECT_EQ(reinterpret_cast<const int64_t*>(vb->data)[1], -7);
  EXPECT_THAT((*file)->Get("c").status().message(), HasSubstr("no tensor 'c'"));
}

TEST(SafetensorsTest, ReadsTheFixtureCheckpoint) {
  auto ckpt = Checkpoint::Open(TestData("gemma3-tiny/model_bf16"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto v = (*ckpt)->Get("language_model.model.embed_tokens.weight");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->dtype, DType::kBF16);
  EXPECT_EQ(v->shape, (std::vector<int64_t>{1024, 64}));
}

TEST(SafetensorsTest, TruncatedFileFailsNamingFileAndTensor) {
  TempDir dir;
  std::string raw = ReadFile(TestData("gemma3-tiny/model_fp32/model.safetensors"));
  WriteFile(dir.File("cut.safetensors"), raw.substr(0, raw.size() - 1000));
  auto file = SafetensorsFile::Open(dir.File("cut.safetensors"));
  ASSERT_THAT(
      file,
      StatusIs(absl::StatusCode::kInvalidArgument,
               "cut.safetensors: tensor 'vision_tower.encoder.layers.1.self_attn.v_proj.weight': "
               "data_offsets end 1245184 is past the data buffer"));
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("cut.safetensors"));
  EXPECT_THAT(file.status().message(), HasSubstr("tensor '"));
  // Cut inside the header too.
  WriteFile(dir.File("cut2.safetensors"), raw.substr(0, 100));
  file = SafetensorsFile::Open(dir.File("cut2.safetensors"));
  ASSERT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument,
                             "cut2.safetensors: truncated: header length 13984 but the"));
  EXPECT_THAT(file.status().message(), HasSubstr("truncated"));
  WriteFile(dir.File("cut3.safetensors"), raw.substr(0, 5));
  EXPECT_THAT(SafetensorsFile::Open(dir.File("cut3.safetensors")).status().message(),
              HasSubstr("truncated"));
}

TEST(SafetensorsTest, CorruptHeadersFailClearly) {
  TempDir dir;
  const std::string data(16, '\0');
  struct Case {
    std::string header, data, expect;
  } cases[] = {
      {"not json", data, "not valid JSON"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,99]}})", data, "past the data buffer"},
      {R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data, "need 12"},
      {R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})", data, "unsupported dtype"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})",
       data, "overlaps"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data, "cover"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data, "gap"},
      {R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data, "shape"},
      {R"({"w":{"dtype":"F32","shape":[4]}})", data, "data_offsets"},
      // 2^62 floats are 2^64 bytes: the product wraps to 0 (issue 17 #9).
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", "",
       "holds 0 bytes but dtype F32 and its shape need 4611686018427387904 x 4"},
      {R"({"w":{"dtype":"F64","shape":[2,2305843009213693952],"data_offsets":[0,0]}})", "",
       "holds 0 bytes but dtype F64 and its shape need 4611686018427387904 x 8"},
      {R"({"w":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", "",
       "shape overflows"},
  };
  for (const auto& c : cases) {
    WriteFile(dir.File("bad.safetensors"), RawSafetensors(c.header, c.data));
    auto file = SafetensorsFile::Open(dir.File("bad.safetensors"));
    ASSERT_FALSE(file.ok()) << c.header;
    EXPECT_THAT(file.status().message(), HasSubstr(c.expect)) << c.header;
    EXPECT_THAT(file.status().message(), HasSubstr("bad.safetensors"));
  }
  std::string huge(8, '\xff');
  WriteFile(dir.File("huge.safetensors"), huge + "{}");
  EXPECT_THAT(SafetensorsFile::Open(dir.File("huge.safetensors")).status().message(),
              HasSubstr("header length"));
  EXPECT_EQ(SafetensorsFile::Open(dir.File("nope.safetensors")).status().code(),
            absl::StatusCode::kNotFound);
}

// Resident set of this process in KiB (/proc/self/status VmRSS).
int64_t ResidentKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST(SafetensorsTest, ReleasedPagesLeaveTheResidentSetAndReadBackTheSame) {
  TempDir dir;
  std::vector<float> big(16 << 20);  // 64 MiB
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 1000);
  ASSERT_TRUE(
      WriteSafetensors(
          dir.File("big.safetensors"),
          {{"w", DType::kF32, {static_cast<int64_t>(big.size())}, big.data(), big.size() * 4}})
          .ok());
  big = {};
  big.shrink_to_fit();
  auto file = SafetensorsFile::Open(dir.File("big.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  auto view = (*file)->Get("w");
  ASSERT_TRUE(view.ok());
  auto checksum = [&] {
    double sum = 0;
    const auto* f = reinterpret_cast<const float*>(view->data);
    for (int64_t i = 0; i < view->numel(); ++i) sum += f[i];
    return sum;
  };
  const double before = checksum();  // every page now resident
  const int64_t touched_kib = ResidentKib();
  (*file)->ReleasePages(*view);
  const int64_t released_kib = ResidentKib();
  EXPECT_GT(touched_kib - released_kib, 60 * 1024) << touched_kib << " -> " << released_kib;
  EXPECT_EQ(checksum(), before);
}

TEST(SafetensorsTest, ShardedCheckpointViaIndex) {
  TempDir dir;
  std::vector<float> a = {1, 2}, b = {3, 4, 5};
  ASSERT_TRUE(
      WriteSafetensors(dir.File("s1.safetensors"), {{"a", DType::kF32, {2}, a.data(), 8}}).ok());
  ASSERT_TRUE(
      WriteSafetensors(dir.File("s2.safetensors"), {{"b", DType::kF32, {3}, b.data(), 12}}).ok());
  WriteFile(
      dir.File("model.safetensors.index.json"),
      R"({"metadata":{"total_size":20},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  auto ckpt = Checkpoint::Open(dir.File(""));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_THAT((*ckpt)->names(), ::testing::ElementsAre("a", "b"));
  EXPECT_THAT((*ckpt)->FileOf("b"), HasSubstr("s2.safetensors"));
  EXPECT_THAT((*ckpt)->Get("zz").status().message(), HasSubstr("missing tensor 'zz'"));
  WriteFile(dir.File("model.safetensors.index.json"), R"({"weight_map":{"a":"s2.safetensors"}})");
  auto bad = Checkpoint::Open(dir.File(""));
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            "model.safetensors.index.json: tensor 'a' is mapped to"));
  EXPECT_THAT(bad.status().message(), HasSubstr("'a'"));
}

TEST(Gemma3ConfigTest, ParsesTransformers4Style) {
  auto c = LoadGemma3Config(TestData("medgemma-4b-it"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->text.hidden_size, 2560);
  EXPECT_EQ(c->text.num_hidden_layers, 34);
  EXPECT_EQ(c->text.sliding_window, 1024);
  EXPECT_DOUBLE_EQ(c->text.rope_full.theta, 1e6);
  EXPECT_DOUBLE_EQ(c->text.rope_full.linear_factor, 8.0);
  EXPECT_DOUBLE_EQ(c->text.rope_sliding.theta, 1e4);
  EXPECT_DOUBLE_EQ(c->text.rope_sliding.linear_factor, 1.0);
  for (int i = 0; i < 34; ++i) {
    EXPECT_EQ(c->text.layer_types[i], (i + 1) % 6 == 0 ? LayerType::kFull : LayerType::kSliding)
        << i;
  }
  EXPECT_EQ(c->vision.num_patches(), 4096);
  EXPECT_EQ(c->image_token_index, 262144);
  EXPECT_EQ(c->mm_tokens_per_image, 256);
}

TEST(Gemma3ConfigTest, ParsesTransformers5Style) {
  auto c = LoadGemma3Config(TestData("gemma3-tiny/model_fp32/config.json"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->text.hidden_size, 64);
  EXPECT_EQ(c->text.head_dim, 16);
  EXPECT_EQ(c->text.sliding_window, 8);
  EXPECT_EQ(c->text.layer_types[2], LayerType::kFull);
  EXPECT_EQ(c->text.layer_types[3], LayerType::kSliding);
  EXPECT_DOUBLE_EQ(c->text.rope_full.linear_factor, 8.0);
  EXPECT_DOUBLE_EQ(c->text.rope_sliding.theta, 10000.0);
  EXPECT_EQ(c->image_token_index, 1002);
  EXPECT_EQ(c->mm_tokens_per_image, 16);
}

TEST(Gemma3ConfigTest, MissingKeysTakeTransformersDefaults) {
  // google/gemma-3-4b-it's config omits most text keys.
  auto c = ParseGemma3Config(R"({"model_type":"gemma3","text_config":{"hidden_size":2560,
      "num_hidden_layers":34,"intermediate_size":10240,"rope_scaling":{"factor":8.0,"rope_type":"linear"},
      "sliding_window":1024},"vision_config":{"hidden_size":1152,"image_size":896,"intermediate_size":4304,
      "num_attention_heads":16,"num_hidden_layers":27,"patch_size":14}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->text.num_attention_heads, 8);
  EXPECT_EQ(c->text.num_key_value_heads, 4);
  EXPECT_EQ(c->text.head_dim, 256);
  EXPECT_EQ(c->text.vocab_size, 262208);
  EXPECT_DOUBLE_EQ(c->text.query_pre_attn_scalar, 256);
  EXPECT_DOUBLE_EQ(c->text.rope_full.theta, 1e6);
  EXPECT_DOUBLE_EQ(c->text.rope_sliding.theta, 1e4);
  EXPECT_EQ(c->text.layer_types[5], LayerType::kFull);
  EXPECT_EQ(c->text.layer_types[6], LayerType::kSliding);
  EXPECT_EQ(c->boi_token_index, 255999);
}

TEST(Gemma3ConfigTest, BadConfigsFailNamingTheKey) {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {R"({"text_config":{"hidden_size":"big"}})", "text_config.hidden_size"},
      {R"({"text_config":{"num_attention_heads":6,"num_key_value_heads":4}})",
       "num_key_value_heads"},
      {R"({"text_config":{"num_hidden_layers":3,"layer_types":["full_attention"]}})",
       "layer_types"},
      {R"({"text_config":{"rope_scaling":{"rope_type":"yarn","factor":2}}})",
       "unsupported rope type"},
      {R"({"vision_config":{"image_size":30,"patch_size":4}})", "patch_size"},
      {R"({"model_type":"llama"})", "model_type"},
      {R"({"text_config": 3})", "text_config"},
      {"{", "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseGemma3Config(c.json, "cfg.json");
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.expect)) << c.json;
    EXPECT_THAT(parsed.status().message(), HasSubstr("cfg.json"));
  }
}

TEST(WeightNamesTest, MedGemmaExpectedNamesEqualThe883IndexNames) {
  auto config = LoadGemma3Config(TestData("medgemma-4b-it"));
  ASSERT_TRUE(config.ok());
  nlohmann::json index =
      nlohmann::json::parse(ReadFile(TestData("medgemma-4b-it/model.safetensors.index.json")));
  std::set<std::string> stored;
  for (const auto& [name, shard] : index["weight_map"].items()) stored.insert(name);
  ASSERT_EQ(stored.size(), 883u);
  std::set<std::string> expected;
  int64_t total_bytes = 0;
  for (const auto& w : ExpectedWeights(*config)) {
    expected.insert(w.name);
    int64_t n = 1;
    for (int64_t d : w.shape) n *= d;
    total_bytes += 2 * n;  // bf16
  }
  EXPECT_EQ(expected, stored);
  EXPECT_EQ(total_bytes, index["metadata"]["total_size"].get<int64_t>());
  for (const auto& name : stored) {
    auto canonical = CanonicalWeightName(name);
    ASSERT_TRUE(canonical.ok() && canonical->has_value()) << name;
    EXPECT_EQ(**canonical, name);
  }
}

TEST(WeightNamesTest, AllLayoutsMapToCanonical) {
  const std::pair<const char*, const char*> cases[] = {
      {"model.language_model.layers.3.mlp.up_proj.weight",
       "language_model.model.layers.3.mlp.up_proj.weight"},
      {"vision_tower.encoder.layers.0.mlp.fc1.bias",
       "vision_tower.vision_model.encoder.layers.0.mlp.fc1.bias"},
      {"model.vision_tower.vision_model.post_layernorm.weight",
       "vision_tower.vision_model.post_layernorm.weight"},
      {"model.multi_modal_projector.mm_soft_emb_norm.weight",
       "multi_modal_projector.mm_soft_emb_norm.weight"},
  };
  for (const auto& [in, out] : cases) {
    auto c = CanonicalWeightName(in);
    ASSERT_TRUE(c.ok() && c->has_value()) << in;
    EXPECT_EQ(**c, out);
  }
  EXPECT_FALSE(CanonicalWeightName("lm_head.weight")->has_value());
  EXPECT_FALSE(CanonicalWeightName("language_model.lm_head.weight")->has_value());
  EXPECT_THAT(CanonicalWeightName("encoder.foo").status().message(), HasSubstr("encoder.foo"));
}

TEST(WeightNamesTest, TinyFixtureNamesAndShapesMatch) {
  auto config = LoadGemma3Config(TestData("gemma3-tiny/model_fp32"));
  ASSERT_TRUE(config.ok());
  auto ckpt = Checkpoint::Open(TestData("gemma3-tiny/model_fp32"));
  ASSERT_TRUE(ckpt.ok());
  std::map<std::string, std::vector<int64_t>> stored;
  for (const auto& name : (*ckpt)->names()) {
    auto c = CanonicalWeightName(name);
    ASSERT_TRUE(c.ok()) << c.status();
    if (c->has_value()) stored[**c] = (*ckpt)->Get(name)->shape;
  }
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& w : ExpectedWeights(*config)) expected[w.name] = w.shape;
  EXPECT_EQ(stored, expected);
}

TEST(LoraConfigTest, ParsesTheFixtureAdapterConfig) {
  auto c = ParseAdapterConfig(ReadFile(TestData("gemma3-tiny/lora_adapter/adapter_config.json")),
                              "a.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->settings.r, 4);
  EXPECT_DOUBLE_EQ(c->settings.scaling(), 2.0);
  EXPECT_FALSE(c->target_modules_regex.empty());
  LoraSettings rs{16, 32, true, 0.0};
  EXPECT_DOUBLE_EQ(rs.scaling(), 8.0);
  auto bad = ParseAdapterConfig(R"({"peft_type":"LORA","r":4,"use_dora":true})", "a.json");
  EXPECT_THAT(bad.status().message(), HasSubstr("use_dora"));
  EXPECT_THAT(ParseAdapterConfig(R"({"r":0})", "a.json").status().message(), HasSubstr("r:"));
  auto list =
      ParseAdapterConfig(R"({"target_modules":["q_proj","v_proj"],"layers_to_transform":3})", "a");
  ASSERT_TRUE(list.ok());
  EXPECT_THAT(list->target_modules_list, ::testing::ElementsAre("q_proj", "v_proj"));
  EXPECT_THAT(list->layers_to_transform, ::testing::ElementsAre(3));
}

TEST(LoraConfigTest, AdapterKeysRoundTrip) {
  bool is_a = false;
  auto t = ParseAdapterKey(
      "base_model.model.model.language_model.layers.12.mlp.down_proj.lora_B.weight", &is_a);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->layer, 12);
  EXPECT_EQ(t->module, LoraModule::kDown);
  EXPECT_FALSE(is_a);
  EXPECT_EQ(AdapterKey(*t, false),
            "base_model.model.model.language_model.layers.12.mlp.down_proj.lora_B.weight");
  auto legacy = ParseAdapterKey(
      "base_model.model.language_model.model.layers.2.self_attn.q_proj.lora_A.weight", &is_a);
  ASSERT_TRUE(legacy.ok());
  EXPECT_TRUE(is_a);
  auto vision = ParseAdapterKey(
      "base_model.model.model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.lora_A."
      "weight",
      &is_a);
  EXPECT_THAT(vision.status().message(), HasSubstr("vision tower"));
  EXPECT_FALSE(ParseAdapterKey(
                   "base_model.model.model.language_model.layers.1.mlp.q_proj.lora_A.weight", &is_a)
                   .ok());
}

TEST(LoraConfigTest, TargetRegexSelectsExactlyTheTargets) {
  std::set<LoraTarget> targets;
  for (int layer : {10, 11, 20}) {
    for (LoraModule m : kAllLoraModules) targets.insert({layer, m});
  }
  targets.insert({3, LoraModule::kQ});
  const std::regex re(TargetModulesRegex(targets));
  for (int layer = 0; layer < 34; ++layer) {
    for (LoraModule m : kAllLoraModules) {
      const std::string name =
          "model.language_model.layers." + std::to_string(layer) + "." + LoraModulePath(m);
      EXPECT_EQ(std::regex_match(name, re), targets.count({layer, m}) > 0) << name;
    }
  }
  EXPECT_FALSE(
      std::regex_match("model.vision_tower.vision_model.encoder.layers.10.self_attn.q_proj", re));
  EXPECT_FALSE(std::regex_match("model.language_model.layers.10.self_attn.q_norm", re));
  auto json = nlohmann::json::parse(AdapterConfigJson({4, 8, false, 0.0}, targets, "base"));
  EXPECT_EQ(json["peft_type"], "LORA");
  EXPECT_EQ(json["r"], 4);
  EXPECT_EQ(json["target_modules"], TargetModulesRegex(targets));
}

TEST(ParseLayersTest, NamedRangesScaleWithDepth) {
  EXPECT_EQ(*ParseLayers("early", 34, "l"), std::vector<int>({0, 1, 2, 3, 4}));
  EXPECT_EQ(*ParseLayers("middle", 34, "l"), std::vector<int>({15, 16, 17, 18, 19}));
  EXPECT_EQ(*ParseLayers("late", 34, "l"), std::vector<int>({29, 30, 31, 32, 33}));
  EXPECT_EQ(*ParseLayers("early", 8, "l"), std::vector<int>({0, 1}));
  EXPECT_EQ(*ParseLayers("middle", 8, "l"), std::vector<int>({3, 4}));
  EXPECT_EQ(ParseLayers("all", 8, "l")->size(), 8u);
}

TEST(ParseLayersTest, RangesListsAndNumbersAreSortedAndUnique) {
  EXPECT_EQ(*ParseLayers("15-19", 34, "l"), std::vector<int>({15, 16, 17, 18, 19}));
  EXPECT_EQ(*ParseLayers(nlohmann::json::array({3, "0-1", 3}), 8, "l"),
            std::vector<int>({0, 1, 3}));
  EXPECT_EQ(*ParseLayers("0,2", 8, "l"), std::vector<int>({0, 2}));
  EXPECT_EQ(*ParseLayers(5, 8, "l"), std::vector<int>({5}));
}

TEST(ParseLayersTest, MalformedSettingsNameWhereAndTheModelDepth) {
  EXPECT_THAT(ParseLayers("4-2", 8, "config.layers"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "config.layers: range '4-2' is reversed (model has 8"));
  EXPECT_THAT(ParseLayers("6-9", 8, "--layers"),
              StatusIs(absl::StatusCode::kInvalidArgument, "--layers: layer 8 is out of range"));
  EXPECT_THAT(ParseLayers("top", 8, "l"),
              StatusIs(absl::StatusCode::kInvalidArgument, "l: cannot read 'top'"));
  EXPECT_THAT(ParseLayers(nlohmann::json::array(), 8, "l"),
              StatusIs(absl::StatusCode::kInvalidArgument, "l: cannot read []"));
}

}  // namespace
}  // namespace pcsweep::engine
