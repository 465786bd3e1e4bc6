// A thin, std-only interface to libsentencepiece (internal to pcsweep::inputs).
//
// Why it is built as a separately loaded module (libpcsweep_sentencepiece_bridge.so):
//  1. Debian's libsentencepiece bundles protobuf-lite 3.14 and exports its symbols. In a
//     process that also loads libprotobuf 3.21 (libtorch does), the dynamic linker binds
//     SentencePiece's protobuf calls to 3.21 and the process aborts at start-up ("compiled
//     against version 3.14.0 ... not compatible with the installed version"). So the
//     module is dlopen()ed with RTLD_LOCAL | RTLD_DEEPBIND: SentencePiece then resolves
//     to its own protobuf, whatever else the process has loaded. Nothing else may link
//     libsentencepiece directly.
//  2. sentencepiece_processor.h declares `namespace absl { using std::string_view; }`,
//     which collides with Debian's Abseil; only sentencepiece_bridge.cc includes it and it
//     includes no Abseil header. Errors therefore travel as `false` + a message.
//
// The module is found, in order, at $PCSWEEP_SENTENCEPIECE_BRIDGE, at its build-tree path,
// next to the running executable, in ../lib from it, then by the loader's search path.
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
  virtual ~SentencePieceModel() = default;

  virtual bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const = 0;
  virtual bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const = 0;
  virtual int size() const = 0;
  // -1 when the piece is not in the vocabulary (SentencePiece itself answers unk).
  virtual int PieceToId(const std::string& piece) const = 0;
  virtual std::string IdToPiece(int id) const = 0;
  virtual bool IsControl(int id) const = 0;
  virtual bool IsUnknown(int id) const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
};

// Loads a serialized ModelProto (the bytes of a tokenizer.model file). nullptr + *error
// when the bytes are not a model or the bridge module cannot be loaded.
std::unique_ptr<SentencePieceModel> LoadSentencePieceModel(const std::string& bytes,
                                                           std::string* error);

// Trains a model on `sentences` with SentencePiece's trainer flags (`--key=value` without
// dashes, e.g. {"vocab_size","512"}); returns the serialized ModelProto.
bool TrainSentencePiece(const std::map<std::string, std::string>& flags,
                        const std::vector<std::string>& sentences, std::string* serialized_model,
                        std::string* error);

// The module's C entry points (looked up with dlsym).
using CreateSentencePieceModelFn = SentencePieceModel* (*)(const std::string* bytes,
                                                           std::string* error);
using TrainSentencePieceFn = bool (*)(const std::map<std::string, std::string>* flags,
                                      const std::vector<std::string>* sentences,
                                      std::string* serialized_model, std::string* error);
inline constexpr char kCreateSentencePieceModelSymbol[] = "pcsweep_create_sentencepiece_model";
inline constexpr char kTrainSentencePieceSymbol[] = "pcsweep_train_sentencepiece";

}  // namespace pcsweep::inputs::internal

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_SENTENCEPIECE_BRIDGE_H_
