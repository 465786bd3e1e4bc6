// Fuzz target: a sweep spec as a user (or a hostile client) submits it. Beyond "no crash, no
// sanitizer report": an accepted spec's jobs satisfy the invariants the scheduler relies on
// (unique keys, parents named before their children, a hash per job).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "common/spec/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  // The coordinator's own guard against specs that take long to expand: one second here.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  auto spec = pcsweep::ParseSweepSpec(yaml, "fuzz.yaml",
                                      [&] { return std::chrono::steady_clock::now() > deadline; });
  if (!spec.ok()) return 0;
  std::set<std::string> seen;
  for (const auto& job : spec->jobs) {
    for (const auto& parent : job.depends_on) {
      if (seen.count(parent) == 0) std::abort();  // a child before its parent
    }
    if (!seen.insert(job.key).second) std::abort();  // two jobs under one key
    if (job.config_hash.size() != 64) std::abort();
  }
  return 0;
}
