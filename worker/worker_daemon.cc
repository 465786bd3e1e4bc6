#include "worker/worker_daemon.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/jobfile/job_kinds.h"
#include "common/jobfile/result_files.h"
#include "common/rpc/rpc.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"
#include "worker/job_process.h"
#include "worker/result_spool.h"

namespace pcsweep::worker {
namespace {

constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);
constexpr absl::Duration kDefaultHeartbeat = absl::Seconds(5);

// How long a child killed by SIGTERM waits for this process's own stop (see RunJob). Real
// time, not the injected clock: it bounds a race between two signals.
constexpr absl::Duration kStopSignalWindow = absl::Seconds(2);

void ToProto(const jobfile::ExampleRow& in, v1::ExampleRow* out) {
  out->set_eval_set(in.eval_set);
  out->set_variant(in.variant);
  out->set_question_id(in.question_id);
  out->set_pair_id(in.pair_id);
  out->set_image(in.image);
  out->set_phenomenon(in.phenomenon);
  out->set_label(in.label);
  out->set_margin_original(in.margin_original);
  out->set_margin_paraphrase(in.margin_paraphrase);
}

// The child died of SIGTERM, or exited as a shell does after one (128 + 15).
bool KilledByTerm(const JobOutcome& outcome) {
  return outcome.signal == SIGTERM || outcome.exit_code == 128 + SIGTERM;
}

absl::Duration NextBackoff(absl::Duration current) {
  return std::clamp(current * 2, kMinBackoff, kMaxBackoff);
}

// The coordinator's answers that no resend can change: the message is too big for it, or it
// is malformed. Every other error (UNAVAILABLE, DEADLINE_EXCEEDED, ...) is retried.
bool IsFinalRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted ||
         status.code() == absl::StatusCode::kInvalidArgument;
}

// A failure report that the coordinator does not retry.
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

std::string RandomIncarnation() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

std::string HostName() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "localhost";
  return host;
}

std::string DefaultRunnerPath() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "pcsweep-run";
  return (self.parent_path() / "pcsweep-run").string();
}

std::string SafeFileName(std::string name) {
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return name;
}

// Asks nvidia-smi, when installed, for the machine's GPUs.
std::vector<v1::GpuInfo> DetectGpusWithNvidiaSmi() {
  std::vector<v1::GpuInfo> gpus;
  FILE* pipe = popen(
      "command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi "
      "--query-gpu=index,name,memory.total --format=csv,noheader,nounits 2>/dev/null",
      "r");
  if (pipe == nullptr) return gpus;
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  pclose(pipe);
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<std::string> fields = absl::StrSplit(line, ',');
    if (fields.size() < 3) continue;
    int index = 0;
    int64_t memory_mib = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[0]), &index)) continue;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[2]), &memory_mib)) memory_mib = 0;
    v1::GpuInfo gpu;
    gpu.set_index(index);
    gpu.set_name(std::string(absl::StripAsciiWhitespace(fields[1])));
    gpu.set_memory_bytes(memory_mib * 1024 * 1024);
    gpus.push_back(gpu);
  }
  return gpus;
}

class WorkerDaemonImpl final : public WorkerDaemon {
 public:
  WorkerDaemonImpl(WorkerOptions options, WorkerDependencies deps,
                   std::unique_ptr<ResultSpool> spool, std::vector<SpooledResult> spooled,
                   std::vector<v1::GpuInfo> gpus)
      : options_(std::move(options)),
        client_(std::move(deps.client)),
        clock_(deps.clock),
        clock_poll_(deps.clock_poll),
        spool_(std::move(spool)),
        gpus_(std::move(gpus)),
        incarnation_(RandomIncarnation()),
        host_(HostName()) {
    name_ = options_.name.empty() ? absl::StrCat(host_, ":", getpid()) : options_.name;
    for (int slot = 0; slot < options_.slots; ++slot) {
      slot_gpu_.push_back(options_.gpus.empty()
                              ? std::string()
                              : absl::StrCat(options_.gpus[slot % options_.gpus.size()]));
    }
    slot_busy_.assign(options_.slots, false);
    for (SpooledResult& result : spooled) outbox_.push_back(std::move(result));
    if (!outbox_.empty()) {
      spdlog::info("worker: {} result(s) from a previous run wait in the spool", outbox_.size());
    }
  }

  ~WorkerDaemonImpl() override { Shutdown(); }

  void StartThreads() {
    lease_thread_ = std::thread([this] { LeaseLoop(); });
    heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
    reporter_thread_ = std::thread([this] { ReporterLoop(); });
  }

  void Shutdown() override;
  void Wait() override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](WorkerDaemonImpl* self)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->stopped_ || self->superseded_; },
        this));
  }
  bool superseded() const override {
    absl::MutexLock lock(&mu_);
    return superseded_;
  }
  absl::Status halt_reason() const override {
    absl::MutexLock lock(&mu_);
    return halt_reason_;
  }
  std::string worker_id() const override {
    absl::MutexLock lock(&mu_);
    return worker_id_;
  }
  std::string incarnation_id() const override { return incarnation_; }
  int running_jobs() const override {
    absl::MutexLock lock(&mu_);
    return running_.size();
  }
  int unacknowledged_results() const override {
    absl::MutexLock lock(&mu_);
    return outbox_.size();
  }

 private:
  struct RunningJob {
    v1::Assignment assignment;
    int slot = 0;
    std::shared_ptr<JobProcess> process;  // null until the child has started
    bool cancel_ordered = false;          // the coordinator took the job away
    std::thread thread;
  };

  static std::string KeyOf(const std::string& job_id, int attempt) {
    return absl::StrCat(job_id, "#", attempt);
  }

  // Waits on cv_ until `done()` holds or the injected clock reaches `until`.
  void WaitLocked(absl::Time until, const std::function<bool()>& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!done()) {
      const absl::Duration left = until - clock_->Now();
      if (left <= absl::ZeroDuration()) return;
      cv_.WaitWithTimeout(&mu_, std::min(left, clock_poll_));
    }
  }

  int FreeSlotsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::count(slot_busy_.begin(), slot_busy_.end(), false);
  }

  // Everything the coordinator should consider ours: running children and results it has not
  // acknowledged yet (their lease must not expire before the report gets through).
  std::vector<v1::JobProgress> HeldJobsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<v1::JobProgress> jobs;
    for (const auto& [key, job] : running_) {
      v1::JobProgress progress;
      progress.set_job_id(job.assignment.job_id());
      progress.set_attempt(job.assignment.attempt());
      if (job.process != nullptr) {
        JobProgressSnapshot snapshot = job.process->Progress();
        progress.set_progress(snapshot.progress);
        progress.set_message(snapshot.message);
        progress.set_eta_ms(snapshot.eta_ms);
      }
      jobs.push_back(std::move(progress));
    }
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

  v1::HeartbeatRequest HeartbeatRequestLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id_);
    request.set_incarnation_id(incarnation_);
    for (v1::JobProgress& job : HeldJobsLocked()) *request.add_jobs() = std::move(job);
    return request;
  }

  void ObeyCancelsLocked(const google::protobuf::RepeatedPtrField<v1::JobRef>& cancels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const v1::JobRef& ref : cancels) {
      auto it = running_.find(KeyOf(ref.job_id(), ref.attempt()));
      if (it == running_.end()) continue;
      spdlog::info("worker: coordinator cancelled job {} attempt {}", ref.job_id(), ref.attempt());
      it->second.cancel_ordered = true;
      if (it->second.process != nullptr) it->second.process->Cancel(options_.kill_grace);
    }
  }

  std::vector<std::string> Kinds() const {
    if (!options_.kinds.empty()) return options_.kinds;
    // With the runner, any kind: pcsweep-run itself refuses kinds it does not know, with a
    // clear error, which beats a job that no worker ever leases. Without it, only commands.
    if (access(options_.runner_path.c_str(), X_OK) == 0) return {};
    return {std::string(jobfile::kCommandKind)};
  }

  // Registers once. Returns whether it worked.
  bool RegisterOnce() ABSL_LOCKS_EXCLUDED(mu_) {
    v1::RegisterWorkerRequest request;
    request.set_host(host_);
    request.set_slots(options_.slots);
    for (const v1::GpuInfo& gpu : gpus_) *request.add_gpus() = gpu;
    request.set_incarnation_id(incarnation_);
    request.set_worker_name(name_);
    for (const std::string& kind : Kinds()) request.add_kinds(kind);
    request.mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
    {
      absl::MutexLock lock(&mu_);
      for (const v1::JobProgress& job : HeldJobsLocked()) {
        v1::JobRef* ref = request.add_running();
        ref->set_job_id(job.job_id());
        ref->set_attempt(job.attempt());
      }
    }
    absl::StatusOr<v1::RegisterWorkerResponse> response = client_->Register(request);
    absl::MutexLock lock(&mu_);
    if (!response.ok()) {
      // A refused credential or a name owned by another identity does not heal by retrying.
      if (absl::IsPermissionDenied(response.status()) ||
          absl::IsUnauthenticated(response.status())) {
        halt_reason_ = absl::Status(response.status().code(),
                                    absl::StrCat("the coordinator refused worker '", name_,
                                                 "': ", response.status().message()));
        HaltLocked(halt_reason_);
        return false;
      }
      if (!register_error_logged_) {
        spdlog::warn("worker {}: cannot register yet, will keep trying: {}", name_,
                     response.status().ToString());
        register_error_logged_ = true;
      }
      return false;
    }
    register_error_logged_ = false;
    worker_id_ = response->worker_id();
    heartbeat_interval_ = response->heartbeat_interval_ms() > 0
                              ? absl::Milliseconds(response->heartbeat_interval_ms())
                              : kDefaultHeartbeat;
    registered_ = true;
    spdlog::info("worker {}: registered as {} ({} slot(s), {} held job(s))", name_, worker_id_,
                 options_.slots, request.running_size());
    ObeyCancelsLocked(response->cancel());
    cv_.SignalAll();
    return true;
  }

  // Another process registered under our name: stop working (as in Shutdown, but from a
  // daemon thread; the owner's Shutdown() then finishes the job).
  void HaltLocked(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (superseded_) return;
    spdlog::error("worker {}: stopping: {}", name_, why.ToString());
    superseded_ = true;
    shutting_down_ = true;
    for (auto& [key, job] : running_) {
      if (job.process != nullptr) job.process->Cancel(options_.kill_grace);
    }
    cv_.SignalAll();
  }

  void LeaseLoop();
  void HeartbeatLoop();
  void ReporterLoop();
  void LaunchLocked(const v1::Assignment& assignment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunJob(std::string key, v1::Assignment assignment, int slot);
  void EnqueueResult(SpooledResult result);
  // Sends one result under the current identity. OK = acknowledged or definitively refused.
  absl::Status SendResult(const SpooledResult& result) ABSL_LOCKS_EXCLUDED(mu_);
  void ReapFinishedThreadsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WorkerOptions options_;
  const std::shared_ptr<CoordinatorClient> client_;
  Clock* const clock_;
  const absl::Duration clock_poll_;
  const std::unique_ptr<ResultSpool> spool_;
  const std::vector<v1::GpuInfo> gpus_;
  const std::string incarnation_;
  const std::string host_;
  std::string name_;
  std::vector<std::string> slot_gpu_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on every state change below
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool reporter_stop_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool lease_done_ ABSL_GUARDED_BY(mu_) = false;   // the leasing thread has returned
  bool beat_now_ ABSL_GUARDED_BY(mu_) = false;     // heartbeat at once, whatever the clock says
  bool superseded_ ABSL_GUARDED_BY(mu_) = false;   // another process registered under our name
  absl::Status halt_reason_ ABSL_GUARDED_BY(mu_);  // set when registration was refused for good
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool register_error_logged_ ABSL_GUARDED_BY(mu_) = false;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = kDefaultHeartbeat;
  std::vector<bool> slot_busy_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RunningJob> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_threads_ ABSL_GUARDED_BY(mu_);
  std::deque<SpooledResult> outbox_ ABSL_GUARDED_BY(mu_);

  std::thread lease_thread_;
  std::thread heartbeat_thread_;
  std::thread reporter_thread_;
  absl::Mutex shutdown_mu_;  // serialises Shutdown() callers
};

void WorkerDaemonImpl::ReapFinishedThreadsLocked() {
  std::vector<std::thread> threads = std::move(finished_threads_);
  finished_threads_.clear();
  mu_.Unlock();
  for (std::thread& thread : threads) thread.join();
  mu_.Lock();
}

void WorkerDaemonImpl::LeaseLoop() {
  absl::Duration backoff = absl::ZeroDuration();
  absl::MutexLock lock(&mu_);
  struct MarkDone {
    bool* done;
    ~MarkDone() { *done = true; }
  } mark_done{&lease_done_};
  while (!shutting_down_) {
    ReapFinishedThreadsLocked();
    if (!registered_) {
      mu_.Unlock();
      const bool ok = RegisterOnce();
      mu_.Lock();
      if (!ok) {
        backoff = NextBackoff(backoff);
        WaitLocked(clock_->Now() + backoff,
                   [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return shutting_down_; });
      } else {
        backoff = absl::ZeroDuration();
      }
      continue;
    }
    // Lease only with a free slot; a finished job or a re-registration wakes us.
    mu_.Await(absl::Condition(
        +[](WorkerDaemonImpl* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return self->shutting_down_ || !self->registered_ || self->FreeSlotsLocked() > 0 ||
                 !self->finished_threads_.empty();
        },
        this));
    if (shutting_down_ || !registered_ || FreeSlotsLocked() == 0) continue;

    v1::AcquireJobRequest request;
    request.set_worker_id(worker_id_);
    request.set_incarnation_id(incarnation_);
    request.set_free_slots(FreeSlotsLocked());
    request.set_wait_ms(absl::ToInt64Milliseconds(options_.acquire_wait));
    mu_.Unlock();
    absl::StatusOr<v1::AcquireJobResponse> response = client_->AcquireJob(request);
    mu_.Lock();
    if (!response.ok()) {
      const absl::StatusCode code = response.status().code();
      if (shutting_down_) break;
      if (code == absl::StatusCode::kFailedPrecondition || code == absl::StatusCode::kNotFound) {
        // The coordinator does not take this incarnation: it restarted (register again) or
        // another process took our name (stop). A heartbeat tells which.
        spdlog::info("worker {}: AcquireJob refused ({}); checking with a heartbeat", name_,
                     std::string(response.status().message()));
        beat_now_ = true;
        cv_.SignalAll();
      }
      if (code != absl::StatusCode::kDeadlineExceeded) {
        spdlog::debug("worker {}: AcquireJob failed: {}", name_, response.status().ToString());
      }
      backoff = NextBackoff(backoff);
      WaitLocked(clock_->Now() + backoff,
                 [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return shutting_down_; });
      continue;
    }
    backoff = absl::ZeroDuration();
    for (const v1::Assignment& assignment : response->assignments()) {
      if (shutting_down_ || FreeSlotsLocked() == 0) {
        // Hand it back at once rather than letting its lease run out.
        v1::FailJobRequest fail;
        fail.set_job_id(assignment.job_id());
        fail.set_attempt(assignment.attempt());
        fail.set_error(shutting_down_ ? "worker stopping; job given back before it started"
                                      : "worker has no free slot; job given back");
        fail.set_exit_code(-1);
        fail.set_retryable(true);
        fail.set_preempted(true);  // never started here: no attempt of the job was spent
        SpooledResult result{std::move(fail)};
        mu_.Unlock();
        EnqueueResult(std::move(result));
        mu_.Lock();
        continue;
      }
      LaunchLocked(assignment);
    }
  }
}

void WorkerDaemonImpl::LaunchLocked(const v1::Assignment& assignment) {
  int slot = 0;
  while (slot_busy_[slot]) ++slot;
  slot_busy_[slot] = true;
  const std::string key = KeyOf(assignment.job_id(), assignment.attempt());
  spdlog::info("worker {}: starting job {} ({}) attempt {} in slot {}", name_, assignment.job_id(),
               assignment.name(), assignment.attempt(), slot);
  RunningJob& job = running_[key];
  job.assignment = assignment;
  job.slot = slot;
  job.thread = std::thread([this, key, assignment, slot] { RunJob(key, assignment, slot); });
}

void WorkerDaemonImpl::RunJob(std::string key, v1::Assignment assignment, int slot) {
  JobLaunch launch;
  launch.job_id = assignment.job_id();
  launch.attempt = assignment.attempt();
  launch.kind = assignment.kind();
  launch.config_json = assignment.config_json();
  launch.params.insert(assignment.params().begin(), assignment.params().end());
  launch.output_dir = absl::StrCat(options_.work_dir, "/jobs/", SafeFileName(assignment.job_id()),
                                   "/attempt-", assignment.attempt());
  launch.cuda_visible_devices = slot_gpu_[slot];
  launch.runner_path = options_.runner_path;

  JobOutcome outcome;
  absl::StatusOr<std::unique_ptr<JobProcess>> started = JobProcess::Start(launch);
  if (started.ok()) {
    std::shared_ptr<JobProcess> process = std::move(*started);
    {
      absl::MutexLock lock(&mu_);
      RunningJob& job = running_[key];
      job.process = process;
      if (job.cancel_ordered || shutting_down_) process->Cancel(options_.kill_grace);
    }
    outcome = process->Wait();
  } else {
    outcome.error = std::string(started.status().message());
    // A bad configuration fails the same way everywhere; a local failure (fork, disk) may not.
    outcome.retryable = started.status().code() != absl::StatusCode::kInvalidArgument;
    outcome.log_path = launch.output_dir + "/log.txt";
  }

  bool cancel_ordered = false;
  bool shutting_down = false;
  {
    absl::MutexLock lock(&mu_);
    cancel_ordered = running_[key].cancel_ordered;
    if (!outcome.succeeded && !outcome.cancelled && KilledByTerm(outcome)) {
      // Slurm (preemption, time limit, scancel --full) signals every process of the job at
      // once, so the child may die before this process has acted on its own SIGTERM. Give
      // the stop a moment to arrive before calling this a failure of the job.
      mu_.AwaitWithTimeout(absl::Condition(&shutting_down_), kStopSignalWindow);
    }
    shutting_down = shutting_down_;
  }
  // A job that did not finish because this worker is stopping is given back, not failed.
  const bool given_back = shutting_down && !outcome.succeeded;
  if (cancel_ordered) {
    // The coordinator already took the job back; a report would only be refused.
    spdlog::info("worker {}: job {} attempt {} stopped after a cancel order", name_,
                 assignment.job_id(), assignment.attempt());
  } else if (outcome.succeeded) {
    v1::CompleteJobRequest complete;
    complete.set_job_id(assignment.job_id());
    complete.set_attempt(assignment.attempt());
    complete.mutable_metrics()->insert(outcome.metrics.begin(), outcome.metrics.end());
    for (const jobfile::ExampleRow& row : outcome.examples) ToProto(row, complete.add_examples());
    complete.mutable_outputs()->insert(outcome.outputs.begin(), outcome.outputs.end());
    complete.set_log_path(outcome.log_path);
    complete.set_finished_ms(absl::ToUnixMillis(clock_->Now()));
    if (const size_t bytes = complete.ByteSizeLong(); bytes > jobfile::kMaxResultBytes) {
      // Checked before sending: the coordinator would refuse it on every retry, forever.
      EnqueueResult(SpooledResult{
          FinalFailure(complete.job_id(), complete.attempt(), outcome.log_path,
                       absl::StrCat("result of ", bytes, " bytes (", complete.examples_size(),
                                    " example rows) is over the ", jobfile::kMaxResultBytes,
                                    " (48 MiB) a job may report; write fewer or smaller rows"))});
    } else {
      spdlog::info("worker {}: job {} attempt {} succeeded ({} metrics, {} rows)", name_,
                   assignment.job_id(), assignment.attempt(), outcome.metrics.size(),
                   complete.examples_size());
      EnqueueResult(SpooledResult{std::move(complete)});
    }
  } else {
    v1::FailJobRequest fail;
    fail.set_job_id(assignment.job_id());
    fail.set_attempt(assignment.attempt());
    fail.set_error(given_back
                       ? absl::StrCat("worker stopping; job given back (", outcome.error, ")")
                       : outcome.error);
    fail.set_preempted(given_back);
    fail.set_exit_code(outcome.exit_code);
    fail.set_signal(outcome.signal);
    fail.set_stderr_tail(outcome.stderr_tail);
    fail.set_retryable(outcome.retryable);
    fail.set_log_path(outcome.log_path);
    spdlog::warn("worker {}: job {} attempt {} failed: {}", name_, assignment.job_id(),
                 assignment.attempt(), fail.error());
    EnqueueResult(SpooledResult{std::move(fail)});
  }

  absl::MutexLock lock(&mu_);
  auto it = running_.find(key);
  slot_busy_[it->second.slot] = false;
  finished_threads_.push_back(std::move(it->second.thread));
  running_.erase(it);
  cv_.SignalAll();
}

void WorkerDaemonImpl::EnqueueResult(SpooledResult result) {
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

absl::Status WorkerDaemonImpl::SendResult(const SpooledResult& result) {
  std::string worker_id;
  {
    absl::MutexLock lock(&mu_);
    worker_id = worker_id_;
  }
  absl::Status status;
  if (const auto* complete = std::get_if<v1::CompleteJobRequest>(&result.request)) {
    v1::CompleteJobRequest request = *complete;
    request.set_worker_id(worker_id);
    request.set_incarnation_id(incarnation_);
    status = client_->CompleteJob(request);
    if (IsFinalRefusal(status)) {
      // Too big or malformed: no retry can succeed. Fail the job for good instead, so that
      // neither the lease nor this outbox keeps it alive.
      spdlog::error("worker {}: coordinator refused result {}: {}", name_, result.key(),
                    status.ToString());
      v1::FailJobRequest fail =
          FinalFailure(request.job_id(), request.attempt(), request.log_path(),
                       absl::StrCat("coordinator refused the result: ", status.message()));
      fail.set_worker_id(worker_id);
      fail.set_incarnation_id(incarnation_);
      status = client_->FailJob(fail);
    }
  } else {
    v1::FailJobRequest request = std::get<v1::FailJobRequest>(result.request);
    request.set_worker_id(worker_id);
    request.set_incarnation_id(incarnation_);
    status = client_->FailJob(request);
  }
  if (IsFinalRefusal(status)) {
    spdlog::error("worker {}: coordinator refused the failure report {} for good: {}", name_,
                  result.key(), status.ToString());
    return absl::OkStatus();  // drop it: resending cannot help, the lease expires instead
  }
  if (status.code() != absl::StatusCode::kFailedPrecondition) return status;

  // Refused as stale. That is final only if our registration is current: right after a
  // coordinator restart, an unknown incarnation is refused the same way, and the result must
  // then wait for the re-registration instead of being dropped.
  v1::HeartbeatRequest heartbeat;
  {
    absl::MutexLock lock(&mu_);
    heartbeat = HeartbeatRequestLocked();
  }
  absl::StatusOr<v1::HeartbeatResponse> response = client_->Heartbeat(heartbeat);
  if (!response.ok()) {
    if (response.status().code() == absl::StatusCode::kAborted) {
      absl::MutexLock lock(&mu_);
      HaltLocked(response.status());
    }
    return response.status();
  }
  if (response->reregister()) {
    absl::MutexLock lock(&mu_);
    registered_ = false;
    cv_.SignalAll();
    return absl::UnavailableError("coordinator asks to register again");
  }
  spdlog::warn("worker {}: coordinator refused result {} as stale: {}", name_, result.key(),
               std::string(status.message()));
  return absl::OkStatus();
}

void WorkerDaemonImpl::ReporterLoop() {
  absl::Duration backoff = absl::ZeroDuration();
  absl::Time next_try = absl::InfinitePast();
  absl::MutexLock lock(&mu_);
  while (true) {
    // Wait for something to send, a registration to send it under, and the backoff to pass.
    while (!reporter_stop_) {
      if (!outbox_.empty() && registered_ && clock_->Now() >= next_try) break;
      const absl::Time until =
          (!outbox_.empty() && registered_) ? next_try : absl::InfiniteFuture();
      WaitLocked(until, [this, until]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return reporter_stop_ ||
               (!outbox_.empty() && registered_ && until == absl::InfiniteFuture());
      });
    }
    if (reporter_stop_) return;
    SpooledResult result = outbox_.front();
    mu_.Unlock();
    absl::Status status = SendResult(result);
    if (status.ok()) {
      absl::Status removed = spool_->Remove(result.key());
      if (!removed.ok()) spdlog::error("worker {}: {}", name_, removed.ToString());
    }
    mu_.Lock();
    // The front may have moved only by our own hand: this thread alone pops.
    outbox_.pop_front();
    if (status.ok()) {
      backoff = absl::ZeroDuration();
      next_try = absl::InfinitePast();
    } else {
      // Retry later, behind the others, so that one stuck result cannot block the rest.
      if (rpc::IsCoordinatorRefusal(status)) {
        // The coordinator answered but cannot record it (e.g. its disk is full): say so, it
        // is not a network problem and needs an operator.
        spdlog::warn("worker {}: coordinator refuses result {} for now: {}", name_, result.key(),
                     std::string(status.message()));
      } else {
        spdlog::debug("worker {}: cannot report {} yet: {}", name_, result.key(),
                      status.ToString());
      }
      outbox_.push_back(std::move(result));
      backoff = NextBackoff(backoff);
      next_try = clock_->Now() + backoff;
    }
    cv_.SignalAll();
  }
}

void WorkerDaemonImpl::HeartbeatLoop() {
  absl::MutexLock lock(&mu_);
  absl::Time next_beat = clock_->Now();
  while (!shutting_down_) {
    mu_.Await(absl::Condition(
        +[](WorkerDaemonImpl* self)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->shutting_down_ || self->registered_; },
        this));
    if (shutting_down_) break;
    WaitLocked(next_beat, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return shutting_down_ || !registered_ || beat_now_;
    });
    if (shutting_down_) break;
    if (!registered_) continue;
    if (clock_->Now() < next_beat && !beat_now_) continue;
    beat_now_ = false;

    v1::HeartbeatRequest request = HeartbeatRequestLocked();
    next_beat = clock_->Now() + heartbeat_interval_;
    mu_.Unlock();
    absl::StatusOr<v1::HeartbeatResponse> response = client_->Heartbeat(request);
    mu_.Lock();
    if (!response.ok()) {
      const absl::StatusCode code = response.status().code();
      if (code == absl::StatusCode::kAborted) {
        HaltLocked(response.status());
        break;
      }
      if (code == absl::StatusCode::kFailedPrecondition || code == absl::StatusCode::kNotFound) {
        registered_ = false;
        cv_.SignalAll();
      }
      spdlog::debug("worker {}: heartbeat failed: {}", name_, response.status().ToString());
      continue;
    }
    if (response->reregister()) {
      spdlog::info("worker {}: coordinator does not know us (restarted?); registering again",
                   name_);
      registered_ = false;
      cv_.SignalAll();
      // Beat right after the new registration: the coordinator needs fresh progress.
      next_beat = clock_->Now();
      continue;
    }
    ObeyCancelsLocked(response->cancel());
  }
}

void WorkerDaemonImpl::Shutdown() {
  absl::MutexLock shutdown_lock(&shutdown_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    shutting_down_ = true;
    for (auto& [key, job] : running_) {
      if (job.process != nullptr) job.process->Cancel(options_.kill_grace);
    }
    cv_.SignalAll();
  }
  // A long-poll that starts just after a cancel would miss it; repeat until the leasing
  // thread is out.
  while (true) {
    client_->CancelPendingAcquires();
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&lease_done_), absl::Milliseconds(50))) break;
  }
  if (lease_thread_.joinable()) lease_thread_.join();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  {
    // Children end within kill_grace; their results go to the spool.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](WorkerDaemonImpl* self)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->running_.empty(); },
        this));
    ReapFinishedThreadsLocked();
    reporter_stop_ = true;
    cv_.SignalAll();
  }
  if (reporter_thread_.joinable()) reporter_thread_.join();

  // One last pass over the spool; what fails stays on disk for the next start.
  std::deque<SpooledResult> pending;
  bool registered = false;
  {
    absl::MutexLock lock(&mu_);
    pending = std::move(outbox_);
    outbox_.clear();
    registered = registered_;
  }
  std::deque<SpooledResult> unsent;
  for (SpooledResult& result : pending) {
    absl::Status status =
        registered ? SendResult(result) : absl::UnavailableError("never registered");
    if (status.ok()) {
      absl::Status removed = spool_->Remove(result.key());
      if (!removed.ok()) spdlog::error("worker {}: {}", name_, removed.ToString());
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
  stopped_ = true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerDaemon>> WorkerDaemon::Start(const WorkerOptions& options) {
  return Start(options, WorkerDependencies{});
}

absl::StatusOr<std::unique_ptr<WorkerDaemon>> WorkerDaemon::Start(const WorkerOptions& options_in,
                                                                  WorkerDependencies deps) {
  WorkerOptions options = options_in;
  if (options.slots < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker --slots must be at least 1, got ", options.slots));
  }
  for (int gpu : options.gpus) {
    if (gpu < 0) return absl::InvalidArgumentError(absl::StrCat("worker --gpus: bad index ", gpu));
  }
  if (options.work_dir.empty()) return absl::InvalidArgumentError("worker --work-dir is empty");
  if (options.acquire_wait <= absl::ZeroDuration() || options.kill_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("worker acquire_wait must be > 0 and kill_grace >= 0");
  }
  if (options.runner_path.empty()) options.runner_path = DefaultRunnerPath();
  if (deps.clock == nullptr) deps.clock = Clock::Real();
  if (deps.clock_poll <= absl::ZeroDuration()) deps.clock_poll = absl::InfiniteDuration();

  if (deps.client == nullptr) {
    GrpcClientOptions client_options;
    client_options.target = options.coordinator;
    if (!options.token_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(client_options.token, rpc::ReadSecretFile(options.token_file));
    }
    if (!options.tls_ca_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(client_options.tls_ca_pem, rpc::ReadSecretFile(options.tls_ca_file));
    }
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    if (!options.tls_cert_file.empty()) {
      if (client_options.tls_ca_pem.empty()) {
        return absl::InvalidArgumentError("--tls-cert needs --tls-ca (the coordinator's CA)");
      }
      PCSWEEP_ASSIGN_OR_RETURN(client_options.tls_cert_pem,
                               rpc::ReadSecretFile(options.tls_cert_file));
      PCSWEEP_ASSIGN_OR_RETURN(client_options.tls_key_pem,
                               rpc::ReadSecretFile(options.tls_key_file));
      // The certificate's CN is the worker's identity: by default, its name too.
      if (options.name.empty()) {
        absl::StatusOr<std::string> cn = rpc::CertificateCommonName(client_options.tls_cert_pem);
        if (!cn.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(options.tls_cert_file, ": ", cn.status().message()));
        }
        options.name = *cn;
      }
    }
    PCSWEEP_ASSIGN_OR_RETURN(deps.client, GrpcCoordinatorClient::Create(client_options));
  }

  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<ResultSpool> spool,
                           ResultSpool::Open(options.work_dir + "/spool"));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<SpooledResult> spooled, spool->LoadAll());

  std::vector<v1::GpuInfo> detected =
      deps.detect_gpus ? deps.detect_gpus() : DetectGpusWithNvidiaSmi();
  std::vector<v1::GpuInfo> gpus;
  for (const v1::GpuInfo& gpu : detected) {
    if (options.gpus.empty() ||
        std::find(options.gpus.begin(), options.gpus.end(), gpu.index()) != options.gpus.end()) {
      gpus.push_back(gpu);
    }
  }

  auto daemon = std::make_unique<WorkerDaemonImpl>(
      std::move(options), std::move(deps), std::move(spool), std::move(spooled), std::move(gpus));
  daemon->StartThreads();
  return std::unique_ptr<WorkerDaemon>(std::move(daemon));
}

}  // namespace pcsweep::worker
