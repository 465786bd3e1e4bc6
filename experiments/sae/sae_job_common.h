// What the SAE job kinds (sae_jobs.h) share: the preamble that opens a job (the envelope, the
// thread count, the model folder and its usual neighbours), loading its model once every
// setting has been read, loading an SAE for that model, and the settings that several kinds
// read the same way (a decoder layer, an integer that may arrive as a placeholder string, a
// benchmark file of questions, a transfer summary as metrics). Internal to experiments/sae;
// nothing here is SAE-specific but LoadSaeFor and PutTransferSummary, so OpenSaeJob and
// LoadJobModel could move to experiments/jobs/job_io once PromptRunner is not the only model.
//
// Ownership: an SaeJob owns its context (output folder, settings) and its progress reporter;
// the PromptRunner that LoadJobModel returns belongs to the caller.
// Thread-safety: one job per process (libtorch's threads and RNG are global); an SaeJob and
// its settings belong to one thread.
#ifndef PCSWEEP_EXPERIMENTS_SAE_SAE_JOB_COMMON_H_
#define PCSWEEP_EXPERIMENTS_SAE_SAE_JOB_COMMON_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/data/types.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/job_settings.h"
#include "experiments/sae/prompt_runner.h"
#include "experiments/sae/sae.h"
#include "experiments/sae/sae_stats.h"
#include "nlohmann/json.hpp"

namespace pcsweep::sae {

// The upper bound of count and seed settings (no practical limit).
inline constexpr int64_t kMaxCount = int64_t{1} << 40;

// Which of the optional folder keys a kind reads in its preamble (an unread key is reported
// as unknown by CheckAllKeysUsed).
struct SaeJobFolders {
  bool adapter_dir = true;  // `adapter_dir`: a LoRA adapter applied to the model
  bool data_dir = true;     // `data_dir`: a benchmark folder the kind takes defaults from
};

// A job being run: its envelope, what the preamble read, and its progress reporter.
struct SaeJob {
  SaeJob(jobs::JobContext job_context, const std::string& kind)
      : context(std::move(job_context)), progress(kind, /*log_every_report=*/true) {}

  jobs::JobContext context;  // output_dir and the settings not read yet
  jobs::Progress progress;   // logs every report, named after the kind
  int threads = 0;
  std::string model_dir;
  std::string adapter_dir;  // "" when not read or not given
  std::string data_dir;     // "" when not read or not given

  jobs::JobSettings& config() { return context.config; }
  const std::string& output_dir() const { return context.output_dir; }
  // "<data_dir>/<name>", or "" without a data_dir: the default of a file setting.
  std::string DataFile(const std::string& name) const;
};

// The preamble of every SAE kind, in this order: the envelope (jobs::ReadJob, which creates
// the output folder), `threads` (applied), `model_dir` (required), then `adapter_dir` and
// `data_dir` when `folders` asks for them.
// Possible errors: those of jobs::ReadJob and jobs::ConfigureThreads; InvalidArgument
// "config.<key>: ..." for a missing model_dir or a folder that is not a string.
absl::StatusOr<SaeJob> OpenSaeJob(const nlohmann::json& job, const std::string& kind,
                                  SaeJobFolders folders);

// Ends the settings and loads the model: marks `seed` as read (a grid seed that a kind does
// not use changes nothing; sae_train reads its own before), rejects unknown keys, reports
// `message` at 2%, and loads model_dir (+ adapter_dir) with `prompt` on `threads`.
// Possible errors: InvalidArgument "config: unknown key ..."; those of PromptRunner::Load.
absl::StatusOr<std::unique_ptr<PromptRunner>> LoadJobModel(SaeJob& job,
                                                           const inputs::PromptOptions& prompt,
                                                           const std::string& message);

// The SAE in `sae_dir`, checked against the model's hidden size and moved to its device.
// Possible errors: those of JumpReluSae::Load; InvalidArgument naming the SAE file and both
// sizes when its d_model is not the model's.
absl::StatusOr<JumpReluSae> LoadSaeFor(PromptRunner& runner, const std::string& sae_dir);

// The decoder layer of the `layer` setting, whose raw value (`raw`, from JobSettings::Raw) was
// read with the other settings: an integer, a numeric string ("{layer_select.layer}"),
// "middle" (num_layers / 2) or, when absent, `fallback` (-1: required).
// Possible errors: InvalidArgument "config.layer: ..." for a missing required layer, a value
// that is not an integer, or a layer outside 0..num_layers-1.
absl::StatusOr<int> ResolveLayer(const std::optional<nlohmann::json>& raw, int num_layers,
                                 int fallback);

// An integer setting that may arrive as a string from a placeholder ("{layer_select.feature}");
// nullopt when absent or null.
// Possible errors: InvalidArgument "config.<key>: expected an integer, got ..." or "...: N is
// outside [min, max]".
absl::StatusOr<std::optional<int64_t>> IntegerOrString(jobs::JobSettings& config,
                                                       const std::string& key, int64_t min,
                                                       int64_t max);

// The questions of a benchmark file (format from its name).
// Possible errors: those of data::GuessFormat and data::LoadDataset; InvalidArgument
// "<path>: no questions".
absl::StatusOr<std::vector<data::Question>> LoadQuestions(const std::string& path);

// `summary` as metrics "<prefix><name>", plus "<prefix>passed" (1 when its p-value is below
// 1 − confidence, else 0).
void PutTransferSummary(const std::string& prefix, const TransferSummary& summary,
                        double confidence, std::map<std::string, double>* metrics);

}  // namespace pcsweep::sae

#endif  // PCSWEEP_EXPERIMENTS_SAE_SAE_JOB_COMMON_H_
