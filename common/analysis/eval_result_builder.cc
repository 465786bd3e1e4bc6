// EvalResultBuilder: flat example rows back into one EvalResult per (job, eval set, variant).
#include <tuple>
#include <utility>

#include "common/analysis/analysis.h"

namespace pcsweep::analysis {

void EvalResultBuilder::Add(const std::string& job_key,
                            const std::map<std::string, std::string>& arm_params,
                            const std::string& eval_set, const std::string& variant,
                            ExampleRow row) {
  auto [it, inserted] =
      index_.emplace(std::make_tuple(job_key, eval_set, variant), results_.size());
  if (inserted) {
    EvalResult result;
    result.job_key = job_key;
    result.arm_params = arm_params;
    result.eval_set = eval_set;
    result.variant = variant;
    results_.push_back(std::move(result));
  }
  results_[it->second].rows.push_back(std::move(row));
}

void EvalResultBuilder::AddMetric(const std::string& job_key, const std::string& name,
                                  double value) {
  for (EvalResult& result : results_) {
    if (result.job_key == job_key) result.metrics[name] = value;
  }
}

std::vector<EvalResult> EvalResultBuilder::Build() {
  index_.clear();
  return std::exchange(results_, {});
}

}  // namespace pcsweep::analysis
