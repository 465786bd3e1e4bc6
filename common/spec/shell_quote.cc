#include "common/spec/shell_quote.h"

#include <algorithm>

#include "absl/strings/ascii.h"

namespace pcsweep {

std::string ShellQuote(absl::string_view s) {
  const bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(c) ||
           absl::string_view("_@%+=:,./-").find(c) != absl::string_view::npos;
  });
  if (safe) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

int FirstControlCharacter(absl::string_view s) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return u;
  }
  return -1;
}

}  // namespace pcsweep
