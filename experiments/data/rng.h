// Portable, seedable pseudo-random numbers for the data pipeline. Every draw is defined by
// integer arithmetic (splitmix64 for seeding and hashing, xoshiro256** for streams), so the
// same seed gives the same numbers on every compiler and platform, unlike the
// std::*_distribution classes whose output is implementation-defined.
// Thread-safety: a Rng is a plain value; use one per thread.
#ifndef PCSWEEP_EXPERIMENTS_DATA_RNG_H_
#define PCSWEEP_EXPERIMENTS_DATA_RNG_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace pcsweep::data {

// One step of splitmix64: a strong 64-bit mixer, also used to derive independent seeds.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Mixes a value into a seed: used to derive per-item streams (seed, split, index, ...) that do
// not depend on how many numbers other items consumed.
inline uint64_t MixSeed(uint64_t seed, uint64_t value) {
  uint64_t state = seed ^ (value * 0xD1B54A32D192ED03ULL);
  return SplitMix64(state);
}

// Stable 64-bit hash of a string (FNV-1a, then mixed), independent of std::hash.
inline uint64_t StableHash(std::string_view text, uint64_t seed = 0) {
  uint64_t h = 0xCBF29CE484222325ULL ^ seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return MixSeed(seed, h);
}

// xoshiro256** generator seeded through splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t state = seed;
    for (uint64_t& word : s_) word = SplitMix64(state);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits: exact in IEEE double, hence portable.
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }

  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

  // Uniform integer in [0, n) by rejection (no modulo bias). n must be > 0.
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % n;
  }

  bool Bernoulli(double p) { return Uniform() < p; }

  // Fisher-Yates shuffle driven by this generator.
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) {
      using std::swap;
      swap(items[i - 1], items[static_cast<size_t>(Below(i))]);
    }
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_RNG_H_
