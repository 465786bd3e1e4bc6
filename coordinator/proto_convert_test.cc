#include "coordinator/proto_convert.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator {
namespace {

using ::pcsweep::testutil::StatusIs;
using ::testing::ElementsAre;
using ::testing::Pair;

TEST(ProtoConvertTest, GetResultsRequest_MapsReportKindFormatAndPlotOptions) {
  v1::GetResultsRequest in;
  in.set_sweep_id("demo");
  in.set_report(v1::RESULTS_REPORT_PLOT);
  in.set_format("md");
  in.set_recompute(true);
  in.set_plot_x("layers");
  in.set_plot_eval_set("eval_mimic");
  absl::StatusOr<ResultsReportRequest> out = FromProto(in);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->sweep, "demo");
  EXPECT_EQ(out->kind, ResultsReportKind::kPlot);
  EXPECT_EQ(out->format, table::Format::kMarkdown);
  EXPECT_TRUE(out->recompute);
  EXPECT_EQ(out->options.plot_x_key, "layers");
  EXPECT_EQ(out->options.plot_eval_set, "eval_mimic");
}

TEST(ProtoConvertTest, GetResultsRequest_UnspecifiedReportOnlyStoresComparisons) {
  absl::StatusOr<ResultsReportRequest> out = FromProto(v1::GetResultsRequest());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->kind, ResultsReportKind::kComparisonsOnly);
  EXPECT_EQ(out->format, table::Format::kText);
}

TEST(ProtoConvertTest, GetResultsRequest_BadValuesAreInvalidArgument) {
  v1::GetResultsRequest unknown_kind;
  unknown_kind.set_report(static_cast<v1::ResultsReport>(99));
  EXPECT_THAT(FromProto(unknown_kind),
              StatusIs(absl::StatusCode::kInvalidArgument, "GetResults: unknown report kind 99"));
  v1::GetResultsRequest bad_format;
  bad_format.set_format("pdf");
  EXPECT_THAT(FromProto(bad_format),
              StatusIs(absl::StatusCode::kInvalidArgument, "--format: unknown table format 'pdf'"));
}

TEST(ProtoConvertTest, Job_ResultsOnlyWhenAsked) {
  JobRecord job;
  job.job_id = "s.1";
  job.state = JobState::kSucceeded;
  job.metrics = {{"flip_rate", 0.25}};
  job.outputs = {{"adapter", "/out/a"}};
  v1::Job without;
  ToProto(job, /*include_results=*/false, &without);
  EXPECT_EQ(without.job_id(), "s.1");
  EXPECT_EQ(without.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(without.metrics().empty());
  v1::Job with;
  ToProto(job, /*include_results=*/true, &with);
  EXPECT_EQ(with.metrics().at("flip_rate"), 0.25);
  EXPECT_EQ(with.outputs().at("adapter"), "/out/a");
}

TEST(ProtoConvertTest, CompleteJobRequest_ResultOutlivesTheRequest) {
  JobResult result;
  {
    v1::CompleteJobRequest in;
    (*in.mutable_metrics())["acc"] = 0.75;
    v1::ExampleRow* row = in.add_examples();
    row->set_eval_set("eval_mimic");
    row->set_question_id("q1");
    row->set_margin_paraphrase(-0.5);
    in.set_log_path("/logs/1.log");
    in.set_finished_ms(42);
    result = FromProto(in);
  }
  EXPECT_THAT(result.metrics, ElementsAre(Pair("acc", 0.75)));
  ASSERT_EQ(result.examples.size(), 1u);
  EXPECT_EQ(result.examples[0].eval_set, "eval_mimic");
  EXPECT_EQ(result.examples[0].question_id, "q1");
  EXPECT_EQ(result.examples[0].margin_paraphrase, -0.5);
  EXPECT_EQ(result.log_path, "/logs/1.log");
  EXPECT_EQ(result.finished_ms, 42);
}

}  // namespace
}  // namespace pcsweep::coordinator
