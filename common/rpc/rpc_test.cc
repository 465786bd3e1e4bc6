#include "common/rpc/rpc.h"

#include <sys/stat.h>

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

}  // namespace
}  // namespace pcsweep::rpc
