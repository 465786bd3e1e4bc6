#include "coordinator/scheduler.h"

#include <algorithm>
#include <future>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/jobfile/job_kinds.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace pcsweep::coordinator {
namespace {

// Give-backs of one job that do not count against max_attempts (see FailAttemptLocked).
constexpr int kMaxPreemptions = 20;

constexpr char kDependencyFailed[] = "dependency failed: ";

// `done` reporting the call's latency to `hooks` first (unchanged when hooks is null).
Scheduler::AcquireCallback TimedAcquire(SchedulerHooks* hooks, const Clock* clock,
                                        Scheduler::AcquireCallback done) {
  if (hooks == nullptr) return done;
  return [hooks, clock, start = clock->Now(),
          done = std::move(done)](absl::StatusOr<std::vector<Assignment>> result) {
    hooks->OnAcquireAnswered(clock->Now() - start,
                             result.ok() ? static_cast<int>(result->size()) : 0, result.status());
    done(std::move(result));
  };
}
Scheduler::DoneCallback TimedComplete(SchedulerHooks* hooks, const Clock* clock,
                                      Scheduler::DoneCallback done) {
  if (hooks == nullptr) return done;
  return [hooks, clock, start = clock->Now(), done = std::move(done)](absl::Status status) {
    hooks->OnCompleteAnswered(clock->Now() - start, status);
    done(std::move(status));
  };
}

std::string FormatNumber(double value) {
  nlohmann::json j = value;
  return j.dump();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(Store* store,
                                                             SchedulerOptions options) {
  if (options.clock == nullptr) options.clock = Clock::Real();
  PCSWEEP_ASSIGN_OR_RETURN(StoreSnapshot snapshot, store->Load());
  std::unique_ptr<Scheduler> scheduler(new Scheduler(store, options));
  absl::MutexLock lock(&scheduler->mu_);
  PCSWEEP_RETURN_IF_ERROR(scheduler->LoadLocked(snapshot));
  return scheduler;
}

Scheduler::Scheduler(Store* store, SchedulerOptions options)
    : store_(store), options_(std::move(options)) {}

Scheduler::~Scheduler() { Shutdown(); }

int64_t Scheduler::NowMs() const { return absl::ToUnixMillis(options_.clock->Now()); }

absl::Status Scheduler::LoadLocked(const StoreSnapshot& snapshot) {
  const absl::Time now = options_.clock->Now();
  for (const SweepRecord& rec : snapshot.sweeps) {
    Sweep& sweep = sweeps_[rec.sweep_id];
    sweep.rec = rec;
    sweep_order_.push_back(rec.sweep_id);
    if (!rec.idempotency_key.empty()) sweep_by_key_[rec.idempotency_key] = rec.sweep_id;
    // Sweep ids end in "-<number>"; continue the numbering.
    const size_t dash = rec.sweep_id.rfind('-');
    if (dash != std::string::npos) {
      int64_t number = 0;
      if (absl::SimpleAtoi(rec.sweep_id.substr(dash + 1), &number)) {
        next_sweep_number_ = std::max(next_sweep_number_, number + 1);
      }
    }
  }
  std::stable_sort(sweep_order_.begin(), sweep_order_.end(),
                   [this](const std::string& a, const std::string& b)
                       ABSL_NO_THREAD_SAFETY_ANALYSIS {
                         return sweeps_[a].rec.created_ms < sweeps_[b].rec.created_ms;
                       });
  for (const JobRecord& rec : snapshot.jobs) {
    auto sweep = sweeps_.find(rec.sweep_id);
    if (sweep == sweeps_.end()) {
      return absl::DataLossError(
          absl::StrCat("job ", rec.job_id, " refers to unknown sweep ", rec.sweep_id));
    }
    Job& job = jobs_[rec.job_id];
    job.rec = rec;
    sweep->second.job_ids.push_back(rec.job_id);
    sweep->second.counts[static_cast<int>(rec.state)]++;
    if (rec.state == JobState::kSucceeded) {
      if (!rec.reused_from.empty()) sweep->second.reused++;
      // The newest success of a hash wins (jobs are loaded in sweep/index order).
      succeeded_by_hash_[rec.config_hash] = rec.job_id;
    }
    job.dependency_cancelled =
        rec.state == JobState::kCancelled && absl::StartsWith(rec.error, kDependencyFailed);
  }
  for (const AttemptRecord& a : snapshot.attempts) {
    auto it = jobs_.find(a.job_id);
    if (it != jobs_.end()) it->second.attempts.push_back(a);
  }
  for (auto& [id, sweep] : sweeps_) {
    std::sort(sweep.job_ids.begin(), sweep.job_ids.end(),
              [this](const std::string& a, const std::string& b) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                return jobs_[a].rec.index < jobs_[b].rec.index;
              });
  }
  for (auto& [id, job] : jobs_) {
    for (const std::string& parent_id : job.rec.depends_on) {
      auto parent = jobs_.find(parent_id);
      if (parent == jobs_.end()) {
        return absl::DataLossError(absl::StrCat("job ", id, " depends on unknown job ", parent_id));
      }
      parent->second.children.push_back(id);
      if (parent->second.rec.state != JobState::kSucceeded) job.unfinished_parents++;
    }
  }
  for (const SweepEvent& e : snapshot.events) {
    auto sweep = sweeps_.find(e.sweep_id);
    if (sweep == sweeps_.end()) continue;
    sweep->second.events.push_back(e);
    sweep->second.last_seq = std::max(sweep->second.last_seq, e.seq);
  }
  // Ready queues in index order; active jobs get one fresh lease so that their workers can
  // re-attach.
  for (const std::string& sweep_id : sweep_order_) {
    for (const std::string& job_id : sweeps_[sweep_id].job_ids) {
      Job& job = jobs_[job_id];
      if (job.rec.state == JobState::kPending && job.unfinished_parents == 0) PushReadyLocked(job);
      if (IsActive(job.rec.state)) {
        job.lease_deadline = now + options_.lease_timeout + options_.restart_lease_grace;
        active_[job_id] = job.lease_deadline;
      }
    }
  }
  for (const WorkerRecord& w : snapshot.workers) {
    // Known for ListWorkers only; a worker must register again to lease.
    Worker& worker = workers_[w.worker_id];
    worker.rec = w;
    worker.rec.state = "lost";
    worker.rec.incarnation_id.clear();
    worker.last_seen = absl::FromUnixMillis(w.last_heartbeat_ms);
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------------
// Helpers

Scheduler::Sweep* Scheduler::FindSweepLocked(const std::string& id_or_name) {
  auto it = sweeps_.find(id_or_name);
  if (it != sweeps_.end()) return it->second.committed ? &it->second : nullptr;
  for (auto id = sweep_order_.rbegin(); id != sweep_order_.rend(); ++id) {
    Sweep& sweep = sweeps_[*id];
    if (sweep.rec.name == id_or_name && sweep.committed) return &sweep;
  }
  return nullptr;
}

const Scheduler::Sweep* Scheduler::FindSweepLocked(const std::string& id_or_name) const {
  return const_cast<Scheduler*>(this)->FindSweepLocked(id_or_name);
}

SweepSummary Scheduler::SummaryLocked(const Sweep& sweep, bool with_spec) const {
  SweepSummary s;
  if (with_spec) {
    s.sweep = sweep.rec;
  } else {
    const SweepRecord& r = sweep.rec;
    s.sweep = SweepRecord{r.sweep_id,    r.name,           "", r.spec_path, r.force, r.created_ms,
                          r.finished_ms, r.idempotency_key};
  }
  s.total = static_cast<int>(sweep.job_ids.size());
  s.pending = sweep.counts[static_cast<int>(JobState::kPending)];
  s.leased = sweep.counts[static_cast<int>(JobState::kLeased)];
  s.running = sweep.counts[static_cast<int>(JobState::kRunning)];
  s.succeeded = sweep.counts[static_cast<int>(JobState::kSucceeded)];
  s.failed = sweep.counts[static_cast<int>(JobState::kFailed)];
  s.cancelled = sweep.counts[static_cast<int>(JobState::kCancelled)];
  s.reused = sweep.reused;
  return s;
}

void Scheduler::AppendEventLocked(Sweep& sweep, const Job* job, const std::string& message,
                                  WriteBatch& batch, Deferred& deferred) {
  SweepEvent event;
  event.sweep_id = sweep.rec.sweep_id;
  event.seq = ++sweep.last_seq;
  event.time_ms = NowMs();
  event.message = message;
  if (job != nullptr) {
    event.job_id = job->rec.job_id;
    event.state = job->rec.state;
    event.attempt = job->rec.attempt;
    event.progress = job->rec.progress;
  } else {
    event.state = JobState::kUnspecified;
  }
  sweep.events.push_back(event);
  batch.push_back(AppendEvent{std::move(event)});
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    if (it->second.sweep_id == sweep.rec.sweep_id) {
      deferred.push_back(std::move(it->second.on_event));
      it = watchers_.erase(it);
    } else {
      ++it;
    }
  }
}

void Scheduler::SetStateLocked(Job& job, JobState state, const std::string& message,
                               WriteBatch& batch, Deferred& deferred) {
  Sweep& sweep = sweeps_[job.rec.sweep_id];
  const JobState old = job.rec.state;
  sweep.counts[static_cast<int>(old)]--;
  sweep.counts[static_cast<int>(state)]++;
  if (old == JobState::kSucceeded && !job.rec.reused_from.empty()) sweep.reused--;
  if (state == JobState::kSucceeded && !job.rec.reused_from.empty()) sweep.reused++;
  job.rec.state = state;
  if (state != JobState::kPending) job.lease_lapsed = false;
  if (IsActive(state)) {
    active_[job.rec.job_id] = job.lease_deadline;
  } else {
    active_.erase(job.rec.job_id);
  }
  if (IsTerminal(state)) {
    job.rec.finished_ms = NowMs();
  } else {
    job.rec.finished_ms = 0;
  }
  if (state == JobState::kPending) {
    job.rec.progress = 0;
    job.rec.progress_message.clear();
    job.rec.eta_ms = 0;
  }
  batch.push_back(UpsertJob{job.rec});
  AppendEventLocked(sweep, &job, message, batch, deferred);
  if (state == JobState::kPending && job.unfinished_parents == 0) PushReadyLocked(job);
  CheckSweepFinishedLocked(sweep, batch, deferred);
}

void Scheduler::CheckSweepFinishedLocked(Sweep& sweep, WriteBatch& batch, Deferred& deferred) {
  const int unfinished = sweep.counts[static_cast<int>(JobState::kPending)] +
                         sweep.counts[static_cast<int>(JobState::kLeased)] +
                         sweep.counts[static_cast<int>(JobState::kRunning)];
  if (unfinished == 0 && sweep.rec.finished_ms == 0) {
    sweep.rec.finished_ms = NowMs();
    batch.push_back(UpsertSweep{sweep.rec});
    AppendEventLocked(sweep, nullptr, "sweep finished", batch, deferred);
    if (options_.on_sweep_finished) {
      deferred.push_back(
          [notify = options_.on_sweep_finished, id = sweep.rec.sweep_id] { notify(id); });
    }
  } else if (unfinished > 0 && sweep.rec.finished_ms != 0) {
    sweep.rec.finished_ms = 0;
    batch.push_back(UpsertSweep{sweep.rec});
  }
}

void Scheduler::PushReadyLocked(Job& job) {
  if (job.in_queue) return;
  auto sweep = sweeps_.find(job.rec.sweep_id);
  if (sweep != sweeps_.end() && !sweep->second.committed) return;  // queued by FinishSubmit
  job.in_queue = true;
  ready_[job.rec.kind].emplace_back(++ready_seq_, job.rec.job_id);
  ready_changed_ = true;
}

void Scheduler::WriteLocked(WriteBatch& batch) {
  if (batch.empty()) return;
  // The health record, not `this`: a store may outlive the scheduler and call back later.
  store_->WriteAsync(std::move(batch),
                     [health = store_health_](absl::Status status) { health->Note(status); });
  batch.clear();
}

namespace {

// The refusal a client shows as the coordinator's own reason (see rpc::IsCoordinatorRefusal).
absl::Status CannotWriteError(const absl::Status& write, absl::string_view consequence) {
  return absl::UnavailableError(
      absl::StrCat("coordinator cannot write its database: ", write.message(), consequence));
}

}  // namespace

void Scheduler::StoreHealth::Note(const absl::Status& status) {
  absl::MutexLock lock(&mu);
  if (status.ok()) {
    if (!failure.ok()) spdlog::warn("coordinator database writes succeed again");
    failure = absl::OkStatus();
    return;
  }
  if (status.code() == absl::StatusCode::kCancelled) return;  // store closing, not failing
  spdlog::error("coordinator database write failed: {}", status.ToString());
  failure = status;
}

void Scheduler::NoteWriteOutcome(const absl::Status& status) { store_health_->Note(status); }

absl::Status Scheduler::StoreFailure() const {
  absl::MutexLock lock(&store_health_->mu);
  if (store_health_->failure.ok()) return absl::OkStatus();
  return CannotWriteError(
      store_health_->failure,
      "; refusing new sweeps and leases until a write succeeds (free disk space?)");
}

void Scheduler::RunDeferred(Deferred& deferred) {
  for (auto& fn : deferred) {
    if (fn) fn();
  }
  deferred.clear();
}

// ------------------------------------------------------------------------------------------
// Users

absl::Status Scheduler::StartSubmitLocked(const SweepSpec& spec, const std::string& spec_yaml,
                                          const std::string& spec_path, bool force,
                                          const std::string& idempotency_key, SubmitResult& result,
                                          WriteBatch& batch, Deferred& deferred) {
  if (spec.jobs.empty()) return absl::InvalidArgumentError("the sweep has no jobs");
  if (!idempotency_key.empty()) {
    auto known = sweep_by_key_.find(idempotency_key);
    if (known != sweep_by_key_.end()) {
      const Sweep& sweep = sweeps_.at(known->second);
      if (!sweep.committed) {
        return absl::UnavailableError(
            absl::StrCat("coordinator is still recording sweep ", sweep.rec.sweep_id,
                         " for this submit (same idempotency key); retry"));
      }
      result =
          SubmitResult{sweep.rec.sweep_id, static_cast<int>(sweep.job_ids.size()), sweep.reused};
      return absl::OkStatus();
    }
  }
  PCSWEEP_RETURN_IF_ERROR(StoreFailure());
  std::map<std::string, std::string> id_by_key;
  for (const JobDefinition& def : spec.jobs) {
    if (!id_by_key.emplace(def.key, "").second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate job key '", def.key, "'"));
    }
    for (const std::string& parent : def.depends_on) {
      if (!id_by_key.count(parent)) {
        return absl::InvalidArgumentError(absl::StrCat("job '", def.key, "' depends on '", parent,
                                                       "', which is not listed before it"));
      }
    }
  }
  const std::string name = spec.name.empty() ? "sweep" : spec.name;
  const std::string sweep_id = absl::StrCat(name, "-", next_sweep_number_++);
  const int64_t now = NowMs();
  Sweep& sweep = sweeps_[sweep_id];
  sweep.rec = SweepRecord{sweep_id, name, spec_yaml, spec_path, force, now, 0, idempotency_key};
  sweep.committed = false;
  if (!idempotency_key.empty()) sweep_by_key_[idempotency_key] = sweep_id;
  sweep_order_.push_back(sweep_id);
  batch.push_back(UpsertSweep{sweep.rec});
  // Pass 1: every job, PENDING. Pass 2 (parents first): reuse earlier results, which may
  // unblock children. Pass 3: queue what is ready.
  int index = 0;
  for (const JobDefinition& def : spec.jobs) {
    const std::string job_id = absl::StrCat(sweep_id, ".", index);
    id_by_key[def.key] = job_id;
    Job& job = jobs_[job_id];
    job.rec.job_id = job_id;
    job.rec.sweep_id = sweep_id;
    job.rec.index = index++;
    job.rec.name = def.key;
    job.rec.stage = def.stage;
    job.rec.kind = def.kind;
    job.rec.config_hash = def.config_hash;
    job.rec.params = def.params;
    job.rec.config_json = def.config.dump();
    job.rec.max_attempts = std::max(1, def.max_attempts);
    job.rec.created_ms = now;
    job.rec.state = JobState::kPending;
    for (const std::string& parent_key : def.depends_on) {
      const std::string& parent_id = id_by_key[parent_key];
      job.rec.depends_on.push_back(parent_id);
      jobs_[parent_id].children.push_back(job_id);
      job.unfinished_parents++;
    }
    sweep.job_ids.push_back(job_id);
    sweep.counts[static_cast<int>(JobState::kPending)]++;
    batch.push_back(UpsertJob{job.rec});
  }
  for (const std::string& job_id : sweep.job_ids) {
    Job& job = jobs_[job_id];
    auto previous = succeeded_by_hash_.find(job.rec.config_hash);
    if (force || job.rec.config_hash.empty() || previous == succeeded_by_hash_.end()) continue;
    const Job& source = jobs_[previous->second];
    job.rec.reused_from =
        source.rec.reused_from.empty() ? source.rec.job_id : source.rec.reused_from;
    job.rec.metrics = source.rec.metrics;
    job.rec.outputs = source.rec.outputs;
    job.rec.progress = 1;
    batch.push_back(CopyResult{source.rec.job_id, job_id});
    SetStateLocked(job, JobState::kSucceeded, absl::StrCat("reused ", job.rec.reused_from), batch,
                   deferred);
    OnSucceededLocked(job, batch, deferred);
    result.reused++;
  }
  for (const std::string& job_id : sweep.job_ids) {
    Job& job = jobs_[job_id];
    if (job.rec.state == JobState::kPending && job.unfinished_parents == 0) PushReadyLocked(job);
  }
  AppendEventLocked(
      sweep, nullptr,
      absl::StrCat("submitted ", spec.jobs.size(), " jobs (", result.reused, " reused)"), batch,
      deferred);
  CheckSweepFinishedLocked(sweep, batch, deferred);
  result.sweep_id = sweep_id;
  result.jobs = static_cast<int>(spec.jobs.size());
  return absl::OkStatus();
}

void Scheduler::SubmitAsync(const SweepSpec& spec, const std::string& spec_yaml,
                            const std::string& spec_path, bool force,
                            const std::string& idempotency_key, SubmitCallback done) {
  SubmitResult result;
  WriteBatch batch;
  Deferred deferred;
  absl::Status started;
  {
    absl::MutexLock lock(&mu_);
    started = StartSubmitLocked(spec, spec_yaml, spec_path, force, idempotency_key, result, batch,
                                deferred);
  }
  RunDeferred(deferred);
  if (!started.ok()) return done(started);
  if (batch.empty()) return done(result);  // the sweep an earlier submit with this key made
  // Outside the mutex (a store may call back synchronously). Nothing else writes rows of the
  // new sweep meanwhile: it is invisible (not committed) until FinishSubmitLocked.
  store_->WriteAsync(std::move(batch), [this, result, done = std::move(done)](absl::Status status) {
    NoteWriteOutcome(status);
    Deferred finished;
    {
      absl::MutexLock lock(&mu_);
      FinishSubmitLocked(result.sweep_id, status.ok(), finished);
    }
    RunDeferred(finished);
    if (!status.ok()) {
      return done(CannotWriteError(status, " (recording the sweep; nothing was recorded)"));
    }
    done(result);
  });
}

absl::StatusOr<SubmitResult> Scheduler::Submit(const SweepSpec& spec, const std::string& spec_yaml,
                                               const std::string& spec_path, bool force,
                                               const std::string& idempotency_key) {
  std::promise<absl::StatusOr<SubmitResult>> promise;
  std::future<absl::StatusOr<SubmitResult>> submitted = promise.get_future();
  SubmitAsync(
      spec, spec_yaml, spec_path, force, idempotency_key,
      [&promise](absl::StatusOr<SubmitResult> result) { promise.set_value(std::move(result)); });
  return submitted.get();
}

void Scheduler::FinishSubmitLocked(const std::string& sweep_id, bool committed,
                                   Deferred& deferred) {
  Sweep& sweep = sweeps_[sweep_id];
  if (committed) {
    sweep.committed = true;
    WriteBatch batch;
    for (const std::string& job_id : sweep.job_ids) {
      Job& job = jobs_[job_id];
      if (job.rec.state == JobState::kPending && job.unfinished_parents == 0) PushReadyLocked(job);
    }
    DispatchLocked(batch, deferred);
    WriteLocked(batch);
    return;
  }
  // Forget the sweep: its jobs only reference each other, and reuse pointed the hash index
  // at them, so point it back at the jobs they reused.
  for (const std::string& job_id : sweep.job_ids) {
    const Job& job = jobs_[job_id];
    auto hash = succeeded_by_hash_.find(job.rec.config_hash);
    if (hash != succeeded_by_hash_.end() && hash->second == job_id) {
      if (job.rec.reused_from.empty()) {
        succeeded_by_hash_.erase(hash);
      } else {
        hash->second = job.rec.reused_from;
      }
    }
    jobs_.erase(job_id);
  }
  sweep_order_.erase(std::remove(sweep_order_.begin(), sweep_order_.end(), sweep_id),
                     sweep_order_.end());
  if (!sweep.rec.idempotency_key.empty()) sweep_by_key_.erase(sweep.rec.idempotency_key);
  sweeps_.erase(sweep_id);
}

std::vector<SweepSummary> Scheduler::ListSweeps() const {
  absl::MutexLock lock(&mu_);
  std::vector<SweepSummary> out;
  for (const std::string& id : sweep_order_) {
    const Sweep& sweep = sweeps_.at(id);
    if (sweep.committed) out.push_back(SummaryLocked(sweep, /*with_spec=*/false));
  }
  return out;
}

absl::StatusOr<SweepSummary> Scheduler::GetSweepSummary(const std::string& id_or_name) const {
  absl::MutexLock lock(&mu_);
  const Sweep* sweep = FindSweepLocked(id_or_name);
  if (sweep == nullptr) return absl::NotFoundError(absl::StrCat("no sweep '", id_or_name, "'"));
  return SummaryLocked(*sweep);
}

absl::StatusOr<std::string> Scheduler::ResolveSweepId(const std::string& id_or_name) const {
  PCSWEEP_ASSIGN_OR_RETURN(SweepSummary summary, GetSweepSummary(id_or_name));
  return summary.sweep.sweep_id;
}

absl::StatusOr<std::pair<SweepSummary, std::vector<JobRecord>>> Scheduler::GetSweep(
    const std::string& id_or_name, bool include_results) const {
  absl::MutexLock lock(&mu_);
  const Sweep* sweep = FindSweepLocked(id_or_name);
  if (sweep == nullptr) return absl::NotFoundError(absl::StrCat("no sweep '", id_or_name, "'"));
  std::vector<JobRecord> jobs;
  jobs.reserve(sweep->job_ids.size());
  for (const std::string& id : sweep->job_ids) {
    jobs.push_back(jobs_.at(id).rec);
    if (!include_results) {
      jobs.back().metrics.clear();
      jobs.back().outputs.clear();
    }
  }
  return std::make_pair(SummaryLocked(*sweep), std::move(jobs));
}

absl::StatusOr<std::pair<JobRecord, std::vector<AttemptRecord>>> Scheduler::GetJob(
    const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return std::make_pair(it->second.rec, it->second.attempts);
}

absl::StatusOr<int> Scheduler::CancelSweep(const std::string& id_or_name) {
  Deferred deferred;
  int cancelled = 0;
  {
    absl::MutexLock lock(&mu_);
    Sweep* sweep = FindSweepLocked(id_or_name);
    if (sweep == nullptr) return absl::NotFoundError(absl::StrCat("no sweep '", id_or_name, "'"));
    WriteBatch batch;
    for (const std::string& id : sweep->job_ids) {
      Job& job = jobs_[id];
      if (IsTerminal(job.rec.state) || job.completing) continue;
      if (IsActive(job.rec.state) && !job.attempts.empty()) {
        AttemptRecord& attempt = job.attempts.back();
        attempt.state = JobState::kCancelled;
        attempt.finished_ms = NowMs();
        attempt.error = "cancelled by user";
        batch.push_back(UpsertAttempt{attempt});
      }
      job.rec.error = "cancelled by user";
      job.dependency_cancelled = false;
      SetStateLocked(job, JobState::kCancelled, "cancelled by user", batch, deferred);
      ++cancelled;
    }
    WriteLocked(batch);
  }
  RunDeferred(deferred);
  return cancelled;
}

absl::StatusOr<int> Scheduler::RetryFailed(const std::string& id_or_name) {
  Deferred deferred;
  int retried = 0;
  {
    absl::MutexLock lock(&mu_);
    Sweep* sweep = FindSweepLocked(id_or_name);
    if (sweep == nullptr) return absl::NotFoundError(absl::StrCat("no sweep '", id_or_name, "'"));
    WriteBatch batch;
    // Index order = parents first, so children see their parent's new state.
    for (const std::string& id : sweep->job_ids) {
      Job& job = jobs_[id];
      const bool retry = job.rec.state == JobState::kFailed ||
                         (job.rec.state == JobState::kCancelled && job.dependency_cancelled);
      if (!retry) continue;
      // The original budget of attempts, counted from here.
      job.rec.max_attempts =
          job.rec.attempt - job.rec.preemptions + std::max(1, job.rec.max_attempts);
      job.rec.error.clear();
      job.dependency_cancelled = false;
      SetStateLocked(job, JobState::kPending, "retry requested", batch, deferred);
      ++retried;
    }
    DispatchLocked(batch, deferred);
    WriteLocked(batch);
  }
  RunDeferred(deferred);
  return retried;
}

std::vector<WorkerStatus> Scheduler::ListWorkers() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, WorkerStatus> by_id;
  for (const auto& [id, worker] : workers_) by_id[id].worker = worker.rec;
  for (const auto& [job_id, deadline] : active_) {
    const Job& job = jobs_.at(job_id);
    auto it = by_id.find(job.rec.worker_id);
    if (it != by_id.end()) it->second.running.push_back(JobRef{job_id, job.rec.attempt});
  }
  std::vector<WorkerStatus> out;
  for (auto& [id, status] : by_id) out.push_back(std::move(status));
  return out;
}

// ------------------------------------------------------------------------------------------
// Workers

absl::StatusOr<RegisterResult> Scheduler::RegisterWorker(const WorkerRecord& worker_in,
                                                         const std::vector<JobRef>& running) {
  if (worker_in.incarnation_id.empty()) {
    return absl::InvalidArgumentError("RegisterWorker: incarnation_id is required");
  }
  if (worker_in.slots < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("RegisterWorker: slots must be >= 1, got ", worker_in.slots));
  }
  RegisterResult result;
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    std::string id = !worker_in.name.empty() ? worker_in.name : worker_in.host;
    if (id.empty()) id = worker_in.incarnation_id;
    Worker& worker = workers_[id];
    const std::string old_incarnation = worker.rec.incarnation_id;
    worker.rec = worker_in;
    worker.rec.worker_id = id;
    if (worker.rec.name.empty()) worker.rec.name = id;
    worker.rec.state = "alive";
    worker.rec.registered_ms = NowMs();
    worker.rec.last_heartbeat_ms = worker.rec.registered_ms;
    worker.last_seen = options_.clock->Now();
    result.worker_id = id;
    WriteBatch batch;
    batch.push_back(UpsertWorker{worker.rec});
    // Listed jobs that are still this worker's leases are kept (re-attach), now under the new
    // incarnation; other listed jobs must stop.
    std::map<std::string, int> kept;
    for (const JobRef& ref : running) {
      auto it = jobs_.find(ref.job_id);
      const bool ours = it != jobs_.end() && it->second.rec.attempt == ref.attempt &&
                        it->second.rec.worker_id == id && !it->second.completing;
      // A lease that lapsed while the worker could not reach us (coordinator restart) and
      // that nobody has taken since is handed back: the attempt goes on instead of re-running.
      const bool lapsed =
          ours && it->second.lease_lapsed && it->second.rec.state == JobState::kPending;
      if (ours && (IsActive(it->second.rec.state) || lapsed)) {
        Job& job = it->second;
        job.rec.incarnation_id = worker_in.incarnation_id;
        job.lease_deadline = options_.clock->Now() + options_.lease_timeout;
        if (lapsed) {
          ResumeLapsedLeaseLocked(job, id, worker_in.incarnation_id, batch, deferred);
        } else {
          active_[job.rec.job_id] = job.lease_deadline;
          batch.push_back(UpsertJob{job.rec});
        }
        kept[ref.job_id] = ref.attempt;
      } else {
        result.cancel.push_back(ref);
      }
    }
    // Leases of this name that the (new) process does not run are lost.
    std::vector<std::string> lost;
    for (const auto& [job_id, deadline] : active_) {
      const Job& job = jobs_[job_id];
      if (job.rec.worker_id == id && !kept.count(job_id) && !job.completing &&
          (job.rec.incarnation_id != worker_in.incarnation_id)) {
        lost.push_back(job_id);
      }
    }
    for (const std::string& job_id : lost) {
      ExpireLeaseLocked(jobs_[job_id],
                        absl::StrCat("worker ", id, " restarted (incarnation ",
                                     old_incarnation.empty() ? "?" : old_incarnation, " replaced)"),
                        batch, deferred);
    }
    DispatchLocked(batch, deferred);
    WriteLocked(batch);
  }
  RunDeferred(deferred);
  return result;
}

uint64_t Scheduler::AcquireJob(const std::string& worker_id, const std::string& incarnation_id,
                               int free_slots, absl::Duration wait, AcquireCallback done) {
  done = TimedAcquire(options_.hooks, options_.clock, std::move(done));
  Deferred deferred;
  uint64_t waiter_id = 0;
  {
    absl::MutexLock lock(&mu_);
    auto worker = workers_.find(worker_id);
    absl::Status store_failure = StoreFailure();
    if (shutting_down_) {
      deferred.push_back(
          [done] { done(absl::CancelledError("the coordinator is shutting down")); });
    } else if (!store_failure.ok()) {
      deferred.push_back([done, store_failure] { done(store_failure); });
    } else if (free_slots < 1) {
      deferred.push_back([done, free_slots] {
        done(absl::InvalidArgumentError(
            absl::StrCat("AcquireJob: free_slots must be >= 1, got ", free_slots)));
      });
    } else if (worker == workers_.end() || worker->second.rec.incarnation_id != incarnation_id ||
               incarnation_id.empty()) {
      deferred.push_back([done, worker_id] {
        done(absl::FailedPreconditionError(absl::StrCat(
            "worker '", worker_id, "' with this incarnation is not registered; register again")));
      });
    } else {
      worker->second.last_seen = options_.clock->Now();
      WriteBatch batch;
      std::vector<Assignment> assignments =
          LeaseLocked(worker->second, incarnation_id, free_slots, batch, deferred);
      if (!assignments.empty() || wait <= absl::ZeroDuration()) {
        deferred.push_back([done, a = std::move(assignments)]() mutable { done(std::move(a)); });
      } else {
        waiter_id = next_callback_id_++;
        waiters_.push_back(Waiter{waiter_id, worker_id, incarnation_id, free_slots,
                                  options_.clock->Now() + wait, std::move(done)});
        waiter_index_[waiter_id] = std::prev(waiters_.end());
      }
      WriteLocked(batch);
    }
  }
  RunDeferred(deferred);
  return waiter_id;
}

void Scheduler::CancelAcquire(uint64_t waiter_id) {
  AcquireCallback done;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiter_index_.find(waiter_id);
    if (it == waiter_index_.end()) return;
    done = std::move(it->second->done);
    waiters_.erase(it->second);
    waiter_index_.erase(it);
  }
  done(std::vector<Assignment>{});
}

std::vector<Assignment> Scheduler::LeaseLocked(const Worker& worker,
                                               const std::string& incarnation_id, int max,
                                               WriteBatch& batch, Deferred& deferred) {
  std::vector<Assignment> out;
  const std::vector<std::string>& kinds = worker.rec.kinds;
  auto accepts = [&kinds](const std::string& kind) {
    return kinds.empty() || std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  };
  while (static_cast<int>(out.size()) < max) {
    // The oldest ready job among the kinds this worker runs.
    std::deque<std::pair<uint64_t, std::string>>* best = nullptr;
    for (auto& [kind, queue] : ready_) {
      if (!accepts(kind)) continue;
      while (!queue.empty()) {
        auto it = jobs_.find(queue.front().second);
        // A job whose lapsed lease is being completed is not handed out meanwhile (it is
        // queued again if that write fails).
        if (it != jobs_.end() && it->second.rec.state == JobState::kPending &&
            it->second.unfinished_parents == 0 && !it->second.completing) {
          break;
        }
        if (it != jobs_.end()) it->second.in_queue = false;
        queue.pop_front();
      }
      if (!queue.empty() && (best == nullptr || queue.front().first < best->front().first)) {
        best = &queue;
      }
    }
    if (best == nullptr) break;
    Job& job = jobs_[best->front().second];
    best->pop_front();
    job.in_queue = false;

    // Substitute the parents' outputs (and metrics) into the settings.
    std::map<std::string, std::map<std::string, std::string>> outputs_by_stage;
    for (const std::string& parent_id : job.rec.depends_on) {
      const Job& parent = jobs_[parent_id];
      auto& outputs = outputs_by_stage[parent.rec.stage];
      for (const auto& [name, value] : parent.rec.metrics) outputs[name] = FormatNumber(value);
      for (const auto& [name, value] : parent.rec.outputs) outputs[name] = value;
    }
    std::string config_json = job.rec.config_json;
    if (!outputs_by_stage.empty()) {
      absl::StatusOr<nlohmann::json> resolved = [&]() -> absl::StatusOr<nlohmann::json> {
        try {
          return ResolveParentOutputs(nlohmann::json::parse(job.rec.config_json), outputs_by_stage,
                                      job.rec.kind == jobfile::kCommandKind);
        } catch (const std::exception& e) {
          return absl::InternalError(absl::StrCat("stored config is not JSON: ", e.what()));
        }
      }();
      if (!resolved.ok()) {
        job.rec.error = absl::StrCat("resolving parent outputs: ", resolved.status().message());
        SetStateLocked(job, JobState::kFailed, job.rec.error, batch, deferred);
        if (options_.hooks != nullptr) options_.hooks->OnJobFailed();
        CancelDependentsLocked(job, batch, deferred);
        continue;
      }
      config_json = resolved->dump();
    }

    const absl::Time now = options_.clock->Now();
    job.rec.attempt++;
    job.rec.worker_id = worker.rec.worker_id;
    job.rec.incarnation_id = incarnation_id;
    job.rec.started_ms = absl::ToUnixMillis(now);
    job.rec.error.clear();
    job.lease_deadline = now + options_.lease_timeout;
    AttemptRecord attempt;
    attempt.job_id = job.rec.job_id;
    attempt.attempt = job.rec.attempt;
    attempt.worker_id = worker.rec.worker_id;
    attempt.state = JobState::kLeased;
    attempt.started_ms = job.rec.started_ms;
    job.attempts.push_back(attempt);
    batch.push_back(UpsertAttempt{attempt});
    SetStateLocked(job, JobState::kLeased, absl::StrCat("leased to ", worker.rec.worker_id), batch,
                   deferred);
    out.push_back(Assignment{job.rec.job_id, job.rec.attempt, job.rec.sweep_id, job.rec.name,
                             job.rec.kind, std::move(config_json), job.rec.params});
  }
  return out;
}

void Scheduler::DispatchLocked(WriteBatch& batch, Deferred& deferred) {
  // No new leases on state the database may not hold; Tick() ends the waits.
  if (!StoreFailure().ok()) return;
  // Leasing may fail jobs and make others ready; loop until nothing changes.
  while (ready_changed_ && !waiters_.empty()) {
    ready_changed_ = false;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      auto worker = workers_.find(it->worker_id);
      if (worker == workers_.end() || worker->second.rec.incarnation_id != it->incarnation_id) {
        ++it;  // completed by Tick() at its deadline
        continue;
      }
      std::vector<Assignment> assignments =
          LeaseLocked(worker->second, it->incarnation_id, it->free_slots, batch, deferred);
      if (assignments.empty()) {
        ++it;
        continue;
      }
      deferred.push_back([done = std::move(it->done), a = std::move(assignments)]() mutable {
        done(std::move(a));
      });
      waiter_index_.erase(it->id);
      it = waiters_.erase(it);
    }
  }
  ready_changed_ = false;
}

absl::StatusOr<HeartbeatResult> Scheduler::Heartbeat(const std::string& worker_id,
                                                     const std::string& incarnation_id,
                                                     const std::vector<ProgressReport>& reports) {
  HeartbeatResult result;
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    auto worker = workers_.find(worker_id);
    if (worker == workers_.end() || worker->second.rec.incarnation_id.empty()) {
      result.reregister = true;
    } else if (worker->second.rec.incarnation_id != incarnation_id) {
      return absl::AbortedError(absl::StrCat("worker '", worker_id,
                                             "': a newer incarnation has registered; this "
                                             "process must stop"));
    }
    const absl::Time now = options_.clock->Now();
    WriteBatch batch;
    if (!result.reregister) {
      worker->second.last_seen = now;
      worker->second.rec.last_heartbeat_ms = absl::ToUnixMillis(now);
      if (worker->second.rec.state != "alive") {
        worker->second.rec.state = "alive";
        batch.push_back(UpsertWorker{worker->second.rec});
      }
    }
    for (const ProgressReport& report : reports) {
      auto it = jobs_.find(report.job_id);
      // A lease that lapsed while this worker was silent (stopped, partitioned) and that
      // nobody has taken since goes on under its attempt instead of being cancelled.
      if (!result.reregister && it != jobs_.end() && it->second.lease_lapsed &&
          !it->second.completing && it->second.rec.state == JobState::kPending &&
          it->second.rec.attempt == report.attempt && it->second.rec.worker_id == worker_id) {
        ResumeLapsedLeaseLocked(it->second, worker_id, incarnation_id, batch, deferred);
      }
      const bool ours = it != jobs_.end() && IsActive(it->second.rec.state) &&
                        it->second.rec.attempt == report.attempt &&
                        it->second.rec.worker_id == worker_id &&
                        it->second.rec.incarnation_id == incarnation_id;
      if (!ours) {
        // A job we know finished or moved on; unknown workers re-register first (their
        // jobs may still be theirs: RegisterWorker decides).
        if (!result.reregister) result.cancel.push_back(JobRef{report.job_id, report.attempt});
        continue;
      }
      Job& job = it->second;
      job.lease_deadline = now + options_.lease_timeout;
      active_[job.rec.job_id] = job.lease_deadline;
      const bool changed = job.rec.progress != report.progress ||
                           job.rec.progress_message != report.message ||
                           job.rec.state == JobState::kLeased;
      job.rec.progress = report.progress;
      job.rec.progress_message = report.message;
      job.rec.eta_ms = report.eta_ms;
      if (job.rec.state == JobState::kLeased) {
        if (!job.attempts.empty()) {
          job.attempts.back().state = JobState::kRunning;
          batch.push_back(UpsertAttempt{job.attempts.back()});
        }
        SetStateLocked(job, JobState::kRunning, report.message, batch, deferred);
      } else if (changed) {
        batch.push_back(UpsertJob{job.rec});
        AppendEventLocked(sweeps_[job.rec.sweep_id], &job, report.message, batch, deferred);
      }
    }
    WriteLocked(batch);
  }
  RunDeferred(deferred);
  return result;
}

absl::StatusOr<Scheduler::Job*> Scheduler::FenceLocked(const std::string& worker_id,
                                                       const std::string& incarnation_id,
                                                       const std::string& job_id, int attempt) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("unknown job '", job_id, "'"));
  }
  Job& job = it->second;
  // A lapsed lease (the job went back to PENDING and nobody has leased it since) still
  // belongs to its attempt: e.g. a result finished while the coordinator was down, reported
  // after the worker re-registered. Taking it saves re-running the job; a re-lease bumps the
  // attempt, which fences the old one out.
  const bool lapsed =
      job.lease_lapsed && job.rec.state == JobState::kPending && job.rec.attempt == attempt;
  if (!IsActive(job.rec.state) && !lapsed) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " attempt ", attempt, " is stale: the job is ",
                     JobStateName(job.rec.state), " (attempt ", job.rec.attempt, ")"));
  }
  if (job.rec.attempt != attempt) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " attempt ", attempt,
                                                      " is stale: the current attempt is ",
                                                      job.rec.attempt));
  }
  if (job.rec.worker_id != worker_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " attempt ", attempt, " is leased to worker '",
                     job.rec.worker_id, "' (another incarnation or worker reported it)"));
  }
  if (lapsed) {
    // Only the worker's current registration may report it: a superseded process may not.
    auto worker = workers_.find(worker_id);
    if (worker == workers_.end() || worker->second.rec.incarnation_id.empty() ||
        worker->second.rec.incarnation_id != incarnation_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " attempt ", attempt, ": the lease lapsed and worker '",
                       worker_id, "' is not registered with this incarnation"));
    }
  } else if (job.rec.incarnation_id != incarnation_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " attempt ", attempt, " is leased to worker '",
                     job.rec.worker_id, "' (another incarnation or worker reported it)"));
  }
  if (job.completing) {
    return absl::UnavailableError(
        absl::StrCat("job ", job_id, " attempt ", attempt, " is being recorded; retry"));
  }
  return &job;
}

void Scheduler::CompleteJob(const std::string& worker_id, const std::string& incarnation_id,
                            const std::string& job_id, int attempt, JobResult result,
                            DoneCallback done) {
  done = TimedComplete(options_.hooks, options_.clock, std::move(done));
  WriteBatch batch;
  {
    absl::ReleasableMutexLock lock(&mu_);
    absl::StatusOr<Job*> fenced = FenceLocked(worker_id, incarnation_id, job_id, attempt);
    if (!fenced.ok()) {
      lock.Release();
      done(fenced.status());
      return;
    }
    Job& job = **fenced;
    job.completing = true;
    // The durable image of the finished job; memory changes only once it is committed.
    JobRecord finished = job.rec;
    finished.state = JobState::kSucceeded;
    finished.finished_ms = NowMs();
    finished.progress = 1;
    finished.error.clear();  // a lapsed lease left "lease expired" there
    if (!result.log_path.empty()) finished.log_path = result.log_path;
    AttemptRecord attempt_rec = job.attempts.empty() ? AttemptRecord{} : job.attempts.back();
    attempt_rec.job_id = job_id;
    attempt_rec.attempt = attempt;
    attempt_rec.worker_id = worker_id;
    attempt_rec.state = JobState::kSucceeded;
    attempt_rec.finished_ms = finished.finished_ms;
    attempt_rec.error.clear();
    attempt_rec.log_path = finished.log_path;
    batch.push_back(UpsertJob{finished});
    batch.push_back(UpsertAttempt{attempt_rec});
    // Example rows are moved into the batch, metrics/outputs kept for memory.
    batch.push_back(PutResult{job_id, attempt,
                              JobResult{result.metrics, result.outputs, std::move(result.examples),
                                        result.log_path, result.finished_ms}});
  }
  // Outside the mutex: a store may call back synchronously.
  store_->WriteAsync(
      std::move(batch),
      [this, job_id, attempt, metrics = std::move(result.metrics),
       outputs = std::move(result.outputs), log_path = result.log_path,
       finished_ms = result.finished_ms, done = std::move(done)](absl::Status status) {
        NoteWriteOutcome(status);
        Deferred deferred;
        {
          absl::MutexLock lock(&mu_);
          Job& job = jobs_[job_id];
          job.completing = false;
          if (status.ok()) {
            WriteBatch follow_up;
            job.rec.metrics = metrics;
            job.rec.outputs = outputs;
            job.rec.progress = 1;
            if (!log_path.empty()) job.rec.log_path = log_path;
            job.rec.error.clear();
            if (!job.attempts.empty()) {
              job.attempts.back().state = JobState::kSucceeded;
              job.attempts.back().finished_ms = finished_ms > 0 ? finished_ms : NowMs();
              job.attempts.back().log_path = job.rec.log_path;
              job.attempts.back().error.clear();
            }
            SetStateLocked(job, JobState::kSucceeded, "succeeded", follow_up, deferred);
            OnSucceededLocked(job, follow_up, deferred);
            DispatchLocked(follow_up, deferred);
            WriteLocked(follow_up);
          } else if (job.rec.state == JobState::kPending && job.unfinished_parents == 0) {
            // A lapsed lease's job left the ready queue while its result was being written.
            WriteBatch follow_up;
            PushReadyLocked(job);
            DispatchLocked(follow_up, deferred);
            WriteLocked(follow_up);
          }
        }
        RunDeferred(deferred);
        done(status.ok() ? status
                         : Annotate(status, absl::StrCat("recording the result of job ", job_id,
                                                         " attempt ", attempt)));
      });
}

void Scheduler::OnSucceededLocked(Job& job, WriteBatch& batch, Deferred& deferred) {
  succeeded_by_hash_[job.rec.config_hash] = job.rec.job_id;
  for (const std::string& child_id : job.children) {
    Job& child = jobs_[child_id];
    if (child.unfinished_parents > 0) child.unfinished_parents--;
    if (child.unfinished_parents == 0 && child.rec.state == JobState::kPending) {
      PushReadyLocked(child);
    }
  }
}

void Scheduler::CancelDependentsLocked(Job& job, WriteBatch& batch, Deferred& deferred) {
  for (const std::string& child_id : job.children) {
    Job& child = jobs_[child_id];
    if (IsTerminal(child.rec.state) || child.completing) continue;
    child.rec.error =
        absl::StrCat(kDependencyFailed, job.rec.name, " is ", JobStateName(job.rec.state));
    child.dependency_cancelled = true;
    SetStateLocked(child, JobState::kCancelled, child.rec.error, batch, deferred);
    CancelDependentsLocked(child, batch, deferred);
  }
}

void Scheduler::FailAttemptLocked(Job& job, const FailureReport& failure, WriteBatch& batch,
                                  Deferred& deferred) {
  const std::string& error = failure.error;
  // A job that keeps taking its workers down with it (it signals them, it exhausts the node)
  // would be given back forever: past kMaxPreemptions, a give-back is an ordinary failure.
  const bool given_back = failure.preempted && job.rec.preemptions < kMaxPreemptions;
  if (!job.attempts.empty()) {
    AttemptRecord& attempt = job.attempts.back();
    attempt.state = JobState::kFailed;
    attempt.finished_ms = NowMs();
    attempt.error = error;
    attempt.exit_code = failure.exit_code;
    attempt.signal = failure.signal;
    attempt.stderr_tail = failure.stderr_tail;
    attempt.preempted = given_back;
    if (!failure.log_path.empty()) attempt.log_path = failure.log_path;
    batch.push_back(UpsertAttempt{attempt});
  }
  if (!failure.log_path.empty()) job.rec.log_path = failure.log_path;
  job.rec.error =
      failure.stderr_tail.empty() ? error : absl::StrCat(error, "\n", failure.stderr_tail);
  if (given_back) {
    job.rec.preemptions++;
    if (options_.hooks != nullptr) options_.hooks->OnRetryQueued();
    SetStateLocked(job, JobState::kPending,
                   absl::StrCat("attempt ", job.rec.attempt, " preempted (", error,
                                "); re-queued, ", job.rec.attempt - job.rec.preemptions, " of ",
                                job.rec.max_attempts, " attempts spent"),
                   batch, deferred);
    return;
  }
  const int spent = job.rec.attempt - job.rec.preemptions;
  if (failure.retryable && spent < job.rec.max_attempts) {
    if (options_.hooks != nullptr) options_.hooks->OnRetryQueued();
    SetStateLocked(job, JobState::kPending,
                   absl::StrCat("attempt ", job.rec.attempt, " failed (", error, "); retrying"),
                   batch, deferred);
  } else {
    SetStateLocked(job, JobState::kFailed,
                   absl::StrCat("failed after ", spent, " attempt(s): ", error), batch, deferred);
    if (options_.hooks != nullptr) options_.hooks->OnJobFailed();
    CancelDependentsLocked(job, batch, deferred);
  }
}

void Scheduler::FailJob(const FailureReport& report, DoneCallback done) {
  // The write must be queued under the mutex (ordering), but `done` must not run under it,
  // and a store may call back synchronously: whichever of "write done" and "mutex released"
  // comes last calls `done`.
  struct Ack {
    absl::Mutex mu;
    bool unlocked = false;
    std::optional<absl::Status> status;
    DoneCallback done;
  };
  auto ack = std::make_shared<Ack>();
  ack->done = std::move(done);
  Deferred deferred;
  {
    absl::ReleasableMutexLock lock(&mu_);
    absl::StatusOr<Job*> fenced =
        FenceLocked(report.worker_id, report.incarnation_id, report.job_id, report.attempt);
    if (!fenced.ok()) {
      lock.Release();
      ack->done(fenced.status());
      return;
    }
    WriteBatch batch;
    FailureReport failure = report;
    if (failure.error.empty()) {
      failure.error = report.signal != 0 ? absl::StrCat("killed by signal ", report.signal)
                                         : absl::StrCat("exit code ", report.exit_code);
    }
    (*fenced)->lease_lapsed = false;  // reported now: a second report is a duplicate
    FailAttemptLocked(**fenced, failure, batch, deferred);
    DispatchLocked(batch, deferred);
    store_->WriteAsync(std::move(batch), [health = store_health_, ack](absl::Status status) {
      health->Note(status);
      {
        absl::MutexLock lock(&ack->mu);
        if (!ack->unlocked) {
          ack->status = status;
          return;
        }
      }
      ack->done(status);
    });
  }
  RunDeferred(deferred);
  std::optional<absl::Status> status;
  {
    absl::MutexLock lock(&ack->mu);
    ack->unlocked = true;
    status = ack->status;
  }
  if (status.has_value()) ack->done(*status);
}

void Scheduler::ExpireLeaseLocked(Job& job, const std::string& why, WriteBatch& batch,
                                  Deferred& deferred) {
  if (options_.hooks != nullptr) options_.hooks->OnLeaseExpired();
  FailureReport expired;
  expired.error = why;
  FailAttemptLocked(job, expired, batch, deferred);
  job.lease_lapsed = job.rec.state == JobState::kPending;
}

void Scheduler::ResumeLapsedLeaseLocked(Job& job, const std::string& worker_id,
                                        const std::string& incarnation_id, WriteBatch& batch,
                                        Deferred& deferred) {
  job.rec.incarnation_id = incarnation_id;
  job.rec.error.clear();
  job.lease_deadline = options_.clock->Now() + options_.lease_timeout;
  if (!job.attempts.empty()) {
    AttemptRecord& attempt = job.attempts.back();
    attempt.state = JobState::kLeased;
    attempt.finished_ms = 0;
    attempt.error.clear();
    batch.push_back(UpsertAttempt{attempt});
  }
  SetStateLocked(job, JobState::kLeased,
                 absl::StrCat("lease of attempt ", job.rec.attempt, " resumed by ", worker_id),
                 batch, deferred);
}

// ------------------------------------------------------------------------------------------
// Events

absl::StatusOr<std::vector<SweepEvent>> Scheduler::EventsAfter(const std::string& sweep_id,
                                                               int64_t after_seq, size_t max,
                                                               bool* finished) const {
  absl::MutexLock lock(&mu_);
  const Sweep* sweep = FindSweepLocked(sweep_id);
  if (sweep == nullptr) return absl::NotFoundError(absl::StrCat("no sweep '", sweep_id, "'"));
  std::vector<SweepEvent> out;
  // Events are in seq order; find the first one after after_seq.
  auto first = std::upper_bound(sweep->events.begin(), sweep->events.end(), after_seq,
                                [](int64_t seq, const SweepEvent& e) { return seq < e.seq; });
  for (auto it = first; it != sweep->events.end() && out.size() < max; ++it) out.push_back(*it);
  if (finished != nullptr) {
    const int64_t last = out.empty() ? after_seq : out.back().seq;
    *finished = sweep->rec.finished_ms != 0 && last >= sweep->last_seq;
  }
  return out;
}

uint64_t Scheduler::WatchEvents(const std::string& sweep_id, int64_t after_seq,
                                std::function<void()> on_event) {
  absl::MutexLock lock(&mu_);
  const Sweep* sweep = FindSweepLocked(sweep_id);
  if (sweep == nullptr || sweep->last_seq > after_seq) return 0;
  const uint64_t id = next_callback_id_++;
  watchers_[id] = Watcher{sweep->rec.sweep_id, std::move(on_event)};
  return id;
}

void Scheduler::Unwatch(uint64_t watch_id) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watch_id);
}

// ------------------------------------------------------------------------------------------
// Housekeeping

void Scheduler::Tick() {
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = options_.clock->Now();
    WriteBatch batch;
    std::vector<std::string> expired;
    for (const auto& [job_id, deadline] : active_) {
      if (deadline <= now && !jobs_[job_id].completing) expired.push_back(job_id);
    }
    for (const std::string& job_id : expired) {
      Job& job = jobs_[job_id];
      ExpireLeaseLocked(job,
                        absl::StrCat("lease expired: no heartbeat from worker ", job.rec.worker_id,
                                     " for ", absl::FormatDuration(options_.lease_timeout)),
                        batch, deferred);
    }
    for (auto& [id, worker] : workers_) {
      if (worker.rec.state == "alive" && now - worker.last_seen > options_.lease_timeout) {
        worker.rec.state = "lost";
        batch.push_back(UpsertWorker{worker.rec});
      }
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->deadline <= now) {
        deferred.push_back([done = std::move(it->done)] { done(std::vector<Assignment>{}); });
        waiter_index_.erase(it->id);
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    if (batch.empty() && !StoreFailure().ok()) {
      // A probe: rewriting the newest committed sweep's row (or a worker's) changes nothing
      // but tells whether the database accepts writes again. With neither, memory holds
      // nothing that the database lacks, and the next submit is its own probe.
      for (auto id = sweep_order_.rbegin(); id != sweep_order_.rend(); ++id) {
        const Sweep& sweep = sweeps_[*id];
        if (!sweep.committed) continue;
        batch.push_back(UpsertSweep{sweep.rec});
        break;
      }
      if (batch.empty() && !workers_.empty()) {
        batch.push_back(UpsertWorker{workers_.begin()->second.rec});
      }
      if (batch.empty()) NoteWriteOutcome(absl::OkStatus());
    }
    DispatchLocked(batch, deferred);
    WriteLocked(batch);
  }
  RunDeferred(deferred);
}

void Scheduler::Shutdown() {
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (Waiter& waiter : waiters_) {
      deferred.push_back([done = std::move(waiter.done)] {
        done(absl::CancelledError("the coordinator is shutting down"));
      });
    }
    waiters_.clear();
    waiter_index_.clear();
    for (auto& [id, watcher] : watchers_) deferred.push_back(std::move(watcher.on_event));
    watchers_.clear();
  }
  RunDeferred(deferred);
}

}  // namespace pcsweep::coordinator
