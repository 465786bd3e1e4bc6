// The statistics of a sweep as stored in its coordinator database: loads the per-example rows
// of the sweep's evaluation jobs, turns them into common/analysis results, compares every arm
// with its baseline and stores those comparisons in the `comparisons` table; renders the
// paper tables and the SVG figure from the same rows.
//
// Who writes `comparisons`: SqliteStore never touches that table, so a separate short-lived
// read-write connection replaces a sweep's rows in one transaction (DELETE + INSERT). WAL
// mode and the 5 s busy timeout of both connections make this safe while a coordinator is
// writing the same file; the transaction takes milliseconds. Nothing here runs on gRPC
// threads: ComparisonUpdater has a thread of its own, the CLI computes on demand.
//
// What a result is (see common/analysis/analysis.h for the statistics):
//  * one analysis::EvalResult per (succeeded job, eval set, variant) with example rows; rows
//    of the job's latest attempt only (a retried job may have left older rows);
//  * job_key = the job's spec key (e.g. "train[lambda=1,layers=early,loss=combined,seed=0]"),
//    arm_params = the job's grid values, label 1 = "yes", 0 = "no".
//
// Thread-safety: the free functions use only their arguments (one StoreReader per thread);
// ComparisonUpdater is thread-safe.
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
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/analysis/analysis.h"
#include "common/table/table.h"
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

// Computes the comparisons of sweep `id_or_name` in the database at `db_path` and replaces
// the sweep's rows of `comparisons` with them (none stored when the sweep has no adapted
// results). The file must exist; it is never created or migrated here.
// Possible errors: NotFound (no such file or sweep), FailedPrecondition (not a pcsweep
// database or a newer schema), InvalidArgument naming the job for rows the statistics
// reject, Unavailable (database busy for longer than the busy timeout), Internal.
absl::StatusOr<StoredComparisons> RecomputeComparisons(
    const std::string& db_path, const std::string& id_or_name,
    const analysis::AnalysisOptions& options = {});

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
  std::string db_path;  // the coordinator's database (must exist: the store creates it)
  absl::Duration poll_interval = absl::Seconds(2);
  analysis::AnalysisOptions analysis;
};

// Keeps `comparisons` up to date while a coordinator runs: every poll_interval it looks for
// sweeps that have finished (sweeps.finished_ms != 0) since it last looked and (re)computes
// their comparisons. At start-up a finished sweep that already has comparison rows is taken
// as up to date; one that finishes again later (after `retry`) is recomputed. A failure is
// logged with the sweep's id and retried at the next finish, never fatal: the coordinator
// keeps serving.
// Thread-safety: thread-safe; RunOnce() may be called while the thread runs (serialised).
class ComparisonUpdater {
 public:
  // Without a thread: call RunOnce() yourself (tests, `pcsweep local` at the end).
  // Possible errors: InvalidArgument (empty db_path).
  static absl::StatusOr<std::unique_ptr<ComparisonUpdater>> Create(
      ComparisonUpdaterOptions options);
  // Create() plus a background thread that calls RunOnce() every poll_interval.
  // Possible errors: as Create.
  static absl::StatusOr<std::unique_ptr<ComparisonUpdater>> Start(ComparisonUpdaterOptions options);

  ~ComparisonUpdater();  // stops and joins the thread
  ComparisonUpdater(const ComparisonUpdater&) = delete;
  ComparisonUpdater& operator=(const ComparisonUpdater&) = delete;

  // One pass over the finished sweeps; returns the ids of the sweeps it (re)computed.
  // Possible errors: those of opening the database (NotFound, FailedPrecondition, DataLoss);
  // a failing sweep is logged and skipped, not returned.
  absl::StatusOr<std::vector<std::string>> RunOnce();

  void Shutdown();  // idempotent

 private:
  explicit ComparisonUpdater(ComparisonUpdaterOptions options);

  const ComparisonUpdaterOptions options_;
  absl::Mutex run_mu_;  // one pass at a time
  // sweep_id -> the finished_ms its comparisons were computed for.
  std::map<std::string, int64_t> done_ ABSL_GUARDED_BY(run_mu_);
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_ANALYSIS_SWEEP_RESULTS_H_
