// What the train kinds (pretrain, eval, train_eval) share beyond the job-file contract of
// job_io.h: scoring an eval set into rows and metrics, the optimiser settings, the train
// metrics, progress for training steps, and loading a saved model with its tokenizer.
// Internal to experiments/jobs (it includes libtorch through train/ and engine/).
//
// Thread-safety: free functions use only their arguments; a LoadedModel belongs to one job.
#ifndef PCSWEEP_EXPERIMENTS_JOBS_TRAIN_JOB_HELPERS_H_
#define PCSWEEP_EXPERIMENTS_JOBS_TRAIN_JOB_HELPERS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/data/examples_io.h"
#include "experiments/engine/engine.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/job_settings.h"
#include "experiments/train/trainer.h"

namespace pcsweep::jobs {

// The upper bound of counts that have no natural one (steps, questions, seeds).
inline constexpr int64_t kUnboundedCount = int64_t{1} << 40;

// Scores one eval set as `variant` and appends its rows and its metrics ("<prefix><metric>"
// and "<prefix>phenomenon.<name>.<metric>"); logs a summary line on stderr.
// Possible errors: those of train::ScorePairs; InvalidArgument naming the set when its
// metrics cannot be computed.
absl::Status Evaluate(train::ModelSession& session, const EvalSet& set, const std::string& variant,
                      const std::string& prefix, int batch_size,
                      std::vector<data::ExampleRow>* rows, std::map<std::string, double>* metrics);

// The optimiser settings of `config` (epochs, batch_size, lr, schedule, seed, ...), each
// absent key taking its value from `defaults`.
// Possible errors: InvalidArgument "config.<key>: ..." for a value out of range.
absl::StatusOr<train::TrainOptions> ReadTrainOptions(JobSettings& config,
                                                     const train::TrainOptions& defaults);

// Adds the "train.*" metrics of `report` (steps, throughput, first and last losses).
void PutTrainMetrics(const train::TrainReport& report, std::map<std::string, double>* metrics);

// A step callback reporting `what` step i/n as progress from `from` to `to`.
train::StepCallback ProgressCallback(Progress* progress, double from, double to,
                                     const std::string& what);

// A model folder loaded for scoring or training: the engine owns the weights, the session
// points into the engine and the tokenizer, so the three live and die together.
struct LoadedModel {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<inputs::Gemma3Tokenizer> tokenizer;
  std::unique_ptr<train::ModelSession> session;
};

// Loads `model_dir` (and the LoRA adapter in `adapter_dir` unless empty) on `threads`.
// Possible errors: those of engine::Engine::Load and Gemma3Tokenizer::Load; the session's,
// annotated with the folder.
absl::StatusOr<LoadedModel> LoadModel(const std::string& model_dir, const std::string& adapter_dir,
                                      int threads, const inputs::PromptOptions& prompt);

}  // namespace pcsweep::jobs

#endif  // PCSWEEP_EXPERIMENTS_JOBS_TRAIN_JOB_HELPERS_H_
