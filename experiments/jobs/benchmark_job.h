// The shipped-model half of the demo (issue 16): a model folder trained on the synthetic
// benchmark records which benchmark it was trained on (`benchmark.json`: the generator, its
// options and the fingerprint of the folder it wrote), and the `benchmark` job kind writes
// that same benchmark again for a sweep that starts from the model instead of pretraining
// one. A generator that no longer writes the same bytes is refused, so a sweep never scores
// a model on data it was not made for.
//
// Thread-safety: plain functions; a job runs alone in its process.
#ifndef PCSWEEP_EXPERIMENTS_JOBS_BENCHMARK_JOB_H_
#define PCSWEEP_EXPERIMENTS_JOBS_BENCHMARK_JOB_H_

#include <string>

#include "absl/status/status.h"
#include "experiments/data/synth.h"
#include "experiments/jobs/job_settings.h"
#include "nlohmann/json.hpp"

namespace pcsweep::jobs {

// The file a model folder holds when it was trained on a generated benchmark.
inline constexpr const char kBenchmarkFile[] = "benchmark.json";

// Reads generator options (the keys of data::SynthOptions, as in a pretrain job's `synth`
// object and the benchmark's manifest.json `options`) from `settings` into `options`.
// Possible errors: InvalidArgument naming the key (wrong type, out of range, unknown key, or
// options the generator refuses).
absl::Status ApplySynthOptions(JobSettings& settings, data::SynthOptions* options);

// Writes `<model_dir>/benchmark.json` for the benchmark in `data_dir` (its manifest's
// generator and options, and BenchmarkFingerprint of the folder).
// Possible errors: NotFound / InvalidArgument naming manifest.json, Internal on I/O.
absl::Status WriteBenchmarkFile(const std::string& model_dir, const std::string& data_dir);

// Job kind `benchmark`: config `model_dir` (required, a folder with benchmark.json).
// Generates the benchmark into `<output_dir>/data` and checks its fingerprint. Outputs
// `model_dir` (absolute) and `data_dir`; metrics `benchmark.<split>.questions`.
// Possible errors: InvalidArgument for a bad setting, NotFound / InvalidArgument naming
// benchmark.json, FailedPrecondition when the generator writes other data than the model
// was trained on (the message says how to regenerate the model), Internal on I/O.
absl::Status RunBenchmarkJob(const nlohmann::json& job);

}  // namespace pcsweep::jobs

#endif  // PCSWEEP_EXPERIMENTS_JOBS_BENCHMARK_JOB_H_
