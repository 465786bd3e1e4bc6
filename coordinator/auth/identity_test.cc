#include "coordinator/auth/identity.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::coordinator::auth {
namespace {

using ::pcsweep::testutil::IsOk;
using ::pcsweep::testutil::StatusIs;
using ::testing::HasSubstr;

constexpr char kWorkerA[] = "token-of-worker-a-0123456789";
constexpr char kWorkerB[] = "token-of-worker-b-0123456789";
constexpr char kClient[] = "token-of-client-alice-012345";

std::string File() {
  return absl::StrCat("# ROLE NAME SECRET\n", "worker gpu-a token:", kWorkerA, "\n",
                      "worker\tgpu-b sha256:", TokenDigestHex(kWorkerB), "  # hashed\n", "\n",
                      "client alice token:", kClient, "\n", "worker node-7 cert\n",
                      "client node-7 cert\n", "client carol cert\n");
}

std::unique_ptr<Authenticator> Make(const std::string& text, bool certs = false) {
  auto auth = Authenticator::Create(AuthConfig{"creds.txt", text, "", certs});
  EXPECT_TRUE(auth.ok()) << auth.status();
  return auth.ok() ? *std::move(auth) : nullptr;
}

void ExpectError(const std::string& text, absl::StatusCode code, const std::string& message,
                 const std::string& shared = "", bool certs = false) {
  auto auth = Authenticator::Create(AuthConfig{"creds.txt", text, shared, certs});
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), code);
  EXPECT_THAT(auth.status().message(), HasSubstr(message));
}

TEST(ClassifyMethodTest, RolesOfMethods) {
  EXPECT_EQ(ClassifyMethod("/grpc.health.v1.Health/Check"), MethodClass::kOpen);
  EXPECT_EQ(ClassifyMethod("/pcsweep.v1.Coordinator/SubmitSweep"), MethodClass::kClient);
  EXPECT_EQ(ClassifyMethod("/pcsweep.v1.Coordinator/GetResults"), MethodClass::kClient);
  for (const char* m : {"RegisterWorker", "AcquireJob", "Heartbeat", "CompleteJob", "FailJob"}) {
    EXPECT_EQ(ClassifyMethod(absl::StrCat("/pcsweep.v1.Coordinator/", m)), MethodClass::kWorker)
        << m;
  }
  EXPECT_EQ(ClassifyMethod("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            MethodClass::kAny);
}

TEST(AuthenticatorTest, TokensMapToTheirIdentities) {
  auto auth = Make(File());
  ASSERT_NE(auth, nullptr);
  EXPECT_TRUE(auth->enabled());
  auto a = auth->Authenticate(kWorkerA, {});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->name, "gpu-a");
  EXPECT_TRUE(a->worker);
  EXPECT_FALSE(a->client);
  EXPECT_TRUE(a->owns_name);
  auto b = auth->Authenticate(kWorkerB, {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->name, "gpu-b");
  auto c = auth->Authenticate(kClient, {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "alice");
  EXPECT_TRUE(c->client);
  EXPECT_FALSE(c->worker);
}

TEST(AuthenticatorTest, UnknownOrMissingCredentialIsUnauthenticated) {
  auto auth = Make(File());
  ASSERT_NE(auth, nullptr);
  auto wrong = auth->Authenticate("token-of-worker-a-012345678", {});  // a prefix
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(wrong.status().message(), HasSubstr("unknown bearer token"));
  auto none = auth->Authenticate("", {});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(none.status().message(), HasSubstr("missing credentials"));
  // A certificate name without mTLS configured is not a credential.
  EXPECT_EQ(auth->Authenticate("", {"node-7"}).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, CertificatesNeedAListingWhenAFileIsGiven) {
  auto auth = Make(File(), /*certs=*/true);
  ASSERT_NE(auth, nullptr);
  auto node = auth->Authenticate("", {"node-7", "node-7.cluster"});
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->name, "node-7");
  EXPECT_TRUE(node->worker && node->client && node->owns_name);
  auto carol = auth->Authenticate("", {"carol"});
  ASSERT_TRUE(carol.ok()) << carol.status();
  EXPECT_FALSE(carol->worker);
  auto stranger = auth->Authenticate("", {"mallory"});
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(stranger.status().message(),
              HasSubstr("client certificate 'mallory' is not listed in the credentials file"));
  // A token on an mTLS connection takes precedence.
  auto token = auth->Authenticate(kClient, {"node-7"});
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->name, "alice");
}

TEST(AuthenticatorTest, CertificatesWithoutAFileOwnTheirName) {
  auto auth = Authenticator::Create(AuthConfig{"", "", "", true});
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->enabled());
  auto id = (*auth)->Authenticate("", {"gpu-a"});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->name, "gpu-a");
  EXPECT_TRUE(id->worker && id->client && id->owns_name);
  EXPECT_EQ((*auth)->Authenticate("", {}).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, SharedTokenIsBothRolesOwningNoName) {
  auto auth = Authenticator::Create(AuthConfig{"", "", "the-shared-token", false});
  ASSERT_TRUE(auth.ok()) << auth.status();
  auto id = (*auth)->Authenticate("the-shared-token", {});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(id->client && id->worker);
  EXPECT_FALSE(id->owns_name);
  EXPECT_TRUE(AuthorizeWorkerName(*id, "anything").ok());
  EXPECT_EQ((*auth)->Authenticate("the-shared-tokem", {}).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, NoCredentialsMeansEveryoneIsAllowed) {
  auto auth = Authenticator::Create(AuthConfig{});
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE((*auth)->enabled());
  auto id = (*auth)->Authenticate("", {});
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(id->client && id->worker && !id->owns_name);
}

TEST(AuthenticatorTest, BadFilesNameTheLine) {
  ExpectError("worker gpu-a\n", absl::StatusCode::kInvalidArgument,
              "creds.txt:1: expected ROLE NAME SECRET (3 fields), found 2");
  ExpectError("\nadmin root token:0123456789abcdefg\n", absl::StatusCode::kInvalidArgument,
              "creds.txt:2: unknown role 'admin' (client or worker)");
  ExpectError("worker gpu/a token:0123456789abcdefg\n", absl::StatusCode::kInvalidArgument,
              "creds.txt:1: bad name 'gpu/a'");
  ExpectError("worker gpu-a token:short\n", absl::StatusCode::kInvalidArgument,
              "creds.txt:1: token for 'gpu-a' is shorter than 16 characters");
  ExpectError("worker gpu-a sha256:abc\n", absl::StatusCode::kInvalidArgument,
              "creds.txt:1: sha256: needs 64 hex digits, got 'abc'");
  ExpectError("worker gpu-a sha256:" + std::string(64, 'g') + "\n",
              absl::StatusCode::kInvalidArgument, "creds.txt:1: sha256: needs 64 hex digits");
  ExpectError("worker gpu-a password\n", absl::StatusCode::kInvalidArgument,
              "creds.txt:1: SECRET must be sha256:HEX, token:TOKEN or cert");
  ExpectError("worker gpu-a token:0123456789abcdefg\nclient bob token:0123456789abcdefg\n",
              absl::StatusCode::kInvalidArgument,
              "creds.txt:2: the same token is already listed for 'gpu-a'");
  ExpectError("worker gpu-a token:0123456789abcdefg\nworker gpu-a token:0123456789abcdefh\n",
              absl::StatusCode::kInvalidArgument, "creds.txt:2: worker 'gpu-a' listed twice");
  ExpectError("worker n cert\nworker n cert\n", absl::StatusCode::kInvalidArgument,
              "creds.txt:2: certificate 'n' listed twice as worker");
  ExpectError("# nothing\n\n", absl::StatusCode::kInvalidArgument,
              "creds.txt: lists no credential");
  ExpectError(File(), absl::StatusCode::kInvalidArgument,
              "--token-file (one token shared by all clients and workers) cannot be combined",
              "shared-token-0123456789");
  ExpectError("", absl::StatusCode::kInvalidArgument, "cannot be combined",
              "shared-token-0123456789", /*certs=*/true);
}

TEST(AuthorizeTest, RolesGateMethods) {
  Identity worker{"gpu-a", false, true, true, "token"};
  Identity client{"alice", true, false, false, "token"};
  EXPECT_TRUE(AuthorizeMethod(worker, "/pcsweep.v1.Coordinator/CompleteJob").ok());
  EXPECT_TRUE(AuthorizeMethod(client, "/pcsweep.v1.Coordinator/SubmitSweep").ok());
  absl::Status s = AuthorizeMethod(worker, "/pcsweep.v1.Coordinator/SubmitSweep");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "token 'gpu-a' (worker) may not call client method SubmitSweep");
  s = AuthorizeMethod(client, "/pcsweep.v1.Coordinator/RegisterWorker");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "token 'alice' (client) may not call worker method RegisterWorker");
  EXPECT_TRUE(AuthorizeMethod(client, "/grpc.health.v1.Health/Check").ok());
}

TEST(AuthorizeTest, AWorkerCredentialActsOnlyUnderItsOwnName) {
  Identity a{"gpu-a", false, true, true, "token"};
  EXPECT_TRUE(AuthorizeWorkerName(a, "gpu-a").ok());
  absl::Status s = AuthorizeWorkerName(a, "gpu-b");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "the credential of worker 'gpu-a' may not act as worker 'gpu-b'");
  Identity client{"alice", true, false, false, "token"};
  s = AuthorizeWorkerName(client, "alice");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "token 'alice' (client) is not a worker credential");
}

constexpr char kSlurmToken[] = "token-of-the-slurm-array-0123";

absl::StatusOr<std::unique_ptr<Authenticator>> Load(const std::string& text) {
  return Authenticator::Create(AuthConfig{"creds.txt", text, "", false});
}

TEST(WorkerPatternTest, APatternOwnsEveryLongerNameWithItsPrefix) {
  auto auth = Make(absl::StrCat("worker slurm-* token:", kSlurmToken, "\n",
                                "worker gpu-a token:", kWorkerA, "\n"));
  ASSERT_NE(auth, nullptr);
  auto id = auth->Authenticate(kSlurmToken, {});
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->name, "slurm-*");
  EXPECT_TRUE(id->worker && id->owns_name && id->name_is_prefix);
  EXPECT_FALSE(id->client);
  for (const char* name : {"slurm-7-0.0", "slurm-7-1.0", "slurm-7-0.1", "slurm-x"}) {
    EXPECT_THAT(AuthorizeWorkerName(*id, name), IsOk()) << name;
  }
}

TEST(WorkerPatternTest, APatternRefusesOtherNamesAndItsBarePrefix) {
  auto auth = Make(absl::StrCat("worker slurm-* token:", kSlurmToken, "\n"));
  ASSERT_NE(auth, nullptr);
  auto id = auth->Authenticate(kSlurmToken, {});
  ASSERT_THAT(id, IsOk());
  EXPECT_THAT(AuthorizeWorkerName(*id, "gpu-a"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "the credential of worker 'slurm-*' may not act as worker 'gpu-a'"));
  EXPECT_THAT(AuthorizeWorkerName(*id, "slurm-"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "the credential of worker 'slurm-*' may not act as worker 'slurm-'"));
  EXPECT_THAT(AuthorizeWorkerName(*id, "slurm"),
              StatusIs(absl::StatusCode::kPermissionDenied, "may not act as worker 'slurm'"));
  EXPECT_THAT(AuthorizeWorkerName(*id, "xslurm-1"),
              StatusIs(absl::StatusCode::kPermissionDenied, "may not act as worker 'xslurm-1'"));
  // A pattern credential is still only a worker.
  EXPECT_THAT(AuthorizeMethod(*id, "/pcsweep.v1.Coordinator/SubmitSweep"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "token 'slurm-*' (worker) may not call client method SubmitSweep"));
}

TEST(WorkerPatternTest, ExactNamesStillOwnOnlyThemselvesNextToAPattern) {
  auto auth = Make(absl::StrCat("worker slurm-* token:", kSlurmToken, "\n",
                                "worker gpu-a token:", kWorkerA, "\n"));
  ASSERT_NE(auth, nullptr);
  auto a = auth->Authenticate(kWorkerA, {});
  ASSERT_THAT(a, IsOk());
  EXPECT_FALSE(a->name_is_prefix);
  EXPECT_THAT(AuthorizeWorkerName(*a, "gpu-a"), IsOk());
  EXPECT_THAT(AuthorizeWorkerName(*a, "gpu-a1"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "the credential of worker 'gpu-a' may not act as worker 'gpu-a1'"));
}

TEST(WorkerPatternTest, ACertificateNameIsNeverAPattern) {
  auto auth = Authenticator::Create(AuthConfig{"", "", "", true});
  ASSERT_THAT(auth, IsOk());
  auto id = (*auth)->Authenticate("", {"slurm-*"});
  ASSERT_THAT(id, IsOk());
  EXPECT_FALSE(id->name_is_prefix);
  EXPECT_THAT(AuthorizeWorkerName(*id, "slurm-7-0.0"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "the credential of worker 'slurm-*' may not act as worker 'slurm-7-0.0'"));
}

TEST(WorkerPatternTest, BadPatternsNameTheLine) {
  const std::string secret = absl::StrCat(" token:", kSlurmToken, "\n");
  EXPECT_THAT(Load("\nworker *" + secret),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:2: name '*' would own every worker name; give a prefix"));
  EXPECT_THAT(Load("worker slurm*-1" + secret),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:1: bad name 'slurm*-1' ('*' may only end a worker name "
                       "pattern, as in slurm-*)"));
  EXPECT_THAT(Load("worker *slurm" + secret),
              StatusIs(absl::StatusCode::kInvalidArgument, "creds.txt:1: bad name '*slurm'"));
  EXPECT_THAT(Load("worker slurm-**" + secret),
              StatusIs(absl::StatusCode::kInvalidArgument, "creds.txt:1: bad name 'slurm-**'"));
  EXPECT_THAT(Load("worker slu/rm-*" + secret),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:1: bad name 'slu/rm-*' (1-128 characters"));
  EXPECT_THAT(Load("client alice-*" + secret),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:1: name pattern 'alice-*' on a client line"));
  EXPECT_THAT(Load("worker node-* cert\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:1: name pattern 'node-*' needs a token (sha256: or token:), "
                       "not cert"));
}

TEST(WorkerPatternTest, OverlappingWorkerLinesAreRefusedNamingBothLines) {
  const std::string a = absl::StrCat(" token:", kSlurmToken, "\n");
  const std::string b = absl::StrCat(" token:", kWorkerB, "\n");
  EXPECT_THAT(Load("worker slurm-*" + a + "# comment\nworker slurm-7-*" + b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:3: worker 'slurm-7-*' overlaps worker 'slurm-*' of creds.txt:1: "
                       "both could act as the same worker"));
  EXPECT_THAT(Load("worker slurm-7-*" + a + "worker slurm-*" + b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:2: worker 'slurm-*' overlaps worker 'slurm-7-*' of creds.txt:1"));
  EXPECT_THAT(Load("worker slurm-*" + a + "worker slurm-*" + b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:2: worker 'slurm-*' overlaps worker 'slurm-*' of creds.txt:1"));
  EXPECT_THAT(Load("worker slurm-*" + a + "worker slurm-1" + b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:2: worker 'slurm-1' overlaps worker 'slurm-*' of creds.txt:1"));
  EXPECT_THAT(Load("worker slurm-1" + b + "worker slurm-*" + a),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:2: worker 'slurm-*' overlaps worker 'slurm-1' of creds.txt:1"));
  EXPECT_THAT(Load("worker slurm-1 cert\nworker slurm-*" + a),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "creds.txt:2: worker 'slurm-*' overlaps worker 'slurm-1' of creds.txt:1"));
}

TEST(WorkerPatternTest, PatternsThatShareNoNameLoad) {
  const std::string a = absl::StrCat(" token:", kSlurmToken, "\n");
  const std::string b = absl::StrCat(" token:", kWorkerB, "\n");
  // The bare prefix is not the pattern's, so an exact worker may own it.
  EXPECT_THAT(Load("worker slurm-*" + a + "worker slurm-" + b), IsOk());
  EXPECT_THAT(Load("worker slurm-*" + a + "worker gpu-*" + b), IsOk());
  EXPECT_THAT(Load("worker slurm-*" + a + "worker slurm" + b), IsOk());
  // A client named like the pattern's workers owns no worker name.
  EXPECT_THAT(Load("worker slurm-*" + a + "client slurm-1" + b), IsOk());
}

TEST(ListenPolicyTest, NonLoopbackNeedsAuthOrInsecure) {
  std::string warning = "stale";
  EXPECT_TRUE(CheckListenPolicy("127.0.0.1:0", false, false, false, &warning).ok());
  EXPECT_EQ(warning, "");
  EXPECT_TRUE(CheckListenPolicy("localhost:5", false, false, false, &warning).ok());
  EXPECT_TRUE(CheckListenPolicy("[::1]:5", false, false, false, &warning).ok());
  absl::Status s = CheckListenPolicy("0.0.0.0:50551", false, false, false, &warning);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("refusing to listen on 0.0.0.0:50551 without authentication"));
  EXPECT_THAT(s.message(), HasSubstr("--insecure"));
  EXPECT_TRUE(CheckListenPolicy("0.0.0.0:50551", false, false, true, &warning).ok());
  EXPECT_EQ(warning, "");
  EXPECT_TRUE(CheckListenPolicy("[::]:50551", true, false, false, &warning).ok());
  EXPECT_THAT(warning, HasSubstr("bearer tokens reach [::]:50551 in clear text"));
  EXPECT_TRUE(CheckListenPolicy("10.0.0.5:1", true, true, false, &warning).ok());
  EXPECT_EQ(warning, "");
}

TEST(TokenDigestHexTest, KnownVector) {
  EXPECT_EQ(TokenDigestHex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace pcsweep::coordinator::auth
