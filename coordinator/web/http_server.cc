#include "coordinator/web/http_server.h"

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/web/web_service.h"
#include "spdlog/spdlog.h"

namespace pcsweep::coordinator::web {
namespace {

// httplib's TaskQueue with a bound: `threads` workers, at most `max_queued` waiting tasks.
// enqueue() is called by the accept loop; when the queue is full it waits, so that further
// connections wait in the kernel's backlog. Once Stop() was called it queues without waiting
// (the accept loop must get back to see that the server stopped).
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, int max_queued, const std::atomic<bool>* stopping)
      : max_queued_(static_cast<size_t>(std::max(1, max_queued))), stopping_(stopping) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    while (tasks_.size() >= max_queued_ && !stopping_->load()) {
      space_.wait_for(lock, std::chrono::milliseconds(100));
    }
    tasks_.push_back(std::move(fn));
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    work_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [this] { return shutdown_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // shut down and drained
        fn = std::move(tasks_.front());
        tasks_.pop_front();
      }
      space_.notify_one();
      fn();
    }
  }

  const size_t max_queued_;
  const std::atomic<bool>* const stopping_;
  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable space_;
  std::deque<std::function<void()>> tasks_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

WebRequest ToWebRequest(const httplib::Request& in) {
  WebRequest out;
  out.method = in.method;
  out.path = in.path;
  for (const auto& [key, value] : in.params) out.query.emplace(key, value);  // first one wins
  out.authorization = in.get_header_value("Authorization");
  return out;
}

std::chrono::microseconds Micros(absl::Duration d) {
  return std::chrono::microseconds(absl::ToInt64Microseconds(d));
}

class HttpServerImpl final : public HttpServer {
 public:
  ~HttpServerImpl() override { Shutdown(); }

  absl::Status Init(const HttpServerOptions& options, WebService* service) {
    if (options.threads < 1) return absl::InvalidArgumentError("--http: needs at least one thread");
    // "PORT" and ":PORT" mean the loopback interface.
    const size_t colon = options.listen.rfind(':');
    const std::string port_text =
        colon == std::string::npos ? options.listen : options.listen.substr(colon + 1);
    int port = -1;
    if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--http: '", options.listen, "' is not HOST:PORT"));
    }
    std::string host = colon == std::string::npos ? "" : options.listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "127.0.0.1";
    const bool tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
    if (tls) {
      if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
        return absl::InvalidArgumentError(
            "--http with TLS needs both a certificate and a key file");
      }
      for (const std::string& file : {options.tls_cert_file, options.tls_key_file}) {
        if (!std::filesystem::exists(file)) {
          return absl::InvalidArgumentError(absl::StrCat("--http: cannot read ", file));
        }
      }
      server_ = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                     options.tls_key_file.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    if (!server_->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("--http: the TLS certificate ",
                                                     options.tls_cert_file, " or key ",
                                                     options.tls_key_file, " does not load"));
    }
    const int threads = options.threads;
    const int max_queued = options.max_queued;
    server_->new_task_queue = [this, threads, max_queued] {
      return new BoundedPool(threads, max_queued, &stopping_);
    };
    server_->set_read_timeout(Micros(options.read_timeout));
    server_->set_write_timeout(Micros(options.write_timeout));
    server_->set_keep_alive_timeout(
        std::max<time_t>(1, absl::ToInt64Seconds(options.keep_alive_timeout)));
    server_->set_keep_alive_max_count(100);
    server_->set_payload_max_length(64 << 10);
    // httplib's default is SO_REUSEPORT, which would let a second coordinator bind the same
    // port and share its connections; SO_REUSEADDR only allows a restart over TIME_WAIT.
    server_->set_socket_options([](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    // Every request, whatever its method and path, goes to the service.
    server_->set_pre_routing_handler(
        [service](const httplib::Request& req, httplib::Response& res) {
          WebResponse response = service->Handle(ToWebRequest(req));
          res.status = response.status;
          for (const auto& [name, value] : response.headers) res.set_header(name, value);
          res.set_content(std::move(response.body), response.content_type.c_str());
          return httplib::Server::HandlerResponse::Handled;
        });
    server_->set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                                      std::exception_ptr error) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      spdlog::error("web view: {} {}: {}", req.method, req.path, what);
      res.status = 500;
      res.set_content(absl::StrCat("internal error: ", what, "\n"), "text/plain; charset=utf-8");
    });
    port_ = port == 0 ? server_->bind_to_any_port(host)
                      : (server_->bind_to_port(host, port) ? port : -1);
    if (port_ <= 0) {
      return absl::UnavailableError(absl::StrCat("--http: cannot listen on ", options.listen,
                                                 " (address in use or invalid?)"));
    }
    const std::string shown = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host;
    url_ = absl::StrCat(
        tls ? "https://" : "http://",
        shown.find(':') != std::string::npos ? absl::StrCat("[", shown, "]") : shown, ":", port_);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() is a no-op until the loop runs: wait for it so that Shutdown() cannot miss it.
    for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    spdlog::info("web view on {}", url_);
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  std::string url() const override { return url_; }

  void Shutdown() override {
    if (stopping_.exchange(true)) return;
    if (server_ != nullptr) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stopping_{false};
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::string url_;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              WebService* service) {
  auto server = std::make_unique<HttpServerImpl>();
  absl::Status status = server->Init(options, service);
  if (!status.ok()) {
    server->Shutdown();
    return status;
  }
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace pcsweep::coordinator::web
