// Test-only: a whole safetensors file copied into plain buffers (F32, I64, U8), read through
// the engine's torch-free reader, so the inputs tests compare with the HF/PIL fixtures
// without libtorch.
#ifndef PCSWEEP_EXPERIMENTS_INPUTS_TESTING_SAFETENSORS_H_
#define PCSWEEP_EXPERIMENTS_INPUTS_TESTING_SAFETENSORS_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "experiments/engine/safetensors.h"

namespace pcsweep::inputs::testing {

struct LoadedTensor {
  std::string dtype;  // "F32", "I64", ...
  std::vector<int64_t> shape;
  std::string bytes;

  template <typename T>
  std::vector<T> As() const {
    std::vector<T> out(bytes.size() / sizeof(T));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    return out;
  }
};

// Throws std::runtime_error with the reader's message on a missing or malformed file.
inline std::map<std::string, LoadedTensor> ReadSafetensors(const std::string& path) {
  auto file = engine::SafetensorsFile::Open(path);
  if (!file.ok()) throw std::runtime_error(std::string(file.status().message()));
  std::map<std::string, LoadedTensor> tensors;
  for (const std::string& name : (*file)->names()) {
    const engine::TensorView view = *(*file)->Get(name);
    tensors[name] = {engine::DTypeName(view.dtype), view.shape,
                     std::string(reinterpret_cast<const char*>(view.data), view.nbytes)};
  }
  return tensors;
}

}  // namespace pcsweep::inputs::testing

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_TESTING_SAFETENSORS_H_
