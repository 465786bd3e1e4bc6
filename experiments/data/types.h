// Domain types of the paraphrase-consistency data: a Question (one image, one original
// question, its ground truth and its paraphrases, as in PSF-Med) and a Pair (the original and
// one paraphrase on the same image: the unit the margins, flips and training losses use).
// Plain values: no ownership beyond their members; safe to copy and share read-only.
#ifndef PCSWEEP_EXPERIMENTS_DATA_TYPES_H_
#define PCSWEEP_EXPERIMENTS_DATA_TYPES_H_

#include <string>
#include <string_view>
#include <vector>

namespace pcsweep::data {

// Ground truth of a question. Only kYes/kNo take part in the yes/no margin experiments.
enum class Answer { kYes, kNo, kOther };

// "yes" / "no" / "other".
std::string_view AnswerName(Answer answer);
// Case-insensitive, trims spaces: "yes"/"Yes"/"true" -> kYes, "no"/"false" -> kNo, else kOther.
Answer ParseAnswer(std::string_view text);
// kYes <-> kNo; kOther stays kOther.
Answer Invert(Answer answer);

// The PSF-Med phenomenon labels (paper-notes §6).
inline constexpr std::string_view kLexicalSubstitution = "lexical_substitution";
inline constexpr std::string_view kSyntacticRestructuring = "syntactic_restructuring";
inline constexpr std::string_view kNegationPattern = "negation_pattern";
inline constexpr std::string_view kScopeQuantification = "scope_quantification";
inline constexpr std::string_view kSpecificityModulation = "specificity_modulation";
inline constexpr std::string_view kAllPhenomena[] = {kLexicalSubstitution, kSyntacticRestructuring,
                                                     kNegationPattern, kScopeQuantification,
                                                     kSpecificityModulation};

struct Paraphrase {
  std::string text;
  std::string phenomenon;
  // False when the paraphrase inverts the answer ("Can X be ruled out?" vs "Is there X?").
  bool op_match = true;
  // Wording register of the text when known ("formal", "neutral", "casual"; synthetic data
  // only, empty otherwise). Lets analyses relate flips to wording.
  std::string wording;
};

struct Question {
  std::string question_id;
  std::string image;  // Resolved path of the image file.
  Answer answer = Answer::kOther;
  std::string answer_text;  // The answer as written in the source (for non yes/no answers).
  std::string original_question;
  std::vector<Paraphrase> paraphrases;
  std::string patient_id;  // Empty when unknown; splits then group by image.
  std::string study_id;
  std::string finding;        // Optional: what the question asks about (balancing key).
  std::string question_type;  // Optional: "presence", "location", ...
  std::string wording;        // Register of original_question when known (synthetic data).
  double subtlety = -1;       // Synthetic data: how hard the finding is to see; -1 unknown.

  bool is_yes_no() const { return answer != Answer::kOther; }
  // The key that keeps splits disjoint: the patient when known, else the image.
  const std::string& group_key() const { return patient_id.empty() ? image : patient_id; }
};

// (original, paraphrase) on the same image.
struct Pair {
  std::string question_id;
  std::string pair_id;  // "<question_id>#<paraphrase index in the source record>".
  std::string image;
  std::string phenomenon;
  Answer label = Answer::kOther;             // Ground truth of the original question.
  Answer paraphrase_label = Answer::kOther;  // == label, or inverted when !op_match.
  std::string original;
  std::string paraphrase;
  bool op_match = true;
  std::string finding;
  std::string wording;  // Register of the paraphrase when known.
};

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_TYPES_H_
