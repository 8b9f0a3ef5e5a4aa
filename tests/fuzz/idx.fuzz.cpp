// libFuzzer target for baypr/io/idx.hpp: any byte string given to baypr::parse_idx (plain or
// gzip-compressed IDX) either decodes to a consistent array or throws baypr::io_error; so do the
// idx_images / idx_labels views of a decoded array. Any other exception, a crash, a sanitizer
// report or a broken invariant is a finding. Built and run by scripts/fuzz (target "idx"); idx.hpp
// gunzips through zlib, so the target links -lz:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//     -isystem /usr/include/eigen3 tests/fuzz/idx.fuzz.cpp -lz -o build/fuzz/idx.fuzz
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>

#include "baypr/io/idx.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();  // an invariant broken: libFuzzer reports the input
}

void exercise(const baypr::IdxArray& a, std::size_t input_size, bool gzipped) {
  check(!a.dims.empty() && a.dims.size() <= 255);
  std::uint64_t count = 1;
  for (const std::uint32_t d : a.dims) count *= d;  // at most max_idx_bytes, so no overflow
  check(count <= baypr::max_idx_bytes);
  check(a.data.size() == count);
  // A plain file is the 4 + 4 * rank header and the data, nothing more.
  if (!gzipped) check(4 + 4 * a.dims.size() + a.data.size() == input_size);
  try {
    const baypr::IdxImages images = baypr::idx_images(a, "fuzz input");
    check(a.dims.size() == 3);
    check(images.rows == static_cast<Eigen::Index>(a.dims[1]) &&
          images.cols == static_cast<Eigen::Index>(a.dims[2]));
    check(images.pixels.rows() == static_cast<Eigen::Index>(a.dims[0]));
    check(images.pixels.cols() == images.rows * images.cols);
    const Eigen::MatrixXd unit = baypr::to_unit_interval(images);
    check(unit.size() == 0 || (unit.minCoeff() >= 0.0 && unit.maxCoeff() <= 1.0));
  } catch (const baypr::io_error&) {
  }
  try {
    const Eigen::VectorXi labels = baypr::idx_labels(a, "fuzz input");
    check(labels.size() == static_cast<Eigen::Index>(a.data.size()));
    check(labels.size() == 0 || (labels.minCoeff() >= 0 && labels.maxCoeff() <= 255));
    check(a.dims.size() == 1);
  } catch (const baypr::io_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  const bool gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  std::optional<baypr::IdxArray> from_span, from_view;
  try {
    from_span = baypr::parse_idx(bytes, "fuzz input");
  } catch (const baypr::io_error&) {
  }
  // The string_view overload must give the same answer.
  try {
    from_view =
        baypr::parse_idx(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input");
  } catch (const baypr::io_error&) {
  }
  check(from_span.has_value() == from_view.has_value());
  if (from_span) {
    check(from_span->dims == from_view->dims && from_span->data == from_view->data);
    exercise(*from_span, size, gzipped);
  }
  return 0;
}
