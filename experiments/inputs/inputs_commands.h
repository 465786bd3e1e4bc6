// Verification subcommands of `pcsweep-run` for the model inputs, so anyone can compare
// our preprocessing and tokenization with Hugging Face's on their own files:
//
//   preprocess --image FILE [--image FILE ...] [--size N] --out FILE
//       writes `pixel_values` [B, 3, N, N] F32 (Gemma3ImageProcessor) to a safetensors file
//       and prints one line per image: its size, bit depth and content hash.
//   tokenize --model DIR --question TEXT [--image] [--image-after] [--template T]
//            [--system S] [--pieces] [--out FILE]
//       prints the prompt's token ids on one line (with --pieces, one "id<TAB>piece" per
//       line), then the yes/no answer ids; --out writes input_ids, attention_mask and
//       token_type_ids [1, T] I64 for `pcsweep-run forward --inputs`.
//
// Errors print one line "preprocess: <what and where>" on stderr and exit with status 1.
#ifndef PCSWEEP_EXPERIMENTS_INPUTS_INPUTS_COMMANDS_H_
#define PCSWEEP_EXPERIMENTS_INPUTS_INPUTS_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace pcsweep::inputs {

struct PreprocessArgs {
  std::vector<std::string> images;
  int size = 896;
  std::string out;
};

struct TokenizeArgs {
  std::string model_dir;
  std::string question;
  bool with_image = false;
  bool image_after_text = false;
  std::string prompt_template;  // empty: the default template
  std::string system_prompt;
  bool print_pieces = false;
  std::string out;  // optional safetensors output
};

// The work behind the subcommands; `out` receives what they print.
// Possible errors: those of LoadImageFile / Gemma3Tokenizer::Load / WriteSafetensors
// (each names its file), InvalidArgument for a size < 1 or no image.
absl::Status RunPreprocess(const PreprocessArgs& args, std::ostream& out);
absl::Status RunTokenize(const TokenizeArgs& args, std::ostream& out);

// Adds `preprocess` and `tokenize` to `app`. The callbacks print to std::cout / std::cerr
// and signal failure with CLI::RuntimeError(1), which CLI::App::exit turns into status 1.
void AddInputsCommands(CLI::App& app);

}  // namespace pcsweep::inputs

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_INPUTS_COMMANDS_H_
