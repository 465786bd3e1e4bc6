// A small standalone front end for the data commands (synth, inspect), handy before
// pcsweep-run exists and for generating previews; pcsweep-run exposes the same commands.
#include "CLI/CLI.hpp"
#include "experiments/data/data_commands.h"

int main(int argc, char** argv) {
  CLI::App app("pcsweep data tools");
  app.require_subcommand(1);
  pcsweep::data::AddDataCommands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
