// Reading and writing the safetensors format (Hugging Face weights, PEFT adapters, SAEs and
// the engine's own input/output files). Torch-free on purpose: parsing and validation compile
// fast and are unit-tested without libtorch; engine.cc turns TensorViews into torch tensors.
//
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data buffer. Every reader
// check is strict because a truncated download must fail with a message, never a crash.
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_SAFETENSORS_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::engine {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32" -> kF32 etc. Possible errors: InvalidArgument for a dtype this project does not read.
absl::StatusOr<DType> ParseDType(absl::string_view name);
const char* DTypeName(DType dtype);
size_t DTypeSize(DType dtype);

// A tensor inside a mapped file: borrowed bytes, valid while the owning file lives.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const;
};

// One memory-mapped .safetensors file, validated on open (header length, JSON, dtypes,
// offsets in range, sizes = numel x itemsize, tensors non-overlapping and covering the
// buffer). Immutable after Open, so concurrent readers are safe. Owns the mapping.
class SafetensorsFile {
 public:
  // Possible errors: NotFound (no file), InvalidArgument "<path>: ..." naming the tensor for
  // every format violation, Internal when mmap fails.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool Contains(const std::string& name) const { return tensors_.count(name) > 0; }
  // Possible errors: NotFound "<path>: no tensor 'name'".
  absl::StatusOr<TensorView> Get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Drops the resident pages under `view` (a tensor of this file) from the process: a loader
  // that has copied a tensor calls it so that a checkpoint's pages do not sit in its RSS on
  // top of the model (MedGemma-4B: 8.6 GB of bf16 beside 17 GB of fp32). The view stays
  // valid: the kernel reads the pages from the file again if they are touched. Best effort;
  // a view from another file is ignored.
  void ReleasePages(const TensorView& view) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder: `model.safetensors`, or shards listed by `model.safetensors.index.json`
// (each shard opened once). Also accepts a path to a single .safetensors file.
// Immutable after Open; thread-safe for reads.
class Checkpoint {
 public:
  // Possible errors: NotFound (no weights in `path`), InvalidArgument for a malformed index
  // (naming the index file) or a shard (naming the shard), or a tensor the index maps to a
  // shard that lacks it.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& path);

  std::vector<std::string> names() const;  // sorted
  bool Contains(const std::string& name) const { return file_of_.count(name) > 0; }
  // Possible errors: NotFound naming the checkpoint and tensor.
  absl::StatusOr<TensorView> Get(const std::string& name) const;
  // The file that holds `name` (for error messages); "" when absent.
  std::string FileOf(const std::string& name) const;
  const std::string& path() const { return path_; }
  // SafetensorsFile::ReleasePages on the file holding `name`; nothing for an unknown name.
  void ReleasePages(const std::string& name) const;

 private:
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> file_of_;
};

// A tensor to write: bytes in little-endian C order, owned by the caller.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// Writes a safetensors file (header padded with spaces to a multiple of 8, tensors in name
// order, `metadata` as "__metadata__", e.g. {"format": "pt"} for PEFT). Writes to a temporary
// file and renames it, so readers never see a partial file.
// Possible errors: InvalidArgument (size != numel x itemsize, duplicate or empty name),
// Internal (I/O, naming the path).
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_SAFETENSORS_H_
