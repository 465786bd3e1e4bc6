#include "experiments/jobs/job_io.h"

#include <c10/util/Exception.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fileio/durable_rename.h"
#include "common/jobfile/job_envelope.h"
#include "common/jobfile/progress_line.h"
#include "common/status/status_macros.h"
#include "experiments/data/loaders.h"
#include "experiments/data/selection.h"
#include "experiments/engine/compute_threads.h"

namespace pcsweep::jobs {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kMaxCount = int64_t{1} << 40;

absl::StatusOr<JobContext> ReadJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(jobfile::JobEnvelope envelope, jobfile::JobEnvelopeFromJson(job, "job"));
  JobContext ctx;
  ctx.kind = envelope.kind;
  ctx.config = JobSettings(jobfile::ConfigWithParams(envelope), "config");
  ctx.output_dir = envelope.output_dir;
  if (const char* env = std::getenv(jobfile::kOutputDirEnv); ctx.output_dir.empty() && env) {
    ctx.output_dir = env;
  }
  if (ctx.output_dir.empty()) {
    return absl::InvalidArgumentError("job: needs \"output_dir\" (or $PCSWEEP_OUTPUT_DIR)");
  }
  std::error_code ec;
  fs::create_directories(ctx.output_dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat(ctx.output_dir, ": cannot create output folder: ", ec.message()));
  return ctx;
}

Progress::Progress(std::string kind, bool log_every_report)
    : kind_(std::move(kind)), log_every_report_(log_every_report) {
  if (const char* env = std::getenv(jobfile::kProgressFdEnv); env != nullptr) {
    int fd = -1;
    if (absl::SimpleAtoi(env, &fd) && fd >= 0) fd_ = fd;
  }
}

void Progress::Report(double fraction, const std::string& message, double eta_s, bool force_log) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  if (fd_ >= 0) {
    jobfile::ProgressLine line;
    line.progress = fraction;
    line.message = message;
    line.eta_s = eta_s;  // left out unless over 0
    const std::string text = jobfile::ProgressLineToJson(line) + "\n";
    if (::write(fd_, text.data(), text.size()) < 0) fd_ = -1;  // the reader is gone: keep running
  }
  const auto now = std::chrono::steady_clock::now();
  if (log_every_report_ || force_log || now - last_log_ > std::chrono::seconds(3)) {
    last_log_ = now;
    std::fprintf(stderr, "[%s %3.0f%%] %s\n", kind_.c_str(), 100.0 * fraction, message.c_str());
  }
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  return WriteFileDurably(path, text);
}

absl::Status WriteMetricsAndOutputs(const std::string& dir,
                                    const std::map<std::string, double>& metrics,
                                    const std::map<std::string, std::string>& outputs) {
  json m = json::object();
  for (const auto& [name, value] : metrics) {
    if (std::isfinite(value)) m[name] = value;
  }
  json o = json::object();
  for (const auto& [name, value] : outputs) o[name] = value;
  PCSWEEP_RETURN_IF_ERROR(
      WriteTextFile((fs::path(dir) / "outputs.json").string(), o.dump(2) + "\n"));
  return WriteTextFile((fs::path(dir) / "metrics.json").string(), m.dump(2) + "\n");
}

data::ExampleRow ExampleRowOf(const EvalSet& set, const std::string& variant,
                              const data::Pair& pair, double margin_original,
                              double margin_paraphrase) {
  data::ExampleRow row;
  row.eval_set = set.name;
  row.variant = variant;
  row.question_id = pair.question_id;
  row.pair_id = pair.pair_id;
  row.image = pair.image;
  row.phenomenon = pair.phenomenon;
  row.label = pair.label == data::Answer::kYes ? 1 : 0;
  row.margin_original = margin_original;
  row.margin_paraphrase = margin_paraphrase;
  return row;
}

absl::Status WriteResults(const std::string& dir, const std::map<std::string, double>& metrics,
                          const std::vector<data::ExampleRow>& rows,
                          const std::map<std::string, std::string>& outputs) {
  PCSWEEP_RETURN_IF_ERROR(data::WriteExamples((fs::path(dir) / "examples.jsonl").string(), rows));
  return WriteMetricsAndOutputs(dir, metrics, outputs);
}

absl::StatusOr<int> ConfigureThreads(JobSettings& config) {
  int64_t fallback = 0;
  if (const char* env = std::getenv("PCSWEEP_THREADS");
      env != nullptr && !absl::SimpleAtoi(env, &fallback)) {
    return absl::InvalidArgumentError(
        absl::StrCat("$PCSWEEP_THREADS: expected an integer, got '", env, "'"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(int64_t threads, config.Integer("threads", fallback, 0, 1024));
  engine::SetComputeThreads(static_cast<int>(threads));
  return static_cast<int>(threads);
}

absl::StatusOr<inputs::PromptOptions> ReadPromptOptions(JobSettings& config,
                                                        const std::string& fallback) {
  inputs::PromptOptions prompt;
  PCSWEEP_ASSIGN_OR_RETURN(prompt.prompt_template, config.String("prompt_template", fallback));
  if (prompt.prompt_template.find("{question}") == std::string::npos) {
    return absl::InvalidArgumentError("config.prompt_template: must contain {question}");
  }
  return prompt;
}

jobs::JobHandler Guarded(const std::string& kind, absl::Status (*run)(const json& job)) {
  return [kind, run](const json& job) -> absl::Status {
    try {
      return run(job);
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat(kind, " job: libtorch: ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat(kind, " job: ", e.what()));
    }
  };
}

// ---------------------------------------------------------------------------------------
// Eval sets.

absl::StatusOr<std::vector<EvalSetSpec>> ReadEvalSets(JobSettings& config,
                                                      const std::string& data_dir, bool required) {
  PCSWEEP_ASSIGN_OR_RETURN(int64_t max_pairs, config.Integer("max_eval_pairs", 0, 0, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t eval_seed, config.Integer("eval_seed", 0, 0, kMaxCount));
  PCSWEEP_ASSIGN_OR_RETURN(bool keep_inverting, config.Bool("keep_inverting", false));
  std::optional<json> raw = config.Raw("eval_sets");
  if (!raw.has_value()) {
    if (data_dir.empty()) {
      if (!required) return std::vector<EvalSetSpec>();
      return absl::InvalidArgumentError(
          "config.eval_sets: required when config.data_dir is not given");
    }
    raw = json::array({"eval_mimic", "eval_balanced"});
  }
  if (raw->is_string()) raw = json::array({*raw});
  if (!raw->is_array())
    return absl::InvalidArgumentError("config.eval_sets: expected a list of names or objects");
  std::vector<EvalSetSpec> specs;
  std::set<std::string> names;
  for (size_t i = 0; i < raw->size(); ++i) {
    const json& item = (*raw)[i];
    const std::string where = absl::StrCat("config.eval_sets[", i, "]");
    EvalSetSpec spec;
    spec.max_pairs = max_pairs;
    spec.seed = static_cast<uint64_t>(eval_seed);
    spec.keep_inverting = keep_inverting;
    if (item.is_string()) {
      const std::string s = item.get<std::string>();
      const fs::path p(s);
      if (p.has_extension()) {
        spec.path = s;
        spec.name = p.stem().string();
      } else {
        if (data_dir.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": '", s, "' is a name but config.data_dir is not set"));
        }
        spec.name = s;
        spec.path = (fs::path(data_dir) / (s + ".jsonl")).string();
      }
    } else if (item.is_object()) {
      JobSettings e(item, where);
      PCSWEEP_ASSIGN_OR_RETURN(spec.path, e.RequiredString("path"));
      PCSWEEP_ASSIGN_OR_RETURN(spec.name, e.String("name", fs::path(spec.path).stem().string()));
      PCSWEEP_ASSIGN_OR_RETURN(spec.format, e.String("format", ""));
      PCSWEEP_ASSIGN_OR_RETURN(spec.image_root, e.String("image_root", ""));
      PCSWEEP_ASSIGN_OR_RETURN(std::string yesno_filter, e.String("yesno_filter", ""));
      auto filter = data::ParseYesNoFilter(yesno_filter);
      if (!filter.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".yesno_filter: ", filter.status().message()));
      }
      spec.yesno_filter = *filter;
      PCSWEEP_ASSIGN_OR_RETURN(spec.max_pairs, e.Integer("max_pairs", max_pairs, 0, kMaxCount));
      PCSWEEP_ASSIGN_OR_RETURN(spec.balanced, e.Bool("balanced", false));
      PCSWEEP_ASSIGN_OR_RETURN(spec.keep_inverting, e.Bool("keep_inverting", keep_inverting));
      PCSWEEP_RETURN_IF_ERROR(e.CheckAllKeysUsed());
      if (!data_dir.empty() && fs::path(spec.path).is_relative() && !fs::exists(spec.path)) {
        spec.path = (fs::path(data_dir) / spec.path).string();
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected a name or an object"));
    }
    if (spec.name.empty() || spec.name.find('.') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": name '", spec.name, "' must be non-empty without dots"));
    }
    if (!names.insert(spec.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": eval set name '", spec.name, "' is used twice"));
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

namespace {

absl::StatusOr<EvalSet> LoadEvalSet(const EvalSetSpec& spec) {
  data::Format format;
  if (spec.format.empty()) {
    PCSWEEP_ASSIGN_OR_RETURN(format, data::GuessFormat(spec.path));
  } else {
    PCSWEEP_ASSIGN_OR_RETURN(format, data::ParseFormat(spec.format));
  }
  data::LoadOptions load;
  load.image_root = spec.image_root;
  load.yesno_filter = spec.yesno_filter;
  auto dataset = data::LoadDataset(spec.path, format, load);
  if (!dataset.ok()) return Annotate(dataset.status(), absl::StrCat("eval set '", spec.name, "'"));
  data::SelectionOptions select;
  select.keep_inverting = spec.keep_inverting;
  select.balanced = spec.balanced;
  select.max_pairs = static_cast<size_t>(spec.max_pairs);
  select.seed = spec.seed;
  EvalSet set{spec.name, data::SelectPairs(dataset->questions, select)};
  if (set.pairs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.path, ": eval set '", spec.name, "' has no yes/no pairs"));
  }
  return set;
}

}  // namespace

absl::StatusOr<std::vector<EvalSet>> LoadEvalSets(const std::vector<EvalSetSpec>& specs) {
  std::vector<EvalSet> sets;
  for (const auto& spec : specs) {
    PCSWEEP_ASSIGN_OR_RETURN(EvalSet set, LoadEvalSet(spec));
    sets.push_back(std::move(set));
  }
  return sets;
}

}  // namespace pcsweep::jobs
