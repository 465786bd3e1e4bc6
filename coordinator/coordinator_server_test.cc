// In-process CoordinatorServer on 127.0.0.1:0 with real gRPC channels.
#include "coordinator/coordinator_server.h"

#include <filesystem>
#include <fstream>

#include "common/rpc/rpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kSpec[] = R"(name: tiny
job:
  kind: command
  command: "echo {x}"
grid:
  x: [1, 2]
max_attempts: 2
)";

class CoordinatorServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcsweep_server_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServer(const std::string& token = "") {
    CoordinatorServerOptions options;
    options.db_path = (dir_ / "coord.db").string();
    options.listen = "127.0.0.1:0";
    if (!token.empty()) {
      options.token_file = (dir_ / "token").string();
      std::ofstream(options.token_file) << token << "\n";
    }
    auto server = CoordinatorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
    stub_ = v1::Coordinator::NewStub(
        rpc::MakeChannel(server_->address(), rpc::ChannelOptions{token, "", "", ""}));
    token_ = token;
  }

  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& fn,
                    absl::Duration timeout = absl::Seconds(10)) {
    grpc::ClientContext context;
    rpc::PrepareContext(&context, timeout, token_);
    return fn(&context);
  }

  std::filesystem::path dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::string token_;
};

TEST_F(CoordinatorServerTest, EndToEnd_SubmitAcquireHeartbeatCompleteWatch) {
  StartServer();
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(kSpec);
  submit.set_spec_path("tiny.yaml");
  v1::SubmitSweepResponse submitted;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->SubmitSweep(c, submit, &submitted); }).ok());
  EXPECT_EQ(submitted.jobs(), 2);

  v1::RegisterWorkerRequest reg;
  reg.set_worker_name("w1");
  reg.set_host("localhost");
  reg.set_slots(2);
  reg.set_incarnation_id("inc-1");
  v1::RegisterWorkerResponse registered;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->RegisterWorker(c, reg, &registered); }).ok());
  EXPECT_EQ(registered.heartbeat_interval_ms(), 5000);
  EXPECT_EQ(registered.lease_timeout_ms(), 20000);

  v1::AcquireJobRequest acquire;
  acquire.set_worker_id(registered.worker_id());
  acquire.set_incarnation_id("inc-1");
  acquire.set_free_slots(2);
  acquire.set_wait_ms(1000);
  v1::AcquireJobResponse acquired;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->AcquireJob(c, acquire, &acquired); }).ok());
  ASSERT_THAT(acquired.assignments(), SizeIs(2));
  EXPECT_THAT(acquired.assignments(0).config_json(), HasSubstr("echo 1"));

  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(registered.worker_id());
  heartbeat.set_incarnation_id("inc-1");
  for (const auto& a : acquired.assignments()) {
    auto* p = heartbeat.add_jobs();
    p->set_job_id(a.job_id());
    p->set_attempt(a.attempt());
    p->set_progress(0.5);
  }
  v1::HeartbeatResponse beat;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->Heartbeat(c, heartbeat, &beat); }).ok());
  EXPECT_EQ(beat.cancel_size(), 0);

  // A watcher started now sees the backlog, then the completions, then the stream ends.
  grpc::ClientContext watch_context;
  rpc::PrepareContext(&watch_context, absl::Seconds(20), "");
  v1::WatchSweepRequest watch;
  watch.set_sweep_id("tiny");
  auto reader = stub_->WatchSweep(&watch_context, watch);

  for (int i = 0; i < 2; ++i) {
    v1::CompleteJobRequest complete;
    complete.set_worker_id(registered.worker_id());
    complete.set_incarnation_id("inc-1");
    complete.set_job_id(acquired.assignments(i).job_id());
    complete.set_attempt(acquired.assignments(i).attempt());
    (*complete.mutable_metrics())["value"] = i + 1;
    for (int r = 0; r < 500; ++r) {
      auto* row = complete.add_examples();
      row->set_question_id("q" + std::to_string(r));
      row->set_margin_original(r);
    }
    v1::CompleteJobResponse completed;
    ASSERT_TRUE(Call([&](auto* c) { return stub_->CompleteJob(c, complete, &completed); }).ok());
    // Retransmission: refused as stale, not recorded twice.
    grpc::Status again = Call([&](auto* c) { return stub_->CompleteJob(c, complete, &completed); });
    EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }

  v1::SweepEvent event;
  std::vector<v1::SweepEvent> events;
  while (reader->Read(&event)) events.push_back(event);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(events[i].seq(), static_cast<int64_t>(i + 1));
  EXPECT_EQ(events.back().message(), "sweep finished");
  EXPECT_EQ(events.back().summary().succeeded(), 2);
  EXPECT_EQ(events.back().summary().total(), 2);

  v1::GetSweepRequest get;
  get.set_sweep_id(submitted.sweep_id());
  get.set_include_metrics(true);
  v1::GetSweepResponse sweep;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->GetSweep(c, get, &sweep); }).ok());
  EXPECT_EQ(sweep.summary().succeeded(), 2);
  EXPECT_EQ(sweep.jobs(1).metrics().at("value"), 2);
  EXPECT_EQ(sweep.jobs(0).state(), v1::JOB_STATE_SUCCEEDED);

  v1::ListWorkersResponse workers;
  ASSERT_TRUE(Call([&](auto* c) {
                return stub_->ListWorkers(c, v1::ListWorkersRequest(), &workers);
              }).ok());
  ASSERT_THAT(workers.workers(), SizeIs(1));
  EXPECT_EQ(workers.workers(0).state(), "alive");
}

TEST_F(CoordinatorServerTest, WatchSweep_UnknownSweepIsNotFound) {
  StartServer();
  grpc::ClientContext context;
  rpc::PrepareContext(&context, absl::Seconds(10), "");
  v1::WatchSweepRequest watch;
  watch.set_sweep_id("nope");
  auto reader = stub_->WatchSweep(&context, watch);
  v1::SweepEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

// A watcher that goes away while its scheduler watch is armed; the events appended later
// reach a second watcher that resumes after what the first one read.
TEST_F(CoordinatorServerTest, WatchSweep_CancelledWatcherThenResumeAfterSeq) {
  StartServer();
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(kSpec);
  v1::SubmitSweepResponse submitted;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->SubmitSweep(c, submit, &submitted); }).ok());

  v1::SweepEvent event;
  {
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(20), "");
    v1::WatchSweepRequest watch;
    watch.set_sweep_id(submitted.sweep_id());
    auto reader = stub_->WatchSweep(&context, watch);
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.seq(), 1);
    EXPECT_THAT(event.message(), HasSubstr("submitted 2 jobs"));
    EXPECT_TRUE(event.summary().spec_yaml().empty());
    EXPECT_EQ(event.summary().pending(), 2);
    context.TryCancel();
    while (reader->Read(&event)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }

  v1::CancelSweepRequest cancel;
  cancel.set_sweep_id(submitted.sweep_id());
  v1::CancelSweepResponse cancelled;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->CancelSweep(c, cancel, &cancelled); }).ok());
  EXPECT_EQ(cancelled.cancelled(), 2);

  grpc::ClientContext context;
  rpc::PrepareContext(&context, absl::Seconds(20), "");
  v1::WatchSweepRequest watch;
  watch.set_sweep_id("tiny");
  watch.set_after_seq(1);
  auto reader = stub_->WatchSweep(&context, watch);
  std::vector<v1::SweepEvent> events;
  while (reader->Read(&event)) events.push_back(event);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().seq(), 2);
  EXPECT_EQ(events.back().message(), "sweep finished");
  EXPECT_EQ(events.back().summary().cancelled(), 2);
}

TEST_F(CoordinatorServerTest, Auth_CallsWithoutTheTokenAreUnauthenticated) {
  StartServer("s3cret");
  v1::ListSweepsResponse sweeps;
  EXPECT_TRUE(
      Call([&](auto* c) { return stub_->ListSweeps(c, v1::ListSweepsRequest(), &sweeps); }).ok());
  auto anonymous = v1::Coordinator::NewStub(rpc::MakeChannel(server_->address(), {}));
  grpc::ClientContext context;
  rpc::PrepareContext(&context, absl::Seconds(10), "");
  grpc::Status status = anonymous->ListSweeps(&context, v1::ListSweepsRequest(), &sweeps);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext wrong;
  rpc::PrepareContext(&wrong, absl::Seconds(10), "guess");
  v1::AcquireJobResponse acquired;
  EXPECT_EQ(anonymous->AcquireJob(&wrong, v1::AcquireJobRequest(), &acquired).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext watch_context;
  rpc::PrepareContext(&watch_context, absl::Seconds(10), "");
  auto reader = anonymous->WatchSweep(&watch_context, v1::WatchSweepRequest());
  v1::SweepEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(CoordinatorServerTest, SubmitSweep_SpecErrorsAreInvalidArgumentWithPosition) {
  StartServer();
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml("name: bad\njob:\n  kind: command\n  command: echo\ngrid:\n  x: []\n");
  submit.set_spec_path("bad.yaml");
  v1::SubmitSweepResponse response;
  grpc::Status status = Call([&](auto* c) { return stub_->SubmitSweep(c, submit, &response); });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("bad.yaml:"));
}

TEST_F(CoordinatorServerTest, SubmitSweep_ParseOutlastingTheClientDeadlineCreatesNoSweep) {
  StartServer();
  // 300 x 300 = 90,000 cells: well under the caps, but far more than 150 ms of expansion.
  std::string values;
  for (int i = 0; i < 300; ++i) values += (i ? ", " : "") + std::to_string(i);
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(
      "name: big\njob:\n  kind: command\n  command: \"echo {x} {y}\"\ngrid:\n  x: [" + values +
      "]\n  y: [" + values + "]\n");
  submit.set_spec_path("big.yaml");
  submit.set_idempotency_key("k1");
  v1::SubmitSweepResponse response;
  grpc::Status status = Call([&](auto* c) { return stub_->SubmitSweep(c, submit, &response); },
                             absl::Milliseconds(400));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's own answer, or the client's when a slow (sanitizer) build misses the answer
  // margin; either way no sweep exists afterwards.
  EXPECT_THAT(status.error_message(),
              testing::AnyOf(HasSubstr("big.yaml: expanding the spec took longer"),
                             testing::Eq("Deadline Exceeded")));
  v1::ListSweepsResponse listed;
  ASSERT_TRUE(
      Call([&](auto* c) { return stub_->ListSweeps(c, v1::ListSweepsRequest(), &listed); }).ok());
  EXPECT_EQ(listed.sweeps_size(), 0);
}

TEST_F(CoordinatorServerTest, SubmitSweep_RepeatedIdempotencyKeyReturnsTheFirstSweep) {
  StartServer();
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(kSpec);
  submit.set_idempotency_key("key-1");
  v1::SubmitSweepResponse first, second;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->SubmitSweep(c, submit, &first); }).ok());
  ASSERT_TRUE(Call([&](auto* c) { return stub_->SubmitSweep(c, submit, &second); }).ok());
  EXPECT_EQ(second.sweep_id(), first.sweep_id());
  EXPECT_EQ(second.jobs(), first.jobs());
  v1::ListSweepsResponse listed;
  ASSERT_TRUE(
      Call([&](auto* c) { return stub_->ListSweeps(c, v1::ListSweepsRequest(), &listed); }).ok());
  ASSERT_EQ(listed.sweeps_size(), 1);
  EXPECT_EQ(listed.sweeps(0).spec_yaml(), "");  // lists carry no spec text
  v1::GetSweepRequest get;
  get.set_sweep_id(first.sweep_id());
  v1::GetSweepResponse got;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->GetSweep(c, get, &got); }).ok());
  EXPECT_EQ(got.summary().spec_yaml(), kSpec);
}

TEST_F(CoordinatorServerTest, AcquireJob_LongPollAnswersEmptyAfterTheWait) {
  StartServer();
  v1::RegisterWorkerRequest reg;
  reg.set_worker_name("w1");
  reg.set_slots(1);
  reg.set_incarnation_id("inc-1");
  v1::RegisterWorkerResponse registered;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->RegisterWorker(c, reg, &registered); }).ok());
  v1::AcquireJobRequest acquire;
  acquire.set_worker_id("w1");
  acquire.set_incarnation_id("inc-1");
  acquire.set_free_slots(1);
  acquire.set_wait_ms(300);
  v1::AcquireJobResponse acquired;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Call([&](auto* c) { return stub_->AcquireJob(c, acquire, &acquired); }).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(acquired.assignments_size(), 0);
  // An unregistered incarnation must register again.
  acquire.set_incarnation_id("other");
  EXPECT_EQ(Call([&](auto* c) { return stub_->AcquireJob(c, acquire, &acquired); }).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(CoordinatorServerTest, Restart_SameDatabaseKeepsSweeps) {
  StartServer();
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(kSpec);
  v1::SubmitSweepResponse submitted;
  ASSERT_TRUE(Call([&](auto* c) { return stub_->SubmitSweep(c, submit, &submitted); }).ok());
  server_->Shutdown();
  server_.reset();
  StartServer();
  v1::ListSweepsResponse sweeps;
  ASSERT_TRUE(
      Call([&](auto* c) { return stub_->ListSweeps(c, v1::ListSweepsRequest(), &sweeps); }).ok());
  ASSERT_THAT(sweeps.sweeps(), SizeIs(1));
  EXPECT_EQ(sweeps.sweeps(0).sweep_id(), submitted.sweep_id());
  EXPECT_EQ(sweeps.sweeps(0).pending(), 2);
}

}  // namespace
}  // namespace pcsweep::coordinator
