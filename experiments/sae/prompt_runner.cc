#include "experiments/sae/prompt_runner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "experiments/engine/torch_status.h"

namespace pcsweep::sae {

absl::StatusOr<std::unique_ptr<PromptRunner>> PromptRunner::Load(const std::string& model_dir,
                                                                 const std::string& adapter_dir,
                                                                 int threads,
                                                                 inputs::PromptOptions prompt) {
  std::unique_ptr<PromptRunner> runner(new PromptRunner());
  engine::EngineOptions options;
  options.model_dir = model_dir;
  options.adapter_dir = adapter_dir;
  options.num_threads = threads;
  PCSWEEP_ASSIGN_OR_RETURN(runner->engine_, engine::Engine::Load(options));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::Gemma3Tokenizer tokenizer,
                           inputs::Gemma3Tokenizer::Load(model_dir));
  runner->tokenizer_ = std::make_unique<inputs::Gemma3Tokenizer>(std::move(tokenizer));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::ImageProcessorConfig image_config,
                           inputs::LoadImageProcessorConfig(model_dir));
  runner->processor_ = std::make_unique<inputs::Gemma3ImageProcessor>(image_config);
  runner->prompt_ = std::move(prompt);
  const auto& config = runner->engine_->config();
  if (runner->tokenizer_->special_ids().image != config.image_token_index) {
    return absl::FailedPreconditionError(
        absl::StrCat(model_dir, ": tokenizer image token ", runner->tokenizer_->special_ids().image,
                     " differs from config image_token_index ", config.image_token_index));
  }
  const auto& answers = runner->tokenizer_->answer_tokens();
  std::vector<int64_t> rows(answers.yes_ids.begin(), answers.yes_ids.end());
  rows.insert(rows.end(), answers.no_ids.begin(), answers.no_ids.end());
  for (int64_t id : rows) {
    if (id < 0 || id >= config.text.vocab_size) {
      return absl::FailedPreconditionError(absl::StrCat(model_dir, ": yes/no token id ", id,
                                                        " is outside the vocabulary of ",
                                                        config.text.vocab_size));
    }
  }
  runner->num_yes_ = static_cast<int64_t>(answers.yes_ids.size());
  runner->answer_rows_ = torch::tensor(rows, torch::kLong);
  return runner;
}

absl::StatusOr<std::vector<int64_t>> PromptRunner::Tokens(const PromptInput& prompt) {
  inputs::PromptOptions options = prompt_;
  if (prompt.image.empty()) options.image_position = inputs::ImagePosition::kNone;
  PCSWEEP_ASSIGN_OR_RETURN(inputs::TokenizedPrompt tokens,
                           tokenizer_->BuildPrompt(prompt.text, options));
  return std::move(tokens.input_ids);
}

absl::StatusOr<torch::Tensor> PromptRunner::Features(const std::string& image) {
  auto it = features_.find(image);
  if (it != features_.end()) return it->second;
  PCSWEEP_ASSIGN_OR_RETURN(inputs::PixelValues pv, processor_->PreprocessFile(image));
  torch::Tensor pixels =
      torch::from_blob(pv.data.data(), {1, pv.channels, pv.height, pv.width}, torch::kFloat)
          .clone();
  auto features = engine_->ImageFeatures(pixels);
  if (!features.ok()) return Annotate(features.status(), image);
  return features_.emplace(image, (*features)[0]).first->second;
}

absl::StatusOr<std::vector<PromptRun>> PromptRunner::Run(const std::vector<PromptInput>& prompts,
                                                         const std::vector<int>& capture_layers,
                                                         const engine::ResidualHook& hook,
                                                         int batch_size) {
  const int layers = static_cast<int>(config().text.num_hidden_layers);
  for (int layer : capture_layers) {
    if (layer < 0 || layer >= layers) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer,
                                                     " is out of range: the model has ", layers,
                                                     " decoder layers (0-", layers - 1, ")"));
    }
  }
  if (batch_size <= 0) return absl::InvalidArgumentError("batch_size must be positive");
  torch::NoGradGuard no_grad;
  engine_->model()->eval();
  const int64_t pad = tokenizer_->special_ids().pad;
  std::vector<PromptRun> runs(prompts.size());
  PCSWEEP_RETURN_IF_ERROR(engine::GuardTorch("running prompts", [&]() -> absl::Status {
    for (size_t start = 0; start < prompts.size(); start += static_cast<size_t>(batch_size)) {
      const size_t end = std::min(prompts.size(), start + static_cast<size_t>(batch_size));
      const int64_t n = static_cast<int64_t>(end - start);
      std::vector<std::vector<int64_t>> ids;
      int64_t length = 0;
      for (size_t i = start; i < end; ++i) {
        PCSWEEP_ASSIGN_OR_RETURN(std::vector<int64_t> t, Tokens(prompts[i]));
        length = std::max<int64_t>(length, static_cast<int64_t>(t.size()));
        ids.push_back(std::move(t));
      }
      // Left padding with positions counted from each prompt's first token, as ScorePairs.
      std::vector<int64_t> flat(n * length, pad), mask(n * length, 0), positions(n * length, 0);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t offset = length - static_cast<int64_t>(ids[i].size());
        for (size_t j = 0; j < ids[i].size(); ++j) {
          flat[i * length + offset + j] = ids[i][j];
          mask[i * length + offset + j] = 1;
          positions[i * length + offset + j] = static_cast<int64_t>(j);
        }
      }
      engine::ModelInputs in;
      in.input_ids = torch::tensor(flat, torch::kLong).view({n, length});
      in.attention_mask = torch::tensor(mask, torch::kLong).view({n, length});
      in.position_ids = torch::tensor(positions, torch::kLong).view({n, length});
      in.token_type_ids = in.input_ids.eq(config().image_token_index).to(torch::kLong);
      std::vector<torch::Tensor> features;
      for (size_t i = start; i < end; ++i) {
        if (prompts[i].image.empty()) continue;
        PCSWEEP_ASSIGN_OR_RETURN(torch::Tensor f, Features(prompts[i].image));
        features.push_back(f);
      }
      if (!features.empty()) in.image_features = torch::stack(features);
      engine::ForwardOptions opt;
      opt.logits = engine::LogitsMode::kLastPosition;
      opt.vocab_rows = answer_rows_;
      opt.capture_layers = capture_layers;
      opt.residual_hook = hook;
      PCSWEEP_ASSIGN_OR_RETURN(engine::ModelOutputs out, engine_->Forward(in, opt));
      const torch::Tensor z = out.logits.to(torch::kFloat);
      const torch::Tensor yes = z.narrow(-1, 0, num_yes_).logsumexp(-1);
      const torch::Tensor no = z.narrow(-1, num_yes_, z.size(-1) - num_yes_).logsumexp(-1);
      const torch::Tensor margins = (yes - no).to(torch::kDouble).cpu().contiguous();
      for (int64_t i = 0; i < n; ++i) {
        PromptRun& run = runs[start + static_cast<size_t>(i)];
        run.margin = margins[i].item<double>();
        const int64_t len = static_cast<int64_t>(ids[i].size());
        for (const auto& [layer, x] : out.layer_outputs) {
          run.layers[layer] =
              x[i].narrow(0, length - len, len).to(torch::kCPU, torch::kFloat).clone();
        }
      }
    }
    return absl::OkStatus();
  }));
  return runs;
}

absl::StatusOr<std::vector<PairMargins>> PromptRunner::ScorePairs(
    const std::vector<data::Pair>& pairs, const engine::ResidualHook& hook, int batch_size) {
  std::map<std::pair<std::string, std::string>, size_t> index_of;
  std::vector<PromptInput> prompts;
  std::vector<std::pair<size_t, size_t>> pair_prompts;
  auto add = [&](const std::string& text, const std::string& image) {
    auto [it, inserted] = index_of.emplace(std::make_pair(text, image), prompts.size());
    if (inserted) prompts.push_back({text, image});
    return it->second;
  };
  for (const data::Pair& p : pairs)
    pair_prompts.emplace_back(add(p.original, p.image), add(p.paraphrase, p.image));
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<PromptRun> runs, Run(prompts, {}, hook, batch_size));
  std::vector<PairMargins> out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double mp = runs[pair_prompts[i].second].margin;
    out.push_back({runs[pair_prompts[i].first].margin, pairs[i].op_match ? mp : -mp});
  }
  return out;
}

}  // namespace pcsweep::sae
