// libFuzzer target for baypr/io/pat.hpp: any byte string given to baypr::parse_pat either decodes
// to a consistent pattern or throws baypr::io_error. Any other exception, a crash, a sanitizer
// report or a broken invariant is a finding. Built and run by scripts/fuzz (target "pat"):
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//     -isystem /usr/include/eigen3 tests/fuzz/pat.fuzz.cpp -o build/fuzz/pat.fuzz
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "baypr/io/pat.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();  // an invariant broken: libFuzzer reports the input
}

void exercise(const baypr::PatPattern& p, std::size_t input_size) {
  check(p.width >= 1 && p.height >= 1 && p.channels >= 1 && p.channels <= 4);
  const std::uint64_t pixels = std::uint64_t{p.width} * p.height;
  check(pixels <= baypr::max_pat_pixels);
  check(p.pixels.size() == pixels * p.channels);
  // Header (24 bytes, the name and its NUL) plus the pixels is the whole input.
  check(24 + p.name.size() + 1 + p.pixels.size() <= input_size);
  check(p.name.find('\0') == std::string::npos);
  const Eigen::ArrayXXd g = baypr::pattern_to_grey(p);
  check(g.rows() == static_cast<Eigen::Index>(p.height) &&
        g.cols() == static_cast<Eigen::Index>(p.width));
  check((g >= 0.0).all() && (g <= 1.0).all());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto bytes = std::as_bytes(std::span<const std::uint8_t>(data, size));
    exercise(baypr::parse_pat(bytes, "fuzz input"), size);
  } catch (const baypr::io_error&) {
  }
  return 0;
}
