// HttpServer: the thin HTTP adapter of the WebService on cpp-httplib (Debian's
// libcpp-httplib-dev): HTTP/1.1, or HTTPS with the coordinator's TLS certificate and key.
// Each request is converted to a WebRequest, answered by WebService::Handle, and written back;
// nothing here touches the scheduler or the database.
//
// Bounded concurrency, so that no client can stall the coordinator or the web view for long:
//  * connections are served by `threads` threads of the server's own pool, never by the gRPC
//    threads or the store's writer; at most `max_queued` accepted connections wait for a
//    thread, and beyond that the accept loop waits too (new connections stay in the kernel's
//    backlog) instead of queueing without bound;
//  * a client that sends its request slowly, or reads the answer slowly, holds its thread for
//    at most read_timeout / write_timeout per step; an idle keep-alive connection is closed
//    after keep_alive_timeout (shorter than the pages' poll interval, so an open tab does not
//    pin a thread);
//  * request bodies are refused beyond 64 KiB (the web view takes none).
//
// Lifecycle: Start() -> serving on its own threads -> Shutdown() (idempotent; the destructor
// calls it): stops accepting, lets the requests in flight finish (each bounded by the
// timeouts), joins.
// Thread-safety: all methods are thread-safe.
#ifndef PCSWEEP_COORDINATOR_WEB_HTTP_SERVER_H_
#define PCSWEEP_COORDINATOR_WEB_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pcsweep::coordinator::web {

class WebService;

struct HttpServerOptions {
  std::string listen;  // "host:port" (IPv6 as "[::1]:port"); port 0 picks a free one
  int threads = 8;
  int max_queued = 32;
  absl::Duration read_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);
  absl::Duration keep_alive_timeout = absl::Seconds(1);
  // Both set: HTTPS with these PEM files (the same as the gRPC API's --tls-cert/--tls-key).
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  // Binds and starts serving `service` (not owned; must outlive the server).
  // Possible errors: InvalidArgument (bad listen address, threads < 1, only one TLS file, a
  // certificate or key that does not load), Unavailable (cannot bind: address in use).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           WebService* service);
  virtual ~HttpServer() = default;

  virtual int port() const = 0;
  // "http://host:port" or "https://host:port" (a wildcard host is shown as 127.0.0.1).
  virtual std::string url() const = 0;
  virtual void Shutdown() = 0;
};

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_HTTP_SERVER_H_
