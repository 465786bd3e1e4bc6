// The dlopen()ed module around libsentencepiece; see sentencepiece_bridge.h for why.
// No Abseil include in this file.
#include "experiments/inputs/sentencepiece_bridge.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

namespace pcsweep::inputs::internal {
namespace {

class VectorSentenceIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& sentences)
      : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

bool Check(const sentencepiece::util::Status& status, std::string* error) {
  if (status.ok()) return true;
  if (error != nullptr) *error = status.ToString();
  return false;
}

class Model : public SentencePieceModel {
 public:
  bool Load(const std::string& bytes, std::string* error) {
    return Check(processor_.LoadFromSerializedProto(bytes), error);
  }
  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const override {
    return Check(processor_.Encode(text, ids), error);
  }
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const override {
    return Check(processor_.Decode(ids, text), error);
  }
  int size() const override { return processor_.GetPieceSize(); }
  int PieceToId(const std::string& piece) const override {
    const int id = processor_.PieceToId(piece);
    // SentencePiece maps unknown pieces to unk_id; only "<unk>" itself is really unk.
    if (id == processor_.unk_id() && processor_.IdToPiece(id) != piece) return -1;
    return id;
  }
  std::string IdToPiece(int id) const override { return processor_.IdToPiece(id); }
  bool IsControl(int id) const override { return processor_.IsControl(id); }
  bool IsUnknown(int id) const override { return processor_.IsUnknown(id); }
  int bos_id() const override { return processor_.bos_id(); }
  int eos_id() const override { return processor_.eos_id(); }
  int pad_id() const override { return processor_.pad_id(); }
  int unk_id() const override { return processor_.unk_id(); }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace
}  // namespace pcsweep::inputs::internal

extern "C" __attribute__((visibility("default"))) pcsweep::inputs::internal::SentencePieceModel*
pcsweep_create_sentencepiece_model(const std::string* bytes, std::string* error) {
  auto model = std::make_unique<pcsweep::inputs::internal::Model>();
  if (!model->Load(*bytes, error)) return nullptr;
  return model.release();
}

extern "C" __attribute__((visibility("default"))) bool pcsweep_train_sentencepiece(
    const std::map<std::string, std::string>* flags, const std::vector<std::string>* sentences,
    std::string* serialized_model, std::string* error) {
  std::unordered_map<std::string, std::string> kwargs(flags->begin(), flags->end());
  pcsweep::inputs::internal::VectorSentenceIterator iterator(*sentences);
  return pcsweep::inputs::internal::Check(
      sentencepiece::SentencePieceTrainer::Train(kwargs, &iterator, serialized_model), error);
}
