// Test-only: reads a whole safetensors file into plain buffers (F32, I64, U8) so the
// inputs tests can compare with the HF/PIL fixtures without libtorch. Not for production
// use: the engine's reader (experiments/engine) is the real one.
#ifndef PCSWEEP_EXPERIMENTS_INPUTS_TESTING_SAFETENSORS_H_
#define PCSWEEP_EXPERIMENTS_INPUTS_TESTING_SAFETENSORS_H_

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pcsweep::inputs::testing {

struct LoadedTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;

  template <typename T>
  std::vector<T> As() const {
    std::vector<T> out(bytes.size() / sizeof(T));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    return out;
  }
};

// Throws std::runtime_error on malformed files (tests only).
inline std::map<std::string, LoadedTensor> ReadSafetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  if (data.size() < 8) throw std::runtime_error(path + ": too short");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | static_cast<unsigned char>(data[i]);
  if (8 + header_size > data.size()) throw std::runtime_error(path + ": header out of range");
  const auto header = nlohmann::json::parse(data.substr(8, header_size));
  std::map<std::string, LoadedTensor> tensors;
  for (const auto& [name, meta] : header.items()) {
    if (name == "__metadata__") continue;
    LoadedTensor t;
    t.dtype = meta.at("dtype").get<std::string>();
    t.shape = meta.at("shape").get<std::vector<int64_t>>();
    const auto offsets = meta.at("data_offsets").get<std::vector<uint64_t>>();
    if (8 + header_size + offsets.at(1) > data.size())
      throw std::runtime_error(path + ": " + name + " out of range");
    t.bytes = data.substr(8 + header_size + offsets[0], offsets[1] - offsets[0]);
    tensors.emplace(name, std::move(t));
  }
  return tensors;
}

}  // namespace pcsweep::inputs::testing

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_TESTING_SAFETENSORS_H_
