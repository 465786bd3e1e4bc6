#include "experiments/engine/model.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcsweep::engine {
namespace {

// at::scaled_dot_product_attention appeared in libtorch 2.0; 1.13 (Debian) takes the explicit
// path, which is also the one used for logit soft-capping.
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
constexpr bool kHaveSdpa = true;
#else
constexpr bool kHaveSdpa = false;
#endif

// Attention written out (libtorch without SDPA), for one block of queries.
torch::Tensor AttendWhole(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const torch::Tensor& mask, double scaling,
                          std::optional<double> softcap) {
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * scaling;
  if (softcap) scores = torch::tanh(scores / *softcap) * *softcap;
  if (!mask.defined())
    return torch::matmul(torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type()), v);
  const torch::Tensor blocked = mask.logical_not();
  torch::Tensor probs = torch::softmax(
      scores.masked_fill(blocked, -std::numeric_limits<float>::infinity()), -1, torch::kFloat);
  probs = probs.masked_fill(blocked, 0.0).to(q.scalar_type());
  return torch::matmul(probs, v);
}

// Scores per block of queries: 64 MiB of fp32 (see BlockedAttention).
constexpr int64_t kMaxScoreElements = int64_t{1} << 24;

// q [B, H, L, d], k/v [B, H, S, d] (KV heads already repeated), mask bool [B, 1, L, S]
// (true = may attend) or undefined. Rows with no allowed key (left-padding queries) yield 0,
// as torch >= 2.5 SDPA does, so padded rows never produce NaN.
torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& mask, double scaling, std::optional<double> softcap) {
  if constexpr (kHaveSdpa) {
    if (!softcap) {
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
      // Pre-scale q so the call works on every 2.x (the `scale` argument came in 2.1).
      const torch::Tensor qs = q * (scaling * std::sqrt(static_cast<double>(q.size(-1))));
      if (!mask.defined()) return at::scaled_dot_product_attention(qs, k, v);
      const torch::Tensor row_any = mask.any(-1, /*keepdim=*/true);
      const torch::Tensor out =
          at::scaled_dot_product_attention(qs, k, v, mask.logical_or(row_any.logical_not()));
      return out * row_any.to(out.scalar_type());
#endif
    }
  }
  return BlockedAttention(q, k, v, mask, scaling, softcap, kMaxScoreElements);
}

torch::Tensor GeluTanh(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

// Gemma's (1 + w) RMSNorm, computed in fp32 and cast back after the weight multiply.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t dim, double eps, const torch::TensorOptions& options) : eps_(eps) {
    weight = register_parameter("weight", torch::empty({dim}, options), false);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor xf = x.to(torch::kFloat);
    const torch::Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps_);
    return (normed * (1.0 + weight.to(torch::kFloat))).to(x.scalar_type());
  }
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

// Parameter holders named like transformers' modules (weight, bias).
class AffineImpl : public torch::nn::Module {
 public:
  AffineImpl(std::vector<int64_t> weight_shape, int64_t bias_dim,
             const torch::TensorOptions& options) {
    weight = register_parameter("weight", torch::empty(weight_shape, options), false);
    if (bias_dim > 0) bias = register_parameter("bias", torch::empty({bias_dim}, options), false);
  }
  torch::Tensor Linear(const torch::Tensor& x) {
    return torch::nn::functional::linear(x, weight, bias);
  }
  torch::Tensor LayerNorm(const torch::Tensor& x, double eps) {
    return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  }
  torch::Tensor weight, bias;
};
TORCH_MODULE(Affine);

class SiglipLayerImpl : public torch::nn::Module {
 public:
  SiglipLayerImpl(const SiglipVisionConfig& c, const torch::TensorOptions& o) : c_(c) {
    const int64_t d = c.hidden_size;
    layer_norm1 = register_module("layer_norm1", Affine(std::vector<int64_t>{d}, d, o));
    layer_norm2 = register_module("layer_norm2", Affine(std::vector<int64_t>{d}, d, o));
    auto attn = register_module("self_attn", std::make_shared<torch::nn::Module>());
    q_proj = attn->register_module("q_proj", Affine(std::vector<int64_t>{d, d}, d, o));
    k_proj = attn->register_module("k_proj", Affine(std::vector<int64_t>{d, d}, d, o));
    v_proj = attn->register_module("v_proj", Affine(std::vector<int64_t>{d, d}, d, o));
    out_proj = attn->register_module("out_proj", Affine(std::vector<int64_t>{d, d}, d, o));
    auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    fc1 = mlp->register_module(
        "fc1", Affine(std::vector<int64_t>{c.intermediate_size, d}, c.intermediate_size, o));
    fc2 = mlp->register_module("fc2", Affine(std::vector<int64_t>{d, c.intermediate_size}, d, o));
  }
  torch::Tensor forward(torch::Tensor x) {
    const int64_t b = x.size(0), n = x.size(1), heads = c_.num_attention_heads;
    const int64_t hd = c_.hidden_size / heads;
    torch::Tensor h = layer_norm1->LayerNorm(x, c_.layer_norm_eps);
    auto split = [&](const torch::Tensor& t) { return t.view({b, n, heads, hd}).transpose(1, 2); };
    torch::Tensor a =
        Attend(split(q_proj->Linear(h)), split(k_proj->Linear(h)), split(v_proj->Linear(h)),
               torch::Tensor(), 1.0 / std::sqrt(static_cast<double>(hd)), std::nullopt);
    x = x + out_proj->Linear(a.transpose(1, 2).reshape({b, n, c_.hidden_size}));
    h = layer_norm2->LayerNorm(x, c_.layer_norm_eps);
    return x + fc2->Linear(GeluTanh(fc1->Linear(h)));
  }
  Affine layer_norm1{nullptr}, layer_norm2{nullptr}, q_proj{nullptr}, k_proj{nullptr},
      v_proj{nullptr}, out_proj{nullptr}, fc1{nullptr}, fc2{nullptr};

 private:
  SiglipVisionConfig c_;
};
TORCH_MODULE(SiglipLayer);

class SiglipVisionImpl : public torch::nn::Module {
 public:
  SiglipVisionImpl(const SiglipVisionConfig& c, const torch::TensorOptions& o) : c_(c) {
    auto emb = register_module("embeddings", std::make_shared<torch::nn::Module>());
    patch_embedding = emb->register_module(
        "patch_embedding",
        Affine(std::vector<int64_t>{c.hidden_size, c.num_channels, c.patch_size, c.patch_size},
               c.hidden_size, o));
    position_embedding = emb->register_module(
        "position_embedding", Affine(std::vector<int64_t>{c.num_patches(), c.hidden_size}, 0, o));
    auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
    layers = encoder->register_module("layers", torch::nn::ModuleList());
    for (int64_t j = 0; j < c.num_hidden_layers; ++j) layers->push_back(SiglipLayer(c, o));
    post_layernorm = register_module("post_layernorm",
                                     Affine(std::vector<int64_t>{c.hidden_size}, c.hidden_size, o));
  }
  torch::Tensor forward(const torch::Tensor& pixel_values) {
    torch::Tensor x = torch::conv2d(pixel_values.to(patch_embedding->weight.scalar_type()),
                                    patch_embedding->weight, patch_embedding->bias, c_.patch_size);
    x = x.flatten(2).transpose(1, 2);  // [N, patches, d], row-major patch order
    x = x + position_embedding->weight.unsqueeze(0);
    for (size_t j = 0; j < layers->size(); ++j) x = layers->ptr<SiglipLayerImpl>(j)->forward(x);
    return post_layernorm->LayerNorm(x, c_.layer_norm_eps);
  }
  Affine patch_embedding{nullptr}, position_embedding{nullptr}, post_layernorm{nullptr};
  torch::nn::ModuleList layers{nullptr};

 private:
  SiglipVisionConfig c_;
};
TORCH_MODULE(SiglipVision);

struct Rope {
  torch::Tensor cos, sin;  // [B, 1, L, head_dim]
};

// One layer's K/V traffic in prefix and suffix runs: keys/values of earlier tokens to attend
// to ([B, kv_heads, P, head_dim]), and where to put this call's own (pre-repeat).
struct LayerKv {
  torch::Tensor past_keys, past_values;
  torch::Tensor* keys_out = nullptr;
  torch::Tensor* values_out = nullptr;
};

torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

class Gemma3AttentionImpl : public torch::nn::Module {
 public:
  Gemma3AttentionImpl(const Gemma3TextConfig& c, const torch::TensorOptions& o) : c_(c) {
    const int64_t qo = c.num_attention_heads * c.head_dim, kvo = c.num_key_value_heads * c.head_dim;
    q_proj = register_module("q_proj", LoraLinear(c.hidden_size, qo, o));
    k_proj = register_module("k_proj", LoraLinear(c.hidden_size, kvo, o));
    v_proj = register_module("v_proj", LoraLinear(c.hidden_size, kvo, o));
    o_proj = register_module("o_proj", LoraLinear(qo, c.hidden_size, o));
    q_norm = register_module("q_norm", RmsNorm(c.head_dim, c.rms_norm_eps, o));
    k_norm = register_module("k_norm", RmsNorm(c.head_dim, c.rms_norm_eps, o));
  }
  torch::Tensor forward(const torch::Tensor& h, const Rope& rope, const torch::Tensor& mask,
                        LayerKv* kv) {
    const int64_t b = h.size(0), l = h.size(1), hd = c_.head_dim;
    torch::Tensor q = q_norm(q_proj(h).view({b, l, c_.num_attention_heads, hd}).transpose(1, 2));
    torch::Tensor k = k_norm(k_proj(h).view({b, l, c_.num_key_value_heads, hd}).transpose(1, 2));
    torch::Tensor v = v_proj(h).view({b, l, c_.num_key_value_heads, hd}).transpose(1, 2);
    q = q * rope.cos + RotateHalf(q) * rope.sin;
    k = k * rope.cos + RotateHalf(k) * rope.sin;
    if (kv != nullptr) {
      if (kv->keys_out != nullptr) *kv->keys_out = k;
      if (kv->values_out != nullptr) *kv->values_out = v;
      if (kv->past_keys.defined()) {  // the prefix's keys come first, as in the full sequence
        k = torch::cat({kv->past_keys.to(k.scalar_type()), k}, 2);
        v = torch::cat({kv->past_values.to(v.scalar_type()), v}, 2);
      }
    }
    const int64_t groups = c_.num_attention_heads / c_.num_key_value_heads;
    if (groups > 1) {  // KV head j serves query heads j*groups ... j*groups + groups - 1
      k = k.repeat_interleave(groups, 1);
      v = v.repeat_interleave(groups, 1);
    }
    const torch::Tensor a =
        Attend(q, k, v, mask, std::pow(c_.query_pre_attn_scalar, -0.5), c_.attn_logit_softcapping);
    return o_proj(a.transpose(1, 2).reshape({b, l, c_.num_attention_heads * hd}));
  }
  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RmsNorm q_norm{nullptr}, k_norm{nullptr};

 private:
  Gemma3TextConfig c_;
};
TORCH_MODULE(Gemma3Attention);

class Gemma3MlpImpl : public torch::nn::Module {
 public:
  Gemma3MlpImpl(const Gemma3TextConfig& c, const torch::TensorOptions& o) {
    gate_proj = register_module("gate_proj", LoraLinear(c.hidden_size, c.intermediate_size, o));
    up_proj = register_module("up_proj", LoraLinear(c.hidden_size, c.intermediate_size, o));
    down_proj = register_module("down_proj", LoraLinear(c.intermediate_size, c.hidden_size, o));
  }
  torch::Tensor forward(const torch::Tensor& h) {
    return down_proj(GeluTanh(gate_proj(h)) * up_proj(h));
  }
  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Gemma3Mlp);

class Gemma3DecoderLayerImpl : public torch::nn::Module {
 public:
  Gemma3DecoderLayerImpl(const Gemma3TextConfig& c, const torch::TensorOptions& o) {
    input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
    self_attn = register_module("self_attn", Gemma3Attention(c, o));
    post_attention_layernorm =
        register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
    pre_feedforward_layernorm =
        register_module("pre_feedforward_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
    mlp = register_module("mlp", Gemma3Mlp(c, o));
    post_feedforward_layernorm =
        register_module("post_feedforward_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
  }
  torch::Tensor forward(torch::Tensor x, const Rope& rope, const torch::Tensor& mask,
                        LayerKv* kv = nullptr) {
    x = x + post_attention_layernorm(self_attn(input_layernorm(x), rope, mask, kv));
    return x + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)));
  }
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr},
      pre_feedforward_layernorm{nullptr}, post_feedforward_layernorm{nullptr};
  Gemma3Attention self_attn{nullptr};
  Gemma3Mlp mlp{nullptr};
};
TORCH_MODULE(Gemma3DecoderLayer);

// Activation checkpointing of one decoder layer: the forward keeps only the layer's input
// (no graph); backward re-runs the layer under grad mode with the RNG state it first saw and
// differentiates it. The layer is named by address because a custom Function's context holds
// only IValues; the module outlives every graph built from its parameters.
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin,
                               const torch::Tensor& mask, at::TensorList trainable,
                               int64_t layer_address) {
    at::Generator rng = at::globalContext().defaultGenerator(x.device());
    {
      std::lock_guard<std::mutex> lock(rng.mutex());
      ctx->saved_data["rng"] = rng.get_state();
    }
    ctx->saved_data["layer"] = layer_address;
    ctx->saved_data["trainable"] = static_cast<int64_t>(trainable.size());
    ctx->save_for_backward({x, cos, sin, mask});
    return Layer(layer_address)->forward(x, Rope{cos, sin}, mask);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    auto* layer = Layer(ctx->saved_data["layer"].toInt());
    const torch::Tensor x = saved[0].detach().requires_grad_(true);
    at::Generator rng = at::globalContext().defaultGenerator(x.device());
    torch::Tensor state_now;
    {  // not held while the layer runs: dropout takes the generator's lock itself
      std::lock_guard<std::mutex> lock(rng.mutex());
      state_now = rng.get_state();
      rng.set_state(ctx->saved_data["rng"].toTensor());
    }
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      y = layer->forward(x, Rope{saved[1], saved[2]}, saved[3]);
    }
    {
      std::lock_guard<std::mutex> lock(rng.mutex());
      rng.set_state(state_now);
    }
    std::vector<torch::Tensor> wrt = {x};
    for (const torch::Tensor& p : TrainableOf(*layer)) wrt.push_back(p);
    if (static_cast<int64_t>(wrt.size()) - 1 != ctx->saved_data["trainable"].toInt())
      throw std::runtime_error("checkpointed layer: trainable parameters changed before backward");
    torch::autograd::variable_list grads = torch::autograd::grad(
        {y}, wrt, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
        /*allow_unused=*/true);
    // One gradient per forward input: x, cos, sin, mask, each trainable tensor, the address.
    torch::autograd::variable_list out = {grads[0], {}, {}, {}};
    out.insert(out.end(), grads.begin() + 1, grads.end());
    out.emplace_back();
    return out;
  }

  static Gemma3DecoderLayerImpl* Layer(int64_t address) {
    return reinterpret_cast<Gemma3DecoderLayerImpl*>(address);
  }
  static std::vector<torch::Tensor> TrainableOf(Gemma3DecoderLayerImpl& layer) {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& p : layer.parameters())
      if (p.requires_grad()) out.push_back(p);
    return out;
  }
};

torch::Tensor RunCheckpointed(Gemma3DecoderLayerImpl& layer, const torch::Tensor& x,
                              const Rope& rope, const torch::Tensor& mask) {
  const std::vector<torch::Tensor> trainable = CheckpointedLayer::TrainableOf(layer);
  return CheckpointedLayer::apply(x, rope.cos, rope.sin, mask, at::TensorList(trainable),
                                  reinterpret_cast<int64_t>(&layer));
}

Rope MakeRope(const RopeParams& p, int64_t head_dim, const torch::Tensor& positions,
              torch::ScalarType dtype, bool bf16_frequencies) {
  // As transformers: inv_freq = 1 / base^(arange(0, d, 2) / d) in fp32, divided by the linear
  // factor; cos/sin in fp32, then cast to the activation dtype.
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(positions.device());
  const torch::Tensor exponent =
      torch::arange(0, head_dim, 2, f32.dtype(torch::kLong)).to(torch::kFloat) /
      static_cast<double>(head_dim);
  torch::Tensor inv_freq = 1.0 / torch::pow(p.theta, exponent) / p.linear_factor;
  if (bf16_frequencies) inv_freq = inv_freq.to(torch::kBFloat16).to(torch::kFloat);
  const torch::Tensor freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq;  // [B, L, d/2]
  const torch::Tensor emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);             // [B, 1, L, d]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

}  // namespace

// A 4096-patch SigLIP layer has 16 x 4096 x 4096 scores (1 GiB of fp32): made whole, they are
// allocated, page-faulted and swept through memory several times per layer. Blocks of query
// rows keep each score matrix small; every row's softmax sees all its keys either way, so the
// output is the same up to float rounding. Autograd goes through narrow and cat.
torch::Tensor BlockedAttention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask, double scaling,
                               std::optional<double> softcap, int64_t max_score_elements) {
  const int64_t queries = q.size(2);
  const int64_t per_query = std::max<int64_t>(1, q.size(0) * q.size(1) * k.size(2));
  const int64_t block = std::max<int64_t>(1, max_score_elements / per_query);
  if (block >= queries) return AttendWhole(q, k, v, mask, scaling, softcap);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < queries; start += block) {
    const int64_t rows = std::min(block, queries - start);
    const torch::Tensor block_mask =
        mask.defined() && mask.size(2) != 1 ? mask.narrow(2, start, rows) : mask;
    parts.push_back(AttendWhole(q.narrow(2, start, rows), k, v, block_mask, scaling, softcap));
  }
  return torch::cat(parts, 2);
}

torch::ScalarType ToTorchDType(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return torch::kDouble;
    case DType::kF32:
      return torch::kFloat;
    case DType::kF16:
      return torch::kHalf;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI64:
      return torch::kLong;
    case DType::kI32:
      return torch::kInt;
    case DType::kI16:
      return torch::kShort;
    case DType::kI8:
      return torch::kChar;
    case DType::kU8:
      return torch::kByte;
    case DType::kBool:
      return torch::kBool;
  }
  return torch::kFloat;
}

LoraLinearImpl::LoraLinearImpl(int64_t in_features, int64_t out_features,
                               const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}, options), false);
}

void LoraLinearImpl::AttachLora(int r, double lora_scaling, double lora_dropout) {
  DetachLora();
  const auto o = torch::TensorOptions().dtype(torch::kFloat).device(weight.device());
  torch::Tensor a = torch::empty({r, in_features()}, o);
  {
    torch::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));
  }
  lora_A = register_parameter("lora_A", a, true);
  lora_B = register_parameter("lora_B", torch::zeros({out_features(), r}, o), true);
  scaling = lora_scaling;
  dropout = lora_dropout;
}

void LoraLinearImpl::DetachLora() {
  if (!has_lora()) return;
  // libtorch has no unregister: replace with empty placeholders that hold no parameters.
  parameters_.erase("lora_A");
  parameters_.erase("lora_B");
  lora_A = torch::Tensor();
  lora_B = torch::Tensor();
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::nn::functional::linear(x, weight);
  if (!has_lora()) return y;
  torch::Tensor xa = x.to(torch::kFloat);
  if (dropout > 0 && is_training()) xa = torch::dropout(xa, dropout, /*train=*/true);
  const torch::Tensor delta =
      torch::nn::functional::linear(torch::nn::functional::linear(xa, lora_A), lora_B);
  return (y.to(torch::kFloat) + delta * scaling).to(y.scalar_type());
}

struct Gemma3ModelImpl::Impl {
  SiglipVision vision{nullptr};
  torch::Tensor mm_input_projection_weight;
  RmsNorm mm_soft_emb_norm{nullptr};
  torch::Tensor embed_tokens;
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
};

Gemma3ModelImpl::Gemma3ModelImpl(const Gemma3Config& config, const torch::TensorOptions& options)
    : impl_(std::make_shared<Impl>()), config_(config) {
  const Gemma3TextConfig& t = config.text;
  auto lm = register_module("language_model", std::make_shared<torch::nn::Module>());
  auto text = lm->register_module("model", std::make_shared<torch::nn::Module>());
  auto embed = text->register_module("embed_tokens", std::make_shared<torch::nn::Module>());
  impl_->embed_tokens = embed->register_parameter(
      "weight", torch::empty({t.vocab_size, t.hidden_size}, options), false);
  impl_->layers = text->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < t.num_hidden_layers; ++i)
    impl_->layers->push_back(Gemma3DecoderLayer(t, options));
  impl_->norm = text->register_module("norm", RmsNorm(t.hidden_size, t.rms_norm_eps, options));
  auto vt = register_module("vision_tower", std::make_shared<torch::nn::Module>());
  impl_->vision = vt->register_module("vision_model", SiglipVision(config.vision, options));
  auto proj = register_module("multi_modal_projector", std::make_shared<torch::nn::Module>());
  impl_->mm_input_projection_weight = proj->register_parameter(
      "mm_input_projection_weight",
      torch::empty({config.vision.hidden_size, t.hidden_size}, options), false);
  impl_->mm_soft_emb_norm = proj->register_module(
      "mm_soft_emb_norm",
      RmsNorm(config.vision.hidden_size, config.vision.layer_norm_eps, options));
}

torch::Tensor Gemma3ModelImpl::ImageFeatures(const torch::Tensor& pixel_values) {
  const torch::Tensor y = impl_->vision->forward(pixel_values);  // [N, P, Dv]
  const int64_t n = y.size(0), dv = y.size(2);
  const int64_t per_side = config_.vision.image_size / config_.vision.patch_size;
  const int64_t tokens_side =
      static_cast<int64_t>(std::llround(std::sqrt(double(config_.mm_tokens_per_image))));
  const int64_t kernel = per_side / tokens_side;
  torch::Tensor z = y.transpose(1, 2).reshape({n, dv, per_side, per_side});
  z = torch::avg_pool2d(z, kernel, kernel).flatten(2).transpose(1, 2);  // [N, T, Dv]
  z = impl_->mm_soft_emb_norm(z);
  return torch::matmul(z, impl_->mm_input_projection_weight).to(y.scalar_type());
}

LoraLinear& Gemma3ModelImpl::LoraSite(int layer, LoraModule module) {
  auto* l = impl_->layers->ptr<Gemma3DecoderLayerImpl>(layer).get();
  switch (module) {
    case LoraModule::kQ:
      return l->self_attn->q_proj;
    case LoraModule::kK:
      return l->self_attn->k_proj;
    case LoraModule::kV:
      return l->self_attn->v_proj;
    case LoraModule::kO:
      return l->self_attn->o_proj;
    case LoraModule::kGate:
      return l->mlp->gate_proj;
    case LoraModule::kUp:
      return l->mlp->up_proj;
    case LoraModule::kDown:
      return l->mlp->down_proj;
  }
  return l->self_attn->q_proj;
}

namespace {

struct Masks {
  torch::Tensor full, sliding;  // bool [B, 1, L, S]: true = may attend
};

// Causal / sliding window, OR a bidirectional block per contiguous image run, AND the padding
// mask on keys.
Masks FullSequenceMasks(const torch::Tensor& is_image_type, const torch::Tensor& attention_mask,
                        int64_t sliding_window) {
  const torch::Tensor& tt = is_image_type;
  const int64_t b = tt.size(0), l = tt.size(1);
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(tt.device());
  const torch::Tensor diff = torch::arange(l, lopt).unsqueeze(1) - torch::arange(l, lopt);
  torch::Tensor full = diff.ge(0).unsqueeze(0).unsqueeze(0);  // [1, 1, L, L]
  if (tt.any().item<bool>()) {
    const torch::Tensor prev =
        torch::cat({torch::zeros({b, 1}, tt.options()), tt.slice(1, 0, l - 1)}, 1);
    const torch::Tensor group = tt.logical_and(prev.logical_not()).to(torch::kLong).cumsum(1);
    const torch::Tensor img =
        tt.unsqueeze(2)
            .logical_and(tt.unsqueeze(1))
            .logical_and(group.unsqueeze(2).eq(group.unsqueeze(1)));  // [B, L, L]
    full = full.logical_or(img.unsqueeze(1));
  }
  // transformers 5.x ANDs the window over (causal OR image block): an image token sees its
  // whole image forwards but only the last `sliding_window` positions backwards (verified on
  // the gemma3-tiny fixture, window 8 < 16 image tokens).
  torch::Tensor sliding = full.logical_and(diff.lt(sliding_window).unsqueeze(0).unsqueeze(0));
  if (attention_mask.defined()) {
    const torch::Tensor keys = attention_mask.ne(0).view({b, 1, 1, l});
    full = full.logical_and(keys);
    sliding = sliding.logical_and(keys);
  }
  return {full.expand({b, 1, l, l}), sliding.expand({b, 1, l, l})};
}

// A suffix after a P-token prefix: keys are the prefix (positions 0..P-1, all real) then the
// suffix itself; causality and the window are measured in positions because left padding
// sits between the two.
Masks SuffixMasks(const torch::Tensor& positions, const torch::Tensor& attention_mask,
                  int64_t prefix_length, int64_t sliding_window) {
  const int64_t b = positions.size(0);
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(positions.device());
  const torch::Tensor key_positions = torch::cat(
      {torch::arange(prefix_length, lopt).unsqueeze(0).expand({b, prefix_length}), positions},
      1);                                                                          // [B, P + L]
  const torch::Tensor diff = positions.unsqueeze(2) - key_positions.unsqueeze(1);  // [B, L, P+L]
  torch::Tensor full = diff.ge(0);
  if (attention_mask.defined()) {
    const torch::Tensor keys = torch::cat(
        {torch::ones({b, prefix_length}, lopt.dtype(torch::kBool)), attention_mask.ne(0)}, 1);
    full = full.logical_and(keys.unsqueeze(1));
  }
  const torch::Tensor sliding = full.logical_and(diff.lt(sliding_window));
  return {full.unsqueeze(1), sliding.unsqueeze(1)};
}

}  // namespace

torch::Tensor Gemma3ModelImpl::EmbedInputs(const ModelInputs& in, ModelOutputs& out) {
  const Gemma3TextConfig& t = config_.text;
  const torch::Tensor& embed = impl_->embed_tokens;
  const torch::ScalarType dtype = embed.scalar_type();
  const torch::Device device = embed.device();
  if (in.hidden_input.defined()) return in.hidden_input.to(device, dtype);
  const torch::Tensor ids = in.input_ids.to(device, torch::kLong);
  const torch::Tensor is_image = ids.eq(config_.image_token_index);
  // Embeddings, scaled by sqrt(hidden) rounded to the weight dtype (50.5 in bf16 for 2560).
  torch::Tensor lookup_ids = ids;
  if (config_.image_token_index >= t.vocab_size) lookup_ids = ids.masked_fill(is_image, 0);
  const torch::Tensor scale =
      torch::tensor(std::sqrt(static_cast<double>(t.hidden_size))).to(dtype).to(device);
  torch::Tensor x = torch::embedding(embed, lookup_ids) * scale;
  torch::Tensor features = in.image_features;
  if (!features.defined() && in.pixel_values.defined())
    features = ImageFeatures(in.pixel_values.to(device));
  if (features.defined()) {
    out.image_features = features;
    x = x.masked_scatter(is_image.unsqueeze(-1).expand_as(x), features.to(device, dtype));
  }
  return x;
}

ModelOutputs Gemma3ModelImpl::Forward(const ModelInputs& in, const ForwardOptions& opt) {
  const Gemma3TextConfig& t = config_.text;
  const torch::Tensor& embed = impl_->embed_tokens;
  const torch::ScalarType dtype = embed.scalar_type();
  const torch::Device device = embed.device();
  ModelOutputs out;
  const torch::Tensor ids = in.input_ids.to(device, torch::kLong);
  const int64_t b = ids.size(0), l = ids.size(1);
  const int64_t prefix_length = in.prefix != nullptr ? in.prefix->length() : 0;
  torch::Tensor x = EmbedInputs(in, out);

  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(device);
  torch::Tensor positions = in.position_ids.defined() ? in.position_ids.to(device, torch::kLong)
                                                      : torch::arange(l, lopt) + prefix_length;
  if (positions.dim() == 1) positions = positions.unsqueeze(0).expand({b, l});
  const torch::Tensor attention_mask =
      in.attention_mask.defined() ? in.attention_mask.to(device) : torch::Tensor();
  const Masks masks =
      in.prefix != nullptr
          ? SuffixMasks(positions, attention_mask, prefix_length, t.sliding_window)
          : FullSequenceMasks(in.token_type_ids.defined() ? in.token_type_ids.to(device).ne(0)
                                                          : ids.eq(config_.image_token_index),
                              attention_mask, t.sliding_window);
  const Rope rope_full = MakeRope(t.rope_full, t.head_dim, positions, dtype, bf16_rope_frequencies);
  const Rope rope_sliding =
      MakeRope(t.rope_sliding, t.head_dim, positions, dtype, bf16_rope_frequencies);

  torch::Tensor prefix_rows;
  if (in.prefix != nullptr) {
    prefix_rows =
        in.prefix_rows.defined() ? in.prefix_rows.to(device, torch::kLong) : torch::arange(b, lopt);
  }
  const int64_t end = opt.end_layer < 0 ? t.num_hidden_layers : opt.end_layer;
  if (opt.return_kv) {
    out.kv.keys.resize(t.num_hidden_layers);
    out.kv.values.resize(t.num_hidden_layers);
  }
  const bool checkpoint = opt.checkpoint_layers && torch::GradMode::is_enabled() &&
                          in.prefix == nullptr && !opt.return_kv;
  std::vector<bool> capture(t.num_hidden_layers, false);
  for (int layer : opt.capture_layers) capture.at(layer) = true;
  for (int64_t i = in.start_layer; i < end; ++i) {
    if (opt.output_hidden_states) out.hidden_states.push_back(x);
    const bool is_full = t.layer_types[i] == LayerType::kFull;
    const Rope& rope = is_full ? rope_full : rope_sliding;
    const torch::Tensor& mask = is_full ? masks.full : masks.sliding;
    auto& layer = *impl_->layers->ptr<Gemma3DecoderLayerImpl>(i);
    if (checkpoint) {
      x = RunCheckpointed(layer, x, rope, mask);
    } else {
      LayerKv kv;
      if (in.prefix != nullptr) {
        kv.past_keys = in.prefix->keys[i].index_select(0, prefix_rows);
        kv.past_values = in.prefix->values[i].index_select(0, prefix_rows);
      }
      if (opt.return_kv) {
        kv.keys_out = &out.kv.keys[i];
        kv.values_out = &out.kv.values[i];
      }
      x = layer.forward(x, rope, mask, &kv);
    }
    if (opt.residual_hook) {
      torch::Tensor replaced = opt.residual_hook(static_cast<int>(i), x);
      if (replaced.defined()) x = replaced;
    }
    if (capture[i]) out.layer_outputs[static_cast<int>(i)] = x;
  }
  out.residual = x;
  if (end < t.num_hidden_layers) return out;
  if (opt.logits == LogitsMode::kNone && !opt.output_hidden_states) return out;
  torch::Tensor h = impl_->norm(x);
  if (opt.output_hidden_states) out.hidden_states.push_back(h);
  if (opt.logits == LogitsMode::kNone) return out;
  if (opt.logits == LogitsMode::kLastPosition) h = h.select(1, l - 1);
  const torch::Tensor head = opt.vocab_rows.defined()
                                 ? embed.index_select(0, opt.vocab_rows.to(device, torch::kLong))
                                 : embed;
  out.logits = torch::matmul(h, head.t());
  return out;
}

}  // namespace pcsweep::engine
