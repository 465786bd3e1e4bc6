#include "worker/registration.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "worker/clock_wait.h"

namespace pcsweep::worker {

Registration::Registration(std::string name, std::string incarnation_id,
                           std::shared_ptr<CoordinatorClient> client, Clock* clock,
                           absl::Duration clock_poll, RegistrationCallbacks callbacks)
    : name_(std::move(name)),
      incarnation_(std::move(incarnation_id)),
      client_(std::move(client)),
      clock_(clock),
      clock_poll_(clock_poll),
      callbacks_(std::move(callbacks)) {}

Registration::~Registration() { StopHeartbeats(); }

bool Registration::Register(v1::RegisterWorkerRequest request) {
  for (const v1::JobProgress& job : callbacks_.held_jobs()) {
    v1::JobRef* ref = request.add_running();
    ref->set_job_id(job.job_id());
    ref->set_attempt(job.attempt());
  }
  absl::StatusOr<v1::RegisterWorkerResponse> response = client_->Register(request);
  if (!response.ok()) {
    RecordRegisterFailure(response.status());
    return false;
  }
  {
    absl::MutexLock lock(&mu_);
    worker_id_ = response->worker_id();
    heartbeat_interval_ = response->heartbeat_interval_ms() > 0
                              ? absl::Milliseconds(response->heartbeat_interval_ms())
                              : kDefaultHeartbeat;
    if (!HaltedLocked()) state_ = RegistrationState::kRegistered;
    spdlog::info("worker {}: registered as {} ({} slot(s), {} held job(s))", name_, worker_id_,
                 request.slots(), request.running_size());
    cv_.SignalAll();
  }
  callbacks_.obey_cancels(response->cancel());
  callbacks_.on_changed();
  return true;
}

void Registration::RecordRegisterFailure(const absl::Status& status) {
  // A refused credential or a name owned by another identity does not heal by retrying.
  if (absl::IsPermissionDenied(status) || absl::IsUnauthenticated(status)) {
    absl::Status reason;
    {
      absl::MutexLock lock(&mu_);
      halt_reason_ = absl::Status(status.code(), absl::StrCat("the coordinator refused worker '",
                                                              name_, "': ", status.message()));
      reason = halt_reason_;
    }
    Halt(reason);
    return;
  }
  absl::MutexLock lock(&mu_);
  if (state_ == RegistrationState::kUnregistered) {
    spdlog::warn("worker {}: cannot register yet, will keep trying: {}", name_, status.ToString());
    state_ = RegistrationState::kRetrying;
  }
}

void Registration::StartHeartbeats() {
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
}

void Registration::StopHeartbeats() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    heartbeats_stopped_ = true;
    cv_.SignalAll();
  }
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

void Registration::RequestHeartbeat() {
  absl::MutexLock lock(&mu_);
  beat_requested_ = true;
  cv_.SignalAll();
}

absl::Status Registration::ConfirmCurrent() {
  absl::StatusOr<v1::HeartbeatResponse> response =
      client_->Heartbeat(HeartbeatRequestFor(worker_id()));
  if (!response.ok()) {
    if (response.status().code() == absl::StatusCode::kAborted) Halt(response.status());
    return response.status();
  }
  if (response->reregister()) {
    MarkForgotten();
    return absl::UnavailableError("coordinator asks to register again");
  }
  return absl::OkStatus();
}

RegistrationState Registration::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

bool Registration::registered() const {
  absl::MutexLock lock(&mu_);
  return RegisteredLocked();
}

bool Registration::halted() const {
  absl::MutexLock lock(&mu_);
  return HaltedLocked();
}

absl::Status Registration::halt_reason() const {
  absl::MutexLock lock(&mu_);
  return halt_reason_;
}

std::string Registration::worker_id() const {
  absl::MutexLock lock(&mu_);
  return worker_id_;
}

bool Registration::RegisteredLocked() const {
  return state_ == RegistrationState::kRegistered || state_ == RegistrationState::kSuperseded;
}

bool Registration::HaltedLocked() const {
  return state_ == RegistrationState::kSuperseded || state_ == RegistrationState::kHalted;
}

bool Registration::BeatsEndLocked() const { return heartbeats_stopped_ || HaltedLocked(); }

bool Registration::BeatsEndOrRegisteredLocked() const {
  return BeatsEndLocked() || state_ == RegistrationState::kRegistered;
}

bool Registration::AwaitBeatDueLocked(absl::Time next_beat) {
  while (true) {
    mu_.Await(absl::Condition(this, &Registration::BeatsEndOrRegisteredLocked));
    if (BeatsEndLocked()) return false;
    WaitForClock(
        &mu_, &cv_, clock_, clock_poll_, next_beat, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return BeatsEndLocked() || state_ != RegistrationState::kRegistered || beat_requested_;
        });
    if (BeatsEndLocked()) return false;
    if (state_ != RegistrationState::kRegistered) continue;
    if (clock_->Now() >= next_beat || beat_requested_) return true;
  }
}

void Registration::HeartbeatLoop() {
  absl::Time next_beat = clock_->Now();
  while (true) {
    std::string worker_id;
    {
      absl::MutexLock lock(&mu_);
      if (!AwaitBeatDueLocked(next_beat)) return;
      beat_requested_ = false;
      worker_id = worker_id_;
      next_beat = clock_->Now() + heartbeat_interval_;
    }
    absl::StatusOr<v1::HeartbeatResponse> response =
        client_->Heartbeat(HeartbeatRequestFor(worker_id));
    if (!ObeyHeartbeatAnswer(response, &next_beat)) return;
  }
}

bool Registration::ObeyHeartbeatAnswer(const absl::StatusOr<v1::HeartbeatResponse>& response,
                                       absl::Time* next_beat) {
  if (!response.ok()) {
    const absl::StatusCode code = response.status().code();
    if (code == absl::StatusCode::kAborted) {
      Halt(response.status());
      return false;
    }
    if (code == absl::StatusCode::kFailedPrecondition || code == absl::StatusCode::kNotFound) {
      MarkForgotten();
    }
    spdlog::debug("worker {}: heartbeat failed: {}", name_, response.status().ToString());
    return true;
  }
  if (response->reregister()) {
    spdlog::info("worker {}: coordinator does not know us (restarted?); registering again", name_);
    MarkForgotten();
    // Beat right after the new registration: the coordinator needs fresh progress.
    *next_beat = clock_->Now();
    return true;
  }
  callbacks_.obey_cancels(response->cancel());
  return true;
}

v1::HeartbeatRequest Registration::HeartbeatRequestFor(const std::string& worker_id) const {
  v1::HeartbeatRequest request;
  request.set_worker_id(worker_id);
  request.set_incarnation_id(incarnation_);
  for (v1::JobProgress& job : callbacks_.held_jobs()) *request.add_jobs() = std::move(job);
  return request;
}

void Registration::MarkForgotten() {
  {
    absl::MutexLock lock(&mu_);
    if (state_ == RegistrationState::kRegistered) {
      state_ = RegistrationState::kUnregistered;
    } else if (state_ == RegistrationState::kSuperseded) {
      state_ = RegistrationState::kHalted;
    } else {
      return;
    }
    cv_.SignalAll();
  }
  callbacks_.on_changed();
}

void Registration::Halt(const absl::Status& why) {
  {
    absl::MutexLock lock(&mu_);
    if (HaltedLocked()) return;
    spdlog::error("worker {}: stopping: {}", name_, why.ToString());
    state_ = state_ == RegistrationState::kRegistered ? RegistrationState::kSuperseded
                                                      : RegistrationState::kHalted;
    cv_.SignalAll();
  }
  callbacks_.on_halt();
  callbacks_.on_changed();
}

}  // namespace pcsweep::worker
