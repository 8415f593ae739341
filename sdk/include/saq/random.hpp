#pragma once
/// A small, platform-independent random generator (splitmix64) for data order, augmentation and generated
/// data: what it yields depends on its seed alone, never on LibTorch's generator or the thread schedule.
#include <cmath>
#include <cstdint>

namespace saq {

class SplitMix {
 public:
  explicit SplitMix(std::uint64_t seed) : state_(seed) {}
  /// A seed derived from two values (seed and epoch, say), well mixed.
  static std::uint64_t mix(std::uint64_t a, std::uint64_t b) { return SplitMix(a * 0x2545f4914f6cdd1dULL ^ b).next(); }

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) (the modulo bias is below 2^-40 for the sizes used here).
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  /// Uniform in [0, 1), 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Standard normal (Box–Muller).
  double normal() { return std::sqrt(-2.0 * std::log(1.0 - uniform())) * std::cos(2.0 * M_PI * uniform()); }

 private:
  std::uint64_t state_;
};

}  // namespace saq
