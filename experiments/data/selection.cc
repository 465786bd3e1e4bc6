#include "experiments/data/selection.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "experiments/data/rng.h"

namespace pcsweep::data {
namespace {

// Indices 0..n-1 ordered by a seeded hash of each item's key: a permutation that depends on
// the seed and the keys only, not on the input order. Ties (equal keys) keep input order.
template <typename KeyFn>
std::vector<size_t> OrderByHash(size_t n, uint64_t seed, KeyFn key) {
  std::vector<std::pair<uint64_t, size_t>> keyed(n);
  for (size_t i = 0; i < n; ++i) keyed[i] = {StableHash(key(i), seed), i};
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = keyed[i].second;
  return order;
}

}  // namespace

Pair MakePair(const Question& question, size_t index) {
  const Paraphrase& p = question.paraphrases[index];
  Pair pair;
  pair.question_id = question.question_id;
  pair.pair_id = absl::StrCat(question.question_id, "#", index);
  pair.image = question.image;
  pair.phenomenon = p.phenomenon;
  pair.label = question.answer;
  pair.paraphrase_label = p.op_match ? question.answer : Invert(question.answer);
  pair.original = question.original_question;
  pair.paraphrase = p.text;
  pair.op_match = p.op_match;
  pair.finding = question.finding;
  pair.wording = p.wording;
  return pair;
}

std::vector<Question> YesNoOnly(const std::vector<Question>& questions) {
  std::vector<Question> out;
  for (const Question& q : questions) {
    if (q.is_yes_no()) out.push_back(q);
  }
  return out;
}

std::vector<Question> BalancedSubset(const std::vector<Question>& questions, uint64_t seed) {
  // finding -> (yes indices, no indices), each in seeded order.
  std::map<std::string, std::pair<std::vector<size_t>, std::vector<size_t>>> groups;
  const std::vector<size_t> order =
      OrderByHash(questions.size(), seed, [&](size_t i) { return questions[i].question_id; });
  for (size_t i : order) {
    const Question& q = questions[i];
    if (q.answer == Answer::kYes) groups[q.finding].first.push_back(i);
    if (q.answer == Answer::kNo) groups[q.finding].second.push_back(i);
  }
  std::vector<size_t> keep;
  for (auto& [finding, sides] : groups) {
    const size_t n = std::min(sides.first.size(), sides.second.size());
    keep.insert(keep.end(), sides.first.begin(), sides.first.begin() + n);
    keep.insert(keep.end(), sides.second.begin(), sides.second.begin() + n);
  }
  std::sort(keep.begin(), keep.end());
  std::vector<Question> out;
  out.reserve(keep.size());
  for (size_t i : keep) out.push_back(questions[i]);
  return out;
}

Split SplitByPatient(const std::vector<Question>& questions, double eval_fraction, uint64_t seed) {
  eval_fraction = std::clamp(eval_fraction, 0.0, 1.0);
  std::map<std::string, size_t> group_size;
  for (const Question& q : questions) ++group_size[q.group_key()];
  std::vector<std::string> groups;
  for (const auto& entry : group_size) groups.push_back(entry.first);
  const std::vector<size_t> order =
      OrderByHash(groups.size(), seed, [&](size_t i) { return groups[i]; });
  const double target = eval_fraction * static_cast<double>(questions.size());
  std::map<std::string, bool> to_eval;
  size_t eval_count = 0;
  for (size_t i : order) {
    const bool take = static_cast<double>(eval_count) < target;
    to_eval[groups[i]] = take;
    if (take) eval_count += group_size[groups[i]];
  }
  Split split;
  for (const Question& q : questions) {
    (to_eval[q.group_key()] ? split.eval : split.train).push_back(q);
  }
  return split;
}

std::vector<Pair> MakePairs(const std::vector<Question>& questions, bool keep_inverting) {
  std::vector<Pair> pairs;
  for (const Question& q : questions) {
    for (size_t i = 0; i < q.paraphrases.size(); ++i) {
      if (!q.paraphrases[i].op_match && !keep_inverting) continue;
      pairs.push_back(MakePair(q, i));
    }
  }
  return pairs;
}

std::vector<Pair> SamplePairs(const std::vector<Pair>& pairs, size_t n, uint64_t seed) {
  if (n == 0 || n >= pairs.size()) return pairs;
  std::vector<size_t> order =
      OrderByHash(pairs.size(), seed, [&](size_t i) { return pairs[i].pair_id; });
  order.resize(n);
  std::sort(order.begin(), order.end());
  std::vector<Pair> out;
  out.reserve(n);
  for (size_t i : order) out.push_back(pairs[i]);
  return out;
}

std::vector<Pair> SelectPairs(const std::vector<Question>& questions,
                              const SelectionOptions& options) {
  std::vector<Question> kept = options.yes_no_only ? YesNoOnly(questions) : questions;
  if (options.balanced) kept = BalancedSubset(kept, options.seed);
  return SamplePairs(MakePairs(kept, options.keep_inverting), options.max_pairs, options.seed);
}

EpochSampler::EpochSampler(std::vector<Question> questions, bool keep_inverting, uint64_t seed)
    : keep_inverting_(keep_inverting), seed_(seed) {
  for (Question& q : questions) {
    Usable usable;
    for (size_t i = 0; i < q.paraphrases.size(); ++i) {
      if (q.paraphrases[i].op_match || keep_inverting_) usable.paraphrases.push_back(i);
    }
    if (usable.paraphrases.empty() || !q.is_yes_no()) {
      ++unusable_;
      continue;
    }
    usable.question = std::move(q);
    usable_.push_back(std::move(usable));
  }
}

std::vector<Pair> EpochSampler::Epoch(int epoch) const {
  Rng rng(MixSeed(seed_, static_cast<uint64_t>(epoch)));
  std::vector<size_t> order(usable_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  rng.Shuffle(order);
  std::vector<Pair> pairs;
  pairs.reserve(order.size());
  for (size_t i : order) {
    const Usable& u = usable_[i];
    pairs.push_back(MakePair(u.question, u.paraphrases[rng.Below(u.paraphrases.size())]));
  }
  return pairs;
}

}  // namespace pcsweep::data
