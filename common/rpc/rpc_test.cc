#include "common/rpc/rpc.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::rpc {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

std::filesystem::path TestDir() {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("pcsweep_rpc_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

int IntArgument(const grpc::ChannelArguments& arguments, const char* key) {
  const grpc_channel_args args = arguments.c_channel_args();
  for (size_t i = 0; i < args.num_args; ++i) {
    if (std::string(args.args[i].key) == key && args.args[i].type == GRPC_ARG_INTEGER) {
      return args.args[i].value.integer;
    }
  }
  return -1;
}

TEST(DefaultChannelArgumentsTest, CarryTheSharedMessageLimitAndKeepalive) {
  const grpc::ChannelArguments arguments = DefaultChannelArguments();
  EXPECT_EQ(IntArgument(arguments, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH), kMaxMessageBytes);
  EXPECT_EQ(IntArgument(arguments, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH), kMaxMessageBytes);
  EXPECT_EQ(IntArgument(arguments, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS), 1);
  EXPECT_EQ(kMaxMessageBytes, 64 << 20);
}

TEST(IsCoordinatorRefusalTest, TellsTheCoordinatorsReasonFromATransportFailure) {
  EXPECT_TRUE(IsCoordinatorRefusal(
      absl::UnavailableError("coordinator cannot write its database: disk I/O error")));
  EXPECT_FALSE(IsCoordinatorRefusal(absl::UnavailableError("failed to connect to all addresses")));
  EXPECT_FALSE(IsCoordinatorRefusal(absl::UnavailableError("Socket closed")));
  EXPECT_FALSE(IsCoordinatorRefusal(absl::InvalidArgumentError("coordinator said no")));
}

TEST(WriteRandomTokenFileTest, FreshOwnerOnlyTokenThatReadsBack) {
  const std::string path = (TestDir() / "local.token").string();
  std::ofstream(path) << "old";
  ::chmod(path.c_str(), 0644);
  absl::StatusOr<std::string> first = WriteRandomTokenFile(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(*first, MatchesRegex("[0-9a-f]{64}"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  absl::StatusOr<std::string> read = ReadSecretFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, *first);
  absl::StatusOr<std::string> second = WriteRandomTokenFile(path);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*second, *first);
  std::filesystem::remove_all(TestDir());
}

TEST(WriteRandomTokenFileTest, UnwritablePlaceIsPermissionDenied) {
  absl::StatusOr<std::string> token = WriteRandomTokenFile("/nonexistent-dir/x.token");
  EXPECT_EQ(token.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(token.status().message(), HasSubstr("cannot create /nonexistent-dir/x.token: "));
}

TEST(CertificateCommonNameTest, ReadsTheSubjectCn) {
  const std::filesystem::path dir = TestDir();
  const std::string key = (dir / "k.pem").string();
  const std::string cert = (dir / "c.pem").string();
  ASSERT_EQ(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-nodes -days 1 -subj /O=lab/CN=gpu-a -keyout " +
                         key + " -out " + cert + " > /dev/null 2>&1")
                            .c_str()),
            0);
  absl::StatusOr<std::string> pem = ReadSecretFile(cert);
  ASSERT_TRUE(pem.ok()) << pem.status();
  absl::StatusOr<std::string> cn = CertificateCommonName(*pem);
  ASSERT_TRUE(cn.ok()) << cn.status();
  EXPECT_EQ(*cn, "gpu-a");
  ASSERT_EQ(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-nodes -days 1 -subj /O=lab -keyout " +
                         key + " -out " + cert + " > /dev/null 2>&1")
                            .c_str()),
            0);
  absl::StatusOr<std::string> no_cn = CertificateCommonName(*ReadSecretFile(cert));
  EXPECT_EQ(no_cn.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(no_cn.status().message(), "the certificate has no subject CN");
  absl::StatusOr<std::string> garbage = CertificateCommonName("hello");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(garbage.status().message(), "not a PEM certificate");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pcsweep::rpc
