#include "coordinator/analysis/sweep_results.h"

#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status/status_macros.h"
#include "coordinator/store/schema.h"
#include "coordinator/store/sqlite_store.h"
#include "spdlog/spdlog.h"

namespace pcsweep::coordinator {
namespace {

// A grid value that names a parent's output (`layers: "{layer_select.range}"`) is shown as
// what the parent produced ("3-5"): the layers the job actually trained. The reference
// stays in the job's key and config.
std::map<std::string, std::string> DisplayParams(
    const JobRecord& job, const std::unordered_map<std::string, const JobRecord*>& job_by_id) {
  std::map<std::string, std::string> params = job.params;
  for (const std::string& parent_id : job.depends_on) {
    auto parent = job_by_id.find(parent_id);
    if (parent == job_by_id.end()) continue;
    for (auto& [key, value] : params) {
      if (value.find('{') == std::string::npos) continue;
      for (const auto& [name, output] : parent->second->outputs) {
        value = absl::StrReplaceAll(
            value, {{absl::StrCat("{", parent->second->stage, ".", name, "}"), output}});
      }
    }
  }
  return params;
}

}  // namespace

absl::StatusOr<std::vector<analysis::EvalResult>> LoadEvalResults(StoreReader& reader,
                                                                  const std::string& sweep_id) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, reader.ListJobs(sweep_id));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<StoredExample> examples, reader.ListExamples(sweep_id));
  std::unordered_map<std::string, const JobRecord*> job_by_id;
  std::unordered_map<std::string, int> latest_attempt;
  for (const JobRecord& job : jobs) {
    if (job.state == JobState::kSucceeded) job_by_id[job.job_id] = &job;
  }
  for (const StoredExample& e : examples) {
    int& latest = latest_attempt[e.job_id];
    latest = std::max(latest, e.attempt);
  }
  // Rows arrive by job index, so results come out in job order; within a job, eval sets and
  // variants in order of first appearance.
  analysis::EvalResultBuilder builder;
  std::unordered_map<std::string, std::map<std::string, std::string>> display_params;
  for (StoredExample& e : examples) {
    auto job = job_by_id.find(e.job_id);
    if (job == job_by_id.end() || e.attempt != latest_attempt[e.job_id]) continue;
    auto params = display_params.find(e.job_id);
    if (params == display_params.end()) {
      params = display_params.emplace(e.job_id, DisplayParams(*job->second, job_by_id)).first;
    }
    // Add keeps the row whole; its eval set and variant also choose the result it joins.
    const std::string eval_set = e.row.eval_set, variant = e.row.variant;
    builder.Add(job->second->name, params->second, eval_set, variant, std::move(e.row));
  }
  std::vector<analysis::EvalResult> results = builder.Build();
  std::unordered_map<std::string, const JobRecord*> job_by_key;
  for (const auto& [id, job] : job_by_id) job_by_key[job->name] = job;
  for (analysis::EvalResult& result : results) {
    const JobRecord& job = *job_by_key.at(result.job_key);
    // The job's own metrics of this eval set, for display: "S.x" (adapted or eval job) or
    // "S.base.x" (the base model inside a train_eval job).
    const std::string prefix = result.variant == "base" && job.kind == "train_eval"
                                   ? absl::StrCat(result.eval_set, ".base.")
                                   : absl::StrCat(result.eval_set, ".");
    for (const auto& [name, value] : job.metrics) {
      if (name.compare(0, prefix.size(), prefix) == 0) {
        result.metrics[name.substr(prefix.size())] = value;
      }
    }
  }
  return results;
}

std::vector<ComparisonRecord> ToComparisonRecords(const std::string& sweep_id,
                                                  const analysis::SweepAnalysis& analysis) {
  std::vector<ComparisonRecord> records;
  records.reserve(analysis.comparisons.size());
  for (const analysis::Comparison& c : analysis.comparisons) {
    ComparisonRecord r;
    r.sweep_id = sweep_id;
    r.arm = c.seed.empty() ? c.arm : absl::StrCat(c.arm, " seed=", c.seed);
    r.baseline = c.baseline;
    r.eval_set = c.eval_set;
    r.metric = c.metric;
    r.test = c.test;
    r.statistic = c.statistic;
    r.p = c.p_value;
    r.adjusted_p = c.adjusted_p;
    r.ci_low = c.ci_low;
    r.ci_high = c.ci_high;
    r.n = c.n;
    records.push_back(std::move(r));
  }
  return records;
}

absl::StatusOr<StoredComparisons> ComputeComparisons(StoreReader& reader,
                                                     const std::string& sweep_id,
                                                     const analysis::AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<analysis::EvalResult> results,
                           LoadEvalResults(reader, sweep_id));
  StoredComparisons stored;
  stored.sweep_id = sweep_id;
  if (results.empty()) return stored;
  auto sweep_analysis = analysis::CompareWithBaselines(results, options);
  if (!sweep_analysis.ok()) {
    return Annotate(sweep_analysis.status(), absl::StrCat("sweep ", sweep_id));
  }
  stored.records = ToComparisonRecords(sweep_id, *sweep_analysis);
  stored.warnings = std::move(sweep_analysis->warnings);
  return stored;
}

absl::StatusOr<StoredComparisons> RecomputeComparisons(const std::string& db_path,
                                                       const std::string& id_or_name,
                                                       const analysis::AnalysisOptions& options,
                                                       Store* store) {
  // Opened (and checked to be a pcsweep database of a known schema) before any writer, which
  // would create a missing file.
  PCSWEEP_ASSIGN_OR_RETURN(auto reader, StoreReader::OpenReadOnly(db_path));
  std::unique_ptr<SqliteStore> own_store;
  if (store == nullptr) {
    PCSWEEP_ASSIGN_OR_RETURN(own_store, SqliteStore::Open(db_path));
    store = own_store.get();
  } else {
    store->Flush();  // rows the coordinator has accepted are on disk before they are read
  }
  auto sweep = reader->GetSweep(id_or_name);
  if (!sweep.ok()) return Annotate(sweep.status(), db_path);
  PCSWEEP_ASSIGN_OR_RETURN(StoredComparisons stored,
                           ComputeComparisons(*reader, sweep->sweep.sweep_id, options));
  const absl::Status written =
      store->Write({ReplaceComparisons{stored.sweep_id, stored.records}}).get();
  if (!written.ok()) {
    return Annotate(written, absl::StrCat("storing the comparisons of sweep ", stored.sweep_id,
                                          " in ", db_path));
  }
  return stored;
}

absl::StatusOr<ResultsTableKind> ParseResultsTableKind(absl::string_view name) {
  if (name == "main") return ResultsTableKind::kMain;
  if (name == "ablation") return ResultsTableKind::kAblation;
  if (name == "phenomena") return ResultsTableKind::kPhenomena;
  return absl::InvalidArgumentError(
      absl::StrCat("--table: '", name, "' is not one of main, ablation, phenomena"));
}

namespace {

absl::StatusOr<std::vector<analysis::EvalResult>> LoadNonEmpty(StoreReader& reader,
                                                               const std::string& sweep_id) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<analysis::EvalResult> results,
                           LoadEvalResults(reader, sweep_id));
  if (results.empty()) {
    return absl::NotFoundError(
        absl::StrCat("sweep ", sweep_id,
                     " has no per-example evaluation rows (yet): no succeeded eval, "
                     "train_eval or pretrain job reported examples"));
  }
  return results;
}

}  // namespace

absl::StatusOr<table::Table> BuildResultsTable(StoreReader& reader, const std::string& sweep_id,
                                               ResultsTableKind kind,
                                               const analysis::AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<analysis::EvalResult> results,
                           LoadNonEmpty(reader, sweep_id));
  absl::StatusOr<table::Table> built;
  switch (kind) {
    case ResultsTableKind::kMain:
      built = analysis::MainTable(results, options);
      break;
    case ResultsTableKind::kAblation:
      built = analysis::AblationTable(results, options);
      break;
    case ResultsTableKind::kPhenomena:
      built = analysis::PhenomenaTable(results, options);
      break;
  }
  if (!built.ok()) return Annotate(built.status(), absl::StrCat("sweep ", sweep_id));
  if (kind == ResultsTableKind::kMain || kind == ResultsTableKind::kAblation) {
    // SAE-guided sweeps: which layers were trained and why, and whether the SAE transfers.
    PCSWEEP_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, reader.ListJobs(sweep_id));
    std::vector<analysis::JobReport> reports;
    for (JobRecord& job : jobs) {
      if (job.state != JobState::kSucceeded) continue;
      reports.push_back({std::move(job.name), std::move(job.kind), std::move(job.metrics),
                         std::move(job.outputs)});
    }
    for (std::string& note : analysis::SaeSweepNotes(reports)) built->AddNote(std::move(note));
  }
  return built;
}

absl::StatusOr<std::string> BuildResultsPlot(StoreReader& reader, const std::string& sweep_id,
                                             const analysis::AnalysisOptions& options) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<analysis::EvalResult> results,
                           LoadNonEmpty(reader, sweep_id));
  auto svg = analysis::ResultsPlotSvg(results, options);
  if (!svg.ok()) return Annotate(svg.status(), absl::StrCat("sweep ", sweep_id));
  return svg;
}

// ---------------------------------------------------------------------------------------
// ComparisonUpdater

namespace {
absl::Status ShutDownError() {
  return absl::UnavailableError("comparisons: the coordinator is shutting down");
}
}  // namespace

ComparisonUpdater::ComparisonUpdater(ComparisonUpdaterOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ComparisonUpdater>> ComparisonUpdater::Create(
    ComparisonUpdaterOptions options) {
  if (options.db_path.empty()) {
    return absl::InvalidArgumentError("comparison updater: empty database path");
  }
  if (options.store == nullptr) {
    return absl::InvalidArgumentError("comparison updater: no store to write through");
  }
  return std::unique_ptr<ComparisonUpdater>(new ComparisonUpdater(std::move(options)));
}

void ComparisonUpdater::Start() {
  {
    absl::MutexLock lock(&wake_mu_);
    pass_requested_ = true;  // the first pass: sweeps that finished while no coordinator ran
  }
  thread_ = std::thread([this] { RunThread(); });
}

void ComparisonUpdater::RunThread() {
  while (true) {
    {
      absl::MutexLock lock(&wake_mu_);
      wake_mu_.Await(absl::Condition(
          +[](ComparisonUpdater* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->wake_mu_) {
            return self->pass_requested_ || self->stopping_;
          },
          this));
      if (stopping_) return;
      pass_requested_ = false;
    }
    auto updated = RunOnce();
    if (!updated.ok()) spdlog::warn("comparisons: {}", updated.status().ToString());
  }
}

ComparisonUpdater::~ComparisonUpdater() { Shutdown(); }

void ComparisonUpdater::SweepFinished(const std::string& sweep_id) {
  absl::MutexLock lock(&wake_mu_);
  pass_requested_ = true;
  spdlog::debug("comparisons: sweep {} finished", sweep_id);
}

void ComparisonUpdater::Shutdown() {
  {
    absl::MutexLock lock(&wake_mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&run_mu_);  // waits for a Recompute() in progress
  shut_down_ = true;
}

absl::StatusOr<StoredComparisons> ComparisonUpdater::Recompute(
    const std::string& id_or_name, const analysis::AnalysisOptions& options) {
  absl::MutexLock lock(&run_mu_);
  if (shut_down_) return ShutDownError();
  return RecomputeComparisons(options_.db_path, id_or_name, options, options_.store);
}

absl::StatusOr<std::vector<std::string>> ComparisonUpdater::RunOnce() {
  absl::MutexLock lock(&run_mu_);
  if (shut_down_) return ShutDownError();
  options_.store->Flush();  // the finishing writes are on disk before they are read
  PCSWEEP_ASSIGN_OR_RETURN(auto reader, StoreReader::OpenReadOnly(options_.db_path));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<SweepSummary> sweeps, reader->ListSweeps());
  std::vector<std::string> updated;
  for (const SweepSummary& summary : sweeps) {
    const std::string& id = summary.sweep.sweep_id;
    const int64_t finished_ms = summary.sweep.finished_ms;
    if (finished_ms == 0) continue;
    auto done = done_.find(id);
    if (done != done_.end() && done->second == finished_ms) continue;
    if (done == done_.end()) {
      // First sight in this process: comparisons stored by an earlier run count as current.
      auto existing = reader->ListComparisons(id);
      if (existing.ok() && !existing->empty()) {
        done_[id] = finished_ms;
        continue;
      }
    }
    // Marked before computing: a sweep whose rows the statistics reject is reported once
    // per finish, not at every pass.
    done_[id] = finished_ms;
    auto stored = ComputeComparisons(*reader, id, options_.analysis);
    absl::Status written = stored.status();
    if (stored.ok()) {
      written = options_.store->Write({ReplaceComparisons{id, stored->records}}).get();
    }
    if (!written.ok()) {
      spdlog::warn("comparisons of sweep {}: {}", id, written.ToString());
      continue;
    }
    for (const std::string& warning : stored->warnings) {
      spdlog::warn("comparisons of sweep {}: {}", id, warning);
    }
    if (!stored->records.empty()) {
      spdlog::info("comparisons of sweep {}: {} stored", id, stored->records.size());
    }
    updated.push_back(id);
  }
  return updated;
}

}  // namespace pcsweep::coordinator
