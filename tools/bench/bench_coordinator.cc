// pcsweep-bench-coordinator: measures the coordinator's throughput. Starts a CoordinatorServer
// in-process (port 0, temporary database), submits one sweep of trivial `command` cells, and
// lets N simulated workers lease them with AcquireJob and complete each with K per-example
// rows. Every simulated worker is registered under its own name with its own channel (its own
// TCP connection) and runs Acquire -> Complete -> Acquire... one call at a time, but they are
// driven by gRPC's callback API on a few threads instead of N OS threads, and the example rows
// of CompleteJob are serialised once and sent as bytes: on a small machine the simulated
// workers would otherwise spend the CPU the coordinator is measured with (a real worker builds
// its request on its own machine). Prints completions/s, AcquireJob latency p50/p99 and the
// database size; then, when Debian's python3-optuna is installed, runs the Optuna + SQLite
// anchor (shared/anchors/optuna_anchor.py, found through --anchor or $PCSWEEP_SHARED_ROOT) in
// the same run and prints the ratio of our completions/s to its trials/s. A program that
// prints figures, not a test.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/logging/logging.h"
#include "common/rpc/rpc.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/store/sqlite_store.h"
#include "nlohmann/json.hpp"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::bench {
namespace {

using ::pcsweep::coordinator::CoordinatorServer;
using ::pcsweep::coordinator::CoordinatorServerOptions;

namespace fs = std::filesystem;
namespace v1 = ::pcsweep::v1;

struct Flags {
  int workers = 256;
  int jobs = 10000;
  int rows = 500;
  std::string db;  // default: a fresh temporary file
  bool keep_db = false;
  std::string anchor;  // default: $PCSWEEP_SHARED_ROOT/anchors/, else ../shared/anchors/
  int anchor_procs = 8;
  int anchor_cells = 500;
  bool skip_anchor = false;
  bool store_only = false;
  bool inline_checkpoints = false;  // --store-only with SQLite's checkpoints inside commits
};

// Shared by every simulated worker.
struct Run {
  int jobs = 0;
  std::atomic<int> completed{0};
  std::atomic<int> refused{0};
  // Simulated workers still going; the last one to stop notifies `all_stopped`.
  std::atomic<int> running{0};
  absl::Notification all_stopped;
  grpc::Slice example_bytes;  // the rows of every CompleteJobRequest, serialised once
};

// One simulated worker: its own channel and registration, one call in flight at a time. Its
// methods run on gRPC callback threads one after the other (each call is started by the
// previous one's callback), so its fields need no lock.
class SimulatedWorker {
 public:
  SimulatedWorker(int index, const std::string& address, Run* run)
      : index_(index),
        run_(run),
        channel_(NewChannel(address)),
        stub_(v1::Coordinator::NewStub(channel_)),
        generic_(channel_) {}

  // Registers (blocking). Returns false and sets error() when it fails.
  bool Register() {
    std::mt19937_64 random(index_ * 7919 + getpid());
    incarnation_ = absl::StrFormat("%016x", random());
    v1::RegisterWorkerRequest request;
    request.set_host("bench");
    request.set_slots(1);
    request.set_incarnation_id(incarnation_);
    request.set_worker_name(absl::StrCat("bench-", index_));
    request.add_kinds("command");
    v1::RegisterWorkerResponse response;
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(30), "");
    context.set_wait_for_ready(true);
    grpc::Status status = stub_->RegisterWorker(&context, request, &response);
    if (!status.ok()) {
      error_ = absl::StrCat("RegisterWorker: ", status.error_message());
      return false;
    }
    worker_id_ = response.worker_id();
    heartbeat_every_ = absl::Milliseconds(std::max<int64_t>(
        500, response.heartbeat_interval_ms() > 0 ? response.heartbeat_interval_ms() : 5000));
    return true;
  }

  void Start() {
    last_heartbeat_ = absl::Now();
    Acquire();
  }

  const std::vector<double>& acquire_ms_with_job() const { return acquire_ms_with_job_; }
  const std::vector<double>& acquire_ms_all() const { return acquire_ms_all_; }
  const std::string& error() const { return error_; }

 private:
  static std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
    // Its own TCP connection: a local subchannel pool stops gRPC from sharing one connection
    // between channels with equal arguments.
    grpc::ChannelArguments args = rpc::DefaultChannelArguments();
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }

  void Stop(std::string error = {}) {
    if (!error.empty()) error_ = std::move(error);
    if (run_->running.fetch_sub(1) == 1) run_->all_stopped.Notify();
  }

  void Acquire() {
    if (run_->completed.load() >= run_->jobs) return Stop();
    if (absl::Now() - last_heartbeat_ > heartbeat_every_) return Heartbeat();
    acquire_request_.Clear();
    acquire_request_.set_worker_id(worker_id_);
    acquire_request_.set_incarnation_id(incarnation_);
    acquire_request_.set_free_slots(1);
    acquire_request_.set_wait_ms(200);
    acquire_response_.Clear();
    context_ = std::make_unique<grpc::ClientContext>();
    rpc::PrepareContext(context_.get(), absl::Seconds(30), "");
    const absl::Time start = absl::Now();
    stub_->async()->AcquireJob(
        context_.get(), &acquire_request_, &acquire_response_, [this, start](grpc::Status status) {
          const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
          if (!status.ok()) return Stop(absl::StrCat("AcquireJob: ", status.error_message()));
          acquire_ms_all_.push_back(ms);
          if (acquire_response_.assignments().empty()) return Acquire();
          acquire_ms_with_job_.push_back(ms);
          next_assignment_ = 0;
          Complete();
        });
  }

  // Completes the assignments of the last AcquireJob one by one, then acquires again.
  void Complete() {
    if (next_assignment_ >= acquire_response_.assignments_size()) return Acquire();
    const v1::Assignment& assignment = acquire_response_.assignments(next_assignment_++);
    // Everything but the rows; the wire format of two messages back to back is that of their
    // merge, so the rows serialised once are appended as they are.
    v1::CompleteJobRequest head;
    head.set_worker_id(worker_id_);
    head.set_incarnation_id(incarnation_);
    head.set_job_id(assignment.job_id());
    head.set_attempt(assignment.attempt());
    (*head.mutable_metrics())["value"] = run_->completed.load();
    const grpc::Slice slices[] = {grpc::Slice(head.SerializeAsString()), run_->example_bytes};
    complete_request_ = grpc::ByteBuffer(slices, 2);
    complete_response_.Clear();
    context_ = std::make_unique<grpc::ClientContext>();
    rpc::PrepareContext(context_.get(), absl::Seconds(60), "");
    generic_.UnaryCall(context_.get(), "/pcsweep.v1.Coordinator/CompleteJob", grpc::StubOptions(),
                       &complete_request_, &complete_response_, [this](grpc::Status status) {
                         if (status.ok()) {
                           run_->completed.fetch_add(1);
                         } else {
                           run_->refused.fetch_add(1);
                         }
                         Complete();
                       });
  }

  void Heartbeat() {
    heartbeat_request_.Clear();
    heartbeat_request_.set_worker_id(worker_id_);
    heartbeat_request_.set_incarnation_id(incarnation_);
    context_ = std::make_unique<grpc::ClientContext>();
    rpc::PrepareContext(context_.get(), absl::Seconds(10), "");
    last_heartbeat_ = absl::Now();
    stub_->async()->Heartbeat(context_.get(), &heartbeat_request_, &heartbeat_response_,
                              [this](grpc::Status) { Acquire(); });
  }

  const int index_;
  Run* const run_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  grpc::GenericStub generic_;
  std::string worker_id_;
  std::string incarnation_;
  absl::Duration heartbeat_every_ = absl::Seconds(5);
  absl::Time last_heartbeat_;

  std::unique_ptr<grpc::ClientContext> context_;  // of the call in flight
  v1::AcquireJobRequest acquire_request_;
  v1::AcquireJobResponse acquire_response_;
  int next_assignment_ = 0;
  grpc::ByteBuffer complete_request_;
  grpc::ByteBuffer complete_response_;
  v1::HeartbeatRequest heartbeat_request_;
  v1::HeartbeatResponse heartbeat_response_;

  std::vector<double> acquire_ms_with_job_;  // AcquireJob calls that returned a job
  std::vector<double> acquire_ms_all_;
  std::string error_;
};

// The example rows every simulated completion carries, as the serialised bytes of a
// CompleteJobRequest holding only them.
std::string SerializedExampleRows(int rows) {
  v1::CompleteJobRequest request;
  for (int r = 0; r < rows; ++r) {
    v1::ExampleRow* row = request.add_examples();
    row->set_eval_set("bench");
    row->set_variant(r % 2 ? "adapted" : "base");
    row->set_question_id(absl::StrCat("q", r / 4));
    row->set_pair_id(absl::StrCat("p", r));
    row->set_image(absl::StrCat("images/", r / 4, ".png"));
    row->set_phenomenon("lexical");
    row->set_label(r % 2);
    row->set_margin_original(0.25 + r * 1e-3);
    row->set_margin_paraphrase(-0.125 + r * 1e-3);
  }
  return request.SerializeAsString();
}

std::unique_ptr<v1::Coordinator::Stub> NewStub(const std::string& address) {
  return v1::Coordinator::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), rpc::DefaultChannelArguments()));
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index =
      std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  return values[index];
}

std::string SweepYaml(int jobs) {
  std::string xs;
  for (int i = 0; i < jobs; ++i) absl::StrAppend(&xs, i == 0 ? "" : ", ", i);
  return absl::StrCat("name: bench\njob:\n  kind: command\n  command: \"true {x}\"\ngrid:\n  x: [",
                      xs, "]\nmax_attempts: 3\n");
}

int64_t FileSize(const fs::path& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

// --anchor, else $PCSWEEP_SHARED_ROOT/anchors/optuna_anchor.py, else the shared/ folder beside
// the source tree.
std::string AnchorPath(const Flags& flags) {
  if (!flags.anchor.empty()) return flags.anchor;
  const char* shared = std::getenv("PCSWEEP_SHARED_ROOT");
  const std::string root = shared != nullptr && *shared != '\0'
                               ? std::string(shared)
                               : std::string(PCSWEEP_SOURCE_ROOT_DIR "/../shared");
  return root + "/anchors/optuna_anchor.py";
}

// Runs the Optuna anchor and returns its trials/s; a negative number when it is skipped
// (optuna not installed), and an error when it cannot run.
absl::StatusOr<double> RunOptunaAnchor(const Flags& flags) {
  if (flags.skip_anchor) return -1;
  if (std::system("/usr/bin/python3 -c 'import optuna' >/dev/null 2>&1") != 0) {
    std::cout << "optuna anchor: skipped (Debian's python3-optuna is not installed)\n";
    return -1;
  }
  const std::string anchor = AnchorPath(flags);
  if (!fs::exists(anchor)) {
    return absl::NotFoundError(absl::StrCat(
        "optuna anchor: ", anchor,
        " not found (pass --anchor FILE or set PCSWEEP_SHARED_ROOT, or --skip-anchor)"));
  }
  const std::string command =
      absl::StrCat("/usr/bin/python3 '", anchor, "' --procs ", flags.anchor_procs, " --cells ",
                   flags.anchor_cells, " 2>&1");
  std::cout << "optuna anchor: " << command << std::endl;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr)
    return absl::InternalError(absl::StrCat("optuna anchor: cannot run ", command));
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int rc = pclose(pipe);
  const size_t brace = output.rfind('{');
  if (rc != 0 || brace == std::string::npos) {
    return absl::InternalError(
        absl::StrCat("optuna anchor failed (exit ", rc, "): ", absl::StripAsciiWhitespace(output)));
  }
  try {
    const auto json = nlohmann::json::parse(output.substr(brace));
    std::cout << "optuna anchor: " << json.dump() << "\n";
    return json.at("trials_per_s").get<double>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat("optuna anchor: unreadable output (", e.what(),
                                            "): ", absl::StripAsciiWhitespace(output)));
  }
}

// --store-only: the SQLite writer alone, without gRPC or the scheduler. Queues what a
// completion writes (job and attempt rows, the result with its rows, then the state event)
// for every cell from this thread and waits until the store has committed it all: the
// ceiling the single writer thread puts on completions/s.
int RunStoreOnly(const Flags& flags, const fs::path& db) {
  coordinator::SqliteStoreOptions options;
  if (flags.inline_checkpoints) options.checkpoint_after_pages = 0;
  auto store = coordinator::SqliteStore::Open(db.string(), options);
  if (!store.ok()) {
    std::cerr << "cannot open " << db << ": " << store.status().message() << "\n";
    return 1;
  }
  std::vector<coordinator::ExampleRow> rows;
  for (int r = 0; r < flags.rows; ++r) {
    rows.push_back(coordinator::ExampleRow{"bench", r % 2 ? "adapted" : "base",
                                           absl::StrCat("q", r / 4), absl::StrCat("p", r),
                                           absl::StrCat("images/", r / 4, ".png"), "lexical", r % 2,
                                           0.25 + r * 1e-3, -0.125 + r * 1e-3});
  }
  std::atomic<int> failed{0};
  const absl::Time start = absl::Now();
  for (int i = 0; i < flags.jobs; ++i) {
    coordinator::JobRecord job;
    job.job_id = absl::StrCat("bench-1.", i);
    job.sweep_id = "bench-1";
    job.index = i;
    job.name = absl::StrCat("bench[x=", i, "]");
    job.kind = "command";
    job.config_hash = absl::StrCat("hash", i);
    job.config_json = absl::StrCat("{\"command\": \"true ", i, "\"}");
    job.state = coordinator::JobState::kSucceeded;
    job.attempt = 1;
    job.max_attempts = 3;
    coordinator::AttemptRecord attempt;
    attempt.job_id = job.job_id;
    attempt.attempt = 1;
    attempt.worker_id = "bench";
    attempt.state = coordinator::JobState::kSucceeded;
    coordinator::JobResult result;
    result.metrics = {{"value", static_cast<double>(i)}};
    result.examples = rows;
    coordinator::SweepEvent event;
    event.sweep_id = job.sweep_id;
    event.seq = i + 1;
    event.job_id = job.job_id;
    event.state = job.state;
    event.message = "succeeded";
    coordinator::WriteBatch batch;
    batch.push_back(coordinator::UpsertJob{job});
    batch.push_back(coordinator::UpsertAttempt{attempt});
    batch.push_back(coordinator::PutResult{job.job_id, 1, std::move(result)});
    batch.push_back(coordinator::UpsertJob{job});
    batch.push_back(coordinator::AppendEvent{event});
    (*store)->WriteAsync(std::move(batch), [&failed](absl::Status status) {
      if (!status.ok()) failed.fetch_add(1);
    });
  }
  (*store)->Flush();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::cout << absl::StrFormat(
      "store only: %d completions with %d rows each in %.2f s = %.0f completions/s "
      "(%.0f rows/s, %d transactions, %d failed)\n",
      flags.jobs, flags.rows, seconds, flags.jobs / seconds, flags.jobs * flags.rows / seconds,
      (*store)->transactions(), failed.load());
  return failed.load() == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"pcsweep-bench-coordinator: coordinator throughput with simulated workers"};
  app.add_option("--workers", flags.workers, "Simulated workers (one channel and name each)")
      ->capture_default_str();
  app.add_option("--jobs", flags.jobs, "Cells in the sweep")->capture_default_str();
  app.add_option("--rows", flags.rows, "Example rows per completion")->capture_default_str();
  app.add_option("--db", flags.db, "Database file (default: a fresh temporary file)");
  app.add_flag("--keep-db", flags.keep_db, "Keep the database afterwards");
  app.add_option("--anchor", flags.anchor,
                 "Path of optuna_anchor.py (default: $PCSWEEP_SHARED_ROOT/anchors/, else "
                 "../shared/anchors/ beside the source tree)");
  app.add_option("--anchor-procs", flags.anchor_procs, "Optuna anchor processes")
      ->capture_default_str();
  app.add_option("--anchor-cells", flags.anchor_cells, "Optuna anchor grid cells")
      ->capture_default_str();
  app.add_flag("--skip-anchor", flags.skip_anchor, "Do not run the Optuna anchor");
  app.add_flag("--store-only", flags.store_only,
               "Measure the SQLite writer alone (no gRPC, no scheduler, no anchor)");
  app.add_flag("--inline-checkpoints", flags.inline_checkpoints,
               "With --store-only: WAL checkpoints inside the writer's commits (as before the "
               "checkpointer thread), for comparison");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "Coordinator log level (stderr)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (absl::Status logging = InitLogging(log_level); !logging.ok()) {
    std::cerr << logging.message() << "\n";
    return 1;
  }

  fs::path db = flags.db;
  fs::path temp_dir;
  if (db.empty()) {
    temp_dir = fs::temp_directory_path() / absl::StrCat("pcsweep-bench-", getpid());
    fs::create_directories(temp_dir);
    db = temp_dir / "bench.db";
  }
  if (flags.store_only) {
    const int rc = RunStoreOnly(flags, db);
    if (!temp_dir.empty() && !flags.keep_db) fs::remove_all(temp_dir);
    return rc;
  }
  CoordinatorServerOptions options;
  options.db_path = db.string();
  options.listen = "127.0.0.1:0";
  auto server = CoordinatorServer::Start(options);
  if (!server.ok()) {
    std::cerr << "cannot start the coordinator: " << server.status().message() << "\n";
    return 1;
  }
  const std::string address = (*server)->address();

  auto stub = NewStub(address);
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(SweepYaml(flags.jobs));
  submit.set_spec_path("<bench>");
  submit.set_force(true);
  v1::SubmitSweepResponse submitted;
  {
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(120), "");
    grpc::Status status = stub->SubmitSweep(&context, submit, &submitted);
    if (!status.ok()) {
      std::cerr << "SubmitSweep: " << status.error_message() << "\n";
      return 1;
    }
  }
  std::cout << absl::StrFormat(
      "coordinator %s, sweep %s: %d jobs, %d workers, %d rows per completion\n", address,
      submitted.sweep_id(), flags.jobs, flags.workers, flags.rows);

  Run run;
  run.jobs = flags.jobs;
  run.example_bytes = grpc::Slice(SerializedExampleRows(flags.rows));
  std::vector<std::unique_ptr<SimulatedWorker>> workers;
  for (int i = 0; i < flags.workers; ++i) {
    workers.push_back(std::make_unique<SimulatedWorker>(i, address, &run));
    if (!workers.back()->Register()) {
      std::cerr << "worker " << i << ": " << workers.back()->error() << "\n";
      return 1;
    }
  }
  // Every worker is registered and connected before the clock starts.
  run.running = flags.workers;
  const absl::Time start = absl::Now();
  for (auto& worker : workers) worker->Start();
  run.all_stopped.WaitForNotification();
  const absl::Duration elapsed = absl::Now() - start;
  const int completed = run.completed.load();

  std::vector<double> with_job, all;
  std::string first_error;
  for (const auto& worker : workers) {
    with_job.insert(with_job.end(), worker->acquire_ms_with_job().begin(),
                    worker->acquire_ms_with_job().end());
    all.insert(all.end(), worker->acquire_ms_all().begin(), worker->acquire_ms_all().end());
    if (first_error.empty() && !worker->error().empty()) first_error = worker->error();
  }
  v1::GetSweepResponse final_state;
  {
    v1::GetSweepRequest request;
    request.set_sweep_id(submitted.sweep_id());
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(60), "");
    stub->GetSweep(&context, request, &final_state);
  }
  (*server)->Shutdown();
  (*server)->Wait();
  const int64_t db_bytes = FileSize(db) + FileSize(db.string() + "-wal");
  const double per_s = completed / absl::ToDoubleSeconds(elapsed);

  std::cout << absl::StrFormat(
      "completions: %d in %.2f s = %.0f completions/s (%d refused)\n"
      "AcquireJob latency, calls that got a job (%d): p50 %.2f ms, p99 %.2f ms\n"
      "AcquireJob latency, all calls (%d, incl. long-polls): p50 %.2f ms, p99 %.2f ms\n"
      "sweep state: %d succeeded of %d\n"
      "database: %s, %.1f MiB (%d example rows)\n",
      completed, absl::ToDoubleSeconds(elapsed), per_s, run.refused.load(), with_job.size(),
      Percentile(with_job, 0.5), Percentile(with_job, 0.99), all.size(), Percentile(all, 0.5),
      Percentile(all, 0.99), final_state.summary().succeeded(), final_state.summary().total(),
      db.string(), db_bytes / 1048576.0, completed * flags.rows);
  if (!first_error.empty()) std::cout << "first worker error: " << first_error << "\n";

  const absl::StatusOr<double> anchor = RunOptunaAnchor(flags);
  if (!anchor.ok()) {
    std::cerr << anchor.status().message() << "\n";
    if (!temp_dir.empty() && !flags.keep_db) fs::remove_all(temp_dir);
    return 1;
  }
  const double anchor_per_s = *anchor;
  if (anchor_per_s > 0) {
    std::cout << absl::StrFormat(
        "ratio: pcsweep %.0f completions/s (%d rows each) / optuna %.1f trials/s (no rows) = "
        "%.1fx\n",
        per_s, flags.rows, anchor_per_s, per_s / anchor_per_s);
  }
  if (!temp_dir.empty() && !flags.keep_db) fs::remove_all(temp_dir);
  return first_error.empty() ? 0 : 1;
}

}  // namespace
}  // namespace pcsweep::bench

int main(int argc, char** argv) { return pcsweep::bench::Main(argc, argv); }
