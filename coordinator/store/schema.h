// The coordinator database schema and its migrations. The file records its version in the
// `schema_version` table; opening a file runs every migration above that version, each in
// its own transaction. To change the schema, append a migration to Migrations() — never edit
// a released one.
// Thread-safety: functions operate on the connection they are given; no shared state.
#ifndef PCSWEEP_COORDINATOR_STORE_SCHEMA_H_
#define PCSWEEP_COORDINATOR_STORE_SCHEMA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace SQLite {
class Database;
}

namespace pcsweep::coordinator {

struct Migration {
  int version;      // the version the file has after this migration
  std::string sql;  // one or more statements
};

// The migrations of this binary, version 1, 2, ... in order.
const std::vector<Migration>& Migrations();

// The version recorded in the file; 0 for a file without `schema_version` (new file).
// Possible errors: Internal (SQLite error).
absl::StatusOr<int> ReadSchemaVersion(SQLite::Database& db);

// Brings `db` up to the last of `migrations`.
// Possible errors: FailedPrecondition (file newer than `migrations`), Internal / DataLoss
// (a migration failed; the file keeps its previous version).
absl::Status Migrate(SQLite::Database& db, const std::vector<Migration>& migrations = Migrations());

// Opens an existing pcsweep database file without migrating it, for readers and for writers
// of derived tables (`read_only` or read-write; 5 s busy timeout). `purpose` names the use in
// errors. Possible errors: NotFound (no file), FailedPrecondition (not a pcsweep database,
// or a schema newer than this binary), DataLoss / Unavailable / Internal (SQLite).
absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenExistingDatabase(const std::string& path,
                                                                       bool read_only,
                                                                       const std::string& purpose);

// Converts a SQLiteCpp exception into a Status: DataLoss for corrupt files, Unavailable for
// I/O / full / busy conditions, Internal otherwise; the message starts with `context`.
absl::Status SqliteError(const std::exception& e, const std::string& context);

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_STORE_SCHEMA_H_
