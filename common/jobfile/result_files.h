// The result files a job may leave in its output folder after exit 0, besides examples.jsonl
// (example_row.h): metrics.json (metric name -> number; nested objects flattened with dots,
// {"acc": {"base": 0.8}} is "acc.base") and outputs.json (output name -> path or string, which
// later stages of the sweep may name as {{stage.outputs.name}}). The worker reads them with
// ReadResultFile and the parsers below; errors name the file and line.
// Thread-safety: pure functions.
#ifndef PCSWEEP_COMMON_JOBFILE_RESULT_FILES_H_
#define PCSWEEP_COMMON_JOBFILE_RESULT_FILES_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace pcsweep::jobfile {

// The most a result file, or a job's whole report, may hold (far under the coordinator's
// 64 MiB message limit).
inline constexpr size_t kMaxResultBytes = 48 << 20;

// The contents of one result file.
// Possible errors: ResourceExhausted "<path> is N bytes, more than ..." (over kMaxResultBytes),
// NotFound "cannot read <path>".
absl::StatusOr<std::string> ReadResultFile(const std::string& path);

// `text` is the contents of `path`.
// Possible errors: InvalidArgument "<path>:<line>: ..." (malformed JSON, not an object, a metric
// that is not a number).
absl::StatusOr<std::map<std::string, double>> ParseMetricsFile(const std::string& path,
                                                               const std::string& text);

// Numbers and booleans are kept as their JSON text.
// Possible errors: InvalidArgument "<path>:<line>: ..." (malformed JSON, not an object, an
// output that is an array, an object or null).
absl::StatusOr<std::map<std::string, std::string>> ParseOutputsFile(const std::string& path,
                                                                    const std::string& text);

}  // namespace pcsweep::jobfile

#endif  // PCSWEEP_COMMON_JOBFILE_RESULT_FILES_H_
