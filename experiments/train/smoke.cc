#include "experiments/train/smoke.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"
#include "experiments/engine/engine.h"
#include "experiments/engine/prompt_batch.h"
#include "experiments/engine/torch_status.h"
#include "experiments/train/losses.h"
#include "nlohmann/json.hpp"

namespace pcsweep::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// VmRSS and VmHWM of this process in GB (10^9 bytes), from /proc/self/status.
struct Memory {
  double resident_gb = 0, peak_gb = 0;
};

Memory ReadMemory() {
  Memory m;
  std::ifstream in("/proc/self/status");
  std::string line;
  auto gb = [&](absl::string_view key, double* out) {
    absl::string_view rest = line;
    int64_t kib = 0;
    if (absl::ConsumePrefix(&rest, key) &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(rest, "kB")), &kib))
      *out = static_cast<double>(kib) * 1024.0 / 1e9;
  };
  while (std::getline(in, line)) {
    gb("VmRSS:", &m.resident_gb);
    gb("VmHWM:", &m.peak_gb);
  }
  return m;
}

class PhaseClock {
 public:
  // Prints "<phase>: <s> s, RSS <gb> GB (peak <gb> GB)[; detail]".
  void End(const char* phase, const std::string& detail = "") {
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    const Memory m = ReadMemory();
    std::printf("%-7s %7.1f s  RSS %6.2f GB (peak %6.2f GB)%s%s\n", phase, s, m.resident_gb,
                m.peak_gb, detail.empty() ? "" : "  ", detail.c_str());
    std::fflush(stdout);
    total_s_ += s;
    start_ = Clock::now();
  }
  double total_s() const { return total_s_; }

 private:
  Clock::time_point start_ = Clock::now();
  double total_s_ = 0;
};

// Two prompts sharing Gemma 3's image block, with different question ids: a paraphrase pair.
struct SmokeWorkload {
  std::vector<int64_t> original, paraphrase;
  std::vector<int64_t> yes_ids, no_ids;
  torch::Tensor pixels;  // [3, H, W]
};

SmokeWorkload MakeWorkload(const engine::Gemma3Config& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Ordinary ids lie below the image-block specials in every Gemma 3 vocabulary.
  const int64_t top =
      std::min({c.text.vocab_size, c.boi_token_index, c.eoi_token_index, c.image_token_index});
  std::uniform_int_distribution<int64_t> id(3, top - 1);
  std::vector<int64_t> prefix = {2, id(rng), id(rng), c.boi_token_index};  // <bos>, turn header
  prefix.insert(prefix.end(), c.mm_tokens_per_image, c.image_token_index);
  prefix.push_back(c.eoi_token_index);
  SmokeWorkload w;
  w.original = w.paraphrase = prefix;
  for (int i = 0; i < 14; ++i) w.original.push_back(id(rng));
  for (int i = 0; i < 19; ++i) w.paraphrase.push_back(id(rng));
  w.yes_ids = {id(rng), id(rng)};
  w.no_ids = {id(rng), id(rng)};
  torch::manual_seed(seed);
  w.pixels = torch::rand({3, c.vision.image_size, c.vision.image_size}) * 2 - 1;
  return w;
}

absl::StatusOr<std::pair<double, double>> ScorePair(engine::Engine& e, const SmokeWorkload& w) {
  engine::ScoreRequest a, b;
  a.pixel_values = w.pixels;
  a.image_key = "smoke";
  a.token_ids = w.original;
  b.pixel_values = w.pixels;  // the same content: its features come from the cache
  b.image_key = "smoke";
  b.token_ids = w.paraphrase;
  engine::ScoreOptions so;
  so.yes_ids = w.yes_ids;
  so.no_ids = w.no_ids;
  PCSWEEP_ASSIGN_OR_RETURN(auto scores, e.Score({a, b}, so));
  return std::make_pair(scores[0].margin, scores[1].margin);
}

std::string Margins(std::pair<double, double> m) {
  return absl::StrCat("margins ", absl::SixDigits(m.first), " / ", absl::SixDigits(m.second));
}

// One AdamW step of the combined loss (answer CE + symmetric KL) on the pair, with the layers
// below the first adapted one run once without gradients (frozen-prefix training).
absl::StatusOr<std::string> LoraStep(engine::Engine& e, const SmokeWorkload& w, int first_layer) {
  return engine::GuardTorch("LoRA step", [&]() -> absl::StatusOr<std::string> {
    const auto device = e.device();
    // ScorePair ran the vision tower on this image already (it is frozen).
    PCSWEEP_ASSIGN_OR_RETURN(const torch::Tensor features, e.CachedImageFeatures("smoke"));
    std::vector<engine::BatchPrompt> batch(2);
    batch[0].token_ids = &w.original;
    batch[1].token_ids = &w.paraphrase;
    for (auto& p : batch) {
      p.image_features = features;
      p.image_key = "smoke";
    }
    const int64_t pad = e.config().text.pad_token_id;
    std::vector<torch::Tensor> entering =
        engine::StreamEnteringLayer(*e.model(), batch, first_layer, pad);
    for (size_t i = 0; i < batch.size(); ++i) batch[i].hidden_input = entering[i];
    std::vector<int64_t> rows = w.yes_ids;
    rows.insert(rows.end(), w.no_ids.begin(), w.no_ids.end());
    engine::LastPositionOptions lo;
    lo.vocab_rows = torch::tensor(rows, torch::kLong).to(device);
    lo.pad_id = pad;
    lo.start_layer = first_layer;
    const std::vector<torch::Tensor> params = e.LoraParameters();
    torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(1e-3));
    optimizer.zero_grad();
    const torch::Tensor z = TwoWayLogits(engine::LastPositionLogits(*e.model(), batch, lo).logits,
                                         static_cast<int64_t>(w.yes_ids.size()));
    const torch::Tensor label = torch::zeros({1}, torch::kLong).to(device);  // "yes"
    const PairLoss loss = ComputePairLoss(z.slice(0, 0, 1), z.slice(0, 1, 2), label, {});
    loss.total.backward();
    double grad_sq = 0;
    for (const auto& p : params) {
      if (p.grad().defined()) grad_sq += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
    }
    const double total = loss.total.item<double>();
    if (!std::isfinite(total) || !std::isfinite(grad_sq) || grad_sq == 0) {
      return absl::InternalError(absl::StrCat("LoRA step: loss ", total, ", gradient norm² ",
                                              grad_sq, " (expected finite and non-zero)"));
    }
    optimizer.step();
    return absl::StrCat("loss ", absl::SixDigits(total), " (ce ",
                        absl::SixDigits(loss.ce.item<double>()), ", consistency ",
                        absl::SixDigits(loss.consistency.item<double>()), "), LoRA grad norm ",
                        absl::SixDigits(std::sqrt(grad_sq)), ", ", params.size(), " tensors");
  });
}

}  // namespace

absl::Status RunSmoke(const SmokeOptions& options) {
  static const std::set<std::string> kStops = {"", "load", "score", "train", "reload"};
  if (!kStops.count(options.stop_after)) {
    return absl::InvalidArgumentError(absl::StrCat("--stop-after '", options.stop_after,
                                                   "': expected load, score, train or reload"));
  }
  // Checked before the (long) load.
  PCSWEEP_ASSIGN_OR_RETURN(const engine::Gemma3Config config,
                           engine::LoadGemma3Config(options.model_dir));
  PCSWEEP_ASSIGN_OR_RETURN(
      const std::vector<int> layers,
      engine::ParseLayers(options.layers, static_cast<int>(config.text.num_hidden_layers),
                          "--layers"));
  PhaseClock clock;
  engine::EngineOptions eo;
  eo.model_dir = options.model_dir;
  eo.device = options.device;
  eo.dtype = options.dtype;
  eo.num_threads = options.threads;
  PCSWEEP_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> e, engine::Engine::Load(eo));
  const engine::Gemma3Config& c = e->config();
  clock.End("load", absl::StrCat(c.text.num_hidden_layers, " text / ", c.vision.num_hidden_layers,
                                 " vision layers, ", c10::toString(e->compute_dtype()), " on ",
                                 options.device, ", ", at::get_num_threads(),
                                 at::get_num_threads() == 1 ? " thread" : " threads"));
  const SmokeWorkload w = MakeWorkload(c, options.seed);
  auto finish = [&]() -> absl::Status {
    const Memory m = ReadMemory();
    std::printf("smoke: ok, %.1f s in all, peak RSS %.2f GB\n", clock.total_s(), m.peak_gb);
    if (options.max_rss_gb > 0 && m.peak_gb > options.max_rss_gb) {
      return absl::ResourceExhaustedError(absl::StrCat("peak RSS ", absl::SixDigits(m.peak_gb),
                                                       " GB exceeds --max-rss-gb ",
                                                       options.max_rss_gb));
    }
    return absl::OkStatus();
  };
  if (options.stop_after == "load") return finish();

  PCSWEEP_ASSIGN_OR_RETURN(const auto base, ScorePair(*e, w));
  clock.End("score", absl::StrCat(Margins(base), " (one pair, ", w.original.size(), " and ",
                                  w.paraphrase.size(), " tokens)"));
  if (options.stop_after == "score") return finish();

  std::set<engine::LoraTarget> targets;
  for (int layer : layers) {
    for (engine::LoraModule m : engine::kAllLoraModules) targets.insert({layer, m});
  }
  engine::LoraSettings lora;
  lora.r = options.lora_rank;
  lora.lora_alpha = 2.0 * options.lora_rank;
  PCSWEEP_RETURN_IF_ERROR(e->AttachLora(targets, lora, options.seed));
  PCSWEEP_ASSIGN_OR_RETURN(const std::string step, LoraStep(*e, w, layers.front()));
  clock.End("train", absl::StrCat("layers ", options.layers, ", r ", lora.r, ": ", step));
  PCSWEEP_ASSIGN_OR_RETURN(const auto trained, ScorePair(*e, w));
  clock.End("rescore", Margins(trained));
  if (options.stop_after == "train") return finish();

  const fs::path dir = options.work_dir.empty()
                           ? fs::temp_directory_path() / absl::StrCat("pcsweep-smoke-", getpid())
                           : fs::path(options.work_dir);
  const std::string adapter = (dir / "adapter").string();
  PCSWEEP_RETURN_IF_ERROR(e->SaveAdapter(adapter));
  e->DetachLora();
  PCSWEEP_RETURN_IF_ERROR(e->LoadAdapter(adapter));
  PCSWEEP_ASSIGN_OR_RETURN(const auto reloaded, ScorePair(*e, w));
  const double delta = std::max(std::abs(reloaded.first - trained.first),
                                std::abs(reloaded.second - trained.second));
  clock.End("reload",
            absl::StrCat(Margins(reloaded), ", |Δ| ", delta, " vs before saving (", adapter, ")"));
  if (options.work_dir.empty()) fs::remove_all(dir);
  if (delta > 1e-5 * std::max(1.0, std::abs(trained.first))) {
    return absl::InternalError(absl::StrCat("the reloaded adapter scores margins ",
                                            Margins(reloaded), " but it scored ", Margins(trained),
                                            " before saving"));
  }
  return finish();
}

}  // namespace pcsweep::train
