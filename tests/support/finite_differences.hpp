// tests/support/finite_differences.hpp: what the meta-learning gradient tests share: the
// finite-difference reference (five-point central differences, truncation error O(h^4), so that
// the reference is good to about 1e-10 and a comparison tests the analytic gradient rather than
// the stencil), the relative error, and standard normal test matrices from a seeded engine.
#pragma once

#include <Eigen/Core>
#include <random>

namespace baypr::test {

// An r x c matrix of standard normal draws, filled column by column.
inline Eigen::MatrixXd normal_matrix(Eigen::Index r, Eigen::Index c, std::mt19937_64& rng) {
  std::normal_distribution<double> nd(0.0, 1.0);
  Eigen::MatrixXd m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = nd(rng);
  return m;
}

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
