#include "common/fileio/durable_rename.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace pcsweep {

absl::Status FsyncPath(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat(path, ": cannot open: ", strerror(errno)));
  const int rc = fsync(fd);
  const int saved = errno;
  close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat(path, ": cannot fsync: ", strerror(saved)));
  return absl::OkStatus();
}

absl::Status RenameDurably(const std::string& tmp, const std::string& path) {
  if (absl::Status synced = FsyncPath(tmp); !synced.ok()) {
    std::remove(tmp.c_str());
    return synced;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot rename into place: ", strerror(saved)));
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  return FsyncPath(dir.empty() ? "." : dir);
}

absl::Status WriteFileDurably(const std::string& path, std::string_view bytes) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::InternalError(absl::StrCat(tmp, ": cannot write"));
    }
  }
  return RenameDurably(tmp, path);
}

}  // namespace pcsweep
