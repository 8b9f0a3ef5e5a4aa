// libFuzzer target for baypr/io/npy.hpp: any byte string given to baypr::parse_npy either decodes
// or throws one of baypr's exceptions. Any other exception, a crash, a sanitizer report or a
// broken round trip is a finding. Built and run by scripts/fuzz:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//     -isystem /usr/include/eigen3 tests/fuzz/npy.fuzz.cpp -o build/fuzz/npy.fuzz
//   build/fuzz/npy.fuzz -max_total_time=20 corpus/ tests/reference/npy/
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <variant>

#include "baypr/io/npy.hpp"

namespace {

// Bitwise equality of the data (NaN payloads and signed zeros included).
bool same_data(const baypr::NpyArray& a, const baypr::NpyArray& b) {
  if (a.data.index() != b.data.index()) return false;
  return std::visit(
      [&](const auto& va) {
        const auto& vb = std::get<std::decay_t<decltype(va)>>(b.data);
        return va.size() == vb.size() &&
               (va.empty() || std::memcmp(va.data(), vb.data(), va.size() * sizeof(va[0])) == 0);
      },
      a.data);
}

void check(bool ok) {
  if (!ok) std::abort();  // an invariant broken: libFuzzer reports the input
}

void exercise(const baypr::NpyArray& a) {
  // Invariants of a successful parse.
  check(a.rank() <= 32);
  check(static_cast<std::size_t>(a.size()) ==
        std::visit([](const auto& v) { return v.size(); }, a.data));
  // Re-encoding gives a file that parses to the same array, and encodes identically again.
  const std::string bytes = baypr::encode_npy(a);
  const baypr::NpyArray b = baypr::parse_npy(bytes, "re-encoded");
  check(b.shape == a.shape && b.type == a.type && same_data(a, b));
  check(baypr::encode_npy(b) == bytes);
  // Conversions either succeed or throw numerical_error / invalid_argument.
  try {
    (void)a.as<double>();
  } catch (const baypr::numerical_error&) {
  }
  try {
    (void)a.as<float>();
  } catch (const baypr::numerical_error&) {
  }
  try {
    (void)a.as<std::int32_t>();
  } catch (const baypr::numerical_error&) {
  }
  try {
    (void)baypr::npy_matrix<double>(a);
  } catch (const baypr::invalid_argument&) {
  } catch (const baypr::numerical_error&) {
  }
  try {
    (void)baypr::npy_patches<float>(a);
  } catch (const baypr::invalid_argument&) {
  } catch (const baypr::numerical_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    exercise(baypr::parse_npy(bytes, "fuzz input"));
  } catch (const baypr::io_error&) {
  } catch (const baypr::invalid_argument&) {
  } catch (const baypr::numerical_error&) {
  }
  return 0;
}
