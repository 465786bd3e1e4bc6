// The progress line: how a running job tells the worker how far it is. One JSON object per
// line, {"progress":0.4,"message":"step 40/100","eta_s":12}, written on the fd named by
// $PCSWEEP_PROGRESS_FD or on stdout after the prefix "PCSWEEP_PROGRESS ". The runner writes
// lines with ProgressLineToJson; the worker reads them with ParseProgressLine.
//
// The line format. Every field is optional: "progress" a number (clamped to 0..1), "message"
// a string, "eta_s" a number of seconds still to go. A field that is absent or of another type
// is unset, and the reader keeps the value it had (a stray line must not fail the job).
// Thread-safety: constants and pure functions.
#ifndef PCSWEEP_COMMON_JOBFILE_PROGRESS_LINE_H_
#define PCSWEEP_COMMON_JOBFILE_PROGRESS_LINE_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::jobfile {

// The environment variable holding the fd for progress lines (a char array, for getenv).
inline constexpr char kProgressFdEnv[] = "PCSWEEP_PROGRESS_FD";
// A stdout line starting with this carries a progress line after it.
inline constexpr absl::string_view kStdoutProgressPrefix = "PCSWEEP_PROGRESS ";

struct ProgressLine {
  std::optional<double> progress;  // 0..1
  std::optional<std::string> message;
  std::optional<double> eta_s;  // >= 0
};

// One line, without the newline: progress clamped to 0..1, eta_s rounded to whole seconds
// and left out unless it is over 0; unset fields are left out. The message must be UTF-8
// (else nlohmann::json::type_error is thrown, as by every JSON writer of a job).
std::string ProgressLineToJson(const ProgressLine& line);

// One line (without its newline): progress clamped to 0..1, a negative eta_s read as 0.
// Possible errors: InvalidArgument "not JSON: <reason>", "not a JSON object".
absl::StatusOr<ProgressLine> ParseProgressLine(absl::string_view text);

}  // namespace pcsweep::jobfile

#endif  // PCSWEEP_COMMON_JOBFILE_PROGRESS_LINE_H_
