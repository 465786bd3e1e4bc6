#include "common/testing/status_matchers.h"

#include "gtest/gtest.h"

namespace pcsweep::testutil {
namespace {

using ::testing::Not;

TEST(StatusIsTest, MatchesCodeAndMessageSubstring) {
  absl::Status status = absl::NotFoundError("spec.yaml:3: no such stage 'train'");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound, "no such stage"));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(status, Not(StatusIs(absl::StatusCode::kInvalidArgument, "no such stage")));
  EXPECT_THAT(status, Not(StatusIs(absl::StatusCode::kNotFound, "line 4")));
}

TEST(StatusIsTest, LooksThroughStatusOr) {
  absl::StatusOr<int> failed = absl::InvalidArgumentError("threads must be at least 1");
  absl::StatusOr<int> value = 7;
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kInvalidArgument, "at least 1"));
  EXPECT_THAT(value, StatusIs(absl::StatusCode::kOk));
  EXPECT_THAT(value, IsOk());
  EXPECT_THAT(failed, Not(IsOk()));
}

TEST(StatusIsTest, MismatchExplainsTheStatusSeen) {
  ::testing::StringMatchResultListener listener;
  absl::Status status = absl::UnavailableError("disk full");
  auto matcher = ::testing::SafeMatcherCast<const absl::Status&>(
      StatusIs(absl::StatusCode::kNotFound, "disk"));
  EXPECT_FALSE(matcher.MatchAndExplain(status, &listener));
  EXPECT_THAT(listener.str(), ::testing::HasSubstr("UNAVAILABLE: disk full"));
}

}  // namespace
}  // namespace pcsweep::testutil
