#include "worker/worker_daemon.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/jobfile/job_kinds.h"
#include "common/rpc/rpc.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"
#include "worker/clock_wait.h"
#include "worker/registration.h"
#include "worker/result_reporter.h"
#include "worker/result_spool.h"
#include "worker/slot_runner.h"

namespace pcsweep::worker {
namespace {

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

// The composition: Registration (registration, heartbeats), SlotRunner (slots, children) and
// ResultReporter (spool, reports), driven by the leasing thread below. Lock order: mu_ before
// the components' locks (the leasing thread's waits query them with mu_ held); the components
// call back into this object (Wake()) only without their own locks held.
class WorkerDaemonImpl final : public WorkerDaemon {
 public:
  WorkerDaemonImpl(WorkerOptions options, WorkerDependencies deps,
                   std::unique_ptr<ResultSpool> spool, std::vector<SpooledResult> spooled,
                   std::vector<v1::GpuInfo> gpus)
      : options_(std::move(options)),
        client_(std::move(deps.client)),
        clock_(deps.clock),
        clock_poll_(deps.clock_poll),
        gpus_(std::move(gpus)),
        incarnation_(RandomIncarnation()),
        host_(HostName()),
        name_(options_.name.empty() ? absl::StrCat(host_, ":", getpid()) : options_.name),
        registration_(name_, incarnation_, client_, clock_, clock_poll_, Callbacks()),
        reporter_(name_, incarnation_, client_, clock_, clock_poll_, std::move(spool),
                  std::move(spooled), &registration_),
        slots_(SlotRunnerOptions{name_, options_.slots, options_.gpus, options_.work_dir,
                                 options_.runner_path, options_.kill_grace},
               clock_, &reporter_, [this] { Wake(); }) {}

  ~WorkerDaemonImpl() override { Shutdown(); }

  void StartThreads() {
    lease_thread_ = std::thread([this] { LeaseLoop(); });
    registration_.StartHeartbeats();
    reporter_.StartSending();
  }

  void Shutdown() override;
  void Wait() override {
    absl::MutexLock lock(&mu_);
    while (phase_ != Phase::kStopped && !registration_.halted()) cv_.Wait(&mu_);
  }
  bool superseded() const override { return registration_.halted(); }
  absl::Status halt_reason() const override { return registration_.halt_reason(); }
  std::string worker_id() const override { return registration_.worker_id(); }
  std::string incarnation_id() const override { return incarnation_; }
  int running_jobs() const override { return slots_.running_jobs(); }
  int unacknowledged_results() const override { return reporter_.unacknowledged(); }

 private:
  // kRunning -> kStopping (Shutdown() began) -> kStopped (Shutdown() done). A halted
  // registration stops leasing as kStopping does; Shutdown() then finishes the work.
  enum class Phase { kRunning, kStopping, kStopped };

  RegistrationCallbacks Callbacks() {
    RegistrationCallbacks callbacks;
    callbacks.held_jobs = [this] {
      std::vector<v1::JobProgress> jobs = slots_.Progress();
      for (v1::JobProgress& job : reporter_.Pending()) jobs.push_back(std::move(job));
      return jobs;
    };
    callbacks.obey_cancels = [this](const google::protobuf::RepeatedPtrField<v1::JobRef>& refs) {
      slots_.ObeyCancels(refs);
    };
    // Another process registered under our name, or the coordinator refused us: stop working
    // (as in Shutdown, but from a daemon thread; the owner's Shutdown() then finishes).
    callbacks.on_halt = [this] { slots_.StopAll(); };
    callbacks.on_changed = [this] {
      Wake();
      reporter_.RegistrationChanged();
    };
    return callbacks;
  }

  void Wake() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    cv_.SignalAll();
  }
  bool StopRequestedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return phase_ != Phase::kRunning || registration_.halted();
  }
  bool StopRequested() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return StopRequestedLocked();
  }

  std::vector<std::string> Kinds() const {
    if (!options_.kinds.empty()) return options_.kinds;
    // With the runner, any kind: pcsweep-run itself refuses kinds it does not know, with a
    // clear error, which beats a job that no worker ever leases. Without it, only commands.
    if (access(options_.runner_path.c_str(), X_OK) == 0) return {};
    return {std::string(jobfile::kCommandKind)};
  }
  // Everything but the held jobs, which Registration adds.
  v1::RegisterWorkerRequest RegistrationRequest() const {
    v1::RegisterWorkerRequest request;
    request.set_host(host_);
    request.set_slots(options_.slots);
    for (const v1::GpuInfo& gpu : gpus_) *request.add_gpus() = gpu;
    request.set_incarnation_id(incarnation_);
    request.set_worker_name(name_);
    for (const std::string& kind : Kinds()) request.add_kinds(kind);
    request.mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
    return request;
  }

  void LeaseLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits `backoff` on the injected clock, or until a stop is requested.
  void PauseFor(absl::Duration backoff) ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until a slot is free and returns how many are; 0 when leasing cannot go on now
  // (stop requested, not registered) or an ended job waits to be reaped.
  int AwaitFreeSlots() ABSL_LOCKS_EXCLUDED(mu_);
  void NoteAcquireFailure(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts a leased job, or hands it back at once when it cannot run here.
  void StartOrGiveBack(const v1::Assignment& assignment) ABSL_LOCKS_EXCLUDED(mu_);

  const WorkerOptions options_;
  const std::shared_ptr<CoordinatorClient> client_;
  Clock* const clock_;
  const absl::Duration clock_poll_;
  const std::vector<v1::GpuInfo> gpus_;
  const std::string incarnation_;
  const std::string host_;
  const std::string name_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on every change below and by Wake()
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kRunning;
  bool lease_done_ ABSL_GUARDED_BY(mu_) = false;  // the leasing thread has returned

  // Destroyed in reverse: no job thread outlives the reporter, no reporter the registration.
  Registration registration_;
  ResultReporter reporter_;
  SlotRunner slots_;

  std::thread lease_thread_;
  absl::Mutex shutdown_mu_;  // serialises Shutdown() callers
};

void WorkerDaemonImpl::LeaseLoop() {
  absl::Duration backoff = absl::ZeroDuration();
  while (!StopRequested()) {
    slots_.ReapEndedJobs();
    if (!registration_.registered()) {
      if (registration_.Register(RegistrationRequest())) {
        backoff = absl::ZeroDuration();
      } else {
        backoff = NextBackoff(backoff);
        PauseFor(backoff);
      }
      continue;
    }
    // Lease only with a free slot; a finished job or a re-registration wakes us.
    const int free_slots = AwaitFreeSlots();
    if (free_slots == 0) continue;

    v1::AcquireJobRequest request;
    request.set_worker_id(registration_.worker_id());
    request.set_incarnation_id(incarnation_);
    request.set_free_slots(free_slots);
    request.set_wait_ms(absl::ToInt64Milliseconds(options_.acquire_wait));
    absl::StatusOr<v1::AcquireJobResponse> response = client_->AcquireJob(request);
    if (!response.ok()) {
      if (StopRequested()) break;
      NoteAcquireFailure(response.status());
      backoff = NextBackoff(backoff);
      PauseFor(backoff);
      continue;
    }
    backoff = absl::ZeroDuration();
    for (const v1::Assignment& assignment : response->assignments()) StartOrGiveBack(assignment);
  }
  absl::MutexLock lock(&mu_);
  lease_done_ = true;
}

void WorkerDaemonImpl::PauseFor(absl::Duration backoff) {
  absl::MutexLock lock(&mu_);
  WaitForClock(&mu_, &cv_, clock_, clock_poll_, clock_->Now() + backoff,
               [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return StopRequestedLocked(); });
}

int WorkerDaemonImpl::AwaitFreeSlots() {
  absl::MutexLock lock(&mu_);
  while (!StopRequestedLocked() && registration_.registered() && slots_.free_slots() == 0 &&
         !slots_.has_unreaped_jobs()) {
    cv_.Wait(&mu_);
  }
  if (StopRequestedLocked() || !registration_.registered()) return 0;
  return slots_.free_slots();
}

void WorkerDaemonImpl::NoteAcquireFailure(const absl::Status& status) {
  const absl::StatusCode code = status.code();
  if (code == absl::StatusCode::kFailedPrecondition || code == absl::StatusCode::kNotFound) {
    // The coordinator does not take this incarnation: it restarted (register again) or
    // another process took our name (stop). A heartbeat tells which.
    spdlog::info("worker {}: AcquireJob refused ({}); checking with a heartbeat", name_,
                 std::string(status.message()));
    registration_.RequestHeartbeat();
  }
  if (code != absl::StatusCode::kDeadlineExceeded) {
    spdlog::debug("worker {}: AcquireJob failed: {}", name_, status.ToString());
  }
}

void WorkerDaemonImpl::StartOrGiveBack(const v1::Assignment& assignment) {
  const LaunchResult launched =
      StopRequested() ? LaunchResult::kStopping : slots_.Launch(assignment);
  if (launched == LaunchResult::kStarted) return;
  // Hand it back at once rather than letting its lease run out.
  v1::FailJobRequest fail;
  fail.set_job_id(assignment.job_id());
  fail.set_attempt(assignment.attempt());
  fail.set_error(launched == LaunchResult::kStopping
                     ? "worker stopping; job given back before it started"
                     : "worker has no free slot; job given back");
  fail.set_exit_code(-1);
  fail.set_retryable(true);
  fail.set_preempted(true);  // never started here: no attempt of the job was spent
  reporter_.Enqueue(SpooledResult{std::move(fail)});
}

void WorkerDaemonImpl::Shutdown() {
  absl::MutexLock shutdown_lock(&shutdown_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kStopped) return;
    phase_ = Phase::kStopping;
    cv_.SignalAll();
  }
  slots_.StopAll();
  registration_.StopHeartbeats();
  // A long-poll that starts just after a cancel would miss it; repeat until the leasing
  // thread is out.
  while (true) {
    client_->CancelPendingAcquires();
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&lease_done_), absl::Milliseconds(50))) break;
  }
  if (lease_thread_.joinable()) lease_thread_.join();
  // Children end within kill_grace; their results go to the spool.
  slots_.AwaitAllEnded();
  slots_.ReapEndedJobs();
  reporter_.StopSending();
  // One last pass over the spool; what fails stays on disk for the next start.
  reporter_.SendRemaining();
  absl::MutexLock lock(&mu_);
  phase_ = Phase::kStopped;
  cv_.SignalAll();
}

// The default client: gRPC to options->coordinator with the token, CA and client
// certificate files read; the certificate's CN becomes options->name when that is empty.
// Possible errors: NotFound (a file missing), InvalidArgument (cert without key or CA, a
// certificate without a CN, an empty target).
absl::Status CreateGrpcClient(WorkerOptions* options, WorkerDependencies* deps) {
  GrpcClientOptions client_options;
  client_options.target = options->coordinator;
  if (!options->token_file.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(client_options.token, rpc::ReadSecretFile(options->token_file));
  }
  if (!options->tls_ca_file.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(client_options.tls_ca_pem, rpc::ReadSecretFile(options->tls_ca_file));
  }
  if (options->tls_cert_file.empty() != options->tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!options->tls_cert_file.empty()) {
    if (client_options.tls_ca_pem.empty()) {
      return absl::InvalidArgumentError("--tls-cert needs --tls-ca (the coordinator's CA)");
    }
    PCSWEEP_ASSIGN_OR_RETURN(client_options.tls_cert_pem,
                             rpc::ReadSecretFile(options->tls_cert_file));
    PCSWEEP_ASSIGN_OR_RETURN(client_options.tls_key_pem,
                             rpc::ReadSecretFile(options->tls_key_file));
    // The certificate's CN is the worker's identity: by default, its name too.
    if (options->name.empty()) {
      absl::StatusOr<std::string> cn = rpc::CertificateCommonName(client_options.tls_cert_pem);
      if (!cn.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(options->tls_cert_file, ": ", cn.status().message()));
      }
      options->name = *cn;
    }
  }
  PCSWEEP_ASSIGN_OR_RETURN(deps->client, GrpcCoordinatorClient::Create(client_options));
  return absl::OkStatus();
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

  if (deps.client == nullptr) PCSWEEP_RETURN_IF_ERROR(CreateGrpcClient(&options, &deps));

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
