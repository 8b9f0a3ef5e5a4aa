// baypr/io/detail/npy_write.hpp: .npy files encoded exactly as numpy.save writes them.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/io/detail/npy_data.hpp"
#include "baypr/io/detail/npy_header.hpp"
#include "baypr/io/npy_types.hpp"

namespace baypr::detail::npy {

// --- writing ---------------------------------------------------------------------------------

inline std::string descr_of(NpyType t) {
  const TypeInfo& i = info(t);
  std::string d;
  d.push_back(i.size == 1 ? '|' : '<');
  d.push_back(i.kind);
  d.append(std::to_string(i.size));
  return d;
}

// Shape checks for writing; returns the number of elements.
inline std::uint64_t checked_count(std::span<const std::int64_t> shape, std::size_t item,
                                   std::string_view function) {
  if (shape.size() > max_rank) {
    detail::throw_invalid(function, "shape",
                          "has " + std::to_string(shape.size()) + " dimensions, more than " +
                              std::to_string(max_rank));
  }
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()) / item;
  std::uint64_t product = 1;
  bool zero = false;
  for (const auto dim : shape) {
    if (dim < 0) {
      detail::throw_invalid(function, "shape",
                            "must have non-negative dimensions, got " + shape_string(shape));
    }
    const auto u = static_cast<std::uint64_t>(dim);
    if (u == 0) {
      zero = true;
      continue;
    }
    if (product > limit / u) {
      detail::throw_invalid(function, "shape", "overflows: " + shape_string(shape));
    }
    product *= u;
  }
  return zero ? 0 : product;
}

// NumPy's header, byte for byte (numpy/lib/format.py, _write_array_header, NumPy >= 1.23).
inline std::string encode_header(NpyType t, std::span<const std::int64_t> shape) {
  std::string dict = "{'descr': '" + descr_of(t) + "', 'fortran_order': False, 'shape': ";
  dict.append(shape_string(shape)).append(", }");
  if (!shape.empty()) {  // spare room to grow axis 0 in place (GROWTH_AXIS_MAX_DIGITS = 21)
    dict.append(21 - std::min<std::size_t>(21, std::to_string(shape[0]).size()), ' ');
  }
  const std::size_t hlen = dict.size() + 1;
  const std::size_t pad = 64 - (10 + hlen) % 64;  // 64, not 0, when already aligned (as NumPy)
  const std::size_t len = hlen + pad;             // < 65536: rank <= 32 bounds the dict
  std::string out(magic);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  out.append(dict).append(pad, ' ').push_back('\n');
  return out;
}

template <class T>
void append_little_endian(std::string& out, T v) {
  std::array<char, sizeof(T)> b;
  std::memcpy(b.data(), &v, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
  out.append(b.data(), b.size());
}

// `type` is type_of<T>() except for bool arrays, held as std::uint8_t.
template <class T>
std::string encode(std::span<const T> data, std::span<const std::int64_t> shape,
                   std::string_view function, NpyType type = type_of<T>()) {
  const std::uint64_t n = checked_count(shape, sizeof(T), function);
  if (data.size() != n) {
    detail::throw_invalid(function, "data",
                          "has " + std::to_string(data.size()) + " elements, shape " +
                              shape_string(shape) + " needs " + std::to_string(n));
  }
  std::string out = encode_header(type, shape);
  const std::size_t header = out.size();
  if constexpr (std::endian::native == std::endian::little) {
    out.resize(header + data.size_bytes());
    if (!data.empty()) std::memcpy(out.data() + header, data.data(), data.size_bytes());
  } else {
    out.reserve(header + data.size_bytes());
    for (const T v : data) append_little_endian(out, v);
  }
  return out;
}

template <class Derived>
std::string encode_matrix(const Eigen::DenseBase<Derived>& m, std::string_view function) {
  using Scalar = typename Derived::Scalar;
  static_assert(is_element_v<Scalar>,
                "baypr::encode_npy / write_npy: Scalar must be float, double or an integer type");
  const NpyMatrix<Scalar> rm = m.derived();
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(rm.rows()),
                                        static_cast<std::int64_t>(rm.cols())};
  return encode<Scalar>(std::span<const Scalar>(rm.data(), static_cast<std::size_t>(rm.size())),
                        shape, function);
}

inline std::string encode_array(const NpyArray& array, std::string_view function) {
  check_array(array, function);
  return std::visit(
      [&](const auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        return encode<T>(std::span<const T>(v), array.shape, function, array.type);
      },
      array.data);
}

}  // namespace baypr::detail::npy
