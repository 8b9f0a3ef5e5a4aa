// baypr/core/random.hpp: the library's seeded random draws, portable across standard libraries.
//
//   splitmix64(x)                                  one SplitMix64 output (Steele et al., 2014)
//   derive_seed(seed, {c1, c2, ...})               a seed from the run's seed and coordinates
//   uniform_below(rng, bound)                      uniform integer in [0, bound), exact
//   uniform01(rng)                                 uniform in [0, 1), 53 random bits
//   uniform_symmetric(rng, bound)                  uniform in [-bound, bound), one draw
//   standard_normal(rng)                           N(0, 1) by Box-Muller, the cosine only
//   PortableNormal(seed)()                         N(0, 1) by Box-Muller, both values of a pair
//   sample_without_replacement(pool, count, rng)   `count` distinct entries (partial shuffle)
//   gaussian_projection(in_dim, out_dim, seed)     fixed in_dim x out_dim matrix, N(0, 1 / in_dim)
//
// Every draw reads std::mt19937_64, whose output sequence the standard fixes, through the
// transformations below, never through a std::*_distribution (their algorithms are
// implementation-defined), so a seed gives the same values with every standard library. The
// normal draws go through libm's log, sqrt, sin and cos, which can differ in the last bit between
// C libraries.
//
// The two normal draws consume the engine alike (two outputs per Box-Muller pair) but differ in
// what they keep: standard_normal discards the sine value and holds no state, so each call is two
// engine outputs; PortableNormal returns the sine value on the next call. Callers rely on their
// order, so both stay.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <numbers>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"

namespace baypr {

[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The seed of one episode (or update): the run's seed mixed with each coordinate in turn (class,
// K, episode index, ...), so every episode's draws depend on its coordinates alone.
[[nodiscard]] constexpr std::uint64_t derive_seed(
    std::uint64_t seed, std::initializer_list<std::uint64_t> coordinates) noexcept {
  std::uint64_t s = splitmix64(seed);
  for (const std::uint64_t c : coordinates) s = splitmix64(s ^ c);
  return s;
}

// Uniform on [0, bound), bound >= 1, exactly: the 2^64 mod bound lowest engine outputs are
// rejected, so every residue is equally likely. Unlike std::uniform_int_distribution, whose
// algorithm is implementation-defined, the draws are the same with every standard library.
[[nodiscard]] inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t reject_below = (0U - bound) % bound;  // 2^64 mod bound
  std::uint64_t r = rng();
  while (r < reject_below) r = rng();
  return r % bound;
}

// Uniform in [0, 1) from the top 53 bits of one draw.
[[nodiscard]] inline double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Uniform in [-bound, bound) from one draw.
[[nodiscard]] inline double uniform_symmetric(std::mt19937_64& rng, double bound) {
  return bound * (2.0 * uniform01(rng) - 1.0);
}

namespace detail {

// One Box-Muller pair from two draws, u1 in (0, 1] (so the log is finite), u2 in [0, 1).
[[nodiscard]] inline std::pair<double, double> box_muller(std::mt19937_64& rng) {
  const double u1 = static_cast<double>((rng() >> 11) + 1) * 0x1.0p-53;  // (0, 1]
  const double u2 = uniform01(rng);                                      // [0, 1)
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 2.0 * std::numbers::pi * u2;
  return {r * std::cos(t), r * std::sin(t)};
}

}  // namespace detail

// A standard normal value: the cosine half of one Box-Muller pair (two engine outputs per call, no
// hidden state).
[[nodiscard]] inline double standard_normal(std::mt19937_64& rng) {
  return detail::box_muller(rng).first;
}

// Standard normal values from an engine it owns, both halves of each Box-Muller pair: the cosine
// value, then the sine value, then the next pair. bits() reads the engine directly.
class PortableNormal {
 public:
  explicit PortableNormal(std::uint64_t seed) : rng_(seed) {}

  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const auto [cosine, sine] = detail::box_muller(rng_);
    spare_ = sine;
    has_spare_ = true;
    return cosine;
  }

  std::uint64_t bits() { return rng_(); }

 private:
  std::mt19937_64 rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// `count` distinct entries of `pool`, uniformly: the first `count` steps of a Fisher-Yates shuffle
// of a copy (entry i swapped with a uniform j in [i, size)), in the order drawn. A count outside
// [0, pool size] throws baypr::invalid_argument naming the caller's function and argument.
template <class T>
[[nodiscard]] std::vector<T> sample_without_replacement(
    std::vector<T> pool, Eigen::Index count, std::mt19937_64& rng,
    std::string_view function = "baypr::sample_without_replacement",
    std::string_view argument = "count") {
  if (count < 0 || static_cast<std::size_t>(count) > pool.size()) {
    detail::throw_invalid(function, argument,
                          "asks for " + std::to_string(count) + " distinct draws from " +
                              std::to_string(pool.size()));
  }
  const auto n = pool.size(), k = static_cast<std::size_t>(count);
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(uniform_below(rng, n - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(k);
  return pool;
}

// A fixed random projection, in_dim x out_dim, entries N(0, 1 / in_dim) drawn row by row from
// PortableNormal(seed): x * P keeps squared norms on average.
[[nodiscard]] inline Eigen::MatrixXd gaussian_projection(Eigen::Index in_dim, Eigen::Index out_dim,
                                                         std::uint64_t seed) {
  constexpr std::string_view fn = "baypr::gaussian_projection";
  if (in_dim < 1)
    detail::throw_invalid(fn, "in_dim", "must be >= 1, got " + std::to_string(in_dim));
  if (out_dim < 1)
    detail::throw_invalid(fn, "out_dim", "must be >= 1, got " + std::to_string(out_dim));
  PortableNormal normal(seed);
  const double sd = 1.0 / std::sqrt(static_cast<double>(in_dim));
  Eigen::MatrixXd p(in_dim, out_dim);
  for (Eigen::Index i = 0; i < in_dim; ++i) {
    for (Eigen::Index j = 0; j < out_dim; ++j) p(i, j) = sd * normal();
  }
  return p;
}

}  // namespace baypr
