#include "coordinator/store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "coordinator/store/schema.h"
#include "coordinator/store/store_reader.h"
#include "nlohmann/json.hpp"

namespace pcsweep::coordinator {

namespace {

// Example rows per multi-row INSERT (11 parameters each; SQLite allows 32766).
constexpr size_t kExampleBlock = 64;
constexpr int kExampleColumns = 11;

std::string ExampleInsertSql(size_t rows) {
  std::string sql =
      "INSERT INTO examples (job_id, attempt, eval_set, variant, question_id, pair_id, image, "
      "phenomenon, label, margin_original, margin_paraphrase) VALUES ";
  for (size_t i = 0; i < rows; ++i)
    sql += i == 0 ? "(?,?,?,?,?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?,?,?,?,?)";
  return sql;
}

}  // namespace

// Prepared statements of the writer connection, compiled once.
class SqliteStore::Statements {
 public:
  explicit Statements(SQLite::Database& db)
      : upsert_sweep(db,
                     "INSERT OR REPLACE INTO sweeps (sweep_id, name, spec_yaml, spec_path, force, "
                     "created_ms, finished_ms, idempotency_key) VALUES (?,?,?,?,?,?,?,?)"),
        upsert_job(db,
                   "INSERT OR REPLACE INTO jobs (job_id, sweep_id, idx, name, stage, kind, "
                   "config_hash, params_json, config_json, depends_on_json, state, attempt, "
                   "max_attempts, worker_id, incarnation_id, progress, progress_message, "
                   "created_ms, started_ms, finished_ms, eta_ms, error, reused_from, log_path, "
                   "preemptions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
        upsert_attempt(db,
                       "INSERT OR REPLACE INTO attempts (job_id, attempt, worker_id, state, "
                       "started_ms, finished_ms, error, exit_code, signal, stderr_tail, log_path, "
                       "preempted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"),
        upsert_worker(db,
                      "INSERT OR REPLACE INTO workers (worker_id, name, host, slots, gpus_json, "
                      "kinds_json, incarnation_id, state, registered_ms, last_heartbeat_ms, "
                      "labels_json) VALUES (?,?,?,?,?,?,?,?,?,?,?)"),
        delete_metrics(db, "DELETE FROM metrics WHERE job_id = ?"),
        delete_outputs(db, "DELETE FROM outputs WHERE job_id = ?"),
        delete_examples(db, "DELETE FROM examples WHERE job_id = ?"),
        insert_metric(db, "INSERT OR REPLACE INTO metrics (job_id, name, value) VALUES (?,?,?)"),
        insert_output(db, "INSERT OR REPLACE INTO outputs (job_id, name, value) VALUES (?,?,?)"),
        insert_example(db, ExampleInsertSql(1)),
        insert_example_block(db, ExampleInsertSql(kExampleBlock)),
        copy_metrics(db,
                     "INSERT OR REPLACE INTO metrics (job_id, name, value) SELECT ?2, name, value "
                     "FROM metrics WHERE job_id = ?1"),
        copy_outputs(db,
                     "INSERT OR REPLACE INTO outputs (job_id, name, value) SELECT ?2, name, value "
                     "FROM outputs WHERE job_id = ?1"),
        copy_examples(db,
                      "INSERT INTO examples (job_id, attempt, eval_set, variant, question_id, "
                      "pair_id, image, phenomenon, label, margin_original, margin_paraphrase) "
                      "SELECT ?2, attempt, eval_set, variant, question_id, pair_id, image, "
                      "phenomenon, label, margin_original, margin_paraphrase FROM examples "
                      "WHERE job_id = ?1 ORDER BY rowid"),
        insert_event(db,
                     "INSERT OR REPLACE INTO events (sweep_id, seq, time_ms, job_id, state, "
                     "attempt, progress, message) VALUES (?,?,?,?,?,?,?,?)"),
        delete_comparisons(db, "DELETE FROM comparisons WHERE sweep_id = ?"),
        insert_comparison(db,
                          "INSERT INTO comparisons (sweep_id, arm, baseline, eval_set, metric, "
                          "test, statistic, p, adjusted_p, ci_low, ci_high, n) VALUES "
                          "(?,?,?,?,?,?,?,?,?,?,?,?)") {}

  void Apply(const Mutation& mutation) {
    std::visit([this](const auto& m) { Do(m); }, mutation);
  }

 private:
  static void Run(SQLite::Statement& s) {
    s.exec();
    s.reset();
    s.clearBindings();
  }
  void Do(const UpsertSweep& m) {
    const SweepRecord& r = m.sweep;
    upsert_sweep.bind(1, r.sweep_id);
    upsert_sweep.bind(2, r.name);
    upsert_sweep.bind(3, r.spec_yaml);
    upsert_sweep.bind(4, r.spec_path);
    upsert_sweep.bind(5, r.force ? 1 : 0);
    upsert_sweep.bind(6, static_cast<int64_t>(r.created_ms));
    upsert_sweep.bind(7, static_cast<int64_t>(r.finished_ms));
    upsert_sweep.bind(8, r.idempotency_key);
    Run(upsert_sweep);
  }
  void Do(const UpsertJob& m) {
    const JobRecord& j = m.job;
    SQLite::Statement& s = upsert_job;
    s.bind(1, j.job_id);
    s.bind(2, j.sweep_id);
    s.bind(3, j.index);
    s.bind(4, j.name);
    s.bind(5, j.stage);
    s.bind(6, j.kind);
    s.bind(7, j.config_hash);
    s.bind(8, nlohmann::json(j.params).dump());
    s.bind(9, j.config_json);
    s.bind(10, nlohmann::json(j.depends_on).dump());
    s.bind(11, static_cast<int>(j.state));
    s.bind(12, j.attempt);
    s.bind(13, j.max_attempts);
    s.bind(14, j.worker_id);
    s.bind(15, j.incarnation_id);
    s.bind(16, j.progress);
    s.bind(17, j.progress_message);
    s.bind(18, static_cast<int64_t>(j.created_ms));
    s.bind(19, static_cast<int64_t>(j.started_ms));
    s.bind(20, static_cast<int64_t>(j.finished_ms));
    s.bind(21, static_cast<int64_t>(j.eta_ms));
    s.bind(22, j.error);
    s.bind(23, j.reused_from);
    s.bind(24, j.log_path);
    s.bind(25, j.preemptions);
    Run(s);
  }
  void Do(const UpsertAttempt& m) {
    const AttemptRecord& a = m.attempt;
    SQLite::Statement& s = upsert_attempt;
    s.bind(1, a.job_id);
    s.bind(2, a.attempt);
    s.bind(3, a.worker_id);
    s.bind(4, static_cast<int>(a.state));
    s.bind(5, static_cast<int64_t>(a.started_ms));
    s.bind(6, static_cast<int64_t>(a.finished_ms));
    s.bind(7, a.error);
    s.bind(8, a.exit_code);
    s.bind(9, a.signal);
    s.bind(10, a.stderr_tail);
    s.bind(11, a.log_path);
    s.bind(12, a.preempted ? 1 : 0);
    Run(s);
  }
  void Do(const UpsertWorker& m) {
    const WorkerRecord& w = m.worker;
    nlohmann::json gpus = nlohmann::json::array();
    for (const GpuRecord& g : w.gpus) {
      gpus.push_back({{"index", g.index}, {"name", g.name}, {"memory_bytes", g.memory_bytes}});
    }
    SQLite::Statement& s = upsert_worker;
    s.bind(1, w.worker_id);
    s.bind(2, w.name);
    s.bind(3, w.host);
    s.bind(4, w.slots);
    s.bind(5, gpus.dump());
    s.bind(6, nlohmann::json(w.kinds).dump());
    s.bind(7, w.incarnation_id);
    s.bind(8, w.state);
    s.bind(9, static_cast<int64_t>(w.registered_ms));
    s.bind(10, static_cast<int64_t>(w.last_heartbeat_ms));
    s.bind(11, nlohmann::json(w.labels).dump());
    Run(s);
  }
  void Do(const PutResult& m) {
    for (SQLite::Statement* s : {&delete_metrics, &delete_outputs, &delete_examples}) {
      s->bind(1, m.job_id);
      Run(*s);
    }
    for (const auto& [name, value] : m.result.metrics) {
      insert_metric.bind(1, m.job_id);
      insert_metric.bind(2, name);
      insert_metric.bind(3, value);
      Run(insert_metric);
    }
    for (const auto& [name, value] : m.result.outputs) {
      insert_output.bind(1, m.job_id);
      insert_output.bind(2, name);
      insert_output.bind(3, value);
      Run(insert_output);
    }
    // Full blocks through the multi-row statement, the rest row by row. Strings are bound
    // without copying: `m` outlives the statement's execution.
    const std::vector<ExampleRow>& rows = m.result.examples;
    size_t next = 0;
    for (; next + kExampleBlock <= rows.size(); next += kExampleBlock) {
      for (size_t i = 0; i < kExampleBlock; ++i) {
        BindExample(insert_example_block, static_cast<int>(i) * kExampleColumns, m.job_id,
                    m.attempt, rows[next + i]);
      }
      insert_example_block.exec();
      insert_example_block.reset();
    }
    for (; next < rows.size(); ++next) {
      BindExample(insert_example, 0, m.job_id, m.attempt, rows[next]);
      insert_example.exec();
      insert_example.reset();
    }
  }
  static void BindExample(SQLite::Statement& s, int offset, const std::string& job_id, int attempt,
                          const ExampleRow& e) {
    s.bindNoCopy(offset + 1, job_id);
    s.bind(offset + 2, attempt);
    s.bindNoCopy(offset + 3, e.eval_set);
    s.bindNoCopy(offset + 4, e.variant);
    s.bindNoCopy(offset + 5, e.question_id);
    s.bindNoCopy(offset + 6, e.pair_id);
    s.bindNoCopy(offset + 7, e.image);
    s.bindNoCopy(offset + 8, e.phenomenon);
    s.bind(offset + 9, e.label);
    s.bind(offset + 10, e.margin_original);
    s.bind(offset + 11, e.margin_paraphrase);
  }
  void Do(const CopyResult& m) {
    for (SQLite::Statement* s : {&delete_metrics, &delete_outputs, &delete_examples}) {
      s->bind(1, m.to_job_id);
      Run(*s);
    }
    for (SQLite::Statement* s : {&copy_metrics, &copy_outputs, &copy_examples}) {
      s->bind(1, m.from_job_id);
      s->bind(2, m.to_job_id);
      Run(*s);
    }
  }
  void Do(const AppendEvent& m) {
    const SweepEvent& e = m.event;
    SQLite::Statement& s = insert_event;
    s.bind(1, e.sweep_id);
    s.bind(2, static_cast<int64_t>(e.seq));
    s.bind(3, static_cast<int64_t>(e.time_ms));
    s.bind(4, e.job_id);
    s.bind(5, static_cast<int>(e.state));
    s.bind(6, e.attempt);
    s.bind(7, e.progress);
    s.bind(8, e.message);
    Run(s);
  }
  void Do(const ReplaceComparisons& m) {
    delete_comparisons.bind(1, m.sweep_id);
    Run(delete_comparisons);
    SQLite::Statement& s = insert_comparison;
    // NaN (a statistic a test does not define) is stored as NULL: SQLite refuses NaN as REAL.
    auto bind_real = [&s](int index, double value) {
      if (std::isnan(value)) {
        s.bind(index);
      } else {
        s.bind(index, value);
      }
    };
    for (const ComparisonRecord& r : m.records) {
      s.bind(1, r.sweep_id);
      s.bind(2, r.arm);
      s.bind(3, r.baseline);
      s.bind(4, r.eval_set);
      s.bind(5, r.metric);
      s.bind(6, r.test);
      bind_real(7, r.statistic);
      bind_real(8, r.p);
      bind_real(9, r.adjusted_p);
      bind_real(10, r.ci_low);
      bind_real(11, r.ci_high);
      s.bind(12, r.n);
      Run(s);
    }
  }

  SQLite::Statement upsert_sweep, upsert_job, upsert_attempt, upsert_worker;
  SQLite::Statement delete_metrics, delete_outputs, delete_examples;
  SQLite::Statement insert_metric, insert_output, insert_example, insert_example_block;
  SQLite::Statement copy_metrics, copy_outputs, copy_examples;
  SQLite::Statement insert_event;
  SQLite::Statement delete_comparisons, insert_comparison;
};

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               SqliteStoreOptions options) {
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db->setBusyTimeout(5000);
    // 16 KiB pages: a completion appends hundreds of example rows, and bigger pages cut the
    // B-tree work per row (about 15 % more rows/s than 4 KiB). Only a new file takes it; an
    // existing one keeps its page size.
    db->exec("PRAGMA page_size=16384");
    // Touch the file: a non-database file fails here with NOTADB, not later.
    db->exec("PRAGMA journal_mode=WAL");
    // FULL: a commit is on disk before Commit() returns, so an acknowledged completion survives
    // a power cut (NORMAL in WAL mode may roll the last commits back). Batching spreads the fsync.
    db->exec("PRAGMA synchronous=FULL");
    db->exec("PRAGMA foreign_keys=OFF");
    // Completions carry hundreds of example rows: a larger page cache and fewer WAL
    // checkpoints keep the writer ahead of them.
    db->exec("PRAGMA cache_size=-65536");
    db->exec("PRAGMA temp_store=MEMORY");
    db->exec("PRAGMA wal_autocheckpoint=10000");
  } catch (const std::exception& e) {
    return SqliteError(e, absl::StrCat("opening database ", path));
  }
  PCSWEEP_RETURN_IF_ERROR(Migrate(*db));
  int synchronous = -1;
  try {
    synchronous = db->execAndGet("PRAGMA synchronous").getInt();
  } catch (const std::exception& e) {
    return SqliteError(e, absl::StrCat("reading PRAGMA synchronous of ", path));
  }
  const bool in_memory =
      path.empty() || path == ":memory:" || absl::StartsWith(path, "file::memory:");
  if (in_memory) options.checkpoint_after_pages = 0;
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(db), options));
  store->synchronous_ = synchronous;
  try {
    store->statements_ = std::make_unique<Statements>(*store->db_);
    if (options.checkpoint_after_pages > 0) {
      store->checkpoint_db_ = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE);
      store->checkpoint_db_->setBusyTimeout(5000);
      // A connection knows the file is in WAL mode only once it has read it.
      store->checkpoint_db_->exec("PRAGMA journal_mode=WAL");
    }
  } catch (const std::exception& e) {
    return SqliteError(e, absl::StrCat("preparing statements on ", path));
  }
  if (store->checkpoint_db_ != nullptr) {
    // Replaces SQLite's automatic checkpoints on the writer's connection.
    sqlite3_wal_hook(store->db_->getHandle(), &SqliteStore::OnWalCommit, store.get());
    store->checkpointer_ = std::thread([s = store.get()] { s->CheckpointerLoop(); });
  }
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

int SqliteStore::OnWalCommit(void* self, sqlite3* db, const char* name, int pages) {
  auto* store = static_cast<SqliteStore*>(self);
  if (pages >= store->options_.checkpoint_after_pages) {
    absl::MutexLock lock(&store->checkpoint_mu_);
    store->checkpoint_wanted_ = true;
  }
  return SQLITE_OK;
}

void SqliteStore::CheckpointerLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&checkpoint_mu_);
      checkpoint_mu_.Await(absl::Condition(
          +[](SqliteStore* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->checkpoint_mu_) {
            return s->checkpoint_wanted_ || s->checkpoint_stopping_;
          },
          this));
      if (checkpoint_stopping_) return;
      checkpoint_wanted_ = false;
    }
    // PASSIVE: copies what no reader still needs without blocking the writer or readers.
    // A busy or failed checkpoint leaves the WAL longer; the next commit asks again.
    int wal_pages = 0;
    int copied_pages = 0;
    const int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_->getHandle(), nullptr,
                                             SQLITE_CHECKPOINT_PASSIVE, &wal_pages, &copied_pages);
    if (rc == SQLITE_OK && copied_pages > 0) {
      absl::MutexLock lock(&checkpoint_mu_);
      ++checkpoints_;
    }
  }
}

int64_t SqliteStore::checkpoints() const {
  absl::MutexLock lock(&checkpoint_mu_);
  return checkpoints_;
}

SqliteStore::SqliteStore(std::unique_ptr<SQLite::Database> db, SqliteStoreOptions options)
    : options_(options), db_(std::move(db)) {}

SqliteStore::~SqliteStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  {
    absl::MutexLock lock(&checkpoint_mu_);
    checkpoint_stopping_ = true;
  }
  if (checkpointer_.joinable()) checkpointer_.join();
  checkpoint_db_.reset();
  statements_.reset();
  // Closing db_, the last connection, checkpoints what is left and removes the WAL.
}

void SqliteStore::WriteAsync(WriteBatch batch, DoneCallback done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(Pending{std::move(batch), std::move(done), options_.clock->Now()});
      ++queued_;
      return;
    }
  }
  if (done) done(absl::CancelledError("the coordinator database is closed"));
}

void SqliteStore::Flush() {
  absl::MutexLock lock(&mu_);
  struct Progress {
    const int64_t* finished;
    int64_t target;
  } progress{&finished_, queued_};
  mu_.Await(absl::Condition(
      +[](Progress* p) { return *p->finished >= p->target; }, &progress));
}

int64_t SqliteStore::queue_depth() const {
  absl::MutexLock lock(&mu_);
  return queued_ - finished_;
}

int64_t SqliteStore::transactions() const {
  absl::MutexLock lock(&mu_);
  return transactions_;
}

void SqliteStore::ApplyInTransaction(std::deque<Pending>& batches, size_t begin, size_t end) {
  SQLite::Transaction transaction(*db_);
  for (size_t i = begin; i < end; ++i) {
    for (const Mutation& m : batches[i].batch) statements_->Apply(m);
  }
  transaction.commit();
}

void SqliteStore::WriterLoop() {
  for (;;) {
    std::deque<Pending> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](SqliteStore* s)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->stopping_ || !s->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // stopping and drained
      const size_t take =
          std::min(queue_.size(), static_cast<size_t>(options_.max_batches_per_transaction));
      for (size_t i = 0; i < take; ++i) {
        work.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<absl::Status> results(work.size());
    int64_t transactions = 0;
    try {
      ApplyInTransaction(work, 0, work.size());
      ++transactions;
    } catch (const std::exception& group_error) {
      // Find the culprit(s): retry one batch per transaction.
      for (size_t i = 0; i < work.size(); ++i) {
        try {
          ApplyInTransaction(work, i, i + 1);
          ++transactions;
        } catch (const std::exception& e) {
          results[i] = SqliteError(e, "writing to the coordinator database");
        }
      }
    }
    {
      absl::MutexLock lock(&mu_);
      transactions_ += transactions;
    }
    const absl::Time written = options_.clock->Now();
    for (size_t i = 0; i < work.size(); ++i) {
      if (options_.hooks != nullptr) {
        options_.hooks->OnBatchWritten(written - work[i].queued_at, results[i]);
      }
      if (work[i].done) work[i].done(results[i]);
    }
    // Counted after the callbacks so that Flush() also waits for them.
    absl::MutexLock lock(&mu_);
    finished_ += static_cast<int64_t>(work.size());
  }
}

absl::StatusOr<StoreSnapshot> SqliteStore::Load() {
  Flush();
  StoreReader reader(db_.get());
  StoreSnapshot snapshot;
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<SweepSummary> sweeps, reader.ListSweeps());
  for (SweepSummary& s : sweeps) snapshot.sweeps.push_back(std::move(s.sweep));
  PCSWEEP_ASSIGN_OR_RETURN(snapshot.jobs, reader.ListAllJobs());
  PCSWEEP_ASSIGN_OR_RETURN(snapshot.attempts, reader.ListAllAttempts());
  PCSWEEP_ASSIGN_OR_RETURN(snapshot.workers, reader.ListWorkers());
  PCSWEEP_ASSIGN_OR_RETURN(snapshot.events, reader.ListEvents(""));
  return snapshot;
}

}  // namespace pcsweep::coordinator
