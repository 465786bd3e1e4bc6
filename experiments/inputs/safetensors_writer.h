// A minimal, torch-free safetensors writer for the inputs tools (`pcsweep-run preprocess`,
// `tokenize --out`): F32 and I64 tensors from plain buffers. Reading safetensors (mmap,
// BF16, shards) is the engine's job (experiments/engine).
#ifndef PCSWEEP_EXPERIMENTS_INPUTS_SAFETENSORS_WRITER_H_
#define PCSWEEP_EXPERIMENTS_INPUTS_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pcsweep::inputs {

// One tensor to write: exactly one of f32 / i64 holds product(shape) values.
struct OutputTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<int64_t> i64;
  bool is_i64 = false;

  static OutputTensor F32(std::string name, std::vector<int64_t> shape, std::vector<float> values);
  static OutputTensor I64(std::string name, std::vector<int64_t> shape,
                          std::vector<int64_t> values);
};

// Writes `tensors` (in the given order, little-endian, header padded to 8 bytes) to `path`
// through a temporary file renamed into place, so a reader never sees a partial file.
// Possible errors: InvalidArgument naming the tensor when its size does not match its
// shape or a name repeats; Internal naming the path when writing fails.
absl::Status WriteSafetensors(const std::string& path, const std::vector<OutputTensor>& tensors);

}  // namespace pcsweep::inputs

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_SAFETENSORS_WRITER_H_
