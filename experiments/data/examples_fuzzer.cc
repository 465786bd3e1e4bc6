// Fuzz target: examples.jsonl, the per-example results a job hands to the worker (a job
// process, and so its file, is not trusted). Every line the parser accepts must survive a
// write and a second read unchanged; the whole-file reader must agree with line parsing.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "common/testing/fuzz_input.h"
#include "experiments/data/examples_io.h"

namespace {

bool SameRow(const pcsweep::data::ExampleRow& a, const pcsweep::data::ExampleRow& b) {
  return a.eval_set == b.eval_set && a.variant == b.variant && a.question_id == b.question_id &&
         a.pair_id == b.pair_id && a.image == b.image && a.phenomenon == b.phenomenon &&
         a.label == b.label && a.margin_original == b.margin_original &&
         a.margin_paraphrase == b.margin_paraphrase;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcsweep::data;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    auto row = pcsweep::jobfile::ParseExampleRow("fuzz", 1, std::string(line));
    if (!row.ok()) continue;
    auto written = pcsweep::jobfile::ExampleRowToJsonLine(*row);
    if (!written.ok()) continue;  // e.g. a margin that overflowed to infinity
    auto again = pcsweep::jobfile::ParseExampleRow("fuzz", 1, *written);
    if (!again.ok() || !SameRow(*row, *again)) std::abort();
  }
  const std::string path = pcsweep::testutil::WriteFuzzInput(data, size, "examples.jsonl");
  (void)ReadExamples(path);
  return 0;
}
