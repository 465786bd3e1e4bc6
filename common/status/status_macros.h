// Early-return helpers for absl::Status / absl::StatusOr, the error model of every pcsweep
// module boundary. Abseil 20220623 (Debian 12) has no ABSL_RETURN_IF_ERROR, hence these.
#ifndef PCSWEEP_COMMON_STATUS_STATUS_MACROS_H_
#define PCSWEEP_COMMON_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define PCSWEEP_STATUS_CONCAT_INNER_(a, b) a##b
#define PCSWEEP_STATUS_CONCAT_(a, b) PCSWEEP_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function when it is not OK.
#define PCSWEEP_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status pcsweep_status_ = (expr);           \
    if (!pcsweep_status_.ok()) return pcsweep_status_; \
  } while (false)

// Evaluates `rexpr` (a StatusOr<T>); on error returns its status, else moves the value
// into `lhs`, which may be a declaration: PCSWEEP_ASSIGN_OR_RETURN(auto x, Parse(s));
#define PCSWEEP_ASSIGN_OR_RETURN(lhs, rexpr) \
  PCSWEEP_ASSIGN_OR_RETURN_IMPL_(PCSWEEP_STATUS_CONCAT_(pcsweep_statusor_, __LINE__), lhs, rexpr)

#define PCSWEEP_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

namespace pcsweep {

// Prefixes `context` to a non-OK status message, keeping its code: "reading x.json: ...".
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace pcsweep

#endif  // PCSWEEP_COMMON_STATUS_STATUS_MACROS_H_
