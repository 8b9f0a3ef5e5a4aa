// baypr/core/traits.hpp: scalar traits shared by every layer.
//
// The library is templated on Scalar: float, double, and forward-mode dual numbers such as
// Eigen::AutoDiffScalar (possibly nested, for higher derivatives). These helpers let generic code
// read the plain value of any of them, e.g. to print it in an error message or to decide a branch.
#pragma once

#include <Eigen/Core>
#include <concepts>
#include <type_traits>

namespace baypr {

// The plain double value of a scalar: the scalar itself for arithmetic types, the value part
// (recursively) for dual numbers that expose value().
template <class T>
[[nodiscard]] constexpr double value_of(const T& x) {
  if constexpr (std::is_arithmetic_v<T>) {
    return static_cast<double>(x);
  } else {
    return value_of(x.value());
  }
}

// True for plain floating-point scalars, where special-function fast paths may be used.
template <class T>
inline constexpr bool is_plain_scalar_v = std::is_floating_point_v<T>;

// The innermost plain floating type under a (possibly nested) dual scalar.
template <class T, class = void>
struct plain_scalar {
  using type = T;
};
template <class T>
struct plain_scalar<T, std::enable_if_t<!std::is_arithmetic_v<T>>> {
  using type =
      typename plain_scalar<std::remove_cvref_t<decltype(std::declval<T>().value())>>::type;
};
template <class T>
using plain_scalar_t = typename plain_scalar<T>::type;

// A count (sample size, dimension) as a Scalar. Goes through the plain floating type, because dual
// numbers convert from their real type only (a direct cast from an integer narrows).
template <class Scalar>
[[nodiscard]] Scalar from_index(Eigen::Index i) {
  return Scalar(static_cast<plain_scalar_t<Scalar>>(i));
}

}  // namespace baypr
