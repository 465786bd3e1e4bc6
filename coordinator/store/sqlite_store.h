// SqliteStore: the Store on a SQLite file (SQLiteCpp), the only writer of that file.
//
// One writer thread owns the write connection. Write() only queues; the writer takes every
// queued batch (up to max_batches_per_transaction), applies them in order inside one
// transaction with cached prepared statements, commits, and then resolves their futures. If
// the group transaction fails, each batch is retried alone so one bad batch fails only
// itself. The file is in WAL mode with synchronous=FULL (a commit is on disk before its batch
// is reported done); readers (StoreReader, possibly in other processes) never block the writer.
//
// Checkpoints (copying the WAL back into the database file) run on a second thread with its
// own connection, not inside the writer's commits: SQLite lets a passive checkpoint run while
// the writer appends, and with hundreds of example rows per completion the copy is a fifth of
// the write work. The writer wakes the checkpointer once the WAL holds
// checkpoint_after_pages; a failed or partial checkpoint is retried at the next wake-up (the
// WAL only grows meanwhile). Closing the store drains the writer; closing its connection then
// checkpoints what is left, as SQLite always does.
//
// Lifecycle: Open() -> Load() (once, at start-up) -> Write()... -> destroyed (the
// destructor drains the queue, then joins the writer).
// Thread-safety: Write() and Flush() are thread-safe; Load() must not race with writes.
#ifndef PCSWEEP_COORDINATOR_STORE_SQLITE_STORE_H_
#define PCSWEEP_COORDINATOR_STORE_SQLITE_STORE_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "coordinator/metrics/hooks.h"
#include "coordinator/store/store.h"

struct sqlite3;
namespace SQLite {
class Database;
}

namespace pcsweep::coordinator {

struct SqliteStoreOptions {
  // Upper bound of batches grouped into one transaction.
  int max_batches_per_transaction = 2000;
  // WAL size (pages) that wakes the checkpointer thread; 0 = SQLite's own checkpoints inside
  // the writer's commits (as for ":memory:", which has no WAL).
  int checkpoint_after_pages = 2048;  // 32 MiB of 16 KiB pages
  // Metrics: told of every batch's outcome on the writer thread. Not owned, must outlive the
  // store; null = none.
  StoreHooks* hooks = nullptr;
  Clock* clock = Clock::Real();  // times batches for `hooks`; not owned
};

class SqliteStore final : public Store {
 public:
  // Opens or creates `path` (":memory:" for a private in-memory database) and migrates it to
  // the current schema.
  // Possible errors: FailedPrecondition (schema newer than this binary), DataLoss (not a
  // database / corrupt), Unavailable / PermissionDenied / Internal (cannot open or migrate).
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                           SqliteStoreOptions options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void WriteAsync(WriteBatch batch, DoneCallback done) override;
  absl::StatusOr<StoreSnapshot> Load() override;
  void Flush() override;

  // Number of committed transactions (for tests of batching).
  int64_t transactions() const;
  // Checkpoints by the checkpointer thread that copied pages back (for tests).
  int64_t checkpoints() const;
  // Batches queued and not yet committed or failed (GET /metrics).
  int64_t queue_depth() const;
  // PRAGMA synchronous of the writer's connection as read back at Open: 2 (FULL), so that a
  // commit, and hence every acknowledgement, is on disk before it is reported done.
  int synchronous() const { return synchronous_; }

 private:
  struct Pending {
    WriteBatch batch;
    DoneCallback done;
    absl::Time queued_at;
  };
  class Statements;

  SqliteStore(std::unique_ptr<SQLite::Database> db, SqliteStoreOptions options);
  void WriterLoop();
  void CheckpointerLoop();
  // sqlite3_wal_hook: called by the writer after each commit with the WAL's size in pages.
  static int OnWalCommit(void* self, ::sqlite3* db, const char* name, int pages);
  // Applies `batches` in one transaction. Throws on SQLite errors.
  void ApplyInTransaction(std::deque<Pending>& batches, size_t begin, size_t end);

  const SqliteStoreOptions options_;
  std::unique_ptr<SQLite::Database> db_;  // used by the writer thread only (and Load())
  int synchronous_ = -1;                  // set once in Open
  std::unique_ptr<Statements> statements_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;    // batches ever queued
  int64_t finished_ ABSL_GUARDED_BY(mu_) = 0;  // batches ever resolved
  int64_t transactions_ ABSL_GUARDED_BY(mu_) = 0;

  // The checkpointer's own connection and its wake-up state.
  std::unique_ptr<SQLite::Database> checkpoint_db_;
  mutable absl::Mutex checkpoint_mu_;
  bool checkpoint_wanted_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  bool checkpoint_stopping_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  int64_t checkpoints_ ABSL_GUARDED_BY(checkpoint_mu_) = 0;
  std::thread checkpointer_;

  std::thread writer_;  // started last, joined first
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_STORE_SQLITE_STORE_H_
