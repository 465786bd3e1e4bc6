// gMock matchers for absl::Status and absl::StatusOr<T>, for tests only.
//
//   EXPECT_THAT(store.Open(path), StatusIs(absl::StatusCode::kNotFound, "no such file"));
//   EXPECT_THAT(ParseSpec(text), StatusIs(absl::StatusCode::kInvalidArgument));
//   ASSERT_THAT(result, IsOk());
//
// A test that checks only `!status.ok()` passes for the wrong failure too; these matchers make
// the expected code (and, usually, the words the user will read) part of the assertion, and
// print the status that was seen when it does not match.
//
// Namespace testutil, not testing: code inside namespace pcsweep that writes
// `testing::Test` must keep finding gtest's ::testing.
#ifndef PCSWEEP_COMMON_TESTING_STATUS_MATCHERS_H_
#define PCSWEEP_COMMON_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"

namespace pcsweep::testutil {
namespace internal {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }

template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace internal

// Matches a Status or StatusOr whose code is `code` and whose message contains
// `message_substring` (case-sensitive; "" matches any message).
MATCHER_P2(StatusIs, code, message_substring,
           std::string("has status code ") + absl::StatusCodeToString(code) +
               " and a message containing \"" + std::string(message_substring) + "\"") {
  const absl::Status& status = internal::StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code && absl::StrContains(status.message(), message_substring);
}

// Matches a Status or StatusOr whose code is `code`, whatever its message.
MATCHER_P(StatusIs, code, std::string("has status code ") + absl::StatusCodeToString(code)) {
  const absl::Status& status = internal::StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code;
}

// Matches an OK Status or a StatusOr holding a value.
MATCHER(IsOk, "is OK") {
  const absl::Status& status = internal::StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.ok();
}

}  // namespace pcsweep::testutil

#endif  // PCSWEEP_COMMON_TESTING_STATUS_MATCHERS_H_
