// Putting a fully written temporary file in place so that it survives a power cut: fsync the
// file, rename it over the destination, fsync the directory (without the first fsync a crash
// can leave an empty or torn file under the final name; without the last, the old one).
// Stateless functions, thread-safe. Errors: Internal "PATH: what: strerror".
#ifndef PCSWEEP_COMMON_FILEIO_DURABLE_RENAME_H_
#define PCSWEEP_COMMON_FILEIO_DURABLE_RENAME_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace pcsweep {

// fsync(2) of `path`, opened read-only (a directory too).
absl::Status FsyncPath(const std::string& path);

// FsyncPath(tmp), rename(tmp, path), FsyncPath(directory of path). On an error before the
// rename `tmp` is removed and `path` keeps its old content.
absl::Status RenameDurably(const std::string& tmp, const std::string& path);

// Writes `bytes` to "<path>.tmp", then RenameDurably into `path`: a reader (or a crash) sees
// the old file or the whole new one, never a torn one.
absl::Status WriteFileDurably(const std::string& path, std::string_view bytes);

}  // namespace pcsweep

#endif  // PCSWEEP_COMMON_FILEIO_DURABLE_RENAME_H_
