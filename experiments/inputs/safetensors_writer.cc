#include "experiments/inputs/safetensors_writer.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace pcsweep::inputs {

OutputTensor OutputTensor::F32(std::string name, std::vector<int64_t> shape,
                               std::vector<float> values) {
  OutputTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.f32 = std::move(values);
  return t;
}

OutputTensor OutputTensor::I64(std::string name, std::vector<int64_t> shape,
                               std::vector<int64_t> values) {
  OutputTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.i64 = std::move(values);
  t.is_i64 = true;
  return t;
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<OutputTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::set<std::string> names;
  size_t offset = 0;
  for (const auto& t : tensors) {
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", t.name, "' written twice"));
    }
    int64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0)
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": tensor '", t.name, "' has a negative dim"));
      count *= d;
    }
    const size_t have = t.is_i64 ? t.i64.size() : t.f32.size();
    if (static_cast<size_t>(count) != have) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", t.name, "' has ", have,
                                                     " values for a shape of ", count));
    }
    const size_t bytes = have * (t.is_i64 ? sizeof(int64_t) : sizeof(float));
    header[t.name] = {{"dtype", t.is_i64 ? "I64" : "F32"},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_size = header_text.size();

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return absl::InternalError(absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
    char size_bytes[8];
    for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<char>((header_size >> (8 * i)) & 0xFF);
    out.write(size_bytes, 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    // Buffers are written as they are in memory: safetensors is little-endian, as are the
    // hosts we run on (x86-64, aarch64).
    for (const auto& t : tensors) {
      if (t.is_i64) {
        out.write(reinterpret_cast<const char*>(t.i64.data()),
                  static_cast<std::streamsize>(t.i64.size() * 8));
      } else {
        out.write(reinterpret_cast<const char*>(t.f32.data()),
                  static_cast<std::streamsize>(t.f32.size() * 4));
      }
    }
    out.close();
    if (!out) return absl::InternalError(absl::StrCat(tmp, ": write failed"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat(path, ": cannot rename from ", tmp, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace pcsweep::inputs
