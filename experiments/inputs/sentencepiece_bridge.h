// A thin, std-only wrapper over libsentencepiece (internal to pcsweep::inputs).
//
// Why it exists: sentencepiece_processor.h declares `namespace absl { using
// std::string_view; }`, which collides with Debian's Abseil (its own absl::string_view
// class). So the SentencePiece headers are included only in sentencepiece_bridge.cc, which
// includes no Abseil header, and the rest of the library talks to this interface.
//
// Errors are returned as `false` plus a message in `*error` (no absl here, see above).
#ifndef PCSWEEP_EXPERIMENTS_INPUTS_SENTENCEPIECE_BRIDGE_H_
#define PCSWEEP_EXPERIMENTS_INPUTS_SENTENCEPIECE_BRIDGE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pcsweep::inputs::internal {

// A loaded SentencePiece model. Const methods are safe to call from several threads
// (SentencePieceProcessor's encoding is const and keeps no mutable state).
class SentencePieceModel {
 public:
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  // Loads a serialized ModelProto (the bytes of a tokenizer.model file).
  static std::unique_ptr<SentencePieceModel> FromSerialized(const std::string& bytes,
                                                            std::string* error);

  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const;
  bool EncodePieces(const std::string& text, std::vector<std::string>* pieces,
                    std::string* error) const;
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const;

  int size() const;
  // -1 when the piece is not in the vocabulary (SentencePiece itself answers unk).
  int PieceToId(const std::string& piece) const;
  std::string IdToPiece(int id) const;
  bool IsControl(int id) const;
  bool IsUnknown(int id) const;
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;

 private:
  SentencePieceModel();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Trains a model on `sentences` with SentencePiece's trainer flags (`--key=value` without
// dashes, e.g. {"vocab_size","512"}); returns the serialized ModelProto.
bool TrainSentencePiece(const std::map<std::string, std::string>& flags,
                        const std::vector<std::string>& sentences, std::string* serialized_model,
                        std::string* error);

}  // namespace pcsweep::inputs::internal

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_SENTENCEPIECE_BRIDGE_H_
