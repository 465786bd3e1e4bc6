// Runs the built `pcsweep-run` binary: `forward` must reproduce transformers' reference
// tensors for gemma3-tiny, and `run --job` must reject unknown kinds with one clear line.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "experiments/engine/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::runner {
namespace {

namespace fs = std::filesystem;
using engine::DType;
using engine::SafetensorsFile;
using ::testing::HasSubstr;

std::string Root(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  return v ? v : fallback;
}
std::string TestData(const std::string& rel) {
  return (fs::path(Root("PCSWEEP_SOURCE_ROOT", ".")) / "experiments/testdata/gemma3-tiny" / rel)
      .string();
}
std::string Binary() {
  return (fs::path(Root("PCSWEEP_BINARY_ROOT", "build")) / "bin/pcsweep-run").string();
}

struct Result {
  int code;
  std::string output;
};
Result RunBinary(const std::string& args) {
  const std::string cmd = Binary() + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

double MaxAbsDiff(const SafetensorsFile& a, const SafetensorsFile& b, const std::string& name) {
  auto x = a.Get(name);
  auto y = b.Get(name);
  EXPECT_TRUE(x.ok() && y.ok()) << name;
  if (!x.ok() || !y.ok()) return 1e9;
  EXPECT_EQ(x->shape, y->shape) << name;
  EXPECT_EQ(x->dtype, DType::kF32);
  if (x->nbytes != y->nbytes) return 1e9;
  const auto* p = reinterpret_cast<const float*>(x->data);
  const auto* q = reinterpret_cast<const float*>(y->data);
  double worst = 0;
  for (int64_t i = 0; i < x->numel(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(p[i] - q[i])));
  return worst;
}

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pcsweep_runner_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(RunnerTest, ForwardWritesTensorsMatchingTransformers) {
  const std::string out = (dir_ / "out.safetensors").string();
  Result r =
      RunBinary("forward --model " + TestData("model_bf16") + " --bf16-rope-freqs --inputs " +
                TestData("reference.safetensors") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  auto ours = SafetensorsFile::Open(out);
  auto ref = SafetensorsFile::Open(TestData("reference.safetensors"));
  ASSERT_TRUE(ours.ok() && ref.ok());
  EXPECT_LE(MaxAbsDiff(**ours, **ref, "logits"), 1e-4);
  EXPECT_LE(MaxAbsDiff(**ours, **ref, "image_features"), 1e-4);
  EXPECT_LE(MaxAbsDiff(**ours, **ref, "text_logits"), 1e-4);
  for (int i = 0; i <= 6; ++i) {
    EXPECT_LE(MaxAbsDiff(**ours, **ref, "hidden_states." + std::to_string(i)), 1e-4) << i;
  }
}

TEST_F(RunnerTest, ForwardWithAdapterMatchesLoraLogits) {
  const std::string out = (dir_ / "lora.safetensors").string();
  Result r =
      RunBinary("forward --model " + TestData("model_bf16") + " --bf16-rope-freqs --adapter " +
                TestData("lora_adapter") + " --dtype fp32 --inputs " +
                TestData("reference.safetensors") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  auto ours = SafetensorsFile::Open(out);
  auto ref = SafetensorsFile::Open(TestData("reference.safetensors"));
  ASSERT_TRUE(ours.ok() && ref.ok());
  auto logits = (*ours)->Get("logits");
  auto lora = (*ref)->Get("lora_logits");
  ASSERT_TRUE(logits.ok() && lora.ok());
  const auto* p = reinterpret_cast<const float*>(logits->data);
  const auto* q = reinterpret_cast<const float*>(lora->data);
  double worst = 0;
  for (int64_t i = 0; i < lora->numel(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(p[i] - q[i])));
  EXPECT_LE(worst, 1e-4);
}

TEST_F(RunnerTest, ErrorsAreOneClearLine) {
  Result r =
      RunBinary("forward --model " + (dir_ / "none").string() + " --inputs " +
                TestData("reference.safetensors") + " --out " + (dir_ / "x.safetensors").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.output, HasSubstr("pcsweep-run: "));
  EXPECT_THAT(r.output, HasSubstr("config"));

  const std::string job = (dir_ / "job.json").string();
  std::ofstream(job) << R"({"kind": "teleport", "config": {}})";
  r = RunBinary("run --job " + job);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.output, HasSubstr("unknown job kind 'teleport'"));
  std::ofstream(job, std::ios::trunc) << "{oops";
  r = RunBinary("run --job " + job);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.output, HasSubstr("not valid JSON"));
}

// Issue 17 #9 and #10: inputs that used to abort (rc 134) end with one line and exit 1.
TEST_F(RunnerTest, HostileInputsAndJobFilesExitOneWithOneLine) {
  // 2^62 float32 elements are 2^64 bytes: numel * 4 wraps to 0 = the data it claims.
  const std::string header =
      R"({"input_ids":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  const std::string inputs = (dir_ / "wrap.safetensors").string();
  std::ofstream(inputs, std::ios::binary) << bytes << header;
  Result r = RunBinary("forward --model " + TestData("model_bf16") + " --inputs " + inputs +
                       " --out " + (dir_ / "x.safetensors").string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("pcsweep-run: " + inputs + ": tensor 'input_ids': holds 0 bytes"));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;

  const std::string job = (dir_ / "job.json").string();
  std::ofstream(job) << R"({"kind": ["eval"], "config": {"clamp": {}}})";
  r = RunBinary("run --job " + job);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(r.output, "pcsweep-run: " + job + ": job needs a string \"kind\"\n");
}

TEST_F(RunnerTest, SmokeRunsTheFullPathOnARandomCheckpointInTheFixtureLayout) {
  const std::string model = (dir_ / "random").string();
  Result r = RunBinary("random-checkpoint --like " + TestData("model_fp32") + " --out " + model);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("wrote 119 tensors"));
  r = RunBinary("smoke --model " + model + " --layers 1-2 --max-rss-gb 8");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* phase : {"\nload ", "\nscore ", "\ntrain ", "\nrescore ", "\nreload "})
    EXPECT_THAT(r.output, HasSubstr(phase));
  EXPECT_THAT(r.output, HasSubstr("|\u0394| 0 vs before saving"));
  EXPECT_THAT(r.output, HasSubstr("smoke: ok"));

  r = RunBinary("smoke --model " + model + " --layers 3-9");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(r.output,
            "pcsweep-run: --layers: layer 6 is out of range (model has 6 layers; use \"all\", "
            "\"early\", \"middle\", \"late\", \"a-b\" or a list)\n");
  r = RunBinary("smoke --model " + model + " --layers 1-2 --max-rss-gb 0.01");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("exceeds --max-rss-gb 0.01"));
  r = RunBinary("smoke --model " + model + " --no-such-flag");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  r = RunBinary("random-checkpoint --like " + TestData("model_fp32") + " --out " + model);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("already holds a model"));
}

}  // namespace
}  // namespace pcsweep::runner
