#pragma once

#include <cstdint>
#include <limits>
#include <random>

namespace phoenix {

// A fast 64-bit generator (xoshiro256**) for per-request draws: request ids, weighted
// clusters, retry jitter. Not for secrets. std::mt19937_64 costs several times more per
// draw and carries 2.5 KB of state; this one is four words. Satisfies
// UniformRandomBitGenerator, so <random> distributions accept it.
class FastRandom {
 public:
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  // Seeded from std::random_device, spread over the state with splitmix64.
  FastRandom()
      : FastRandom((static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {
  }
  explicit FastRandom(uint64_t seed) {
    for (uint64_t& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  result_type operator()() {
    uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace phoenix
