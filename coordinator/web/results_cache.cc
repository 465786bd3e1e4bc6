#include "coordinator/web/results_cache.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace pcsweep::coordinator::web {

ResultsCache::ResultsCache(std::string db_path, size_t max_entries, size_t max_queued)
    : db_path_(std::move(db_path)),
      max_entries_(std::max<size_t>(1, max_entries)),
      queue_(std::make_unique<ResultsQueue>(max_queued)) {}

ResultsCache::~ResultsCache() { queue_.reset(); }

absl::StatusOr<std::string> ResultsCache::Get(const std::string& sweep_id, ResultsReportKind kind,
                                              table::Format format, const std::string& version,
                                              absl::Duration wait) {
  const Key key{sweep_id, static_cast<int>(kind), static_cast<int>(format)};
  std::shared_future<absl::StatusOr<std::string>> result;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.version == version) {
      result = it->second.result;
    } else {
      ResultsReportRequest request;
      request.sweep = sweep_id;
      request.kind = kind;
      request.format = format;
      request.read_only = true;
      auto promise = std::make_shared<std::promise<absl::StatusOr<std::string>>>();
      result = promise->get_future().share();
      const bool queued = queue_->TrySchedule([db_path = db_path_, request, promise] {
        absl::StatusOr<ResultsReport> report = RenderResultsReport(db_path, request);
        if (report.ok()) {
          promise->set_value(std::move(report->text));
        } else {
          promise->set_value(report.status());
        }
      });
      if (!queued) {
        return absl::ResourceExhaustedError(
            "the coordinator is rendering other results; try again shortly");
      }
      if (it == entries_.end()) {
        order_.push_back(key);
        if (order_.size() > max_entries_) {
          entries_.erase(order_.front());
          order_.pop_front();
        }
      }
      entries_[key] = Entry{version, result};
    }
  }
  if (result.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(wait))) !=
      std::future_status::ready) {
    return absl::DeadlineExceededError(absl::StrCat("the results of sweep ", sweep_id,
                                                    " are still being computed; reload shortly"));
  }
  return result.get();
}

}  // namespace pcsweep::coordinator::web
