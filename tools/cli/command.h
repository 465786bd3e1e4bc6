// What the files that register `pcsweep` subcommands (service_commands.h, sweep_commands.h,
// ...) share with main.cc. Each AddXCommand registers its subcommand on the app; when CLI11
// parses that subcommand, its callback stores the run in `*action`, and main.cc calls it after
// parsing and logging set-up, printing a failed run's message as ONE line on stderr (OneLine)
// with exit code 1. The flags a run reads live in state its callbacks own (shared_ptr), so an
// AddXCommand keeps nothing alive but `app`, and `*action` must outlive parsing.
//
// Thread-safety: registration, parsing and the action all run on main's thread.
#ifndef PCSWEEP_TOOLS_CLI_COMMAND_H_
#define PCSWEEP_TOOLS_CLI_COMMAND_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace pcsweep::cli {

// A parsed subcommand's run; its error becomes the process's one error line.
using CommandAction = std::function<absl::Status()>;

// `message` with its line breaks turned into "; ", for one-line errors and notes.
inline std::string OneLine(absl::string_view message) {
  return absl::StrReplaceAll(message, {{"\r\n", "; "}, {"\n", "; "}});
}

}  // namespace pcsweep::cli

#endif  // PCSWEEP_TOOLS_CLI_COMMAND_H_
