// tests/support/finite_differences.hpp: the finite-difference reference shared by the gradient
// tests: five-point central differences (truncation error O(h^4)), so that the reference is good
// to about 1e-10 and a comparison tests the analytic gradient rather than the stencil.
#pragma once

#include <Eigen/Core>

namespace baypr::test {

template <class F>
Eigen::VectorXd central_difference(const F& f, const Eigen::VectorXd& x, double h) {
  Eigen::VectorXd g(x.size());
  auto at = [&](Eigen::Index i, double step) {
    Eigen::VectorXd y = x;
    y(i) += step;
    return f(y);
  };
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    g(i) = (8 * (at(i, h) - at(i, -h)) - (at(i, 2 * h) - at(i, -2 * h))) / (12 * h);
  }
  return g;
}

inline double relative_error(const Eigen::VectorXd& got, const Eigen::VectorXd& want) {
  return (got - want).norm() / want.norm();
}

}  // namespace baypr::test
