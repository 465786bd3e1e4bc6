// The web view in a real browser (label `browser`): Debian's headless Chromium, driven over
// the DevTools protocol (tests/cdp_browser.h), against a real `pcsweep coordinator --http`
// and `pcsweep worker` running a small paper-style sweep of command jobs (a baseline and
// two arms x two seeds writing per-example rows). Checks what a researcher sees: the sweeps
// page lists the sweep; the sweep page's counts change as jobs finish without a reload; its
// main table holds exactly the cells of `pcsweep results --table main --format json`; an
// unknown sweep is a 404 page. Writes screenshots to BUILD/test-artifacts/.
// Skipped, saying so, only when no chromium is installed (tools/setup.sh installs it).
#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cdp_browser.h"
#include "tests/child_process.h"

namespace pcsweep {
namespace {

namespace fs = std::filesystem;
using ::pcsweep::testing::CdpBrowser;
using ::pcsweep::testing::ChildProcess;
using ::pcsweep::testing::RunCommand;
using ::testing::HasSubstr;

constexpr absl::Duration kStartTimeout = absl::Seconds(20);

// usage: rows.sh VARIANT LAYERS: sleeps, then writes 20 example pairs on eval_mimic in which
// every 4th (base), 5th (early) or 10th (all) pair flips, and a metric.
constexpr char kRowsScript[] = R"(#!/bin/sh
case "$2" in early) every=5 ;; all) every=10 ;; *) every=4 ;; esac
sleep 2
awk -v variant="$1" -v every="$every" 'BEGIN {
  for (i = 0; i < 20; i++) {
    label = i % 2; mo = (label ? 1 : -1) * (0.5 + 0.05 * i);
    mp = (i % every == 0) ? -mo : 0.8 * mo;
    printf "{\"eval_set\":\"eval_mimic\",\"variant\":\"%s\",\"question_id\":\"q%d\",", variant, i
    printf "\"pair_id\":\"p%d\",\"image\":\"img%d\",\"phenomenon\":\"%s\",\"label\":%d,", i, i, (i % 2 ? "synonym" : "negation"), label
    printf "\"margin_original\":%.4f,\"margin_paraphrase\":%.4f}\n", mo, mp
  } }' > "$PCSWEEP_OUTPUT_DIR/examples.jsonl"
echo '{"eval_mimic.flip_rate": 0.1}' > "$PCSWEEP_OUTPUT_DIR/metrics.json"
)";

std::string FindChromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (fs::exists(path)) return path;
  }
  return "";
}

class WebBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = FindChromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "SKIPPED: no chromium in /usr/bin (bash tools/setup.sh installs it); the "
                      "browser test of the web view did not run";
    }
    const char* binary_root = std::getenv("PCSWEEP_BINARY_ROOT");
    const fs::path build = binary_root != nullptr
                               ? fs::path(binary_root)
                               : fs::read_symlink("/proc/self/exe").parent_path().parent_path();
    binary_ = (build / "bin" / "pcsweep").string();
    artifacts_ = build / "test-artifacts";
    fs::create_directories(artifacts_);
    ASSERT_TRUE(fs::exists(binary_)) << binary_ << " is missing: build the pcsweep target";
    dir_ = fs::path(::testing::TempDir()) / absl::StrCat("pcsweep-browser-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "rows.sh") << kRowsScript;
  }

  void TearDown() override {
    browser_.reset();
    worker_.reset();
    coordinator_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string WriteSpec() {
    const std::string rows = (dir_ / "rows.sh").string();
    const fs::path path = dir_ / "webdemo.yaml";
    std::ofstream(path) << "name: webdemo\nstages:\n"
                        << "  - name: baseline\n    job: {kind: command, command: \"sh " << rows
                        << " base none\"}\n"
                        << "  - name: train\n    after: [baseline]\n"
                        << "    job: {kind: command, command: \"sh " << rows
                        << " adapted {layers}\"}\n"
                        << "    grid: {layers: [early, all], seed: [0, 1]}\n";
    return path.string();
  }

  void StartCoordinator() {
    auto child = ChildProcess::Start({binary_, "coordinator", "--db", (dir_ / "web.db").string(),
                                      "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                                      "--heartbeat-interval", "0.5", "--lease-timeout", "5"});
    ASSERT_TRUE(child.ok()) << child.status();
    coordinator_ = *std::move(child);
    auto grpc_line = coordinator_->WaitForStdoutLine("listening on ", kStartTimeout);
    ASSERT_TRUE(grpc_line.ok()) << grpc_line.status();
    std::smatch match;
    ASSERT_TRUE(std::regex_search(*grpc_line, match, std::regex("listening on (\\S+:\\d+)")));
    address_ = match[1];
    auto web_line = coordinator_->WaitForStdoutLine("web view on ", kStartTimeout);
    ASSERT_TRUE(web_line.ok()) << web_line.status();
    ASSERT_TRUE(std::regex_search(*web_line, match, std::regex("web view on (http://\\S+)")));
    url_ = match[1];
  }

  std::string Run(std::vector<std::string> args) {
    args.insert(args.begin(), binary_);
    auto result = RunCommand(args, absl::Seconds(60));
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return "";
    EXPECT_EQ(result->exit_code, 0) << result->err;
    return result->out;
  }

  // Evaluates `expression` until it is true (as JSON) or `timeout` passes.
  bool WaitFor(const std::string& expression, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      auto value = browser_->Evaluate(expression);
      if (value.ok() && *value == true) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  int Count(const std::string& state) {
    auto value = browser_->Evaluate(
        absl::StrCat("Number((document.getElementById('count-", state, "') || {}).textContent)"));
    return value.ok() && value->is_number() ? value->get<int>() : -1;
  }

  void Screenshot(const std::string& name) {
    auto png = browser_->ScreenshotPng();
    ASSERT_TRUE(png.ok()) << png.status();
    const fs::path path = artifacts_ / name;
    std::ofstream(path, std::ios::binary) << *png;
    std::cout << "screenshot: " << path.string() << " (" << png->size() << " bytes)" << std::endl;
  }

  std::string chromium_;
  std::string binary_;
  fs::path artifacts_;
  fs::path dir_;
  std::string address_;
  std::string url_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::unique_ptr<ChildProcess> worker_;
  std::unique_ptr<CdpBrowser> browser_;
};

TEST_F(WebBrowserTest, SweepPageFollowsTheSweepLiveAndShowsTheResultsTablesCells) {
  StartCoordinator();
  const std::string sweep_id = std::string(
      absl::StripAsciiWhitespace(Run({"submit", WriteSpec(), "--coordinator", address_})));
  ASSERT_FALSE(sweep_id.empty());
  auto browser = CdpBrowser::Launch(chromium_, (dir_ / "profile").string());
  ASSERT_TRUE(browser.ok()) << browser.status();
  browser_ = *std::move(browser);

  // The sweeps page lists it.
  ASSERT_TRUE(browser_->Navigate(url_ + "/").ok());
  EXPECT_TRUE(WaitFor(
      absl::StrCat("document.querySelector('#sweeps').textContent.includes('", sweep_id, "')"),
      absl::Seconds(10)));
  Screenshot("web-sweeps.png");

  // The sweep page, loaded once before any worker runs; a marker shows it is never reloaded.
  ASSERT_TRUE(browser_->Navigate(absl::StrCat(url_, "/sweeps/", sweep_id)).ok());
  ASSERT_TRUE(browser_->Evaluate("window.pcsweepMarker = 'first load'; true").ok());
  EXPECT_EQ(Count("pending"), 5);
  EXPECT_EQ(Count("succeeded"), 0);
  auto worker = ChildProcess::Start({binary_, "worker", "--coordinator", address_, "--slots", "2",
                                     "--name", "w1", "--work-dir", (dir_ / "w1").string()});
  ASSERT_TRUE(worker.ok()) << worker.status();
  worker_ = *std::move(worker);
  // Counts move while the page stays: some but not all done, then all.
  std::set<int> seen;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && Count("succeeded") < 5) {
    seen.insert(Count("succeeded"));
    absl::SleepFor(absl::Milliseconds(200));
  }
  seen.insert(Count("succeeded"));
  ASSERT_EQ(Count("succeeded"), 5)
      << "the page never showed 5 succeeded jobs; " << coordinator_->Stderr();
  EXPECT_GE(seen.size(), 3u) << "expected intermediate counts between 0 and 5";
  EXPECT_EQ(Count("pending"), 0);
  auto marker = browser_->Evaluate("window.pcsweepMarker");
  ASSERT_TRUE(marker.ok()) << marker.status();
  EXPECT_EQ(*marker, "first load") << "the page was reloaded";

  // The main table on the page has the cells `pcsweep results --table main --format json`
  // prints, in its column order; the API returns those very bytes.
  const std::string cli =
      Run({"results", sweep_id, "--table", "main", "--format", "json", "--coordinator", address_});
  const nlohmann::json expected = nlohmann::json::parse(cli);
  ASSERT_FALSE(expected["rows"].empty());
  nlohmann::json expected_rows = nlohmann::json::array();
  for (const auto& row : expected["rows"]) {
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& column : expected["columns"])
      cells.push_back(row[column["name"].get<std::string>()]);
    expected_rows.push_back(std::move(cells));
  }
  const std::string dom_rows =
      "JSON.stringify([...document.querySelectorAll('#table-main tbody tr')].map("
      "tr => [...tr.cells].map(td => td.textContent)))";
  EXPECT_TRUE(WaitFor(absl::StrCat(dom_rows, " === ", nlohmann::json(expected_rows.dump()).dump()),
                      absl::Seconds(30)))
      << "page: " << browser_->Evaluate(dom_rows).value_or("?")
      << "\ncli: " << expected_rows.dump();
  auto headers = browser_->Evaluate(
      "[...document.querySelectorAll('#table-main thead th')].map(th => th.textContent)");
  ASSERT_TRUE(headers.ok());
  ASSERT_EQ(headers->size(), expected["columns"].size());
  for (size_t i = 0; i < headers->size(); ++i)
    EXPECT_EQ((*headers)[i], expected["columns"][i]["name"]);
  auto api = browser_->Evaluate(
      absl::StrCat("fetch('/api/sweeps/", sweep_id, "/tables/main').then(r => r.text())"));
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_EQ(*api, cli);
  EXPECT_TRUE(
      WaitFor("!!document.querySelector('img.figure') && "
              "document.querySelector('img.figure').naturalWidth > 0",
              absl::Seconds(20)));
  EXPECT_TRUE(WaitFor("!!document.querySelector('#table-phenomena tbody tr')", absl::Seconds(20)));
  Screenshot("web-sweep.png");

  // The workers page, and an unknown sweep.
  ASSERT_TRUE(browser_->Navigate(url_ + "/workers").ok());
  EXPECT_TRUE(
      WaitFor("document.querySelector('#workers').textContent.includes('w1')", absl::Seconds(10)));
  ASSERT_TRUE(browser_->Navigate(url_ + "/sweeps/no-such-sweep").ok());
  auto title =
      browser_->Evaluate("document.title + ' | ' + document.querySelector('h1').textContent");
  ASSERT_TRUE(title.ok());
  EXPECT_THAT(title->get<std::string>(), HasSubstr("404"));
  EXPECT_THAT(browser_->Exceptions(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace pcsweep
