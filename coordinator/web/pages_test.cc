#include "coordinator/web/pages.h"

#include "absl/strings/match.h"
#include "common/testing/status_matchers.h"
#include "coordinator/web/assets.h"
#include "coordinator/web/results_html.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator::web {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::HasSubstr;
using ::testing::Not;

TEST(PagesTest, EscapesHtmlAndEncodesUrls) {
  EXPECT_EQ(HtmlEscape(R"(<a href="x">&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(UrlEncode("paper ablation/1?x=é"), "paper%20ablation%2F1%3Fx%3D%C3%A9");
  EXPECT_EQ(UrlEncode("smoke-1_a.b~"), "smoke-1_a.b~");
}

TEST(PagesTest, PageLoadsItsOwnAssetsAndHasNoInlineScriptOrStyle) {
  const std::string page = Page("t<>", "<p>body</p>");
  EXPECT_THAT(page, HasSubstr("<title>t&lt;&gt; · pcsweep</title>"));
  EXPECT_THAT(page, HasSubstr("<script src=\"/static/app.js\" defer></script>"));
  EXPECT_THAT(page, HasSubstr("href=\"/static/app.css\""));
  EXPECT_THAT(page, Not(HasSubstr("<script>")));
  EXPECT_THAT(page, Not(HasSubstr("style=")));
  EXPECT_THAT(page, Not(HasSubstr("http://")));
  EXPECT_THAT(page, Not(HasSubstr("https://")));
  EXPECT_TRUE(FindAsset("app.js").ok());
  EXPECT_THAT(FindAsset("x.js").status(),
              StatusIs(absl::StatusCode::kNotFound, "no static file 'x.js'"));
}

TEST(PagesTest, SweepPageEscapesJobTextAndGivesCountIds) {
  JobRecord job;
  job.job_id = "s-1.0";
  job.sweep_id = "s-1";
  job.name = "x[<script>]";
  job.stage = "st<b>";
  job.params = {{"p", "\"v\""}};
  job.state = JobState::kFailed;
  job.attempt = 3;
  job.error = "exit 3\n<tail> & more";
  SweepSummary summary;
  summary.sweep.sweep_id = "s-1";
  summary.sweep.name = "n&m";
  summary.total = 1;
  summary.failed = 1;
  const SweepView view = BuildSweepView(summary, {job}, {}, absl::FromUnixSeconds(100));
  const std::string page = SweepPage(view, {});
  EXPECT_THAT(page, Not(HasSubstr("<script>")));
  EXPECT_THAT(page, HasSubstr("x[&lt;script&gt;]"));
  EXPECT_THAT(page, HasSubstr("st&lt;b&gt;"));
  EXPECT_THAT(page, HasSubstr("&quot;v&quot;"));
  EXPECT_THAT(page, HasSubstr("<pre>exit 3\n&lt;tail&gt; &amp; more</pre>"));
  EXPECT_THAT(page, HasSubstr("id=\"count-failed\">1</b>"));
  EXPECT_THAT(page, HasSubstr("data-live-url=\"/sweeps/s-1/live\""));
  EXPECT_THAT(page, HasSubstr("data-fragment-url=\"/sweeps/s-1/tables/main\""));
  // The live fragment carries the same parts, each marked for replacement.
  const std::string live = SweepLive(view);
  EXPECT_THAT(live, HasSubstr("<div id=\"summary\" data-live>"));
  EXPECT_THAT(live, HasSubstr("<div id=\"grid\" data-live>"));
  EXPECT_THAT(live, HasSubstr("<div id=\"failed\" data-live>"));
}

TEST(PagesTest, WorkersPageShowsTheSlurmTaskAndNodeOfASlurmWorker) {
  WorkerStatus slurm;
  slurm.worker.worker_id = "slurm-4242-1.0";
  slurm.worker.state = "alive";
  slurm.worker.labels = {{"slurm_job_id", "4242_1"}, {"slurm_node", "gpu<7>"}};
  WorkerStatus by_hand;
  by_hand.worker.worker_id = "by-hand";
  const std::string html = WorkersLive({slurm, by_hand}, absl::FromUnixSeconds(100));
  EXPECT_THAT(html, HasSubstr("<th>Slurm task</th>"));
  EXPECT_THAT(html, HasSubstr("<td>4242_1 on gpu&lt;7&gt;</td>"));
  EXPECT_THAT(html,
              HasSubstr("<td>by-hand</td><td></td><td class=\"num\">0</td><td>cpu</td><td>-</td>"));
}

TEST(PagesTest, FilterQueryReproducesTheFilter) {
  EXPECT_EQ(FilterQuery({}), "");
  JobFilter filter;
  filter.state = "failed";
  filter.stage = "train eval";
  filter.limit = 20;
  EXPECT_EQ(FilterQuery(filter), "?state=failed&stage=train%20eval&limit=20");
}

TEST(ResultsHtmlTest, TableHasTheJsonCellsInColumnOrderEscapedWithCollapseMarked) {
  const std::string json = R"({"title": "Main <table>", "columns": [
      {"name": "run", "align": "left"}, {"name": "flip rate", "align": "right"}],
    "rows": [{"run": "base<1>", "flip rate": "16.5%"},
             {"flip rate": "0.0% COLLAPSED", "run": "consistency"}],
    "notes": ["n & m"]})";
  auto html = ResultsTableHtml(json, "main");
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_THAT(*html, HasSubstr("<table class=\"results\" id=\"table-main\">"));
  EXPECT_THAT(*html, HasSubstr("<p class=\"table-title\">Main &lt;table&gt;</p>"));
  EXPECT_THAT(*html, HasSubstr("<th class=\"left\">run</th><th class=\"right\">flip rate</th>"));
  EXPECT_THAT(
      *html,
      HasSubstr("<tr><td class=\"left\">base&lt;1&gt;</td><td class=\"right\">16.5%</td></tr>"));
  EXPECT_THAT(
      *html,
      HasSubstr(
          "<td class=\"left\">consistency</td><td class=\"right collapsed\">0.0% COLLAPSED</td>"));
  EXPECT_THAT(*html, HasSubstr("<li>n &amp; m</li>"));
}

TEST(ResultsHtmlTest, RefusesWhatIsNotATableDocument) {
  EXPECT_THAT(ResultsTableHtml("[1, 2", "main").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a JSON object"));
  EXPECT_THAT(ResultsTableHtml(R"({"columns": []})", "main").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "no columns or rows"));
  EXPECT_THAT(ResultsTableHtml(R"({"columns": [{}], "rows": []})", "main").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "a column without a name"));
}

TEST(PagesTest, ErrorBodiesSayWhatAndHowToSignIn) {
  EXPECT_THAT(ErrorBody(404, "no sweep 'x<'"), HasSubstr("404 · Not found"));
  EXPECT_THAT(ErrorBody(404, "no sweep 'x<'"), HasSubstr("no sweep &#39;x&lt;&#39;"));
  EXPECT_THAT(ErrorBody(401, "credentials required"), HasSubstr("the token as the password"));
}

}  // namespace
}  // namespace pcsweep::coordinator::web
