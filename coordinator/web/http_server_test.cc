// The web view on a real in-process CoordinatorServer (gRPC and HTTP on 127.0.0.1:0):
// pages and /metrics over the socket, credentials, TLS with the coordinator's certificate, and
// slow clients that must stall neither the coordinator nor, for longer than the timeouts,
// the web view.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/rpc.h"
#include "common/testing/status_matchers.h"
#include "coordinator/coordinator_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::coordinator {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::HasSubstr;

constexpr char kSpec[] = R"(name: tiny
job: {kind: command, command: "echo {x}"}
grid: {x: [1, 2, 3]}
)";

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcsweep_http_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    options_.db_path = (dir_ / "coord.db").string();
    options_.listen = "127.0.0.1:0";
    options_.http.listen = "127.0.0.1:0";
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(const std::string& token = "") {
    if (!token.empty()) {
      options_.token_file = (dir_ / "token").string();
      std::ofstream(options_.token_file) << token << "\n";
    }
    auto server = CoordinatorServer::Start(options_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_THAT(server_->http_url(), ::testing::StartsWith("http"));
    stub_ = v1::Coordinator::NewStub(
        rpc::MakeChannel(server_->address(), rpc::ChannelOptions{token, "", "", ""}));
    token_ = token;
  }

  int HttpPort() const {
    const std::string url = server_->http_url();
    return std::stoi(url.substr(url.rfind(':') + 1));
  }

  httplib::Client Client(absl::Duration timeout = absl::Seconds(10)) {
    httplib::Client client("127.0.0.1", HttpPort());
    client.set_connection_timeout(absl::ToInt64Seconds(timeout));
    client.set_read_timeout(absl::ToInt64Seconds(timeout));
    return client;
  }

  std::string Submit() {
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(10), token_);
    v1::SubmitSweepRequest request;
    request.set_spec_yaml(kSpec);
    v1::SubmitSweepResponse response;
    grpc::Status status = stub_->SubmitSweep(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.sweep_id();
  }

  grpc::Status ListSweeps() {
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(2), token_);
    v1::ListSweepsResponse response;
    return stub_->ListSweeps(&context, v1::ListSweepsRequest(), &response);
  }

  std::filesystem::path dir_;
  CoordinatorServerOptions options_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::string token_;
};

TEST_F(HttpServerTest, ServesTheSweepPagesApiAndMetrics) {
  Start();
  const std::string sweep_id = Submit();
  httplib::Client client = Client();
  auto page = client.Get(("/sweeps/" + sweep_id).c_str());
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->body, HasSubstr("id=\"count-pending\">3</b>"));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("script-src 'self'"));
  auto api = client.Get("/api/sweeps");
  ASSERT_TRUE(api);
  EXPECT_EQ(nlohmann::json::parse(api->body)["sweeps"][0]["sweep_id"], sweep_id);
  auto js = client.Get("/static/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(metrics->body, HasSubstr("# TYPE pcsweep_jobs gauge\n"));
  EXPECT_THAT(metrics->body, HasSubstr(absl::StrCat("pcsweep_jobs{sweep=\"", sweep_id,
                                                    "\",name=\"tiny\",state=\"pending\"} 3\n")));
  EXPECT_THAT(metrics->body, HasSubstr("pcsweep_sweeps{state=\"active\"} 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("pcsweep_workers{state=\"alive\"} 0\n"));
  EXPECT_THAT(metrics->body, HasSubstr("\npcsweep_store_queue_depth "));
  EXPECT_THAT(metrics->body, HasSubstr("# TYPE pcsweep_acquire_job_seconds histogram\n"));
  auto missing = client.Get("/sweeps/nope-1");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(missing->body, HasSubstr("404 · Not found"));
  auto post = client.Post("/api/sweeps", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
}

TEST_F(HttpServerTest, WithATokenFileRequestsWithoutItGet401) {
  Start("web-token");
  httplib::Client client = Client();
  auto refused = client.Get("/api/sweeps");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_THAT(refused->get_header_value("WWW-Authenticate"), HasSubstr("realm=\"pcsweep\""));
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 401);
  client.set_bearer_token_auth("web-token");
  auto allowed = client.Get("/api/sweeps");
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 200);
  httplib::Client browser = Client();
  browser.set_basic_auth("anyone", "web-token");
  auto page = browser.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
}

TEST_F(HttpServerTest, WithACredentialsFileClientTokensReadAndWorkerTokensGet403) {
  options_.credentials_file = (dir_ / "credentials").string();
  std::ofstream(options_.credentials_file) << "client alice token:web-client-token-0001\n"
                                           << "worker gpu-a token:web-worker-token-0002\n";
  Start();
  httplib::Client client = Client();
  auto refused = client.Get("/api/sweeps");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  client.set_bearer_token_auth("web-client-token-0001");
  auto allowed = client.Get("/api/sweeps");
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 200);
  httplib::Client browser = Client();
  browser.set_basic_auth("alice", "web-client-token-0001");
  auto page = browser.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  httplib::Client worker = Client();
  worker.set_bearer_token_auth("web-worker-token-0002");
  auto denied = worker.Get("/api/sweeps");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_THAT(denied->body,
              HasSubstr("the credential of token 'gpu-a' is not a client credential"));
  httplib::Client stranger = Client();
  stranger.set_bearer_token_auth("not-a-known-token");
  auto unknown = stranger.Get("/metrics");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 401);
}

TEST_F(HttpServerTest, WithTlsTheWebViewIsHttpsWithTheCoordinatorsCertificate) {
  const std::string cert = (dir_ / "server.pem").string();
  const std::string key = (dir_ / "server.key").string();
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout ",
      key, " -out ", cert, " >/dev/null 2>&1");
  ASSERT_EQ(std::system(command.c_str()), 0) << "openssl could not make a certificate";
  options_.tls_cert_file = cert;
  options_.tls_key_file = key;
  auto server = CoordinatorServer::Start(options_);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(*server);
  ASSERT_THAT(server_->http_url(), ::testing::StartsWith("https://127.0.0.1:"));
  httplib::SSLClient client("127.0.0.1", HttpPort());
  client.set_ca_cert_path(cert.c_str());
  client.enable_server_certificate_verification(true);
  auto page = client.Get("/api/sweeps");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  httplib::Client plain("127.0.0.1", HttpPort());
  plain.set_read_timeout(2);
  auto refused = plain.Get("/api/sweeps");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST_F(HttpServerTest, BadAddressesAreRefusedWithOneClearError) {
  options_.http.listen = "127.0.0.1:http";
  auto bad = CoordinatorServer::Start(options_);
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            "--http: '127.0.0.1:http' is not HOST:PORT"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'127.0.0.1:http' is not HOST:PORT"));
  options_.http.listen = "127.0.0.1:0";
  Start();
  CoordinatorServerOptions second = options_;
  second.db_path = (dir_ / "second.db").string();
  second.http.listen = absl::StrCat("127.0.0.1:", HttpPort());
  auto taken = CoordinatorServer::Start(second);
  ASSERT_THAT(taken, StatusIs(absl::StatusCode::kUnavailable, "--http: cannot listen on"));
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(taken.status().message(), HasSubstr("cannot listen on"));
}

// A raw connection that sends half a request and then nothing.
int OpenStalledConnection(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const char partial[] = "GET /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  (void)!::write(fd, partial, sizeof(partial) - 1);
  return fd;
}

TEST_F(HttpServerTest, SlowClientsStallNeitherTheCoordinatorNorTheWebViewBeyondTheTimeout) {
  options_.http.threads = 2;
  options_.http.max_queued = 2;
  options_.http.read_timeout = absl::Seconds(1);
  Start();
  Submit();
  // More stalled connections than threads + queue: the accept loop waits too.
  std::vector<int> stalled;
  for (int i = 0; i < 8; ++i) {
    const int fd = OpenStalledConnection(HttpPort());
    ASSERT_GE(fd, 0);
    stalled.push_back(fd);
  }
  absl::SleepFor(absl::Milliseconds(200));
  // The coordinator answers gRPC at once: its threads are not the web view's.
  for (int i = 0; i < 5; ++i) {
    const absl::Time start = absl::Now();
    grpc::Status status = ListSweeps();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  }
  EXPECT_FALSE(Submit().empty());
  // A well-behaved HTTP client is served once the stalled ones time out (1 s each, two at a
  // time, so about 4 s; its connection may wait in the kernel's backlog and for SYN retries).
  const absl::Time start = absl::Now();
  httplib::Client client = Client(absl::Seconds(20));
  auto page = client.Get("/api/sweeps");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(nlohmann::json::parse(page->body)["sweeps"].size(), 2u);
  const absl::Duration waited = absl::Now() - start;
  EXPECT_LT(waited, absl::Seconds(15));
  std::cout << "a good request behind 8 stalled connections waited " << absl::FormatDuration(waited)
            << std::endl;
  for (int fd : stalled) ::close(fd);
  // Shutting down is not held up by them either.
  const absl::Time stop = absl::Now();
  server_->Shutdown();
  EXPECT_LT(absl::Now() - stop, absl::Seconds(5));
}

}  // namespace
}  // namespace pcsweep::coordinator
