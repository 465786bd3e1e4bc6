#include "experiments/data/types.h"

#include "absl/strings/ascii.h"

namespace pcsweep::data {

std::string_view AnswerName(Answer answer) {
  switch (answer) {
    case Answer::kYes:
      return "yes";
    case Answer::kNo:
      return "no";
    case Answer::kOther:
      break;
  }
  return "other";
}

Answer ParseAnswer(std::string_view text) {
  const std::string lower = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())));
  if (lower == "yes" || lower == "true") return Answer::kYes;
  if (lower == "no" || lower == "false") return Answer::kNo;
  return Answer::kOther;
}

Answer Invert(Answer answer) {
  if (answer == Answer::kYes) return Answer::kNo;
  if (answer == Answer::kNo) return Answer::kYes;
  return Answer::kOther;
}

}  // namespace pcsweep::data
