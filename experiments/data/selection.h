// Turning loaded questions into the pairs an experiment uses: yes/no filtering, a balanced
// subset (equal yes/no per finding, like the paper's "PadChest Balanced"), a train/eval split
// disjoint by patient (or image), a fixed number of evaluation pairs, and the per-epoch
// training sampler (every question with one random paraphrase on the same image).
// Everything is deterministic for a seed and independent of the input order where that
// matters (splits and samples are keyed by stable hashes of ids, not by positions).
// Thread-safety: free functions are pure; EpochSampler is immutable after construction.
#ifndef PCSWEEP_EXPERIMENTS_DATA_SELECTION_H_
#define PCSWEEP_EXPERIMENTS_DATA_SELECTION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "experiments/data/types.h"

namespace pcsweep::data {

struct SelectionOptions {
  bool yes_no_only = true;  // Drop questions whose answer is not yes/no.
  // Answer-inverting paraphrases (op_match=false): dropped (default) or kept as pairs whose
  // paraphrase_label is the inverted answer.
  bool keep_inverting = false;
  bool balanced = false;  // Keep equal numbers of yes and no questions per finding.
  size_t max_pairs = 0;   // Sample this many pairs (0 = all).
  uint64_t seed = 0;
};

// Questions whose answer is yes or no, in input order.
std::vector<Question> YesNoOnly(const std::vector<Question>& questions);

// For every finding (questions without one form one group), min(#yes, #no) questions of each
// answer, chosen by seed; other answers are dropped. Output keeps the input order.
std::vector<Question> BalancedSubset(const std::vector<Question>& questions, uint64_t seed);

struct Split {
  std::vector<Question> train;
  std::vector<Question> eval;
};
// Assigns whole groups (patient, else image) to eval, in an order fixed by the seed, until
// eval holds at least eval_fraction of the questions; no group is on both sides. Each side
// keeps the input order. eval_fraction is clamped to [0, 1].
Split SplitByPatient(const std::vector<Question>& questions, double eval_fraction, uint64_t seed);

// Every (original, paraphrase) pair of the questions; answer-inverting paraphrases are kept
// (with the inverted paraphrase_label) only when keep_inverting.
std::vector<Pair> MakePairs(const std::vector<Question>& questions, bool keep_inverting);

// A deterministic sample of n pairs (all when n == 0 or n >= size), kept in input order.
std::vector<Pair> SamplePairs(const std::vector<Pair>& pairs, size_t n, uint64_t seed);

// yes/no filter -> balanced subset -> pairs -> sample, as options say.
std::vector<Pair> SelectPairs(const std::vector<Question>& questions,
                              const SelectionOptions& options);

// Training pairs per epoch: each question with one paraphrase drawn at random (among those
// the options keep), in a shuffled order; both depend only on (seed, epoch). Questions with
// no usable paraphrase are left out (num_unusable()).
class EpochSampler {
 public:
  EpochSampler(std::vector<Question> questions, bool keep_inverting, uint64_t seed);

  std::vector<Pair> Epoch(int epoch) const;
  size_t num_questions() const { return usable_.size(); }
  size_t num_unusable() const { return unusable_; }

 private:
  struct Usable {
    Question question;
    std::vector<size_t> paraphrases;  // Indices into question.paraphrases.
  };
  std::vector<Usable> usable_;
  size_t unusable_ = 0;
  bool keep_inverting_;
  uint64_t seed_;
};

// The pair for paraphrase `index` of `question` (labels set from op_match).
Pair MakePair(const Question& question, size_t index);

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_SELECTION_H_
