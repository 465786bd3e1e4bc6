// WatchReactor: the server side of one WatchSweep call. Streams the sweep's events with
// seq > after_seq: the backlog first (read from the scheduler 256 at a time), then live
// events as the scheduler appends them; each event carries the sweep's counts as of when it
// was read. One write is in flight at a time; events read meanwhile wait in a queue.
//
// States (state_):
//
//                   OnWriteDone(true)
//          +--------------------------------+
//          v                                |
//        kOpen --- queue non-empty ----> kWriting --- OnCancel ---> kWritingCancelled
//          |       (StartWrite)             |                             |
//          | Refuse: its status             | OnWriteDone(false): OK      | OnWriteDone(true):
//          | OnCancel: CANCELLED            |                             |   CANCELLED
//          | sweep done: OK                 |                             | OnWriteDone(false):
//          | events unreadable: the error   |                             |   OK
//          v                                v                             |
//        kFinished <------------------------+-----------------------------+
//
//   How it finishes (Finish is called exactly once, on the transition to kFinished):
//   - Refuse(status): the handler refused the call (identity, unknown sweep) before Start.
//   - Sweep done: the pump read no event after the last one sent and the sweep has no
//     unfinished job -> OK; EventsAfter failed (the sweep vanished) -> its error.
//   - Cancel: OnCancel with no write in flight -> CANCELLED "watch cancelled" at once; during
//     a write -> CANCELLED once that write completes.
//   - Write failure: OnWriteDone(false) -> OK (the stream is broken; the client is gone).
//
// The pump (Pump) moves events from the scheduler to the stream: it starts the next write,
// reads more events, or, once caught up, arms a scheduler watch whose callback pumps again.
// Only one thread pumps at a time (pump_); a pump requested meanwhile makes that thread
// loop once more instead.
//
// Threads:
//   - Constructor, Refuse, Start: the gRPC thread running CoordinatorService::WatchSweep.
//   - OnWriteDone, OnCancel, OnDone: gRPC callback threads; OnWriteDone pumps on its thread.
//   - The scheduler's watch callback (Pump): whichever thread made the scheduler append the
//     sweep's next event (a gRPC thread of another call, the tick thread, the store's writer
//     thread, Scheduler::Shutdown), after the scheduler released its mutex.
//
// Locks: mu_ guards the state, the pump token, the queue and the watch id; it is never held
// across a scheduler call or a gRPC operation. Link::mu (see below) is taken before mu_ and
// is held by the watch callback for the whole of its Pump, which is how OnDone waits for it.
//
// Ownership: allocated by the WatchSweep handler and handed to gRPC, which calls OnDone once
// the call is over; OnDone withdraws the scheduler watch and deletes the reactor. The
// scheduler (not owned) must outlive it.
#ifndef PCSWEEP_COORDINATOR_WATCH_REACTOR_H_
#define PCSWEEP_COORDINATOR_WATCH_REACTOR_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/model.h"
#include "coordinator/scheduler.h"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::coordinator {

class WatchReactor final : public grpc::ServerWriteReactor<v1::SweepEvent> {
 public:
  // `sweep_id` is the resolved id (not a name); events with seq > `after_seq` are sent.
  WatchReactor(Scheduler* scheduler, std::string sweep_id, int64_t after_seq);

  // Ends the call at once with `status`. Call instead of Start(), at most once.
  void Refuse(const grpc::Status& status);
  // Starts streaming (the backlog, then live events). Call once, instead of Refuse().
  void Start();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  enum class State {
    kOpen,              // no write in flight: the pump may write, read or arm a watch
    kWriting,           // current_ is being written
    kWritingCancelled,  // the client cancelled during the write: finish when it completes
    kFinished,          // Finish() called; nothing more is written
  };
  enum class PumpState {
    kIdle,      // nobody pumps
    kRunning,   // one thread is in Pump()
    kRunAgain,  // ... and another asked for a pump meanwhile: loop once more
  };

  // Outlives the reactor: the scheduler's watch callback may fire after OnDone(), and holds
  // the link, not the reactor. OnDone() clears `reactor` before deleting it.
  struct Link {
    absl::Mutex mu;
    WatchReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  };

  // The next thing the pump does, decided under mu_.
  enum class Step { kStop, kWrite, kRead };

  void Pump();
  // Takes the pump, or asks its holder to loop once more. False: someone else pumps.
  bool AcquirePump();
  // Releases the pump and stops when the stream is not kOpen; moves the queue's head into
  // current_ (kWriting) when there is one; otherwise the pump reads from the scheduler.
  Step NextStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when another pump was asked for meanwhile (loop again); else releases the pump.
  bool KeepPumpingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Converts `events` (non-empty), with the sweep's current counts, onto the queue.
  void Enqueue(const std::vector<SweepEvent>& events);
  // Registers the scheduler watch that pumps again on the next event. True: pump on (events
  // arrived meanwhile, or a pump was asked for); false: the pump was released.
  bool ArmWatch();
  // The pump's own finish (sweep done, read error): releases the pump and finishes unless
  // the call is finished already.
  void FinishFromPump(const grpc::Status& status);
  // Moves to kFinished. True when the caller must call Finish() (it was not finished yet).
  bool MarkFinishedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Scheduler* const scheduler_;
  const std::string sweep_id_;
  // The last seq read from the scheduler; touched only by the thread holding the pump.
  int64_t last_seq_;
  const std::shared_ptr<Link> link_;

  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kOpen;
  PumpState pump_ ABSL_GUARDED_BY(mu_) = PumpState::kIdle;
  std::deque<v1::SweepEvent> queue_ ABSL_GUARDED_BY(mu_);
  // The message being written: set by the pump before StartWrite, read by gRPC until
  // OnWriteDone. Unguarded: the pump replaces it only in kOpen, when no write is in flight.
  v1::SweepEvent current_;
  uint64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;  // 0 = none registered yet
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_WATCH_REACTOR_H_
