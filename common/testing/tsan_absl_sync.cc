// ThreadSanitizer builds only (PCSWEEP_SANITIZE=thread): makes Abseil's synchronisation
// visible to TSan. Debian's libabsl is not built with -fsanitize=thread, so absl::Mutex,
// CondVar, Notification and BlockingCounter synchronise in code TSan cannot see, and every
// access they guard is reported as a race (a two-thread counter under a MutexLock is
// "racy"). The link step wraps (-Wl,--wrap) each of their out-of-line entry points that our
// objects call; the wrapper calls the real one and tells TSan what happened: a release of the
// object before it is unlocked (or waited on), an acquire after it is locked (or woken).
// Lock-order checking is not modelled: these are happens-before edges only.
#include <sanitizer/tsan_interface.h>

#include <type_traits>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#ifndef PCSWEEP_ABSL_MANGLED_NS
#error "PCSWEEP_ABSL_MANGLED_NS (Abseil's inline namespace as mangled, e.g. 7debian3) is unset"
#endif

#define PCSWEEP_CAT3(a, b, c) a##b##c
#define PCSWEEP_XCAT3(a, b, c) PCSWEEP_CAT3(a, b, c)
// __wrap_ / __real_ names of absl::<ns>::<tail> (a non-const / const member function).
#define WRAP(tail) PCSWEEP_XCAT3(__wrap__ZN4absl, PCSWEEP_ABSL_MANGLED_NS, tail)
#define REAL(tail) PCSWEEP_XCAT3(__real__ZN4absl, PCSWEEP_ABSL_MANGLED_NS, tail)
#define WRAPK(tail) PCSWEEP_XCAT3(__wrap__ZNK4absl, PCSWEEP_ABSL_MANGLED_NS, tail)
#define REALK(tail) PCSWEEP_XCAT3(__real__ZNK4absl, PCSWEEP_ABSL_MANGLED_NS, tail)

using absl::BlockingCounter;
using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

namespace {
void Acquired(const void* object) { __tsan_acquire(const_cast<void*>(object)); }
void Releasing(const void* object) { __tsan_release(const_cast<void*>(object)); }

// Abseil evaluates a Condition inside the library, with the mutex held, on the waiting thread
// or on whichever thread unlocks: invisible to TSan too. Each condition-taking wrapper passes
// this stand-in, which brackets the caller's condition with the mutex's edges.
struct AnnotatedCondition {
  const Condition* inner;
  const Mutex* mu;
};
bool EvalAnnotated(AnnotatedCondition* condition) {
  Acquired(condition->mu);
  const bool met = condition->inner->Eval();
  Releasing(condition->mu);
  return met;
}

// Calls `real`, a Mutex member that takes a Condition, with the annotated stand-in for `c`.
// `held_on_entry`: the caller holds the mutex already (Await*), rather than not (LockWhen*).
template <typename Result, typename... Rest>
Result WithAnnotatedCondition(Result (*real)(Mutex*, const Condition&, Rest...), bool held_on_entry,
                              Mutex* mu, const Condition& c, Rest... rest) {
  if (held_on_entry) Releasing(mu);
  AnnotatedCondition annotated{&c, mu};
  if constexpr (std::is_void_v<Result>) {
    real(mu, Condition(EvalAnnotated, &annotated), rest...);
    Acquired(mu);
  } else {
    const Result met = real(mu, Condition(EvalAnnotated, &annotated), rest...);
    Acquired(mu);  // held whether or not the condition became true
    return met;
  }
}
}  // namespace

// A member function is called with `this` as its first argument (Itanium C++ ABI), so each
// wrapper is a C function of (object, arguments...).
extern "C" {
void REAL(5Mutex4LockEv)(Mutex*);
void WRAP(5Mutex4LockEv)(Mutex* mu) {
  REAL(5Mutex4LockEv)(mu);
  Acquired(mu);
}
void REAL(5Mutex10ReaderLockEv)(Mutex*);
void WRAP(5Mutex10ReaderLockEv)(Mutex* mu) {
  REAL(5Mutex10ReaderLockEv)(mu);
  Acquired(mu);
}
bool REAL(5Mutex7TryLockEv)(Mutex*);
bool WRAP(5Mutex7TryLockEv)(Mutex* mu) {
  const bool locked = REAL(5Mutex7TryLockEv)(mu);
  if (locked) Acquired(mu);
  return locked;
}
bool REAL(5Mutex13ReaderTryLockEv)(Mutex*);
bool WRAP(5Mutex13ReaderTryLockEv)(Mutex* mu) {
  const bool locked = REAL(5Mutex13ReaderTryLockEv)(mu);
  if (locked) Acquired(mu);
  return locked;
}
void REAL(5Mutex6UnlockEv)(Mutex*);
void WRAP(5Mutex6UnlockEv)(Mutex* mu) {
  Releasing(mu);
  REAL(5Mutex6UnlockEv)(mu);
}
void REAL(5Mutex12ReaderUnlockEv)(Mutex*);
void WRAP(5Mutex12ReaderUnlockEv)(Mutex* mu) {
  Releasing(mu);
  REAL(5Mutex12ReaderUnlockEv)(mu);
}
void REAL(5Mutex8LockWhenERKNS0_9ConditionE)(Mutex*, const Condition&);
void WRAP(5Mutex8LockWhenERKNS0_9ConditionE)(Mutex* mu, const Condition& c) {
  WithAnnotatedCondition(&REAL(5Mutex8LockWhenERKNS0_9ConditionE), /*held_on_entry=*/false, mu, c);
}
void REAL(5Mutex14ReaderLockWhenERKNS0_9ConditionE)(Mutex*, const Condition&);
void WRAP(5Mutex14ReaderLockWhenERKNS0_9ConditionE)(Mutex* mu, const Condition& c) {
  WithAnnotatedCondition(&REAL(5Mutex14ReaderLockWhenERKNS0_9ConditionE), /*held_on_entry=*/false,
                         mu, c);
}
bool REAL(5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(Mutex*, const Condition&,
                                                                       Duration);
bool WRAP(5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(Mutex* mu,
                                                                       const Condition& c,
                                                                       Duration d) {
  return WithAnnotatedCondition(&REAL(5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE),
                                /*held_on_entry=*/false, mu, c, d);
}
bool REAL(5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(Mutex*, const Condition&, Time);
bool WRAP(5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(Mutex* mu, const Condition& c,
                                                                    Time t) {
  return WithAnnotatedCondition(&REAL(5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE),
                                /*held_on_entry=*/false, mu, c, t);
}
void REAL(5Mutex5AwaitERKNS0_9ConditionE)(Mutex*, const Condition&);
void WRAP(5Mutex5AwaitERKNS0_9ConditionE)(Mutex* mu, const Condition& c) {
  WithAnnotatedCondition(&REAL(5Mutex5AwaitERKNS0_9ConditionE), /*held_on_entry=*/true, mu, c);
}
bool REAL(5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(Mutex*, const Condition&,
                                                                    Duration);
bool WRAP(5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(Mutex* mu, const Condition& c,
                                                                    Duration d) {
  return WithAnnotatedCondition(&REAL(5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE),
                                /*held_on_entry=*/true, mu, c, d);
}
bool REAL(5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(Mutex*, const Condition&, Time);
bool WRAP(5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(Mutex* mu, const Condition& c,
                                                                 Time t) {
  return WithAnnotatedCondition(&REAL(5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE),
                                /*held_on_entry=*/true, mu, c, t);
}
void REAL(7CondVar4WaitEPNS0_5MutexE)(CondVar*, Mutex*);
void WRAP(7CondVar4WaitEPNS0_5MutexE)(CondVar* cv, Mutex* mu) {
  Releasing(mu);
  REAL(7CondVar4WaitEPNS0_5MutexE)(cv, mu);
  Acquired(mu);
}
bool REAL(7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(CondVar*, Mutex*, Duration);
bool WRAP(7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(CondVar* cv, Mutex* mu,
                                                                Duration d) {
  Releasing(mu);
  const bool timed_out = REAL(7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(cv, mu, d);
  Acquired(mu);
  return timed_out;
}
bool REAL(7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(CondVar*, Mutex*, Time);
bool WRAP(7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(CondVar* cv, Mutex* mu, Time t) {
  Releasing(mu);
  const bool timed_out = REAL(7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(cv, mu, t);
  Acquired(mu);
  return timed_out;
}
void REAL(12Notification6NotifyEv)(Notification*);
void WRAP(12Notification6NotifyEv)(Notification* n) {
  Releasing(n);
  REAL(12Notification6NotifyEv)(n);
}
void REALK(12Notification19WaitForNotificationEv)(const Notification*);
void WRAPK(12Notification19WaitForNotificationEv)(const Notification* n) {
  REALK(12Notification19WaitForNotificationEv)(n);
  Acquired(n);
}
bool REALK(12Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(const Notification*,
                                                                          Duration);
bool WRAPK(12Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(const Notification* n,
                                                                          Duration d) {
  const bool notified = REALK(12Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(n, d);
  if (notified) Acquired(n);
  return notified;
}
bool REALK(12Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(const Notification*, Time);
bool WRAPK(12Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(const Notification* n,
                                                                       Time t) {
  const bool notified = REALK(12Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(n, t);
  if (notified) Acquired(n);
  return notified;
}
bool REAL(15BlockingCounter14DecrementCountEv)(BlockingCounter*);
bool WRAP(15BlockingCounter14DecrementCountEv)(BlockingCounter* b) {
  Releasing(b);
  return REAL(15BlockingCounter14DecrementCountEv)(b);
}
void REAL(15BlockingCounter4WaitEv)(BlockingCounter*);
void WRAP(15BlockingCounter4WaitEv)(BlockingCounter* b) {
  REAL(15BlockingCounter4WaitEv)(b);
  Acquired(b);
}
}  // extern "C"
