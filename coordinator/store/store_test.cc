#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "coordinator/store/schema.h"
#include "coordinator/store/sqlite_store.h"
#include "coordinator/store/store_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::SizeIs;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcsweep_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "coord.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static JobRecord MakeJob(const std::string& sweep_id, int index) {
    JobRecord job;
    job.sweep_id = sweep_id;
    job.index = index;
    job.job_id = sweep_id + "." + std::to_string(index);
    job.name = "smoke[x=" + std::to_string(index) + "]";
    job.stage = "smoke";
    job.kind = "command";
    job.config_hash = "hash" + std::to_string(index);
    job.params = {{"x", std::to_string(index)}};
    job.config_json = R"({"command":"echo"})";
    job.created_ms = 1000;
    return job;
  }

  static std::vector<ExampleRow> MakeRows(int n) {
    std::vector<ExampleRow> rows;
    for (int i = 0; i < n; ++i) {
      ExampleRow row;
      row.eval_set = "psf";
      row.variant = "base";
      row.question_id = "q" + std::to_string(i);
      row.pair_id = "p" + std::to_string(i);
      row.image = "img.png";
      row.phenomenon = "negation";
      row.label = i % 2;
      row.margin_original = 0.5 * i;
      row.margin_paraphrase = -0.25 * i;
      rows.push_back(row);
    }
    return rows;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(StoreTest, Open_CommitsWithSynchronousFull) {
  // FULL (2): a WAL commit is fsync'ed before it returns; NORMAL (1) may lose the last ones.
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->synchronous(), 2);
}

TEST_F(StoreTest, RoundTrip_WritesAreReadBackByLoadAndReader) {
  {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    SweepRecord sweep{"smoke-1", "smoke", "name: smoke\n", "smoke.yaml", false, 1000, 0, ""};
    JobRecord job = MakeJob("smoke-1", 0);
    job.depends_on = {"smoke-1.9"};
    JobRecord done = MakeJob("smoke-1", 1);
    done.state = JobState::kSucceeded;
    done.attempt = 1;
    JobResult result;
    result.metrics = {{"accuracy", 0.75}};
    result.outputs = {{"output_dir", "/tmp/x"}};
    result.examples = MakeRows(3);
    done.preemptions = 1;
    AttemptRecord attempt{done.job_id, 1,     "w1", JobState::kFailed, 5, 6, "preempted", 0, 15,
                          "",          "log", true};
    WorkerRecord worker{"w1",  "w1",    "host", 2, {{0, "H100", 80}},        {"command"},
                        "inc", "alive", 1,      2, {{"slurm_node", "gpu07"}}};
    SweepEvent event{"smoke-1", 1, 1234, done.job_id, JobState::kSucceeded, 1, 1.0, "done"};
    auto f = (*store)->Write({UpsertSweep{sweep}, UpsertJob{job}, UpsertJob{done},
                              PutResult{done.job_id, 1, result}, UpsertAttempt{attempt},
                              UpsertWorker{worker}, AppendEvent{event}});
    ASSERT_TRUE(f.get().ok()) << f.get();
    // Reuse copies the result to another job.
    JobRecord reused = MakeJob("smoke-1", 2);
    reused.state = JobState::kSucceeded;
    reused.reused_from = done.job_id;
    ASSERT_TRUE(
        (*store)->Write({UpsertJob{reused}, CopyResult{done.job_id, reused.job_id}}).get().ok());
  }
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto snapshot = (*store)->Load();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_THAT(snapshot->sweeps, SizeIs(1));
  EXPECT_EQ(snapshot->sweeps[0].spec_path, "smoke.yaml");
  ASSERT_THAT(snapshot->jobs, SizeIs(3));
  EXPECT_THAT(snapshot->jobs[0].depends_on, ElementsAre("smoke-1.9"));
  EXPECT_THAT(snapshot->jobs[0].params, ElementsAre(Pair("x", "0")));
  EXPECT_THAT(snapshot->jobs[1].metrics, ElementsAre(Pair("accuracy", 0.75)));
  EXPECT_EQ(snapshot->jobs[1].preemptions, 1);
  EXPECT_THAT(snapshot->jobs[2].outputs, ElementsAre(Pair("output_dir", "/tmp/x")));
  ASSERT_THAT(snapshot->attempts, SizeIs(1));
  EXPECT_EQ(snapshot->attempts[0].log_path, "log");
  EXPECT_TRUE(snapshot->attempts[0].preempted);
  ASSERT_THAT(snapshot->workers, SizeIs(1));
  EXPECT_EQ(snapshot->workers[0].gpus[0].name, "H100");
  EXPECT_THAT(snapshot->workers[0].labels, ElementsAre(Pair("slurm_node", "gpu07")));
  ASSERT_THAT(snapshot->events, SizeIs(1));
  EXPECT_EQ(snapshot->events[0].message, "done");
  store->reset();

  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto sweeps = (*reader)->ListSweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_THAT(*sweeps, SizeIs(1));
  EXPECT_EQ((*sweeps)[0].total, 3);
  EXPECT_EQ((*sweeps)[0].succeeded, 2);
  EXPECT_EQ((*sweeps)[0].reused, 1);
  EXPECT_EQ((*sweeps)[0].pending, 1);
  auto by_name = (*reader)->GetSweep("smoke");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->sweep.sweep_id, "smoke-1");
  auto examples = (*reader)->ListExamples("smoke-1");
  ASSERT_TRUE(examples.ok());
  ASSERT_THAT(*examples, SizeIs(6));  // 3 of the job and 3 copied to the reusing job
  EXPECT_EQ((*examples)[0].job_id, "smoke-1.1");
  EXPECT_EQ((*examples)[5].job_id, "smoke-1.2");
  EXPECT_EQ((*examples)[2].row.margin_paraphrase, -0.5);
  EXPECT_EQ((*reader)->GetJob("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, Write_GroupsQueuedBatchesIntoFewTransactions) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  std::vector<std::shared_future<absl::Status>> futures;
  for (int i = 0; i < 200; ++i) {
    JobRecord job = MakeJob("s", i);
    futures.push_back((*store)->Write(
        {UpsertJob{job},
         PutResult{job.job_id, 1, JobResult{{{"m", 1.0 * i}}, {}, MakeRows(500), "", 0}}}));
  }
  for (auto& f : futures) ASSERT_TRUE(f.get().ok());
  EXPECT_LT((*store)->transactions(), 200);
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  auto rows = (*reader)->ListJobExamples("s.199");
  ASSERT_TRUE(rows.ok());
  EXPECT_THAT(*rows, SizeIs(500));
}

TEST_F(StoreTest, Checkpoints_RunOnTheirOwnThreadAndKeepTheWalBounded) {
  SqliteStoreOptions options;
  options.checkpoint_after_pages = 64;
  auto store = SqliteStore::Open(path_, options);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string wal = path_ + "-wal";
  uintmax_t largest_wal = 0;
  for (int round = 0; round < 20; ++round) {
    const int64_t checkpoints_before = (*store)->checkpoints();
    std::vector<std::shared_future<absl::Status>> futures;
    for (int i = 0; i < 10; ++i) {
      JobRecord job = MakeJob("s", round * 10 + i);
      futures.push_back((*store)->Write(
          {UpsertJob{job}, PutResult{job.job_id, 1, JobResult{{}, {}, MakeRows(200), "", 0}}}));
    }
    for (auto& f : futures) ASSERT_TRUE(f.get().ok());
    largest_wal = std::max(largest_wal, std::filesystem::file_size(wal));
    // Every round (about 1 MiB) wakes the checkpointer; on a loaded machine its thread can lag
    // the writer by rounds, so wait (bounded) for this round's checkpoint before the next one:
    // the test is about the WAL being reused, not about a race between two threads.
    for (int i = 0; i < 500 && (*store)->checkpoints() == checkpoints_before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_GT((*store)->checkpoints(), 0);
  // 200 jobs x 200 rows are several MiB; a WAL that is never checkpointed would hold them all.
  const uintmax_t database = std::filesystem::file_size(path_);
  EXPECT_GT(database, 1u << 20) << "nothing was copied back into the database file";
  EXPECT_LT(largest_wal, 4 * database) << "the WAL was not reused";
  store->reset();  // closing checkpoints the rest
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok());
  EXPECT_THAT(*(*reader)->ListJobExamples("s.199"), SizeIs(200));
}

TEST_F(StoreTest, Write_OneBadBatchFailsAloneInsideAGroup) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  std::vector<std::shared_future<absl::Status>> futures;
  for (int i = 0; i < 50; ++i) futures.push_back((*store)->Write({UpsertJob{MakeJob("s", i)}}));
  // Drop the table behind the store's back: a failing write must fail with context, and
  // not take down the writer.
  {
    SQLite::Database side(path_, SQLite::OPEN_READWRITE);
    side.setBusyTimeout(5000);
    (*store)->Flush();
    side.exec("DROP TABLE events");
  }
  auto bad =
      (*store)->Write({AppendEvent{SweepEvent{"s", 1, 0, "", JobState::kPending, 0, 0, ""}}});
  auto after = (*store)->Write({UpsertJob{MakeJob("s", 99)}});
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(bad.get().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(bad.get().message()), HasSubstr("coordinator database"));
  EXPECT_TRUE(after.get().ok()) << after.get();
}

TEST_F(StoreTest, FaultInjectingStore_FailsChosenWritesWithoutApplyingThem) {
  auto base = SqliteStore::Open(path_);
  ASSERT_TRUE(base.ok());
  FaultInjectingStore store(base->get());
  store.FailNextWrites(1);
  EXPECT_EQ(store.Write({UpsertJob{MakeJob("s", 0)}}).get().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(store.Write({UpsertJob{MakeJob("s", 1)}}).get().ok());
  store.FailResults(true);
  EXPECT_FALSE(store.Write({PutResult{"s.1", 1, {}}}).get().ok());
  EXPECT_EQ(store.failed_writes(), 2);
  auto snapshot = store.Load();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_THAT(snapshot->jobs, SizeIs(1));
  EXPECT_EQ(snapshot->jobs[0].job_id, "s.1");
}

TEST_F(StoreTest, Migrate_V1FileIsUpgradedByLaterMigrationsKeepingData) {
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    std::vector<Migration> only_v1 = {Migrations()[0]};
    ASSERT_TRUE(Migrate(db, only_v1).ok());
    db.exec("INSERT INTO sweeps VALUES ('a','a','y','p',0,1,0)");
  }
  // A hypothetical next migration shows how a schema change plugs in.
  const int next = Migrations().back().version + 1;
  std::vector<Migration> with_v2 = Migrations();
  with_v2.push_back({next, "ALTER TABLE sweeps ADD COLUMN owner TEXT DEFAULT 'nobody';"});
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    ASSERT_EQ(*ReadSchemaVersion(db), 1);
    ASSERT_TRUE(Migrate(db, with_v2).ok());
    EXPECT_EQ(*ReadSchemaVersion(db), next);
    SQLite::Statement q(db, "SELECT name, owner FROM sweeps");
    ASSERT_TRUE(q.executeStep());
    EXPECT_EQ(q.getColumn(0).getString(), "a");
    EXPECT_EQ(q.getColumn(1).getString(), "nobody");
    // Running again is a no-op.
    ASSERT_TRUE(Migrate(db, with_v2).ok());
  }
  // This binary does not know `next`: it refuses the newer file instead of corrupting it.
  auto store = SqliteStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("newer"));
  auto reader = StoreReader::OpenReadOnly(path_);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, Open_RejectsNonDatabaseFilesAndMissingFilesClearly) {
  {
    std::ofstream out(path_);
    out << "this is not sqlite, just some text that is long enough to be a header........";
  }
  auto store = SqliteStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path_));
  auto reader = StoreReader::OpenReadOnly((dir_ / "missing.db").string());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, OpenExisting_RefusesForeignAndNewerFilesWithoutChangingThem) {
  const std::string foreign = (dir_ / "foreign.db").string();
  { SQLite::Database db(foreign, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE); }
  for (bool read_only : {true, false}) {
    auto db = OpenExistingDatabase(foreign, read_only, "for a test");
    EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition) << db.status();
    EXPECT_THAT(std::string(db.status().message()), HasSubstr("is not a pcsweep database"));
  }
  { ASSERT_TRUE(SqliteStore::Open(path_).ok()); }
  const int newer = Migrations().back().version + 1;
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("UPDATE schema_version SET version = " + std::to_string(newer));
  }
  auto reader = StoreReader::OpenReadOnly(path_);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kFailedPrecondition) << reader.status();
  EXPECT_THAT(std::string(reader.status().message()), HasSubstr("is newer than this pcsweep"));
  auto writer = OpenExistingDatabase(path_, /*read_only=*/false, "for writing comparisons");
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kFailedPrecondition);
  SQLite::Database check(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("SELECT MAX(version) FROM schema_version").getInt(), newer);
}

TEST_F(StoreTest, Reader_SeesCommittedWritesWhileTheStoreIsOpen) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)
                  ->Write({UpsertSweep{SweepRecord{"s", "s", "y", "", false, 1, 0, ""}},
                           UpsertJob{MakeJob("s", 0)}})
                  .get()
                  .ok());
  auto reader = StoreReader::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto jobs = (*reader)->ListJobs("s");
  ASSERT_TRUE(jobs.ok());
  EXPECT_THAT(*jobs, SizeIs(1));
  EXPECT_EQ(*(*reader)->SchemaVersion(), Migrations().back().version);
}

TEST_F(StoreTest, Migration2_KeepsVersion1SweepsAndStoresIdempotencyKeys) {
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ASSERT_TRUE(Migrate(db, {Migrations()[0]}).ok());
    db.exec(
        "INSERT INTO sweeps (sweep_id, name, spec_yaml, spec_path, force, created_ms, "
        "finished_ms) VALUES ('old-1', 'old', 'y', '', 0, 1, 0)");
  }
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  SweepRecord keyed{"new-2", "new", "y", "", false, 2, 0, "key-abc"};
  ASSERT_TRUE((*store)->Write({UpsertSweep{keyed}}).get().ok());
  auto snapshot = (*store)->Load();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_THAT(snapshot->sweeps, SizeIs(2));
  EXPECT_EQ(snapshot->sweeps[0].sweep_id, "old-1");
  EXPECT_EQ(snapshot->sweeps[0].idempotency_key, "");
  EXPECT_EQ(snapshot->sweeps[1].idempotency_key, "key-abc");
}

}  // namespace
}  // namespace pcsweep::coordinator
