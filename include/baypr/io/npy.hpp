// baypr/io/npy.hpp: read and write NumPy .npy files (Eigen only; no xtensor needed).
//
// The usual exchange with Python: embeddings exported with numpy.save(...) as (n, d) image
// embeddings or (n, p, d) patch embeddings, scores written back as float64.
//
//   NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view name = "buffer")
//   NpyArray parse_npy(std::string_view bytes, std::string_view name = "buffer")
//       decode a whole .npy file held in memory; never reads outside `bytes` (fuzzed)
//   NpyArray read_npy(path)                        the same from a file
//   NpyMatrix<Scalar> read_npy_matrix<Scalar = double>(path)
//       a 2-D array as a row-major matrix; a 1-D array (n,) becomes n x 1
//   NpyPatches<Scalar> read_npy_patches<Scalar = double>(path)
//       a 3-D array (n, p, d) as {n, p, d, (n*p) x d row-major matrix}
//   NpyEmbeddings<Scalar> read_npy_embeddings<Scalar = double>(path)
//       image embeddings (n, d) or patch embeddings (n, p, d), whichever the file holds, as
//       {rows (n*p) x d, images n, patches p (1 for 2-D), rank}
//   npy_matrix<Scalar>(const NpyArray&), npy_patches<Scalar>(const NpyArray&),
//   npy_embeddings<Scalar>(const NpyArray&)
//       the same conversions for an array already parsed (e.g. from memory)
//   void write_npy(path, const Eigen::DenseBase<D>& m)           2-D, shape (rows, cols)
//   void write_npy(path, std::span<const T> data, shape)         any shape, data in C order
//   void write_npy(path, const std::vector<T>& data, shape)
//   void write_npy(path, const NpyArray& array)
//   std::string encode_npy(...)                    the bytes write_npy writes, same overloads
//
// Reading. Format versions 1.0, 2.0 and 3.0. Element types (descr): float32 '<f4', float64
// '<f8', bool '|b1', int8 '|i1', uint8 '|u1', int16/32/64 '<i2' '<i4' '<i8', uint16/32/64 '<u2'
// '<u4' '<u8'; byte order '<', '>' (big-endian data is byte-swapped on reading) or '=' (native),
// and '|' for the 1-byte types. Rejected: float16, long double, complex, strings, objects,
// datetimes, structured dtypes, '|' on a multi-byte type, and descr spellings NumPy never writes
// ('float64', 'f8', '<d'). Any rank 0..32 (NumPy's limit) in C or Fortran order; `NpyArray::data`
// is always in C (row-major) order and native byte order, so Fortran-order files come back
// transposed into C order. bool bytes other than 0 are read as 1. Values are returned as stored:
// NaN and Inf in a float file are kept (the scorers reject them where it matters).
//
// The header must be a Python dict literal with exactly the keys 'descr' (a string),
// 'fortran_order' (True / False) and 'shape' (a tuple of non-negative decimal integers), in any
// order, single- or double-quoted keys, optional trailing commas, then only whitespace (the
// trailing newline and the alignment padding are accepted but not required). A Python 2 'L' suffix
// on a dimension is accepted in versions 1.0 / 2.0, as NumPy does. Rejected, each with its own
// message: bad magic, unsupported version, a header longer than the file, anything else in the
// header (non-ASCII bytes, escapes, comments, missing / unknown / duplicate keys, a shape that is
// not a tuple), negative dimensions, dimensions whose product (times the element size) overflows,
// data shorter than the shape says (truncated), and bytes after the data (trailing garbage: NumPy
// never writes them, so they mean a damaged or mis-concatenated file).
//
// Writing. C order, little-endian, element type from the C++ type (double '<f8', float '<f4',
// integers '|i1' ... '<u8'), version 1.0 header in NumPy's exact layout (NumPy >= 1.23: the dict,
// growth-axis spare spaces, padding to a multiple of 64 bytes, a final newline), so the file is
// byte-for-byte what numpy.save writes for the same array. Non-finite values are written as they
// are. The bytes go to a temporary file in the same directory which is then renamed over the
// target, so a failed write leaves the old file (or nothing), never half a file.
//
// Errors. A file that cannot be opened / read / written, and every malformed or unsupported .npy
// content: baypr::io_error (a std::runtime_error). Asking for the wrong rank (read_npy_matrix on a
// 3-D file) or writing data whose size does not match the shape: baypr::invalid_argument. Values
// that do not convert exactly to the requested type (int64 beyond 2^53 into double, 1.5 into an
// integer, a double beyond float's range into float): baypr::numerical_error. Messages read
// "<function>: <file 'path' | 'name'>: <what is wrong>" (the shared dialect of
// baypr/io/detail/file.hpp; `name` is parse_npy's, "buffer" by default).
//
// Layout: the value types are in baypr/io/npy_types.hpp; the header parser, the decoder and the
// encoder in baypr/io/detail/npy_{header,data,write}.hpp.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "baypr/io/detail/file.hpp"
#include "baypr/io/detail/npy_data.hpp"
#include "baypr/io/detail/npy_header.hpp"
#include "baypr/io/detail/npy_write.hpp"
#include "baypr/io/npy_types.hpp"

namespace baypr {

template <class T>
std::vector<T> NpyArray::as() const {
  static_assert(detail::npy::is_element_v<T>,
                "baypr::NpyArray::as: T must be float, double or an integer type");
  detail::npy::check_array(*this, "baypr::NpyArray::as");
  std::vector<T> out(detail::npy::data_size(data));
  detail::npy::convert_into(*this, out.data(), "baypr::NpyArray::as", "array");
  return out;
}

// --- reading ---------------------------------------------------------------------------------

// Decodes a complete .npy file held in memory. `name` is used in error messages only.
[[nodiscard]] inline NpyArray parse_npy(std::span<const std::byte> bytes,
                                        std::string_view name = "buffer") {
  return detail::npy::parse_bytes(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
      "baypr::parse_npy", detail::io::buffer_source(name));
}
[[nodiscard]] inline NpyArray parse_npy(std::string_view bytes, std::string_view name = "buffer") {
  return detail::npy::parse_bytes(bytes, "baypr::parse_npy", detail::io::buffer_source(name));
}

[[nodiscard]] inline NpyArray read_npy(const std::filesystem::path& path) {
  return detail::npy::read_file(path, "baypr::read_npy");
}

// A 1-D (n,) or 2-D (n, d) array as an n x 1 or n x d row-major matrix of Scalar.
template <class Scalar = double>
[[nodiscard]] NpyMatrix<Scalar> npy_matrix(const NpyArray& array) {
  return detail::npy::to_matrix<Scalar>(array, "baypr::npy_matrix", "array", "array");
}
template <class Scalar = double>
[[nodiscard]] NpyMatrix<Scalar> read_npy_matrix(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_npy_matrix";
  return detail::npy::to_matrix<Scalar>(detail::npy::read_file(path, function), function, "path",
                                        detail::npy::file_source(path));
}

// A 3-D (n, p, d) array as n, p, d and the (n * p) x d row-major matrix of its rows.
template <class Scalar = double>
[[nodiscard]] NpyPatches<Scalar> npy_patches(const NpyArray& array) {
  return detail::npy::to_patches<Scalar>(array, "baypr::npy_patches", "array", "array");
}
template <class Scalar = double>
[[nodiscard]] NpyPatches<Scalar> read_npy_patches(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_npy_patches";
  return detail::npy::to_patches<Scalar>(detail::npy::read_file(path, function), function, "path",
                                         detail::npy::file_source(path));
}

// A 2-D (n, d) or 3-D (n, p, d) array as embeddings; any other rank is an invalid_argument naming
// the shape.
template <class Scalar = double>
[[nodiscard]] NpyEmbeddings<Scalar> npy_embeddings(const NpyArray& array) {
  return detail::npy::to_embeddings<Scalar>(array, "baypr::npy_embeddings", "array", "array");
}
template <class Scalar = double>
[[nodiscard]] NpyEmbeddings<Scalar> read_npy_embeddings(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_npy_embeddings";
  return detail::npy::to_embeddings<Scalar>(detail::npy::read_file(path, function), function,
                                            "path", detail::npy::file_source(path));
}

// --- writing ---------------------------------------------------------------------------------

// The .npy bytes of `data` (C order) with the given shape.
template <class T>
[[nodiscard]] std::string encode_npy(std::span<const T> data,
                                     const std::vector<std::int64_t>& shape) {
  return detail::npy::encode<T>(data, shape, "baypr::encode_npy");
}
template <class T, class Alloc>
[[nodiscard]] std::string encode_npy(const std::vector<T, Alloc>& data,
                                     const std::vector<std::int64_t>& shape) {
  return detail::npy::encode<T>(std::span<const T>(data), shape, "baypr::encode_npy");
}

// A matrix (any Eigen expression, either storage order) as a 2-D (rows, cols) array; a vector
// is a matrix too: an n x 1 column is written with shape (n, 1).
template <class Derived>
[[nodiscard]] std::string encode_npy(const Eigen::DenseBase<Derived>& m) {
  return detail::npy::encode_matrix(m, "baypr::encode_npy");
}

// An NpyArray, in C order with its element type (little-endian); fortran_order is ignored since
// `data` is in C order.
[[nodiscard]] inline std::string encode_npy(const NpyArray& array) {
  return detail::npy::encode_array(array, "baypr::encode_npy");
}

template <class T>
void write_npy(const std::filesystem::path& path, std::span<const T> data,
               const std::vector<std::int64_t>& shape) {
  const std::string bytes = detail::npy::encode<T>(data, shape, "baypr::write_npy");
  detail::io::write_atomically(path, bytes, "baypr::write_npy");
}
template <class T, std::size_t Extent>
requires(!std::is_const_v<T>) void write_npy(const std::filesystem::path& path,
                                             std::span<T, Extent> data,
                                             const std::vector<std::int64_t>& shape) {
  write_npy(path, std::span<const T>(data.data(), data.size()), shape);
}
template <class T, class Alloc>
void write_npy(const std::filesystem::path& path, const std::vector<T, Alloc>& data,
               const std::vector<std::int64_t>& shape) {
  write_npy(path, std::span<const T>(data), shape);
}
template <class Derived>
void write_npy(const std::filesystem::path& path, const Eigen::DenseBase<Derived>& m) {
  const std::string bytes = detail::npy::encode_matrix(m, "baypr::write_npy");
  detail::io::write_atomically(path, bytes, "baypr::write_npy");
}
inline void write_npy(const std::filesystem::path& path, const NpyArray& array) {
  const std::string bytes = detail::npy::encode_array(array, "baypr::write_npy");
  detail::io::write_atomically(path, bytes, "baypr::write_npy");
}

}  // namespace baypr
