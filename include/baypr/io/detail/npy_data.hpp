// baypr/io/detail/npy_data.hpp: a .npy file's data decoded (byte order, Fortran order, bool),
// from memory or streamed from a file, and converted exactly to the requested element type.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/io/detail/file.hpp"
#include "baypr/io/detail/npy_header.hpp"
#include "baypr/io/npy_types.hpp"

namespace baypr::detail::npy {

// --- data ------------------------------------------------------------------------------------

template <class T>
void byte_swap(std::vector<T>& v) {
  for (auto& x : v) {
    std::array<unsigned char, sizeof(T)> b;
    std::memcpy(b.data(), &x, sizeof(T));
    std::reverse(b.begin(), b.end());
    std::memcpy(&x, b.data(), sizeof(T));
  }
}

// Fortran-order elements to C order (a general axis permutation; rank 0 and 1 are unchanged).
template <class T>
std::vector<T> fortran_to_c(const std::vector<T>& f, const std::vector<std::int64_t>& shape) {
  const std::size_t r = shape.size();
  if (r < 2 || f.empty()) return f;
  std::vector<std::size_t> stride(r), dim(r), idx(r, 0);
  std::size_t s = 1;
  for (std::size_t k = r; k-- > 0;) {
    dim[k] = static_cast<std::size_t>(shape[k]);
    stride[k] = s;
    s *= dim[k];
  }
  std::vector<T> c(f.size());
  std::size_t offset = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    c[offset] = f[i];
    for (std::size_t k = 0; k < r; ++k) {  // axis 0 varies fastest in Fortran order
      offset += stride[k];
      if (++idx[k] < dim[k]) break;
      offset -= stride[k] * dim[k];
      idx[k] = 0;
    }
  }
  return c;
}

// `fill(void* destination)` copies h.bytes raw bytes of data into the destination.
template <class Fill>
NpyArray decode(Header&& h, int major, Fill&& fill) {
  NpyArray a;
  a.version = major;
  a.type = h.type;
  a.fortran_order = h.fortran_order;
  dispatch(h.type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<T> v(static_cast<std::size_t>(h.elements));
    if (h.bytes > 0) fill(static_cast<void*>(v.data()));
    if (h.swap) byte_swap(v);
    if (h.type == NpyType::boolean) {
      for (auto& x : v) x = static_cast<T>(x != 0 ? 1 : 0);
    }
    if (h.fortran_order) v = fortran_to_c(v, h.shape);
    a.data = std::move(v);
  });
  a.shape = std::move(h.shape);
  a.descr = std::move(h.descr);
  return a;
}

inline void check_data_size(const Header& h, std::uint64_t available, std::string_view function,
                            std::string_view source) {
  if (available < h.bytes) {
    fail(function, source,
         "truncated data: shape " + shape_string(h.shape) + " of " + info(h.type).name + " needs " +
             std::to_string(h.bytes) + " bytes after the header, the file has " +
             std::to_string(available));
  }
  if (available > h.bytes) {
    fail(function, source,
         "trailing garbage: " + std::to_string(available - h.bytes) +
             " byte(s) after the data of shape " + shape_string(h.shape) + " of " +
             info(h.type).name + " (" + std::to_string(h.bytes) + " bytes)");
  }
}

inline NpyArray parse_bytes(std::string_view bytes, std::string_view function,
                            std::string_view source) {
  const Preamble p = parse_preamble(bytes.substr(0, 12), bytes.size(), function, source);
  const std::string_view text = bytes.substr(p.header_begin, p.header_size);
  Header h = HeaderParser(text, p.major, function, source).parse();
  const std::size_t data_begin = p.header_begin + p.header_size;
  check_data_size(h, bytes.size() - data_begin, function, source);
  const char* data = bytes.data() + data_begin;
  const auto n = static_cast<std::size_t>(h.bytes);
  return decode(std::move(h), p.major, [&](void* out) { std::memcpy(out, data, n); });
}

inline NpyArray read_file(const std::filesystem::path& path, std::string_view function) {
  const std::string source = file_source(path);
  io::InputFile file = io::open_input(path, function);
  std::ifstream& in = file.stream;
  if (!file.regular) {  // a pipe or device: read it all, then parse
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(function, source, "read error");
    return parse_bytes(all, function, source);
  }
  const std::uint64_t total = file.size;
  auto read_exactly = [&](char* out, std::uint64_t n, std::string_view what) {
    in.read(out, static_cast<std::streamsize>(n));
    if (static_cast<std::uint64_t>(in.gcount()) != n) {
      fail(function, source,
           "truncated while reading the " + std::string(what) + " (the file changed size?)");
    }
  };
  std::array<char, 12> head{};
  const auto head_size = static_cast<std::size_t>(std::min<std::uint64_t>(total, head.size()));
  read_exactly(head.data(), head_size, "preamble");
  const Preamble p =
      parse_preamble(std::string_view(head.data(), head_size), total, function, source);
  std::string text(p.header_size, '\0');
  const std::size_t already = head_size - std::min(head_size, p.header_begin);
  std::copy_n(head.data() + p.header_begin, std::min(already, p.header_size), text.data());
  if (p.header_size > already) {
    read_exactly(text.data() + already, p.header_size - already, "header");
  } else if (already > p.header_size) {
    in.seekg(static_cast<std::streamoff>(p.header_begin + p.header_size));
  }
  Header h = HeaderParser(text, p.major, function, source).parse();
  // Size checks against the file size come before allocating, so a header claiming a huge
  // shape never allocates more than the file holds.
  check_data_size(h, total - p.header_begin - p.header_size, function, source);
  const std::uint64_t n = h.bytes;
  NpyArray a = decode(std::move(h), p.major,
                      [&](void* out) { read_exactly(static_cast<char*>(out), n, "data"); });
  if (in.peek() != std::char_traits<char>::eof()) {
    fail(function, source, "trailing garbage after the data (the file grew while reading?)");
  }
  return a;
}

// --- conversions -----------------------------------------------------------------------------

template <class From>
std::string element_string(From v) {
  if constexpr (std::is_floating_point_v<From>) {
    return format_value(static_cast<double>(v));
  } else {
    return std::to_string(v);
  }
}

template <class To, class From>
To convert(From v, std::size_t index, NpyType from_type, std::string_view function,
           std::string_view source) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else {
    auto reject = [&](std::string_view why) {
      std::string msg(function);
      msg.append(": ").append(source).append(": element ").append(std::to_string(index));
      msg.append(" (C order) = ").append(element_string(v)).append(" (");
      msg.append(info(from_type).name).append(") ").append(why);
      msg.append(" ").append(info(type_of<To>()).name);
      throw numerical_error(msg);
    };
    if constexpr (std::is_floating_point_v<To> && std::is_floating_point_v<From>) {
      if constexpr (sizeof(To) < sizeof(From)) {
        if (std::isfinite(v) && std::abs(v) > static_cast<From>(std::numeric_limits<To>::max())) {
          reject("is beyond the range of");
        }
      }
      return static_cast<To>(v);
    } else if constexpr (std::is_floating_point_v<To>) {  // integer to floating
      if constexpr (std::numeric_limits<From>::digits <= std::numeric_limits<To>::digits) {
        return static_cast<To>(v);
      } else {
        const To r = static_cast<To>(v);
        // max() = 2^k - 1 rounds up to 2^k, so `<` is the exact range test.
        const bool in_range = r >= static_cast<To>(std::numeric_limits<From>::min()) &&
                              r < static_cast<To>(std::numeric_limits<From>::max());
        if (!in_range || static_cast<From>(r) != v) reject("is not exactly representable as");
        return r;
      }
    } else if constexpr (std::is_floating_point_v<From>) {  // floating to integer
      const From upper = std::ldexp(From{1}, std::numeric_limits<To>::digits);
      if (!std::isfinite(v) || v != std::trunc(v) ||
          v < static_cast<From>(std::numeric_limits<To>::min()) || v >= upper) {
        reject("is not exactly representable as");
      }
      return static_cast<To>(v);
    } else {  // integer to integer
      if (!std::in_range<To>(v)) reject("is out of the range of");
      return static_cast<To>(v);
    }
  }
}

template <class To>
void convert_into(const NpyArray& a, To* out, std::string_view function, std::string_view source) {
  std::visit(
      [&](const auto& v) {
        using From = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_same_v<From, To>) {
          std::copy(v.begin(), v.end(), out);
        } else {
          for (std::size_t i = 0; i < v.size(); ++i) {
            out[i] = convert<To>(v[i], i, a.type, function, source);
          }
        }
      },
      a.data);
}

inline std::size_t data_size(const NpyData& d) {
  return std::visit([](const auto& v) { return v.size(); }, d);
}

// Shape and data agree (a hand-built NpyArray may not); the shape itself is valid.
inline void check_array(const NpyArray& a, std::string_view function) {
  if (a.rank() > max_rank) {
    detail::throw_invalid(
        function, "array",
        "has rank " + std::to_string(a.rank()) + ", more than " + std::to_string(max_rank));
  }
  std::uint64_t product = 1;
  bool zero = false;
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()) / 8;
  for (const auto dim : a.shape) {
    if (dim < 0) {
      detail::throw_invalid(function, "array",
                            "has a negative dimension in shape " + shape_string(a.shape));
    }
    const auto u = static_cast<std::uint64_t>(dim);
    if (u == 0) {
      zero = true;
      continue;
    }
    if (product > limit / u) {
      detail::throw_invalid(function, "array",
                            "has shape " + shape_string(a.shape) + " whose size overflows");
    }
    product *= u;
  }
  const std::uint64_t n = zero ? 0 : product;
  if (data_size(a.data) != n) {
    detail::throw_invalid(function, "array",
                          "has shape " + shape_string(a.shape) + " (" + std::to_string(n) +
                              " elements) but " + std::to_string(data_size(a.data)) +
                              " data elements");
  }
  const bool type_matches = dispatch(a.type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return std::holds_alternative<std::vector<T>>(a.data);
  });
  if (!type_matches) {
    detail::throw_invalid(
        function, "array",
        std::string("has type ") + info(a.type).name + " but its data holds another element type");
  }
}

template <class Scalar>
NpyMatrix<Scalar> to_matrix(const NpyArray& a, std::string_view function, std::string_view argument,
                            std::string_view source) {
  static_assert(is_element_v<Scalar>,
                "baypr::read_npy_matrix: Scalar must be float, double or "
                "an integer type");
  check_array(a, function);
  if (a.rank() != 1 && a.rank() != 2) {
    detail::throw_invalid(function, argument,
                          "(" + std::string(source) + ") must hold a 1-D or 2-D array, got shape " +
                              shape_string(a.shape));
  }
  const auto rows = static_cast<Eigen::Index>(a.shape[0]);
  const auto cols = a.rank() == 2 ? static_cast<Eigen::Index>(a.shape[1]) : Eigen::Index{1};
  NpyMatrix<Scalar> m(rows, cols);
  convert_into(a, m.data(), function, source);
  return m;
}

template <class Scalar>
NpyPatches<Scalar> to_patches(const NpyArray& a, std::string_view function,
                              std::string_view argument, std::string_view source) {
  static_assert(is_element_v<Scalar>,
                "baypr::read_npy_patches: Scalar must be float, double or "
                "an integer type");
  check_array(a, function);
  if (a.rank() != 3) {
    detail::throw_invalid(function, argument,
                          "(" + std::string(source) +
                              ") must hold a 3-D array (n, p, d), got shape " +
                              shape_string(a.shape));
  }
  NpyPatches<Scalar> out;
  out.n = static_cast<Eigen::Index>(a.shape[0]);
  out.p = static_cast<Eigen::Index>(a.shape[1]);
  out.d = static_cast<Eigen::Index>(a.shape[2]);
  out.embeddings.resize(out.n * out.p, out.d);
  convert_into(a, out.embeddings.data(), function, source);
  return out;
}

template <class Scalar>
NpyEmbeddings<Scalar> to_embeddings(const NpyArray& a, std::string_view function,
                                    std::string_view argument, std::string_view source) {
  check_array(a, function);
  NpyEmbeddings<Scalar> out;
  out.rank = a.rank();
  if (a.rank() == 2) {
    out.rows = to_matrix<Scalar>(a, function, argument, source);
    out.images = out.rows.rows();
  } else if (a.rank() == 3) {
    NpyPatches<Scalar> p = to_patches<Scalar>(a, function, argument, source);
    out.images = p.n;
    out.patches = p.p;
    out.rows = std::move(p.embeddings);
  } else {
    detail::throw_invalid(function, argument,
                          "(" + std::string(source) +
                              ") must hold a 2-D (n, d) or 3-D (n, p, d) array, got shape " +
                              shape_string(a.shape));
  }
  return out;
}

}  // namespace baypr::detail::npy
