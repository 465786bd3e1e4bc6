// The file contract every `pcsweep-run run --job` kind shares (experiments/jobs/README.md):
// reading the job envelope and writing progress lines on $PCSWEEP_PROGRESS_FD (both as
// common/jobfile defines them: job_envelope.h, progress_line.h), thread settings, the
// prompt template, writing examples/outputs/metrics atomically, and the facade that turns
// any exception of a job into a Status. Used by experiments/jobs and experiments/sae.
//
// Thread-safety: free functions use only their arguments; a Progress belongs to one job.
#ifndef PCSWEEP_EXPERIMENTS_JOBS_JOB_IO_H_
#define PCSWEEP_EXPERIMENTS_JOBS_JOB_IO_H_

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/data/examples_io.h"
#include "experiments/data/loaders.h"
#include "experiments/data/types.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/job_settings.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobs {

struct JobContext {
  std::string kind;
  std::string output_dir;
  JobSettings config{nlohmann::json::object(), "config"};
};

// The job's kind, its settings (`config`, with `params` filling absent keys) and its output
// folder (`output_dir`, else $PCSWEEP_OUTPUT_DIR), which is created; `job` is the envelope
// (jobfile::JobEnvelopeToJson).
// Possible errors: InvalidArgument "job: ..." (no string kind, config not an object, no output
// folder), Internal (the folder cannot be created).
absl::StatusOr<JobContext> ReadJob(const nlohmann::json& job);

// Progress lines on $PCSWEEP_PROGRESS_FD (common/jobfile/progress_line.h) and a human line on
// stderr: every report with `log_every_report`, else at most every few seconds unless forced.
class Progress {
 public:
  explicit Progress(std::string kind, bool log_every_report = false);
  void Report(double fraction, const std::string& message, double eta_s = 0,
              bool force_log = false);

 private:
  std::string kind_;
  bool log_every_report_;
  int fd_ = -1;
  std::chrono::steady_clock::time_point last_log_{};
};

// Writes `text` to `path` through a temporary file and a rename.
// Possible errors: Internal naming the file.
absl::Status WriteTextFile(const std::string& path, const std::string& text);

// outputs.json then metrics.json (non-finite metrics left out): a job whose metrics.json
// exists is complete. Possible errors: those of WriteTextFile.
absl::Status WriteMetricsAndOutputs(const std::string& dir,
                                    const std::map<std::string, double>& metrics,
                                    const std::map<std::string, std::string>& outputs);

// examples.jsonl first, then WriteMetricsAndOutputs. Possible errors: Internal naming a file.
absl::Status WriteResults(const std::string& dir, const std::map<std::string, double>& metrics,
                          const std::vector<data::ExampleRow>& rows,
                          const std::map<std::string, std::string>& outputs);

// Intra-op threads from `threads`, else $PCSWEEP_THREADS, else libtorch's default (0), applied
// with train::SetComputeThreads. Possible errors: InvalidArgument naming the key or variable.
absl::StatusOr<int> ConfigureThreads(JobSettings& config);

// `prompt_template` (default `fallback`), which must contain {question}.
// Possible errors: InvalidArgument naming the key.
absl::StatusOr<inputs::PromptOptions> ReadPromptOptions(
    JobSettings& config, const std::string& fallback = inputs::PromptOptions().prompt_template);

// One evaluation set of a job: `eval_sets` entries are names (`<data_dir>/<name>.jsonl`),
// paths, or objects {name, path, format, image_root, max_pairs, balanced, keep_inverting};
// `max_eval_pairs`, `eval_seed` and `keep_inverting` are the defaults of every entry.
struct EvalSetSpec {
  std::string name;
  std::string path;
  std::string format;  // "" = from the extension
  std::string image_root;
  data::YesNoFilter yesno_filter = data::YesNoFilter::kNone;  // "hf" format only
  int64_t max_pairs = 0;
  bool balanced = false;
  bool keep_inverting = false;
  uint64_t seed = 0;
};

struct EvalSet {
  std::string name;
  std::vector<data::Pair> pairs;
};

// The examples.jsonl row of `pair`, one of the (yes/no) pairs of `set`, scored as `variant`.
data::ExampleRow ExampleRowOf(const EvalSet& set, const std::string& variant,
                              const data::Pair& pair, double margin_original,
                              double margin_paraphrase);

// Reads `eval_sets` and its defaults from `config`. Without `eval_sets` the sets are
// eval_mimic and eval_balanced of `data_dir`, or none (an error when `required`) without it.
// Errors name the entry: `config.eval_sets[1]: name 'a.b' must be non-empty without dots`.
absl::StatusOr<std::vector<EvalSetSpec>> ReadEvalSets(JobSettings& config,
                                                      const std::string& data_dir, bool required);

// Loads and selects the pairs of each set. Errors: an unreadable file, a set without pairs.
absl::StatusOr<std::vector<EvalSet>> LoadEvalSets(const std::vector<EvalSetSpec>& specs);

// `run` behind the facade's last line of defence: no libtorch or library exception escapes
// a job; it becomes Internal "<kind> job: ...".
jobs::JobHandler Guarded(const std::string& kind, absl::Status (*run)(const nlohmann::json& job));

}  // namespace pcsweep::jobs

#endif  // PCSWEEP_EXPERIMENTS_JOBS_JOB_IO_H_
