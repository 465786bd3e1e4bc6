// ResultsCache: the paper tables and the figure for the web view, rendered by the same code
// as `pcsweep results --table` and `pcsweep plot` (RenderResultsReport) and kept until the
// sweep's results change.
//
// Why the web view cannot block the store's writer: reports are rendered with read_only set,
// so RenderResultsReport opens only a read-only SQLite connection and never stores the
// comparisons (ComparisonUpdater does that when a sweep finishes). In WAL mode a reader reads
// the last committed snapshot from the database file plus the WAL and takes no lock that the
// writer waits for; the writer appends to the WAL meanwhile. A long read only keeps the
// store's checkpointer (PASSIVE checkpoints, sqlite_store.h) from copying pages past the
// reader's snapshot until it ends, so the WAL grows for that while. The reports run one at a
// time on the cache's own ResultsQueue thread, off the HTTP, gRPC and writer threads.
//
// Versions: the caller names the state of the sweep the report must reflect (the web view
// uses the in-memory count of succeeded jobs and the finish time, which move only after the
// results were committed); an entry rendered for another version is rendered again. Errors
// (e.g. no evaluation rows yet) are cached like results.
//
// Thread-safety: thread-safe. Get() blocks its caller (an HTTP thread) up to `wait`.
#ifndef PCSWEEP_COORDINATOR_WEB_RESULTS_CACHE_H_
#define PCSWEEP_COORDINATOR_WEB_RESULTS_CACHE_H_

#include <deque>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/analysis/results_report.h"

namespace pcsweep::coordinator::web {

class ResultsCache {
 public:
  // `db_path`: the coordinator's database file. Keeps at most `max_entries` reports and at most
  // `max_queued` renders waiting.
  explicit ResultsCache(std::string db_path, size_t max_entries = 64, size_t max_queued = 8);
  ~ResultsCache();  // runs the renders already queued, then returns
  ResultsCache(const ResultsCache&) = delete;
  ResultsCache& operator=(const ResultsCache&) = delete;

  // The report (table in `format`, or the SVG for kPlot) of `sweep_id` at `version`.
  // Possible errors: those of RenderResultsReport (NotFound: no evaluation rows yet, ...);
  // ResourceExhausted (too many renders queued), DeadlineExceeded (not rendered within
  // `wait`; it goes on, and a later call finds it).
  absl::StatusOr<std::string> Get(const std::string& sweep_id, ResultsReportKind kind,
                                  table::Format format, const std::string& version,
                                  absl::Duration wait);

 private:
  using Key = std::tuple<std::string, int, int>;  // sweep id, kind, format
  struct Entry {
    std::string version;
    std::shared_future<absl::StatusOr<std::string>> result;
  };

  const std::string db_path_;
  const size_t max_entries_;
  absl::Mutex mu_;
  std::map<Key, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<Key> order_ ABSL_GUARDED_BY(mu_);  // insertion order, for eviction
  // Declared last: destroyed first, running what is queued while the rest lives.
  std::unique_ptr<ResultsQueue> queue_;
};

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_RESULTS_CACHE_H_
