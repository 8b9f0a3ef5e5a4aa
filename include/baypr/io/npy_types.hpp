// baypr/io/npy_types.hpp: the value types of baypr/io/npy.hpp (NpyType, NpyArray, NpyMatrix,
// NpyPatches, NpyEmbeddings). Include baypr/io/npy.hpp to read and write them.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace baypr {

// The element types baypr reads and writes (see the list at the top of this file).
enum class NpyType : std::uint8_t {
  boolean,
  int8,
  uint8,
  int16,
  uint16,
  int32,
  uint32,
  int64,
  uint64,
  float32,
  float64
};

// One vector per element type; bool arrays are held as std::uint8_t (0 / 1) with
// NpyArray::type == NpyType::boolean.
using NpyData =
    std::variant<std::vector<float>, std::vector<double>, std::vector<std::int8_t>,
                 std::vector<std::uint8_t>, std::vector<std::int16_t>, std::vector<std::uint16_t>,
                 std::vector<std::int32_t>, std::vector<std::uint32_t>, std::vector<std::int64_t>,
                 std::vector<std::uint64_t>>;

// Row-major dynamic matrix, the layout of a C-order 2-D .npy array.
template <class Scalar>
using NpyMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A decoded .npy array.
struct NpyArray {
  std::vector<std::int64_t> shape;  // empty for a 0-D (scalar) array
  bool fortran_order = false;       // the layout in the file; `data` is always in C order
  std::string descr = "<f8";        // the dtype as the header spelled it, e.g. "<f4", ">f8"
  NpyType type = NpyType::float64;
  int version = 1;  // major format version of the file read (1, 2 or 3)
  NpyData data;     // C order, native byte order, size() elements

  [[nodiscard]] std::size_t rank() const { return shape.size(); }
  // Number of elements (1 for a 0-D array); parse_npy guarantees it does not overflow.
  [[nodiscard]] std::int64_t size() const {
    std::int64_t n = 1;
    for (const auto s : shape) n *= s;
    return n;
  }
  // The elements converted to T (float, double or an integer type), C order. Throws
  // baypr::numerical_error naming the element if a value does not convert exactly (double to
  // float rounds to nearest; only values beyond float's range are rejected).
  template <class T>
  [[nodiscard]] std::vector<T> as() const;
};

// A 3-D array (n, p, d) of patch embeddings: image i's patches are rows i*p .. i*p + p - 1.
template <class Scalar>
struct NpyPatches {
  Eigen::Index n = 0, p = 0, d = 0;
  NpyMatrix<Scalar> embeddings;  // (n * p) x d
  [[nodiscard]] auto image(Eigen::Index i) const { return embeddings.middleRows(i * p, p); }
};

// Embeddings of n images, as a scorer takes them: one row per image (a 2-D file, p = 1) or p patch
// rows per image (a 3-D file; image i's rows are i*p .. i*p + p - 1).
template <class Scalar>
struct NpyEmbeddings {
  NpyMatrix<Scalar> rows;    // (n * p) x d
  Eigen::Index images = 0;   // n
  Eigen::Index patches = 1;  // p
  std::size_t rank = 2;      // the file's: 2 for (n, d), 3 for (n, p, d)
};

}  // namespace baypr
