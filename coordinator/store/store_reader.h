// StoreReader: read-only access to a coordinator database file, usable WITHOUT a running
// coordinator (`pcsweep results SWEEP --db FILE`). Opens the SQLite file read-only; a
// coordinator may be writing it at the same time (WAL mode: readers see the last commit).
//
// Example:
//   PCSWEEP_ASSIGN_OR_RETURN(auto reader, coordinator::StoreReader::OpenReadOnly("x.db"));
//   PCSWEEP_ASSIGN_OR_RETURN(auto sweeps, reader->ListSweeps());
//   PCSWEEP_ASSIGN_OR_RETURN(auto jobs, reader->ListJobs(sweeps[0].sweep.sweep_id));
//   for (const auto& job : jobs) { job.params; job.metrics; job.outputs; ... }
//   PCSWEEP_ASSIGN_OR_RETURN(auto rows, reader->ListExamples(sweep_id));
//
// Jobs that reused another job's result (reused_from set) carry copies of its metrics,
// outputs and example rows, so callers need not follow reused_from.
// Thread-safety: a StoreReader is not thread-safe; use one per thread.
#ifndef PCSWEEP_COORDINATOR_STORE_STORE_READER_H_
#define PCSWEEP_COORDINATOR_STORE_STORE_READER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/model.h"

namespace SQLite {
class Database;
}

namespace pcsweep::coordinator {

class StoreReader {
 public:
  // Opens `path` read-only.
  // Possible errors: NotFound (no such file), FailedPrecondition (not a pcsweep database, or
  // its schema is newer than this binary), DataLoss (corrupt file).
  static absl::StatusOr<std::unique_ptr<StoreReader>> OpenReadOnly(const std::string& path);

  // Reads through an open connection owned by someone else (the store itself). `db` is not
  // owned and must outlive the reader.
  explicit StoreReader(SQLite::Database* db);
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // All sweeps, oldest first, with job counts. Possible errors: Internal, DataLoss.
  absl::StatusOr<std::vector<SweepSummary>> ListSweeps();
  // One sweep by id, or by name (the newest sweep of that name).
  // Possible errors: NotFound naming the sweep, Internal.
  absl::StatusOr<SweepSummary> GetSweep(const std::string& id_or_name);
  // The sweep's jobs in index order, with params, metrics and outputs.
  // Possible errors: Internal (NotFound is not raised: an unknown sweep has no jobs).
  absl::StatusOr<std::vector<JobRecord>> ListJobs(const std::string& sweep_id);
  // One job with metrics/outputs. Possible errors: NotFound, Internal.
  absl::StatusOr<JobRecord> GetJob(const std::string& job_id);
  // Every job of every sweep (resume). Possible errors: Internal.
  absl::StatusOr<std::vector<JobRecord>> ListAllJobs();
  // A job's attempts, in order. Possible errors: Internal.
  absl::StatusOr<std::vector<AttemptRecord>> ListAttempts(const std::string& job_id);
  // Every attempt row of every job (resume). Possible errors: Internal.
  absl::StatusOr<std::vector<AttemptRecord>> ListAllAttempts();
  // Per-example rows of all jobs of the sweep, by job index then insertion order.
  // Possible errors: Internal.
  absl::StatusOr<std::vector<StoredExample>> ListExamples(const std::string& sweep_id);
  // Per-example rows of one job. Possible errors: Internal.
  absl::StatusOr<std::vector<StoredExample>> ListJobExamples(const std::string& job_id);
  // The sweep's events with seq > after_seq; all sweeps when sweep_id is empty.
  // Possible errors: Internal.
  absl::StatusOr<std::vector<SweepEvent>> ListEvents(const std::string& sweep_id,
                                                     int64_t after_seq = 0);
  // Registered workers. Possible errors: Internal.
  absl::StatusOr<std::vector<WorkerRecord>> ListWorkers();
  // Comparison rows of a sweep. Possible errors: Internal.
  absl::StatusOr<std::vector<ComparisonRecord>> ListComparisons(const std::string& sweep_id);
  // The schema version of the file.
  absl::StatusOr<int> SchemaVersion();

 private:
  std::unique_ptr<SQLite::Database> owned_db_;
  SQLite::Database* db_;  // owned_db_.get() or borrowed
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_STORE_STORE_READER_H_
