// Golden-file checks for the table and figure tests: compares rendered text with a file under
// the source tree; PCSWEEP_UPDATE_GOLDEN=1 rewrites the file instead (review the diff).
// Test-only (links GoogleTest).
#ifndef PCSWEEP_COMMON_ANALYSIS_GOLDEN_H_
#define PCSWEEP_COMMON_ANALYSIS_GOLDEN_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace pcsweep::analysis::golden {

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// `folder` is relative to the source root ($PCSWEEP_SOURCE_ROOT, else the working directory).
inline void ExpectGolden(const std::string& folder, const std::string& name,
                         const std::string& actual) {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  const std::filesystem::path path = std::filesystem::path(root ? root : ".") / folder / name;
  if (std::getenv("PCSWEEP_UPDATE_GOLDEN") != nullptr) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(path))
      << path << " missing; run with PCSWEEP_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, ReadWholeFile(path)) << "golden mismatch: " << path;
}

}  // namespace pcsweep::analysis::golden

#endif  // PCSWEEP_COMMON_ANALYSIS_GOLDEN_H_
