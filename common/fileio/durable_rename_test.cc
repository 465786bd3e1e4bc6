#include "common/fileio/durable_rename.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(RenameDurablyTest, ReplacesTheDestinationWithTheTemporary) {
  const fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat("durable-", getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "a") << "old";
  std::ofstream(dir / "a.tmp") << "new";
  ASSERT_TRUE(RenameDurably((dir / "a.tmp").string(), (dir / "a").string()).ok());
  std::ifstream in(dir / "a");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "new");
  EXPECT_FALSE(fs::exists(dir / "a.tmp"));
  fs::remove_all(dir);
}

TEST(RenameDurablyTest, MissingTemporaryIsInternalNamingItAndKeepsTheOldFile) {
  const fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat("durable-missing-", getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "a") << "old";
  absl::Status status = RenameDurably((dir / "none.tmp").string(), (dir / "a").string());
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr((dir / "none.tmp").string() + ": cannot open: No such"));
  EXPECT_TRUE(fs::exists(dir / "a"));
  fs::remove_all(dir);
}

TEST(WriteFileDurablyTest, ReplacesTheFileWholeAndLeavesNoTemporary) {
  const fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat("durable-write-", getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << "old and longer";
  ASSERT_TRUE(WriteFileDurably((dir / "config.json").string(), "{}\n").ok());
  std::ifstream in(dir / "config.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "{}\n");
  EXPECT_FALSE(fs::exists(dir / "config.json.tmp"));
  fs::remove_all(dir);
}

TEST(WriteFileDurablyTest, MissingFolderIsInternalNamingTheTemporary) {
  const fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat("durable-none-", getpid());
  absl::Status status = WriteFileDurably((dir / "x.json").string(), "{}");
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr((dir / "x.json.tmp").string() + ": cannot write"));
}

}  // namespace
}  // namespace pcsweep
