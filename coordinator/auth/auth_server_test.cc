// Identity and roles against a real in-process CoordinatorServer: per-worker tokens, roles,
// one check for every service (reflection included, health excepted), the listen policy and
// mTLS with certificates made by `openssl` at test time.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/rpc/rpc.h"
#include "coordinator/coordinator_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pcsweep/v1/coordinator.grpc.pb.h"

namespace pcsweep::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kTokenA[] = "token-of-worker-gpu-a-0001";
constexpr char kTokenB[] = "token-of-worker-gpu-b-0002";
constexpr char kTokenClient[] = "token-of-client-alice-0003";
constexpr char kReflection[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
constexpr char kSpec[] = R"(name: one
job:
  kind: command
  command: "echo {x}"
grid:
  x: [1]
)";

struct RawResult {
  grpc::Status status;
  std::string reply;  // the messages' bytes, concatenated
};

// Calls `method` by name with one raw message (any call type: the generic stub streams).
RawResult RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                  const std::string& payload, const std::string& token) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  rpc::PrepareContext(&context, absl::Seconds(10), token);
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto next = [&] { return cq.Next(&tag, &ok) && ok; };
  RawResult result;
  auto call = stub.PrepareCall(&context, method, &cq);
  call->StartCall(nullptr);
  if (next()) {
    grpc::Slice slice(payload);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, nullptr);
    if (next()) {
      call->WritesDone(nullptr);
      next();
    }
    for (;;) {
      grpc::ByteBuffer in;
      call->Read(&in, nullptr);
      if (!next()) break;
      std::vector<grpc::Slice> slices;
      (void)in.Dump(&slices);
      for (const grpc::Slice& s : slices) {
        result.reply.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
  }
  call->Finish(&result.status, nullptr);
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return result;
}

class AuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcsweep_auth_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    options_.db_path = (dir_ / "coord.db").string();
    options_.listen = "127.0.0.1:0";
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  void StartWithCredentials() {
    options_.credentials_file =
        Write("credentials", absl::StrCat("# ROLE NAME SECRET\nworker gpu-a token:", kTokenA,
                                          "\nworker gpu-b token:", kTokenB,
                                          "\nclient alice token:", kTokenClient, "\n"));
    Start();
  }

  void Start() {
    auto server = CoordinatorServer::Start(options_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::shared_ptr<grpc::Channel> Channel(const rpc::ChannelOptions& options = {}) {
    return rpc::MakeChannel(server_->address(), options);
  }

 public:
  // A stub whose calls carry `token`.
  struct Caller {
    std::unique_ptr<v1::Coordinator::Stub> stub;
    std::string token;
    template <typename Fn>
    grpc::Status operator()(Fn fn) {
      grpc::ClientContext context;
      rpc::PrepareContext(&context, absl::Seconds(10), token);
      return fn(stub.get(), &context);
    }
  };

 protected:
  Caller As(const std::string& token) { return Caller{v1::Coordinator::NewStub(Channel()), token}; }

  std::filesystem::path dir_;
  CoordinatorServerOptions options_;
  std::unique_ptr<CoordinatorServer> server_;
};

void ExpectStatus(const grpc::Status& status, grpc::StatusCode code, const std::string& message) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(message));
}

v1::RegisterWorkerRequest Registration(const std::string& name, const std::string& incarnation) {
  v1::RegisterWorkerRequest request;
  request.set_worker_name(name);
  request.set_host("host");
  request.set_slots(1);
  request.set_incarnation_id(incarnation);
  return request;
}

// A report (CompleteJob, FailJob) of gpu-a's incarnation "inc-a" for `lease`.
template <typename Request>
Request ReportOf(const v1::Assignment& lease) {
  Request request;
  request.set_worker_id("gpu-a");
  request.set_incarnation_id("inc-a");
  request.set_job_id(lease.job_id());
  request.set_attempt(lease.attempt());
  return request;
}

// alice submits a one-job sweep; gpu-a registers (incarnation "inc-a") and leases the job.
void SubmitAndLease(AuthServerTest::Caller& alice, AuthServerTest::Caller& a,
                    v1::Assignment* lease) {
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(kSpec);
  v1::SubmitSweepResponse submitted;
  ASSERT_TRUE(alice([&](auto* s, auto* c) { return s->SubmitSweep(c, submit, &submitted); }).ok());
  v1::RegisterWorkerResponse registered;
  grpc::Status status = a([&](auto* s, auto* c) {
    return s->RegisterWorker(c, Registration("gpu-a", "inc-a"), &registered);
  });
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(registered.worker_id(), "gpu-a");
  v1::AcquireJobRequest acquire;
  acquire.set_worker_id("gpu-a");
  acquire.set_incarnation_id("inc-a");
  acquire.set_free_slots(1);
  acquire.set_wait_ms(2000);
  v1::AcquireJobResponse acquired;
  ASSERT_TRUE(a([&](auto* s, auto* c) { return s->AcquireJob(c, acquire, &acquired); }).ok());
  ASSERT_THAT(acquired.assignments(), SizeIs(1));
  *lease = acquired.assignments(0);
}

TEST_F(AuthServerTest, AWorkerCannotTakeOverAnotherWorkersNameOrJob) {
  StartWithCredentials();
  Caller alice = As(kTokenClient);
  Caller a = As(kTokenA);
  Caller b = As(kTokenB);
  v1::Assignment lease;
  ASSERT_NO_FATAL_FAILURE(SubmitAndLease(alice, a, &lease));

  // gpu-b re-registers under gpu-a's name listing gpu-a's running job, then reports it.
  const std::string denied = "the credential of worker 'gpu-b' may not act as worker 'gpu-a'";
  v1::RegisterWorkerRequest hijack = Registration("gpu-a", "inc-b");
  auto* running = hijack.add_running();
  running->set_job_id(lease.job_id());
  running->set_attempt(lease.attempt());
  v1::RegisterWorkerResponse hijacked;
  ExpectStatus(b([&](auto* s, auto* c) { return s->RegisterWorker(c, hijack, &hijacked); }),
               grpc::StatusCode::PERMISSION_DENIED, denied);
  auto fake = ReportOf<v1::CompleteJobRequest>(lease);
  (*fake.mutable_metrics())["value"] = 999;
  v1::CompleteJobResponse completed;
  ExpectStatus(b([&](auto* s, auto* c) { return s->CompleteJob(c, fake, &completed); }),
               grpc::StatusCode::PERMISSION_DENIED, denied);
  v1::FailJobResponse failed;
  ExpectStatus(b([&](auto* s, auto* c) {
                 return s->FailJob(c, ReportOf<v1::FailJobRequest>(lease), &failed);
               }),
               grpc::StatusCode::PERMISSION_DENIED, denied);
  v1::HeartbeatRequest beat;
  beat.set_worker_id("gpu-a");
  beat.set_incarnation_id("inc-a");
  v1::HeartbeatResponse beaten;
  ExpectStatus(b([&](auto* s, auto* c) { return s->Heartbeat(c, beat, &beaten); }),
               grpc::StatusCode::PERMISSION_DENIED, denied);
  // gpu-b under its own name is fine.
  ASSERT_TRUE(b([&](auto* s, auto* c) {
                return s->RegisterWorker(c, Registration("gpu-b", "inc-b"), &hijacked);
              }).ok());

  // gpu-a keeps its lease and its own result is the one stored.
  auto* progress = beat.add_jobs();
  progress->set_job_id(lease.job_id());
  progress->set_attempt(lease.attempt());
  ASSERT_TRUE(a([&](auto* s, auto* c) { return s->Heartbeat(c, beat, &beaten); }).ok());
  EXPECT_EQ(beaten.cancel_size(), 0);
  EXPECT_FALSE(beaten.reregister());
  auto real = ReportOf<v1::CompleteJobRequest>(lease);
  (*real.mutable_metrics())["value"] = 1.5;
  ASSERT_TRUE(a([&](auto* s, auto* c) { return s->CompleteJob(c, real, &completed); }).ok());
  v1::GetJobRequest get;
  get.set_job_id(lease.job_id());
  v1::GetJobResponse job;
  ASSERT_TRUE(alice([&](auto* s, auto* c) { return s->GetJob(c, get, &job); }).ok());
  EXPECT_EQ(job.job().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(job.job().metrics().at("value"), 1.5);
  ASSERT_THAT(job.attempts(), SizeIs(1));
  EXPECT_EQ(job.attempts(0).worker_id(), "gpu-a");
}

TEST_F(AuthServerTest, EveryMethodAndReflectionNeedACredentialButHealthDoesNot) {
  StartWithCredentials();
  auto channel = Channel();
  const google::protobuf::ServiceDescriptor* service =
      v1::SubmitSweepRequest::descriptor()->file()->FindServiceByName("Coordinator");
  ASSERT_NE(service, nullptr);
  std::vector<std::string> methods = {kReflection};
  for (int i = 0; i < service->method_count(); ++i) {
    methods.push_back(absl::StrCat("/", service->full_name(), "/", service->method(i)->name()));
  }
  ASSERT_THAT(methods, SizeIs(15));
  for (const std::string& method : methods) {
    SCOPED_TRACE(method);
    RawResult none = RawCall(channel, method, "", "");
    ExpectStatus(none.status, grpc::StatusCode::UNAUTHENTICATED, "missing credentials");
    RawResult wrong = RawCall(channel, method, "", "not-a-token-of-anyone");
    ExpectStatus(wrong.status, grpc::StatusCode::UNAUTHENTICATED, "unknown bearer token");
  }
  // Refused from the metadata alone, before the message is read: 8 MiB that are no valid
  // protobuf (past the check, UNIMPLEMENTED: cannot parse) get UNAUTHENTICATED.
  RawResult big =
      RawCall(channel, "/pcsweep.v1.Coordinator/SubmitSweep", std::string(8 << 20, '\xff'), "");
  ExpectStatus(big.status, grpc::StatusCode::UNAUTHENTICATED, "missing credentials");

  // Health answers SERVING (HealthCheckResponse{status: 1}) without credentials.
  RawResult health = RawCall(channel, "/grpc.health.v1.Health/Check", "", "");
  ASSERT_TRUE(health.status.ok()) << health.status.error_message();
  EXPECT_EQ(health.reply, std::string("\x08\x01", 2));
  // Reflection answers a client: ServerReflectionRequest{list_services: ""}.
  RawResult listed = RawCall(channel, kReflection, std::string("\x3a\x00", 2), kTokenClient);
  ASSERT_TRUE(listed.status.ok()) << listed.status.error_message();
  EXPECT_THAT(listed.reply, HasSubstr("pcsweep.v1.Coordinator"));
}

TEST_F(AuthServerTest, ClientAndWorkerRolesAreSeparate) {
  StartWithCredentials();
  Caller a = As(kTokenA);
  Caller alice = As(kTokenClient);
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(kSpec);
  v1::SubmitSweepResponse submitted;
  ExpectStatus(a([&](auto* s, auto* c) { return s->SubmitSweep(c, submit, &submitted); }),
               grpc::StatusCode::PERMISSION_DENIED,
               "token 'gpu-a' (worker) may not call client method SubmitSweep");
  v1::ListSweepsResponse listed;
  ExpectStatus(
      a([&](auto* s, auto* c) { return s->ListSweeps(c, v1::ListSweepsRequest(), &listed); }),
      grpc::StatusCode::PERMISSION_DENIED,
      "token 'gpu-a' (worker) may not call client method ListSweeps");
  v1::RegisterWorkerResponse registered;
  ExpectStatus(alice([&](auto* s, auto* c) {
                 return s->RegisterWorker(c, Registration("alice", "inc"), &registered);
               }),
               grpc::StatusCode::PERMISSION_DENIED,
               "token 'alice' (client) may not call worker method RegisterWorker");
  v1::AcquireJobRequest acquire;
  acquire.set_worker_id("alice");
  v1::AcquireJobResponse acquired;
  ExpectStatus(alice([&](auto* s, auto* c) { return s->AcquireJob(c, acquire, &acquired); }),
               grpc::StatusCode::PERMISSION_DENIED,
               "token 'alice' (client) may not call worker method AcquireJob");
  EXPECT_TRUE(alice([&](auto* s, auto* c) {
                return s->ListSweeps(c, v1::ListSweepsRequest(), &listed);
              }).ok());
  // The role check also runs before the message is read: an unparsable message from a
  // worker credential to a client method gets PERMISSION_DENIED, not UNIMPLEMENTED.
  RawResult raw =
      RawCall(Channel(), "/pcsweep.v1.Coordinator/SubmitSweep", std::string(1024, '\xff'), kTokenA);
  ExpectStatus(raw.status, grpc::StatusCode::PERMISSION_DENIED,
               "token 'gpu-a' (worker) may not call client method SubmitSweep");
  raw = RawCall(Channel(), "/pcsweep.v1.Coordinator/SubmitSweep", std::string(1024, '\xff'),
                kTokenClient);
  // gRPC's callback server answers a message it cannot parse with UNIMPLEMENTED.
  EXPECT_EQ(raw.status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << raw.status.error_message();
}

TEST_F(AuthServerTest, BadCredentialsFileNamesTheLine) {
  options_.credentials_file = Write("credentials",
                                    "client alice token:0123456789abcdef\n"
                                    "worker gpu-a secret\n");
  auto server = CoordinatorServer::Start(options_);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.status().message(),
            options_.credentials_file + ":2: SECRET must be sha256:HEX, token:TOKEN or cert");
}

TEST_F(AuthServerTest, NonLoopbackWithoutAuthNeedsInsecure) {
  options_.listen = "0.0.0.0:0";
  auto refused = CoordinatorServer::Start(options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("refusing to listen on 0.0.0.0:0 without authentication"));
  options_.insecure = true;
  Start();
  EXPECT_GT(server_->port(), 0);
  // Without auth every caller may call anything.
  v1::ListSweepsResponse listed;
  EXPECT_TRUE(As("")([&](auto* s, auto* c) {
                return s->ListSweeps(c, v1::ListSweepsRequest(), &listed);
              }).ok());
}

TEST_F(AuthServerTest, NonLoopbackWithCredentialsStarts) {
  options_.listen = "0.0.0.0:0";
  StartWithCredentials();
  EXPECT_GT(server_->port(), 0);
}

// --- mTLS ---------------------------------------------------------------------------------

class MtlsTest : public AuthServerTest {
 protected:
  void SetUp() override {
    AuthServerTest::SetUp();
    if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
    Run(Ca("ca"));
    Run(Ca("rogue-ca"));
    Run(Leaf("server", "ca", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost"));
    Run(Leaf("gpu-a", "ca", "gpu-a", "extendedKeyUsage=clientAuth"));
    Run(Leaf("rogue", "rogue-ca", "gpu-a", "extendedKeyUsage=clientAuth"));
    options_.tls_cert_file = Path("server.crt");
    options_.tls_key_file = Path("server.key");
    options_.tls_client_ca_file = Path("ca.crt");
  }

  std::string Path(const std::string& name) { return (dir_ / name).string(); }
  void Run(const std::string& command) {
    ASSERT_EQ(std::system(("(" + command + ") > /dev/null 2>&1").c_str()), 0) << command;
  }
  std::string Ca(const std::string& name) {
    return absl::StrCat(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "
        "/CN=",
        name, " -keyout ", Path(name + ".key"), " -out ", Path(name + ".crt"));
  }
  std::string Leaf(const std::string& name, const std::string& ca, const std::string& cn,
                   const std::string& extension) {
    std::ofstream(Path(name + ".ext")) << extension << "\n";
    return absl::StrCat(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=", cn,
        " -keyout ", Path(name + ".key"), " -out ", Path(name + ".csr"),
        " && openssl x509 -req -days 1 -in ", Path(name + ".csr"), " -CA ", Path(ca + ".crt"),
        " -CAkey ", Path(ca + ".key"), " -CAcreateserial -extfile ", Path(name + ".ext"), " -out ",
        Path(name + ".crt"));
  }
  std::string Read(const std::string& name) { return *rpc::ReadSecretFile(Path(name)); }
  std::unique_ptr<v1::Coordinator::Stub> StubWithCert(const std::string& cert) {
    rpc::ChannelOptions options;
    options.tls_ca_pem = Read("ca.crt");
    if (!cert.empty()) {
      options.tls_cert_pem = Read(cert + ".crt");
      options.tls_key_pem = Read(cert + ".key");
    }
    return v1::Coordinator::NewStub(Channel(options));
  }
  static grpc::Status Register(v1::Coordinator::Stub* stub, const std::string& name) {
    grpc::ClientContext context;
    rpc::PrepareContext(&context, absl::Seconds(10), "");
    v1::RegisterWorkerResponse response;
    return stub->RegisterWorker(&context, Registration(name, "inc"), &response);
  }
};

TEST_F(MtlsTest, TheCertificateCommonNameIsTheWorkerIdentity) {
  Start();
  auto stub = StubWithCert("gpu-a");
  grpc::Status own = Register(stub.get(), "gpu-a");
  EXPECT_TRUE(own.ok()) << own.error_message();
  ExpectStatus(Register(stub.get(), "gpu-b"), grpc::StatusCode::PERMISSION_DENIED,
               "the credential of worker 'gpu-a' may not act as worker 'gpu-b'");
}

TEST_F(MtlsTest, CertificatesNotSignedByTheCaOrMissingAreRefused) {
  Start();
  auto rogue = StubWithCert("rogue");
  grpc::Status status = Register(rogue.get(), "gpu-a");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  auto none = StubWithCert("");
  status = Register(none.get(), "gpu-a");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(MtlsTest, WithACredentialsFileACertificateHasTheListedRolesOnly) {
  options_.credentials_file = Write("credentials", "worker gpu-a cert\n");
  Start();
  auto stub = StubWithCert("gpu-a");
  EXPECT_TRUE(Register(stub.get(), "gpu-a").ok());
  grpc::ClientContext context;
  rpc::PrepareContext(&context, absl::Seconds(10), "");
  v1::ListSweepsResponse listed;
  ExpectStatus(stub->ListSweeps(&context, v1::ListSweepsRequest(), &listed),
               grpc::StatusCode::PERMISSION_DENIED,
               "certificate 'gpu-a' (worker) may not call client method ListSweeps");
}

TEST_F(MtlsTest, ClientCaNeedsTls) {
  options_.tls_cert_file.clear();
  options_.tls_key_file.clear();
  auto server = CoordinatorServer::Start(options_);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("--tls-client-ca needs TLS"));
}

}  // namespace
}  // namespace pcsweep::coordinator
