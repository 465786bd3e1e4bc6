// The statistics of a sweep as stored in its coordinator database: loads the per-example rows
// of the sweep's evaluation jobs, turns them into common/analysis results, compares every arm
// with its baseline and stores those comparisons in the `comparisons` table; renders the
// paper tables and the SVG figure from the same rows.
//
// Who writes `comparisons`: the file's single writer, a SqliteStore, through one
// ReplaceComparisons mutation per sweep. Inside the coordinator that is the coordinator's own
// store (ComparisonUpdater, GetResults); for a database file that no coordinator serves
// (`pcsweep results --db`), RecomputeComparisons opens a SqliteStore on it for the call. Rows
// are read through read-only connections, which in WAL mode never block the writer. Nothing
// here runs on gRPC threads: ComparisonUpdater has a thread of its own, the CLI computes on
// demand.
//
// What a result is (see common/analysis/analysis.h for the statistics):
//  * one analysis::EvalResult per (succeeded job, eval set, variant) with example rows; rows
//    of the job's latest attempt only (a retried job may have left older rows);
//  * job_key = the job's spec key (e.g. "train[lambda=1,layers=early,loss=combined,seed=0]"),
//    arm_params = the job's grid values, label 1 = "yes", 0 = "no".
//
// Thread-safety: the free functions use only their arguments (one StoreReader per thread; a
// Store is thread-safe); ComparisonUpdater is thread-safe.
#ifndef PCSWEEP_COORDINATOR_ANALYSIS_SWEEP_RESULTS_H_
#define PCSWEEP_COORDINATOR_ANALYSIS_SWEEP_RESULTS_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/analysis/analysis.h"
#include "common/table/table.h"
#include "coordinator/store/store.h"
#include "coordinator/store/store_reader.h"

namespace pcsweep::coordinator {

// The evaluation results of sweep `sweep_id` (an id, not a name), jobs in index order.
// Jobs without example rows (pretrain without evaluation, command jobs) contribute nothing.
// Possible errors: Internal / DataLoss from the reader.
absl::StatusOr<std::vector<analysis::EvalResult>> LoadEvalResults(StoreReader& reader,
                                                                  const std::string& sweep_id);

// The rows of `analysis.comparisons` as stored: arm = "<ArmName> seed=<seed>" (no suffix
// without a seed), baseline = the baseline job's key.
std::vector<ComparisonRecord> ToComparisonRecords(const std::string& sweep_id,
                                                  const analysis::SweepAnalysis& analysis);

struct StoredComparisons {
  std::string sweep_id;
  std::vector<ComparisonRecord> records;
  std::vector<std::string> warnings;  // from CompareWithBaselines (e.g. an arm without baseline)
};

// The comparisons of sweep `sweep_id` (an id) from the rows read through `reader` (none when
// the sweep has no adapted results). Writes nothing.
// Possible errors: those of LoadEvalResults, InvalidArgument naming the job for rows the
// statistics reject.
absl::StatusOr<StoredComparisons> ComputeComparisons(StoreReader& reader,
                                                     const std::string& sweep_id,
                                                     const analysis::AnalysisOptions& options);

// Computes the comparisons of sweep `id_or_name` in the database at `db_path` and replaces
// the sweep's rows of `comparisons` with them through `store`, waiting until that write is
// committed. `store` is the file's writer (not owned): the coordinator's own store inside the
// coordinator, which is flushed first so that rows it has accepted are read; null opens a
// SqliteStore on the file for the call, for a database no coordinator serves. The file must
// exist; it is never created here.
// Possible errors: NotFound (no such file or sweep), FailedPrecondition (not a pcsweep
// database or a newer schema), InvalidArgument naming the job for rows the statistics
// reject, Unavailable (the write failed: disk full, database busy), Internal.
absl::StatusOr<StoredComparisons> RecomputeComparisons(
    const std::string& db_path, const std::string& id_or_name,
    const analysis::AnalysisOptions& options = {}, Store* store = nullptr);

// The three tables of issue 5.
enum class ResultsTableKind { kMain, kAblation, kPhenomena };
// "main" | "ablation" | "phenomena". Possible errors: InvalidArgument naming the value.
absl::StatusOr<ResultsTableKind> ParseResultsTableKind(absl::string_view name);

// The table of the sweep's results read through `reader`. Main and ablation tables end with
// analysis::SaeSweepNotes of the sweep's succeeded jobs (layer_select, sae_transfer).
// Possible errors: NotFound (unknown sweep, or a sweep without evaluation rows, naming it),
// those of LoadEvalResults and of analysis::MainTable & co.
absl::StatusOr<table::Table> BuildResultsTable(StoreReader& reader, const std::string& sweep_id,
                                               ResultsTableKind kind,
                                               const analysis::AnalysisOptions& options = {});

// The figure (analysis::ResultsPlotSvg) of the sweep's results.
// Possible errors: as BuildResultsTable; NotFound when no adapted result is on the eval set.
absl::StatusOr<std::string> BuildResultsPlot(StoreReader& reader, const std::string& sweep_id,
                                             const analysis::AnalysisOptions& options = {});

struct ComparisonUpdaterOptions {
  std::string db_path;     // the coordinator's database (must exist: the store creates it)
  Store* store = nullptr;  // its writer; not owned, must outlive the updater
  analysis::AnalysisOptions analysis;
};

// Keeps `comparisons` up to date inside the coordinator, which owns it: the scheduler reports
// every sweep that finishes (SchedulerOptions::on_sweep_finished -> SweepFinished), which
// wakes the updater's thread for one pass. A pass (re)computes the comparisons of each sweep
// whose finish (sweeps.finished_ms) it has not handled yet and stores them through the
// store. The first pass, at Start, takes a finished sweep that already has comparison rows as
// up to date and computes the others (sweeps that finished while no coordinator ran them);
// one that finishes again later (after `retry`) is recomputed. A failure is logged with the
// sweep's id and retried at the next finish, never fatal: the coordinator keeps serving.
// Thread-safety: thread-safe; passes are serialised.
class ComparisonUpdater {
 public:
  // Without a thread until Start(); RunOnce() may be called either way.
  // Possible errors: InvalidArgument (empty db_path, no store).
  static absl::StatusOr<std::unique_ptr<ComparisonUpdater>> Create(
      ComparisonUpdaterOptions options);
  // Starts the thread: a first pass at once, then one per SweepFinished() (requests made
  // before Start() are folded into the first pass). Call once, after the store's Load(): a
  // pass writes.
  void Start();

  ~ComparisonUpdater();  // stops and joins the thread
  ComparisonUpdater(const ComparisonUpdater&) = delete;
  ComparisonUpdater& operator=(const ComparisonUpdater&) = delete;

  // Asks the thread for a pass. Never blocks (the scheduler calls it from its callbacks).
  void SweepFinished(const std::string& sweep_id);

  // One pass over the finished sweeps; returns the ids of the sweeps it (re)computed.
  // Possible errors: those of opening the database (NotFound, FailedPrecondition, DataLoss);
  // a failing sweep is logged and skipped, not returned.
  absl::StatusOr<std::vector<std::string>> RunOnce();

  // RecomputeComparisons of one sweep through the store, on the calling thread, now
  // (GetResults with recompute, `pcsweep local` before it prints where the tables are). Possible
  // errors: as RecomputeComparisons; Unavailable after Shutdown() (as RunOnce).
  absl::StatusOr<StoredComparisons> Recompute(const std::string& id_or_name,
                                              const analysis::AnalysisOptions& options);

  // Stops the thread and waits for a pass in progress; afterwards nothing touches the store.
  // Idempotent.
  void Shutdown();

 private:
  explicit ComparisonUpdater(ComparisonUpdaterOptions options);
  void RunThread();

  const ComparisonUpdaterOptions options_;
  absl::Mutex run_mu_;  // one pass at a time
  // sweep_id -> the finished_ms its comparisons were computed for.
  std::map<std::string, int64_t> done_ ABSL_GUARDED_BY(run_mu_);
  bool shut_down_ ABSL_GUARDED_BY(run_mu_) = false;  // the store may be gone: touch nothing

  absl::Mutex wake_mu_;  // never held during a pass, so SweepFinished never waits for one
  bool pass_requested_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(wake_mu_) = false;
  std::thread thread_;
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_ANALYSIS_SWEEP_RESULTS_H_
