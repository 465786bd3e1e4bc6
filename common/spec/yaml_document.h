// Loading a spec's single YAML document without YAML::LoadAll, whose loop never ends on some
// malformed streams in the yaml-cpp Debian 12 ships (0.7.0): a stream holding only "," makes
// each HandleNextDocument call report an empty document without consuming the token, and
// LoadAll keeps allocating them (jbeder/yaml-cpp#1040, fixed upstream by #1319). The spec
// fuzzer found it; a coordinator parsing such a spec on a gRPC thread would hang and fill the
// memory.
//
// Thread-safe (no shared state). Throws what yaml-cpp throws (YAML::Exception and subclasses):
// the caller turns it into a positioned error.
#ifndef PCSWEEP_COMMON_SPEC_YAML_DOCUMENT_H_
#define PCSWEEP_COMMON_SPEC_YAML_DOCUMENT_H_

#include <string>

#include "yaml-cpp/yaml.h"

namespace pcsweep::spec_internal {

struct YamlDocument {
  YAML::Node root;  // null for an empty stream

  // Set when the stream does not end after the first document.
  bool has_more = false;
  // Where the rest begins.
  YAML::Mark more_at = YAML::Mark::null_mark();
  // The rest is not a document at all: the parser stopped making progress there (the
  // yaml-cpp bug above), e.g. a stray ','; more_at points at it.
  bool more_is_stuck = false;
};

// Parses the first document of `text` and looks, with a bounded number of parser calls, at
// whether anything follows it.
YamlDocument LoadFirstYamlDocument(const std::string& text);

}  // namespace pcsweep::spec_internal

#endif  // PCSWEEP_COMMON_SPEC_YAML_DOCUMENT_H_
