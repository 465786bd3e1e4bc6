#include "common/spec/yaml_document.h"

#include <sstream>

#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/parser.h"

namespace pcsweep::spec_internal {
namespace {

// Records where a document's first node starts (or, without one, the document itself).
class FirstMarkHandler : public YAML::EventHandler {
 public:
  YAML::Mark first() const { return seen_ ? first_ : start_; }

  void OnDocumentStart(const YAML::Mark& mark) override { start_ = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Note(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Note(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Note(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Note(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Note(mark);
  }
  void OnMapEnd() override {}

 private:
  void Note(const YAML::Mark& mark) {
    if (!seen_) first_ = mark;
    seen_ = true;
  }
  bool seen_ = false;
  YAML::Mark first_ = YAML::Mark::null_mark();
  YAML::Mark start_ = YAML::Mark::null_mark();
};

bool SameMark(const YAML::Mark& a, const YAML::Mark& b) {
  return a.pos == b.pos && a.line == b.line && a.column == b.column;
}

}  // namespace

YamlDocument LoadFirstYamlDocument(const std::string& text) {
  YamlDocument document;
  // YAML::Load reads one document: one HandleNextDocument call, so it always ends.
  document.root = YAML::Load(text);
  // A second pass with the raw parser, two documents at most, to see what follows.
  std::istringstream in(text);
  YAML::Parser parser(in);
  FirstMarkHandler first;
  if (!parser.HandleNextDocument(first)) return document;
  FirstMarkHandler second;
  if (!parser.HandleNextDocument(second)) return document;
  document.has_more = true;
  document.more_at = second.first();
  document.more_is_stuck = SameMark(first.first(), second.first());
  return document;
}

}  // namespace pcsweep::spec_internal
