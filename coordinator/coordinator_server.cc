#include "coordinator/coordinator_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/rpc/rpc.h"
#include "common/status/status_macros.h"
#include "coordinator/analysis/sweep_results.h"
#include "coordinator/auth/grpc_auth.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/metrics/metrics_hooks.h"
#include "coordinator/scheduler.h"
#include "coordinator/store/sqlite_store.h"
#include "coordinator/web/gauges.h"
#include "coordinator/web/web_service.h"
#include "spdlog/spdlog.h"

namespace pcsweep::coordinator {
namespace {

// How often the housekeeping thread calls Scheduler::Tick(): bounds the lateness of lease
// expiry and of empty long-poll answers.
constexpr absl::Duration kTickPeriod = absl::Milliseconds(100);

class CoordinatorServerImpl final : public CoordinatorServer {
 public:
  // Shutdown order: stop ticking, end long polls, stop gRPC, then the scheduler and the
  // store (which drains its queue).
  ~CoordinatorServerImpl() override { Shutdown(); }

  absl::Status Init(const CoordinatorServerOptions& options) {
    if (options.db_path.empty()) return absl::InvalidArgumentError("--db is required");
    if (options.lease_timeout <= options.heartbeat_interval) {
      return absl::InvalidArgumentError(
          absl::StrCat("the lease timeout (", absl::FormatDuration(options.lease_timeout),
                       ") must be longer than the heartbeat interval (",
                       absl::FormatDuration(options.heartbeat_interval), ")"));
    }
    PCSWEEP_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                             MakeCredentials(options));
    // Debian's Abseil is built with its debug-mode deadlock detector on: every Mutex lock
    // then updates a process-wide lock graph under a global lock, which costs the busy
    // coordinator more than the checks are worth outside tests.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    PCSWEEP_ASSIGN_OR_RETURN(metrics_hooks_, coordinator::MetricsHooks::Create(&metrics_));
    coordinator::SqliteStoreOptions store_options;
    store_options.hooks = metrics_hooks_.get();
    store_options.clock = options.clock;
    PCSWEEP_ASSIGN_OR_RETURN(store_,
                             coordinator::SqliteStore::Open(options.db_path, store_options));
    // The coordinator stores each sweep's comparisons when it finishes, through its own store.
    coordinator::ComparisonUpdaterOptions comparisons_options;
    comparisons_options.db_path = options.db_path;
    comparisons_options.store = store_.get();
    PCSWEEP_ASSIGN_OR_RETURN(comparisons_,
                             coordinator::ComparisonUpdater::Create(comparisons_options));
    coordinator::SchedulerOptions scheduler_options;
    scheduler_options.on_sweep_finished = [comparisons =
                                               comparisons_.get()](const std::string& sweep_id) {
      comparisons->SweepFinished(sweep_id);
    };
    scheduler_options.heartbeat_interval = options.heartbeat_interval;
    scheduler_options.lease_timeout = options.lease_timeout;
    scheduler_options.clock = options.clock;
    scheduler_options.hooks = metrics_hooks_.get();
    PCSWEEP_ASSIGN_OR_RETURN(scheduler_,
                             coordinator::Scheduler::Create(store_.get(), scheduler_options));
    comparisons_->Start();  // after the scheduler's Load(): the updater writes
    service_ = std::make_unique<coordinator::CoordinatorService>(
        scheduler_.get(), authenticator_, options.db_path, comparisons_.get());

    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::EnableDefaultHealthCheckService(true);  // answers without credentials (grpc_auth.h)
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options.listen, credentials, &port_);
    builder.RegisterService(service_.get());
    rpc::ConfigureServerBuilder(&builder);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options.listen, " (address in use or invalid?)"));
    }
    const size_t colon = options.listen.rfind(':');
    std::string host = colon == std::string::npos ? "" : options.listen.substr(0, colon);
    if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
    address_ = absl::StrCat(host, ":", port_);
    if (!options.http.listen.empty()) PCSWEEP_RETURN_IF_ERROR(StartWeb(options));
    ticker_ = std::thread([this] {
      while (!stop_ticking_.WaitForNotificationWithTimeout(kTickPeriod)) scheduler_->Tick();
    });
    spdlog::info("coordinator listening on {} (database {})", address_, options.db_path);
    return absl::OkStatus();
  }

  // Reads the credential files, builds the Authenticator and the server credentials carrying
  // its check, and applies the listen policy (non-loopback needs auth or --insecure).
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
      const CoordinatorServerOptions& options) {
    coordinator::auth::AuthConfig config;
    coordinator::auth::TransportSecurity security;
    config.credentials_path = options.credentials_file;
    if (!options.credentials_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(config.credentials_text,
                               rpc::ReadSecretFile(options.credentials_file));
    }
    if (!options.token_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(config.shared_token, rpc::ReadSecretFile(options.token_file));
    }
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
    }
    if (!options.tls_cert_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(security.tls_cert_pem, rpc::ReadSecretFile(options.tls_cert_file));
      PCSWEEP_ASSIGN_OR_RETURN(security.tls_key_pem, rpc::ReadSecretFile(options.tls_key_file));
    }
    if (!options.tls_client_ca_file.empty()) {
      PCSWEEP_ASSIGN_OR_RETURN(security.client_ca_pem,
                               rpc::ReadSecretFile(options.tls_client_ca_file));
      config.client_certificates = true;
    }
    PCSWEEP_ASSIGN_OR_RETURN(authenticator_, coordinator::auth::Authenticator::Create(config));
    std::string warning;
    PCSWEEP_RETURN_IF_ERROR(coordinator::auth::CheckListenPolicy(
        options.listen, authenticator_->enabled(), !security.tls_cert_pem.empty(), options.insecure,
        &warning));
    if (!warning.empty()) spdlog::warn("{}", warning);
    if (!config.shared_token.empty() && !coordinator::auth::IsLoopbackListen(options.listen)) {
      spdlog::warn(
          "--token-file: one token for every client and worker, so any holder can act as any "
          "worker; give each worker its own credential with --credentials or --tls-client-ca");
    }
    return coordinator::auth::MakeServerCredentials(security, authenticator_);
  }

  int port() const override { return port_; }
  std::string address() const override { return address_; }
  std::string http_url() const override { return http_ == nullptr ? "" : http_->url(); }
  const coordinator::Scheduler& scheduler() const override { return *scheduler_; }

  // The web view and /metrics on their own threads (coordinator/web), reading the scheduler.
  absl::Status StartWeb(const CoordinatorServerOptions& options) {
    PCSWEEP_RETURN_IF_ERROR(coordinator::web::RegisterCoordinatorGauges(
        &metrics_, scheduler_.get(), [store = store_.get()] { return store->queue_depth(); }));
    coordinator::web::WebServiceOptions web_options;
    web_options.db_path = options.db_path;
    web_options.clock = options.clock;
    if (authenticator_->enabled()) {
      web_options.auth = std::make_shared<coordinator::web::IdentityChecker>(authenticator_);
    }
    web_ = std::make_unique<coordinator::web::WebService>(scheduler_.get(), &metrics_, web_options);
    coordinator::web::HttpServerOptions http = options.http;
    if (http.tls_cert_file.empty() && http.tls_key_file.empty()) {
      http.tls_cert_file = options.tls_cert_file;
      http.tls_key_file = options.tls_key_file;
    }
    PCSWEEP_ASSIGN_OR_RETURN(http_, coordinator::web::HttpServer::Start(http, web_.get()));
    return absl::OkStatus();
  }

  void Shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) return;
      shutting_down_ = true;
    }
    if (http_ != nullptr) http_->Shutdown();  // before what its requests read
    if (!stop_ticking_.HasBeenNotified()) stop_ticking_.Notify();
    if (ticker_.joinable()) ticker_.join();
    if (scheduler_ != nullptr) scheduler_->Shutdown();
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_->Wait();
    }
    if (comparisons_ != nullptr) comparisons_->Shutdown();  // a pass in progress ends first
    if (store_ != nullptr) store_->Flush();
    // The service and scheduler may still be referenced by in-flight store callbacks until
    // the store is gone; destroy the store first.
    server_.reset();
    http_.reset();
    web_.reset();
    store_.reset();
    service_.reset();
    scheduler_.reset();
    done_.Notify();
  }

  void Wait() override { done_.WaitForNotification(); }

  absl::StatusOr<coordinator::StoredComparisons> RecomputeComparisons(
      const std::string& sweep) override {
    // comparisons_ lives as long as this object; after Shutdown() it refuses (Unavailable).
    return comparisons_->Recompute(sweep, {});
  }

 private:
  int port_ = 0;
  std::string address_;
  // Metrics outlive everything that reports to them (declared first, destroyed last).
  coordinator::MetricsRegistry metrics_;
  std::shared_ptr<const coordinator::auth::Authenticator> authenticator_;
  std::unique_ptr<coordinator::MetricsHooks> metrics_hooks_;
  std::unique_ptr<coordinator::SqliteStore> store_;
  // Writes through store_ until its Shutdown(); kept until destruction so that
  // RecomputeComparisons() racing with Shutdown() gets Unavailable, not a freed object.
  std::unique_ptr<coordinator::ComparisonUpdater> comparisons_;
  std::unique_ptr<coordinator::Scheduler> scheduler_;
  std::unique_ptr<coordinator::CoordinatorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<coordinator::web::WebService> web_;
  std::unique_ptr<coordinator::web::HttpServer> http_;
  std::thread ticker_;
  absl::Notification stop_ticking_;
  absl::Notification done_;
  absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorServerOptions& options) {
  auto server = std::make_unique<CoordinatorServerImpl>();
  absl::Status status = server->Init(options);
  if (!status.ok()) {
    server->Shutdown();
    return status;
  }
  return std::unique_ptr<CoordinatorServer>(std::move(server));
}

}  // namespace pcsweep::coordinator
