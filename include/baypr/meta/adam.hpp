// baypr/meta/adam.hpp: the Adam meta-optimiser (Kingma & Ba, ICLR 2015), bias-corrected.
//
//   Adam { lr, beta1, beta2, eps }  .step(theta, gradient)   one update in place; m, v, t are its
//                                                             state (meta::train checkpoints them)
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string_view>

#include "baypr/core/errors.hpp"

namespace baypr::meta {

// Adam with bias correction. The moment vectors are sized on the first step.
struct Adam {
  double lr = 1e-4;  // the authors' meta learning rate
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  Eigen::VectorXd m, v;
  long long t = 0;

  void step(Eigen::VectorXd& theta, const Eigen::VectorXd& gradient) {
    constexpr std::string_view fn = "baypr::meta::Adam::step";
    if (!(std::isfinite(lr) && lr > 0))
      baypr::detail::throw_invalid(
          fn, "lr", "must be finite and > 0, got " + baypr::detail::format_value(lr));
    if (!(beta1 >= 0 && beta1 < 1))
      baypr::detail::throw_invalid(fn, "beta1",
                                   "must be in [0, 1), got " + baypr::detail::format_value(beta1));
    if (!(beta2 >= 0 && beta2 < 1))
      baypr::detail::throw_invalid(fn, "beta2",
                                   "must be in [0, 1), got " + baypr::detail::format_value(beta2));
    if (!(std::isfinite(eps) && eps >= 0))
      baypr::detail::throw_invalid(
          fn, "eps", "must be finite and >= 0, got " + baypr::detail::format_value(eps));
    baypr::detail::check_size(fn, "gradient", "size", gradient.size(), theta.size());
    baypr::detail::check_finite(fn, "gradient", gradient);
    if (m.size() == 0) {
      m = Eigen::VectorXd::Zero(theta.size());
      v = Eigen::VectorXd::Zero(theta.size());
    }
    baypr::detail::check_size(fn, "theta", "size", theta.size(), m.size());
    ++t;
    m = beta1 * m + (1.0 - beta1) * gradient;
    v = beta2 * v + (1.0 - beta2) * gradient.cwiseAbs2();
    const double c1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double c2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    theta.array() -= lr * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
  }
};

}  // namespace baypr::meta
