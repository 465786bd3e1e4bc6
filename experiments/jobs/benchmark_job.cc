#include "experiments/jobs/benchmark_job.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "experiments/jobs/job_io.h"

namespace pcsweep::jobs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kBig = int64_t{1} << 40;

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  json parsed = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object())
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  return parsed;
}

}  // namespace

absl::Status ApplySynthOptions(JobSettings& s, data::SynthOptions* o) {
  PCSWEEP_ASSIGN_OR_RETURN(int64_t seed, s.Integer("seed", static_cast<int64_t>(o->seed), 0, kBig));
  o->seed = static_cast<uint64_t>(seed);
  PCSWEEP_ASSIGN_OR_RETURN(int64_t image_size, s.Integer("image_size", o->image_size, 16, 1024));
  o->image_size = static_cast<int>(image_size);
  auto count = [&](const char* key, size_t* field) -> absl::Status {
    PCSWEEP_ASSIGN_OR_RETURN(int64_t v, s.Integer(key, static_cast<int64_t>(*field), 0, kBig));
    *field = static_cast<size_t>(v);
    return absl::OkStatus();
  };
  PCSWEEP_RETURN_IF_ERROR(count("pretrain_questions", &o->pretrain_questions));
  PCSWEEP_RETURN_IF_ERROR(count("train_questions", &o->train_questions));
  PCSWEEP_RETURN_IF_ERROR(count("eval_mimic_questions", &o->eval_mimic_questions));
  PCSWEEP_RETURN_IF_ERROR(count("eval_balanced_questions", &o->eval_balanced_questions));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t qpi,
                           s.Integer("questions_per_image", o->questions_per_image, 1, 5));
  o->questions_per_image = static_cast<int>(qpi);
  PCSWEEP_ASSIGN_OR_RETURN(
      int64_t spp, s.Integer("max_studies_per_patient", o->max_studies_per_patient, 1, 100));
  o->max_studies_per_patient = static_cast<int>(spp);
  for (auto [key, field] : std::initializer_list<std::pair<const char*, double*>>{
           {"background_prevalence", &o->background_prevalence},
           {"ambiguous_fraction", &o->ambiguous_fraction},
           {"clear_subtlety_max", &o->clear_subtlety_max},
           {"ambiguous_subtlety_min", &o->ambiguous_subtlety_min},
           {"mimic_fraction", &o->mimic_fraction},
           {"pretrain_aligned", &o->pretrain_aligned},
           {"pretrain_neutral", &o->pretrain_neutral},
           {"inverting_negation_fraction", &o->inverting_negation_fraction},
           {"eval_mimic_open_fraction", &o->eval_mimic_open_fraction}}) {
    PCSWEEP_ASSIGN_OR_RETURN(*field, s.Number(key, *field, 0, 1));
  }
  PCSWEEP_ASSIGN_OR_RETURN(o->pretrain_bias_ambiguous_only,
                           s.Bool("pretrain_bias_ambiguous_only", o->pretrain_bias_ambiguous_only));
  PCSWEEP_ASSIGN_OR_RETURN(o->conspicuous_findings,
                           s.Bool("conspicuous_findings", o->conspicuous_findings));
  PCSWEEP_RETURN_IF_ERROR(s.CheckAllKeysUsed());
  auto valid = data::ValidateSynthOptions(*o);
  if (!valid.ok()) return Annotate(valid, s.prefix());
  return absl::OkStatus();
}

absl::Status WriteBenchmarkFile(const std::string& model_dir, const std::string& data_dir) {
  const std::string manifest_path = (fs::path(data_dir) / "manifest.json").string();
  PCSWEEP_ASSIGN_OR_RETURN(json manifest, ReadJsonFile(manifest_path));
  if (!manifest.contains("options") || !manifest["options"].is_object() ||
      !manifest.contains("generator") || !manifest["generator"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path, ": needs a string 'generator' and an object 'options'"));
  }
  PCSWEEP_ASSIGN_OR_RETURN(std::string fingerprint, data::BenchmarkFingerprint(data_dir));
  const json file = {{"generator", manifest["generator"]},
                     {"options", manifest["options"]},
                     {"fingerprint", fingerprint}};
  return WriteTextFile((fs::path(model_dir) / kBenchmarkFile).string(), file.dump(2) + "\n");
}

absl::Status RunBenchmarkJob(const json& job) {
  PCSWEEP_ASSIGN_OR_RETURN(JobContext ctx, ReadJob(job));
  JobSettings& config = ctx.config;
  Progress progress("benchmark");
  PCSWEEP_ASSIGN_OR_RETURN(std::string model_dir, config.RequiredString("model_dir"));
  config.Raw("threads");  // generating the benchmark uses one thread whatever the spec says
  config.Raw("seed");     // a grid seed changes nothing: the data are the model's
  PCSWEEP_RETURN_IF_ERROR(config.CheckAllKeysUsed());

  std::error_code ec;
  const fs::path absolute_model = fs::absolute(model_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(model_dir, ": ", ec.message()));
  const std::string benchmark_path = (absolute_model / kBenchmarkFile).string();
  PCSWEEP_ASSIGN_OR_RETURN(json benchmark, ReadJsonFile(benchmark_path));
  if (!benchmark.contains("options") || !benchmark["options"].is_object() ||
      !benchmark.contains("fingerprint") || !benchmark["fingerprint"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(benchmark_path, ": needs an object 'options' and a string 'fingerprint'"));
  }
  JobSettings options_settings(benchmark["options"], benchmark_path + ": options");
  data::SynthOptions options;
  PCSWEEP_RETURN_IF_ERROR(ApplySynthOptions(options_settings, &options));

  const std::string data_dir = (fs::path(ctx.output_dir) / "data").string();
  progress.Report(0.05, "generating the synthetic benchmark the model was trained on", 0, true);
  auto summary = data::GenerateSyntheticBenchmark(options, data_dir);
  if (!summary.ok()) return Annotate(summary.status(), "generating the synthetic benchmark");
  PCSWEEP_ASSIGN_OR_RETURN(std::string fingerprint, data::BenchmarkFingerprint(data_dir));
  const std::string expected = benchmark["fingerprint"].get<std::string>();
  if (fingerprint != expected) {
    return absl::FailedPreconditionError(absl::StrCat(
        benchmark_path, ": the benchmark generator now writes other data (fingerprint ",
        fingerprint, ") than the model was trained on (", expected,
        "): train the model again (experiments/specs/demo-base-model.yaml) and ship it under "
        "a new version"));
  }
  std::map<std::string, double> metrics;
  for (const auto& [split, counts] : summary->splits)
    metrics["benchmark." + split + ".questions"] = static_cast<double>(counts.questions);
  PCSWEEP_RETURN_IF_ERROR(WriteMetricsAndOutputs(
      ctx.output_dir, metrics, {{"model_dir", absolute_model.string()}, {"data_dir", data_dir}}));
  progress.Report(1.0, absl::StrCat("done: ", data_dir, " (fingerprint ", fingerprint, ")"), 0,
                  true);
  return absl::OkStatus();
}

}  // namespace pcsweep::jobs
