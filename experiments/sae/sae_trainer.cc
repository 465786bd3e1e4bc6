#include "experiments/sae/sae_trainer.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "experiments/engine/torch_status.h"

namespace pcsweep::sae {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rectangle kernel K((pre − θ)/ε)/ε, the pseudo-derivative's density around the threshold.
torch::Tensor Kernel(const torch::Tensor& pre, const torch::Tensor& theta, double eps) {
  return (pre - theta).abs().lt(0.5 * eps).to(pre.scalar_type()) / eps;
}

// f = pre · H(pre − θ), with ∂f/∂pre = H and ∂f/∂θ = −θ·K/ε.
struct JumpReluFunction : public torch::autograd::Function<JumpReluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& pre,
                               const torch::Tensor& theta, double eps) {
    ctx->save_for_backward({pre, theta});
    ctx->saved_data["eps"] = eps;
    return pre * pre.gt(theta).to(pre.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& pre = saved[0];
    const torch::Tensor& theta = saved[1];
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor& g = grad_output[0];
    const torch::Tensor grad_pre = g * pre.gt(theta).to(pre.scalar_type());
    const torch::Tensor grad_theta = (-g * theta * Kernel(pre, theta, eps)).sum(0);
    return {grad_pre, grad_theta, torch::Tensor()};
  }
};

// H(pre − θ), with ∂H/∂pre = 0 and ∂H/∂θ = −K/ε.
struct StepFunction : public torch::autograd::Function<StepFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& pre,
                               const torch::Tensor& theta, double eps) {
    ctx->save_for_backward({pre, theta});
    ctx->saved_data["eps"] = eps;
    return pre.gt(theta).to(pre.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    const auto saved = ctx->get_saved_variables();
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor grad_theta = (-grad_output[0] * Kernel(saved[0], saved[1], eps)).sum(0);
    return {torch::zeros_like(saved[0]), grad_theta, torch::Tensor()};
  }
};

}  // namespace

absl::StatusOr<SparsityPenalty> ParseSparsityPenalty(const std::string& name) {
  if (name == "l0") return SparsityPenalty::kL0;
  if (name == "l1") return SparsityPenalty::kL1;
  return absl::InvalidArgumentError(absl::StrCat("unknown sparsity penalty '", name, "' (l0, l1)"));
}

absl::StatusOr<JumpReluSae> TrainJumpReluSae(
    const torch::Tensor& activations, const SaeTrainOptions& o, SaeTrainReport* report,
    const std::function<void(int64_t, int64_t, double, double)>& on_step) {
  if (activations.dim() != 2 || activations.size(0) < 2) {
    return absl::InvalidArgumentError("SAE training needs activations [N >= 2, d_model]");
  }
  if (o.width <= 0 || o.steps <= 0 || o.batch_size <= 0 || !(o.lr > 0) || !(o.bandwidth > 0) ||
      !(o.initial_threshold > 0) || o.sparsity_coefficient < 0) {
    return absl::InvalidArgumentError(
        "SAE training: width, steps, batch_size, lr, bandwidth and initial_threshold must be "
        "positive, "
        "sparsity_coefficient non-negative");
  }
  const auto start = std::chrono::steady_clock::now();
  return engine::GuardTorch("SAE training", [&]() -> absl::StatusOr<JumpReluSae> {
    torch::manual_seed(o.seed);
    const torch::Tensor x = activations.to(torch::kFloat).contiguous();
    const int64_t n = x.size(0), d = x.size(1);
    const torch::Tensor mu = x.mean(0);
    const double scale = std::sqrt((x - mu).pow(2).sum(-1).mean().item<double>());
    if (!(scale > 0))
      return absl::InvalidArgumentError("SAE training: the activations do not vary");
    const torch::Tensor xn = (x - mu) / scale;

    torch::Tensor w_dec = torch::randn({o.width, d});
    w_dec = w_dec / w_dec.norm(2, 1, true);
    torch::Tensor w_enc = w_dec.t().clone().requires_grad_(true);
    w_dec.requires_grad_(true);
    torch::Tensor b_enc = torch::zeros({o.width}, torch::requires_grad());
    torch::Tensor b_dec = torch::zeros({d}, torch::requires_grad());
    torch::Tensor log_theta =
        torch::full({o.width}, std::log(o.initial_threshold), torch::requires_grad());
    torch::optim::Adam optimizer({w_enc, w_dec, b_enc, b_dec, log_theta},
                                 torch::optim::AdamOptions(o.lr).betas({0.9, 0.999}));

    const int64_t warmup = std::max<int64_t>(1, o.steps / 5);  // λ ramps up: fewer dead features
    const int64_t decay_from = o.steps - o.steps / 5;          // lr decays linearly to 0 at the end
    double loss_value = 0, recon_value = 0, l0_value = 0;
    for (int64_t step = 0; step < o.steps; ++step) {
      const torch::Tensor idx = torch::randint(n, {std::min(o.batch_size, n)}, torch::kLong);
      const torch::Tensor xb = xn.index_select(0, idx);
      const torch::Tensor theta = log_theta.exp();
      const torch::Tensor pre = torch::matmul(xb, w_enc) + b_enc;
      const torch::Tensor f = JumpReluFunction::apply(pre, theta, o.bandwidth);
      const torch::Tensor recon = torch::matmul(f, w_dec) + b_dec;
      const torch::Tensor mse = (xb - recon).pow(2).sum(-1).mean();
      torch::Tensor sparsity;
      if (o.penalty == SparsityPenalty::kL0) {
        sparsity = StepFunction::apply(pre, theta, o.bandwidth).sum(-1).mean();
      } else {
        sparsity = (f * w_dec.norm(2, 1)).sum(-1).mean();
      }
      const double lambda = o.sparsity_coefficient * std::min(1.0, static_cast<double>(step + 1) /
                                                                       static_cast<double>(warmup));
      const torch::Tensor loss = mse + lambda * sparsity;
      optimizer.zero_grad();
      loss.backward();
      const double lr = step < decay_from ? o.lr
                                          : o.lr * static_cast<double>(o.steps - step) /
                                                static_cast<double>(o.steps - decay_from + 1);
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      optimizer.step();
      if ((step + 1) % 100 == 0 || step + 1 == o.steps) {
        loss_value = loss.item<double>();
        recon_value = mse.item<double>();
        l0_value = f.ne(0).to(torch::kFloat).sum(-1).mean().item<double>();
        if (on_step) on_step(step + 1, o.steps, loss_value, l0_value);
      }
    }
    torch::NoGradGuard no_grad;
    // Fold the normalisation in: pre = ((x − μ)/c)·W + b = x·(W/c) + (b − μ·W/c), and
    // x̂ = c·(f·W_dec + b_dec) + μ.
    const torch::Tensor enc = w_enc.detach() / scale;
    const torch::Tensor benc = b_enc.detach() - torch::matmul(mu, enc);
    const torch::Tensor dec = w_dec.detach() * scale;
    const torch::Tensor bdec = b_dec.detach() * scale + mu;
    if (report != nullptr) {
      report->final_loss = loss_value;
      report->final_reconstruction = recon_value;
      report->final_l0 = l0_value;
      report->seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return JumpReluSae::FromTensors(enc, dec, benc, bdec, log_theta.detach().exp(), "trained SAE");
  });
}

}  // namespace pcsweep::sae
