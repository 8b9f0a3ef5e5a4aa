// baypr/core/errors.hpp: the library's exception types and the argument checks every public
// function uses.
//
// Every message has the form "<function>: argument '<argument>' <what is wrong>, got <value>"
// (or names the offending row and column), so a user can find the bad input without a debugger.
// Checks run before any state is modified, which is how operations keep the strong guarantee.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "baypr/core/traits.hpp"

namespace baypr {

// Bad input: wrong shape, non-finite value, invalid hyper-parameter, incompatible objects.
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A valid request that cannot be carried out numerically, e.g. a Cholesky downdate that would
// make a scatter matrix indefinite. The object it was called on is left unchanged.
class numerical_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

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

[[noreturn]] inline void throw_invalid(std::string_view function, std::string_view argument,
                                       std::string_view what) {
  std::string msg;
  msg.reserve(function.size() + argument.size() + what.size() + 16);
  msg.append(function).append(": argument '").append(argument).append("' ").append(what);
  throw invalid_argument(msg);
}

[[noreturn]] inline void throw_numerical(std::string_view function, std::string_view what) {
  std::string msg(function);
  msg.append(": ").append(what);
  throw numerical_error(msg);
}

// Every entry finite; otherwise names the first offending row and column.
template <class Derived>
void check_finite(std::string_view function, std::string_view argument,
                  const Eigen::DenseBase<Derived>& m) {
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

inline void check_nonempty(std::string_view function, std::string_view argument,
                           Eigen::Index rows) {
  if (rows < 1) throw_invalid(function, argument, "must have at least one row, got 0");
}

}  // namespace detail
}  // namespace baypr
