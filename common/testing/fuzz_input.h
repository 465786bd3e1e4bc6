// Support for fuzz targets (libFuzzer's LLVMFuzzerTestOneInput) whose code under test reads
// a file rather than bytes: each input is written to one scratch file per process, reused
// from input to input, so a fuzzing run does not fill the disk.
// Thread-safety: none; libFuzzer calls a target from one thread.
#ifndef PCSWEEP_COMMON_TESTING_FUZZ_INPUT_H_
#define PCSWEEP_COMMON_TESTING_FUZZ_INPUT_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace pcsweep::testutil {

// Writes data[0, size) to $TMPDIR/pcsweep-fuzz-<pid>-<tag> and returns the path. A failed
// write aborts: a fuzzer that silently tests an empty file finds nothing.
inline std::string WriteFuzzInput(const uint8_t* data, size_t size, const std::string& tag) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                           "/pcsweep-fuzz-" + std::to_string(getpid()) + "-" + tag;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace pcsweep::testutil

#endif  // PCSWEEP_COMMON_TESTING_FUZZ_INPUT_H_
