#include "tools/cli/stop_signals.h"

#include <pthread.h>
#include <signal.h>

#include <ctime>

namespace pcsweep::cli {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  return set;
}

}  // namespace

void BlockStopSignals() {
  const sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal(const std::atomic<bool>* stop) {
  const sigset_t set = StopSignals();
  while (stop == nullptr || !stop->load()) {
    timespec timeout{0, 100 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &timeout);
    if (sig > 0) return sig;
  }
  return 0;
}

}  // namespace pcsweep::cli
