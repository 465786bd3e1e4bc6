#include "worker/result_reporter.h"

#include <unistd.h>

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/coordinator_client.h"
#include "worker/registration.h"
#include "worker/result_spool.h"

namespace pcsweep::worker {
namespace {

using ::testing::HasSubstr;

// Each test sends with SendRemaining(), the synchronous pass, so that every answer of the fake
// coordinator is seen once and in order; the reporting thread uses the same Send().
class ResultReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        absl::StrCat(::testing::TempDir(), "/result_reporter_test-", getpid(), "-", info->name());
    std::filesystem::remove_all(dir_);
    fake_ = std::make_shared<FakeCoordinatorClient>();
    RegistrationCallbacks callbacks;
    callbacks.held_jobs = [this] { return reporter_->Pending(); };
    callbacks.obey_cancels = [](const google::protobuf::RepeatedPtrField<v1::JobRef>&) {};
    callbacks.on_halt = [] {};
    callbacks.on_changed = [] {};
    registration_ = std::make_unique<Registration>("test-worker", "inc-1", fake_, &clock_,
                                                   absl::Milliseconds(2), std::move(callbacks));
    absl::StatusOr<std::unique_ptr<ResultSpool>> spool = ResultSpool::Open(dir_);
    ASSERT_TRUE(spool.ok()) << spool.status();
    reporter_ = std::make_unique<ResultReporter>("test-worker", "inc-1", fake_, &clock_,
                                                 absl::Milliseconds(2), std::move(*spool),
                                                 std::vector<SpooledResult>{}, registration_.get());
    v1::RegisterWorkerRequest request;
    request.set_worker_name("test-worker");
    request.set_incarnation_id("inc-1");
    ASSERT_TRUE(registration_->Register(request));
  }
  void TearDown() override {
    reporter_.reset();
    registration_.reset();
    std::filesystem::remove_all(dir_);
  }

  static SpooledResult Completion(const std::string& job_id) {
    v1::CompleteJobRequest complete;
    complete.set_job_id(job_id);
    complete.set_attempt(1);
    complete.set_log_path("/logs/" + job_id);
    return SpooledResult{complete};
  }
  bool Spooled(const std::string& job_id) const {
    return std::filesystem::exists(absl::StrCat(dir_, "/", job_id, "-1.pb"));
  }

  std::string dir_;
  FakeClock clock_;
  std::shared_ptr<FakeCoordinatorClient> fake_;
  std::unique_ptr<Registration> registration_;
  std::unique_ptr<ResultReporter> reporter_;
};

TEST_F(ResultReporterTest, AnAcknowledgedResultLeavesTheOutboxAndTheSpool) {
  reporter_->Enqueue(Completion("ok"));
  EXPECT_TRUE(Spooled("ok"));
  EXPECT_EQ(reporter_->unacknowledged(), 1);
  ASSERT_EQ(reporter_->Pending().size(), 1u);
  EXPECT_EQ(reporter_->Pending()[0].message(), "finished; reporting the result");
  reporter_->SendRemaining();
  EXPECT_EQ(reporter_->unacknowledged(), 0);
  EXPECT_FALSE(Spooled("ok"));
  ASSERT_EQ(fake_->completions().size(), 1u);
  EXPECT_EQ(fake_->completions()[0].worker_id(), "w1");
  EXPECT_EQ(fake_->completions()[0].incarnation_id(), "inc-1");
}

TEST_F(ResultReporterTest, AnUnreachableCoordinatorKeepsTheResult) {
  reporter_->Enqueue(Completion("later"));
  fake_->SetUnavailable(true);
  reporter_->SendRemaining();
  EXPECT_EQ(reporter_->unacknowledged(), 1);
  EXPECT_TRUE(Spooled("later"));
}

TEST_F(ResultReporterTest, AFenceRefusalUnderACurrentRegistrationIsStaleAndDropped) {
  fake_->SetReportStatus("stale", absl::FailedPreconditionError("attempt 1 is not current"));
  reporter_->Enqueue(Completion("stale"));
  reporter_->SendRemaining();
  EXPECT_EQ(reporter_->unacknowledged(), 0);
  EXPECT_FALSE(Spooled("stale"));
  // The explicit step: one heartbeat asked whether the registration is current.
  EXPECT_EQ(fake_->heartbeats().size(), 1u);
  EXPECT_EQ(registration_->state(), RegistrationState::kRegistered);
}

TEST_F(ResultReporterTest, AFenceRefusalFromACoordinatorThatForgotUsKeepsTheResult) {
  reporter_->Enqueue(Completion("kept"));
  fake_->RequestReregister();  // as after a coordinator restart: the incarnation is unknown
  reporter_->SendRemaining();
  EXPECT_EQ(reporter_->unacknowledged(), 1);
  EXPECT_TRUE(Spooled("kept"));
  EXPECT_EQ(registration_->state(), RegistrationState::kUnregistered);
  // Not registered: the next pass does not even try.
  reporter_->SendRemaining();
  EXPECT_EQ(fake_->heartbeats().size(), 1u);
  EXPECT_EQ(reporter_->unacknowledged(), 1);
}

TEST_F(ResultReporterTest, ACompletionRefusedForGoodBecomesAFinalFailure) {
  fake_->SetReportStatus("huge", absl::ResourceExhaustedError("Received message larger than max"));
  reporter_->Enqueue(Completion("huge"));
  reporter_->SendRemaining();
  EXPECT_EQ(reporter_->unacknowledged(), 0);
  EXPECT_FALSE(Spooled("huge"));
  EXPECT_TRUE(fake_->completions().empty());
}

TEST(FinalFailureTest, IsNotRetryableAndKeepsTheLog) {
  const v1::FailJobRequest fail = FinalFailure("bad", 2, "/logs/bad", "coordinator refused it");
  EXPECT_EQ(fail.job_id(), "bad");
  EXPECT_EQ(fail.attempt(), 2);
  EXPECT_FALSE(fail.retryable());
  EXPECT_FALSE(fail.preempted());
  EXPECT_EQ(fail.log_path(), "/logs/bad");
  EXPECT_THAT(fail.error(), HasSubstr("refused"));
}

TEST_F(ResultReporterTest, TheThreadSendsOnceRegisteredAndStops) {
  reporter_->Enqueue(Completion("threaded"));
  reporter_->StartSending();
  ASSERT_TRUE(
      fake_->WaitUntil([](const FakeCoordinatorClient& f) { return f.completions_locked() == 1; }));
  for (int i = 0; i < 1000 && reporter_->unacknowledged() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(reporter_->unacknowledged(), 0);
  reporter_->StopSending();
  reporter_->StopSending();  // idempotent
}

}  // namespace
}  // namespace pcsweep::worker
