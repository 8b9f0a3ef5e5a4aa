// Federation sites whose optimum is known, for the federation tests (in process and over gRPC):
// site c's episodes are one row z = t_c + noise * N(0, I), and its step is the gradient of
// 0.5 |theta - z|^2, so FedSGD / FedAvg must reach the mean of the targets.
#pragma once

#include <Eigen/Core>
#include <random>
#include <vector>

#include "baypr/core/random.hpp"
#include "baypr/federated/algorithms.hpp"

namespace baypr::test {

inline federated::Client quadratic_site(Eigen::VectorXd target, double noise) {
  federated::Client c;
  c.sample = [target, noise](std::mt19937_64& rng) {
    meta::MetaEpisode e;
    e.support = target.transpose();
    for (Eigen::Index j = 0; j < target.size(); ++j) {
      e.support(0, j) += noise * baypr::standard_normal(rng);
    }
    return e;
  };
  c.step = [](const Eigen::VectorXd& theta, const meta::MetaEpisode& e) {
    meta::MetaStep s;
    const Eigen::VectorXd z = e.support.row(0).transpose();
    s.gradient = theta - z;
    s.outer_loss = 0.5 * s.gradient.squaredNorm();
    s.adapted = theta;
    return s;
  };
  return c;
}

inline std::vector<federated::Client> three_sites(double noise) {
  return {quadratic_site(Eigen::Vector3d(1.0, 0.0, -1.0), noise),
          quadratic_site(Eigen::Vector3d(3.0, 2.0, 0.0), noise),
          quadratic_site(Eigen::Vector3d(-1.0, 1.0, 4.0), noise)};
}

}  // namespace baypr::test
