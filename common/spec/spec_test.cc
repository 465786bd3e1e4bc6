#include "common/spec/spec.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep {
namespace {

using ::nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The error message of an invalid spec, or a marker that makes the expectation fail.
std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(yaml, "s.yaml");
  if (spec.ok()) return "<parsed OK>";
  if (spec.status().code() != absl::StatusCode::kInvalidArgument) {
    return "<wrong code> " + spec.status().ToString();
  }
  return std::string(spec.status().message());
}

SweepSpec ParseOrDie(const std::string& yaml) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(yaml, "s.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *std::move(spec) : SweepSpec{};
}

std::vector<std::string> Keys(const SweepSpec& spec) {
  std::vector<std::string> keys;
  for (const JobDefinition& job : spec.jobs) keys.push_back(job.key);
  return keys;
}

const JobDefinition* FindJob(const SweepSpec& spec, const std::string& key) {
  for (const JobDefinition& job : spec.jobs) {
    if (job.key == key) return &job;
  }
  ADD_FAILURE() << "no job " << key;
  return nullptr;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs `command` through /bin/sh as a worker would, with PCSWEEP_OUTPUT_DIR set.
int RunShell(const std::string& command, const std::string& output_dir) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("PCSWEEP_OUTPUT_DIR", output_dir.c_str(), 1);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// ----------------------------------------------------------------------------- the smoke spec

TEST(SmokeSpecTest, ExpandsTo24CellsWhoseCommandWritesMetrics) {
  const std::string root =
      std::getenv("PCSWEEP_SOURCE_ROOT") ? std::getenv("PCSWEEP_SOURCE_ROOT") : ".";
  const std::string yaml = ReadFile(root + "/experiments/specs/smoke.yaml");
  ASSERT_FALSE(yaml.empty());
  SweepSpec spec = ParseOrDie(yaml);
  EXPECT_EQ(spec.name, "smoke");
  EXPECT_EQ(spec.max_attempts, 3);
  ASSERT_EQ(spec.jobs.size(), 24u);
  EXPECT_EQ(spec.jobs[0].key, "smoke[seed=0,sleep=0.2,x=1]");
  EXPECT_EQ(spec.jobs[1].key, "smoke[seed=1,sleep=0.2,x=1]");
  EXPECT_EQ(spec.jobs[2].key, "smoke[seed=0,sleep=0.5,x=1]");
  EXPECT_EQ(spec.jobs[23].key, "smoke[seed=1,sleep=0.5,x=6]");
  std::set<std::string> hashes;
  for (const JobDefinition& job : spec.jobs) {
    EXPECT_EQ(job.kind, "command");
    EXPECT_EQ(job.stage, "smoke");
    EXPECT_TRUE(job.depends_on.empty());
    hashes.insert(job.config_hash);
  }
  EXPECT_EQ(hashes.size(), 24u) << "every cell, seeds included, is its own work";

  const JobDefinition& job = spec.jobs[8];
  ASSERT_EQ(job.key, "smoke[seed=0,sleep=0.2,x=3]");
  const std::string command = job.config.at("command").get<std::string>();
  EXPECT_EQ(command,
            "sh -c 'sleep 0.2; echo {\\\"value\\\": 3} > $PCSWEEP_OUTPUT_DIR/metrics.json'");
  char dir_template[] = "/tmp/spec_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  ASSERT_EQ(RunShell(command, dir), 0);
  const json metrics = json::parse(ReadFile(dir + "/metrics.json"));
  EXPECT_EQ(metrics, json({{"value", 3}}));
  std::remove((dir + "/metrics.json").c_str());
  rmdir(dir.c_str());
}

// ----------------------------------------------------------------------------- expansion

TEST(ParseSweepSpecTest, CartesianProductInFileOrder) {
  SweepSpec spec = ParseOrDie(R"(name: g
job: {kind: command, command: "echo {b} {a}"}
grid:
  b: [2, 1, 3]
  a: [y, x]
)");
  EXPECT_THAT(Keys(spec), ElementsAre("g[a=y,b=2]", "g[a=x,b=2]", "g[a=y,b=1]", "g[a=x,b=1]",
                                      "g[a=y,b=3]", "g[a=x,b=3]"));
  EXPECT_EQ(spec.jobs[3].config, json({{"command", "echo 1 x"}}));
  EXPECT_EQ(spec.jobs[3].params, (std::map<std::string, std::string>{{"a", "x"}, {"b", "1"}}));
  EXPECT_EQ(spec.jobs[3].max_attempts, 3);
}

TEST(ParseSweepSpecTest, NoGridGivesOneJobNamedAfterTheSweep) {
  SweepSpec spec = ParseOrDie("name: one\nmax_attempts: 5\njob: {kind: pretrain, steps: 10}\n");
  ASSERT_EQ(spec.jobs.size(), 1u);
  EXPECT_EQ(spec.jobs[0].key, "one");
  EXPECT_EQ(spec.jobs[0].kind, "pretrain");
  EXPECT_TRUE(spec.jobs[0].params.empty());
  EXPECT_EQ(spec.jobs[0].config, json({{"steps", 10}}));
  EXPECT_EQ(spec.max_attempts, 5);
  EXPECT_EQ(spec.jobs[0].max_attempts, 5);
}

TEST(ParseSweepSpecTest, ExcludeDropsMatchingCellsAndIncludeAppends) {
  SweepSpec spec = ParseOrDie(R"(name: ie
job: {kind: command, command: "echo {x}{y}"}
grid:
  x: [1, 2, 3]
  y: [a, b]
exclude:
  - {x: 2}
  - {x: 3, y: b}
include:
  - {x: 9, y: a}
  - {y: c, x: 1}
)");
  EXPECT_THAT(Keys(spec), ElementsAre("ie[x=1,y=a]", "ie[x=1,y=b]", "ie[x=3,y=a]", "ie[x=9,y=a]",
                                      "ie[x=1,y=c]"));
  EXPECT_EQ(spec.jobs[3].config.at("command"), "echo 9a");
}

TEST(ParseSweepSpecTest, MapsInTheGridAndFieldPlaceholders) {
  SweepSpec spec = ParseOrDie(R"(name: m
job:
  kind: train_eval
  loss: "{loss}"
  loss_kind: "{loss.kind}"
  tag: "l={loss.kind}/{loss}"
grid:
  loss:
    - {kind: ce_only}
    - {kind: combined, lambda: 0.5}
)");
  ASSERT_EQ(spec.jobs.size(), 2u);
  const JobDefinition& combined = spec.jobs[1];
  EXPECT_EQ(combined.params.at("loss"), R"({"kind":"combined","lambda":0.5})");
  EXPECT_EQ(combined.key, R"(m[loss={"kind":"combined","lambda":0.5}])");
  EXPECT_EQ(combined.config.at("loss"), json({{"kind", "combined"}, {"lambda", 0.5}}));
  EXPECT_EQ(combined.config.at("loss_kind"), "combined");
  EXPECT_EQ(combined.config.at("tag"), R"(l=combined/{"kind":"combined","lambda":0.5})");
  EXPECT_EQ(spec.jobs[0].config.at("loss_kind"), "ce_only");
}

TEST(ParseSweepSpecTest, WholeStringPlaceholdersKeepTheValueType) {
  SweepSpec spec = ParseOrDie(R"(name: t
job:
  kind: eval
  n: "{n}"
  f: "{f}"
  b: "{b}"
  s: "{s}"
  text: "n={n} f={f} b={b} s={s}"
  nested: {list: ["{n}", "x{n}"], fixed: 2, flag: false, none: ~}
grid:
  n: [3]
  f: [0.5]
  b: [true]
  s: ["007"]
)");
  ASSERT_EQ(spec.jobs.size(), 1u);
  const json& config = spec.jobs[0].config;
  EXPECT_TRUE(config.at("n").is_number_integer());
  EXPECT_EQ(config.at("n"), 3);
  EXPECT_TRUE(config.at("f").is_number_float());
  EXPECT_EQ(config.at("f"), 0.5);
  EXPECT_EQ(config.at("b"), true);
  EXPECT_EQ(config.at("s"), "007");
  EXPECT_EQ(config.at("text"), "n=3 f=0.5 b=true s=007");
  EXPECT_EQ(config.at("nested"),
            json::parse(R"({"list": [3, "x3"], "fixed": 2, "flag": false, "none": null})"));
  EXPECT_EQ(spec.jobs[0].params.at("s"), "007");
}

TEST(ParseSweepSpecTest, BracesAreLiteralUnlessPlaceholdersAndDoubledBracesEscape) {
  SweepSpec spec = ParseOrDie(R"(name: e
job:
  kind: command
  command: 'echo {{x}} {{{x}}} {"value": {x}} {not one} {1} {x.} }{'
grid: {x: [5]}
)");
  EXPECT_EQ(spec.jobs[0].config.at("command"),
            R"(echo {x} {5} {"value": 5} {not one} {1} {x.} }{)");
}

// ----------------------------------------------------------------------------- stages

constexpr char kStages[] = R"(name: paper
stages:
  - name: eval
    after: [train]
    job: {kind: eval, adapter: "{train.output_dir}/adapter", steps: "{train.steps}"}
    grid: {seed: [0, 1], layers: ["0-1", "2-3"]}
  - name: report
    after: eval
    max_attempts: 1
    job: {kind: command, command: "echo done"}
  - name: pretrain
    job: {kind: pretrain, steps: 100}
  - name: train
    after: [pretrain]
    job: {kind: train_eval, model: "{pretrain.output_dir}", layers: "{layers}", seed: "{seed}"}
    grid: {layers: ["0-1", "2-3"], seed: [0, 1]}
)";

TEST(ParseSweepSpecTest, StagesRunParentsFirstAndDependOnMatchingCells) {
  SweepSpec spec = ParseOrDie(kStages);
  EXPECT_THAT(Keys(spec),
              ElementsAre("pretrain", "train[layers=0-1,seed=0]", "train[layers=0-1,seed=1]",
                          "train[layers=2-3,seed=0]", "train[layers=2-3,seed=1]",
                          "eval[layers=0-1,seed=0]", "eval[layers=2-3,seed=0]",
                          "eval[layers=0-1,seed=1]", "eval[layers=2-3,seed=1]", "report"));
  const JobDefinition* train = FindJob(spec, "train[layers=2-3,seed=1]");
  ASSERT_NE(train, nullptr);
  EXPECT_THAT(train->depends_on, ElementsAre("pretrain"));
  EXPECT_EQ(train->config.at("model"), "{pretrain.output_dir}");
  EXPECT_EQ(train->config.at("seed"), 1);
  const JobDefinition* eval = FindJob(spec, "eval[layers=0-1,seed=1]");
  ASSERT_NE(eval, nullptr);
  EXPECT_THAT(eval->depends_on, ElementsAre("train[layers=0-1,seed=1]"));
  EXPECT_EQ(eval->config.at("adapter"), "{train.output_dir}/adapter");
  EXPECT_EQ(eval->config.at("steps"), "{train.steps}");
  const JobDefinition* report = FindJob(spec, "report");
  ASSERT_NE(report, nullptr);
  EXPECT_EQ(report->depends_on.size(), 4u) << "no shared grid keys: waits for every eval";
  EXPECT_EQ(report->max_attempts, 1);
  EXPECT_EQ(eval->max_attempts, 3);
}

TEST(ParseSweepSpecTest, StageWithFewerKeysWaitsForEveryCellAgreeingOnSharedKeys) {
  SweepSpec spec = ParseOrDie(R"(name: p
stages:
  - name: train
    job: {kind: train_eval}
    grid: {layers: [a, b], seed: [0, 1]}
  - name: summary
    after: [train]
    job: {kind: command, command: "echo {seed}"}
    grid: {seed: [1]}
)");
  const JobDefinition* summary = FindJob(spec, "summary[seed=1]");
  ASSERT_NE(summary, nullptr);
  EXPECT_THAT(summary->depends_on, ElementsAre("train[layers=a,seed=1]", "train[layers=b,seed=1]"));
}

// ----------------------------------------------------------------------------- hashing

TEST(ConfigHashTest, IsSha256OfTheCanonicalJobJson) {
  SweepSpec spec =
      ParseOrDie("name: h\njob: {kind: command, command: \"echo {x}\"}\ngrid: {x: [1]}\n");
  const json canonical = {{"kind", "command"},
                          {"config", {{"command", "echo 1"}}},
                          {"params", {{"x", 1}}},
                          {"parents", json::array()}};
  EXPECT_EQ(spec.jobs[0].config_hash, Sha256Hex(canonical.dump()));
}

TEST(ConfigHashTest, StableAcrossSweepNamesMaxAttemptsKeyOrderAndForms) {
  SweepSpec a = ParseOrDie(
      "name: a\nmax_attempts: 2\njob: {kind: eval, p: 1, q: \"{x}\"}\ngrid: {x: [1, 2]}\n");
  SweepSpec b = ParseOrDie("name: b\njob: {q: \"{x}\", kind: eval, p: 1}\ngrid: {x: [2, 1]}\n");
  SweepSpec c = ParseOrDie(
      "name: c\nstages:\n  - {name: s, job: {kind: eval, p: 1, q: \"{x}\"}, grid: {x: [1]}}\n");
  EXPECT_EQ(a.jobs[0].config_hash, b.jobs[1].config_hash);
  EXPECT_EQ(a.jobs[1].config_hash, b.jobs[0].config_hash);
  EXPECT_EQ(a.jobs[0].config_hash, c.jobs[0].config_hash);
  EXPECT_NE(a.jobs[0].config_hash, a.jobs[1].config_hash);
  EXPECT_EQ(a.jobs[0].config_hash.size(), 64u);
}

TEST(ConfigHashTest, ChangesWithAnySettingKindGridValueOrParent) {
  const std::string base = ParseOrDie("name: a\njob: {kind: eval, p: 1}\n").jobs[0].config_hash;
  EXPECT_NE(base, ParseOrDie("name: a\njob: {kind: eval, p: 2}\n").jobs[0].config_hash);
  EXPECT_NE(base, ParseOrDie("name: a\njob: {kind: eval, p: \"1\"}\n").jobs[0].config_hash);
  EXPECT_NE(base, ParseOrDie("name: a\njob: {kind: pretrain, p: 1}\n").jobs[0].config_hash);
  EXPECT_NE(base, ParseOrDie("name: a\njob: {kind: eval, p: 1, q: 0}\n").jobs[0].config_hash);
  EXPECT_NE(
      base,
      ParseOrDie("name: a\njob: {kind: eval, p: 1}\ngrid: {seed: [0]}\n").jobs[0].config_hash);

  const std::string two_stages = R"(name: p
stages:
  - {name: pre, job: {kind: pretrain, steps: STEPS}}
  - {name: ev, after: [pre], job: {kind: eval, model: "{pre.output_dir}"}}
)";
  auto child_hash = [&](const std::string& steps) {
    std::string yaml = two_stages;
    yaml.replace(yaml.find("STEPS"), 5, steps);
    SweepSpec spec = ParseOrDie(yaml);
    return spec.jobs.size() == 2 ? spec.jobs[1].config_hash : std::string();
  };
  EXPECT_EQ(child_hash("10"), child_hash("10"));
  EXPECT_NE(child_hash("10"), child_hash("20"));
}

// ----------------------------------------------------------------------------- invalid specs

TEST(InvalidSpecTest, MalformedYaml) {
  EXPECT_THAT(ErrorOf("name: x\njob: [unclosed\n"), StartsWith("s.yaml:3:1: "));
  EXPECT_THAT(ErrorOf("name: x\n  bad: indent\n"), StartsWith("s.yaml:2:6: "));
  EXPECT_THAT(ErrorOf(""), AllOf(StartsWith("s.yaml:1:1: "), HasSubstr("must be a map")));
  EXPECT_THAT(ErrorOf("- a\n- b\n"), AllOf(StartsWith("s.yaml:1:1: "), HasSubstr("must be a map")));
}

TEST(InvalidSpecTest, UnknownAndDuplicateKeys) {
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: command, command: echo}\ngird: {x: [1]}\n"),
            "s.yaml:3:1: the spec: unknown key 'gird' (allowed: name, job, grid, include, "
            "exclude, max_attempts)");
  EXPECT_EQ(ErrorOf("name: s\nstages:\n  - name: a\n    aftr: [b]\n    job: {kind: eval}\n"),
            "s.yaml:4:5: stages[0]: unknown key 'aftr' (allowed: name, job, grid, include, "
            "exclude, after, max_attempts)");
  EXPECT_EQ(ErrorOf("name: s\nstages: []\ngrid: {x: [1]}\n"),
            "s.yaml:3:1: the spec: unknown key 'grid' (allowed: name, stages, max_attempts)");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: command, command: echo, cmd: x}\n"),
            "s.yaml:2:37: job: unknown key 'cmd' (allowed: kind, command)");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: eval}\nname: t\n"),
            "s.yaml:3:1: the spec: duplicate key 'name'");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: command, command: echo}\ngrid: {x: [1]}\n"
                    "include: [{x: 2, z: 1}]\n"),
            "s.yaml:4:18: include[0]: unknown key 'z' (allowed: x)");
}

TEST(InvalidSpecTest, WrongTypes) {
  const std::string job = "name: s\njob: {kind: command, command: echo}\n";
  EXPECT_EQ(ErrorOf(job + "grid:\n  x: 5\n"), "s.yaml:4:6: grid.x must be a list");
  EXPECT_EQ(ErrorOf(job + "grid: [1, 2]\n"), "s.yaml:3:7: grid must be a map of key: [values]");
  EXPECT_EQ(ErrorOf(job + "grid: {x: [[1]]}\n"),
            "s.yaml:3:12: grid.x[0] must be a scalar or a map");
  EXPECT_EQ(ErrorOf(job + "grid: {x: [1]}\ninclude: {x: 1}\n"),
            "s.yaml:4:10: include must be a list of cells");
  EXPECT_EQ(ErrorOf(job + "grid: {x: [1]}\nexclude: [1]\n"),
            "s.yaml:4:11: exclude[0] must be a map");
  EXPECT_EQ(ErrorOf(job + "max_attempts: three\n"),
            "s.yaml:3:15: max_attempts must be an integer >= 1, got three");
  EXPECT_EQ(ErrorOf("name: s\njob: echo\n"), "s.yaml:2:6: job must be a map");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: command, command: 42}\n"),
            "s.yaml:2:31: job.command must be a non-empty string");
  EXPECT_EQ(ErrorOf("name: s\nstages: {a: 1}\n"), "s.yaml:2:9: stages must be a list of stages");
  EXPECT_EQ(ErrorOf("name: s\nstages:\n  - {name: a, after: {b: 1}, job: {kind: eval}}\n"),
            "s.yaml:3:22: stages[0].after must be a list of stage names");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: eval, lr: .inf}\n"),
            "s.yaml:2:23: job.lr: non-finite number .inf cannot be stored as JSON; quote it for "
            "a string");
  EXPECT_EQ(ErrorOf("name: my sweep\njob: {kind: eval}\n"),
            "s.yaml:1:7: name 'my sweep' must use only letters, digits, _ - and .");
}

TEST(InvalidSpecTest, MissingKeysAndUnknownKind) {
  EXPECT_EQ(ErrorOf("job: {kind: eval}\n"), "s.yaml:1:1: the spec: missing key 'name'");
  EXPECT_EQ(ErrorOf("name: s\ngrid: {x: [1]}\n"), "s.yaml:1:1: the spec: missing key 'job'");
  EXPECT_EQ(ErrorOf("name: s\njob: {steps: 1}\n"),
            "s.yaml:2:6: job: missing key 'kind' (one of command, pretrain, benchmark, eval, "
            "train_eval, sae_train, sae_transfer, layer_select, clamp_eval)");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: evaluate}\n"),
            "s.yaml:2:13: job.kind: unknown job kind 'evaluate' (known: command, pretrain, "
            "benchmark, eval, train_eval, sae_train, sae_transfer, layer_select, clamp_eval)");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: command}\n"), "s.yaml:2:6: job: missing key 'command'");
  EXPECT_EQ(ErrorOf("name: s\nstages:\n  - {job: {kind: eval}}\n"),
            "s.yaml:3:5: stages[0]: missing key 'name'");
  EXPECT_EQ(ErrorOf("name: s\njob:\n  kind:\n  steps: 3\n"),
            "s.yaml:3:3: job.kind must be a string");
  EXPECT_EQ(ErrorOf("name:\njob: {kind: eval}\n"), "s.yaml:1:1: name must be a string");
}

TEST(InvalidSpecTest, EmptyGridAxisAndExcludedEverything) {
  const std::string job = "name: s\njob: {kind: command, command: echo}\n";
  EXPECT_EQ(ErrorOf(job + "grid: {}\n"), "s.yaml:3:7: grid is empty");
  EXPECT_EQ(ErrorOf(job + "grid:\n  x: []\n"), "s.yaml:4:6: grid.x is empty");
  EXPECT_EQ(ErrorOf(job + "grid:\n"), "s.yaml:3:1: grid must be a map of key: [values]");
  EXPECT_EQ(ErrorOf(job + "grid: {x: [1]}\nexclude: [{x: 1}]\n"),
            "s.yaml:3:7: grid: exclude drops every cell");
  EXPECT_EQ(ErrorOf(job + "grid: {x: [1, 2]}\nexclude: [{x: 3}]\n"),
            "s.yaml:4:11: exclude[0] matches no cell of the grid");
  EXPECT_EQ(ErrorOf(job + "include: [{x: 1}]\n"), "s.yaml:3:1: include needs a grid");
  EXPECT_EQ(ErrorOf(job + "grid: {x-y: [1]}\n"),
            "s.yaml:3:8: grid: key 'x-y' must be an identifier ([A-Za-z_][A-Za-z0-9_]*)");
}

TEST(InvalidSpecTest, DuplicateCellsAndIncludeMissingKeys) {
  const std::string job = "name: s\njob: {kind: command, command: echo}\n";
  EXPECT_EQ(ErrorOf(job + "grid:\n  x: [1, 2, 1]\n"), "s.yaml:4:13: grid.x[2]: duplicate value 1");
  EXPECT_EQ(ErrorOf(job + "grid:\n  x: [1, \"1\"]\n"), "s.yaml:4:10: grid.x[1]: duplicate value 1");
  EXPECT_EQ(
      ErrorOf(job + "grid: {x: [1, 2], y: [a]}\ninclude:\n  - {x: 3, y: a}\n  - {y: a, x: 2}\n"),
      "s.yaml:6:5: include[1] duplicates a cell already in the sweep");
  EXPECT_EQ(ErrorOf(job + "grid: {x: [1], y: [a]}\ninclude:\n  - {x: 3}\n"),
            "s.yaml:5:5: include[0] is missing grid key(s) y");
}

TEST(InvalidSpecTest, Placeholders) {
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: command, command: \"echo {y}\"}\ngrid: {x: [1]}\n"),
            "s.yaml:2:31: job.command: unknown placeholder {y} (grid keys: x; write {{ and }} "
            "for literal braces)");
  EXPECT_EQ(ErrorOf("name: s\njob:\n  kind: eval\n  deep: {list: [1, \"a{zz.f}\"]}\n"),
            "s.yaml:4:20: job.deep.list[1]: unknown placeholder {zz.f} (grid keys: none; write "
            "{{ and }} for literal braces)");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: eval, w: \"{loss.lambda}\"}\n"
                    "grid:\n  loss: [{kind: combined, lambda: 1}, {kind: ce_only}]\n"),
            "s.yaml:2:22: job.w: {loss.lambda} for job s[loss={\"kind\":\"ce_only\"}]: value "
            "{\"kind\":\"ce_only\"} has no field 'lambda'");
  EXPECT_EQ(ErrorOf("name: s\njob: {kind: eval, w: \"{x.f}\"}\ngrid: {x: [1]}\n"),
            "s.yaml:2:22: job.w: {x.f} for job s[x=1]: value 1 has no field 'f'");
}

constexpr char kTwoStages[] = R"(name: s
stages:
  - name: pre
    job: {kind: pretrain}
  - name: ev
    AFTER
    job: {kind: eval, model: "MODEL"}
)";

std::string TwoStages(const std::string& after, const std::string& model) {
  std::string yaml = kTwoStages;
  yaml.replace(yaml.find("AFTER"), 5, after);
  yaml.replace(yaml.find("MODEL"), 5, model);
  return yaml;
}

TEST(InvalidSpecTest, ParentReferences) {
  EXPECT_EQ(ErrorOf(TwoStages("max_attempts: 1", "{pre.output_dir}")),
            "s.yaml:7:30: stages[1].job.model: {pre.output_dir} refers to stage 'pre', which is "
            "not in this stage's after list");
  EXPECT_EQ(ErrorOf(TwoStages("after: [pre]", "{pre}")),
            "s.yaml:7:30: stages[1].job.model: {pre} names parent stage 'pre' without an output, "
            "e.g. {pre.output_dir}");
  EXPECT_EQ(ErrorOf(TwoStages("after: [pre]", "{{pre.output_dir}}")),
            "s.yaml:7:30: stages[1].job.model: for job ev, \"{pre.output_dir}\" contains literal "
            "text that reads as a reference to an after stage");
  SweepSpec ok = ParseOrDie(TwoStages("after: [pre]", "{pre.output_dir}/{{x}}"));
  ASSERT_EQ(ok.jobs.size(), 2u);
  EXPECT_EQ(ok.jobs[1].config.at("model"), "{pre.output_dir}/{x}");
}

TEST(ParseSweepSpecTest, AGridValueMayNameAParentOutput) {
  // The paper demo's middle arm is the range an analysis stage selects.
  SweepSpec spec = ParseOrDie(R"(name: s
stages:
  - {name: select, job: {kind: layer_select}}
  - name: train
    after: [select]
    job: {kind: train_eval, layers: "{layers}", tag: "L{layers}"}
    grid: {layers: [early, "{select.range}"]}
)");
  ASSERT_EQ(spec.jobs.size(), 3u);
  const JobDefinition& selected = spec.jobs[2];
  EXPECT_EQ(selected.params.at("layers"), "{select.range}");
  EXPECT_EQ(selected.config.at("layers"), "{select.range}");
  EXPECT_EQ(selected.depends_on, std::vector<std::string>{"select"});
  absl::StatusOr<json> resolved =
      ResolveParentOutputs(selected.config, {{"select", {{"range", "3-5"}}}});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->at("layers"), "3-5");
  EXPECT_EQ(resolved->at("tag"), "L3-5");

  // Such a value must pick exactly one parent job, as a reference in the job does.
  EXPECT_EQ(ErrorOf(R"(name: s
stages:
  - {name: select, job: {kind: layer_select}, grid: {seed: [0, 1]}}
  - name: train
    after: [select]
    job: {kind: train_eval, layers: "{layers}"}
    grid: {layers: ["{select.range}"]}
)"),
            "s.yaml:4:5: stages[1]: grid value {select.range} of 'layers' is ambiguous for job "
            "train[layers={select.range}]: it matches 2 jobs of stage 'select' (shared grid "
            "keys: none)");
}

TEST(InvalidSpecTest, StageGraph) {
  EXPECT_EQ(ErrorOf(TwoStages("after: [pree]", "m")),
            "s.yaml:6:13: stages[1].after: unknown stage 'pree' (stages: ev, pre)");
  EXPECT_EQ(ErrorOf(TwoStages("after: [pre, pre]", "m")),
            "s.yaml:6:18: stages[1].after: stage 'pre' is listed twice");
  EXPECT_EQ(ErrorOf(R"(name: s
stages:
  - {name: a, after: [c], job: {kind: eval}}
  - {name: b, after: [a], job: {kind: eval}}
  - {name: c, after: [b], job: {kind: eval}}
)"),
            "s.yaml:4:23: dependency cycle: a after c after b after a");
  EXPECT_EQ(ErrorOf("name: s\nstages:\n  - {name: a, after: [a], job: {kind: eval}}\n"),
            "s.yaml:3:23: dependency cycle: a after a");
  EXPECT_EQ(ErrorOf(R"(name: s
stages:
  - {name: a, job: {kind: eval}}
  - {name: a, job: {kind: pretrain}}
)"),
            "s.yaml:4:12: stages[1]: duplicate stage name 'a' (also stages[0])");
  EXPECT_EQ(ErrorOf("name: s\nstages:\n  - {name: a-b, job: {kind: eval}}\n"),
            "s.yaml:3:12: stages[0].name 'a-b' must be an identifier ([A-Za-z_][A-Za-z0-9_]*)");
}

TEST(InvalidSpecTest, DependencyMatching) {
  const std::string train = R"(name: s
stages:
  - name: train
    job: {kind: train_eval}
    grid: {layers: [a, b], seed: [0, 1]}
  - name: ev
    after: [train]
)";
  EXPECT_EQ(ErrorOf(train + "    job: {kind: eval, model: \"{train.output_dir}\"}\n"
                            "    grid: {seed: [0]}\n"),
            "s.yaml:8:30: stages[1].job.model: {train.output_dir} is ambiguous for job "
            "ev[seed=0]: it matches 2 jobs of stage 'train' (shared grid keys: seed)");
  EXPECT_EQ(ErrorOf(train + "    job: {kind: eval}\n    grid: {seed: [0, 2]}\n"),
            "s.yaml:7:13: job ev[seed=2] has no job of stage 'train' to wait for (shared grid "
            "keys: seed)");
  EXPECT_EQ(ErrorOf(train + "    job: {kind: eval}\n    grid: {train: [1]}\n"),
            "s.yaml:9:12: stages[1].grid: key 'train' has the name of an after stage");
}

TEST(InvalidSpecTest, RecursiveAliasesSecondDocumentsAndHugeGridsAreRefused) {
  EXPECT_THAT(ErrorOf("name: x\njob: {kind: eval, a: &x [*x]}\n"),
              AllOf(StartsWith("s.yaml:2:22: job.a[0][0]"), HasSubstr("nested more than 64")));
  EXPECT_EQ(ErrorOf("name: x\njob: {kind: eval}\n---\nname: y\n"),
            "s.yaml:4:1: a spec is one YAML document; found a second one");
  // yaml-cpp 0.7's LoadAll never returns on these (found by spec_fuzzer).
  EXPECT_EQ(ErrorOf(","), "s.yaml:1:1: not YAML here (a stray ',' or similar token)");
  EXPECT_EQ(ErrorOf("# a comment\n,   "),
            "s.yaml:2:1: not YAML here (a stray ',' or similar token)");
  std::string axes;
  for (char key = 'a'; key <= 'f'; ++key) axes += std::string(1, key) + ": [0,1,2,3,4,5,6,7,8,9], ";
  EXPECT_EQ(ErrorOf("name: x\njob: {kind: eval}\ngrid: {" + axes + "}\n"),
            "s.yaml:3:7: grid has more than 100000 cells; split the sweep");
}

TEST(ParseSweepSpecTest, LargeStagedSweepsExpandQuickly) {
  std::string values = "[";
  for (int i = 0; i < 100; ++i) values += std::to_string(i) + (i < 99 ? "," : "]");
  SweepSpec spec = ParseOrDie(
      "name: big\nstages:\n"
      "  - {name: a, job: {kind: train_eval, s: \"{s}\"}, grid: {s: " +
      values + ", t: " + values + "}}\n" +
      "  - {name: b, after: [a], job: {kind: eval, m: \"{a.output_dir}\"},"
      " grid: {s: " +
      values + ", t: " + values + "}}\n");
  ASSERT_EQ(spec.jobs.size(), 20000u);
  EXPECT_THAT(spec.jobs.back().depends_on, ElementsAre("a[s=99,t=99]"));
}

TEST(InvalidSpecTest, MaxAttemptsBelowOne) {
  EXPECT_EQ(ErrorOf("name: s\nmax_attempts: 0\njob: {kind: eval}\n"),
            "s.yaml:2:15: max_attempts must be an integer >= 1, got 0");
  EXPECT_EQ(ErrorOf("name: s\nstages:\n  - {name: a, max_attempts: -1, job: {kind: eval}}\n"),
            "s.yaml:3:29: stages[0].max_attempts must be an integer >= 1, got -1");
}

// ----------------------------------------------------------------------------- outputs, SHA-256

TEST(ResolveParentOutputsTest, SubstitutesParentOutputsAndTypesWholeNumbers) {
  const json config = json::parse(R"({
    "model": "{pretrain.output_dir}",
    "steps": "{train.steps}",
    "lr": "{train.lr}",
    "id": "{train.id}",
    "range": "{select.range}",
    "text": "at {pretrain.output_dir}/x and {train.steps}",
    "list": ["{train.steps}", {"deep": "{pretrain.output_dir}"}],
    "literal": "{other.x} {pretrain} {{x}}",
    "number": 5
  })");
  const std::map<std::string, std::map<std::string, std::string>> outputs = {
      {"pretrain", {{"output_dir", "/w/1"}}},
      {"train", {{"steps", "100"}, {"lr", "1e-3"}, {"id", "007"}}},
      {"select", {{"range", "10-14"}}}};
  absl::StatusOr<json> resolved = ResolveParentOutputs(config, outputs);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(*resolved, json::parse(R"({
    "model": "/w/1",
    "steps": 100,
    "lr": 0.001,
    "id": "007",
    "range": "10-14",
    "text": "at /w/1/x and 100",
    "list": [100, {"deep": "/w/1"}],
    "literal": "{other.x} {pretrain} {{x}}",
    "number": 5
  })"));
  EXPECT_TRUE(resolved->at("steps").is_number_integer());
}

TEST(ResolveParentOutputsTest, MissingOutputIsFailedPreconditionNamingIt) {
  absl::StatusOr<json> resolved = ResolveParentOutputs(json{{"a", {"x", "{train.adapter}"}}},
                                                       {{"train", {{"output_dir", "/w"}}}});
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(resolved.status().message(),
            "parent output {train.adapter} is missing (stage 'train' reported: output_dir)");
}

TEST(ResolveParentOutputsTest, RoundTripsWithParsedSpec) {
  SweepSpec spec = ParseOrDie(kStages);
  const JobDefinition* eval = FindJob(spec, "eval[layers=0-1,seed=0]");
  ASSERT_NE(eval, nullptr);
  absl::StatusOr<json> resolved =
      ResolveParentOutputs(eval->config, {{"train", {{"output_dir", "/o"}, {"steps", "7"}}}});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(*resolved, json({{"adapter", "/o/adapter"}, {"steps", 7}}));
}

TEST(Sha256HexTest, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace pcsweep
