// WebService against a real scheduler and SQLite store (fake clock): the pages, the JSON API,
// the tables as `pcsweep results --table` renders them, /metrics, credentials, bad input.
#include "coordinator/web/web_service.h"

#include <filesystem>
#include <future>

#include "absl/strings/match.h"
#include "common/spec/spec.h"
#include "coordinator/analysis/results_report.h"
#include "coordinator/metrics/metrics_hooks.h"
#include "coordinator/store/sqlite_store.h"
#include "coordinator/store/store_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::coordinator::web {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A baseline evaluated once and two arms x two seeds, as the paper's sweeps are laid out.
constexpr char kSpec[] = R"(name: web
stages:
  - {name: baseline, job: {kind: command, command: "true"}}
  - name: train
    after: [baseline]
    job: {kind: command, command: "true"}
    grid: {layers: [early, all], seed: [0, 1]}
)";

// 20 pairs on one eval set; `flip_every`-th pair flips (0 = none).
std::vector<ExampleRow> Rows(const std::string& variant, int flip_every) {
  std::vector<ExampleRow> rows;
  for (int i = 0; i < 20; ++i) {
    ExampleRow r;
    r.eval_set = "eval_mimic";
    r.variant = variant;
    r.question_id = "q" + std::to_string(i);
    r.pair_id = "p" + std::to_string(i);
    r.image = "img" + std::to_string(i);
    r.phenomenon = i % 2 == 0 ? "negation" : "synonym";
    r.label = i % 2;
    r.margin_original = (r.label == 1 ? 1.0 : -1.0) * (0.5 + 0.05 * i);
    const bool flip = flip_every > 0 && i % flip_every == 0;
    r.margin_paraphrase = flip ? -r.margin_original : 0.8 * r.margin_original;
    rows.push_back(r);
  }
  return rows;
}

class WebServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcsweep_web_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_path_ = (dir_ / "coord.db").string();
    auto hooks = MetricsHooks::Create(&registry_);
    ASSERT_TRUE(hooks.ok()) << hooks.status();
    hooks_ = std::move(*hooks);
    SqliteStoreOptions store_options;
    store_options.hooks = hooks_.get();
    auto store = SqliteStore::Open(db_path_, store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    SchedulerOptions options;
    options.clock = &clock_;
    options.hooks = hooks_.get();
    auto scheduler = Scheduler::Create(store_.get(), options);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(*scheduler);
    auto spec = ParseSweepSpec(kSpec, "web.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto submitted = scheduler_->Submit(*spec, kSpec, "web.yaml", false);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    sweep_id_ = submitted->sweep_id;
    WorkerRecord worker;
    worker.name = "w1";
    worker.host = "node1";
    worker.slots = 4;
    worker.incarnation_id = "inc-1";
    ASSERT_TRUE(scheduler_->RegisterWorker(worker, {}).ok());
  }

  void TearDown() override {
    service_.reset();
    scheduler_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  WebService& Service(std::shared_ptr<const CredentialChecker> auth = nullptr) {
    WebServiceOptions options;
    options.db_path = db_path_;
    options.clock = &clock_;
    options.auth = std::move(auth);
    service_ = std::make_unique<WebService>(scheduler_.get(), &registry_, options);
    return *service_;
  }

  WebResponse Get(const std::string& path, std::map<std::string, std::string> query = {},
                  const std::string& authorization = "") {
    WebRequest request;
    request.path = path;
    request.query = std::move(query);
    request.authorization = authorization;
    return service_->Handle(request);
  }

  // Leases every ready job and returns the assignments.
  std::vector<Assignment> Acquire() {
    std::promise<absl::StatusOr<std::vector<Assignment>>> promise;
    scheduler_->AcquireJob(
        "w1", "inc-1", 4, absl::ZeroDuration(),
        [&](absl::StatusOr<std::vector<Assignment>> a) { promise.set_value(a); });
    auto assignments = promise.get_future().get();
    EXPECT_TRUE(assignments.ok()) << assignments.status();
    return assignments.ok() ? *assignments : std::vector<Assignment>{};
  }

  void Complete(const Assignment& a, std::vector<ExampleRow> rows) {
    clock_.Advance(absl::Seconds(3));
    JobResult result;
    result.metrics = {{"eval_mimic.flip_rate", 0.1}};
    result.examples = std::move(rows);
    std::promise<absl::Status> done;
    scheduler_->CompleteJob("w1", "inc-1", a.job_id, a.attempt, std::move(result),
                            [&](absl::Status s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
  }

  // Runs the baseline and every train job but the last one, which fails for good.
  void RunSweepWithOneFailure() {
    std::vector<Assignment> base = Acquire();
    ASSERT_EQ(base.size(), 1u);
    Complete(base[0], Rows("base", 4));
    std::vector<Assignment> train = Acquire();
    ASSERT_EQ(train.size(), 4u);
    for (size_t i = 0; i + 1 < train.size(); ++i) Complete(train[i], Rows("adapted", 10));
    FailureReport failure;
    failure.worker_id = "w1";
    failure.incarnation_id = "inc-1";
    failure.job_id = train.back().job_id;
    failure.attempt = train.back().attempt;
    failure.error = "exit code 3";
    failure.exit_code = 3;
    failure.stderr_tail = "Traceback: <boom> & bust\n";
    failure.retryable = false;
    std::promise<absl::Status> done;
    scheduler_->FailJob(failure, [&](absl::Status s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
    store_->Flush();
  }

  std::filesystem::path dir_;
  std::string db_path_;
  FakeClock clock_;
  MetricsRegistry registry_;
  std::unique_ptr<MetricsHooks> hooks_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<WebService> service_;
  std::string sweep_id_;
};

TEST_F(WebServiceTest, SweepsPageAndApiListTheSweepWithItsCounts) {
  Service();
  WebResponse page = Get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(page.body, HasSubstr(absl::StrCat("href=\"/sweeps/", sweep_id_, "\"")));
  WebResponse api = Get("/api/sweeps");
  ASSERT_EQ(api.status, 200);
  const auto doc = nlohmann::json::parse(api.body);
  ASSERT_EQ(doc["sweeps"].size(), 1u);
  EXPECT_EQ(doc["sweeps"][0]["sweep_id"], sweep_id_);
  EXPECT_EQ(doc["sweeps"][0]["total"], 5);
  EXPECT_EQ(doc["sweeps"][0]["counts"]["pending"], 5);
}

TEST_F(WebServiceTest, SweepPageShowsTheGridAndTheFailedJobsStderrTail) {
  RunSweepWithOneFailure();
  Service();
  WebResponse page = Get("/sweeps/" + sweep_id_);
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("id=\"count-succeeded\">4</b>"));
  EXPECT_THAT(page.body, HasSubstr("id=\"count-failed\">1</b>"));
  EXPECT_THAT(page.body, HasSubstr("Traceback: &lt;boom&gt; &amp; bust"));
  EXPECT_THAT(page.body, HasSubstr("<th>layers</th><th>seed</th>"));
  // By name as well as by id.
  EXPECT_EQ(Get("/sweeps/web").status, 200);
  WebResponse api = Get("/api/sweeps/" + sweep_id_, {{"state", "failed"}});
  ASSERT_EQ(api.status, 200);
  const auto doc = nlohmann::json::parse(api.body);
  ASSERT_EQ(doc["jobs"].size(), 1u);
  EXPECT_THAT(doc["jobs"][0]["error"].get<std::string>(), HasSubstr("Traceback: <boom> & bust"));
  EXPECT_EQ(doc["sweep"]["state"], "finished with failures");
}

TEST_F(WebServiceTest, LiveFragmentVersionChangesWhenAJobSucceeds) {
  Service();
  auto version_of = [](const WebResponse& r) {
    for (const auto& [name, value] : r.headers) {
      if (name == "X-Pcsweep-Version") return value;
    }
    return std::string("none");
  };
  WebResponse before = Get("/sweeps/" + sweep_id_ + "/live");
  ASSERT_EQ(before.status, 200);
  EXPECT_THAT(before.body, Not(HasSubstr("<html")));
  EXPECT_THAT(before.body, HasSubstr("id=\"count-succeeded\">0</b>"));
  std::vector<Assignment> base = Acquire();
  ASSERT_EQ(base.size(), 1u);
  Complete(base[0], Rows("base", 4));
  WebResponse after = Get("/sweeps/" + sweep_id_ + "/live");
  EXPECT_THAT(after.body, HasSubstr("id=\"count-succeeded\">1</b>"));
  EXPECT_NE(version_of(before), version_of(after));
  EXPECT_NE(version_of(after), "none");
}

TEST_F(WebServiceTest, TablesApiIsWhatResultsTableJsonPrintsAndThePageShowsTheSameCells) {
  RunSweepWithOneFailure();
  Service();
  for (const std::string kind : {"main", "ablation", "phenomena"}) {
    ResultsReportRequest request;
    request.sweep = sweep_id_;
    request.kind = *ParseTableReportKind(kind);
    request.format = table::Format::kJson;
    auto expected = RenderResultsReport(db_path_, request);
    ASSERT_TRUE(expected.ok()) << expected.status();
    WebResponse api = Get("/api/sweeps/" + sweep_id_ + "/tables/" + kind);
    ASSERT_EQ(api.status, 200) << api.body;
    EXPECT_EQ(api.body, expected->text) << kind;
    WebResponse fragment = Get("/sweeps/" + sweep_id_ + "/tables/" + kind);
    ASSERT_EQ(fragment.status, 200);
    EXPECT_THAT(fragment.body, HasSubstr("id=\"table-" + kind + "\""));
    const auto doc = nlohmann::json::parse(expected->text);
    ASSERT_FALSE(doc["rows"].empty()) << kind;
    for (const auto& [column, cell] : doc["rows"][0].items()) {
      EXPECT_THAT(fragment.body, HasSubstr(">" + cell.get<std::string>() + "</td>")) << column;
    }
  }
  WebResponse figure = Get("/sweeps/" + sweep_id_ + "/figure.svg");
  ASSERT_EQ(figure.status, 200) << figure.body;
  EXPECT_EQ(figure.content_type, "image/svg+xml");
  EXPECT_THAT(figure.body, HasSubstr("<svg"));
  EXPECT_THAT(Get("/sweeps/" + sweep_id_ + "/figure").body, HasSubstr("<img class=\"figure\""));
}

TEST_F(WebServiceTest, TablesOfASweepWithoutRowsSayWhyAndNoComparisonIsStored) {
  Service();
  WebResponse fragment = Get("/sweeps/" + sweep_id_ + "/tables/main");
  EXPECT_EQ(fragment.status, 200);
  EXPECT_THAT(fragment.body, HasSubstr("has no per-example evaluation rows (yet)"));
  EXPECT_EQ(Get("/api/sweeps/" + sweep_id_ + "/tables/main").status, 404);
  EXPECT_EQ(Get("/api/sweeps/" + sweep_id_ + "/tables/cells").status, 404);
  // The web view only reads: a finished sweep's tables do not store its comparisons.
  RunSweepWithOneFailure();
  ASSERT_EQ(Get("/api/sweeps/" + sweep_id_ + "/tables/main").status, 200);
  auto reader = StoreReader::OpenReadOnly(db_path_);
  ASSERT_TRUE(reader.ok());
  auto comparisons = (*reader)->ListComparisons(sweep_id_);
  ASSERT_TRUE(comparisons.ok());
  EXPECT_TRUE(comparisons->empty());
}

TEST_F(WebServiceTest, UnknownSweepIsA404PageOrJsonAndBadFiltersA400) {
  Service();
  WebResponse page = Get("/sweeps/nope-7");
  EXPECT_EQ(page.status, 404);
  EXPECT_THAT(page.body, HasSubstr("404 · Not found"));
  EXPECT_THAT(page.body, HasSubstr("nope-7"));
  WebResponse api = Get("/api/sweeps/nope-7");
  EXPECT_EQ(api.status, 404);
  EXPECT_THAT(nlohmann::json::parse(api.body)["error"].get<std::string>(), HasSubstr("nope-7"));
  EXPECT_EQ(Get("/no/such/page").status, 404);
  EXPECT_EQ(Get("/sweeps/nope-7/tables/main").status, 404);
  EXPECT_EQ(Get("/compare", {{"a", sweep_id_}, {"b", "nope-7"}}).status, 404);
  WebResponse bad = Get("/sweeps/" + sweep_id_, {{"state", "done"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("state: &#39;done&#39; is not one of"));
  WebRequest post;
  post.method = "POST";
  post.path = "/";
  WebResponse refused = service_->Handle(post);
  EXPECT_EQ(refused.status, 405);
}

TEST_F(WebServiceTest, WithATokenEveryPageButTheAssetsNeedsIt) {
  Service(std::make_shared<TokenChecker>("s3cret"));
  WebResponse missing = Get("/");
  EXPECT_EQ(missing.status, 401);
  bool asks_for_basic = false;
  for (const auto& [name, value] : missing.headers) {
    asks_for_basic |= name == "WWW-Authenticate" && absl::StartsWith(value, "Basic ");
  }
  EXPECT_TRUE(asks_for_basic);
  EXPECT_EQ(Get("/api/sweeps", {}, "Bearer wrong").status, 401);
  EXPECT_EQ(Get("/metrics").status, 401);
  EXPECT_EQ(Get("/api/sweeps", {}, "Bearer s3cret").status, 200);
  EXPECT_EQ(Get("/", {}, "Basic dXNlcjpzM2NyZXQ=").status, 200);  // user:s3cret
  EXPECT_EQ(Get("/static/app.css").status, 200);
}

TEST_F(WebServiceTest, MetricsHaveJobsBySweepAndStateAndTheHookCounters) {
  RunSweepWithOneFailure();
  Service();
  WebResponse metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, kPrometheusContentType);
  // No gauges were registered in this test (the server does that): only the hooks' series.
  EXPECT_THAT(metrics.body, HasSubstr("\npcsweep_job_completions_total 4\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\npcsweep_job_failures_total 1\n"));
  EXPECT_THAT(metrics.body,
              HasSubstr("pcsweep_complete_job_seconds_count{outcome=\"recorded\"} 4\n"));
  EXPECT_THAT(metrics.body,
              HasSubstr("pcsweep_acquire_job_seconds_count{outcome=\"assigned\"} 2\n"));
  EXPECT_THAT(metrics.body, HasSubstr("pcsweep_store_write_seconds_count "));
  // The fake clock moved 3 s before each completion, not during it.
  EXPECT_THAT(
      metrics.body,
      HasSubstr("pcsweep_complete_job_seconds_bucket{outcome=\"recorded\",le=\"0.001\"} 4\n"));
  Get("/nope");
  EXPECT_THAT(Get("/metrics").body, HasSubstr("pcsweep_http_requests_total{code=\"404\"} 1\n"));
}

TEST_F(WebServiceTest, AnExpiredLeaseCountsAsALeaseExpiryAndARetry) {
  Service();
  ASSERT_EQ(Acquire().size(), 1u);
  clock_.Advance(absl::Seconds(21));  // past the default 20 s lease, no heartbeat
  scheduler_->Tick();
  const std::string metrics = Get("/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("\npcsweep_lease_expiries_total 1\n"));
  EXPECT_THAT(metrics, HasSubstr("\npcsweep_job_retries_total 1\n"));
  EXPECT_THAT(metrics, HasSubstr("\npcsweep_job_failures_total 0\n"));
  EXPECT_THAT(Get("/sweeps/" + sweep_id_).body, HasSubstr("id=\"count-pending\">5</b>"));
}

TEST_F(WebServiceTest, CompareShowsTwoSweepsSideBySideAndWorkersTheirJobs) {
  RunSweepWithOneFailure();
  auto spec = ParseSweepSpec(kSpec, "web.yaml");
  ASSERT_TRUE(spec.ok());
  auto second = scheduler_->Submit(*spec, kSpec, "web.yaml", /*force=*/true);
  ASSERT_TRUE(second.ok());
  Service();
  WebResponse compare = Get("/compare", {{"a", sweep_id_}, {"b", second->sweep_id}});
  ASSERT_EQ(compare.status, 200) << compare.body;
  EXPECT_THAT(compare.body, HasSubstr("id=\"table-main-" + sweep_id_ + "\""));
  EXPECT_THAT(compare.body, HasSubstr("has no per-example evaluation rows (yet)"));
  EXPECT_EQ(Get("/compare", {{"a", sweep_id_}}).status, 400);
  std::vector<Assignment> leased = Acquire();
  ASSERT_FALSE(leased.empty());
  WebResponse workers = Get("/workers");
  EXPECT_THAT(workers.body, HasSubstr(leased[0].job_id));
  const auto doc = nlohmann::json::parse(Get("/api/workers").body);
  EXPECT_EQ(doc["workers"][0]["worker_id"], "w1");
  EXPECT_EQ(doc["workers"][0]["running"].size(), leased.size());
}

}  // namespace
}  // namespace pcsweep::coordinator::web
