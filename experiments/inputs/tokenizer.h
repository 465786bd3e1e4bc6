// Text inputs of the model: the Gemma 3 SentencePiece tokenizer, the Gemma 3 chat template
// for a single user turn with one image and a question, left-padded batches, and the
// yes/no answer tokens whose logits give the paraphrase-consistency margin.
//
// Torch-free: ids are int64 vectors; the engine turns them into tensors.
//
// Prompt layout (model-spec §2.2/2.3, image before the text):
//   <bos><start_of_turn>user\n[SYSTEM\n\n]\n\n<start_of_image>{<image_soft_token> ×N}
//   <end_of_image>\n\n{prompt text}<end_of_turn>\n<start_of_turn>model\n
// The rendered string is tokenized the way HF's tokenizer does it: special-token strings are
// split out and mapped to their ids, and every stretch of plain text between them is encoded
// by SentencePiece as one piece of text, so "user\n" + "\n\n" merges into whatever
// SentencePiece makes of "user\n\n\n". Exactly one <bos> (the id, not text) starts the prompt.
#ifndef PCSWEEP_EXPERIMENTS_INPUTS_TOKENIZER_H_
#define PCSWEEP_EXPERIMENTS_INPUTS_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::inputs {

namespace internal {
class SentencePieceModel;
}

// The pieces of the Gemma 3 vocabulary that the template and the processor use.
inline constexpr char kStartOfTurn[] = "<start_of_turn>";
inline constexpr char kEndOfTurn[] = "<end_of_turn>";
inline constexpr char kStartOfImage[] = "<start_of_image>";
inline constexpr char kEndOfImage[] = "<end_of_image>";
inline constexpr char kImageSoftToken[] = "<image_soft_token>";

struct SpecialTokenIds {
  int64_t pad = 0;
  int64_t eos = 1;
  int64_t bos = 2;
  int64_t unk = 3;
  int64_t start_of_turn = 105;
  int64_t end_of_turn = 106;
  int64_t boi = 255999;    // <start_of_image>
  int64_t eoi = 256000;    // <end_of_image>
  int64_t image = 262144;  // <image_soft_token>
};

// Every single-piece spelling of the two answers present in the vocabulary: yes/Yes/YES and
// no/No/NO, with and without the "▁" (space) prefix. margin = logsumexp(logits[yes_ids]) −
// logsumexp(logits[no_ids]) at the last prompt position.
struct AnswerTokens {
  std::vector<int64_t> yes_ids;
  std::vector<std::string> yes_pieces;
  std::vector<int64_t> no_ids;
  std::vector<std::string> no_pieces;
};

// logsumexp over yes ids − logsumexp over no ids of one row of logits (size vocab_size).
// Ids outside [0, vocab_size) are skipped. Returns NaN when a side has no valid id.
double YesNoMargin(const float* logits, int64_t vocab_size, const AnswerTokens& answers);

enum class ImagePosition { kNone, kBeforeText, kAfterText };

struct PromptOptions {
  // "{question}" is replaced by the question text (every occurrence).
  std::string prompt_template = "Question: {question}\nAnswer with only 'yes' or 'no'.";
  ImagePosition image_position = ImagePosition::kBeforeText;
  // Gemma 3 has no system turn: a non-empty system prompt + "\n\n" opens the user turn.
  std::string system_prompt;
};

struct TokenizedPrompt {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> token_type_ids;  // 1 exactly on image soft tokens
};

// A left-padded batch, row-major [batch, length].
struct TokenBatch {
  int64_t batch = 0;
  int64_t length = 0;
  std::vector<int64_t> input_ids;       // pad id on the left
  std::vector<int64_t> attention_mask;  // 0 on padding, 1 elsewhere
  std::vector<int64_t> token_type_ids;  // 0 on padding
};

// Pads on the LEFT so that every prompt ends at the last position (where the answer is
// read). An empty list gives an empty batch.
TokenBatch PadBatchLeft(const std::vector<TokenizedPrompt>& prompts, int64_t pad_id);

// The Gemma 3 tokenizer of a model folder. Immutable after Load; const methods are safe to
// call from several threads. Owns its SentencePiece model. Movable, not copyable.
class Gemma3Tokenizer {
 public:
  // Reads `<dir>/tokenizer.model` (required), `<dir>/added_tokens.json` (optional, e.g.
  // {"<image_soft_token>": 262144}) and `<dir>/config.json` (optional: boi_token_index,
  // eoi_token_index, image_token_index, mm_tokens_per_image; default 256 image tokens).
  // Possible errors: NotFound (no tokenizer.model); InvalidArgument naming the file and key
  // for a corrupt model, malformed JSON, or config ids that contradict the vocabulary;
  // FailedPrecondition naming the piece when a template token (<start_of_turn>, ...) or
  // every yes/no spelling is missing from the vocabulary.
  static absl::StatusOr<Gemma3Tokenizer> Load(const std::string& model_dir);

  Gemma3Tokenizer(Gemma3Tokenizer&&) noexcept;
  Gemma3Tokenizer& operator=(Gemma3Tokenizer&&) noexcept;
  ~Gemma3Tokenizer();

  // Plain text → ids with no <bos>; special-token strings in `text` become their ids.
  // Possible errors: Internal with SentencePiece's message.
  absl::StatusOr<std::vector<int64_t>> Encode(absl::string_view text) const;

  // Ids → text; special tokens are rendered as their piece strings.
  // Possible errors: InvalidArgument for an id outside the vocabulary.
  absl::StatusOr<std::string> Decode(const std::vector<int64_t>& ids) const;

  // The full chat prompt for one question (see the layout at the top of this file).
  // Possible errors: InvalidArgument when the template has no "{question}"; those of Encode.
  absl::StatusOr<TokenizedPrompt> BuildPrompt(absl::string_view question,
                                              const PromptOptions& options = {}) const;

  // The rendered prompt string before tokenization (image tokens spelled out), for logs and
  // comparison with HF's processor.apply_chat_template output.
  absl::StatusOr<std::string> RenderPrompt(absl::string_view question,
                                           const PromptOptions& options = {}) const;

  // Piece string of an id ("" when out of range) and id of a piece (-1 when absent).
  std::string IdToPiece(int64_t id) const;
  int64_t PieceToId(absl::string_view piece) const;

  const SpecialTokenIds& special_ids() const { return special_; }
  const AnswerTokens& answer_tokens() const { return answers_; }
  int mm_tokens_per_image() const { return mm_tokens_per_image_; }
  // SentencePiece pieces + added tokens beyond them (the model's embedding table may be
  // larger, e.g. 262208 rows for MedGemma).
  int64_t vocab_size() const;

 private:
  Gemma3Tokenizer();
  absl::Status SplitSpecialAndEncode(absl::string_view text, std::vector<int64_t>* ids) const;

  std::unique_ptr<internal::SentencePieceModel> model_;
  // Special strings matched in text (longest first) and their ids: SentencePiece control /
  // user-defined pieces of the template and the added tokens.
  std::vector<std::pair<std::string, int64_t>> special_strings_;
  // The same, indexed for the matcher: piece → id, distinct lengths (longest first), and
  // the bytes a special string can start with.
  std::unordered_map<std::string, int64_t> special_table_;
  std::vector<size_t> special_lengths_;
  std::array<bool, 256> special_first_byte_{};
  std::vector<std::pair<int64_t, std::string>> added_tokens_;  // ids beyond the sp vocab
  SpecialTokenIds special_;
  AnswerTokens answers_;
  int mm_tokens_per_image_ = 256;
};

// Settings of TrainGemmaLikeTokenizer.
struct TokenizerTrainingOptions {
  int vocab_size = 4096;
  std::string model_type = "unigram";  // or "bpe"
  // Unknown characters become <0xNN> byte pieces instead of <unk> (as in Gemma).
  bool byte_fallback = true;
  int num_threads = 2;
  // Lines sampled from a large corpus (0 = all).
  int64_t max_sentences = 2000000;
};

struct TrainedTokenizer {
  std::string model_path;  // <out_dir>/tokenizer.model
  int64_t vocab_size = 0;
  SpecialTokenIds special_ids;
};

// Trains a SentencePiece model on a text corpus (one sentence or paragraph per line) and
// writes `<out_dir>/tokenizer.model` with the Gemma-like fixed layout:
//   0 <pad>, 1 <eos>, 2 <bos>, 3 <unk>, 4 <mask>, 5 <start_of_turn>, 6 <end_of_turn>,
//   7 <start_of_image>, 8 <end_of_image>, 9 <image_soft_token>, 10 "\n", 11 "\n\n",
//   then the learned pieces.
// Text is kept as is (identity normalisation, no dummy prefix, whitespace kept, digits
// split), like Gemma's tokenizer. "yes", "no", "Yes" and "No" are guaranteed single
// pieces: the trainer sees them as extra one-word sentences, and any it still drops is
// appended to the vocabulary (so vocab_size may then exceed the request by up to 4).
// Possible errors: NotFound / InvalidArgument for an unreadable or empty corpus;
// InvalidArgument for a vocab_size too small for the fixed pieces; Internal with
// SentencePiece's message when training fails; errors writing the file name its path.
absl::StatusOr<TrainedTokenizer> TrainGemmaLikeTokenizer(
    const std::string& corpus_path, const std::string& out_dir,
    const TokenizerTrainingOptions& options = {});
// Same, with the sentences in memory. `source_name` labels errors.
absl::StatusOr<TrainedTokenizer> TrainGemmaLikeTokenizerFromSentences(
    const std::vector<std::string>& sentences, const std::string& out_dir,
    const TokenizerTrainingOptions& options = {}, const std::string& source_name = "corpus");

}  // namespace pcsweep::inputs

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_TOKENIZER_H_
