// Shell quoting for values spliced into the `command` of a `command` job (run as `sh -c`), so
// that a grid value or a parent's output is one literal word, never shell syntax.
// Pure functions, thread-safe; no errors.
#ifndef PCSWEEP_COMMON_SPEC_SHELL_QUOTE_H_
#define PCSWEEP_COMMON_SPEC_SHELL_QUOTE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace pcsweep {

// `s` as one POSIX sh word: unchanged when it is non-empty and only holds [A-Za-z0-9_@%+=:,./-]
// (numbers, identifiers, paths), else in single quotes with each ' written as '\''.
std::string ShellQuote(absl::string_view s);

// The first control character (0x00-0x1f, 0x7f) in `s`, or -1 when there is none.
int FirstControlCharacter(absl::string_view s);

}  // namespace pcsweep

#endif  // PCSWEEP_COMMON_SPEC_SHELL_QUOTE_H_
