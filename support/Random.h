//===- Random.h - Small deterministic random number generator ---*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// `femc::Rng`, a seeded xoshiro256** generator for tests and tools that need
/// reproducible inputs. The same seed gives the same sequence on every
/// platform and compiler (unlike `std::normal_distribution`, whose algorithm
/// is implementation-defined).
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_SUPPORT_RANDOM_H
#define FEMC_SUPPORT_RANDOM_H

#include <cmath>
#include <cstdint>
#include <vector>

namespace femc {

/// xoshiro256** (Blackman and Vigna), seeded through splitmix64.
class Rng {
public:
  /// Seeds the generator; every seed, including 0, gives a valid state.
  explicit Rng(uint64_t seed = 0) {
    uint64_t x = seed;
    for (uint64_t &word : state)
      word = splitmix64(x);
  }

  /// The next 64 uniformly distributed bits.
  uint64_t next() {
    uint64_t result = rotl(state[1] * 5, 7) * 9;
    uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
  }

  /// A double uniformly distributed in [0, 1), with 53 random bits.
  double uniform01() { return (next() >> 11) * 0x1.0p-53; }

  /// A double uniformly distributed in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }

  /// An integer in [0, n); n must be positive. (Modulo reduction: the bias
  /// is negligible for n far below 2^64.)
  uint64_t below(uint64_t n) { return next() % n; }

  /// A standard normal deviate (Box-Muller; one pair of uniforms per call,
  /// so the sequence does not depend on call history beyond the count).
  double normal() {
    double u1 = 1.0 - uniform01(); // In (0, 1]: log stays finite.
    double u2 = uniform01();
    return std::sqrt(-2.0 * std::log(u1)) *
           std::cos(6.283185307179586476925286766559 * u2);
  }

  /// A normal deviate with the given mean and standard deviation.
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// Fills `values` with floats uniformly distributed in [lo, hi).
  void fillUniform(std::vector<float> &values, double lo, double hi) {
    for (float &value : values)
      value = static_cast<float>(uniform(lo, hi));
  }

  /// Fills `values` with normal floats of the given mean and deviation.
  void fillNormal(std::vector<float> &values, double mean = 0.0,
                  double stddev = 1.0) {
    for (float &value : values)
      value = static_cast<float>(normal(mean, stddev));
  }

private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  static uint64_t splitmix64(uint64_t &x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state[4];
};

} // namespace femc

#endif // FEMC_SUPPORT_RANDOM_H
