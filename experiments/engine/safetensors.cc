#include "experiments/engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/fileio/durable_rename.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::engine {
namespace {

// safetensors' own MAX_HEADER_SIZE: a larger length is a corrupt file, not a big model.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

absl::Status Invalid(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

}  // namespace

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  static const std::map<std::string, DType, std::less<>> kNames = {
      {"F64", DType::kF64}, {"F32", DType::kF32},  {"F16", DType::kF16}, {"BF16", DType::kBF16},
      {"I64", DType::kI64}, {"I32", DType::kI32},  {"I16", DType::kI16}, {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool}};
  auto it = kNames.find(name);
  if (it == kNames.end()) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported dtype '", name, "'"));
  }
  return it->second;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return "F64";
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI64:
      return "I64";
    case DType::kI32:
      return "I32";
    case DType::kI16:
      return "I16";
    case DType::kI8:
      return "I8";
    case DType::kU8:
      return "U8";
    case DType::kBool:
      return "BOOL";
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  return 0;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

void SafetensorsFile::ReleasePages(const TensorView& view) const {
  const auto* base = static_cast<const std::byte*>(mapping_);
  if (view.data < base || view.data + view.nbytes > base + mapping_size_ || view.nbytes == 0)
    return;
  // Rounded outwards to whole pages: a neighbour's page dropped with it is read back from the
  // file when that neighbour is used (the mapping is private and read-only, never dirty).
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(view.data) & ~(page - 1);
  const auto end = reinterpret_cast<uintptr_t>(view.data + view.nbytes);
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InternalError(absl::StrCat(path, ": open: ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": stat: ", std::strerror(errno)));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    return Invalid(path, absl::StrCat("truncated safetensors file (", file_size,
                                      " bytes, less than the 8-byte header length)"));
  }
  void* mapping = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap: ", std::strerror(errno)));
  }
  file->mapping_ = mapping;
  file->mapping_size_ = file_size;
  const auto* bytes = static_cast<const std::byte*>(mapping);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[i]);
  if (header_len > kMaxHeaderSize) {
    return Invalid(path, absl::StrCat("header length ", header_len, " exceeds the limit of ",
                                      kMaxHeaderSize, " (corrupt file?)"));
  }
  if (8 + header_len > file_size) {
    return Invalid(path, absl::StrCat("truncated: header length ", header_len, " but the file has ",
                                      file_size, " bytes"));
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes) + 8,
                                   reinterpret_cast<const char*>(bytes) + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    return Invalid(path, absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return Invalid(path, "header is not a JSON object");

  const uint64_t buffer_size = file_size - 8 - header_len;
  const std::byte* buffer = bytes + 8 + header_len;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return Invalid(path, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string())
          return Invalid(path, absl::StrCat("__metadata__.", k, " is not a string"));
        file->metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor '", name, "': ");
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets")) {
      return Invalid(path, where + "entry needs dtype, shape and data_offsets");
    }
    if (!entry["dtype"].is_string()) return Invalid(path, where + "dtype is not a string");
    auto dtype = ParseDType(entry["dtype"].get<std::string>());
    if (!dtype.ok()) return Invalid(path, where + std::string(dtype.status().message()));
    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    const auto& shape = entry["shape"];
    if (!shape.is_array()) return Invalid(path, where + "shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned())
        return Invalid(path, where + "shape has a non-integer or negative dim");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 62) || (dim != 0 && numel > (uint64_t{1} << 62) / dim))
        return Invalid(path, where + "shape overflows");
      numel *= dim;
      view.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      return Invalid(path, where + "data_offsets must be [begin, end] with non-negative integers");
    }
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end)
      return Invalid(path,
                     where + absl::StrCat("data_offsets [", begin, ", ", end, "] are reversed"));
    if (end > buffer_size) {
      return Invalid(path,
                     where + absl::StrCat("data_offsets end ", end, " is past the data buffer (",
                                          buffer_size, " bytes; truncated file?)"));
    }
    // numel * size can wrap (numel up to 2^62, size up to 8): compare by division first.
    const uint64_t size = DTypeSize(view.dtype);
    if (numel > (end - begin) / size || numel * size != end - begin) {
      const std::string need =
          numel > UINT64_MAX / size ? absl::StrCat(numel, " x ", size) : absl::StrCat(numel * size);
      return Invalid(path,
                     where + absl::StrCat("holds ", end - begin, " bytes but dtype ",
                                          DTypeName(view.dtype), " and its shape need ", need));
    }
    view.data = buffer + begin;
    view.nbytes = end - begin;
    spans.push_back({begin, end, name});
    file->tensors_.emplace(name, std::move(view));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const Span& s : spans) {
    if (s.begin < cursor) {
      return Invalid(path, absl::StrCat("tensor '", s.name, "' overlaps the previous tensor"));
    }
    if (s.begin > cursor) {
      return Invalid(path, absl::StrCat("gap of ", s.begin - cursor, " bytes before tensor '",
                                        s.name, "' (the data buffer must be covered exactly)"));
    }
    cursor = s.end;
  }
  if (cursor != buffer_size) {
    return Invalid(
        path, absl::StrCat("data buffer has ", buffer_size, " bytes but the tensors cover ", cursor,
                           " (trailing garbage?)"));
  }
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

absl::StatusOr<TensorView> SafetensorsFile::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", name, "'"));
  return it->second;
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
  namespace fs = std::filesystem;
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->path_ = path;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    PCSWEEP_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    for (const auto& name : file->names()) ckpt->file_of_[name] = file.get();
    ckpt->files_.push_back(std::move(file));
    return ckpt;
  }
  const fs::path single = fs::path(path) / "model.safetensors";
  const fs::path index = fs::path(path) / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      in >> j;
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(index.string(), ": not valid JSON: ", e.what()));
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index.string(), ": no weight_map object"));
    }
    std::map<std::string, const SafetensorsFile*> by_shard;
    for (const auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(index.string(), ": weight_map['", name, "'] is not a file name"));
      }
      const std::string shard_name = shard.get<std::string>();
      auto it = by_shard.find(shard_name);
      if (it == by_shard.end()) {
        PCSWEEP_ASSIGN_OR_RETURN(auto file,
                                 SafetensorsFile::Open((fs::path(path) / shard_name).string()));
        it = by_shard.emplace(shard_name, file.get()).first;
        ckpt->files_.push_back(std::move(file));
      }
      if (!it->second->Contains(name)) {
        return absl::InvalidArgumentError(absl::StrCat(index.string(), ": tensor '", name,
                                                       "' is mapped to ", it->second->path(),
                                                       " which does not contain it"));
      }
      ckpt->file_of_[name] = it->second;
    }
    return ckpt;
  }
  if (fs::exists(single, ec)) {
    PCSWEEP_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(single.string()));
    for (const auto& name : file->names()) ckpt->file_of_[name] = file.get();
    ckpt->files_.push_back(std::move(file));
    return ckpt;
  }
  return absl::NotFoundError(
      absl::StrCat(path, ": no model.safetensors or model.safetensors.index.json in this folder"));
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : file_of_) out.push_back(name);
  return out;
}

absl::StatusOr<TensorView> Checkpoint::Get(const std::string& name) const {
  auto it = file_of_.find(name);
  if (it == file_of_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": missing tensor '", name, "'"));
  }
  return it->second->Get(name);
}

std::string Checkpoint::FileOf(const std::string& name) const {
  auto it = file_of_.find(name);
  return it == file_of_.end() ? "" : it->second->path();
}

void Checkpoint::ReleasePages(const std::string& name) const {
  auto it = file_of_.find(name);
  if (it == file_of_.end()) return;
  auto view = it->second->Get(name);
  if (view.ok()) it->second->ReleasePages(*view);
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> order;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__" || !seen.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": empty, reserved or duplicate tensor name '", t.name, "'"));
    }
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    if (static_cast<size_t>(numel) * DTypeSize(t.dtype) != t.nbytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", t.name, "' has ", t.nbytes,
                                                     " bytes, shape needs ",
                                                     numel * DTypeSize(t.dtype)));
    }
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(),
            [](const TensorToWrite* a, const TensorToWrite* b) { return a->name < b->name; });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite* t : order) {
    header[t->name] = {{"dtype", DTypeName(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::InternalError(absl::StrCat(tmp, ": cannot open for writing"));
    uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorToWrite* t : order) {
      out.write(static_cast<const char*>(t->data), static_cast<std::streamsize>(t->nbytes));
    }
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat(tmp, ": write failed"));
  }
  // Checkpoints and adapters are what later stages and the paper's figures load: fsync the
  // file before the rename and the directory after it.
  return RenameDurably(tmp, path);
}

}  // namespace pcsweep::engine
