#include "coordinator/store/schema.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace pcsweep::coordinator {

const std::vector<Migration>& Migrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1, R"sql(
CREATE TABLE sweeps (
  sweep_id TEXT PRIMARY KEY, name TEXT NOT NULL, spec_yaml TEXT NOT NULL, spec_path TEXT,
  force INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL);
CREATE INDEX sweeps_by_name ON sweeps(name, created_ms);
CREATE TABLE jobs (
  job_id TEXT PRIMARY KEY, sweep_id TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
  stage TEXT, kind TEXT NOT NULL, config_hash TEXT NOT NULL, params_json TEXT NOT NULL,
  config_json TEXT NOT NULL, depends_on_json TEXT NOT NULL, state INTEGER NOT NULL,
  attempt INTEGER NOT NULL, max_attempts INTEGER NOT NULL, worker_id TEXT,
  incarnation_id TEXT, progress REAL, progress_message TEXT, created_ms INTEGER,
  started_ms INTEGER, finished_ms INTEGER, eta_ms INTEGER, error TEXT, reused_from TEXT,
  log_path TEXT);
CREATE INDEX jobs_by_sweep ON jobs(sweep_id, idx);
CREATE INDEX jobs_by_hash ON jobs(config_hash, state);
CREATE TABLE attempts (
  job_id TEXT NOT NULL, attempt INTEGER NOT NULL, worker_id TEXT, state INTEGER NOT NULL,
  started_ms INTEGER, finished_ms INTEGER, error TEXT, exit_code INTEGER, signal INTEGER,
  stderr_tail TEXT, log_path TEXT, PRIMARY KEY (job_id, attempt));
CREATE TABLE workers (
  worker_id TEXT PRIMARY KEY, name TEXT, host TEXT, slots INTEGER, gpus_json TEXT,
  kinds_json TEXT, incarnation_id TEXT, state TEXT, registered_ms INTEGER,
  last_heartbeat_ms INTEGER);
CREATE TABLE metrics (
  job_id TEXT NOT NULL, name TEXT NOT NULL, value REAL, PRIMARY KEY (job_id, name));
CREATE TABLE outputs (
  job_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT, PRIMARY KEY (job_id, name));
CREATE TABLE examples (
  job_id TEXT NOT NULL, attempt INTEGER NOT NULL, eval_set TEXT, variant TEXT,
  question_id TEXT, pair_id TEXT, image TEXT, phenomenon TEXT, label INTEGER,
  margin_original REAL, margin_paraphrase REAL);
CREATE INDEX examples_by_job ON examples(job_id);
CREATE TABLE events (
  sweep_id TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER, job_id TEXT,
  state INTEGER, attempt INTEGER, progress REAL, message TEXT, PRIMARY KEY (sweep_id, seq));
CREATE TABLE comparisons (
  sweep_id TEXT, arm TEXT, baseline TEXT, eval_set TEXT, metric TEXT, test TEXT,
  statistic REAL, p REAL, adjusted_p REAL, ci_low REAL, ci_high REAL, n INTEGER);
CREATE INDEX comparisons_by_sweep ON comparisons(sweep_id);
)sql"},
      // SubmitSweep idempotency keys (issue 17): a retried submit finds its sweep.
      {2, R"sql(
ALTER TABLE sweeps ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
CREATE INDEX sweeps_by_idempotency_key ON sweeps(idempotency_key);
)sql"},
      // Preemption and Slurm workers (issue 18): attempts a worker gave back do not count
      // against max_attempts; workers carry labels such as their Slurm job id and node.
      {3, R"sql(
ALTER TABLE jobs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN preempted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN labels_json TEXT NOT NULL DEFAULT '{}';
)sql"},
  };
  return *migrations;
}

absl::StatusOr<int> ReadSchemaVersion(SQLite::Database& db) {
  try {
    if (!db.tableExists("schema_version")) return 0;
    SQLite::Statement query(db, "SELECT MAX(version) FROM schema_version");
    if (!query.executeStep() || query.getColumn(0).isNull()) return 0;
    return query.getColumn(0).getInt();
  } catch (const std::exception& e) {
    return SqliteError(e, "reading schema_version");
  }
}

absl::Status Migrate(SQLite::Database& db, const std::vector<Migration>& migrations) {
  absl::StatusOr<int> version = ReadSchemaVersion(db);
  if (!version.ok()) return version.status();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (*version > latest) {
    return absl::FailedPreconditionError(
        absl::StrCat(db.getFilename(), ": database schema version ", *version,
                     " is newer than this pcsweep understands (", latest, ")"));
  }
  for (const Migration& migration : migrations) {
    if (migration.version <= *version) continue;
    try {
      SQLite::Transaction transaction(db);
      db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      db.exec(migration.sql);
      SQLite::Statement record(db, "INSERT INTO schema_version (version) VALUES (?)");
      record.bind(1, migration.version);
      record.exec();
      transaction.commit();
    } catch (const std::exception& e) {
      return SqliteError(e, absl::StrCat(db.getFilename(), ": migration to schema version ",
                                         migration.version, " failed"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenExistingDatabase(const std::string& path,
                                                                       bool read_only,
                                                                       const std::string& purpose) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such database file"));
  }
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(
        path, read_only ? SQLite::OPEN_READONLY : SQLite::OPEN_READWRITE);
    db->setBusyTimeout(5000);
  } catch (const std::exception& e) {
    return SqliteError(e, absl::StrCat("opening ", path, " ", purpose));
  }
  absl::StatusOr<int> version = ReadSchemaVersion(*db);
  if (!version.ok()) return version.status();
  const int latest = Migrations().back().version;
  if (*version == 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a pcsweep database"));
  }
  if (*version > latest) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": database schema version ", *version,
                                                      " is newer than this pcsweep (", latest,
                                                      ")"));
  }
  return db;
}

absl::Status SqliteError(const std::exception& e, const std::string& context) {
  std::string message = absl::StrCat(context, ": ", e.what());
  if (const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e)) {
    switch (sqlite->getErrorCode()) {
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
        return absl::DataLossError(message);
      case SQLITE_CANTOPEN:
        return absl::NotFoundError(message);
      case SQLITE_IOERR:
      case SQLITE_FULL:
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return absl::UnavailableError(message);
      case SQLITE_READONLY:
      case SQLITE_PERM:
        return absl::PermissionDeniedError(message);
      default:
        break;
    }
  }
  return absl::InternalError(message);
}

}  // namespace pcsweep::coordinator
