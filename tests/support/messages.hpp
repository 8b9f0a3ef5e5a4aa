// tests/support/messages.hpp: helpers for checking exception messages.
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace baypr::test {

// The what() of the exception f() throws, or "(no exception)".
template <class F>
std::string message_of(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace baypr::test
