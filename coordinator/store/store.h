// Store: the coordinator's durable state behind an interface, so that the scheduler can be
// tested against a store that fails on purpose (FaultInjectingStore) and the real one
// (SqliteStore, sqlite_store.h) stays the only writer of the SQLite file.
//
// Writes are batches of mutations. Batches are applied in the order they were queued; the
// real store groups many queued batches into one transaction on its writer thread and never
// writes on the caller's thread. Each batch is atomic. Write() returns a future that becomes
// ready once the batch is durable (committed) or has failed; callers that need exactly-once
// (job completion) wait for it before acknowledging, others may drop it. WriteAsync() reports
// the same through a callback instead (for callers that must not block).
//
// Thread-safety: implementations are thread-safe.
#ifndef PCSWEEP_COORDINATOR_STORE_STORE_H_
#define PCSWEEP_COORDINATOR_STORE_STORE_H_

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/model.h"

namespace pcsweep::coordinator {

// Mutations. Upserts replace the whole row (key: the record's id).
struct UpsertSweep {
  SweepRecord sweep;
};
struct UpsertJob {
  JobRecord job;  // metrics/outputs are ignored: results go through PutResult/CopyResult
};
struct UpsertAttempt {
  AttemptRecord attempt;
};
struct UpsertWorker {
  WorkerRecord worker;
};
// Replaces the job's metrics and outputs and appends its example rows.
struct PutResult {
  std::string job_id;
  int attempt = 0;
  JobResult result;
};
// Copies metrics, outputs and example rows of `from_job_id` to `to_job_id` (reuse).
struct CopyResult {
  std::string from_job_id;
  std::string to_job_id;
};
struct AppendEvent {
  SweepEvent event;
};
// Replaces every `comparisons` row of the sweep with `records` (none: the sweep has none).
struct ReplaceComparisons {
  std::string sweep_id;
  std::vector<ComparisonRecord> records;  // each with sweep_id == the sweep's
};

using Mutation = std::variant<UpsertSweep, UpsertJob, UpsertAttempt, UpsertWorker, PutResult,
                              CopyResult, AppendEvent, ReplaceComparisons>;
using WriteBatch = std::vector<Mutation>;

// Everything the scheduler needs to resume after a restart.
struct StoreSnapshot {
  std::vector<SweepRecord> sweeps;
  std::vector<JobRecord> jobs;  // with metrics and outputs
  std::vector<AttemptRecord> attempts;
  std::vector<WorkerRecord> workers;
  std::vector<SweepEvent> events;  // in (sweep, seq) order
};

class Store {
 public:
  virtual ~Store() = default;

  using DoneCallback = std::function<void(absl::Status)>;

  // Queues `batch`; `done` (may be empty) is called exactly once with whether it was
  // committed, on the writer thread or, when the store refuses at once, on the calling
  // thread: callers must not hold locks that `done` takes.
  // Possible errors (through `done`): Unavailable (I/O failure, disk full; the batch was not
  // applied), Internal (constraint violation: a bug), Cancelled (store closed).
  virtual void WriteAsync(WriteBatch batch, DoneCallback done) = 0;

  // WriteAsync with a future. Possible errors: as WriteAsync.
  std::shared_future<absl::Status> Write(WriteBatch batch) {
    auto promise = std::make_shared<std::promise<absl::Status>>();
    std::shared_future<absl::Status> future = promise->get_future().share();
    WriteAsync(std::move(batch), [promise](absl::Status status) { promise->set_value(status); });
    return future;
  }

  // Reads the whole state. Only meaningful before writes start (at coordinator start-up).
  // Possible errors: DataLoss (corrupt file), Internal.
  virtual absl::StatusOr<StoreSnapshot> Load() = 0;

  // Blocks until every batch queued before the call is committed or failed.
  virtual void Flush() = 0;
};

// Test double: forwards to `base` (not owned, must outlive it) but fails chosen writes
// without forwarding them, as a full disk would.
// Thread-safety: thread-safe.
class FaultInjectingStore final : public Store {
 public:
  explicit FaultInjectingStore(Store* base) : base_(base) {}

  // The next `count` Write() calls fail with `status` (and are not applied).
  void FailNextWrites(int count, absl::Status status = absl::UnavailableError("injected fault")) {
    absl::MutexLock lock(&mu_);
    fail_count_ = count;
    fail_status_ = std::move(status);
  }
  // Every Write() whose batch contains a PutResult fails while `fail` is true.
  void FailResults(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_results_ = fail;
  }
  int failed_writes() const {
    absl::MutexLock lock(&mu_);
    return failed_writes_;
  }

  void WriteAsync(WriteBatch batch, DoneCallback done) override {
    absl::Status injected;
    {
      absl::MutexLock lock(&mu_);
      bool has_result = false;
      for (const Mutation& m : batch) has_result |= std::holds_alternative<PutResult>(m);
      if (fail_count_ > 0 || (fail_results_ && has_result)) {
        if (fail_count_ > 0) --fail_count_;
        ++failed_writes_;
        injected = fail_status_;
      }
    }
    if (!injected.ok()) {
      if (done) done(injected);
      return;
    }
    base_->WriteAsync(std::move(batch), std::move(done));
  }
  absl::StatusOr<StoreSnapshot> Load() override { return base_->Load(); }
  void Flush() override { base_->Flush(); }

 private:
  Store* const base_;
  mutable absl::Mutex mu_;
  int fail_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool fail_results_ ABSL_GUARDED_BY(mu_) = false;
  int failed_writes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_status_ ABSL_GUARDED_BY(mu_) = absl::UnavailableError("injected fault");
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_STORE_STORE_H_
