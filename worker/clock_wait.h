// Timing helpers shared by the worker's threads (leasing, heartbeats, reporting): a CondVar
// wait that measures time with the injected Clock, and the retry backoff.
//
// A FakeClock does not signal anybody's CondVar when a test advances it, so every wait for a
// clock time also wakes up every `poll` of real time to look at the clock again (the daemon's
// WorkerDependencies::clock_poll; infinite for the real clock).
//
// Thread-safety: pure functions; WaitForClock needs the caller's mutex held.
#ifndef PCSWEEP_WORKER_CLOCK_WAIT_H_
#define PCSWEEP_WORKER_CLOCK_WAIT_H_

#include <algorithm>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"

namespace pcsweep::worker {

inline constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

// The wait after a failure that followed a wait of `current` (zero after a success): doubles,
// from kMinBackoff up to kMaxBackoff.
inline absl::Duration NextBackoff(absl::Duration current) {
  return std::clamp(current * 2, kMinBackoff, kMaxBackoff);
}

// Waits on `cv` until `done()` holds or `clock` reaches `until`. Like any CondVar wait it
// releases `*mu` while blocked and holds it again when it returns (`done` is always evaluated
// with `*mu` held); the caller re-checks its state afterwards.
inline void WaitForClock(absl::Mutex* mu, absl::CondVar* cv, Clock* clock, absl::Duration poll,
                         absl::Time until, const std::function<bool()>& done)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  while (!done()) {
    const absl::Duration left = until - clock->Now();
    if (left <= absl::ZeroDuration()) return;
    cv->WaitWithTimeout(mu, std::min(left, poll));
  }
}

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_CLOCK_WAIT_H_
