// A file of the source tree for tests that read checked-in data: ctest runs them with
// PCSWEEP_SOURCE_ROOT set; without it the path is relative to the working directory.
#ifndef PCSWEEP_COMMON_TESTING_SOURCE_PATH_H_
#define PCSWEEP_COMMON_TESTING_SOURCE_PATH_H_

#include <cstdlib>
#include <filesystem>
#include <string>

namespace pcsweep::testutil {

inline std::string SourcePath(const std::string& relative) {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  return (std::filesystem::path(root != nullptr ? root : ".") / relative).string();
}

}  // namespace pcsweep::testutil

#endif  // PCSWEEP_COMMON_TESTING_SOURCE_PATH_H_
