#include "coordinator/metrics/metrics.h"

#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/testing/status_matchers.h"
#include "coordinator/metrics/metrics_hooks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(PrometheusTextTest, CounterFamilyHasHelpTypeAndOneSamplePerLabelSet) {
  MetricsRegistry registry;
  auto plain = registry.AddCounter("pcsweep_things_total", "Things seen.");
  ASSERT_TRUE(plain.ok()) << plain.status();
  (*plain)->Increment(3);
  auto a = registry.AddCounter("pcsweep_codes_total", "By code.", {{"code", "200"}});
  auto b = registry.AddCounter("pcsweep_codes_total", "By code.", {{"code", "404"}});
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->Increment();
  // The same labels give the same counter.
  auto again = registry.AddCounter("pcsweep_codes_total", "By code.", {{"code", "200"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *a);
  (*again)->Increment();

  EXPECT_THAT(
      Lines(registry.Render()),
      ElementsAre("# HELP pcsweep_things_total Things seen.", "# TYPE pcsweep_things_total counter",
                  "pcsweep_things_total 3", "# HELP pcsweep_codes_total By code.",
                  "# TYPE pcsweep_codes_total counter", "pcsweep_codes_total{code=\"200\"} 2",
                  "pcsweep_codes_total{code=\"404\"} 0"));
}

TEST(PrometheusTextTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\nd"),
            R"(a\\b\"c\nd)");
  MetricsRegistry registry;
  ASSERT_TRUE(registry
                  .AddGauge("pcsweep_jobs", "Jobs.",
                            [](std::vector<GaugeSample>& out) {
                              out.push_back({{{"sweep", "we\"ird\\\nname"}, {"state", "x"}}, 2});
                            })
                  .ok());
  EXPECT_THAT(registry.Render(),
              HasSubstr("pcsweep_jobs{sweep=\"we\\\"ird\\\\\\nname\",state=\"x\"} 2\n"));
}

TEST(PrometheusTextTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp("a \"b\" \\ c\nd"), "a \"b\" \\\\ c\\nd");
  MetricsRegistry registry;
  ASSERT_TRUE(registry.AddCounter("pcsweep_x_total", "line one\nline two").ok());
  EXPECT_THAT(registry.Render(), HasSubstr("# HELP pcsweep_x_total line one\\nline two\n"));
}

TEST(PrometheusTextTest, HistogramBucketsAreCumulativeEndWithInfThenSumAndCount) {
  MetricsRegistry registry;
  auto h =
      registry.AddHistogram("pcsweep_call_seconds", "Calls.", {0.1, 1, 10}, {{"outcome", "ok"}});
  ASSERT_TRUE(h.ok()) << h.status();
  for (double v : {0.05, 0.1, 0.5, 2.0, 100.0}) (*h)->Observe(v);
  EXPECT_THAT(
      Lines(registry.Render()),
      ElementsAre("# HELP pcsweep_call_seconds Calls.", "# TYPE pcsweep_call_seconds histogram",
                  "pcsweep_call_seconds_bucket{outcome=\"ok\",le=\"0.1\"} 2",
                  "pcsweep_call_seconds_bucket{outcome=\"ok\",le=\"1\"} 3",
                  "pcsweep_call_seconds_bucket{outcome=\"ok\",le=\"10\"} 4",
                  "pcsweep_call_seconds_bucket{outcome=\"ok\",le=\"+Inf\"} 5",
                  "pcsweep_call_seconds_sum{outcome=\"ok\"} 102.65",
                  "pcsweep_call_seconds_count{outcome=\"ok\"} 5"));
}

TEST(PrometheusTextTest, SampleValuesUseShortestRoundTripAndSpecialNames) {
  EXPECT_EQ(FormatSampleValue(3), "3");
  EXPECT_EQ(FormatSampleValue(-2), "-2");
  EXPECT_EQ(FormatSampleValue(0.1), "0.1");
  EXPECT_EQ(FormatSampleValue(0.0025), "0.0025");
  EXPECT_EQ(FormatSampleValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(PrometheusTextTest, GaugeCollectorRunsAtEveryRender) {
  MetricsRegistry registry;
  int calls = 0;
  ASSERT_TRUE(registry
                  .AddGauge("pcsweep_queue_depth", "Depth.",
                            [&calls](std::vector<GaugeSample>& out) {
                              out.push_back({{}, static_cast<double>(++calls)});
                            })
                  .ok());
  EXPECT_THAT(registry.Render(), HasSubstr("\npcsweep_queue_depth 1\n"));
  EXPECT_THAT(registry.Render(), HasSubstr("\npcsweep_queue_depth 2\n"));
}

TEST(PrometheusTextTest, GaugeSamplesWithInvalidLabelNamesAreLeftOut) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry
                  .AddGauge("pcsweep_g", "G.",
                            [](std::vector<GaugeSample>& out) {
                              out.push_back({{{"bad-name", "x"}}, 1});
                              out.push_back({{{"good", "y"}}, 2});
                            })
                  .ok());
  const std::string text = registry.Render();
  EXPECT_THAT(text, Not(HasSubstr("bad-name")));
  EXPECT_THAT(text, HasSubstr("pcsweep_g{good=\"y\"} 2"));
}

TEST(MetricsRegistryTest, RefusesInvalidNamesAndConflictingRegistrations) {
  MetricsRegistry registry;
  EXPECT_THAT(registry.AddCounter("1bad", "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "metric name '1bad' is not valid"));
  EXPECT_THAT(registry.AddCounter("pcsweep_a_total", "x", {{"__reserved", "v"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "label name '__reserved'"));
  EXPECT_THAT(registry.AddHistogram("pcsweep_h", "x", {1}, {{"le", "v"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "label name 'le'"));
  ASSERT_TRUE(registry.AddCounter("pcsweep_a_total", "x").ok());
  EXPECT_THAT(registry.AddHistogram("pcsweep_a_total", "x", {1}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "registered already"));
  EXPECT_THAT(registry.AddCounter("pcsweep_a_total", "x", {{"k", "v"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "label names"));
  EXPECT_THAT(registry.AddHistogram("pcsweep_h2", "x", {1, 1}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "strictly ascending"));
  ASSERT_TRUE(registry.AddHistogram("pcsweep_h3", "x", {1, 2}, {{"k", "a"}}).ok());
  EXPECT_THAT(registry.AddHistogram("pcsweep_h3", "x", {1, 3}, {{"k", "b"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "same buckets"));
  EXPECT_THAT(registry.AddGauge("pcsweep_a_total", "x", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, "registered already"));
  EXPECT_TRUE(IsValidMetricName("pcsweep:rule_1"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(MetricsHooksTest, EverySeriesIsExportedFromTheStartAndCountsOutcomes) {
  MetricsRegistry registry;
  auto hooks = MetricsHooks::Create(&registry);
  ASSERT_TRUE(hooks.ok()) << hooks.status();
  const std::string before = registry.Render();
  EXPECT_THAT(before, HasSubstr("\npcsweep_job_completions_total 0\n"));
  EXPECT_THAT(before, HasSubstr("pcsweep_acquire_job_seconds_count{outcome=\"empty\"} 0\n"));

  (*hooks)->OnAcquireAnswered(absl::Milliseconds(3), 2, absl::OkStatus());
  (*hooks)->OnAcquireAnswered(absl::Seconds(20), 0, absl::OkStatus());
  (*hooks)->OnAcquireAnswered(absl::Milliseconds(1), 0, absl::CancelledError("bye"));
  (*hooks)->OnCompleteAnswered(absl::Milliseconds(8), absl::OkStatus());
  (*hooks)->OnCompleteAnswered(absl::Milliseconds(1), absl::FailedPreconditionError("stale"));
  (*hooks)->OnCompleteAnswered(absl::Milliseconds(1), absl::UnavailableError("disk"));
  (*hooks)->OnLeaseExpired();
  (*hooks)->OnRetryQueued();
  (*hooks)->OnRetryQueued();
  (*hooks)->OnJobFailed();
  (*hooks)->OnBatchWritten(absl::Milliseconds(4), absl::OkStatus());
  (*hooks)->OnBatchWritten(absl::Milliseconds(4), absl::UnavailableError("full"));

  const std::string after = registry.Render();
  EXPECT_THAT(after, HasSubstr("\npcsweep_job_completions_total 1\n"));
  EXPECT_THAT(after, HasSubstr("\npcsweep_job_retries_total 2\n"));
  EXPECT_THAT(after, HasSubstr("\npcsweep_job_failures_total 1\n"));
  EXPECT_THAT(after, HasSubstr("\npcsweep_lease_expiries_total 1\n"));
  EXPECT_THAT(after, HasSubstr("pcsweep_acquire_job_seconds_count{outcome=\"assigned\"} 1\n"));
  EXPECT_THAT(after,
              HasSubstr("pcsweep_acquire_job_seconds_bucket{outcome=\"assigned\",le=\"0.005\"} 1"));
  EXPECT_THAT(after,
              HasSubstr("pcsweep_acquire_job_seconds_bucket{outcome=\"empty\",le=\"10\"} 0"));
  EXPECT_THAT(after,
              HasSubstr("pcsweep_acquire_job_seconds_bucket{outcome=\"empty\",le=\"30\"} 1"));
  EXPECT_THAT(after, HasSubstr("pcsweep_acquire_job_seconds_count{outcome=\"error\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("pcsweep_complete_job_seconds_count{outcome=\"recorded\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("pcsweep_complete_job_seconds_count{outcome=\"refused\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("pcsweep_complete_job_seconds_count{outcome=\"error\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("\npcsweep_store_write_seconds_count 2\n"));
  EXPECT_THAT(after, HasSubstr("\npcsweep_store_write_errors_total 1\n"));

  // A second set of hooks on the same registry shares the series.
  auto second = MetricsHooks::Create(&registry);
  ASSERT_TRUE(second.ok()) << second.status();
  (*second)->OnJobFailed();
  EXPECT_THAT(registry.Render(), HasSubstr("\npcsweep_job_failures_total 2\n"));
}

}  // namespace
}  // namespace pcsweep::coordinator
