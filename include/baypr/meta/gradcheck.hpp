// baypr/meta/gradcheck.hpp: finite-difference checks for user-written embeddings.
//
//   check_embedding_gradient(embedding, theta, inputs, seed)  vjp against central differences
//   check_embedding_duals(embedding, theta, inputs, seed)     the HvpScalar path against double
//
// Both draw seeded random directions, so a failure is reproducible. An error is reported both
// absolute and relative, where relative means |analytic - numeric| / max(1, |analytic|, |numeric|):
// relative for large values, absolute for small ones, so a true zero gradient (a dead ReLU) is not
// flagged because of finite-difference noise.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/meta/embedding.hpp"

namespace baypr::meta {

struct GradientCheck {
  double max_abs_error = 0.0;          // over the checked coordinates and the directional check
  double max_rel_error = 0.0;          // the same, relative as described above
  Eigen::Index worst_coordinate = -1;  // coordinate with max_rel_error; -1 if the directional check
  double worst_analytic = 0.0, worst_numeric = 0.0;  // the two values compared there
  double directional_abs_error = 0.0, directional_rel_error = 0.0;
  Eigen::Index coordinates_checked = 0;

  [[nodiscard]] bool passed(double tolerance) const { return max_rel_error <= tolerance; }
};

struct DualCheck {
  double forward_value_error = 0.0;       // max |value(forward(dual theta)) - forward(theta)|
  double forward_derivative_error = 0.0;  // dual part of forward vs central differences (relative)
  double vjp_value_error = 0.0;           // max |value(vjp(dual theta)) - vjp(theta)|
  double vjp_derivative_error = 0.0;  // dual part of vjp (a Hessian-vector product) vs differences

  [[nodiscard]] bool passed(double tolerance) const {
    return forward_value_error <= tolerance && forward_derivative_error <= tolerance &&
           vjp_value_error <= tolerance && vjp_derivative_error <= tolerance;
  }
};

namespace detail {

inline double gradcheck_relative_error(double analytic, double numeric) {
  return std::abs(analytic - numeric) / std::max({1.0, std::abs(analytic), std::abs(numeric)});
}

// Entries uniform in [-1, 1) from 53-bit draws (platform independent, unlike
// std::normal_distribution).
inline Eigen::MatrixXd gradcheck_random_matrix(std::mt19937_64& rng, Eigen::Index rows,
                                               Eigen::Index cols) {
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i)
      m(i, j) = static_cast<double>(rng() >> 11) * 0x1.0p-52 - 1.0;
  }
  return m;
}

inline void gradcheck_check_step(const char* fn, double step) {
  if (!(step > 0.0) || !std::isfinite(step)) {
    baypr::detail::throw_invalid(
        fn, "step", "must be finite and > 0, got " + baypr::detail::format_value(step));
  }
}

template <class E>
void gradcheck_check_theta(const char* fn, const E& embedding, const Eigen::VectorXd& theta) {
  baypr::detail::check_size(fn, "theta", "size", theta.size(), embedding.parameter_count());
  baypr::detail::check_finite(fn, "theta", theta);
}

}  // namespace detail

// Compares vjp(theta, inputs, dZ), for a seeded random dZ, with central differences of
// <forward(theta), dZ> in each of at most max_parameters coordinates (all of them, or a seeded
// random subset), and with a central difference along one random direction of all coordinates.
template <DifferentiableEmbedding E>
[[nodiscard]] GradientCheck check_embedding_gradient(const E& embedding,
                                                     const Eigen::VectorXd& theta,
                                                     const Eigen::MatrixXd& inputs,
                                                     std::uint64_t seed, double step = 1e-6,
                                                     Eigen::Index max_parameters = 200) {
  constexpr const char* fn = "baypr::meta::check_embedding_gradient";
  detail::gradcheck_check_theta(fn, embedding, theta);
  detail::gradcheck_check_step(fn, step);
  if (max_parameters < 1) {
    baypr::detail::throw_invalid(fn, "max_parameters",
                                 "must be >= 1, got " + std::to_string(max_parameters));
  }
  std::mt19937_64 rng(seed);
  const Eigen::MatrixXd dz =
      detail::gradcheck_random_matrix(rng, inputs.rows(), embedding.output_dim());
  const Eigen::VectorXd analytic = embedding.vjp(theta, inputs, dz);
  baypr::detail::check_size(fn, "embedding.vjp(...)", "size", analytic.size(), theta.size());
  const auto objective = [&](const Eigen::VectorXd& t) {
    const Eigen::MatrixXd z = embedding.forward(t, inputs);
    return z.cwiseProduct(dz).sum();
  };

  // Which coordinates: all, or max_parameters of them drawn without replacement, sorted.
  const Eigen::Index p = theta.size();
  std::vector<Eigen::Index> coords(static_cast<std::size_t>(p));
  for (Eigen::Index i = 0; i < p; ++i) coords[static_cast<std::size_t>(i)] = i;
  if (p > max_parameters) {
    coords = baypr::sample_without_replacement(std::move(coords), max_parameters, rng);
    std::sort(coords.begin(), coords.end());
  }

  GradientCheck out;
  out.max_rel_error = -1.0;
  Eigen::VectorXd t = theta;
  for (const Eigen::Index i : coords) {
    t(i) = theta(i) + step;
    const double up = objective(t);
    t(i) = theta(i) - step;
    const double down = objective(t);
    t(i) = theta(i);
    const double numeric = (up - down) / (2.0 * step);
    const double rel = detail::gradcheck_relative_error(analytic(i), numeric);
    out.max_abs_error = std::max(out.max_abs_error, std::abs(analytic(i) - numeric));
    if (rel > out.max_rel_error || std::isnan(rel)) {
      out.max_rel_error = std::isnan(rel) ? std::numeric_limits<double>::infinity() : rel;
      out.worst_coordinate = i;
      out.worst_analytic = analytic(i);
      out.worst_numeric = numeric;
    }
  }
  out.coordinates_checked = static_cast<Eigen::Index>(coords.size());

  // One random direction through every coordinate at once.
  Eigen::VectorXd v = detail::gradcheck_random_matrix(rng, p, 1);
  if (v.norm() > 0.0) v /= v.norm();
  const double numeric = (objective(theta + step * v) - objective(theta - step * v)) / (2.0 * step);
  const double directional = analytic.dot(v);
  out.directional_abs_error = std::abs(directional - numeric);
  out.directional_rel_error = detail::gradcheck_relative_error(directional, numeric);
  if (std::isnan(out.directional_rel_error))
    out.directional_rel_error = std::numeric_limits<double>::infinity();
  out.max_abs_error = std::max(out.max_abs_error, out.directional_abs_error);
  if (out.directional_rel_error > out.max_rel_error) {
    out.max_rel_error = out.directional_rel_error;
    out.worst_coordinate = -1;
    out.worst_analytic = directional;
    out.worst_numeric = numeric;
  }
  if (std::isnan(out.max_abs_error)) out.max_abs_error = std::numeric_limits<double>::infinity();
  return out;
}

// Checks the HvpScalar path along a seeded random unit direction v: forward and vjp evaluated at
// theta + eps v must have the double results as values, and as dual parts the directional
// derivatives d/dt forward(theta + t v) and d/dt vjp(theta + t v, inputs, dZ) (the latter a
// Hessian-vector product), compared with central differences.
template <TwiceDifferentiableEmbedding E>
[[nodiscard]] DualCheck check_embedding_duals(const E& embedding, const Eigen::VectorXd& theta,
                                              const Eigen::MatrixXd& inputs, std::uint64_t seed,
                                              double step = 1e-6) {
  constexpr const char* fn = "baypr::meta::check_embedding_duals";
  detail::gradcheck_check_theta(fn, embedding, theta);
  detail::gradcheck_check_step(fn, step);
  std::mt19937_64 rng(seed);
  const Eigen::MatrixXd dz =
      detail::gradcheck_random_matrix(rng, inputs.rows(), embedding.output_dim());
  Eigen::VectorXd v = detail::gradcheck_random_matrix(rng, theta.size(), 1);
  if (v.norm() > 0.0) v /= v.norm();

  ParamVector<HvpScalar> dual(theta.size());
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    dual(i).value() = theta(i);
    dual(i).derivatives() = Eigen::Matrix<double, 1, 1>(v(i));
  }
  const RowMatrix<HvpScalar> dz_dual = dz.cast<HvpScalar>();

  const auto worst = [](const auto& dual_result, const Eigen::MatrixXd& value,
                        const Eigen::MatrixXd& up, const Eigen::MatrixXd& down, double h,
                        double& value_error, double& derivative_error) {
    value_error = 0.0;
    derivative_error = 0.0;
    for (Eigen::Index j = 0; j < value.cols(); ++j) {
      for (Eigen::Index i = 0; i < value.rows(); ++i) {
        const double ve = std::abs(dual_result(i, j).value() - value(i, j));
        const double de = detail::gradcheck_relative_error(dual_result(i, j).derivatives()(0),
                                                           (up(i, j) - down(i, j)) / (2.0 * h));
        value_error =
            std::isnan(ve) ? std::numeric_limits<double>::infinity() : std::max(value_error, ve);
        derivative_error = std::isnan(de) ? std::numeric_limits<double>::infinity()
                                          : std::max(derivative_error, de);
      }
    }
  };

  DualCheck out;
  const Eigen::VectorXd up = theta + step * v, down = theta - step * v;
  {
    const RowMatrix<HvpScalar> z = embedding.forward(dual, inputs);
    const Eigen::MatrixXd z0 = embedding.forward(theta, inputs);
    baypr::detail::check_size(fn, "embedding.forward(dual theta)", "rows", z.rows(), z0.rows());
    baypr::detail::check_size(fn, "embedding.forward(dual theta)", "columns", z.cols(), z0.cols());
    worst(z, z0, embedding.forward(up, inputs), embedding.forward(down, inputs), step,
          out.forward_value_error, out.forward_derivative_error);
  }
  {
    const ParamVector<HvpScalar> g = embedding.vjp(dual, inputs, dz_dual);
    const Eigen::VectorXd g0 = embedding.vjp(theta, inputs, dz);
    baypr::detail::check_size(fn, "embedding.vjp(dual theta)", "size", g.size(), g0.size());
    worst(g, g0, embedding.vjp(up, inputs, dz), embedding.vjp(down, inputs, dz), step,
          out.vjp_value_error, out.vjp_derivative_error);
  }
  return out;
}

}  // namespace baypr::meta
