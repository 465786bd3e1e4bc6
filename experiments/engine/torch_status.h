// The one place where libtorch exceptions become absl::Status. Every facade of the engine,
// trainer and SAE code runs its libtorch work through GuardTorch, so a shape mismatch or an
// allocation failure deep inside a forward ends a job with one line that names what was being
// done, never with an uncaught exception.
//
// Included only by experiments/ sources (it pulls in c10's exception header).

#ifndef PCSWEEP_EXPERIMENTS_ENGINE_TORCH_STATUS_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_TORCH_STATUS_H_

#include <c10/util/Exception.h>

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pcsweep::engine {

// Runs `body` (returning absl::Status or absl::StatusOr<T>) and turns a c10::Error or any
// std::exception it throws into InternalError("<context>: libtorch: <message>").
template <typename Fn>
auto GuardTorch(absl::string_view context, Fn&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(context, ": libtorch: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what()));
  }
}

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_TORCH_STATUS_H_
