// baypr/core/exceptions.hpp: the library's exception types and the two throw helpers that word
// their messages. Standard C++ only (no Eigen), so that code compiled by other compilers (nvcc's
// host pass for the CUDA layer) can throw baypr's exceptions; <baypr/core/errors.hpp> adds the
// argument checks on top.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

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

// A file that cannot be read or written, or whose content is malformed or unsupported.
class io_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

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

}  // namespace detail
}  // namespace baypr
