#include "worker/registration.h"

#include <atomic>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clock/clock.h"
#include "gtest/gtest.h"
#include "worker/coordinator_client.h"

namespace pcsweep::worker {
namespace {

class RegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_shared<FakeCoordinatorClient>();
    fake_->set_heartbeat_interval(absl::Seconds(1));
    RegistrationCallbacks callbacks;
    callbacks.held_jobs = [this] {
      absl::MutexLock lock(&mu_);
      return held_;
    };
    callbacks.obey_cancels = [this](const google::protobuf::RepeatedPtrField<v1::JobRef>& refs) {
      absl::MutexLock lock(&mu_);
      cancels_ += refs.size();
    };
    callbacks.on_halt = [this] { ++halts_; };
    callbacks.on_changed = [this] { ++changes_; };
    registration_ = std::make_unique<Registration>("test-worker", "inc-1", fake_, &clock_,
                                                   absl::Milliseconds(2), std::move(callbacks));
  }

  static v1::RegisterWorkerRequest Request() {
    v1::RegisterWorkerRequest request;
    request.set_worker_name("test-worker");
    request.set_incarnation_id("inc-1");
    request.set_slots(2);
    return request;
  }

  // Advances the fake clock a second at a time until `done` holds.
  template <typename Predicate>
  bool AdvanceUntil(Predicate done) {
    for (int i = 0; i < 600; ++i) {
      if (done()) return true;
      clock_.Advance(absl::Seconds(1));
      absl::SleepFor(absl::Milliseconds(10));
    }
    return done();
  }

  FakeClock clock_;
  std::shared_ptr<FakeCoordinatorClient> fake_;
  absl::Mutex mu_;
  std::vector<v1::JobProgress> held_ ABSL_GUARDED_BY(mu_);
  int cancels_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int> halts_{0};
  std::atomic<int> changes_{0};
  std::unique_ptr<Registration> registration_;
};

TEST_F(RegistrationTest, RegisterTakesTheWorkerIdAndListsTheHeldJobs) {
  {
    absl::MutexLock lock(&mu_);
    held_.emplace_back();
    held_.back().set_job_id("old");
    held_.back().set_attempt(3);
  }
  EXPECT_EQ(registration_->state(), RegistrationState::kUnregistered);
  ASSERT_TRUE(registration_->Register(Request()));
  EXPECT_EQ(registration_->state(), RegistrationState::kRegistered);
  EXPECT_TRUE(registration_->registered());
  EXPECT_FALSE(registration_->halted());
  EXPECT_EQ(registration_->worker_id(), "w1");
  EXPECT_GE(changes_.load(), 1);
  const std::vector<v1::RegisterWorkerRequest> sent = fake_->registrations();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].slots(), 2);
  ASSERT_EQ(sent[0].running_size(), 1);
  EXPECT_EQ(sent[0].running(0).job_id(), "old");
  EXPECT_EQ(sent[0].running(0).attempt(), 3);
}

TEST_F(RegistrationTest, AFailedRegistrationIsRetriedAndARefusedOneHalts) {
  fake_->SetUnavailable(true);
  EXPECT_FALSE(registration_->Register(Request()));
  EXPECT_EQ(registration_->state(), RegistrationState::kRetrying);
  EXPECT_FALSE(registration_->Register(Request()));
  EXPECT_EQ(registration_->state(), RegistrationState::kRetrying);
  EXPECT_EQ(halts_.load(), 0);

  fake_->SetUnavailable(false);
  fake_->SetRegisterStatus(absl::PermissionDeniedError("name owned by another identity"));
  EXPECT_FALSE(registration_->Register(Request()));
  EXPECT_EQ(registration_->state(), RegistrationState::kHalted);
  EXPECT_TRUE(registration_->halted());
  EXPECT_FALSE(registration_->registered());
  EXPECT_EQ(halts_.load(), 1);
  EXPECT_EQ(registration_->halt_reason().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(registration_->halt_reason().message(),
            "the coordinator refused worker 'test-worker': name owned by another identity");
}

TEST_F(RegistrationTest, HeartbeatsCarryTheHeldJobsAndBringCancelOrders) {
  ASSERT_TRUE(registration_->Register(Request()));
  {
    absl::MutexLock lock(&mu_);
    held_.emplace_back();
    held_.back().set_job_id("j");
    held_.back().set_attempt(1);
  }
  fake_->OrderCancel("j", 1);
  registration_->StartHeartbeats();
  ASSERT_TRUE(AdvanceUntil([&] {
    absl::MutexLock lock(&mu_);
    return cancels_ == 1;
  }));
  const std::vector<v1::HeartbeatRequest> beats = fake_->heartbeats();
  ASSERT_FALSE(beats.empty());
  EXPECT_EQ(beats[0].worker_id(), "w1");
  EXPECT_EQ(beats[0].incarnation_id(), "inc-1");
  ASSERT_EQ(beats[0].jobs_size(), 1);
  EXPECT_EQ(beats[0].jobs(0).job_id(), "j");
  registration_->StopHeartbeats();
  EXPECT_EQ(registration_->state(), RegistrationState::kRegistered);
}

TEST_F(RegistrationTest, AForgettingCoordinatorSendsItBackToUnregistered) {
  ASSERT_TRUE(registration_->Register(Request()));
  registration_->StartHeartbeats();
  fake_->RequestReregister();
  ASSERT_TRUE(
      AdvanceUntil([&] { return registration_->state() == RegistrationState::kUnregistered; }));
  EXPECT_FALSE(registration_->halted());
  ASSERT_TRUE(registration_->Register(Request()));
  EXPECT_EQ(registration_->worker_id(), "w2");
}

TEST_F(RegistrationTest, ConfirmCurrentTellsAForgettingCoordinatorFromACurrentOne) {
  ASSERT_TRUE(registration_->Register(Request()));
  EXPECT_TRUE(registration_->ConfirmCurrent().ok());
  EXPECT_EQ(registration_->state(), RegistrationState::kRegistered);
  fake_->RequestReregister();
  const absl::Status forgotten = registration_->ConfirmCurrent();
  EXPECT_EQ(forgotten.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(forgotten.message(), "coordinator asks to register again");
  EXPECT_EQ(registration_->state(), RegistrationState::kUnregistered);
}

TEST_F(RegistrationTest, AnAbortedHeartbeatSupersedesButKeepsTheIdentity) {
  ASSERT_TRUE(registration_->Register(Request()));
  fake_->SetHeartbeatStatus(absl::AbortedError("a newer incarnation has registered"));
  EXPECT_EQ(registration_->ConfirmCurrent().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(registration_->state(), RegistrationState::kSuperseded);
  EXPECT_TRUE(registration_->halted());
  EXPECT_TRUE(registration_->registered());  // results are still given back under it
  EXPECT_TRUE(registration_->halt_reason().ok());
  EXPECT_EQ(halts_.load(), 1);
  // Halting is once; the heartbeat thread ends at once in a halted state.
  EXPECT_EQ(registration_->ConfirmCurrent().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(halts_.load(), 1);
  registration_->StartHeartbeats();
  registration_->StopHeartbeats();
}

TEST_F(RegistrationTest, AbortedWhileNotRegisteredLeavesNoIdentity) {
  fake_->SetHeartbeatStatus(absl::AbortedError("a newer incarnation has registered"));
  EXPECT_EQ(registration_->ConfirmCurrent().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(registration_->state(), RegistrationState::kHalted);
  EXPECT_FALSE(registration_->registered());
  EXPECT_TRUE(registration_->halt_reason().ok());
}

}  // namespace
}  // namespace pcsweep::worker
