#include "experiments/inputs/inputs_commands.h"

#include <iostream>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "experiments/engine/safetensors.h"
#include "experiments/inputs/image.h"
#include "experiments/inputs/tokenizer.h"

namespace pcsweep::inputs {

absl::Status RunPreprocess(const PreprocessArgs& args, std::ostream& out) {
  if (args.images.empty()) return absl::InvalidArgumentError("no --image given");
  if (args.size < 1)
    return absl::InvalidArgumentError(absl::StrCat("--size must be >= 1, got ", args.size));
  if (args.out.empty()) return absl::InvalidArgumentError("no --out file given");
  ImageProcessorConfig config;
  config.height = config.width = args.size;
  const Gemma3ImageProcessor processor(config);
  std::vector<float> values;
  for (const auto& path : args.images) {
    PCSWEEP_ASSIGN_OR_RETURN(DecodedImage decoded, LoadImageFile(path));
    PCSWEEP_ASSIGN_OR_RETURN(PixelValues pixels, processor.Preprocess(decoded.rgb));
    values.insert(values.end(), pixels.data.begin(), pixels.data.end());
    out << path << ": " << decoded.rgb.width << "x" << decoded.rgb.height << ", "
        << decoded.source_channels << " channel(s), " << decoded.source_bits << "-bit, sha256 "
        << ImageContentHash(decoded.rgb) << "\n";
  }
  const std::vector<int64_t> shape = {static_cast<int64_t>(args.images.size()), 3, args.size,
                                      args.size};
  PCSWEEP_RETURN_IF_ERROR(
      engine::WriteSafetensors(args.out, {{"pixel_values", engine::DType::kF32, shape,
                                           values.data(), values.size() * sizeof(float)}}));
  out << "wrote pixel_values [" << absl::StrJoin(shape, ", ") << "] to " << args.out << "\n";
  return absl::OkStatus();
}

absl::Status RunTokenize(const TokenizeArgs& args, std::ostream& out) {
  PCSWEEP_ASSIGN_OR_RETURN(Gemma3Tokenizer tokenizer, Gemma3Tokenizer::Load(args.model_dir));
  PromptOptions options;
  if (!args.prompt_template.empty()) {
    // Shell users type "\n" for a newline, as in the default template.
    std::string unescaped, error;
    if (!absl::CUnescape(args.prompt_template, &unescaped, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("--template: ", error));
    }
    options.prompt_template = unescaped;
  }
  options.system_prompt = args.system_prompt;
  options.image_position = !args.with_image        ? ImagePosition::kNone
                           : args.image_after_text ? ImagePosition::kAfterText
                                                   : ImagePosition::kBeforeText;
  PCSWEEP_ASSIGN_OR_RETURN(TokenizedPrompt prompt, tokenizer.BuildPrompt(args.question, options));
  if (args.print_pieces) {
    for (int64_t id : prompt.input_ids)
      out << id << "\t" << absl::CEscape(tokenizer.IdToPiece(id)) << "\n";
  } else {
    out << absl::StrJoin(prompt.input_ids, " ") << "\n";
  }
  const AnswerTokens& answers = tokenizer.answer_tokens();
  out << "yes ids: " << absl::StrJoin(answers.yes_ids, " ") << " ("
      << absl::StrJoin(answers.yes_pieces, " ")
      << ")\nno ids: " << absl::StrJoin(answers.no_ids, " ") << " ("
      << absl::StrJoin(answers.no_pieces, " ") << ")\n";
  if (!args.out.empty()) {
    const int64_t length = static_cast<int64_t>(prompt.input_ids.size());
    const std::vector<int64_t> attention_mask(static_cast<size_t>(length), 1);
    const auto i64 = [length](const char* name, const std::vector<int64_t>& values) {
      return engine::TensorToWrite{
          name, engine::DType::kI64, {1, length}, values.data(), values.size() * sizeof(int64_t)};
    };
    PCSWEEP_RETURN_IF_ERROR(engine::WriteSafetensors(
        args.out, {i64("input_ids", prompt.input_ids), i64("attention_mask", attention_mask),
                   i64("token_type_ids", prompt.token_type_ids)}));
    out << "wrote input_ids, attention_mask, token_type_ids [1, " << length << "] to " << args.out
        << "\n";
  }
  return absl::OkStatus();
}

void AddInputsCommands(CLI::App& app) {
  auto preprocess_args = std::make_shared<PreprocessArgs>();
  CLI::App* preprocess = app.add_subcommand(
      "preprocess", "Prepare pixel_values like Gemma3ImageProcessor and write them to safetensors");
  preprocess
      ->add_option("--image", preprocess_args->images,
                   "Image file (PNG 8/16-bit or JPEG); repeatable")
      ->required();
  preprocess->add_option("--size", preprocess_args->size, "Output height and width (MedGemma: 896)")
      ->capture_default_str();
  preprocess->add_option("--out", preprocess_args->out, "Output safetensors file")->required();
  preprocess->callback([preprocess_args]() {
    const absl::Status status = RunPreprocess(*preprocess_args, std::cout);
    if (!status.ok()) {
      std::cerr << "preprocess: " << status.message() << "\n";
      throw CLI::RuntimeError(1);
    }
  });

  auto tokenize_args = std::make_shared<TokenizeArgs>();
  CLI::App* tokenize =
      app.add_subcommand("tokenize", "Print the token ids of a Gemma 3 chat prompt");
  tokenize
      ->add_option("--model", tokenize_args->model_dir,
                   "Folder with tokenizer.model (+ added_tokens.json, config.json)")
      ->required();
  tokenize->add_option("--question", tokenize_args->question, "Question text")->required();
  tokenize->add_flag("--image", tokenize_args->with_image, "Put one image in the prompt");
  tokenize->add_flag("--image-after", tokenize_args->image_after_text,
                     "Put the image after the text (with --image)");
  tokenize->add_option("--template", tokenize_args->prompt_template,
                       "Prompt template with {question}; C escapes such as \\n are understood "
                       "(default: Question: {question}\\nAnswer with only 'yes' or 'no'.)");
  tokenize->add_option("--system", tokenize_args->system_prompt,
                       "System prompt (prefixed to the user turn)");
  tokenize->add_flag("--pieces", tokenize_args->print_pieces, "Print one id and piece per line");
  tokenize->add_option("--out", tokenize_args->out,
                       "Also write input_ids/attention_mask/token_type_ids here");
  tokenize->callback([tokenize_args]() {
    const absl::Status status = RunTokenize(*tokenize_args, std::cout);
    if (!status.ok()) {
      std::cerr << "tokenize: " << status.message() << "\n";
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace pcsweep::inputs
