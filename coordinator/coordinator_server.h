// CoordinatorServer: the whole coordinator process in one object (SQLite store, scheduler,
// the comparisons of finished sweeps, gRPC service with reflection, and optionally the web
// view with /metrics). Used by `pcsweep
// coordinator`, by the README's embedded demo and by in-process tests.
//
// Lifecycle: Start() -> (serving) -> Shutdown() -> destroyed. Shutdown is idempotent and
// the destructor calls it.
// Thread-safety: all methods are thread-safe.
#ifndef PCSWEEP_COORDINATOR_COORDINATOR_SERVER_H_
#define PCSWEEP_COORDINATOR_COORDINATOR_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "coordinator/analysis/sweep_results.h"
#include "coordinator/scheduler.h"
#include "coordinator/web/http_server.h"

namespace pcsweep::coordinator {

struct CoordinatorServerOptions {
  std::string db_path;                     // SQLite file, created if missing. Required.
  std::string listen = "127.0.0.1:50551";  // "host:0" picks a free port (see port()).
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration lease_timeout = absl::Seconds(20);
  // Authentication (coordinator/auth/identity.h); none of them = every caller is allowed,
  // which only a loopback `listen` or `insecure` permits.
  std::string credentials_file;  // per-identity tokens and roles, one "ROLE NAME SECRET" a line
  std::string token_file;        // legacy: one bearer token for clients and workers alike
  std::string tls_cert_file;     // optional TLS certificate + key files
  std::string tls_key_file;
  std::string tls_client_ca_file;  // require client certificates signed by this CA (mTLS)
  bool insecure = false;           // allow a non-loopback `listen` without authentication
  Clock* clock = Clock::Real();    // Not owned; must outlive the server.
  // The web view and /metrics (coordinator/web/web_service.h) when http.listen is set
  // ("host:port", "host:0" picks a free port; see http_url()). Served over TLS with the files
  // above when they are set, and behind the same tokens (client role).
  coordinator::web::HttpServerOptions http;
};

class CoordinatorServer {
 public:
  // Opens (or migrates) the database, resumes unfinished sweeps and starts serving.
  // Possible errors: InvalidArgument (bad options, bad credentials file with FILE:LINE),
  // FailedPrecondition (non-loopback address without auth), Unavailable (address in use),
  // Internal/DataLoss (database cannot be opened or migrated).
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      const CoordinatorServerOptions& options);

  virtual ~CoordinatorServer() = default;
  virtual int port() const = 0;             // the bound port
  virtual std::string address() const = 0;  // "127.0.0.1:<port>"
  virtual void Shutdown() = 0;              // stops serving, flushes the store
  virtual void Wait() = 0;                  // blocks until Shutdown() completes
  // The web view's "http(s)://127.0.0.1:<port>"; "" when it is not served.
  virtual std::string http_url() const = 0;
  // (Re)computes and stores the comparisons of sweep `sweep` (id or name) now, through the
  // server's store (the coordinator stores them by itself when a sweep finishes; `pcsweep
  // local` calls this to report them before it exits). Blocks: not for gRPC threads.
  // Possible errors: as coordinator::RecomputeComparisons; Unavailable after Shutdown().
  virtual absl::StatusOr<coordinator::StoredComparisons> RecomputeComparisons(
      const std::string& sweep) = 0;
  // The live state, for readers in the same process (the Slurm autoscaler reads its
  // ListSweeps and ListWorkers); valid until the server is destroyed.
  virtual const Scheduler& scheduler() const = 0;
};

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_COORDINATOR_SERVER_H_
