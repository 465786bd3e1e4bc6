// pcsweep-bench-coordinator: measures the coordinator's throughput. Starts a CoordinatorServer
// in-process (port 0, temporary database), submits one sweep of trivial `command` cells, and
// lets N simulated workers (threads, each with its own channel and TCP connection) lease them
// with AcquireJob and complete each with K per-example rows. Prints completions/s, AcquireJob
// latency p50/p99 and the database size; then, when Debian's python3-optuna is installed, runs
// the Optuna + SQLite anchor (shared/anchors/optuna_anchor.py) in the same run and prints the
// ratio of our completions/s to its trials/s. A program that prints figures, not a test.
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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging/logging.h"
#include "common/rpc/rpc.h"
#include "coordinator/coordinator_server.h"
#include "nlohmann/json.hpp"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::bench {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pcsweep::v1;

struct Flags {
  int workers = 256;
  int jobs = 10000;
  int rows = 500;
  std::string db;  // default: a fresh temporary file
  bool keep_db = false;
  std::string anchor = PCSWEEP_SOURCE_ROOT_DIR "/../shared/anchors/optuna_anchor.py";
  int anchor_procs = 8;
  int anchor_cells = 500;
  bool skip_anchor = false;
};

struct WorkerStats {
  std::vector<double> acquire_ms_with_job;  // AcquireJob calls that returned a job
  std::vector<double> acquire_ms_all;
  int completed = 0;
  int refused = 0;
  std::string error;
};

// Its own TCP connection per simulated worker: a local subchannel pool stops gRPC from
// sharing one connection between channels with equal arguments.
std::unique_ptr<v1::Coordinator::Stub> NewStub(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::Coordinator::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index =
      std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  return values[index];
}

void RunWorker(int index, const std::string& address, const Flags& flags,
               std::atomic<int>* completed_total, std::atomic<bool>* go, WorkerStats* stats) {
  auto stub = NewStub(address);
  std::mt19937_64 random(index * 7919 + getpid());
  const std::string incarnation = absl::StrFormat("%016x", random());
  v1::RegisterWorkerRequest reg;
  reg.set_host("bench");
  reg.set_slots(1);
  reg.set_incarnation_id(incarnation);
  reg.set_worker_name(absl::StrCat("bench-", index));
  reg.add_kinds("command");
  v1::RegisterWorkerResponse reg_response;
  {
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(30), "");
    context.set_wait_for_ready(true);
    grpc::Status status = stub->RegisterWorker(&context, reg, &reg_response);
    if (!status.ok()) {
      stats->error = absl::StrCat("RegisterWorker: ", status.error_message());
      return;
    }
  }
  // The completion request is built once; only job and attempt change.
  v1::CompleteJobRequest complete;
  complete.set_worker_id(reg_response.worker_id());
  complete.set_incarnation_id(incarnation);
  for (int r = 0; r < flags.rows; ++r) {
    v1::ExampleRow* row = complete.add_examples();
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
  while (!go->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  absl::Time last_heartbeat = absl::Now();
  const absl::Duration heartbeat_every = absl::Milliseconds(std::max<int64_t>(
      500, reg_response.heartbeat_interval_ms() > 0 ? reg_response.heartbeat_interval_ms() : 5000));
  while (completed_total->load() < flags.jobs) {
    if (absl::Now() - last_heartbeat > heartbeat_every) {
      v1::HeartbeatRequest heartbeat;
      heartbeat.set_worker_id(reg_response.worker_id());
      heartbeat.set_incarnation_id(incarnation);
      v1::HeartbeatResponse ignored;
      grpc::ClientContext context;
      rpc::PrepareContext(&context, absl::Seconds(10), "");
      stub->Heartbeat(&context, heartbeat, &ignored);
      last_heartbeat = absl::Now();
    }
    v1::AcquireJobRequest acquire;
    acquire.set_worker_id(reg_response.worker_id());
    acquire.set_incarnation_id(incarnation);
    acquire.set_free_slots(1);
    acquire.set_wait_ms(200);
    v1::AcquireJobResponse assignments;
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(30), "");
    const absl::Time start = absl::Now();
    grpc::Status status = stub->AcquireJob(&context, acquire, &assignments);
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (!status.ok()) {
      stats->error = absl::StrCat("AcquireJob: ", status.error_message());
      return;
    }
    stats->acquire_ms_all.push_back(ms);
    if (assignments.assignments().empty()) continue;
    stats->acquire_ms_with_job.push_back(ms);
    for (const auto& assignment : assignments.assignments()) {
      complete.set_job_id(assignment.job_id());
      complete.set_attempt(assignment.attempt());
      (*complete.mutable_metrics())["value"] = completed_total->load();
      v1::CompleteJobResponse done;
      grpc::ClientContext complete_context;
      rpc::PrepareContext(&complete_context, absl::Seconds(60), "");
      grpc::Status complete_status = stub->CompleteJob(&complete_context, complete, &done);
      if (complete_status.ok()) {
        ++stats->completed;
        completed_total->fetch_add(1);
      } else {
        ++stats->refused;
      }
    }
  }
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

// Runs the Optuna anchor and returns its trials/s, or a negative number when it cannot run.
double RunOptunaAnchor(const Flags& flags) {
  if (flags.skip_anchor) return -1;
  if (std::system("/usr/bin/python3 -c 'import optuna' >/dev/null 2>&1") != 0) {
    std::cout << "optuna anchor: skipped (Debian's python3-optuna is not installed)\n";
    return -1;
  }
  if (!fs::exists(flags.anchor)) {
    std::cout << "optuna anchor: skipped (" << flags.anchor << " not found)\n";
    return -1;
  }
  const std::string command =
      absl::StrCat("/usr/bin/python3 '", flags.anchor, "' --procs ", flags.anchor_procs,
                   " --cells ", flags.anchor_cells, " 2>&1");
  std::cout << "optuna anchor: " << command << std::endl;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int rc = pclose(pipe);
  const size_t brace = output.rfind('{');
  if (rc != 0 || brace == std::string::npos) {
    std::cout << "optuna anchor failed (exit " << rc << "): " << output << "\n";
    return -1;
  }
  try {
    const auto json = nlohmann::json::parse(output.substr(brace));
    std::cout << "optuna anchor: " << json.dump() << "\n";
    return json.at("trials_per_s").get<double>();
  } catch (const nlohmann::json::exception& e) {
    std::cout << "optuna anchor: unreadable output (" << e.what() << "): " << output << "\n";
    return -1;
  }
}

int Main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"pcsweep-bench-coordinator: coordinator throughput with simulated workers"};
  app.add_option("--workers", flags.workers, "Simulated workers (threads, one channel each)")
      ->capture_default_str();
  app.add_option("--jobs", flags.jobs, "Cells in the sweep")->capture_default_str();
  app.add_option("--rows", flags.rows, "Example rows per completion")->capture_default_str();
  app.add_option("--db", flags.db, "Database file (default: a fresh temporary file)");
  app.add_flag("--keep-db", flags.keep_db, "Keep the database afterwards");
  app.add_option("--anchor", flags.anchor, "Path of optuna_anchor.py")->capture_default_str();
  app.add_option("--anchor-procs", flags.anchor_procs, "Optuna anchor processes")
      ->capture_default_str();
  app.add_option("--anchor-cells", flags.anchor_cells, "Optuna anchor grid cells")
      ->capture_default_str();
  app.add_flag("--skip-anchor", flags.skip_anchor, "Do not run the Optuna anchor");
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

  std::atomic<int> completed{0};
  std::atomic<bool> go{false};
  std::vector<WorkerStats> stats(flags.workers);
  std::vector<std::thread> threads;
  for (int i = 0; i < flags.workers; ++i) {
    threads.emplace_back(RunWorker, i, address, std::cref(flags), &completed, &go, &stats[i]);
  }
  // Channels connect and workers register before the clock starts.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const absl::Time start = absl::Now();
  go = true;
  for (auto& thread : threads) thread.join();
  const absl::Duration elapsed = absl::Now() - start;

  std::vector<double> with_job, all;
  int refused = 0;
  std::string first_error;
  for (const auto& s : stats) {
    with_job.insert(with_job.end(), s.acquire_ms_with_job.begin(), s.acquire_ms_with_job.end());
    all.insert(all.end(), s.acquire_ms_all.begin(), s.acquire_ms_all.end());
    refused += s.refused;
    if (first_error.empty() && !s.error.empty()) first_error = s.error;
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
  const double per_s = completed.load() / absl::ToDoubleSeconds(elapsed);

  std::cout << absl::StrFormat(
      "completions: %d in %.2f s = %.0f completions/s (%d refused)\n"
      "AcquireJob latency, calls that got a job (%d): p50 %.2f ms, p99 %.2f ms\n"
      "AcquireJob latency, all calls (%d, incl. long-polls): p50 %.2f ms, p99 %.2f ms\n"
      "sweep state: %d succeeded of %d\n"
      "database: %s, %.1f MiB (%d example rows)\n",
      completed.load(), absl::ToDoubleSeconds(elapsed), per_s, refused, with_job.size(),
      Percentile(with_job, 0.5), Percentile(with_job, 0.99), all.size(), Percentile(all, 0.5),
      Percentile(all, 0.99), final_state.summary().succeeded(), final_state.summary().total(),
      db.string(), db_bytes / 1048576.0, completed.load() * flags.rows);
  if (!first_error.empty()) std::cout << "first worker error: " << first_error << "\n";

  const double anchor_per_s = RunOptunaAnchor(flags);
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
