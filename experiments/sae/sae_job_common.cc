#include "experiments/sae/sae_job_common.h"

#include <cmath>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "experiments/data/loaders.h"

namespace pcsweep::sae {

using jobs::JobSettings;
using nlohmann::json;

absl::StatusOr<SaeJob> OpenSaeJob(const json& job, const std::string& kind, SaeJobFolders folders) {
  PCSWEEP_ASSIGN_OR_RETURN(jobs::JobContext context, jobs::ReadJob(job));
  SaeJob out(std::move(context), kind);
  JobSettings& config = out.config();
  PCSWEEP_ASSIGN_OR_RETURN(out.threads, jobs::ConfigureThreads(config));
  PCSWEEP_ASSIGN_OR_RETURN(out.model_dir, config.RequiredString("model_dir"));
  if (folders.adapter_dir) {
    PCSWEEP_ASSIGN_OR_RETURN(out.adapter_dir, config.String("adapter_dir", ""));
  }
  if (folders.data_dir) {
    PCSWEEP_ASSIGN_OR_RETURN(out.data_dir, config.String("data_dir", ""));
  }
  return out;
}

std::string SaeJob::DataFile(const std::string& name) const {
  return data_dir.empty() ? "" : (std::filesystem::path(data_dir) / name).string();
}

absl::StatusOr<std::unique_ptr<PromptRunner>> LoadJobModel(SaeJob& job,
                                                           const inputs::PromptOptions& prompt,
                                                           const std::string& message) {
  job.config().Raw("seed");
  PCSWEEP_RETURN_IF_ERROR(job.config().CheckAllKeysUsed());
  job.progress.Report(0.02, message);
  return PromptRunner::Load(job.model_dir, job.adapter_dir, job.threads, prompt);
}

absl::StatusOr<JumpReluSae> LoadSaeFor(PromptRunner& runner, const std::string& sae_dir) {
  PCSWEEP_ASSIGN_OR_RETURN(JumpReluSae sae, JumpReluSae::Load(sae_dir));
  PCSWEEP_RETURN_IF_ERROR(
      sae.CheckDModel(runner.config().text.hidden_size, "the model's hidden_size"));
  return sae.To(runner.engine().device());
}

absl::StatusOr<std::optional<int64_t>> IntegerOrString(JobSettings& config, const std::string& key,
                                                       int64_t min, int64_t max) {
  std::optional<json> raw = config.Raw(key);
  if (!raw.has_value() || raw->is_null()) return std::optional<int64_t>();
  int64_t value = 0;
  if (raw->is_number_integer()) {
    value = raw->get<int64_t>();
  } else if (raw->is_number() && std::floor(raw->get<double>()) == raw->get<double>()) {
    value = static_cast<int64_t>(raw->get<double>());
  } else if (!raw->is_string() || !absl::SimpleAtoi(raw->get<std::string>(), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Where(key), ": expected an integer, got ", raw->dump()));
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Where(key), ": ", value, " is outside [", min, ", ", max, "]"));
  }
  return std::optional<int64_t>(value);
}

absl::StatusOr<int> ResolveLayer(const std::optional<json>& raw, int num_layers, int fallback) {
  const std::string key = "layer";
  const std::string where = "config.layer";
  int64_t layer = fallback;
  if (raw.has_value() && raw->is_string() && raw->get<std::string>() == "middle") {
    layer = num_layers / 2;
  } else if (raw.has_value()) {
    JobSettings single(json{{key, *raw}}, "config");
    PCSWEEP_ASSIGN_OR_RETURN(std::optional<int64_t> v,
                             IntegerOrString(single, key, -kMaxCount, kMaxCount));
    if (v.has_value()) layer = *v;
  }
  if (layer < 0 || layer >= num_layers) {
    if (!raw.has_value() && fallback < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": required (a decoder layer 0-", num_layers - 1, ")"));
    }
    return absl::InvalidArgumentError(absl::StrCat(where, ": layer ", layer,
                                                   " is out of range: the model has ", num_layers,
                                                   " decoder layers (0-", num_layers - 1, ")"));
  }
  return static_cast<int>(layer);
}

absl::StatusOr<std::vector<data::Question>> LoadQuestions(const std::string& path) {
  PCSWEEP_ASSIGN_OR_RETURN(data::Format format, data::GuessFormat(path));
  PCSWEEP_ASSIGN_OR_RETURN(data::Dataset dataset, data::LoadDataset(path, format, {}));
  if (dataset.questions.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": no questions"));
  return std::move(dataset.questions);
}

void PutTransferSummary(const std::string& prefix, const TransferSummary& summary,
                        double confidence, std::map<std::string, double>* metrics) {
  for (const auto& [name, value] : summary.ToMap()) (*metrics)[prefix + name] = value;
  (*metrics)[prefix + "passed"] = summary.p_value < 1.0 - confidence ? 1.0 : 0.0;
}

}  // namespace pcsweep::sae
