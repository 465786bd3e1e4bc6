// Fuzz target: a job file as pcsweep-run reads it (`pcsweep-run run --job FILE`): the JSON
// envelope (common/jobfile/job_envelope.h; what RunJobFile hands a kind must read again as the
// same envelope) and kind dispatch of jobs/job_registry, then the typed settings every ML kind
// reads through JobSettings (numbers, integers with ranges, strings, booleans, nested
// objects, layer ranges and LoRA target lists, the unknown-key check). The kinds' own
// readers need the engine and are covered by jobs_test. An accepted value must lie in the
// range it was read with.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/jobfile/job_envelope.h"
#include "common/testing/fuzz_input.h"
#include "experiments/engine/lora_config.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/job_settings.h"

namespace {

using pcsweep::jobs::JobSettings;

absl::Status ReadSettingsLikeAKind(const nlohmann::json& job) {
  auto envelope = pcsweep::jobfile::JobEnvelopeFromJson(job, "job");
  if (!envelope.ok() || pcsweep::jobfile::JobEnvelopeToJson(*envelope) != job) std::abort();
  JobSettings settings(pcsweep::jobfile::ConfigWithParams(*envelope), "config");
  if (auto threads = settings.Integer("threads", 0, 0, 1024); threads.ok()) {
    if (*threads < 0 || *threads > 1024) std::abort();
  }
  if (auto lr = settings.Number("lr", 1e-4, 0, 10); lr.ok()) {
    if (!(*lr >= 0 && *lr <= 10)) std::abort();
  }
  (void)settings.Integer("seed", 0, INT64_MIN, INT64_MAX);
  (void)settings.Bool("shared_prefix_scoring", true);
  (void)settings.String("prompt_template", "{question}");
  (void)settings.RequiredString("model");
  if (auto layers = settings.Raw("layers")) {
    auto parsed = pcsweep::engine::ParseLayers(*layers, 34, settings.Where("layers"));
    if (parsed.ok()) {
      for (int layer : *parsed) {
        if (layer < 0 || layer >= 34) std::abort();
      }
    }
  }
  if (auto modules = settings.Raw("target_modules")) {
    (void)pcsweep::jobs::ParseTargetModules(*modules, settings.Where("target_modules"));
  }
  if (auto synth = settings.Object("synth"); synth.ok() && synth->has_value()) {
    (void)(*synth)->Integer("images", 100, 1, 100000);
    (void)(*synth)->Number("noise", 0.1, 0, 1);
    (void)(*synth)->CheckAllKeysUsed();
  }
  (void)settings.Raw("eval_sets");
  return settings.CheckAllKeysUsed();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool registered = [] {
    for (const char* kind : {"eval", "train_eval", "pretrain"}) {
      if (!pcsweep::jobs::RegisterJobKind(kind, ReadSettingsLikeAKind).ok()) std::abort();
    }
    return true;
  }();
  (void)registered;
  const std::string path = pcsweep::testutil::WriteFuzzInput(data, size, "job.json");
  (void)pcsweep::jobs::RunJobFile(path);
  return 0;
}
