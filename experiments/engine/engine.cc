#include "experiments/engine/engine.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <sstream>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fileio/durable_rename.h"
#include "common/status/status_macros.h"
#include "experiments/engine/compute_threads.h"
#include "experiments/engine/prompt_batch.h"
#include "experiments/engine/safetensors.h"
#include "experiments/engine/torch_status.h"
#include "experiments/engine/weight_names.h"

namespace pcsweep::engine {
namespace {

namespace fs = std::filesystem;

std::string ShapeString(at::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}
std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

torch::Tensor FromView(const TensorView& view) {
  return torch::from_blob(const_cast<std::byte*>(view.data), view.shape,
                          torch::TensorOptions().dtype(ToTorchDType(view.dtype)));
}

bool IsFloat(DType d) {
  return d == DType::kF32 || d == DType::kBF16 || d == DType::kF16 || d == DType::kF64;
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The image cache is in-memory only, so a process-local hash suffices; 64 bits over the
// exact pixel bytes plus the shape makes an accidental collision negligible.
std::string PixelKey(const torch::Tensor& pixels) {
  const torch::Tensor c = pixels.to(torch::kCPU, torch::kFloat).contiguous();
  const std::string_view bytes(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float));
  return absl::StrCat("px:", ShapeString(c.sizes()), ":", std::hash<std::string_view>{}(bytes));
}

}  // namespace

std::string RuntimeReport() {
  const std::string config = at::show_config();
  std::string blas = "unknown";
  const auto pos = config.find("BLAS_INFO=");
  if (pos != std::string::npos) {
    const auto end = config.find_first_of(", \n", pos);
    blas = config.substr(pos + 10, end - pos - 10);
  }
  return absl::StrCat("libtorch ", TORCH_VERSION, ", intra-op threads ", at::get_num_threads(),
                      ", BLAS ", blas,
                      torch::cuda::is_available() ? ", CUDA available" : ", no CUDA");
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Load(const EngineOptions& options) {
  return GuardTorch(
      absl::StrCat("loading ", options.model_dir),
      [&]() -> absl::StatusOr<std::unique_ptr<Engine>> {
        SetComputeThreads(options.num_threads);  // libtorch and OpenBLAS alike
        static std::once_flag logged;
        std::call_once(
            logged, [] { std::fprintf(stderr, "pcsweep engine: %s\n", RuntimeReport().c_str()); });

        PCSWEEP_ASSIGN_OR_RETURN(Gemma3Config config, LoadGemma3Config(options.model_dir));
        PCSWEEP_ASSIGN_OR_RETURN(auto ckpt, Checkpoint::Open(options.model_dir));
        torch::Device device(torch::kCPU);
        try {
          device = torch::Device(options.device);
        } catch (const c10::Error&) {
          return absl::InvalidArgumentError(absl::StrCat("bad device '", options.device, "'"));
        }
        if (device.is_cuda() && !torch::cuda::is_available()) {
          return absl::InvalidArgumentError(
              absl::StrCat("device '", options.device, "' requested but CUDA is not available"));
        }

        // Stored name -> canonical; every stored tensor must be a known weight.
        std::map<std::string, std::string> stored_of;
        for (const std::string& name : ckpt->names()) {
          auto canonical = CanonicalWeightName(name);
          if (!canonical.ok()) return Annotate(canonical.status(), ckpt->FileOf(name));
          if (!canonical->has_value()) continue;
          if (!stored_of.emplace(**canonical, name).second) {
            return absl::InvalidArgumentError(absl::StrCat(ckpt->FileOf(name), ": tensor '", name,
                                                           "' duplicates '", stored_of[**canonical],
                                                           "'"));
          }
        }
        const std::string embed_name = "language_model.model.embed_tokens.weight";
        if (!stored_of.count(embed_name)) {
          return absl::InvalidArgumentError(
              absl::StrCat(options.model_dir, ": missing tensor '", embed_name, "'"));
        }
        PCSWEEP_ASSIGN_OR_RETURN(TensorView embed_view, ckpt->Get(stored_of[embed_name]));
        torch::ScalarType dtype;
        if (options.dtype == "auto") {
          dtype = device.is_cpu() ? torch::kFloat : ToTorchDType(embed_view.dtype);
        } else if (options.dtype == "fp32") {
          dtype = torch::kFloat;
        } else if (options.dtype == "bf16") {
          dtype = torch::kBFloat16;
        } else if (options.dtype == "fp16") {
          dtype = torch::kHalf;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("bad dtype '", options.dtype, "' (auto, fp32, bf16, fp16)"));
        }

        Gemma3Model model(config, torch::TensorOptions().dtype(dtype).device(device));
        std::set<std::string> expected;
        for (const auto& w : ExpectedWeights(config)) expected.insert(w.name);
        {
          torch::NoGradGuard no_grad;
          for (auto& param : model->named_parameters()) {
            const std::string& name = param.key();
            if (name.find(".lora_") != std::string::npos) continue;
            auto it = stored_of.find(name);
            if (it == stored_of.end()) {
              return absl::InvalidArgumentError(
                  absl::StrCat(options.model_dir, ": missing tensor '", name, "'"));
            }
            PCSWEEP_ASSIGN_OR_RETURN(TensorView view, ckpt->Get(it->second));
            const std::string file = ckpt->FileOf(it->second);
            if (!IsFloat(view.dtype)) {
              return absl::InvalidArgumentError(absl::StrCat(file, ": tensor '", it->second,
                                                             "' has dtype ", DTypeName(view.dtype),
                                                             ", expected a float"));
            }
            if (at::IntArrayRef(view.shape) != param.value().sizes()) {
              return absl::InvalidArgumentError(absl::StrCat(
                  file, ": tensor '", it->second, "' has shape ", ShapeString(view.shape),
                  " but config.json implies ", ShapeString(param.value().sizes())));
            }
            param.value().copy_(FromView(view));
            ckpt->ReleasePages(it->second);
          }
        }
        for (const auto& [canonical, stored] : stored_of) {
          if (!expected.count(canonical)) {
            return absl::InvalidArgumentError(absl::StrCat(ckpt->FileOf(stored),
                                                           ": unexpected tensor '", stored,
                                                           "' (not part of this config's model)"));
          }
        }
        model->eval();
        model->bf16_rope_frequencies = options.bf16_rope_frequencies;
        std::unique_ptr<Engine> engine(
            new Engine(std::move(config), std::move(model), device, dtype));
        engine->model_dir_ = options.model_dir;
        if (!options.adapter_dir.empty())
          PCSWEEP_RETURN_IF_ERROR(engine->LoadAdapter(options.adapter_dir));
        return engine;
      });
}

absl::Status Engine::ValidateInputs(const ModelInputs& in) const {
  if (!in.input_ids.defined() || in.input_ids.dim() != 2 || in.input_ids.numel() == 0) {
    return absl::InvalidArgumentError("input_ids must be a non-empty [batch, length] tensor");
  }
  if (in.input_ids.is_floating_point())
    return absl::InvalidArgumentError("input_ids must be integers");
  const auto sizes = in.input_ids.sizes();
  for (const auto& [name, t] :
       {std::pair{"attention_mask", &in.attention_mask}, {"token_type_ids", &in.token_type_ids}}) {
    if (t->defined() && t->sizes() != sizes) {
      return absl::InvalidArgumentError(absl::StrCat(name, " has shape ", ShapeString(t->sizes()),
                                                     ", input_ids ", ShapeString(sizes)));
    }
  }
  if (in.position_ids.defined() && in.position_ids.sizes() != sizes &&
      !(in.position_ids.dim() == 1 && in.position_ids.size(0) == sizes[1])) {
    return absl::InvalidArgumentError(
        absl::StrCat("position_ids has shape ", ShapeString(in.position_ids.sizes())));
  }
  const torch::Tensor ids = in.input_ids.to(torch::kCPU, torch::kLong);
  const torch::Tensor is_image = ids.eq(config_.image_token_index);
  const torch::Tensor bad =
      ids.lt(0).logical_or(ids.ge(config_.text.vocab_size)).logical_and(is_image.logical_not());
  if (bad.any().item<bool>()) {
    const torch::Tensor where = bad.nonzero()[0];
    return absl::InvalidArgumentError(
        absl::StrCat("input_ids[", where[0].item<int64_t>(), ", ", where[1].item<int64_t>(),
                     "] = ", ids.index({where[0], where[1]}).item<int64_t>(),
                     " is outside the vocabulary of ", config_.text.vocab_size));
  }
  const int64_t image_tokens = is_image.sum().item<int64_t>();
  int64_t images = 0;
  if (in.image_features.defined()) {
    const auto& f = in.image_features;
    if (f.dim() != 3 || f.size(1) != config_.mm_tokens_per_image ||
        f.size(2) != config_.text.hidden_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("image_features has shape ", ShapeString(f.sizes()), ", expected [N, ",
                       config_.mm_tokens_per_image, ", ", config_.text.hidden_size, "]"));
    }
    images = f.size(0);
  } else if (in.pixel_values.defined()) {
    const auto& p = in.pixel_values;
    const int64_t s = config_.vision.image_size;
    if (p.dim() != 4 || p.size(1) != config_.vision.num_channels || p.size(2) != s ||
        p.size(3) != s) {
      return absl::InvalidArgumentError(
          absl::StrCat("pixel_values has shape ", ShapeString(p.sizes()), ", expected [N, ",
                       config_.vision.num_channels, ", ", s, ", ", s, "]"));
    }
    images = p.size(0);
  }
  if (image_tokens != images * config_.mm_tokens_per_image) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input_ids hold ", image_tokens, " image tokens (id ", config_.image_token_index, ") but ",
        images, " image(s) x ", config_.mm_tokens_per_image, " tokens were given"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelOutputs> Engine::Forward(const ModelInputs& inputs,
                                             const ForwardOptions& options) {
  return GuardTorch("forward", [&]() -> absl::StatusOr<ModelOutputs> {
    PCSWEEP_RETURN_IF_ERROR(ValidateInputs(inputs));
    for (int layer : options.capture_layers) {
      if (layer < 0 || layer >= config_.text.num_hidden_layers) {
        return absl::InvalidArgumentError(absl::StrCat(
            "capture layer ", layer, " out of range [0, ", config_.text.num_hidden_layers, ")"));
      }
    }
    return model_->Forward(inputs, options);
  });
}

absl::StatusOr<torch::Tensor> Engine::ImageFeatures(const torch::Tensor& pixel_values) {
  return GuardTorch("image features", [&]() -> absl::StatusOr<torch::Tensor> {
    const int64_t s = config_.vision.image_size;
    if (!pixel_values.defined() || pixel_values.dim() != 4 ||
        pixel_values.size(1) != config_.vision.num_channels || pixel_values.size(2) != s ||
        pixel_values.size(3) != s) {
      return absl::InvalidArgumentError(
          absl::StrCat("pixel_values has shape ",
                       pixel_values.defined() ? ShapeString(pixel_values.sizes()) : "undefined",
                       ", expected [N, ", config_.vision.num_channels, ", ", s, ", ", s, "]"));
    }
    torch::NoGradGuard no_grad;
    return model_->ImageFeatures(pixel_values.to(device_));
  });
}

absl::Status Engine::AttachLora(const std::set<LoraTarget>& targets, const LoraSettings& settings,
                                uint64_t seed) {
  return GuardTorch("attaching LoRA", [&]() -> absl::Status {
    if (settings.r <= 0) return absl::InvalidArgumentError("LoRA r must be positive");
    for (const auto& t : targets) {
      if (t.layer < 0 || t.layer >= config_.text.num_hidden_layers) {
        return absl::InvalidArgumentError(absl::StrCat("LoRA layer ", t.layer, " out of range [0, ",
                                                       config_.text.num_hidden_layers, ")"));
      }
    }
    DetachLora();
    torch::manual_seed(seed);
    for (const auto& t : targets)
      model_->LoraSite(t.layer, t.module)
          ->AttachLora(settings.r, settings.scaling(), settings.lora_dropout);
    lora_targets_ = targets;
    lora_settings_ = settings;
    return absl::OkStatus();
  });
}

void Engine::DetachLora() {
  for (const auto& t : lora_targets_) model_->LoraSite(t.layer, t.module)->DetachLora();
  lora_targets_.clear();
}

absl::Status Engine::LoadAdapter(const std::string& dir) {
  return GuardTorch(absl::StrCat("loading adapter ", dir), [&]() -> absl::Status {
    const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
    const std::string weights_path = (fs::path(dir) / "adapter_model.safetensors").string();
    PCSWEEP_ASSIGN_OR_RETURN(std::string text, ReadText(config_path));
    PCSWEEP_ASSIGN_OR_RETURN(AdapterConfig adapter, ParseAdapterConfig(text, config_path));
    PCSWEEP_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(weights_path));
    std::map<LoraTarget, std::pair<TensorView, TensorView>> views;
    for (const std::string& name : file->names()) {
      bool is_a = false;
      auto target = ParseAdapterKey(name, &is_a);
      if (!target.ok()) return Annotate(target.status(), weights_path);
      if (target->layer >= config_.text.num_hidden_layers) {
        return absl::InvalidArgumentError(
            absl::StrCat(weights_path, ": tensor '", name, "' is for decoder layer ", target->layer,
                         " but the model has ", config_.text.num_hidden_layers,
                         " layers (adapter for another model?)"));
      }
      PCSWEEP_ASSIGN_OR_RETURN(TensorView view, file->Get(name));
      if (!IsFloat(view.dtype)) {
        return absl::InvalidArgumentError(
            absl::StrCat(weights_path, ": tensor '", name, "' is not a float tensor"));
      }
      (is_a ? views[*target].first : views[*target].second) = view;
    }
    if (views.empty())
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": no LoRA tensors"));
    const int r = adapter.settings.r;
    for (const auto& [target, ab] : views) {
      LoraLinear& site = model_->LoraSite(target.layer, target.module);
      for (bool is_a : {true, false}) {
        const TensorView& v = is_a ? ab.first : ab.second;
        const std::string key = AdapterKey(target, is_a);
        if (v.data == nullptr && v.nbytes == 0 && v.name.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              weights_path, ": '", key, "' is missing its ", is_a ? "lora_A" : "lora_B", " half"));
        }
        const std::vector<int64_t> want = is_a ? std::vector<int64_t>{r, site->in_features()}
                                               : std::vector<int64_t>{site->out_features(), r};
        if (v.shape != want) {
          return absl::InvalidArgumentError(
              absl::StrCat(weights_path, ": tensor '", v.name, "' has shape ", ShapeString(v.shape),
                           " but this model and r=", r, " need ", ShapeString(want),
                           " (adapter for another model?)"));
        }
      }
    }
    DetachLora();
    std::set<LoraTarget> targets;
    torch::NoGradGuard no_grad;
    for (const auto& [target, ab] : views) {
      LoraLinear& site = model_->LoraSite(target.layer, target.module);
      site->AttachLora(r, adapter.settings.scaling(), adapter.settings.lora_dropout);
      site->lora_A.copy_(FromView(ab.first));
      site->lora_B.copy_(FromView(ab.second));
      targets.insert(target);
    }
    lora_targets_ = targets;
    lora_settings_ = adapter.settings;
    return absl::OkStatus();
  });
}

absl::Status Engine::SaveAdapter(const std::string& dir) const {
  return GuardTorch(absl::StrCat("saving adapter ", dir), [&]() -> absl::Status {
    if (lora_targets_.empty()) return absl::FailedPreconditionError("no LoRA adapter attached");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> tensors;
    for (const auto& t : lora_targets_) {
      LoraLinear& site = const_cast<Gemma3ModelImpl&>(*model_).LoraSite(t.layer, t.module);
      for (bool is_a : {true, false}) {
        torch::Tensor c = (is_a ? site->lora_A : site->lora_B)
                              .detach()
                              .to(torch::kCPU, torch::kFloat)
                              .contiguous();
        keep.push_back(c);
        tensors.push_back({AdapterKey(t, is_a), DType::kF32, c.sizes().vec(), c.data_ptr(),
                           static_cast<size_t>(c.numel()) * sizeof(float)});
      }
    }
    PCSWEEP_RETURN_IF_ERROR(WriteSafetensors((fs::path(dir) / "adapter_model.safetensors").string(),
                                             tensors, {{"format", "pt"}}));
    const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
    return WriteFileDurably(
        config_path,
        absl::StrCat(AdapterConfigJson(lora_settings_, lora_targets_, model_dir_), "\n"));
  });
}

std::vector<torch::Tensor> Engine::LoraParameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& t : lora_targets_) {
    LoraLinear& site = const_cast<Gemma3ModelImpl&>(*model_).LoraSite(t.layer, t.module);
    out.push_back(site->lora_A);
    out.push_back(site->lora_B);
  }
  return out;
}

absl::StatusOr<torch::Tensor> Engine::CachedImageFeatures(const std::string& image_key) const {
  const auto it = image_cache_.find(image_key);
  if (it == image_cache_.end()) {
    return absl::NotFoundError(
        absl::StrCat("image key '", image_key, "' names no image scored by this engine"));
  }
  return it->second;
}

absl::StatusOr<std::vector<ScoreResult>> Engine::Score(const std::vector<ScoreRequest>& requests,
                                                       const ScoreOptions& options) {
  return GuardTorch("scoring", [&]() -> absl::StatusOr<std::vector<ScoreResult>> {
    if (options.yes_ids.empty() || options.no_ids.empty()) {
      return absl::InvalidArgumentError("scoring needs at least one yes id and one no id");
    }
    for (int64_t id : options.yes_ids) {
      if (id < 0 || id >= config_.text.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat("yes id ", id, " out of vocabulary"));
    }
    for (int64_t id : options.no_ids) {
      if (id < 0 || id >= config_.text.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat("no id ", id, " out of vocabulary"));
    }
    const int batch = std::max(1, options.batch_size);
    torch::NoGradGuard no_grad;
    // Resolve every image to a cache key, computing missing features in batches.
    std::vector<std::string> keys(requests.size());
    std::vector<size_t> pending;
    std::set<std::string> pending_keys;
    for (size_t i = 0; i < requests.size(); ++i) {
      const ScoreRequest& r = requests[i];
      if (r.token_ids.empty())
        return absl::InvalidArgumentError(absl::StrCat("request ", i, " has no tokens"));
      if (r.pixel_values.defined()) {
        keys[i] = PixelKey(r.pixel_values);
        if (!r.image_key.empty()) image_cache_.erase(r.image_key);  // re-bound below
        if (!image_cache_.count(keys[i]) && pending_keys.insert(keys[i]).second)
          pending.push_back(i);
      } else if (!r.image_key.empty()) {
        if (!image_cache_.count(r.image_key)) {
          return absl::InvalidArgumentError(
              absl::StrCat("request ", i, ": image '", r.image_key,
                           "' is not cached; pass its pixel_values first"));
        }
        keys[i] = r.image_key;
      }
    }
    for (size_t start = 0; start < pending.size(); start += batch) {
      std::vector<torch::Tensor> pixels;
      const size_t end = std::min(pending.size(), start + batch);
      for (size_t j = start; j < end; ++j) {
        const torch::Tensor& p = requests[pending[j]].pixel_values;
        pixels.push_back(p.dim() == 4 ? p.squeeze(0) : p);
      }
      PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor feats, ImageFeatures(torch::stack(pixels)));
      for (size_t j = start; j < end; ++j) image_cache_[keys[pending[j]]] = feats[j - start];
      image_cache_misses_ += end - start;
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i].pixel_values.defined() && !requests[i].image_key.empty()) {
        image_cache_[requests[i].image_key] = image_cache_.at(keys[i]);
      }
    }
    // Length-sorted chunks waste less padding; with a shared prefix, one image's prompts
    // are kept together first so its prefix runs once. Results go back in request order.
    std::vector<size_t> order(requests.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (options.shared_prefix && keys[a] != keys[b]) return keys[a] < keys[b];
      return requests[a].token_ids.size() < requests[b].token_ids.size();
    });
    std::vector<ScoreResult> results(requests.size());
    for (size_t start = 0; start < order.size(); start += batch) {
      std::vector<const ScoreRequest*> chunk;
      std::vector<std::string> chunk_keys;
      const size_t end = std::min(order.size(), start + batch);
      for (size_t j = start; j < end; ++j) {
        chunk.push_back(&requests[order[j]]);
        chunk_keys.push_back(keys[order[j]]);
      }
      auto scored = ScoreChunk(chunk, chunk_keys, options);
      if (!scored.ok())
        return Annotate(scored.status(), absl::StrCat("request ", order[start], ".."));
      for (size_t j = start; j < end; ++j) results[order[j]] = std::move((*scored)[j - start]);
    }
    return results;
  });
}

absl::StatusOr<std::vector<ScoreResult>> Engine::ScoreChunk(
    const std::vector<const ScoreRequest*>& chunk, const std::vector<std::string>& image_keys,
    const ScoreOptions& options) {
  const int64_t b = static_cast<int64_t>(chunk.size());
  std::vector<BatchPrompt> prompts;
  for (int64_t i = 0; i < b; ++i) {
    BatchPrompt p;
    p.token_ids = &chunk[i]->token_ids;
    if (!image_keys[i].empty()) {
      p.image_features = image_cache_.at(image_keys[i]);
      p.image_key = image_keys[i];
    }
    prompts.push_back(std::move(p));
  }
  const int64_t ny = options.yes_ids.size();
  std::vector<int64_t> rows = options.yes_ids;
  rows.insert(rows.end(), options.no_ids.begin(), options.no_ids.end());
  LastPositionOptions lo;
  lo.vocab_rows = torch::tensor(rows, torch::kLong);
  lo.pad_id = config_.text.pad_token_id;
  lo.capture_layers = options.capture_layers;
  lo.shared_prefix = options.shared_prefix;
  LastPositionOutputs out = LastPositionLogits(*model_, prompts, lo);
  tokens_run_ += out.tokens_run;
  const torch::Tensor logits = out.logits.to(torch::kCPU, torch::kFloat);  // [B, ny + nn]
  const torch::Tensor yes = torch::logsumexp(logits.slice(1, 0, ny), 1);
  const torch::Tensor no = torch::logsumexp(logits.slice(1, ny), 1);
  std::vector<ScoreResult> results(b);
  for (int64_t i = 0; i < b; ++i) {
    results[i].yes_logsumexp = yes[i].item<double>();
    results[i].no_logsumexp = no[i].item<double>();
    results[i].margin = results[i].yes_logsumexp - results[i].no_logsumexp;
    for (auto& [layer, h] : out.layer_outputs[i])
      results[i].layer_outputs[layer] = h.to(torch::kCPU, torch::kFloat);
  }
  return results;
}

}  // namespace pcsweep::engine
