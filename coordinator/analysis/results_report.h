// The one code path behind `pcsweep results SWEEP --table KIND` and `pcsweep plot SWEEP`,
// whether the CLI reads the database itself (--db FILE) or asks the coordinator (GetResults):
// opens the database read-only, (re)stores the sweep's comparisons when asked or when a
// finished sweep has none, and renders the table (text, Markdown, CSV, LaTeX, JSON) or the SVG
// figure. The caller prints `text` on stdout (or writes it to the SVG file) and `notes` on
// stderr, so both paths print the same bytes.
//
// ResultsQueue runs such reports off the gRPC threads: a query over 50k rows takes about a
// second, and recomputing writes the `comparisons` table.
//
// Thread-safety: RenderResultsReport uses only its arguments (its own connections);
// ResultsQueue is thread-safe.
#ifndef PCSWEEP_COORDINATOR_ANALYSIS_RESULTS_REPORT_H_
#define PCSWEEP_COORDINATOR_ANALYSIS_RESULTS_REPORT_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/analysis/analysis.h"
#include "common/table/table.h"
#include "coordinator/analysis/sweep_results.h"

namespace pcsweep::coordinator {

enum class ResultsReportKind {
  kComparisonsOnly,  // nothing rendered: only (re)store the comparisons (needs recompute)
  kMainTable,
  kAblationTable,
  kPhenomenaTable,
  kPlot,  // the SVG figure (analysis::ResultsPlotSvg)
};

struct ResultsReportRequest {
  std::string sweep;  // id or name (the newest sweep of that name)
  ResultsReportKind kind = ResultsReportKind::kMainTable;
  table::Format format = table::Format::kText;  // tables only
  // Recompute and store the comparisons even when some are stored already.
  bool recompute = false;
  analysis::AnalysisOptions options;  // plot_x_key / plot_eval_set for kPlot
  // Never store comparisons (the finished-sweep-without-comparisons case renders without
  // them): only a read-only connection is opened, which in WAL mode never blocks the store's
  // writer. The web view sets it; the rendered text is the same either way.
  bool read_only = false;
};

struct ResultsReport {
  std::string sweep_id;
  std::string text;  // the rendered table or SVG document; empty for kComparisonsOnly
  // One line each, for stderr: what was stored, why nothing was, statistics warnings.
  std::vector<std::string> notes;
};

// "main" -> kMainTable, "ablation", "phenomena".
// Possible errors: InvalidArgument naming the value.
absl::StatusOr<ResultsReportKind> ParseTableReportKind(absl::string_view table);

// The report of sweep `request.sweep` in the database at `db_path`. The comparisons are
// (re)computed and stored first when `recompute` is set, or when the sweep is finished and has
// none stored; a failure to store them fails the report only when `recompute` was asked.
// Possible errors: InvalidArgument (kComparisonsOnly without recompute, or recompute with
// read_only), NotFound (no such file or sweep, naming the database; a sweep without evaluation
// rows; no adapted result on the plot's eval set), FailedPrecondition (not a pcsweep
// database), InvalidArgument naming the job whose rows the statistics reject, Unavailable
// (database busy), Internal.
// `comparisons` stores them when the coordinator serves the file (through its store); null
// = a database no coordinator serves (a SqliteStore is opened on it to store them).
absl::StatusOr<ResultsReport> RenderResultsReport(const std::string& db_path,
                                                  const ResultsReportRequest& request,
                                                  ComparisonUpdater* comparisons = nullptr);

// A bounded FIFO of tasks run one at a time on a thread of its own (reports are CPU- and
// SQLite-bound; one at a time keeps the coordinator's other work responsive). The destructor
// runs the tasks already queued, then joins: a queued task may hold a call to finish.
class ResultsQueue {
 public:
  explicit ResultsQueue(size_t capacity = 16);
  ~ResultsQueue();
  ResultsQueue(const ResultsQueue&) = delete;
  ResultsQueue& operator=(const ResultsQueue&) = delete;

  // Queues `task`. Returns false (and drops it) when `capacity` tasks are waiting already or
  // the queue is being destroyed.
  bool TrySchedule(std::function<void()> task);

 private:
  void Run();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_ANALYSIS_RESULTS_REPORT_H_
