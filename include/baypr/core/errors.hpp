// baypr/core/errors.hpp: the argument checks every public function uses (the exception types
// are in <baypr/core/exceptions.hpp>, included here).
//
// Every message has the form "<function>: argument '<argument>' <what is wrong>, got <value>"
// (or names the offending row and column), so a user can find the bad input without a debugger.
// Checks run before any state is modified, which is how operations keep the strong guarantee.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "baypr/core/exceptions.hpp"
#include "baypr/core/traits.hpp"

namespace baypr::detail {

inline std::string format_value(double v) {
  std::ostringstream os;
  os.precision(12);
  os << v;
  return os.str();
}

template <class T>
std::string format_value(const T& v) {
  if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else {
    return format_value(value_of(v));
  }
}

// Whether every entry of a float or double matrix is finite, in one vectorised pass: x * 0 is
// exactly 0 for finite x and NaN for NaN or +-Inf, so the sum is 0 exactly when all entries are
// finite. (Eigen 3.4's allFinite() tests x - x for NaN by comparing it with itself and reducing
// with all(), a scalar loop; this sum is vectorised and several times faster on long vectors.)
template <class Derived>
[[nodiscard]] bool all_finite(const Eigen::DenseBase<Derived>& m) {
  using Scalar = typename Derived::Scalar;
  static_assert(std::is_floating_point_v<Scalar>,
                "baypr::detail::all_finite: float or double entries");
  return (m.derived() * Scalar(0)).sum() == Scalar(0);
}

// Every entry finite; otherwise names the first offending row and column. The one finite check of
// the library: floating-point matrices take all_finite's vectorised pass first, so the row-by-row
// search below (strided) runs only to name an entry that is already known to be bad.
template <class Derived>
void check_finite(std::string_view function, std::string_view argument,
                  const Eigen::DenseBase<Derived>& m) {
  if constexpr (std::is_floating_point_v<typename Derived::Scalar>) {
    if (all_finite(m)) return;
  }
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    for (Eigen::Index j = 0; j < m.cols(); ++j) {
      const double v = value_of(m.coeff(i, j));
      if (!std::isfinite(v)) {
        throw_invalid(function, argument,
                      "must be finite, got " + format_value(v) + " at row " + std::to_string(i) +
                          ", column " + std::to_string(j));
      }
    }
  }
}

template <class T>
void check_finite_scalar(std::string_view function, std::string_view argument, const T& x) {
  if (!std::isfinite(value_of(x))) {
    throw_invalid(function, argument, "must be finite, got " + format_value(x));
  }
}

template <class T>
void check_positive(std::string_view function, std::string_view argument, const T& x) {
  const double v = value_of(x);
  if (!(v > 0.0) || !std::isfinite(v)) {
    throw_invalid(function, argument, "must be finite and > 0, got " + format_value(v));
  }
}

inline void check_size(std::string_view function, std::string_view argument,
                       std::string_view dimension, Eigen::Index got, Eigen::Index expected) {
  if (got != expected) {
    throw_invalid(function, argument,
                  "has " + std::string(dimension) + " " + std::to_string(got) + ", expected " +
                      std::to_string(expected));
  }
}

// Query labels, the one check of integer labels: `expected` entries (a std::vector<int>,
// Eigen::VectorXi or any range of integers), each 0 (normal) or 1 (anomalous); returns how many
// are 1. Otherwise names the size or the first bad entry. (Metrics take any real label type and
// check it as they collect the samples, eval/metrics.hpp.)
template <class Labels>
Eigen::Index check_binary_labels(std::string_view function, std::string_view argument,
                                 const Labels& labels, Eigen::Index expected) {
  check_size(function, argument, "size", static_cast<Eigen::Index>(labels.size()), expected);
  Eigen::Index index = 0, ones = 0;
  for (const auto y : labels) {
    if (y != 0 && y != 1) {
      throw_invalid(function, argument,
                    "must be 0 (normal) or 1 (anomalous), got " + std::to_string(y) + " at index " +
                        std::to_string(index));
    }
    if (y == 1) ++ones;
    ++index;
  }
  return ones;
}

// A scorer (or other fitted model) used before fit: names the call that fits it.
inline void check_fitted(std::string_view function, bool fitted, std::string_view fit_call) {
  if (!fitted)
    throw_invalid(function, "this", "is not fitted: call " + std::string(fit_call) + " first");
}

// An index into a container of `size` entries.
inline void check_index(std::string_view function, std::string_view argument, std::size_t index,
                        std::size_t size) {
  if (index >= size) {
    throw_invalid(function, argument,
                  "must be < " + std::to_string(size) + ", got " + std::to_string(index));
  }
}

inline void check_nonempty(std::string_view function, std::string_view argument,
                           Eigen::Index rows) {
  if (rows < 1) throw_invalid(function, argument, "must have at least one row, got 0");
}

// A square matrix symmetric to a relative tolerance (dummy_precision of the plain scalar times the
// largest magnitude); otherwise names the first asymmetric pair.
template <class Derived>
void check_symmetric(std::string_view function, std::string_view argument,
                     const Eigen::MatrixBase<Derived>& m) {
  using Scalar = typename Derived::Scalar;
  double max_abs = 0.0;
  for (Eigen::Index j = 0; j < m.cols(); ++j) {
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      max_abs = std::max(max_abs, std::abs(value_of(m(i, j))));
  }
  const double tol = Eigen::NumTraits<plain_scalar_t<Scalar>>::dummy_precision() * max_abs;
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    for (Eigen::Index j = 0; j < i; ++j) {
      if (std::abs(value_of(m(i, j)) - value_of(m(j, i))) > tol) {
        throw_invalid(function, argument,
                      "must be symmetric, but entry (" + std::to_string(i) + ", " +
                          std::to_string(j) + ") = " + format_value(m(i, j)) + " differs from (" +
                          std::to_string(j) + ", " + std::to_string(i) +
                          ") = " + format_value(m(j, i)));
      }
    }
  }
}

// The diagonal of a Cholesky factor: every pivot finite and > 0, else the matrix it came from
// is not (numerically) positive definite. Returns the first bad pivot, or -1.
template <class Derived>
Eigen::Index first_bad_pivot(const Eigen::MatrixBase<Derived>& factor) {
  for (Eigen::Index i = 0; i < factor.rows(); ++i) {
    const double v = value_of(factor(i, i));
    if (!(v > 0.0) || !std::isfinite(v)) return i;
  }
  return -1;
}

template <class Derived>
bool cholesky_pivots_positive(const Eigen::MatrixBase<Derived>& factor) {
  return first_bad_pivot(factor) < 0;
}

template <class Derived>
void check_cholesky_pivots(std::string_view function, std::string_view argument,
                           const Eigen::MatrixBase<Derived>& factor) {
  const Eigen::Index i = first_bad_pivot(factor);
  if (i >= 0) {
    throw_invalid(function, argument,
                  "must be positive definite, but its Cholesky pivot " + std::to_string(i) +
                      " is " + format_value(factor(i, i)));
  }
}

}  // namespace baypr::detail
