#include "tools/cli/results_tables.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/plot_command.h"

namespace pcsweep::cli {
namespace {

using ::testing::HasSubstr;

TEST(ResultsTables, WithoutDbAsksTheCoordinatorAndPrintsItsAnswer) {
  FakeCoordinatorApi api;
  api.results_response.set_sweep_id("paper-1");
  api.results_response.set_text("| table |\n");
  api.results_response.add_notes("5 comparisons of sweep paper-1 stored in /srv/c.db");
  ResultsTablesRequest request;
  request.sweep = "paper";
  request.table = "ablation";
  request.format = "table";  // the CLI's name for text
  request.recompute = true;
  std::ostringstream out, err;
  ASSERT_TRUE(RunResultsTables(request, &api, out, err).ok());
  EXPECT_EQ(out.str(), "| table |\n");
  EXPECT_EQ(err.str(), "5 comparisons of sweep paper-1 stored in /srv/c.db\n");
  ASSERT_EQ(api.results_requests.size(), 1u);
  const v1::GetResultsRequest& sent = api.results_requests[0];
  EXPECT_EQ(sent.sweep_id(), "paper");
  EXPECT_EQ(sent.report(), v1::RESULTS_REPORT_ABLATION_TABLE);
  EXPECT_EQ(sent.format(), "text");
  EXPECT_TRUE(sent.recompute());
}

TEST(ResultsTables, BadArgumentsFailBeforeAnyCall) {
  FakeCoordinatorApi api;
  std::ostringstream out, err;
  ResultsTablesRequest request;
  request.sweep = "paper";
  EXPECT_THAT(RunResultsTables(request, &api, out, err).message(), HasSubstr("nothing to do"));
  request.table = "mian";
  EXPECT_THAT(RunResultsTables(request, &api, out, err).message(), HasSubstr("'mian'"));
  request.table = "main";
  request.format = "docx";
  EXPECT_THAT(RunResultsTables(request, &api, out, err).message(), HasSubstr("--format"));
  EXPECT_TRUE(api.results_requests.empty());
  EXPECT_EQ(out.str(), "");
}

TEST(ResultsTables, CoordinatorErrorsComeBackAsTheyAre) {
  FakeCoordinatorApi api;
  api.error = absl::NotFoundError("/srv/c.db: no sweep with id or name 'x'");
  ResultsTablesRequest request;
  request.sweep = "x";
  request.table = "main";
  std::ostringstream out, err;
  absl::Status status = RunResultsTables(request, &api, out, err);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "/srv/c.db: no sweep with id or name 'x'");
  EXPECT_EQ(out.str(), "");
}

TEST(Plot, WithoutDbWritesTheCoordinatorsSvg) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("pcsweep_plot_test_", ::getpid());
  FakeCoordinatorApi api;
  api.results_response.set_text("<svg>figure</svg>\n");
  PlotRequest request;
  request.sweep = "paper-1";
  request.out_path = (dir / "sub" / "fig.svg").string();
  request.x_key = "lambda";
  request.eval_set = "mimic";
  std::ostringstream err;
  ASSERT_TRUE(RunPlot(request, &api, err).ok());
  std::ifstream in(request.out_path);
  std::stringstream written;
  written << in.rdbuf();
  EXPECT_EQ(written.str(), "<svg>figure</svg>\n");
  EXPECT_THAT(err.str(), HasSubstr("plot: "));
  ASSERT_EQ(api.results_requests.size(), 1u);
  EXPECT_EQ(api.results_requests[0].report(), v1::RESULTS_REPORT_PLOT);
  EXPECT_EQ(api.results_requests[0].plot_x(), "lambda");
  EXPECT_EQ(api.results_requests[0].plot_eval_set(), "mimic");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pcsweep::cli
