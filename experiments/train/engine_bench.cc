// pcsweep-bench-engine: the engine's speed on a MedGemma-4B-shaped model (real vocabulary,
// hidden 2560, head_dim 256, 8 / 4 heads, 896² SigLIP with patch 14 pooled to 256 tokens)
// with fewer layers, random weights written in the Hugging Face layout and loaded back
// through Engine::Load. A benchmark, not a test.
//
// Per mode it prints throughput, the FLOPs that mode has to do per second, and that rate as
// a share of the machine's own GEMM roof measured in the same run, so every figure is a ratio
// on one machine:
//   scoring:  plain (every prompt in full)  vs  shared prefix (each image's prefix once)
//   training: plain (forward from layer 0)  vs  frozen prefix (forward from the first adapted
//             layer, the stream below it cached)  and  frozen prefix + checkpointing.
// The modes' outputs are compared too (max |Δ margin|, |Δ loss|). Last line:
//   shared-prefix scoring speedup: N.Nx; training speedup (layers A-B): N.Nx
//
//   pcsweep-bench-engine                         (CPU: 4 text layers, LoRA on 2-3)
//   pcsweep-bench-engine --device cuda --dtype bf16 --text-layers 34 --vision-layers 27
//       --layers 15-19 --images 8 --paraphrases 4 --train-pairs 8 --iters 5 --warmup 2
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "experiments/engine/compute_threads.h"
#include "experiments/engine/engine.h"
#include "experiments/engine/prompt_batch.h"
#include "experiments/train/losses.h"
#include "experiments/train/trainer.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;
using namespace pcsweep;  // NOLINT: a benchmark's main file
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  int text_layers = 4, vision_layers = 1;
  std::string layers = "middle";  // LoRA layers; "middle" is the paper's 15-19 of 34, scaled
  int images = 2, paraphrases = 3, question_tokens = 30, batch = 16;
  int train_pairs = 2, iters = 1, warmup = 0, threads = 0;
  std::string device = "cpu", dtype = "fp32", work, json;
};

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void Sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

engine::Gemma3Config MedGemmaShape(int text_layers, int vision_layers) {
  engine::Gemma3Config c;
  engine::Gemma3TextConfig& t = c.text;
  t.vocab_size = 262208;
  t.hidden_size = 2560;
  t.intermediate_size = 10240;
  t.num_hidden_layers = text_layers;
  t.num_attention_heads = 8;
  t.num_key_value_heads = 4;
  t.head_dim = 256;
  t.query_pre_attn_scalar = 256;
  t.sliding_window = 1024;
  t.rope_full = {1'000'000.0, 8.0};
  t.rope_sliding = {10'000.0, 1.0};
  for (int i = 0; i < text_layers; ++i)  // MedGemma's pattern: five sliding, one full
    t.layer_types.push_back(i % 6 == 5 ? engine::LayerType::kFull : engine::LayerType::kSliding);
  engine::SiglipVisionConfig& v = c.vision;
  v.hidden_size = 1152;
  v.intermediate_size = 4304;
  v.num_hidden_layers = vision_layers;
  v.num_attention_heads = 16;
  v.image_size = 896;
  v.patch_size = 14;
  return c;
}

// GFLOP/s of one [m, k] x [k, n] GEMM in the compute dtype.
double GemmRate(const torch::TensorOptions& o, int64_t m, int64_t k, int64_t n) {
  const torch::Tensor a = torch::randn({m, k}, o), b = torch::randn({k, n}, o);
  torch::mm(a, b);
  Sync(o.device());
  const int reps = o.device().is_cuda() ? 50 : 4;
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) torch::mm(a, b);
  Sync(o.device());
  return 2.0 * m * k * n * reps / Seconds(start) / 1e9;
}

struct GemmRoof {
  double square = 0;  // 2048^3
  double mlp = 0;     // 512 tokens through the model's MLP up-projection
  double best() const { return std::max(square, mlp); }
};

// The roof every figure is a share of: the faster of a square GEMM and the model's own
// largest projection shape (a square GEMM alone understates what the MLP's shape reaches on
// some BLAS kernels, which put modes above 100% of it).
GemmRoof MeasureGemmRoof(const torch::TensorOptions& o, const engine::Gemma3TextConfig& t) {
  GemmRoof roof;
  roof.square = GemmRate(o, 2048, 2048, 2048);
  roof.mlp = GemmRate(o, 512, t.hidden_size, t.intermediate_size);
  return roof;
}

// FLOPs of the decoder for `queries` new tokens attending to keys_per_query keys on average.
struct DecoderWork {
  double projections = 0;  // the attention projections and the MLP: 2 per weight
  double attention = 0;    // QKᵀ and PV: 4 per head dimension and key
  double Forward() const { return projections + attention; }
  // With the base weights frozen (LoRA), backward computes the activations' gradients only:
  // one GEMM per weight, as forward, and the gradients of Q, K and V, twice attention's
  // forward. The adapters' own gradients (rank 16 against 2560) are left out.
  double Backward() const { return projections + 2 * attention; }
};

DecoderWork DecoderFlops(const engine::Gemma3TextConfig& t, int layers, double queries,
                         double keys_per_query) {
  const double q_out = t.num_attention_heads * t.head_dim,
               kv_out = t.num_key_value_heads * t.head_dim;
  const double weights =
      t.hidden_size * (2 * q_out + 2 * kv_out) + 3.0 * t.hidden_size * t.intermediate_size;
  return {layers * queries * 2 * weights, layers * queries * 4 * q_out * keys_per_query};
}

struct Workload {
  std::vector<std::vector<int64_t>> tokens;
  std::vector<int> image_of;
  std::vector<torch::Tensor> features;  // per image
  int64_t prefix_length = 0;
  double vision_seconds = 0;  // all images through SigLIP and the projector
};

// PSF-Med's layout: <bos>, the user turn header, boi, 256 image tokens, eoi, newline, then
// the question and the model turn header. Paraphrases of one image differ after the prefix.
Workload MakeWorkload(engine::Engine& e, const BenchOptions& b) {
  const engine::Gemma3Config& c = e.config();
  Workload w;
  std::mt19937 rng(1);
  for (int image = 0; image < b.images; ++image) {
    for (int k = 0; k < b.paraphrases; ++k) {
      std::vector<int64_t> t = {2, 105, 2364, 107, c.boi_token_index};
      t.insert(t.end(), c.mm_tokens_per_image, c.image_token_index);
      t.push_back(c.eoi_token_index);
      t.push_back(108);
      w.prefix_length = static_cast<int64_t>(t.size());
      const int n = b.question_tokens + static_cast<int>(rng() % 7) - 3;
      for (int i = 0; i < n; ++i) t.push_back(1000 + static_cast<int64_t>(rng() % 199000));
      for (int64_t id : {106, 107, 105, 4368, 107}) t.push_back(id);
      w.tokens.push_back(std::move(t));
      w.image_of.push_back(image);
    }
  }
  torch::NoGradGuard no_grad;
  const auto o = torch::TensorOptions().dtype(e.compute_dtype()).device(e.device());
  Sync(e.device());
  const auto start = Clock::now();
  for (int image = 0; image < b.images; ++image) {
    const torch::Tensor pixels = torch::randn({1, 3, 896, 896}, o);
    w.features.push_back(e.ImageFeatures(pixels).value()[0]);
  }
  Sync(e.device());
  w.vision_seconds = Seconds(start);
  return w;
}

std::vector<engine::BatchPrompt> Prompts(const Workload& w, size_t first, size_t count) {
  std::vector<engine::BatchPrompt> out;
  for (size_t i = first; i < std::min(w.tokens.size(), first + count); ++i) {
    engine::BatchPrompt p;
    p.token_ids = &w.tokens[i];
    p.image_features = w.features[w.image_of[i]];
    p.image_key = absl::StrCat(w.image_of[i]);
    out.push_back(p);
  }
  return out;
}

struct ModeFigures {
  double seconds = 0;
  torch::Tensor outputs;
};

ModeFigures TimeScoring(engine::Engine& e, const Workload& w, const BenchOptions& b, bool shared) {
  engine::LastPositionOptions o;
  o.vocab_rows = torch::tensor({3276, 1294}, torch::kLong);
  o.shared_prefix = shared;
  torch::NoGradGuard no_grad;
  ModeFigures f;
  for (int it = 0; it < b.warmup + b.iters; ++it) {
    if (it == b.warmup) {
      Sync(e.device());
      f.seconds = 0;
    }
    const auto start = Clock::now();
    std::vector<torch::Tensor> margins;
    for (size_t first = 0; first < w.tokens.size(); first += b.batch) {
      const torch::Tensor z =
          engine::LastPositionLogits(*e.model(), Prompts(w, first, b.batch), o).logits;
      margins.push_back((z.select(1, 0) - z.select(1, 1)).to(torch::kCPU, torch::kFloat));
    }
    Sync(e.device());
    f.seconds += Seconds(start);
    f.outputs = torch::cat(margins);
  }
  f.seconds /= b.iters;
  return f;
}

// One timed optimizer step per iteration on train_pairs pairs (prompt 0 of each image with
// prompt 1: an original and its paraphrase), the combined loss, AdamW over the LoRA weights.
ModeFigures TimeTraining(engine::Engine& e, const Workload& w, const BenchOptions& b,
                         int start_layer, bool checkpoint) {
  std::vector<engine::BatchPrompt> prompts;
  for (int half = 0; half < 2; ++half) {
    for (int p = 0; p < b.train_pairs; ++p) {
      const size_t i = static_cast<size_t>((p % b.images) * b.paraphrases + half);
      prompts.push_back(Prompts(w, i, 1).front());
    }
  }
  if (start_layer > 0) {  // the frozen stream, computed once (the first epoch's work)
    const std::vector<torch::Tensor> stream =
        engine::StreamEnteringLayer(*e.model(), prompts, start_layer, 0);
    for (size_t i = 0; i < prompts.size(); ++i) prompts[i].hidden_input = stream[i];
  }
  engine::LastPositionOptions o;
  o.vocab_rows = torch::tensor({3276, 1294}, torch::kLong);
  o.start_layer = start_layer;
  o.checkpoint_layers = checkpoint;
  std::vector<torch::Tensor> params = e.LoraParameters();
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(2e-4));
  // Every mode starts from the same adapter and labels and draws the same dropout masks.
  torch::manual_seed(3);
  const torch::Tensor labels = torch::randint(0, 2, {b.train_pairs}, torch::kLong);
  std::vector<torch::Tensor> initial;
  for (const torch::Tensor& p : params) initial.push_back(p.detach().clone());
  e.model()->train();
  ModeFigures f;
  std::vector<double> losses;
  for (int it = 0; it < b.warmup + b.iters; ++it) {
    Sync(e.device());
    const auto start = Clock::now();
    const torch::Tensor z = train::TwoWayLogits(
        engine::LastPositionLogits(*e.model(), prompts, o).logits.to(torch::kFloat), 1);
    const train::PairLoss loss = train::ComputePairLoss(z.narrow(0, 0, b.train_pairs),
                                                        z.narrow(0, b.train_pairs, b.train_pairs),
                                                        labels.to(z.device()), {});
    optimizer.zero_grad();
    loss.total.backward();
    optimizer.step();
    Sync(e.device());
    if (it >= b.warmup) f.seconds += Seconds(start);
    losses.push_back(loss.total.item<double>());
  }
  e.model()->eval();
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(initial[i]);
  f.seconds /= b.iters;
  f.outputs = torch::tensor(losses, torch::kDouble);
  return f;
}

void PrintMode(const char* name, double per_s, const char* unit, double flops, double seconds,
               double roof) {
  const double gflops = flops / seconds / 1e9;
  std::printf("  %-34s %9.3f %s  %9.1f GFLOP/s  %5.1f%% of roof\n", name, per_s, unit, gflops,
              100.0 * gflops / roof);
}

int Run(const BenchOptions& b) {
  engine::SetComputeThreads(b.threads);  // OpenBLAS too: it keeps a thread per core otherwise
  const engine::Gemma3Config config = MedGemmaShape(b.text_layers, b.vision_layers);
  const auto layers = engine::ParseLayers(b.layers, b.text_layers, "--layers");
  if (!layers.ok()) {
    std::fprintf(stderr, "pcsweep-bench-engine: %s\n",
                 std::string(layers.status().message()).c_str());
    return 1;
  }
  // With layer 0 adapted nothing is frozen, and the training speedup would say nothing.
  const int first = layers->front();
  if (first < 1) {
    std::fprintf(stderr,
                 "pcsweep-bench-engine: --layers %s adapts layer 0; frozen-prefix "
                 "training needs the adapted layers above it\n",
                 b.layers.c_str());
    return 1;
  }
  const fs::path dir =
      b.work.empty() ? fs::temp_directory_path() / "pcsweep-bench-engine" : fs::path(b.work);
  auto start = Clock::now();
  if (b.work.empty() || !fs::exists(dir / "config.json")) {  // --work keeps it for a rerun
    engine::Gemma3Model model(config, torch::TensorOptions().dtype(torch::kFloat));
    train::InitializeRandomWeights(model, 1);
    const absl::Status saved = train::SaveModelFolder(model, dir.string());
    if (!saved.ok()) {
      std::fprintf(stderr, "pcsweep-bench-engine: %s\n", std::string(saved.message()).c_str());
      return 1;
    }
  }
  engine::EngineOptions eo;
  eo.model_dir = dir.string();
  eo.device = b.device;
  eo.dtype = b.dtype;
  auto loaded = engine::Engine::Load(eo);
  if (!loaded.ok()) {
    std::fprintf(stderr, "pcsweep-bench-engine: %s\n",
                 std::string(loaded.status().message()).c_str());
    return 1;
  }
  engine::Engine& e = **loaded;
  const auto o = torch::TensorOptions().dtype(e.compute_dtype()).device(e.device());
  const GemmRoof roofs = MeasureGemmRoof(o, e.config().text);
  const double roof = roofs.best();
  std::printf(
      "model: MedGemma-4B shape, %d text / %d vision layers, random weights in %s (%.0f s)\n",
      b.text_layers, b.vision_layers, dir.c_str(), Seconds(start));
  std::printf(
      "device %s, dtype %s, threads %d; GEMM roof %.1f GFLOP/s (2048^3: %.1f, 512x%lldx%lld: "
      "%.1f)\n",
      b.device.c_str(), b.dtype.c_str(), torch::get_num_threads(), roof, roofs.square,
      static_cast<long long>(e.config().text.hidden_size),
      static_cast<long long>(e.config().text.intermediate_size), roofs.mlp);
  MakeWorkload(e, b);  // warms the vision path up
  const Workload w = MakeWorkload(e, b);
  std::printf(
      "workload: %d images x %d prompts, prefix %lld tokens, prompts of ~%zu tokens; "
      "vision %.3f s per image (computed once per image, apart from the decoder "
      "figures)\n",
      b.images, b.paraphrases, static_cast<long long>(w.prefix_length), w.tokens.front().size(),
      w.vision_seconds / b.images);

  // Scoring FLOPs: each prompt in full, or each image's prefix once plus every suffix.
  const engine::Gemma3TextConfig& t = config.text;
  double plain_flops = 0, shared_flops = 0;
  for (const auto& tok : w.tokens) {
    const double l = static_cast<double>(tok.size()), s = l - static_cast<double>(w.prefix_length);
    plain_flops += DecoderFlops(t, b.text_layers, l, (l + 1) / 2).Forward();
    shared_flops +=
        DecoderFlops(t, b.text_layers, s, static_cast<double>(w.prefix_length) + (s + 1) / 2)
            .Forward();
  }
  const double p = static_cast<double>(w.prefix_length);
  shared_flops += b.images * DecoderFlops(t, b.text_layers, p, (p + 1) / 2).Forward();
  const ModeFigures plain = TimeScoring(e, w, b, false);
  const ModeFigures shared = TimeScoring(e, w, b, true);
  const double n = static_cast<double>(w.tokens.size());
  std::printf("scoring (%zu prompts, batch %d):\n", w.tokens.size(), b.batch);
  PrintMode("plain", n / plain.seconds, "prompts/s", plain_flops, plain.seconds, roof);
  PrintMode("shared prefix", n / shared.seconds, "prompts/s", shared_flops, shared.seconds, roof);
  const double end_to_end = n / (shared.seconds + w.vision_seconds);
  std::printf("  shared prefix, vision included         %9.3f prompts/s\n", end_to_end);
  std::printf("  max |margin difference| shared vs plain: %.2e\n",
              (plain.outputs - shared.outputs).abs().max().item<double>());

  // Training: LoRA r16 on every projection of the chosen layers, as the HF + PEFT anchor.
  std::set<engine::LoraTarget> targets;
  for (int layer : *layers) {
    for (engine::LoraModule m : engine::kAllLoraModules) targets.insert({layer, m});
  }
  engine::LoraSettings lora;
  lora.r = 16;
  lora.lora_alpha = 32;
  lora.lora_dropout = 0.05;
  if (!e.AttachLora(targets, lora, 1).ok()) return 1;
  double train_tokens = 0;
  for (int half = 0; half < 2; ++half)
    for (int q = 0; q < b.train_pairs; ++q)
      train_tokens += static_cast<double>(w.tokens[(q % b.images) * b.paraphrases + half].size());
  const double avg_keys = train_tokens / (4.0 * b.train_pairs);
  const int adapted_and_above = b.text_layers - first;
  // Forward through the layers run, backward through the adapted layers and up; checkpointing
  // runs their forward a second time.
  const DecoderWork all = DecoderFlops(t, b.text_layers, train_tokens, avg_keys);
  const DecoderWork top = DecoderFlops(t, adapted_and_above, train_tokens, avg_keys);
  const ModeFigures train_plain = TimeTraining(e, w, b, 0, false);
  const ModeFigures train_frozen = TimeTraining(e, w, b, first, false);
  const ModeFigures train_ckpt = TimeTraining(e, w, b, first, true);
  std::printf("training (LoRA r16 on layers %s, %d pairs per step, combined loss, AdamW):\n",
              b.layers.c_str(), b.train_pairs);
  PrintMode("plain", b.train_pairs / train_plain.seconds, "pairs/s  ",
            all.Forward() + top.Backward(), train_plain.seconds, roof);
  PrintMode("frozen prefix", b.train_pairs / train_frozen.seconds, "pairs/s  ",
            top.Forward() + top.Backward(), train_frozen.seconds, roof);
  PrintMode("frozen prefix + checkpointing", b.train_pairs / train_ckpt.seconds, "pairs/s  ",
            2 * top.Forward() + top.Backward(), train_ckpt.seconds, roof);
  std::printf("  max |loss difference| vs plain: frozen %.2e, checkpointed %.2e\n",
              (train_plain.outputs - train_frozen.outputs).abs().max().item<double>(),
              (train_plain.outputs - train_ckpt.outputs).abs().max().item<double>());
  if (b.work.empty()) fs::remove_all(dir);
  if (!b.json.empty()) {
    std::ofstream out(b.json);
    out << "{\"gemm_gflops\": " << roof << ", \"text_layers\": " << b.text_layers
        << ", \"lora_layers\": \"" << b.layers << "\""
        << ", \"plain_prompts_per_s\": " << n / plain.seconds
        << ", \"shared_prompts_per_s\": " << n / shared.seconds
        << ", \"shared_prompts_per_s_with_vision\": " << end_to_end
        << ", \"plain_pairs_per_s\": " << b.train_pairs / train_plain.seconds
        << ", \"frozen_pairs_per_s\": " << b.train_pairs / train_frozen.seconds
        << ", \"frozen_checkpointed_pairs_per_s\": " << b.train_pairs / train_ckpt.seconds << "}\n";
  }
  std::printf("shared-prefix scoring speedup: %.1fx; training speedup (layers %s): %.1fx\n",
              plain.seconds / shared.seconds, b.layers.c_str(),
              train_plain.seconds / train_frozen.seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pcsweep-bench-engine: engine speed on a MedGemma-4B-shaped model"};
  BenchOptions b;
  app.add_option("--text-layers", b.text_layers, "decoder layers (MedGemma-4B: 34)")
      ->check(CLI::Range(2, 64));
  app.add_option("--vision-layers", b.vision_layers, "SigLIP layers (27)")
      ->check(CLI::Range(1, 64));
  app.add_option(
      "--layers", b.layers,
      "LoRA layers: a-b, a list, or early / middle / late (the paper's 15-19 of 34, scaled)");
  app.add_option("--images", b.images, "images")->check(CLI::PositiveNumber);
  app.add_option("--paraphrases", b.paraphrases, "prompts per image")->check(CLI::Range(2, 64));
  app.add_option("--question-tokens", b.question_tokens, "question length")
      ->check(CLI::Range(4, 512));
  app.add_option("--batch", b.batch, "prompts per scoring batch")->check(CLI::PositiveNumber);
  app.add_option("--train-pairs", b.train_pairs, "pairs per training step")
      ->check(CLI::PositiveNumber);
  app.add_option("--iters", b.iters, "timed repetitions")->check(CLI::PositiveNumber);
  app.add_option("--warmup", b.warmup, "untimed repetitions first")->check(CLI::NonNegativeNumber);
  app.add_option("--threads", b.threads, "intra-op threads (0: libtorch's default)");
  app.add_option("--device", b.device, "cpu, cuda, cuda:N");
  app.add_option("--dtype", b.dtype, "fp32 | bf16")->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--work", b.work, "keep the random model folder here (reused when present)");
  app.add_option("--json", b.json, "also write the figures to this JSON file");
  CLI11_PARSE(app, argc, argv);
  try {
    return Run(b);
  } catch (const std::exception& ex) {  // the facade: one line, never an abort
    std::fprintf(stderr, "pcsweep-bench-engine: %s\n", ex.what());
    return 1;
  }
}
