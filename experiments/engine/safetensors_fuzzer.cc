// Fuzz target: a .safetensors file as a checkpoint folder may hold it (a downloaded or
// hand-made model is untrusted input). Open validates the header; every tensor it then
// lists must lie inside the mapping, which reading each of its bytes checks under ASan.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/testing/fuzz_input.h"
#include "experiments/engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pcsweep::testutil::WriteFuzzInput(data, size, "st.safetensors");
  auto file = pcsweep::engine::SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  uint64_t checksum = 0;
  for (const auto& name : (*file)->names()) {
    auto view = (*file)->Get(name);
    if (!view.ok()) std::abort();  // a listed tensor must be gettable
    if (static_cast<size_t>(view->numel()) * pcsweep::engine::DTypeSize(view->dtype) !=
        view->nbytes) {
      std::abort();  // Open promises nbytes = numel x itemsize
    }
    for (size_t i = 0; i < view->nbytes; ++i) checksum += static_cast<uint8_t>(view->data[i]);
  }
  volatile uint64_t sink = checksum;
  (void)sink;
  return 0;
}
