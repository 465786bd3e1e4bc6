// The ML job kinds of pcsweep-run (issue 4): `pretrain`, `eval` and `train_eval`. Each reads
// a job file's JSON ({job_id, attempt, kind, config, params, output_dir}), validates every
// setting (one clear error line naming the key), reports progress as JSON lines on
// $PCSWEEP_PROGRESS_FD, and writes into output_dir:
//   metrics.json   flat name -> number ("eval_mimic.flip_rate", "eval_mimic.base.flip_rate",
//                  "eval_mimic.phenomenon.negation_pattern.flip_rate", "train.loss_last_epoch")
//   examples.jsonl one row per evaluated pair (data/examples_io.h), variant "base"/"adapted"
//   outputs.json   name -> string ("model_dir", "data_dir", "adapter_dir")
// Settings of `params` fill config keys that are absent (a grid value the spec did not
// place). The full list of settings per kind is in experiments/jobs/README.md.
//
// Threads: config.threads, else $PCSWEEP_THREADS, else libtorch's default. Everything is
// deterministic for a seed at a fixed thread count.
// Thread-safety: a job uses process-wide libtorch state (threads, seed); one job per process.
#ifndef PCSWEEP_EXPERIMENTS_JOBS_JOBS_H_
#define PCSWEEP_EXPERIMENTS_JOBS_JOBS_H_

#include <string>

#include "absl/status/status.h"
#include "experiments/jobs/job_registry.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobs {

// Possible errors: InvalidArgument "config.<key>: ..." for a bad setting or "config: unknown
// key"; NotFound / InvalidArgument naming the file for missing or malformed data, model or
// adapter; Internal for I/O and libtorch failures (with context). Nothing partial is
// reported as a result: result files are written last.
absl::Status RunPretrainJob(const nlohmann::json& job);
// An eval job whose config names a registered EvalOption returns what that option's `run` does.
absl::Status RunEvalJob(const nlohmann::json& job);
absl::Status RunTrainEvalJob(const nlohmann::json& job);

// An option of `eval` that a library above experiments/jobs implements (jobs cannot depend
// on it): an `eval` job whose config has the key `key` is handed, whole, to `run`, which then
// reads every setting and writes every result file. experiments/sae registers `clamp` (SAE
// feature clamping). Options are registered at startup, like job kinds.
struct EvalOption {
  std::string key;
  JobHandler run;
};
// Possible errors: AlreadyExists when `option.key` is taken.
absl::Status RegisterEvalOption(EvalOption option);

// Registers these three kinds and `benchmark` (benchmark_job.h) with the pcsweep-run
// dispatcher (experiments/runner).
// Possible errors: AlreadyExists when called twice.
absl::Status RegisterTrainJobKinds();

}  // namespace pcsweep::jobs

#endif  // PCSWEEP_EXPERIMENTS_JOBS_JOBS_H_
