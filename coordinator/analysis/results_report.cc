#include "coordinator/analysis/results_report.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "coordinator/analysis/sweep_results.h"
#include "coordinator/store/store_reader.h"

namespace pcsweep::coordinator {
namespace {

ResultsTableKind TableKindOf(ResultsReportKind kind) {
  switch (kind) {
    case ResultsReportKind::kAblationTable:
      return ResultsTableKind::kAblation;
    case ResultsReportKind::kPhenomenaTable:
      return ResultsTableKind::kPhenomena;
    default:
      return ResultsTableKind::kMain;
  }
}

}  // namespace

absl::StatusOr<ResultsReportKind> ParseTableReportKind(absl::string_view table) {
  PCSWEEP_ASSIGN_OR_RETURN(ResultsTableKind kind, ParseResultsTableKind(table));
  switch (kind) {
    case ResultsTableKind::kMain:
      return ResultsReportKind::kMainTable;
    case ResultsTableKind::kAblation:
      return ResultsReportKind::kAblationTable;
    case ResultsTableKind::kPhenomena:
      return ResultsReportKind::kPhenomenaTable;
  }
  return ResultsReportKind::kMainTable;
}

absl::StatusOr<ResultsReport> RenderResultsReport(const std::string& db_path,
                                                  const ResultsReportRequest& request,
                                                  ComparisonUpdater* comparisons) {
  const bool plot = request.kind == ResultsReportKind::kPlot;
  if (request.kind == ResultsReportKind::kComparisonsOnly && !request.recompute) {
    return absl::InvalidArgumentError("nothing to do: give --table KIND or --recompute");
  }
  if (request.read_only && request.recompute) {
    return absl::InvalidArgumentError("a read-only report cannot recompute the comparisons");
  }
  PCSWEEP_ASSIGN_OR_RETURN(auto reader, StoreReader::OpenReadOnly(db_path));
  auto sweep = reader->GetSweep(request.sweep);
  if (!sweep.ok()) return Annotate(sweep.status(), db_path);
  ResultsReport report;
  report.sweep_id = sweep->sweep.sweep_id;

  // Tables show the stored comparisons' statistics, so a finished sweep gets them stored on
  // first use; the figure only reads.
  bool store = request.recompute;
  if (!store && !plot && !request.read_only && sweep->sweep.finished_ms != 0) {
    PCSWEEP_ASSIGN_OR_RETURN(auto existing, reader->ListComparisons(report.sweep_id));
    store = existing.empty();
  }
  if (store) {
    auto stored = comparisons != nullptr
                      ? comparisons->Recompute(report.sweep_id, request.options)
                      : RecomputeComparisons(db_path, report.sweep_id, request.options);
    if (!stored.ok()) {
      if (request.recompute) return stored.status();
      report.notes.push_back(
          absl::StrCat("note: comparisons not stored: ", stored.status().message()));
    } else {
      report.notes.push_back(absl::StrCat(stored->records.size(), " comparisons of sweep ",
                                          report.sweep_id, " stored in ", db_path));
      if (request.kind == ResultsReportKind::kComparisonsOnly) {
        for (const std::string& warning : stored->warnings) {
          report.notes.push_back(absl::StrCat("warning: ", warning));
        }
      }
    }
  }

  switch (request.kind) {
    case ResultsReportKind::kComparisonsOnly:
      break;
    case ResultsReportKind::kPlot: {
      PCSWEEP_ASSIGN_OR_RETURN(report.text,
                               BuildResultsPlot(*reader, report.sweep_id, request.options));
      break;
    }
    default: {
      PCSWEEP_ASSIGN_OR_RETURN(
          table::Table built,
          BuildResultsTable(*reader, report.sweep_id, TableKindOf(request.kind), request.options));
      report.text = table::Render(built, request.format);
      break;
    }
  }
  return report;
}

ResultsQueue::ResultsQueue(size_t capacity) : capacity_(capacity), thread_([this] { Run(); }) {}

ResultsQueue::~ResultsQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

bool ResultsQueue::TrySchedule(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || tasks_.size() >= capacity_) return false;
  tasks_.push_back(std::move(task));
  return true;
}

bool ResultsQueue::HasWorkOrStopping() const { return stopping_ || !tasks_.empty(); }

void ResultsQueue::Run() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ResultsQueue::HasWorkOrStopping));
      if (tasks_.empty()) return;  // stopping, and everything queued has run
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace pcsweep::coordinator
