#include "common/logging/logging.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/spdlog.h"

namespace pcsweep {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(LoggingTest, ParsesLevels) {
  EXPECT_EQ(*ParseLogLevel("DEBUG"), spdlog::level::debug);
  EXPECT_EQ(*ParseLogLevel("warning"), spdlog::level::warn);
  EXPECT_EQ(*ParseLogLevel("error"), spdlog::level::err);
  absl::StatusOr<spdlog::level::level_enum> bad = ParseLogLevel("loud");
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            "unknown log level 'loud' (use trace, debug, info, warn,"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'loud'"));
}

TEST(LoggingTest, WritesFormattedLinesAtOrAboveTheLevelToTheFile) {
  const std::string path =
      testing::TempDir() + "/logging_test_" + std::to_string(getpid()) + ".log";
  std::remove(path.c_str());
  ASSERT_TRUE(InitLogging("info", path).ok());
  spdlog::debug("hidden line");
  spdlog::info("job {} done", 7);
  spdlog::warn("lease lost");
  const std::string log = ReadFile(path);
  EXPECT_THAT(log, Not(HasSubstr("hidden line")));
  std::istringstream lines(log);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_THAT(
      first,
      MatchesRegex(R"(^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]{12} I [0-9]+:[0-9]+\] job 7 done$)"));
  EXPECT_THAT(second, MatchesRegex(R"(^.* W [0-9]+:[0-9]+\] lease lost$)"));
  ASSERT_TRUE(InitLogging("info").ok());  // release the file
  std::remove(path.c_str());
}

TEST(LoggingTest, RefusesBadLevelAndUnopenableFile) {
  EXPECT_EQ(InitLogging("verbose").code(), absl::StatusCode::kInvalidArgument);
  // spdlog creates missing folders, so make one impossible: a folder inside a regular file.
  const std::string plain_file =
      testing::TempDir() + "/logging_test_file_" + std::to_string(getpid());
  std::ofstream(plain_file) << "x";
  const std::string path = plain_file + "/y.log";
  absl::Status status = InitLogging("info", path);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr(path));
  std::remove(plain_file.c_str());
}

}  // namespace
}  // namespace pcsweep
