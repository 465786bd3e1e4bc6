// Bounds and quoting of sweep specs (issue 17): shell-quoted values in command jobs, control
// characters refused in grid values, size, dependency-edge and deadline limits, hashed exclude.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/spec/shell_quote.h"
#include "common/spec/spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Runs `command` through /bin/sh as a worker does, with W set to `dir`; returns its stdout.
std::string RunShell(const std::string& command, const std::string& dir) {
  const std::string out = dir + "/stdout";
  pid_t pid = fork();
  if (pid == 0) {
    setenv("W", dir.c_str(), 1);
    const std::string redirected = absl::StrCat("(", command, ") > ", out);
    execl("/bin/sh", "sh", "-c", redirected.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(out);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

fs::path FreshDir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat(name, "-", getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(ShellQuoteTest, LeavesSafeWordsAndQuotesTheRest) {
  EXPECT_EQ(ShellQuote("0.5"), "0.5");
  EXPECT_EQ(ShellQuote("/data/run-1"), "/data/run-1");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote("$(id)"), "'$(id)'");
}

TEST(CommandQuotingTest, GridValueWithShellSyntaxIsOneLiteralWordAndRunsNothing) {
  const fs::path dir = FreshDir("spec-quoting");
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(
      "name: q\njob: {kind: command, command: \"printf '[%s]' {x} {y}\"}\n"
      "grid:\n  x: [\"x; touch $W/pwned\", \"it's `touch $W/pwned2`\"]\n  y: [\"$(touch "
      "$W/p3)\"]\n",
      "q.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->jobs.size(), 2u);
  EXPECT_EQ(RunShell(spec->jobs[0].config["command"], dir.string()),
            "[x; touch $W/pwned][$(touch $W/p3)]");
  EXPECT_EQ(RunShell(spec->jobs[1].config["command"], dir.string()),
            "[it's `touch $W/pwned2`][$(touch $W/p3)]");
  EXPECT_FALSE(fs::exists(dir / "pwned"));
  EXPECT_FALSE(fs::exists(dir / "pwned2"));
  EXPECT_FALSE(fs::exists(dir / "p3"));
  // Params keep the literal value; settings of other kinds are not quoted.
  EXPECT_EQ(spec->jobs[0].params.at("x"), "x; touch $W/pwned");
  absl::StatusOr<SweepSpec> eval = ParseSweepSpec(
      "name: e\njob: {kind: eval, note: \"a {x}\"}\ngrid: {x: [\"b c\"]}\n", "e.yaml");
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_EQ(eval->jobs[0].config["note"], "a b c");
}

TEST(CommandQuotingTest, ParentOutputsAreQuotedInCommandJobsOnly) {
  const fs::path dir = FreshDir("spec-parent-quoting");
  const json config = {{"command", "printf '<%s>' {train.dir}"}, {"other", "{train.dir}"}};
  const std::map<std::string, std::map<std::string, std::string>> outputs = {
      {"train", {{"dir", "/o; touch $W/pwned"}}}};
  absl::StatusOr<json> quoted = ResolveParentOutputs(config, outputs, /*command_job=*/true);
  ASSERT_TRUE(quoted.ok()) << quoted.status();
  EXPECT_EQ(RunShell((*quoted)["command"], dir.string()), "</o; touch $W/pwned>");
  EXPECT_FALSE(fs::exists(dir / "pwned"));
  EXPECT_EQ((*quoted)["other"], "/o; touch $W/pwned");
  absl::StatusOr<json> plain = ResolveParentOutputs(config, outputs);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)["command"], "printf '<%s>' /o; touch $W/pwned");
}

TEST(CommandQuotingTest, GridValueHoldingAParentReferenceIsQuotedAroundIt) {
  const fs::path dir = FreshDir("spec-ref-quoting");
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(
      "name: r\nstages:\n"
      "  - {name: select, job: {kind: command, command: \"true\"}}\n"
      "  - name: run\n    after: [select]\n"
      "    job: {kind: command, command: \"printf '<%s>' {l}\"}\n"
      "    grid: {l: [\"a b/{select.range}\"]}\n",
      "r.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<json> resolved =
      ResolveParentOutputs(spec->jobs[1].config, {{"select", {{"range", "3 5"}}}}, true);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(RunShell((*resolved)["command"], dir.string()), "<a b/3 5>");
}

TEST(GridValueTest, ControlCharacterIsRefusedAtItsLineAndColumn) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(
      "name: c\njob: {kind: command, command: \"echo {x}\"}\ngrid:\n  x: [a, \"b\\nc\"]\n",
      "c.yaml");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(),
            "c.yaml:4:10: grid.x[1] holds a control character (0x0a); grid values must be "
            "printable text");
  absl::StatusOr<SweepSpec> nested = ParseSweepSpec(
      "name: c\njob: {kind: command, command: \"echo {x.a}\"}\n"
      "grid:\n  x: [{a: \"\\e[2J\"}]\n",
      "c.yaml");
  EXPECT_EQ(nested.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(nested.status().message()),
              AllOf(StartsWith("c.yaml:4:11: grid.x[0].a holds a control character (0x1b)")));
}

TEST(SpecLimitsTest, SpecOverOneMebibyteIsRefusedBeforeParsing) {
  const std::string yaml = "name: big\n# " + std::string((1 << 20) + 1, 'x') + "\n";
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(yaml, "big.yaml");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(), absl::StrCat("big.yaml: the spec is ", yaml.size(),
                                                  " bytes, more than 1048576 (1 MiB); split the "
                                                  "sweep"));
}

// Two stages of `cells` cells each that share no grid key: cells^2 dependency edges.
std::string CrossStages(int cells) {
  std::string values;
  for (int i = 0; i < cells; ++i) absl::StrAppend(&values, i == 0 ? "" : ", ", i);
  return absl::StrCat(
      "name: e\nstages:\n  - {name: a, job: {kind: command, command: \"true\"}, grid: {x: [",
      values,
      "]}}\n  - {name: b, after: [a], job: {kind: command, command: \"true\"}, "
      "grid: {y: [",
      values, "]}}\n");
}

TEST(SpecLimitsTest, TooManyDependencyEdgesAreRefusedAtTheAfterList) {
  ASSERT_TRUE(ParseSweepSpec(CrossStages(400), "e.yaml").ok());  // 160,000 edges
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(CrossStages(1000), "e.yaml");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()),
              AllOf(StartsWith("e.yaml:4:"),
                    HasSubstr("the sweep has more than 200000 dependency edges (stage 'b' after "
                              "'a' shares grid keys: none)")));
}

TEST(SpecLimitsTest, ExpiredDeadlineStopsTheExpansion) {
  int polls = 0;
  absl::StatusOr<SweepSpec> spec =
      ParseSweepSpec(CrossStages(300), "d.yaml", [&polls] { return ++polls > 3; });
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(spec.status().message()),
              StartsWith("d.yaml: expanding the spec took longer than its deadline (at "));
  EXPECT_EQ(polls, 4);
  EXPECT_TRUE(ParseSweepSpec(CrossStages(300), "d.yaml", [] { return false; }).ok());
}

TEST(SpecLimitsTest, ManyExcludesDropExactlyTheirCells) {
  // 100 x 100 cells, 2000 full and 10 partial exclude entries.
  std::string values, exclude;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&values, i == 0 ? "" : ", ", i);
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&exclude, "  - {a: ", i % 100, ", b: ", i / 100, "}\n");
  }
  for (int i = 0; i < 10; ++i) absl::StrAppend(&exclude, "  - {b: ", 90 + i, "}\n");
  absl::StatusOr<SweepSpec> spec =
      ParseSweepSpec(absl::StrCat("name: x\njob: {kind: command, command: \"true\"}\ngrid: {a: [",
                                  values, "], b: [", values, "]}\nexclude:\n", exclude),
                     "x.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->jobs.size(), 10000u - 2000u - 1000u);
  for (const JobDefinition& job : spec->jobs) {
    const int b = std::stoi(job.params.at("b"));
    EXPECT_TRUE(b >= 20 && b < 90) << job.key;
  }
  absl::StatusOr<SweepSpec> unmatched = ParseSweepSpec(
      "name: x\njob: {kind: command, command: \"true\"}\ngrid: {a: [1, 2]}\n"
      "exclude:\n  - {a: 1}\n  - {a: 3}\n",
      "x.yaml");
  EXPECT_EQ(unmatched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unmatched.status().message(), "x.yaml:6:5: exclude[1] matches no cell of the grid");
}

}  // namespace
}  // namespace pcsweep
