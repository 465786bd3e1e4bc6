#include "worker/slot_runner.h"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/jobfile/result_files.h"
#include "proto/example_row_convert.h"
#include "spdlog/spdlog.h"

namespace pcsweep::worker {
namespace {

// How long a child killed by SIGTERM waits for this process's own stop (see ReportOutcome).
// Real time, not the injected clock: it bounds a race between two signals.
constexpr absl::Duration kStopSignalWindow = absl::Seconds(2);

// The child died of SIGTERM, or exited as a shell does after one (128 + 15).
bool KilledByTerm(const JobOutcome& outcome) {
  return outcome.signal == SIGTERM || outcome.exit_code == 128 + SIGTERM;
}

std::string SafeFileName(std::string name) {
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return name;
}

// The report of a job that succeeded: its results, or a final failure when they are more
// than the coordinator takes.
SpooledResult CompletionOf(const std::string& name, const v1::Assignment& assignment,
                           const JobOutcome& outcome, absl::Time finished) {
  v1::CompleteJobRequest complete;
  complete.set_job_id(assignment.job_id());
  complete.set_attempt(assignment.attempt());
  complete.mutable_metrics()->insert(outcome.metrics.begin(), outcome.metrics.end());
  for (const jobfile::ExampleRow& row : outcome.examples) {
    proto::ToProto(row, complete.add_examples());
  }
  complete.mutable_outputs()->insert(outcome.outputs.begin(), outcome.outputs.end());
  complete.set_log_path(outcome.log_path);
  complete.set_finished_ms(absl::ToUnixMillis(finished));
  if (const size_t bytes = complete.ByteSizeLong(); bytes > jobfile::kMaxResultBytes) {
    // Checked before sending: the coordinator would refuse it on every retry, forever.
    return SpooledResult{
        FinalFailure(complete.job_id(), complete.attempt(), outcome.log_path,
                     absl::StrCat("result of ", bytes, " bytes (", complete.examples_size(),
                                  " example rows) is over the ", jobfile::kMaxResultBytes,
                                  " (48 MiB) a job may report; write fewer or smaller rows"))};
  }
  spdlog::info("worker {}: job {} attempt {} succeeded ({} metrics, {} rows)", name,
               assignment.job_id(), assignment.attempt(), outcome.metrics.size(),
               complete.examples_size());
  return SpooledResult{std::move(complete)};
}

// The report of a job that did not succeed; `given_back` when the worker is stopping.
SpooledResult FailureOf(const std::string& name, const v1::Assignment& assignment,
                        const JobOutcome& outcome, bool given_back) {
  v1::FailJobRequest fail;
  fail.set_job_id(assignment.job_id());
  fail.set_attempt(assignment.attempt());
  fail.set_error(given_back ? absl::StrCat("worker stopping; job given back (", outcome.error, ")")
                            : outcome.error);
  fail.set_preempted(given_back);
  fail.set_exit_code(outcome.exit_code);
  fail.set_signal(outcome.signal);
  fail.set_stderr_tail(outcome.stderr_tail);
  fail.set_retryable(outcome.retryable);
  fail.set_log_path(outcome.log_path);
  spdlog::warn("worker {}: job {} attempt {} failed: {}", name, assignment.job_id(),
               assignment.attempt(), fail.error());
  return SpooledResult{std::move(fail)};
}

}  // namespace

SlotRunner::SlotRunner(SlotRunnerOptions options, Clock* clock, ResultReporter* reporter,
                       std::function<void()> on_job_ended)
    : options_(std::move(options)),
      clock_(clock),
      reporter_(reporter),
      on_job_ended_(std::move(on_job_ended)) {
  for (int slot = 0; slot < options_.slots; ++slot) {
    slot_gpu_.push_back(options_.gpus.empty()
                            ? std::string()
                            : absl::StrCat(options_.gpus[slot % options_.gpus.size()]));
  }
  absl::MutexLock lock(&mu_);
  slot_busy_.assign(options_.slots, false);
}

SlotRunner::~SlotRunner() {
  AwaitAllEnded();
  ReapEndedJobs();
}

std::string SlotRunner::KeyOf(const std::string& job_id, int attempt) {
  return absl::StrCat(job_id, "#", attempt);
}

LaunchResult SlotRunner::Launch(const v1::Assignment& assignment) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return LaunchResult::kStopping;
  if (FreeSlotsLocked() == 0) return LaunchResult::kNoFreeSlot;
  int slot = 0;
  while (slot_busy_[slot]) ++slot;
  slot_busy_[slot] = true;
  const std::string key = KeyOf(assignment.job_id(), assignment.attempt());
  spdlog::info("worker {}: starting job {} ({}) attempt {} in slot {}", options_.name,
               assignment.job_id(), assignment.name(), assignment.attempt(), slot);
  RunningJob& job = running_[key];
  job.assignment = assignment;
  job.slot = slot;
  job.thread = std::thread([this, key, assignment, slot] { RunJob(key, assignment, slot); });
  return LaunchResult::kStarted;
}

void SlotRunner::ObeyCancels(const google::protobuf::RepeatedPtrField<v1::JobRef>& cancels) {
  absl::MutexLock lock(&mu_);
  for (const v1::JobRef& ref : cancels) {
    auto it = running_.find(KeyOf(ref.job_id(), ref.attempt()));
    if (it == running_.end()) continue;
    spdlog::info("worker: coordinator cancelled job {} attempt {}", ref.job_id(), ref.attempt());
    it->second.cancel_ordered = true;
    if (it->second.process != nullptr) it->second.process->Cancel(options_.kill_grace);
  }
}

void SlotRunner::StopAll() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (auto& [key, job] : running_) {
    if (job.process != nullptr) job.process->Cancel(options_.kill_grace);
  }
}

void SlotRunner::AwaitAllEnded() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &SlotRunner::NothingRunsLocked));
}

void SlotRunner::ReapEndedJobs() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads = std::move(ended_threads_);
    ended_threads_.clear();
  }
  for (std::thread& thread : threads) thread.join();
}

int SlotRunner::free_slots() const {
  absl::MutexLock lock(&mu_);
  return FreeSlotsLocked();
}

bool SlotRunner::has_unreaped_jobs() const {
  absl::MutexLock lock(&mu_);
  return !ended_threads_.empty();
}

int SlotRunner::running_jobs() const {
  absl::MutexLock lock(&mu_);
  return running_.size();
}

std::vector<v1::JobProgress> SlotRunner::Progress() const {
  absl::MutexLock lock(&mu_);
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
  return jobs;
}

int SlotRunner::FreeSlotsLocked() const {
  return std::count(slot_busy_.begin(), slot_busy_.end(), false);
}

bool SlotRunner::NothingRunsLocked() const { return running_.empty(); }

void SlotRunner::RunJob(const std::string& key, const v1::Assignment& assignment, int slot) {
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

  ReportOutcome(key, assignment, RunChild(key, launch));

  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(key);
    slot_busy_[it->second.slot] = false;
    ended_threads_.push_back(std::move(it->second.thread));
    running_.erase(it);
  }
  on_job_ended_();
}

JobOutcome SlotRunner::RunChild(const std::string& key, const JobLaunch& launch) {
  absl::StatusOr<std::unique_ptr<JobProcess>> started = JobProcess::Start(launch);
  if (!started.ok()) {
    JobOutcome outcome;
    outcome.error = std::string(started.status().message());
    // A bad configuration fails the same way everywhere; a local failure (fork, disk) may not.
    outcome.retryable = started.status().code() != absl::StatusCode::kInvalidArgument;
    outcome.log_path = launch.output_dir + "/log.txt";
    return outcome;
  }
  std::shared_ptr<JobProcess> process = std::move(*started);
  {
    absl::MutexLock lock(&mu_);
    RunningJob& job = running_[key];
    job.process = process;
    if (job.cancel_ordered || stopping_) process->Cancel(options_.kill_grace);
  }
  return process->Wait();
}

void SlotRunner::ReportOutcome(const std::string& key, const v1::Assignment& assignment,
                               const JobOutcome& outcome) {
  bool cancel_ordered = false;
  bool stopping = false;
  {
    absl::MutexLock lock(&mu_);
    cancel_ordered = running_[key].cancel_ordered;
    if (!outcome.succeeded && !outcome.cancelled && KilledByTerm(outcome)) {
      // Slurm (preemption, time limit, scancel --full) signals every process of the job at
      // once, so the child may die before this process has acted on its own SIGTERM. Give
      // the stop a moment to arrive before calling this a failure of the job.
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), kStopSignalWindow);
    }
    stopping = stopping_;
  }
  if (cancel_ordered) {
    // The coordinator already took the job back; a report would only be refused.
    spdlog::info("worker {}: job {} attempt {} stopped after a cancel order", options_.name,
                 assignment.job_id(), assignment.attempt());
  } else if (outcome.succeeded) {
    reporter_->Enqueue(CompletionOf(options_.name, assignment, outcome, clock_->Now()));
  } else {
    // A job that did not finish because this worker is stopping is given back, not failed.
    reporter_->Enqueue(FailureOf(options_.name, assignment, outcome, /*given_back=*/stopping));
  }
}

}  // namespace pcsweep::worker
