#include "experiments/engine/prompt_batch.h"

#include <algorithm>

namespace pcsweep::engine {
namespace {

using torch::indexing::Slice;

// Prompts that share one image and the tokens before their suffixes.
struct PrefixGroup {
  std::vector<size_t> members;  // indices into the prompts
  int64_t image_end = 0;        // one past the last image token
  int64_t common = 0;           // common prefix length, leaving each member >= 1 token
};

int64_t ImageEnd(const std::vector<int64_t>& tokens, int64_t image_token_index) {
  for (int64_t i = static_cast<int64_t>(tokens.size()) - 1; i >= 0; --i)
    if (tokens[i] == image_token_index) return i + 1;
  return 0;
}

// Groups prompts by image; a prompt without an image, or a group whose common prefix stops
// inside its image block, goes to `plain`.
std::vector<PrefixGroup> GroupByImage(const std::vector<BatchPrompt>& prompts,
                                      int64_t image_token_index, std::vector<size_t>& plain) {
  std::map<std::string, size_t> group_of;
  std::vector<PrefixGroup> groups;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].image_key.empty() || !prompts[i].image_features.defined()) {
      plain.push_back(i);
      continue;
    }
    auto [it, inserted] = group_of.emplace(prompts[i].image_key, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].members.push_back(i);
  }
  std::vector<PrefixGroup> kept;
  for (PrefixGroup& g : groups) {
    const std::vector<int64_t>& first = *prompts[g.members.front()].token_ids;
    int64_t common = static_cast<int64_t>(first.size()) - 1;
    for (size_t m : g.members) {
      const std::vector<int64_t>& t = *prompts[m].token_ids;
      common = std::min<int64_t>(common, static_cast<int64_t>(t.size()) - 1);
      int64_t j = 0;
      while (j < common && t[j] == first[j]) ++j;
      common = j;
    }
    g.image_end = ImageEnd(first, image_token_index);
    g.common = common;
    if (g.image_end == 0 || common < g.image_end) {
      plain.insert(plain.end(), g.members.begin(), g.members.end());
    } else {
      kept.push_back(std::move(g));
    }
  }
  return kept;
}

ForwardOptions LastPositionForward(const LastPositionOptions& options) {
  ForwardOptions fo;
  fo.logits = LogitsMode::kLastPosition;
  fo.vocab_rows = options.vocab_rows;
  fo.capture_layers = options.capture_layers;
  fo.checkpoint_layers = options.checkpoint_layers;
  return fo;
}

// Scatters a batch's rows (logits, captured layers with `lengths[i]` real positions at the
// end) back to the prompts' places.
void Place(const ModelOutputs& out, const std::vector<size_t>& where,
           const std::vector<int64_t>& lengths, std::vector<torch::Tensor>& logits,
           LastPositionOutputs& result) {
  for (size_t i = 0; i < where.size(); ++i) {
    logits[where[i]] = out.logits[static_cast<int64_t>(i)];
    for (const auto& [layer, h] : out.layer_outputs) {
      result.layer_outputs[where[i]][layer] =
          h[static_cast<int64_t>(i)].slice(0, h.size(1) - lengths[i]);
    }
  }
}

void RunPlain(Gemma3ModelImpl& model, const std::vector<BatchPrompt>& prompts,
              const std::vector<size_t>& which, const LastPositionOptions& options,
              std::vector<torch::Tensor>& logits, LastPositionOutputs& result) {
  if (which.empty()) return;
  std::vector<BatchPrompt> batch;
  std::vector<int64_t> lengths;
  for (size_t i : which) {
    batch.push_back(prompts[i]);
    lengths.push_back(static_cast<int64_t>(prompts[i].token_ids->size()));
  }
  ModelInputs in = LeftPaddedBatch(batch, options.pad_id, model.config().image_token_index);
  in.start_layer = options.start_layer;
  const ModelOutputs out = model.Forward(in, LastPositionForward(options));
  result.tokens_run += in.input_ids.numel();
  Place(out, which, lengths, logits, result);
}

// One bucket of groups sharing the image block's end: their prefixes (the shortest common
// prefix of the bucket, so all have one length and batch without padding) in one forward,
// then every member's suffix against its group's K/V.
void RunSharedBucket(Gemma3ModelImpl& model, const std::vector<BatchPrompt>& prompts,
                     const std::vector<const PrefixGroup*>& bucket,
                     const LastPositionOptions& options, std::vector<torch::Tensor>& logits,
                     LastPositionOutputs& result) {
  const int64_t image_token = model.config().image_token_index;
  int64_t p = bucket.front()->common;
  for (const PrefixGroup* g : bucket) p = std::min(p, g->common);
  const int64_t groups = static_cast<int64_t>(bucket.size());
  torch::Tensor prefix_ids = torch::empty({groups, p}, torch::kLong);
  std::vector<torch::Tensor> features;
  std::vector<BatchPrompt> suffixes;
  std::vector<std::vector<int64_t>> suffix_tokens;
  std::vector<int64_t> rows, suffix_lengths;
  std::vector<size_t> where;
  for (int64_t g = 0; g < groups; ++g) {
    const BatchPrompt& head = prompts[bucket[g]->members.front()];
    prefix_ids[g].copy_(torch::tensor(
        std::vector<int64_t>(head.token_ids->begin(), head.token_ids->begin() + p), torch::kLong));
    features.push_back(head.image_features);
    for (size_t m : bucket[g]->members) {
      const std::vector<int64_t>& t = *prompts[m].token_ids;
      suffix_tokens.emplace_back(t.begin() + p, t.end());
      rows.push_back(g);
      where.push_back(m);
      suffix_lengths.push_back(static_cast<int64_t>(t.size()) - p);
    }
  }
  ModelInputs prefix_in;
  prefix_in.input_ids = prefix_ids;
  prefix_in.token_type_ids = prefix_ids.eq(image_token).to(torch::kLong);
  prefix_in.image_features = torch::stack(features);
  ForwardOptions prefix_fo;
  prefix_fo.logits = LogitsMode::kNone;
  prefix_fo.return_kv = true;
  prefix_fo.capture_layers = options.capture_layers;
  const ModelOutputs prefix_out = model.Forward(prefix_in, prefix_fo);

  for (const auto& t : suffix_tokens) suffixes.push_back({&t, {}, {}, {}});
  ModelInputs in = LeftPaddedBatch(suffixes, options.pad_id, image_token);
  in.position_ids = in.position_ids + p;
  in.prefix = &prefix_out.kv;
  in.prefix_rows = torch::tensor(rows, torch::kLong);
  const ModelOutputs out = model.Forward(in, LastPositionForward(options));
  result.tokens_run += prefix_ids.numel() + in.input_ids.numel();
  Place(out, where, suffix_lengths, logits, result);
  for (size_t i = 0; i < where.size(); ++i) {  // prefix positions, then the suffix's
    for (auto& [layer, h] : result.layer_outputs[where[i]])
      h = torch::cat({prefix_out.layer_outputs.at(layer)[rows[i]], h}, 0);
  }
}

}  // namespace

ModelInputs LeftPaddedBatch(const std::vector<BatchPrompt>& prompts, int64_t pad_id,
                            int64_t image_token_index) {
  const int64_t n = static_cast<int64_t>(prompts.size());
  int64_t length = 0;
  for (const BatchPrompt& p : prompts)
    length = std::max<int64_t>(length, static_cast<int64_t>(p.token_ids->size()));
  std::vector<int64_t> flat(n * length, pad_id), mask(n * length, 0), positions(n * length, 0);
  bool hidden = n > 0;
  std::vector<torch::Tensor> features;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int64_t>& t = *prompts[i].token_ids;
    const int64_t offset = length - static_cast<int64_t>(t.size());
    for (size_t j = 0; j < t.size(); ++j) {
      flat[i * length + offset + j] = t[j];
      mask[i * length + offset + j] = 1;
      positions[i * length + offset + j] = static_cast<int64_t>(j);
    }
    if (prompts[i].image_features.defined()) features.push_back(prompts[i].image_features);
    hidden = hidden && prompts[i].hidden_input.defined();
  }
  ModelInputs in;
  in.input_ids = torch::tensor(flat, torch::kLong).view({n, length});
  in.attention_mask = torch::tensor(mask, torch::kLong).view({n, length});
  in.position_ids = torch::tensor(positions, torch::kLong).view({n, length});
  in.token_type_ids = in.input_ids.eq(image_token_index).to(torch::kLong);
  if (!features.empty()) in.image_features = torch::stack(features);
  if (hidden) {
    const torch::Tensor& first = prompts.front().hidden_input;
    in.hidden_input = torch::zeros({n, length, first.size(1)}, first.options());
    for (int64_t i = 0; i < n; ++i) {
      const torch::Tensor& h = prompts[i].hidden_input;
      in.hidden_input[i].slice(0, length - h.size(0)).copy_(h);
    }
  }
  return in;
}

std::vector<torch::Tensor> StreamEnteringLayer(Gemma3ModelImpl& model,
                                               const std::vector<BatchPrompt>& prompts, int layer,
                                               int64_t pad_id) {
  torch::NoGradGuard no_grad;
  const ModelInputs in = LeftPaddedBatch(prompts, pad_id, model.config().image_token_index);
  ForwardOptions fo;
  fo.logits = LogitsMode::kNone;
  fo.end_layer = layer;
  const torch::Tensor residual = model.Forward(in, fo).residual;
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t len = static_cast<int64_t>(prompts[i].token_ids->size());
    out.push_back(residual[static_cast<int64_t>(i)].slice(0, residual.size(1) - len).clone());
  }
  return out;
}

LastPositionOutputs LastPositionLogits(Gemma3ModelImpl& model,
                                       const std::vector<BatchPrompt>& prompts,
                                       const LastPositionOptions& options) {
  LastPositionOutputs result;
  result.layer_outputs.resize(prompts.size());
  std::vector<torch::Tensor> logits(prompts.size());
  std::vector<size_t> plain;
  std::vector<PrefixGroup> groups;
  if (options.shared_prefix && options.start_layer == 0) {
    groups = GroupByImage(prompts, model.config().image_token_index, plain);
  } else {
    for (size_t i = 0; i < prompts.size(); ++i) plain.push_back(i);
  }
  std::map<int64_t, std::vector<const PrefixGroup*>> buckets;
  for (const PrefixGroup& g : groups) buckets[g.image_end].push_back(&g);
  for (const auto& [image_end, bucket] : buckets)
    RunSharedBucket(model, prompts, bucket, options, logits, result);
  RunPlain(model, prompts, plain, options, logits, result);
  result.logits = prompts.empty() ? torch::Tensor() : torch::stack(logits);
  return result;
}

}  // namespace pcsweep::engine
