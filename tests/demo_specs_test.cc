// The paper-ablation specs expand into the grid the paper describes.
#include <fstream>
#include <set>
#include <sstream>

#include "common/spec/spec.h"
#include "common/testing/source_path.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep {
namespace {

std::string ReadSpec(const std::string& relative) {
  std::ifstream in(testutil::SourcePath(relative));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct StageCounts {
  std::map<std::string, int> jobs;
  std::set<std::string> layers, losses, seeds;
  std::set<std::string> combined_lambdas;
  std::map<std::string, std::set<std::string>> lambdas_per_range;
};

StageCounts Count(const SweepSpec& spec) {
  StageCounts counts;
  for (const JobDefinition& job : spec.jobs) {
    ++counts.jobs[job.stage];
    if (job.stage != "train") continue;
    counts.layers.insert(job.params.at("layers"));
    counts.losses.insert(job.params.at("loss"));
    counts.seeds.insert(job.params.at("seed"));
    if (job.params.at("loss") != "combined") continue;
    counts.combined_lambdas.insert(job.params.at("lambda"));
    counts.lambdas_per_range[job.params.at("layers")].insert(job.params.at("lambda"));
  }
  return counts;
}

TEST(DemoSpecsTest, PaperAblation_ShippedBaseModelBaselineAndTheGrid) {
  const std::string path = "experiments/specs/paper-ablation.yaml";
  auto spec = ParseSweepSpec(ReadSpec(path), path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const StageCounts counts = Count(*spec);
  for (const char* stage :
       {"base", "baseline", "sae_train", "sae_transfer", "layer_select", "clamp"}) {
    EXPECT_EQ(counts.jobs.at(stage), 1) << stage;
  }
  EXPECT_EQ(counts.jobs.count("pretrain"), 0u) << "the demo starts from the shipped model";
  // (ce_only + consistency_only) x 3 ranges + combined x (3 lambdas on the selected range,
  // lambda 1 on early and all), x 5 seeds.
  EXPECT_EQ(counts.jobs.at("train"), (2 * 3 + 3 + 1 + 1) * 5);
  // The middle arm is the range the SAE analysis selects, resolved when the job is leased.
  EXPECT_EQ(counts.layers, (std::set<std::string>{"early", "{layer_select.range}", "all"}));
  EXPECT_EQ(counts.losses, (std::set<std::string>{"ce_only", "combined", "consistency_only"}));
  EXPECT_EQ(counts.lambdas_per_range.at("{layer_select.range}"),
            (std::set<std::string>{"0.5", "1", "2"}));
  EXPECT_EQ(counts.lambdas_per_range.at("early"), (std::set<std::string>{"1"}));
  EXPECT_EQ(counts.lambdas_per_range.at("all"), (std::set<std::string>{"1"}));
  EXPECT_EQ(counts.seeds, (std::set<std::string>{"0", "1", "2", "3", "4"}));
  for (const JobDefinition& job : spec->jobs) {
    if (job.stage == "base") {
      EXPECT_EQ(job.kind, "benchmark");
      EXPECT_EQ(job.config.at("model_dir"), "experiments/models/demo-vlm-v1");
    }
    if (job.stage != "train") continue;
    // Every train job waits for the base model, the baseline evaluation and layer_select.
    EXPECT_EQ(job.depends_on.size(), 3u) << job.key;
    EXPECT_EQ(job.config.at("model_dir"), "{base.model_dir}") << job.key;
  }
}

TEST(DemoSpecsTest, DemoBaseModel_FourModelSeedsOnOneBenchmark) {
  const std::string path = "experiments/specs/demo-base-model.yaml";
  auto spec = ParseSweepSpec(ReadSpec(path), path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->jobs.size(), 4u);
  std::set<std::string> model_seeds, data_seeds;
  for (const JobDefinition& job : spec->jobs) {
    EXPECT_EQ(job.kind, "pretrain");
    model_seeds.insert(job.config.at("seed").dump());
    data_seeds.insert(job.config.at("synth").at("seed").dump());
  }
  EXPECT_EQ(model_seeds.size(), 4u);
  EXPECT_EQ(data_seeds, (std::set<std::string>{"0"}));
}

TEST(DemoSpecsTest, MedgemmaPsfmed_TheRealSettingsGrid) {
  const std::string path = "experiments/specs/medgemma-psfmed.yaml";
  auto spec = ParseSweepSpec(ReadSpec(path), path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const StageCounts counts = Count(*spec);
  EXPECT_EQ(counts.jobs.at("baseline"), 1);
  EXPECT_EQ(counts.jobs.at("train"), 3 * 5 * 5);
  EXPECT_EQ(counts.layers, (std::set<std::string>{"15-19", "0-4", "0-33"}));
  EXPECT_EQ(counts.seeds.size(), 5u);
  const JobDefinition* train = nullptr;
  for (const JobDefinition& job : spec->jobs) {
    if (job.stage == "train") train = &job;
  }
  ASSERT_NE(train, nullptr);
  const nlohmann::json& config = train->config;
  EXPECT_EQ(config.at("r"), 16);
  EXPECT_EQ(config.at("alpha"), 32);
  EXPECT_DOUBLE_EQ(config.at("dropout").get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(config.at("lr").get<double>(), 2e-4);
  EXPECT_EQ(config.at("batch_size").get<int>() * config.at("grad_accum").get<int>(), 8);
  EXPECT_EQ(config.at("epochs"), 3);
  // Both eval sets (the YAML alias expands into each stage).
  ASSERT_EQ(config.at("eval_sets").size(), 2u);
  EXPECT_EQ(config.at("eval_sets")[1].at("format"), "flipbank");
}

TEST(DemoSpecsTest, ReducedDemo_Parses) {
  const std::string path = "tests/demo_reduced.yaml";
  auto spec = ParseSweepSpec(ReadSpec(path), path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->jobs.size(), 5u);
}

}  // namespace
}  // namespace pcsweep
