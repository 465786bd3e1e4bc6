#include "worker/coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::worker {
namespace {

GrpcClientOptions Plaintext(const std::string& target, const std::string& token = "") {
  GrpcClientOptions options;
  options.target = target;
  options.token = token;
  return options;
}

using ::testing::HasSubstr;

// A coordinator stand-in over real gRPC: checks the bearer token, records what it got and
// blocks AcquireJob until the client gives up.
class StubCoordinator final : public v1::Coordinator::Service {
 public:
  grpc::Status RegisterWorker(grpc::ServerContext* context,
                              const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override {
    if (grpc::Status auth = CheckToken(context); !auth.ok()) return auth;
    response->set_worker_id(absl::StrCat("w-", request->worker_name()));
    response->set_heartbeat_interval_ms(1234);
    return grpc::Status::OK;
  }
  grpc::Status AcquireJob(grpc::ServerContext* context, const v1::AcquireJobRequest* request,
                          v1::AcquireJobResponse* response) override {
    acquire_started_.Notify();
    while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  grpc::Status CompleteJob(grpc::ServerContext* context, const v1::CompleteJobRequest* request,
                           v1::CompleteJobResponse* response) override {
    if (request->attempt() != 2) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "attempt is stale");
    }
    return grpc::Status::OK;
  }

  absl::Notification acquire_started_;

 private:
  static grpc::Status CheckToken(grpc::ServerContext* context) {
    auto it = context->client_metadata().find("authorization");
    if (it == context->client_metadata().end() ||
        std::string(it->second.data(), it->second.size()) != "Bearer s3cret") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token");
    }
    return grpc::Status::OK;
  }
};

class GrpcCoordinatorClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override { server_->Shutdown(); }

  std::unique_ptr<GrpcCoordinatorClient> Client(const std::string& token) {
    auto client = GrpcCoordinatorClient::Create(Plaintext(address_, token));
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  StubCoordinator service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(GrpcCoordinatorClientTest, SendsTheBearerToken) {
  v1::RegisterWorkerRequest request;
  request.set_worker_name("box:1");
  auto response = Client("s3cret")->Register(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->worker_id(), "w-box:1");
  EXPECT_EQ(response->heartbeat_interval_ms(), 1234);

  auto refused = Client("wrong")->Register(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("RegisterWorker to coordinator ", address_)));
}

TEST_F(GrpcCoordinatorClientTest, StatusCodesPassThrough) {
  auto client = Client("s3cret");
  v1::CompleteJobRequest request;
  request.set_attempt(2);
  EXPECT_TRUE(client->CompleteJob(request).ok());
  request.set_attempt(1);
  EXPECT_EQ(client->CompleteJob(request).code(), absl::StatusCode::kFailedPrecondition);
  // Not implemented by the stub.
  EXPECT_EQ(client->FailJob(v1::FailJobRequest()).code(), absl::StatusCode::kUnimplemented);
}

TEST_F(GrpcCoordinatorClientTest, CancelPendingAcquiresEndsALongPoll) {
  auto client = Client("s3cret");
  v1::AcquireJobRequest request;
  request.set_wait_ms(60000);
  absl::StatusOr<v1::AcquireJobResponse> response;
  const absl::Time start = absl::Now();
  std::thread poller([&] { response = client->AcquireJob(request); });
  ASSERT_TRUE(service_.acquire_started_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  client->CancelPendingAcquires();
  poller.join();
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(GrpcCoordinatorClient, UnreachableCoordinatorIsUnavailableNamingTheAddress) {
  auto client = GrpcCoordinatorClient::Create(Plaintext("127.0.0.1:1"));
  ASSERT_TRUE(client.ok());
  auto response = (*client)->Heartbeat(v1::HeartbeatRequest());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(response.status().message()), HasSubstr("127.0.0.1:1"));
  EXPECT_EQ(GrpcCoordinatorClient::Create(Plaintext("")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pcsweep::worker
