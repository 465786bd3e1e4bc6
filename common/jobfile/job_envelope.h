// The job envelope: job.json, the file through which the worker hands one attempt of a job to
// the job runner (`pcsweep-run run --job <output_dir>/job.json`), and the environment names
// the worker sets for every child. The worker writes the file with WriteJobEnvelope; the
// runner reads it with ParseJobEnvelope, and its job kinds, which receive the envelope as
// JSON, with JobEnvelopeFromJson.
//
// The file format. An object {job_id, attempt, kind, config, params, output_dir}. Only "kind"
// (a string) is required. "config" (the job's settings) must be an object when present; null
// is the same as absent. The others are read when they have their type (job_id and output_dir
// strings, attempt an integer, params an object) and are otherwise left at their defaults, as
// the runner has always read them: it uses only kind, config, params and output_dir. The
// writer always writes all six keys.
// Thread-safety: constants and pure functions.
#ifndef PCSWEEP_COMMON_JOBFILE_JOB_ENVELOPE_H_
#define PCSWEEP_COMMON_JOBFILE_JOB_ENVELOPE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobfile {

// Set by the worker in every child's environment (worker/job_process.h has the whole list);
// char arrays, for getenv.
inline constexpr char kOutputDirEnv[] = "PCSWEEP_OUTPUT_DIR";
inline constexpr char kJobIdEnv[] = "PCSWEEP_JOB_ID";
inline constexpr char kAttemptEnv[] = "PCSWEEP_ATTEMPT";

struct JobEnvelope {
  std::string job_id;
  int64_t attempt = 1;
  std::string kind;                                  // a pcsweep-run kind (job_kinds.h)
  nlohmann::json config = nlohmann::json::object();  // always an object
  // Grid values by name (the worker writes strings); always an object.
  nlohmann::json params = nlohmann::json::object();
  // The folder for the job's files; "" when the file names none, and then the runner takes
  // $PCSWEEP_OUTPUT_DIR.
  std::string output_dir;
};

// The envelope as the JSON object the file holds.
nlohmann::json JobEnvelopeToJson(const JobEnvelope& envelope);

// Writes `envelope` to `path` (pretty-printed, one trailing newline), replacing the file.
// Possible errors: Internal "cannot write <path>".
absl::Status WriteJobEnvelope(const std::string& path, const JobEnvelope& envelope);

// The envelope in `job`; errors start with `where`.
// Possible errors: InvalidArgument "<where>: job needs a string \"kind\"" (also when `job` is
// not an object), "<where>: \"config\" must be an object".
absl::StatusOr<JobEnvelope> JobEnvelopeFromJson(const nlohmann::json& job, absl::string_view where);

// `text` is the contents of the job file `path`.
// Possible errors: InvalidArgument "<path>: not valid JSON: <reason>", and those of
// JobEnvelopeFromJson with `path` as `where`.
absl::StatusOr<JobEnvelope> ParseJobEnvelope(const std::string& path, const std::string& text);

// The settings a job runs with: `config`, each `params` entry filling a key that config lacks
// (the grid values the spec did not place into the config).
nlohmann::json ConfigWithParams(const JobEnvelope& envelope);

}  // namespace pcsweep::jobfile

#endif  // PCSWEEP_COMMON_JOBFILE_JOB_ENVELOPE_H_
