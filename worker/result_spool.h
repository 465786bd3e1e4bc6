// ResultSpool: job results (CompleteJob or FailJob requests) kept on disk until the
// coordinator acknowledges them, so that a coordinator outage or a worker crash loses none.
//
// Layout: <dir>/<job_id>-<attempt>.pb, each a google.protobuf.Any holding the request. A file
// is written to a temporary name, fsync'ed, renamed into place and the directory fsync'ed, so
// a crash leaves either the whole result or nothing; leftover temporaries are deleted on open.
//
// Ownership: the spool owns its directory. Thread-safety: all methods are thread-safe.
#ifndef PCSWEEP_WORKER_RESULT_SPOOL_H_
#define PCSWEEP_WORKER_RESULT_SPOOL_H_

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "pcsweep/v1/coordinator.pb.h"

namespace pcsweep::worker {

struct SpooledResult {
  std::variant<v1::CompleteJobRequest, v1::FailJobRequest> request;

  const std::string& job_id() const;
  int attempt() const;
  // "<job_id>-<attempt>", the file's base name.
  std::string key() const;
};

class ResultSpool {
 public:
  // Creates `dir` if missing. Possible errors: Internal naming the directory.
  static absl::StatusOr<std::unique_ptr<ResultSpool>> Open(const std::string& dir);

  // Durably stores `result` (replacing one with the same key).
  // Possible errors: Internal naming the file (disk full, permissions).
  absl::Status Write(const SpooledResult& result);

  // Every stored result, oldest first. Unreadable files are skipped with a logged error and
  // renamed to *.corrupt, so that one bad file cannot block the others.
  // Possible errors: Internal when the directory cannot be listed.
  absl::StatusOr<std::vector<SpooledResult>> LoadAll();

  // Deletes the result with this key; a missing file is not an error.
  // Possible errors: Internal naming the file.
  absl::Status Remove(const std::string& key);

  const std::string& dir() const { return dir_; }

 private:
  explicit ResultSpool(std::string dir) : dir_(std::move(dir)) {}
  std::string PathFor(const std::string& key) const;

  const std::string dir_;
  absl::Mutex mu_;  // serialises file operations on the directory
};

}  // namespace pcsweep::worker

#endif  // PCSWEEP_WORKER_RESULT_SPOOL_H_
