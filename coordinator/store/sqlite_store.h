// SqliteStore: the Store on a SQLite file (SQLiteCpp), the only writer of that file.
//
// One writer thread owns the write connection. Write() only queues; the writer takes every
// queued batch (up to max_batches_per_transaction), applies them in order inside one
// transaction with cached prepared statements, commits, and then resolves their futures. If
// the group transaction fails, each batch is retried alone so one bad batch fails only
// itself. The file is in WAL mode (synchronous=NORMAL), so readers (StoreReader, possibly in
// other processes) never block the writer.
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
#include "coordinator/store/store.h"

namespace SQLite {
class Database;
}

namespace pcsweep::coordinator {

struct SqliteStoreOptions {
  // Upper bound of batches grouped into one transaction.
  int max_batches_per_transaction = 2000;
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

 private:
  struct Pending {
    WriteBatch batch;
    DoneCallback done;
  };
  class Statements;

  SqliteStore(std::unique_ptr<SQLite::Database> db, SqliteStoreOptions options);
  void WriterLoop();
  // Applies `batches` in one transaction. Throws on SQLite errors.
  void ApplyInTransaction(std::deque<Pending>& batches, size_t begin, size_t end);

  const SqliteStoreOptions options_;
  std::unique_ptr<SQLite::Database> db_;  // used by the writer thread only (and Load())
  std::unique_ptr<Statements> statements_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;    // batches ever queued
  int64_t finished_ ABSL_GUARDED_BY(mu_) = 0;  // batches ever resolved
  int64_t transactions_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread writer_;  // started last, joined first
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_STORE_SQLITE_STORE_H_
