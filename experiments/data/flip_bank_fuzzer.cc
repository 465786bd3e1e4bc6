// Fuzz target: a flip-bank CSV (RFC 4180) as a user's eval set may be, through the CSV
// parser and the loader that groups rows into questions. Images are not checked (the fuzzer
// has none). Each question groups at least one row, and only skip_bad skips rows.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/testing/fuzz_input.h"
#include "experiments/data/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcsweep::data;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto records = ParseCsv(text);
  if (records.ok()) {
    size_t previous_line = 0;
    for (const auto& record : *records) {
      if (record.line <= previous_line) std::abort();  // lines only go forward
      previous_line = record.line;
    }
  }
  const std::string path = pcsweep::testutil::WriteFuzzInput(data, size, "bank.csv");
  for (bool skip_bad : {false, true}) {
    LoadOptions options;
    options.check_images = false;
    options.skip_bad = skip_bad;
    auto dataset = LoadFlipBankCsv(path, options);
    if (!dataset.ok()) continue;
    if (dataset->questions.size() > dataset->report.records) std::abort();
    if (!skip_bad && dataset->report.skipped != 0) std::abort();
  }
  return 0;
}
