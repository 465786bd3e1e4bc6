#include "coordinator/store/store_reader.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "coordinator/store/schema.h"
#include "nlohmann/json.hpp"

namespace pcsweep::coordinator {
namespace {

constexpr char kJobColumns[] =
    "job_id, sweep_id, idx, name, stage, kind, config_hash, params_json, config_json, "
    "depends_on_json, state, attempt, max_attempts, worker_id, incarnation_id, progress, "
    "progress_message, created_ms, started_ms, finished_ms, eta_ms, error, reused_from, log_path, "
    "preemptions";

std::string Text(SQLite::Statement& q, int column) {
  const SQLite::Column c = q.getColumn(column);
  return c.isNull() ? std::string() : c.getString();
}
int64_t Int(SQLite::Statement& q, int column) { return q.getColumn(column).getInt64(); }
double Real(SQLite::Statement& q, int column) { return q.getColumn(column).getDouble(); }

JobRecord JobFromRow(SQLite::Statement& q) {
  JobRecord job;
  job.job_id = Text(q, 0);
  job.sweep_id = Text(q, 1);
  job.index = static_cast<int>(Int(q, 2));
  job.name = Text(q, 3);
  job.stage = Text(q, 4);
  job.kind = Text(q, 5);
  job.config_hash = Text(q, 6);
  job.params = nlohmann::json::parse(Text(q, 7)).get<std::map<std::string, std::string>>();
  job.config_json = Text(q, 8);
  job.depends_on = nlohmann::json::parse(Text(q, 9)).get<std::vector<std::string>>();
  job.state = static_cast<JobState>(Int(q, 10));
  job.attempt = static_cast<int>(Int(q, 11));
  job.max_attempts = static_cast<int>(Int(q, 12));
  job.worker_id = Text(q, 13);
  job.incarnation_id = Text(q, 14);
  job.progress = Real(q, 15);
  job.progress_message = Text(q, 16);
  job.created_ms = Int(q, 17);
  job.started_ms = Int(q, 18);
  job.finished_ms = Int(q, 19);
  job.eta_ms = Int(q, 20);
  job.error = Text(q, 21);
  job.reused_from = Text(q, 22);
  job.log_path = Text(q, 23);
  job.preemptions = static_cast<int>(Int(q, 24));
  return job;
}

AttemptRecord AttemptFromRow(SQLite::Statement& q) {
  AttemptRecord a;
  a.job_id = Text(q, 0);
  a.attempt = static_cast<int>(Int(q, 1));
  a.worker_id = Text(q, 2);
  a.state = static_cast<JobState>(Int(q, 3));
  a.started_ms = Int(q, 4);
  a.finished_ms = Int(q, 5);
  a.error = Text(q, 6);
  a.exit_code = static_cast<int>(Int(q, 7));
  a.signal = static_cast<int>(Int(q, 8));
  a.stderr_tail = Text(q, 9);
  a.log_path = Text(q, 10);
  a.preempted = Int(q, 11) != 0;
  return a;
}

StoredExample ExampleFromRow(SQLite::Statement& q) {
  StoredExample e;
  e.job_id = Text(q, 0);
  e.attempt = static_cast<int>(Int(q, 1));
  e.row.eval_set = Text(q, 2);
  e.row.variant = Text(q, 3);
  e.row.question_id = Text(q, 4);
  e.row.pair_id = Text(q, 5);
  e.row.image = Text(q, 6);
  e.row.phenomenon = Text(q, 7);
  e.row.label = static_cast<int>(Int(q, 8));
  e.row.margin_original = Real(q, 9);
  e.row.margin_paraphrase = Real(q, 10);
  return e;
}

// Runs `body`, turning SQLiteCpp and JSON exceptions into a Status naming `what`.
template <typename Fn>
auto Guard(const std::string& what, Fn&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(what, ": malformed JSON column: ", e.what()));
  } catch (const std::exception& e) {
    return SqliteError(e, what);
  }
}

// Adds metrics and outputs to `jobs` (keyed lookups through the primary-key index).
void AttachResults(SQLite::Database& db, std::vector<JobRecord>& jobs) {
  SQLite::Statement metrics(db, "SELECT name, value FROM metrics WHERE job_id = ?");
  SQLite::Statement outputs(db, "SELECT name, value FROM outputs WHERE job_id = ?");
  for (JobRecord& job : jobs) {
    if (job.state != JobState::kSucceeded) continue;
    metrics.reset();
    metrics.bind(1, job.job_id);
    while (metrics.executeStep()) job.metrics[Text(metrics, 0)] = Real(metrics, 1);
    outputs.reset();
    outputs.bind(1, job.job_id);
    while (outputs.executeStep()) job.outputs[Text(outputs, 0)] = Text(outputs, 1);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreReader>> StoreReader::OpenReadOnly(const std::string& path) {
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<SQLite::Database> db,
                           OpenExistingDatabase(path, /*read_only=*/true, "read-only"));
  auto reader = std::make_unique<StoreReader>(db.get());
  reader->owned_db_ = std::move(db);
  return reader;
}

StoreReader::StoreReader(SQLite::Database* db) : db_(db) {}
StoreReader::~StoreReader() = default;

absl::StatusOr<int> StoreReader::SchemaVersion() {
  absl::StatusOr<int> version = ReadSchemaVersion(*db_);
  if (!version.ok()) return version.status();
  return *version;
}

absl::StatusOr<std::vector<SweepSummary>> StoreReader::ListSweeps() {
  return Guard("listing sweeps", [&]() -> absl::StatusOr<std::vector<SweepSummary>> {
    std::vector<SweepSummary> sweeps;
    std::map<std::string, size_t> index;
    SQLite::Statement q(*db_,
                        "SELECT sweep_id, name, spec_yaml, spec_path, force, created_ms, "
                        "finished_ms, idempotency_key FROM sweeps ORDER BY created_ms, rowid");
    while (q.executeStep()) {
      SweepSummary s;
      s.sweep.sweep_id = Text(q, 0);
      s.sweep.name = Text(q, 1);
      s.sweep.spec_yaml = Text(q, 2);
      s.sweep.spec_path = Text(q, 3);
      s.sweep.force = Int(q, 4) != 0;
      s.sweep.created_ms = Int(q, 5);
      s.sweep.finished_ms = Int(q, 6);
      s.sweep.idempotency_key = Text(q, 7);
      index[s.sweep.sweep_id] = sweeps.size();
      sweeps.push_back(std::move(s));
    }
    SQLite::Statement counts(*db_,
                             "SELECT sweep_id, state, reused_from IS NOT NULL AND reused_from != "
                             "'', COUNT(*) FROM jobs GROUP BY 1, 2, 3");
    while (counts.executeStep()) {
      auto it = index.find(Text(counts, 0));
      if (it == index.end()) continue;
      SweepSummary& s = sweeps[it->second];
      const int n = static_cast<int>(Int(counts, 3));
      s.total += n;
      switch (static_cast<JobState>(Int(counts, 1))) {
        case JobState::kUnspecified:
          break;
        case JobState::kPending:
          s.pending += n;
          break;
        case JobState::kLeased:
          s.leased += n;
          break;
        case JobState::kRunning:
          s.running += n;
          break;
        case JobState::kSucceeded:
          s.succeeded += n;
          if (Int(counts, 2) != 0) s.reused += n;
          break;
        case JobState::kFailed:
          s.failed += n;
          break;
        case JobState::kCancelled:
          s.cancelled += n;
          break;
      }
    }
    return sweeps;
  });
}

absl::StatusOr<SweepSummary> StoreReader::GetSweep(const std::string& id_or_name) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<SweepSummary> sweeps, ListSweeps());
  for (const SweepSummary& s : sweeps) {
    if (s.sweep.sweep_id == id_or_name) return s;
  }
  for (auto it = sweeps.rbegin(); it != sweeps.rend(); ++it) {
    if (it->sweep.name == id_or_name) return *it;
  }
  return absl::NotFoundError(absl::StrCat("no sweep with id or name '", id_or_name, "'"));
}

absl::StatusOr<std::vector<JobRecord>> StoreReader::ListJobs(const std::string& sweep_id) {
  return Guard(absl::StrCat("listing jobs of sweep ", sweep_id),
               [&]() -> absl::StatusOr<std::vector<JobRecord>> {
                 std::vector<JobRecord> jobs;
                 SQLite::Statement q(*db_,
                                     absl::StrCat("SELECT ", kJobColumns,
                                                  " FROM jobs WHERE sweep_id = ? ORDER BY idx"));
                 q.bind(1, sweep_id);
                 while (q.executeStep()) jobs.push_back(JobFromRow(q));
                 AttachResults(*db_, jobs);
                 return jobs;
               });
}

absl::StatusOr<JobRecord> StoreReader::GetJob(const std::string& job_id) {
  return Guard(absl::StrCat("reading job ", job_id), [&]() -> absl::StatusOr<JobRecord> {
    std::vector<JobRecord> jobs;
    SQLite::Statement q(*db_, absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE job_id = ?"));
    q.bind(1, job_id);
    while (q.executeStep()) jobs.push_back(JobFromRow(q));
    if (jobs.empty()) return absl::NotFoundError(absl::StrCat("no job with id '", job_id, "'"));
    AttachResults(*db_, jobs);
    return jobs[0];
  });
}

absl::StatusOr<std::vector<JobRecord>> StoreReader::ListAllJobs() {
  return Guard("listing all jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
    std::vector<JobRecord> jobs;
    SQLite::Statement q(*db_,
                        absl::StrCat("SELECT ", kJobColumns, " FROM jobs ORDER BY sweep_id, idx"));
    while (q.executeStep()) jobs.push_back(JobFromRow(q));
    AttachResults(*db_, jobs);
    return jobs;
  });
}

absl::StatusOr<std::vector<AttemptRecord>> StoreReader::ListAttempts(const std::string& job_id) {
  return Guard(absl::StrCat("listing attempts of job ", job_id),
               [&]() -> absl::StatusOr<std::vector<AttemptRecord>> {
                 std::vector<AttemptRecord> attempts;
                 SQLite::Statement q(
                     *db_,
                     "SELECT job_id, attempt, worker_id, state, started_ms, "
                     "finished_ms, error, exit_code, signal, stderr_tail, log_path, "
                     "preempted FROM attempts WHERE job_id = ? ORDER BY attempt");
                 q.bind(1, job_id);
                 while (q.executeStep()) attempts.push_back(AttemptFromRow(q));
                 return attempts;
               });
}

absl::StatusOr<std::vector<AttemptRecord>> StoreReader::ListAllAttempts() {
  return Guard("listing attempts", [&]() -> absl::StatusOr<std::vector<AttemptRecord>> {
    std::vector<AttemptRecord> attempts;
    SQLite::Statement q(*db_,
                        "SELECT job_id, attempt, worker_id, state, started_ms, finished_ms, error, "
                        "exit_code, signal, stderr_tail, log_path, preempted FROM attempts "
                        "ORDER BY job_id, attempt");
    while (q.executeStep()) attempts.push_back(AttemptFromRow(q));
    return attempts;
  });
}

absl::StatusOr<std::vector<StoredExample>> StoreReader::ListExamples(const std::string& sweep_id) {
  return Guard(absl::StrCat("listing examples of sweep ", sweep_id),
               [&]() -> absl::StatusOr<std::vector<StoredExample>> {
                 std::vector<StoredExample> rows;
                 SQLite::Statement q(
                     *db_,
                     "SELECT e.job_id, e.attempt, e.eval_set, e.variant, e.question_id, "
                     "e.pair_id, e.image, e.phenomenon, e.label, e.margin_original, "
                     "e.margin_paraphrase FROM jobs j JOIN examples e ON e.job_id = j.job_id "
                     "WHERE j.sweep_id = ? ORDER BY j.idx, e.rowid");
                 q.bind(1, sweep_id);
                 while (q.executeStep()) rows.push_back(ExampleFromRow(q));
                 return rows;
               });
}

absl::StatusOr<std::vector<StoredExample>> StoreReader::ListJobExamples(const std::string& job_id) {
  return Guard(absl::StrCat("listing examples of job ", job_id),
               [&]() -> absl::StatusOr<std::vector<StoredExample>> {
                 std::vector<StoredExample> rows;
                 SQLite::Statement q(*db_,
                                     "SELECT job_id, attempt, eval_set, variant, question_id, "
                                     "pair_id, image, phenomenon, label, margin_original, "
                                     "margin_paraphrase FROM examples WHERE job_id = ? "
                                     "ORDER BY rowid");
                 q.bind(1, job_id);
                 while (q.executeStep()) rows.push_back(ExampleFromRow(q));
                 return rows;
               });
}

absl::StatusOr<std::vector<SweepEvent>> StoreReader::ListEvents(const std::string& sweep_id,
                                                                int64_t after_seq) {
  return Guard("listing events", [&]() -> absl::StatusOr<std::vector<SweepEvent>> {
    std::vector<SweepEvent> events;
    const std::string sql =
        "SELECT sweep_id, seq, time_ms, job_id, state, attempt, progress, message FROM events " +
        std::string(sweep_id.empty() ? "WHERE seq > ? ORDER BY sweep_id, seq"
                                     : "WHERE seq > ? AND sweep_id = ? ORDER BY seq");
    SQLite::Statement q(*db_, sql);
    q.bind(1, static_cast<int64_t>(after_seq));
    if (!sweep_id.empty()) q.bind(2, sweep_id);
    while (q.executeStep()) {
      SweepEvent e;
      e.sweep_id = Text(q, 0);
      e.seq = Int(q, 1);
      e.time_ms = Int(q, 2);
      e.job_id = Text(q, 3);
      e.state = static_cast<JobState>(Int(q, 4));
      e.attempt = static_cast<int>(Int(q, 5));
      e.progress = Real(q, 6);
      e.message = Text(q, 7);
      events.push_back(std::move(e));
    }
    return events;
  });
}

absl::StatusOr<std::vector<WorkerRecord>> StoreReader::ListWorkers() {
  return Guard("listing workers", [&]() -> absl::StatusOr<std::vector<WorkerRecord>> {
    std::vector<WorkerRecord> workers;
    SQLite::Statement q(*db_,
                        "SELECT worker_id, name, host, slots, gpus_json, kinds_json, "
                        "incarnation_id, state, registered_ms, last_heartbeat_ms, labels_json "
                        "FROM workers "
                        "ORDER BY worker_id");
    while (q.executeStep()) {
      WorkerRecord w;
      w.worker_id = Text(q, 0);
      w.name = Text(q, 1);
      w.host = Text(q, 2);
      w.slots = static_cast<int>(Int(q, 3));
      for (const auto& g : nlohmann::json::parse(Text(q, 4))) {
        w.gpus.push_back(GpuRecord{g.at("index").get<int>(), g.at("name").get<std::string>(),
                                   g.at("memory_bytes").get<int64_t>()});
      }
      w.kinds = nlohmann::json::parse(Text(q, 5)).get<std::vector<std::string>>();
      w.incarnation_id = Text(q, 6);
      w.state = Text(q, 7);
      w.registered_ms = Int(q, 8);
      w.last_heartbeat_ms = Int(q, 9);
      w.labels = nlohmann::json::parse(Text(q, 10)).get<std::map<std::string, std::string>>();
      workers.push_back(std::move(w));
    }
    return workers;
  });
}

absl::StatusOr<std::vector<ComparisonRecord>> StoreReader::ListComparisons(
    const std::string& sweep_id) {
  return Guard("listing comparisons", [&]() -> absl::StatusOr<std::vector<ComparisonRecord>> {
    std::vector<ComparisonRecord> rows;
    SQLite::Statement q(*db_,
                        "SELECT sweep_id, arm, baseline, eval_set, metric, test, statistic, p, "
                        "adjusted_p, ci_low, ci_high, n FROM comparisons WHERE sweep_id = ? "
                        "ORDER BY rowid");
    q.bind(1, sweep_id);
    while (q.executeStep()) {
      ComparisonRecord c;
      c.sweep_id = Text(q, 0);
      c.arm = Text(q, 1);
      c.baseline = Text(q, 2);
      c.eval_set = Text(q, 3);
      c.metric = Text(q, 4);
      c.test = Text(q, 5);
      c.statistic = Real(q, 6);
      c.p = Real(q, 7);
      c.adjusted_p = Real(q, 8);
      c.ci_low = Real(q, 9);
      c.ci_high = Real(q, 10);
      c.n = Int(q, 11);
      rows.push_back(std::move(c));
    }
    return rows;
  });
}

}  // namespace pcsweep::coordinator
