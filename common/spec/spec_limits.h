// Bounds on what one sweep spec may make the coordinator do, shared by the parsing stages.
// They keep a hostile or mistaken spec (a recursive alias, alias bombs, a 20-axis grid) from
// exhausting the coordinator: far above any real sweep. Internal to the spec library.
// Constants only: thread-safe, no errors.
#ifndef PCSWEEP_COMMON_SPEC_SPEC_LIMITS_H_
#define PCSWEEP_COMMON_SPEC_SPEC_LIMITS_H_

#include <cstddef>

namespace pcsweep::spec_internal {

inline constexpr int kMaxDepth = 64;
inline constexpr size_t kMaxYamlNodes = 1000000;
inline constexpr size_t kMaxJobs = 100000;
inline constexpr size_t kMaxSpecBytes = 1 << 20;
// Dependency edges (job -> parent job) of a whole sweep: two 1000-cell stages sharing no grid
// key would make a million.
inline constexpr size_t kMaxDependencyEdges = 200000;

}  // namespace pcsweep::spec_internal

#endif  // PCSWEEP_COMMON_SPEC_SPEC_LIMITS_H_
