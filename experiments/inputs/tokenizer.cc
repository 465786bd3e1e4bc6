#include "experiments/inputs/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/fileio/durable_rename.h"
#include "common/status/status_macros.h"
#include "experiments/inputs/sentencepiece_bridge.h"
#include "nlohmann/json.hpp"

namespace pcsweep::inputs {
namespace {

constexpr char kSpaceMarker[] = "\xE2\x96\x81";  // U+2581, SentencePiece's space

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
  return buffer.str();
}

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path) {
  PCSWEEP_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON: ", e.what()));
  }
}

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

// Appends one NORMAL piece to a serialized sentencepiece.ModelProto. Protobuf parsers
// accumulate a repeated field across the message, so appending `pieces` (field 1) at the
// end adds a piece with the next id without a protobuf dependency.
void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void AppendNormalPiece(const std::string& piece, float score, std::string* model_proto) {
  std::string message;
  message.push_back(0x0A);  // field 1 (piece), length-delimited
  AppendVarint(piece.size(), &message);
  message += piece;
  message.push_back(0x15);  // field 2 (score), fixed32
  char score_bytes[4];
  std::memcpy(score_bytes, &score, 4);  // little-endian hosts only (x86-64, aarch64)
  message.append(score_bytes, 4);
  message.push_back(0x18);       // field 3 (type), varint
  AppendVarint(1, &message);     // NORMAL
  model_proto->push_back(0x0A);  // ModelProto field 1 (pieces)
  AppendVarint(message.size(), model_proto);
  *model_proto += message;
}

}  // namespace

double YesNoMargin(const float* logits, int64_t vocab_size, const AnswerTokens& answers) {
  auto logsumexp = [&](const std::vector<int64_t>& ids) {
    double best = -std::numeric_limits<double>::infinity();
    bool any = false;
    for (int64_t id : ids) {
      if (id < 0 || id >= vocab_size) continue;
      best = std::max(best, static_cast<double>(logits[id]));
      any = true;
    }
    if (!any) return std::numeric_limits<double>::quiet_NaN();
    if (std::isinf(best)) return best;
    double sum = 0.0;
    for (int64_t id : ids) {
      if (id >= 0 && id < vocab_size) sum += std::exp(static_cast<double>(logits[id]) - best);
    }
    return best + std::log(sum);
  };
  return logsumexp(answers.yes_ids) - logsumexp(answers.no_ids);
}

TokenBatch PadBatchLeft(const std::vector<TokenizedPrompt>& prompts, int64_t pad_id) {
  TokenBatch batch;
  batch.batch = static_cast<int64_t>(prompts.size());
  for (const auto& p : prompts) batch.length = std::max<int64_t>(batch.length, p.input_ids.size());
  const size_t total = static_cast<size_t>(batch.batch * batch.length);
  batch.input_ids.assign(total, pad_id);
  batch.attention_mask.assign(total, 0);
  batch.token_type_ids.assign(total, 0);
  for (size_t b = 0; b < prompts.size(); ++b) {
    const auto& p = prompts[b];
    const size_t offset = b * batch.length + (batch.length - p.input_ids.size());
    for (size_t i = 0; i < p.input_ids.size(); ++i) {
      batch.input_ids[offset + i] = p.input_ids[i];
      batch.attention_mask[offset + i] = 1;
      batch.token_type_ids[offset + i] = i < p.token_type_ids.size() ? p.token_type_ids[i] : 0;
    }
  }
  return batch;
}

Gemma3Tokenizer::Gemma3Tokenizer() = default;
Gemma3Tokenizer::Gemma3Tokenizer(Gemma3Tokenizer&&) noexcept = default;
Gemma3Tokenizer& Gemma3Tokenizer::operator=(Gemma3Tokenizer&&) noexcept = default;
Gemma3Tokenizer::~Gemma3Tokenizer() = default;

absl::StatusOr<Gemma3Tokenizer> Gemma3Tokenizer::Load(const std::string& model_dir) {
  const std::string model_path = model_dir + "/tokenizer.model";
  PCSWEEP_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(model_path));
  Gemma3Tokenizer tok;
  std::string error;
  tok.model_ = internal::LoadSentencePieceModel(bytes, &error);
  if (!tok.model_) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": cannot load as a SentencePiece model: ", error));
  }
  const int sp_size = tok.model_->size();

  // Added tokens (HF keeps <image_soft_token> outside the SentencePiece model).
  std::map<std::string, int64_t> added;
  const std::string added_path = model_dir + "/added_tokens.json";
  if (Exists(added_path)) {
    PCSWEEP_ASSIGN_OR_RETURN(nlohmann::json j, ReadJson(added_path));
    if (!j.is_object())
      return absl::InvalidArgumentError(absl::StrCat(added_path, ": expected an object"));
    for (const auto& [piece, value] : j.items()) {
      if (!value.is_number_integer()) {
        return absl::InvalidArgumentError(
            absl::StrCat(added_path, ": key '", piece, "': id must be an integer"));
      }
      const int64_t id = value.get<int64_t>();
      if (id < sp_size) {
        if (tok.model_->PieceToId(piece) != id) {
          return absl::InvalidArgumentError(absl::StrCat(
              added_path, ": key '", piece, "': id ", id, " is already the SentencePiece piece '",
              id >= 0 ? tok.model_->IdToPiece(id) : "", "'"));
        }
        continue;
      }
      added[piece] = id;
      tok.added_tokens_.emplace_back(id, piece);
    }
  }
  auto lookup = [&](const std::string& piece) -> int64_t {
    auto it = added.find(piece);
    if (it != added.end()) return it->second;
    return tok.model_->PieceToId(piece);
  };

  // Model config: image token ids and how many soft tokens one image takes.
  nlohmann::json config = nlohmann::json::object();
  const std::string config_path = model_dir + "/config.json";
  if (Exists(config_path)) {
    PCSWEEP_ASSIGN_OR_RETURN(config, ReadJson(config_path));
  }
  auto resolve = [&](const char* piece, const char* config_key, int64_t* out) -> absl::Status {
    const int64_t from_vocab = lookup(piece);
    int64_t from_config = -1;
    if (config_key != nullptr && config.contains(config_key) &&
        config[config_key].is_number_integer()) {
      from_config = config[config_key].get<int64_t>();
    }
    if (from_vocab < 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          model_path, ": piece '", piece, "' is not in the vocabulary",
          from_config >= 0
              ? absl::StrCat(" (", config_path, " says ", config_key, "=", from_config, ")")
              : ""));
    }
    if (from_config >= 0 && from_config != from_vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path, ": key '", config_key, "' = ", from_config,
                       " but the tokenizer has '", piece, "' at id ", from_vocab));
    }
    *out = from_vocab;
    return absl::OkStatus();
  };
  auto meta = [&](int sp_id, const char* piece, int64_t* out) -> absl::Status {
    if (sp_id >= 0) {
      *out = sp_id;
      return absl::OkStatus();
    }
    return resolve(piece, nullptr, out);
  };
  SpecialTokenIds& s = tok.special_;
  PCSWEEP_RETURN_IF_ERROR(meta(tok.model_->bos_id(), "<bos>", &s.bos));
  PCSWEEP_RETURN_IF_ERROR(meta(tok.model_->eos_id(), "<eos>", &s.eos));
  PCSWEEP_RETURN_IF_ERROR(meta(tok.model_->pad_id(), "<pad>", &s.pad));
  PCSWEEP_RETURN_IF_ERROR(meta(tok.model_->unk_id(), "<unk>", &s.unk));
  PCSWEEP_RETURN_IF_ERROR(resolve(kStartOfTurn, nullptr, &s.start_of_turn));
  PCSWEEP_RETURN_IF_ERROR(resolve(kEndOfTurn, nullptr, &s.end_of_turn));
  PCSWEEP_RETURN_IF_ERROR(resolve(kStartOfImage, "boi_token_index", &s.boi));
  PCSWEEP_RETURN_IF_ERROR(resolve(kEndOfImage, "eoi_token_index", &s.eoi));
  PCSWEEP_RETURN_IF_ERROR(resolve(kImageSoftToken, "image_token_index", &s.image));
  if (config.contains("mm_tokens_per_image")) {
    if (!config["mm_tokens_per_image"].is_number_integer() ||
        config["mm_tokens_per_image"].get<int64_t>() <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path, ": key 'mm_tokens_per_image' must be a positive integer"));
    }
    tok.mm_tokens_per_image_ = config["mm_tokens_per_image"].get<int>();
  }

  // Strings split out of text before SentencePiece sees it: control pieces (<bos>, ...),
  // the template's pieces and the added tokens, longest first.
  std::set<std::pair<std::string, int64_t>> specials;
  for (int id = 0; id < sp_size; ++id) {
    if (tok.model_->IsControl(id)) specials.emplace(tok.model_->IdToPiece(id), id);
  }
  for (const char* piece :
       {kStartOfTurn, kEndOfTurn, kStartOfImage, kEndOfImage, kImageSoftToken}) {
    specials.emplace(piece, lookup(piece));
  }
  for (const auto& [piece, id] : added) specials.emplace(piece, id);
  tok.special_strings_.assign(specials.begin(), specials.end());
  std::stable_sort(tok.special_strings_.begin(), tok.special_strings_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [piece, id] : tok.special_strings_) {
    if (piece.empty()) continue;
    tok.special_table_.emplace(piece, id);
    if (tok.special_lengths_.empty() || tok.special_lengths_.back() != piece.size()) {
      tok.special_lengths_.push_back(piece.size());
    }
    tok.special_first_byte_[static_cast<unsigned char>(piece[0])] = true;
  }

  // Answer tokens: every single-piece spelling present.
  for (const auto& [words, ids, pieces] :
       {std::make_tuple(std::vector<std::string>{"yes", "Yes", "YES"}, &tok.answers_.yes_ids,
                        &tok.answers_.yes_pieces),
        std::make_tuple(std::vector<std::string>{"no", "No", "NO"}, &tok.answers_.no_ids,
                        &tok.answers_.no_pieces)}) {
    for (const auto& word : words) {
      for (const std::string& piece : {word, std::string(kSpaceMarker) + word}) {
        const int64_t id = tok.model_->PieceToId(piece);
        if (id < 0 || tok.model_->IsControl(id) || tok.model_->IsUnknown(id)) continue;
        ids->push_back(id);
        pieces->push_back(piece);
      }
    }
    if (ids->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          model_path, ": no single-piece spelling of '", words[0], "' in the vocabulary (tried ",
          absl::StrJoin(words, "/"), " with and without the space marker)"));
    }
  }
  return tok;
}

absl::Status Gemma3Tokenizer::SplitSpecialAndEncode(absl::string_view text,
                                                    std::vector<int64_t>* ids) const {
  std::string pending;
  auto flush = [&]() -> absl::Status {
    if (pending.empty()) return absl::OkStatus();
    std::vector<int> piece_ids;
    std::string error;
    if (!model_->Encode(pending, &piece_ids, &error)) {
      return absl::InternalError(absl::StrCat("SentencePiece cannot encode text: ", error));
    }
    ids->insert(ids->end(), piece_ids.begin(), piece_ids.end());
    pending.clear();
    return absl::OkStatus();
  };
  size_t i = 0;
  while (i < text.size()) {
    bool matched = false;
    if (special_first_byte_[static_cast<unsigned char>(text[i])]) {
      for (size_t len : special_lengths_) {
        if (len == 0 || i + len > text.size()) continue;
        auto it = special_table_.find(std::string(text.substr(i, len)));
        if (it == special_table_.end()) continue;
        PCSWEEP_RETURN_IF_ERROR(flush());
        ids->push_back(it->second);
        i += len;
        matched = true;
        break;
      }
    }
    if (!matched) pending.push_back(text[i++]);
  }
  return flush();
}

absl::StatusOr<std::vector<int64_t>> Gemma3Tokenizer::Encode(absl::string_view text) const {
  std::vector<int64_t> ids;
  PCSWEEP_RETURN_IF_ERROR(SplitSpecialAndEncode(text, &ids));
  return ids;
}

absl::StatusOr<std::string> Gemma3Tokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&]() -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    std::string text, error;
    if (!model_->Decode(run, &text, &error))
      return absl::InternalError(absl::StrCat("SentencePiece: ", error));
    out += text;
    run.clear();
    return absl::OkStatus();
  };
  const int sp_size = model_->size();
  for (int64_t id : ids) {
    if (id >= 0 && id < sp_size && !model_->IsControl(static_cast<int>(id))) {
      run.push_back(static_cast<int>(id));
      continue;
    }
    PCSWEEP_RETURN_IF_ERROR(flush());
    const std::string piece = IdToPiece(id);
    if (piece.empty())
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " is not in the vocabulary"));
    out += piece;
  }
  PCSWEEP_RETURN_IF_ERROR(flush());
  return out;
}

std::string Gemma3Tokenizer::IdToPiece(int64_t id) const {
  if (id >= 0 && id < model_->size()) return model_->IdToPiece(static_cast<int>(id));
  for (const auto& [added_id, piece] : added_tokens_) {
    if (added_id == id) return piece;
  }
  return "";
}

int64_t Gemma3Tokenizer::PieceToId(absl::string_view piece) const {
  for (const auto& [added_id, added_piece] : added_tokens_) {
    if (added_piece == piece) return added_id;
  }
  return model_->PieceToId(std::string(piece));
}

int64_t Gemma3Tokenizer::vocab_size() const {
  int64_t size = model_->size();
  for (const auto& [id, piece] : added_tokens_) size = std::max(size, id + 1);
  return size;
}

absl::StatusOr<std::string> Gemma3Tokenizer::RenderPrompt(absl::string_view question,
                                                          const PromptOptions& options) const {
  if (options.prompt_template.find("{question}") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt template has no {question} placeholder: \"", options.prompt_template, "\""));
  }
  const std::string text = absl::StrReplaceAll(options.prompt_template, {{"{question}", question}});
  std::string image;
  if (options.image_position != ImagePosition::kNone) {
    // Gemma3Processor's full_image_sequence replacing the template's <start_of_image>.
    image = absl::StrCat("\n\n", kStartOfImage);
    image.reserve(image.size() + mm_tokens_per_image_ * sizeof(kImageSoftToken) + 32);
    for (int i = 0; i < mm_tokens_per_image_; ++i) image += kImageSoftToken;
    absl::StrAppend(&image, kEndOfImage, "\n\n");
  }
  std::string body;
  switch (options.image_position) {
    case ImagePosition::kNone:
      body = text;
      break;
    case ImagePosition::kBeforeText:
      body = image + text;
      break;
    case ImagePosition::kAfterText:
      body = text + image;
      break;
  }
  const std::string system =
      options.system_prompt.empty() ? "" : absl::StrCat(options.system_prompt, "\n\n");
  return absl::StrCat(IdToPiece(special_.bos), kStartOfTurn, "user\n", system, body, kEndOfTurn,
                      "\n", kStartOfTurn, "model\n");
}

absl::StatusOr<TokenizedPrompt> Gemma3Tokenizer::BuildPrompt(absl::string_view question,
                                                             const PromptOptions& options) const {
  PCSWEEP_ASSIGN_OR_RETURN(std::string rendered, RenderPrompt(question, options));
  const std::string bos_piece = IdToPiece(special_.bos);
  TokenizedPrompt prompt;
  // The bos id is placed directly so the prompt starts with it even if "<bos>" were not
  // matched as text; the rest is tokenized as HF does.
  prompt.input_ids.push_back(special_.bos);
  PCSWEEP_RETURN_IF_ERROR(SplitSpecialAndEncode(
      absl::string_view(rendered).substr(bos_piece.size()), &prompt.input_ids));
  prompt.token_type_ids.resize(prompt.input_ids.size());
  for (size_t i = 0; i < prompt.input_ids.size(); ++i) {
    prompt.token_type_ids[i] = prompt.input_ids[i] == special_.image ? 1 : 0;
  }
  return prompt;
}

// ---------------------------------------------------------------------------------------
// Training.

absl::StatusOr<TrainedTokenizer> TrainGemmaLikeTokenizer(const std::string& corpus_path,
                                                         const std::string& out_dir,
                                                         const TokenizerTrainingOptions& options) {
  std::ifstream in(corpus_path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat(corpus_path, ": cannot open corpus: ", std::strerror(errno)));
  std::vector<std::string> sentences;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) sentences.push_back(std::move(line));
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(corpus_path, ": read error"));
  return TrainGemmaLikeTokenizerFromSentences(sentences, out_dir, options, corpus_path);
}

absl::StatusOr<TrainedTokenizer> TrainGemmaLikeTokenizerFromSentences(
    const std::vector<std::string>& sentences, const std::string& out_dir,
    const TokenizerTrainingOptions& options, const std::string& source_name) {
  size_t non_empty = 0;
  for (const auto& s : sentences) non_empty += s.empty() ? 0 : 1;
  if (non_empty == 0)
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": corpus has no text"));
  const std::vector<std::string> kFixed = {"<mask>",    kStartOfTurn,    kEndOfTurn, kStartOfImage,
                                           kEndOfImage, kImageSoftToken, "\n",       "\n\n"};
  const int kFirstLearnedId = 4 + static_cast<int>(kFixed.size());
  const int minimum = kFirstLearnedId + (options.byte_fallback ? 256 : 0) + 16;
  if (options.vocab_size < minimum) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer vocab_size ", options.vocab_size, " is too small: the fixed pieces",
        options.byte_fallback ? " and the 256 byte pieces" : "", " need at least ", minimum));
  }
  if (options.model_type != "unigram" && options.model_type != "bpe") {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer model_type must be unigram or bpe, got '", options.model_type, "'"));
  }
  // One-word sentences make the answers frequent enough to stay whole pieces.
  std::vector<std::string> training = sentences;
  const size_t repeats = std::max<size_t>(20, non_empty / 200);
  for (const char* word : {"yes", "Yes", "no", "No"}) {
    for (size_t i = 0; i < repeats; ++i) training.emplace_back(word);
  }
  std::map<std::string, std::string> flags = {
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"pad_id", "0"},
      {"eos_id", "1"},
      {"bos_id", "2"},
      {"unk_id", "3"},
      {"pad_piece", "<pad>"},
      {"eos_piece", "<eos>"},
      {"bos_piece", "<bos>"},
      {"unk_piece", "<unk>"},
      {"user_defined_symbols", absl::StrJoin(kFixed, ",")},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"byte_fallback", options.byte_fallback ? "true" : "false"},
      {"character_coverage", "1.0"},
      {"hard_vocab_limit", "false"},
      {"max_sentence_length", "65536"},
      {"num_threads", std::to_string(std::max(1, options.num_threads))},
      {"input_sentence_size", std::to_string(std::max<int64_t>(0, options.max_sentences))},
      {"shuffle_input_sentence", "true"},
      {"minloglevel", "2"},
  };
  std::string model_proto, error;
  if (!internal::TrainSentencePiece(flags, training, &model_proto, &error)) {
    return absl::InternalError(
        absl::StrCat("training the tokenizer on ", source_name, " failed: ", error));
  }
  auto model = internal::LoadSentencePieceModel(model_proto, &error);
  if (!model) return absl::InternalError(absl::StrCat("trained tokenizer does not load: ", error));

  // Fallback for answers the trainer still split: append them with the best normal score.
  std::vector<std::string> missing;
  for (const char* word : {"yes", "Yes", "no", "No"}) {
    if (model->PieceToId(word) < 0) missing.emplace_back(word);
  }
  if (!missing.empty()) {
    // Unigram scores are log-probabilities: give the appended pieces the best score seen.
    // Scores are not exposed by the bridge, so 0 (probability 1) is used, which makes the
    // whole word always win over its parts.
    for (const auto& word : missing) AppendNormalPiece(word, 0.0f, &model_proto);
    model = internal::LoadSentencePieceModel(model_proto, &error);
    if (!model)
      return absl::InternalError(
          absl::StrCat("tokenizer with appended answer pieces does not load: ", error));
  }
  for (const char* word : {"yes", "Yes", "no", "No"}) {
    std::vector<int> ids;
    if (!model->Encode(word, &ids, &error) || ids.size() != 1) {
      return absl::InternalError(
          absl::StrCat("trained tokenizer splits '", word, "' into ", ids.size(),
                       " pieces; use model_type unigram or a larger corpus"));
    }
  }
  // The fixed layout is a contract with the model config (boi/eoi/image ids).
  for (size_t i = 0; i < kFixed.size(); ++i) {
    if (model->PieceToId(kFixed[i]) !=
        kFirstLearnedId - static_cast<int>(kFixed.size()) + static_cast<int>(i)) {
      return absl::InternalError(
          absl::StrCat("trained tokenizer has piece '", absl::CEscape(kFixed[i]), "' at id ",
                       model->PieceToId(kFixed[i]), ", not at its fixed id"));
    }
  }

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(out_dir, ": cannot create directory: ", ec.message()));
  TrainedTokenizer result;
  result.model_path = out_dir + "/tokenizer.model";
  PCSWEEP_RETURN_IF_ERROR(WriteFileDurably(result.model_path, model_proto));
  result.vocab_size = model->size();
  SpecialTokenIds& s = result.special_ids;
  s.pad = 0;
  s.eos = 1;
  s.bos = 2;
  s.unk = 3;
  s.start_of_turn = model->PieceToId(kStartOfTurn);
  s.end_of_turn = model->PieceToId(kEndOfTurn);
  s.boi = model->PieceToId(kStartOfImage);
  s.eoi = model->PieceToId(kEndOfImage);
  s.image = model->PieceToId(kImageSoftToken);
  return result;
}

}  // namespace pcsweep::inputs
