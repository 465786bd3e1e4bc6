// pcsweep-bench-train: throughput of LoRA pair training (the train_eval job's loop) and of
// pair scoring on CPU, on the demo model (a pretrain job's output) or any model folder.
// Prints pairs/s, tokens/s and the share of training time in forward, backward and the
// optimizer step. A benchmark, not a test: figures depend on the machine and its load.
//
//   pcsweep-bench-train --model OUT/model --data OUT/data [--layers all] [--threads 1]
//   pcsweep-bench-train            (pretrains the demo model into a temp folder first)
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "experiments/data/loaders.h"
#include "experiments/data/selection.h"
#include "experiments/engine/compute_threads.h"
#include "experiments/engine/engine.h"
#include "experiments/inputs/image.h"
#include "experiments/inputs/tokenizer.h"
#include "experiments/jobs/job_settings.h"
#include "experiments/jobs/jobs.h"
#include "experiments/train/trainer.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;
using pcsweep::train::TrainReport;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "pcsweep-bench-train: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pcsweep-bench-train: LoRA train / eval throughput on CPU"};
  std::string model_dir, data_dir, layers = "all";
  int threads = 1, batch_size = 8, steps = 30, rank = 8, eval_pairs = 400;
  app.add_option("--model", model_dir, "model folder (default: pretrain the demo model first)");
  app.add_option("--data", data_dir, "synthetic benchmark folder (train.jsonl, eval_mimic.jsonl)");
  app.add_option("--layers", layers, "LoRA layer range");
  app.add_option("--threads", threads, "intra-op threads");
  app.add_option("--batch", batch_size, "pairs per step");
  app.add_option("--steps", steps, "optimizer steps to time");
  app.add_option("--r", rank, "LoRA rank");
  app.add_option("--eval-pairs", eval_pairs, "pairs to score for the eval figure");
  CLI11_PARSE(app, argc, argv);
  pcsweep::engine::SetComputeThreads(threads);

  if (model_dir.empty()) {
    const std::string out = (fs::temp_directory_path() / "pcsweep_bench_train_pretrain").string();
    std::fprintf(stderr, "pretraining the demo model into %s ...\n", out.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    nlohmann::json job = {
        {"kind", "pretrain"},
        {"config", {{"threads", threads}, {"synth", {{"seed", 0}}}, {"evaluate", false}}},
        {"output_dir", out}};
    if (absl::Status s = pcsweep::jobs::RunPretrainJob(job); !s.ok()) return Fail(s);
    std::printf("pretrain (demo model, %d thread(s)): %.1f s\n", threads,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    model_dir = out + "/model";
    data_dir = out + "/data";
  }
  if (data_dir.empty()) return Fail(absl::InvalidArgumentError("--data is required with --model"));

  pcsweep::engine::EngineOptions options;
  options.model_dir = model_dir;
  options.num_threads = threads;
  auto engine = pcsweep::engine::Engine::Load(options);
  if (!engine.ok()) return Fail(engine.status());
  auto tokenizer = pcsweep::inputs::Gemma3Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  auto image_config = pcsweep::inputs::LoadImageProcessorConfig(model_dir);
  if (!image_config.ok()) return Fail(image_config.status());
  auto session =
      pcsweep::train::ModelSession::Create((*engine)->model(), &*tokenizer, *image_config);
  if (!session.ok()) return Fail(session.status());

  auto train = pcsweep::data::LoadCanonicalJsonl(data_dir + "/train.jsonl", {});
  if (!train.ok()) return Fail(train.status());
  const pcsweep::data::EpochSampler sampler(pcsweep::data::YesNoOnly(train->questions), false, 0);
  const int layers_count = static_cast<int>((*engine)->config().text.num_hidden_layers);
  auto layer_list = pcsweep::engine::ParseLayers(layers, layers_count, "--layers");
  if (!layer_list.ok()) return Fail(layer_list.status());
  std::set<pcsweep::engine::LoraTarget> targets;
  for (int l : *layer_list) {
    for (auto m : pcsweep::engine::kAllLoraModules) targets.insert({l, m});
  }
  pcsweep::engine::LoraSettings lora;
  lora.r = rank;
  lora.lora_alpha = 2.0 * rank;
  lora.lora_dropout = 0.05;
  if (absl::Status s = (*engine)->AttachLora(targets, lora, 0); !s.ok()) return Fail(s);

  // Warm-up (image features, allocator), then the timed run.
  pcsweep::train::TrainOptions train_options;
  train_options.batch_size = batch_size;
  train_options.epochs = 1000;
  train_options.lr = 1e-3;
  train_options.max_steps = 2;
  if (auto warm = pcsweep::train::TrainOnPairs(*session, (*engine)->LoraParameters(), sampler,
                                               train_options);
      !warm.ok()) {
    return Fail(warm.status());
  }
  train_options.max_steps = steps;
  auto report =
      pcsweep::train::TrainOnPairs(*session, (*engine)->LoraParameters(), sampler, train_options);
  if (!report.ok()) return Fail(report.status());
  const TrainReport& r = *report;
  const auto& cfg = (*engine)->config();
  std::printf(
      "model: %s (%lld layers, hidden %lld, %lld image tokens), LoRA r=%d on layers %s (%zu "
      "modules), "
      "%d thread(s)\n",
      model_dir.c_str(), static_cast<long long>(cfg.text.num_hidden_layers),
      static_cast<long long>(cfg.text.hidden_size), static_cast<long long>(cfg.mm_tokens_per_image),
      rank, layers.c_str(), targets.size(), threads);
  std::printf(
      "train: %lld steps x %d pairs in %.2f s: %.1f pairs/s, %.0f tokens/s (2 prompts per pair)\n",
      static_cast<long long>(r.steps), batch_size, r.seconds, r.examples / r.seconds,
      r.tokens / r.seconds);
  std::printf("train time share: forward %.1f%%, backward %.1f%%, optimizer %.1f%%, other %.1f%%\n",
              100 * r.forward_s / r.seconds, 100 * r.backward_s / r.seconds,
              100 * r.optimizer_s / r.seconds,
              100 * (r.seconds - r.forward_s - r.backward_s - r.optimizer_s) / r.seconds);

  auto eval = pcsweep::data::LoadCanonicalJsonl(data_dir + "/eval_mimic.jsonl", {});
  if (!eval.ok()) return Fail(eval.status());
  pcsweep::data::SelectionOptions select;
  select.max_pairs = static_cast<size_t>(eval_pairs);
  const auto pairs = pcsweep::data::SelectPairs(eval->questions, select);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t tokens_before = session->tokens_seen();
  auto margins = pcsweep::train::ScorePairs(*session, pairs, 64);
  if (!margins.ok()) return Fail(margins.status());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("eval: %zu pairs in %.2f s: %.1f pairs/s, %.0f tokens/s (distinct prompts only)\n",
              pairs.size(), seconds, pairs.size() / seconds,
              (session->tokens_seen() - tokens_before) / seconds);
  return 0;
}
