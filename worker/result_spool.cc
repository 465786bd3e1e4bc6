#include "worker/result_spool.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/any.pb.h"
#include "spdlog/spdlog.h"

namespace pcsweep::worker {
namespace fs = std::filesystem;

namespace {
constexpr char kSuffix[] = ".pb";
constexpr char kTempSuffix[] = ".tmp";

absl::Status ErrnoError(absl::string_view what, absl::string_view path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

absl::Status FsyncPath(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  const int rc = fsync(fd);
  const int saved = errno;
  close(fd);
  errno = saved;
  if (rc != 0) return ErrnoError("cannot fsync", path);
  return absl::OkStatus();
}
}  // namespace

const std::string& SpooledResult::job_id() const {
  return std::visit([](const auto& r) -> const std::string& { return r.job_id(); }, request);
}
int SpooledResult::attempt() const {
  return std::visit([](const auto& r) { return r.attempt(); }, request);
}
std::string SpooledResult::key() const {
  // Job ids come from the coordinator; keep the file name safe whatever they contain.
  std::string safe_id = job_id();
  for (char& c : safe_id) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return absl::StrCat(safe_id, "-", attempt());
}

absl::StatusOr<std::unique_ptr<ResultSpool>> ResultSpool::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create spool ", dir, ": ", ec.message()));
  // A temporary is a write that crashed before its rename: the result was never reported,
  // and the job will be retried by lease expiry, so dropping it is safe.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (absl::EndsWith(entry.path().string(), kTempSuffix)) fs::remove(entry.path(), ec);
  }
  return std::unique_ptr<ResultSpool>(new ResultSpool(dir));
}

std::string ResultSpool::PathFor(const std::string& key) const {
  return absl::StrCat(dir_, "/", key, kSuffix);
}

absl::Status ResultSpool::Write(const SpooledResult& result) {
  google::protobuf::Any any;
  std::visit([&](const auto& r) { any.PackFrom(r); }, result.request);
  std::string bytes;
  if (!any.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("cannot serialize result ", result.key()));
  }
  absl::MutexLock lock(&mu_);
  const std::string path = PathFor(result.key());
  const std::string temp = path + kTempSuffix;
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", temp);
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = ErrnoError("cannot write", temp);
      close(fd);
      unlink(temp.c_str());
      return status;
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    absl::Status status = ErrnoError("cannot fsync", temp);
    close(fd);
    unlink(temp.c_str());
    return status;
  }
  close(fd);
  if (rename(temp.c_str(), path.c_str()) != 0) {
    absl::Status status = ErrnoError("cannot rename into", path);
    unlink(temp.c_str());
    return status;
  }
  // The rename itself must survive a power cut too.
  return FsyncPath(dir_, O_RDONLY | O_DIRECTORY);
}

absl::StatusOr<std::vector<SpooledResult>> ResultSpool::LoadAll() {
  absl::MutexLock lock(&mu_);
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const fs::path& path = entry.path();
    if (path.extension() != kSuffix || !entry.is_regular_file()) continue;
    std::error_code time_ec;
    files.emplace_back(fs::last_write_time(path, time_ec), path);
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list spool ", dir_, ": ", ec.message()));
  std::sort(files.begin(), files.end());

  std::vector<SpooledResult> results;
  for (const auto& [time, path] : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    google::protobuf::Any any;
    SpooledResult result;
    bool ok = in.good() || in.eof();
    ok = ok && any.ParseFromString(buffer.str());
    if (ok && any.Is<v1::CompleteJobRequest>()) {
      v1::CompleteJobRequest request;
      ok = any.UnpackTo(&request);
      result.request = std::move(request);
    } else if (ok && any.Is<v1::FailJobRequest>()) {
      v1::FailJobRequest request;
      ok = any.UnpackTo(&request);
      result.request = std::move(request);
    } else {
      ok = false;
    }
    if (!ok) {
      spdlog::error("spool file {} is unreadable; moved aside as .corrupt", path.string());
      fs::rename(path, path.string() + ".corrupt", ec);
      continue;
    }
    results.push_back(std::move(result));
  }
  return results;
}

absl::Status ResultSpool::Remove(const std::string& key) {
  absl::MutexLock lock(&mu_);
  const std::string path = PathFor(key);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("cannot remove", path);
  return absl::OkStatus();
}

}  // namespace pcsweep::worker
