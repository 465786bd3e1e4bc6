#include "worker/result_reporter.h"

#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "common/rpc/rpc.h"
#include "spdlog/spdlog.h"
#include "worker/clock_wait.h"

namespace pcsweep::worker {
namespace {

// The coordinator's answers that no resend can change: the message is too big for it, or it
// is malformed. Every other error (UNAVAILABLE, DEADLINE_EXCEEDED, ...) is retried.
bool IsFinalRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted ||
         status.code() == absl::StatusCode::kInvalidArgument;
}

}  // namespace

v1::FailJobRequest FinalFailure(const std::string& job_id, int attempt, const std::string& log_path,
                                const std::string& error) {
  v1::FailJobRequest fail;
  fail.set_job_id(job_id);
  fail.set_attempt(attempt);
  fail.set_error(error);
  fail.set_retryable(false);
  fail.set_log_path(log_path);
  return fail;
}

ResultReporter::ResultReporter(std::string name, std::string incarnation_id,
                               std::shared_ptr<CoordinatorClient> client, Clock* clock,
                               absl::Duration clock_poll, std::unique_ptr<ResultSpool> spool,
                               std::vector<SpooledResult> spooled, Registration* registration)
    : name_(std::move(name)),
      incarnation_(std::move(incarnation_id)),
      client_(std::move(client)),
      clock_(clock),
      clock_poll_(clock_poll),
      spool_(std::move(spool)),
      registration_(registration) {
  absl::MutexLock lock(&mu_);
  for (SpooledResult& result : spooled) outbox_.push_back(std::move(result));
  if (!outbox_.empty()) {
    spdlog::info("worker: {} result(s) from a previous run wait in the spool", outbox_.size());
  }
}

ResultReporter::~ResultReporter() { StopSending(); }

void ResultReporter::StartSending() {
  thread_ = std::thread([this] { SendLoop(); });
}

void ResultReporter::Enqueue(SpooledResult result) {
  // On disk first: from here on a crash or an outage cannot lose it.
  absl::Status written = spool_->Write(result);
  if (!written.ok()) {
    spdlog::error("worker {}: cannot spool result {}: {} (reporting from memory only)", name_,
                  result.key(), written.ToString());
  }
  absl::MutexLock lock(&mu_);
  outbox_.push_back(std::move(result));
  cv_.SignalAll();
}

void ResultReporter::RegistrationChanged() {
  absl::MutexLock lock(&mu_);
  cv_.SignalAll();
}

void ResultReporter::StopSending() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    sending_stopped_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void ResultReporter::SendRemaining() {
  std::deque<SpooledResult> pending;
  {
    absl::MutexLock lock(&mu_);
    pending = std::move(outbox_);
    outbox_.clear();
  }
  const bool registered = registration_->registered();
  std::deque<SpooledResult> unsent;
  for (SpooledResult& result : pending) {
    absl::Status status = registered ? Send(result) : absl::UnavailableError("never registered");
    if (status.ok()) {
      RemoveFromSpool(result.key());
    } else {
      unsent.push_back(std::move(result));
    }
  }
  if (!unsent.empty()) {
    spdlog::warn("worker {}: {} result(s) stay in {} for the next start", name_, unsent.size(),
                 spool_->dir());
  }
  absl::MutexLock lock(&mu_);
  outbox_ = std::move(unsent);
}

std::vector<v1::JobProgress> ResultReporter::Pending() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::JobProgress> jobs;
  for (const SpooledResult& result : outbox_) {
    v1::JobProgress progress;
    progress.set_job_id(result.job_id());
    progress.set_attempt(result.attempt());
    progress.set_progress(1.0);
    progress.set_message("finished; reporting the result");
    jobs.push_back(std::move(progress));
  }
  return jobs;
}

int ResultReporter::unacknowledged() const {
  absl::MutexLock lock(&mu_);
  return outbox_.size();
}

void ResultReporter::SendLoop() {
  absl::Duration backoff = absl::ZeroDuration();
  absl::Time next_try = absl::InfinitePast();
  while (true) {
    std::optional<SpooledResult> result;
    {
      absl::MutexLock lock(&mu_);
      result = AwaitNextLocked(next_try);
    }
    if (!result.has_value()) return;
    absl::Status status = Send(*result);
    if (status.ok()) RemoveFromSpool(result->key());

    absl::MutexLock lock(&mu_);
    // The front may have moved only by our own hand: this thread alone pops.
    outbox_.pop_front();
    if (status.ok()) {
      backoff = absl::ZeroDuration();
      next_try = absl::InfinitePast();
    } else {
      RequeueLocked(*std::move(result), status);
      backoff = NextBackoff(backoff);
      next_try = clock_->Now() + backoff;
    }
    cv_.SignalAll();
  }
}

bool ResultReporter::ReadyLocked() const { return !outbox_.empty() && registration_->registered(); }

std::optional<SpooledResult> ResultReporter::AwaitNextLocked(absl::Time next_try) {
  // Wait for something to send, a registration to send it under, and the backoff to pass.
  while (!sending_stopped_) {
    if (ReadyLocked() && clock_->Now() >= next_try) break;
    const absl::Time until = ReadyLocked() ? next_try : absl::InfiniteFuture();
    WaitForClock(&mu_, &cv_, clock_, clock_poll_, until,
                 [this, until]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                   return sending_stopped_ || (ReadyLocked() && until == absl::InfiniteFuture());
                 });
  }
  if (sending_stopped_) return std::nullopt;
  return outbox_.front();
}

void ResultReporter::RequeueLocked(SpooledResult result, const absl::Status& why) {
  // Retry later, behind the others, so that one stuck result cannot block the rest.
  if (rpc::IsCoordinatorRefusal(why)) {
    // The coordinator answered but cannot record it (e.g. its disk is full): say so, it is
    // not a network problem and needs an operator.
    spdlog::warn("worker {}: coordinator refuses result {} for now: {}", name_, result.key(),
                 std::string(why.message()));
  } else {
    spdlog::debug("worker {}: cannot report {} yet: {}", name_, result.key(), why.ToString());
  }
  outbox_.push_back(std::move(result));
}

absl::Status ResultReporter::Send(const SpooledResult& result) {
  const absl::Status status = Transmit(result, registration_->worker_id());
  if (IsFinalRefusal(status)) {
    spdlog::error("worker {}: coordinator refused the failure report {} for good: {}", name_,
                  result.key(), status.ToString());
    return absl::OkStatus();  // drop it: resending cannot help, the lease expires instead
  }
  if (status.code() != absl::StatusCode::kFailedPrecondition) return status;
  return ClassifyFenceRefusal(result, status);
}

absl::Status ResultReporter::Transmit(const SpooledResult& result, const std::string& worker_id) {
  if (const auto* failure = std::get_if<v1::FailJobRequest>(&result.request)) {
    v1::FailJobRequest request = *failure;
    request.set_worker_id(worker_id);
    request.set_incarnation_id(incarnation_);
    return client_->FailJob(request);
  }
  v1::CompleteJobRequest request = std::get<v1::CompleteJobRequest>(result.request);
  request.set_worker_id(worker_id);
  request.set_incarnation_id(incarnation_);
  const absl::Status status = client_->CompleteJob(request);
  if (!IsFinalRefusal(status)) return status;
  // Too big or malformed: no retry can succeed. Fail the job for good instead, so that
  // neither the lease nor this outbox keeps it alive.
  spdlog::error("worker {}: coordinator refused result {}: {}", name_, result.key(),
                status.ToString());
  v1::FailJobRequest fail =
      FinalFailure(request.job_id(), request.attempt(), request.log_path(),
                   absl::StrCat("coordinator refused the result: ", status.message()));
  fail.set_worker_id(worker_id);
  fail.set_incarnation_id(incarnation_);
  return client_->FailJob(fail);
}

absl::Status ResultReporter::ClassifyFenceRefusal(const SpooledResult& result,
                                                  const absl::Status& refusal) {
  // Refused as stale. That is final only if our registration is current: right after a
  // coordinator restart, an unknown incarnation is refused the same way, and the result must
  // then wait for the re-registration instead of being dropped.
  absl::Status current = registration_->ConfirmCurrent();
  if (!current.ok()) return current;
  spdlog::warn("worker {}: coordinator refused result {} as stale: {}", name_, result.key(),
               std::string(refusal.message()));
  return absl::OkStatus();
}

void ResultReporter::RemoveFromSpool(const std::string& key) {
  absl::Status removed = spool_->Remove(key);
  if (!removed.ok()) spdlog::error("worker {}: {}", name_, removed.ToString());
}

}  // namespace pcsweep::worker
