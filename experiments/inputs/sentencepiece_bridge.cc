// No Abseil include in this file: see sentencepiece_bridge.h.
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

}  // namespace

struct SentencePieceModel::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

SentencePieceModel::SentencePieceModel() : impl_(std::make_unique<Impl>()) {}
SentencePieceModel::~SentencePieceModel() = default;

std::unique_ptr<SentencePieceModel> SentencePieceModel::FromSerialized(const std::string& bytes,
                                                                       std::string* error) {
  std::unique_ptr<SentencePieceModel> model(new SentencePieceModel());
  if (!Check(model->impl_->processor.LoadFromSerializedProto(bytes), error)) return nullptr;
  return model;
}

bool SentencePieceModel::Encode(const std::string& text, std::vector<int>* ids,
                                std::string* error) const {
  return Check(impl_->processor.Encode(text, ids), error);
}

bool SentencePieceModel::EncodePieces(const std::string& text, std::vector<std::string>* pieces,
                                      std::string* error) const {
  return Check(impl_->processor.Encode(text, pieces), error);
}

bool SentencePieceModel::Decode(const std::vector<int>& ids, std::string* text,
                                std::string* error) const {
  return Check(impl_->processor.Decode(ids, text), error);
}

int SentencePieceModel::size() const { return impl_->processor.GetPieceSize(); }

int SentencePieceModel::PieceToId(const std::string& piece) const {
  const int id = impl_->processor.PieceToId(piece);
  // SentencePiece maps unknown pieces to unk_id; only "<unk>" itself is really unk.
  if (id == impl_->processor.unk_id() && impl_->processor.IdToPiece(id) != piece) return -1;
  return id;
}

std::string SentencePieceModel::IdToPiece(int id) const { return impl_->processor.IdToPiece(id); }
bool SentencePieceModel::IsControl(int id) const { return impl_->processor.IsControl(id); }
bool SentencePieceModel::IsUnknown(int id) const { return impl_->processor.IsUnknown(id); }
int SentencePieceModel::bos_id() const { return impl_->processor.bos_id(); }
int SentencePieceModel::eos_id() const { return impl_->processor.eos_id(); }
int SentencePieceModel::pad_id() const { return impl_->processor.pad_id(); }
int SentencePieceModel::unk_id() const { return impl_->processor.unk_id(); }

bool TrainSentencePiece(const std::map<std::string, std::string>& flags,
                        const std::vector<std::string>& sentences, std::string* serialized_model,
                        std::string* error) {
  std::unordered_map<std::string, std::string> kwargs(flags.begin(), flags.end());
  VectorSentenceIterator iterator(sentences);
  return Check(sentencepiece::SentencePieceTrainer::Train(kwargs, &iterator, serialized_model),
               error);
}

}  // namespace pcsweep::inputs::internal
