// baypr/io/xtensor.hpp: NpyArray <-> xt::xarray, for code that holds its tensors in xtensor.
// Optional layer: needs xtensor (Debian: xtensor-dev); CMake option BAYPR_WITH_XTENSOR, target
// baypr::xtensor.
//
//   xt::xarray<T> to_xarray<T>(const NpyArray&)      row-major, elements converted exactly
//   xt::xarray<T> read_npy_xarray<T>(path)           read_npy + to_xarray
//   NpyArray to_npy_array(const xt::xexpression<E>&) C order, element type = value_type
//   void write_npy(path, const xt::xexpression<E>&)  any rank
//   Eigen::Map<const NpyMatrix<T>> as_eigen_rows(const C& x)
//       a 2-D row-major xtensor container (xt::xtensor<T, 2>, xt::xarray<T>) as a row-major Eigen
//       matrix over the same memory, no copy: one row per sample, as the scorers take them
//
// Reading goes through baypr's validating parser (baypr/io/npy.hpp) rather than xtensor's own
// xt::load_npy, which in xtensor 0.24 does not check malformed headers or truncated data. The
// conversion rules and exceptions are those of NpyArray::as<T>.
#pragma once

#include <xtensor/xarray.hpp>
#include <xtensor/xexpression.hpp>
#include <xtensor/xtensor.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "baypr/io/npy.hpp"

namespace baypr {

template <class T>
using NpyXarray = xt::xarray<T, xt::layout_type::row_major>;

namespace detail::npy {

// The array as a row-major xarray of T: the one conversion behind to_xarray and read_npy_xarray.
template <class T>
[[nodiscard]] NpyXarray<T> to_xarray(const NpyArray& array, std::string_view function,
                                     std::string_view source) {
  static_assert(is_element_v<T>, "baypr::to_xarray: T must be float, double or an integer type");
  check_array(array, function);
  std::vector<std::size_t> shape;
  shape.reserve(array.rank());
  for (const auto d : array.shape) shape.push_back(static_cast<std::size_t>(d));
  auto x = NpyXarray<T>::from_shape(shape);
  convert_into(array, x.data(), function, source);
  return x;
}

}  // namespace detail::npy

template <class T = double>
[[nodiscard]] NpyXarray<T> to_xarray(const NpyArray& array) {
  return detail::npy::to_xarray<T>(array, "baypr::to_xarray", "array");
}

template <class T = double>
[[nodiscard]] NpyXarray<T> read_npy_xarray(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_npy_xarray";
  return detail::npy::to_xarray<T>(detail::npy::read_file(path, function), function,
                                   detail::io::file_source(path));
}

template <class E>
[[nodiscard]] NpyArray to_npy_array(const xt::xexpression<E>& expression) {
  using T = std::remove_cv_t<typename E::value_type>;
  static_assert(detail::npy::is_element_v<T>,
                "baypr::to_npy_array: value_type must be float, double or an integer type");
  const NpyXarray<T> x = expression.derived_cast();  // evaluated, row-major
  if (x.dimension() > detail::npy::max_rank) {
    detail::throw_invalid("baypr::to_npy_array", "expression",
                          "has " + std::to_string(x.dimension()) + " dimensions, more than " +
                              std::to_string(detail::npy::max_rank));
  }
  NpyArray a;
  a.type = detail::npy::type_of<T>();
  a.descr = detail::npy::descr_of(a.type);
  for (const auto d : x.shape()) a.shape.push_back(static_cast<std::int64_t>(d));
  a.data = std::vector<T>(x.data(), x.data() + x.size());
  return a;
}

template <class E>
void write_npy(const std::filesystem::path& path, const xt::xexpression<E>& expression) {
  write_npy(path, to_npy_array(expression));
}

// The map borrows x's memory: it is valid while x lives and is not resized. A container of another
// layout or rank is an invalid_argument (evaluate it into xt::xtensor<T, 2> first).
template <class C>
requires requires(const C& c) {
  c.data();
  c.dimension();
  C::static_layout;
}
[[nodiscard]] Eigen::Map<const NpyMatrix<typename C::value_type>> as_eigen_rows(const C& x) {
  constexpr std::string_view function = "baypr::as_eigen_rows";
  if (x.dimension() != 2) {
    detail::throw_invalid(
        function, "x",
        "must be 2-D (samples x features), got " + std::to_string(x.dimension()) + " dimensions");
  }
  if (x.layout() != xt::layout_type::row_major) {
    detail::throw_invalid(function, "x", "must be row-major (C order)");
  }
  return {x.data(), static_cast<Eigen::Index>(x.shape()[0]),
          static_cast<Eigen::Index>(x.shape()[1])};
}

}  // namespace baypr
