#include "experiments/jobs/train_job_helpers.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "common/analysis/analysis.h"
#include "common/status/status_macros.h"

namespace pcsweep::jobs {
namespace {

void PutMetrics(const std::string& prefix, const analysis::ConsistencyMetrics& m, bool full,
                std::map<std::string, double>* metrics) {
  for (const auto& [name, value] : m.ToMap()) {
    if (full || name == "flip_rate" || name == "mean_margin_diff" || name == "pairs" ||
        name == "accuracy_all") {
      (*metrics)[prefix + name] = value;
    }
  }
}

}  // namespace

absl::Status Evaluate(train::ModelSession& session, const EvalSet& set, const std::string& variant,
                      const std::string& prefix, int batch_size,
                      std::vector<data::ExampleRow>* rows, std::map<std::string, double>* metrics) {
  PCSWEEP_ASSIGN_OR_RETURN(std::vector<train::PairMargins> margins,
                           train::ScorePairs(session, set.pairs, batch_size));
  const size_t first = rows->size();
  std::map<std::string, std::vector<data::ExampleRow>> by_phenomenon;
  for (size_t i = 0; i < set.pairs.size(); ++i) {
    const data::Pair& p = set.pairs[i];
    rows->push_back(ExampleRowOf(set, variant, p, margins[i].original, margins[i].paraphrase));
    if (!p.phenomenon.empty()) by_phenomenon[p.phenomenon].push_back(rows->back());
  }
  auto computed = analysis::ComputeConsistencyMetrics(absl::MakeConstSpan(*rows).subspan(first));
  if (!computed.ok())
    return Annotate(computed.status(), absl::StrCat("metrics of eval set '", set.name, "'"));
  PutMetrics(prefix, *computed, /*full=*/true, metrics);
  for (const auto& [phenomenon, subset] : by_phenomenon) {
    auto m = analysis::ComputeConsistencyMetrics(subset);
    if (!m.ok())
      return Annotate(m.status(),
                      absl::StrCat("metrics of eval set '", set.name, "', ", phenomenon));
    PutMetrics(absl::StrCat(prefix, "phenomenon.", phenomenon, "."), *m, /*full=*/false, metrics);
  }
  std::fprintf(
      stderr,
      "%s %s: %zu pairs, flip rate %.3f, mean |m_q-m_p| %.3f, accuracy %.3f, yes rate %.3f\n",
      set.name.c_str(), variant.c_str(), set.pairs.size(), computed->flip_rate,
      computed->mean_margin_diff, computed->accuracy_original, computed->yes_rate);
  return absl::OkStatus();
}

absl::StatusOr<train::TrainOptions> ReadTrainOptions(JobSettings& config,
                                                     const train::TrainOptions& defaults) {
  train::TrainOptions o = defaults;
  PCSWEEP_ASSIGN_OR_RETURN(int64_t epochs, config.Integer("epochs", o.epochs, 1, 100000));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t batch, config.Integer("batch_size", o.batch_size, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(int64_t accum, config.Integer("grad_accum", o.grad_accum, 1, 1 << 20));
  PCSWEEP_ASSIGN_OR_RETURN(o.lr, config.Number("lr", o.lr, 1e-12, 10));
  PCSWEEP_ASSIGN_OR_RETURN(o.weight_decay, config.Number("weight_decay", o.weight_decay, 0, 10));
  PCSWEEP_ASSIGN_OR_RETURN(o.warmup_steps,
                           config.Integer("warmup_steps", o.warmup_steps, 0, kUnboundedCount));
  PCSWEEP_ASSIGN_OR_RETURN(
      std::string schedule,
      config.String("schedule", o.schedule == train::LrSchedule::kCosine   ? "cosine"
                                : o.schedule == train::LrSchedule::kLinear ? "linear"
                                                                           : "constant"));
  auto parsed_schedule = train::ParseLrSchedule(schedule);
  if (!parsed_schedule.ok()) return Annotate(parsed_schedule.status(), "config.schedule");
  o.schedule = *parsed_schedule;
  PCSWEEP_ASSIGN_OR_RETURN(o.max_grad_norm,
                           config.Number("max_grad_norm", o.max_grad_norm, 0, 1e9));
  PCSWEEP_ASSIGN_OR_RETURN(o.max_steps,
                           config.Integer("max_steps", o.max_steps, 0, kUnboundedCount));
  PCSWEEP_ASSIGN_OR_RETURN(o.checkpoint_layers,
                           config.Bool("activation_checkpointing", o.checkpoint_layers));
  PCSWEEP_ASSIGN_OR_RETURN(
      int64_t seed, config.Integer("seed", static_cast<int64_t>(o.seed), 0, kUnboundedCount));
  o.epochs = static_cast<int>(epochs);
  o.batch_size = static_cast<int>(batch);
  o.grad_accum = static_cast<int>(accum);
  o.seed = static_cast<uint64_t>(seed);
  return o;
}

void PutTrainMetrics(const train::TrainReport& report, std::map<std::string, double>* metrics) {
  auto& m = *metrics;
  m["train.steps"] = static_cast<double>(report.steps);
  m["train.examples"] = static_cast<double>(report.examples);
  m["train.seconds"] = report.seconds;
  m["train.examples_per_s"] = report.seconds > 0 ? report.examples / report.seconds : 0;
  m["train.tokens_per_s"] = report.seconds > 0 ? report.tokens / report.seconds : 0;
  if (!report.epoch_loss.empty()) {
    m["train.loss_first_epoch"] = report.epoch_loss.front();
    m["train.loss_last_epoch"] = report.epoch_loss.back();
  }
  if (!report.log.empty()) {
    m["train.loss_first_step"] = report.log.front().loss;
    m["train.final_loss"] = report.log.back().loss;
    m["train.final_ce"] = report.log.back().ce;
    m["train.final_consistency"] = report.log.back().consistency;
  }
}

train::StepCallback ProgressCallback(Progress* progress, double from, double to,
                                     const std::string& what) {
  return [=](const train::StepLog& s) {
    const double f = from + (to - from) * static_cast<double>(s.step) /
                                static_cast<double>(std::max<int64_t>(1, s.total_steps));
    progress->Report(
        f,
        absl::StrFormat("%s step %d/%d epoch %d loss %.4f ce %.4f cons %.4f lr %.2e %.1f ex/s",
                        what, s.step, s.total_steps, s.epoch + 1, s.loss, s.ce, s.consistency, s.lr,
                        s.examples_per_s),
        s.eta_s, s.step == s.total_steps);
  };
}

absl::StatusOr<LoadedModel> LoadModel(const std::string& model_dir, const std::string& adapter_dir,
                                      int threads, const inputs::PromptOptions& prompt) {
  LoadedModel loaded;
  engine::EngineOptions options;
  options.model_dir = model_dir;
  options.adapter_dir = adapter_dir;
  options.num_threads = threads;
  PCSWEEP_ASSIGN_OR_RETURN(loaded.engine, engine::Engine::Load(options));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::Gemma3Tokenizer tokenizer,
                           inputs::Gemma3Tokenizer::Load(model_dir));
  loaded.tokenizer = std::make_unique<inputs::Gemma3Tokenizer>(std::move(tokenizer));
  PCSWEEP_ASSIGN_OR_RETURN(inputs::ImageProcessorConfig image_config,
                           inputs::LoadImageProcessorConfig(model_dir));
  auto session = train::ModelSession::Create(loaded.engine->model(), loaded.tokenizer.get(),
                                             image_config, prompt);
  if (!session.ok()) return Annotate(session.status(), model_dir);
  loaded.session = std::make_unique<train::ModelSession>(std::move(*session));
  return loaded;
}

}  // namespace pcsweep::jobs
