#include "coordinator/watch_reactor.h"

#include <utility>

#include "absl/status/statusor.h"
#include "common/rpc/rpc.h"
#include "coordinator/proto_convert.h"

namespace pcsweep::coordinator {
namespace {

// Events read from the scheduler per EventsAfter call (a long backlog is sent in chunks).
constexpr size_t kEventsPerRead = 256;

grpc::Status Cancelled() { return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"); }

}  // namespace

WatchReactor::WatchReactor(Scheduler* scheduler, std::string sweep_id, int64_t after_seq)
    : scheduler_(scheduler),
      sweep_id_(std::move(sweep_id)),
      last_seq_(after_seq),
      link_(std::make_shared<Link>()) {
  absl::MutexLock lock(&link_->mu);
  link_->reactor = this;
}

void WatchReactor::Refuse(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kFinished;
  }
  Finish(status);
}

void WatchReactor::Start() { Pump(); }

void WatchReactor::Pump() {
  if (!AcquirePump()) return;
  for (;;) {
    Step step;
    {
      absl::MutexLock lock(&mu_);
      step = NextStepLocked();
    }
    if (step == Step::kStop) return;
    if (step == Step::kWrite) {
      StartWrite(&current_);
      absl::MutexLock lock(&mu_);
      if (!KeepPumpingLocked()) return;
      continue;
    }
    bool finished = false;
    absl::StatusOr<std::vector<SweepEvent>> events =
        scheduler_->EventsAfter(sweep_id_, last_seq_, kEventsPerRead, &finished);
    if (!events.ok() || (events->empty() && finished)) {
      FinishFromPump(events.ok() ? grpc::Status::OK : rpc::ToGrpcStatus(events.status()));
      return;
    }
    if (!events->empty()) {
      Enqueue(*events);
      continue;
    }
    if (!ArmWatch()) return;
  }
}

bool WatchReactor::AcquirePump() {
  absl::MutexLock lock(&mu_);
  if (pump_ != PumpState::kIdle) {
    pump_ = PumpState::kRunAgain;
    return false;
  }
  pump_ = PumpState::kRunning;
  return true;
}

WatchReactor::Step WatchReactor::NextStepLocked() {
  pump_ = PumpState::kRunning;  // what was asked for before this point is done below
  if (state_ != State::kOpen) {
    pump_ = PumpState::kIdle;
    return Step::kStop;
  }
  if (queue_.empty()) return Step::kRead;
  current_ = std::move(queue_.front());
  queue_.pop_front();
  state_ = State::kWriting;
  return Step::kWrite;
}

bool WatchReactor::KeepPumpingLocked() {
  if (pump_ == PumpState::kRunAgain) return true;
  pump_ = PumpState::kIdle;
  return false;
}

void WatchReactor::Enqueue(const std::vector<SweepEvent>& events) {
  // Each event carries the sweep's counts as of now (at or after the event).
  absl::StatusOr<SweepSummary> summary = scheduler_->GetSweepSummary(sweep_id_);
  absl::MutexLock lock(&mu_);
  for (const SweepEvent& e : events) {
    v1::SweepEvent proto;
    ToProto(e, &proto);
    if (summary.ok()) {
      ToProto(*summary, proto.mutable_summary());
      proto.mutable_summary()->clear_spec_yaml();
    }
    queue_.push_back(std::move(proto));
  }
  last_seq_ = events.back().seq;
}

bool WatchReactor::ArmWatch() {
  // The callback reaches the reactor through the link only: it may run after OnDone().
  const uint64_t watch_id = scheduler_->WatchEvents(sweep_id_, last_seq_, [link = link_] {
    absl::MutexLock lock(&link->mu);
    if (link->reactor != nullptr) link->reactor->Pump();
  });
  absl::MutexLock lock(&mu_);
  if (watch_id == 0) return true;  // not registered: events arrived meanwhile
  watch_id_ = watch_id;
  return KeepPumpingLocked();
}

void WatchReactor::FinishFromPump(const grpc::Status& status) {
  bool finish = false;
  {
    absl::MutexLock lock(&mu_);
    pump_ = PumpState::kIdle;
    finish = MarkFinishedLocked();
  }
  if (finish) Finish(status);
}

bool WatchReactor::MarkFinishedLocked() {
  if (state_ == State::kFinished) return false;
  state_ = State::kFinished;
  return true;
}

void WatchReactor::OnWriteDone(bool ok) {
  bool finish = false;
  grpc::Status status;  // OK after a failed write: the stream is broken, nobody reads it
  {
    absl::MutexLock lock(&mu_);
    if (!ok) {
      finish = MarkFinishedLocked();
    } else if (state_ == State::kWriting) {
      state_ = State::kOpen;
    } else if (state_ == State::kWritingCancelled) {
      status = Cancelled();
      finish = MarkFinishedLocked();
    }
  }
  if (finish) {
    Finish(status);
    return;
  }
  if (ok) Pump();
}

void WatchReactor::OnCancel() {
  bool finish = false;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kWriting) {
      state_ = State::kWritingCancelled;
    } else if (state_ == State::kOpen) {
      finish = MarkFinishedLocked();
    }
  }
  if (finish) Finish(Cancelled());
}

void WatchReactor::OnDone() {
  {
    absl::MutexLock lock(&link_->mu);
    link_->reactor = nullptr;
  }
  uint64_t watch_id = 0;
  {
    absl::MutexLock lock(&mu_);
    watch_id = watch_id_;
  }
  if (watch_id != 0) scheduler_->Unwatch(watch_id);
  delete this;
}

}  // namespace pcsweep::coordinator
