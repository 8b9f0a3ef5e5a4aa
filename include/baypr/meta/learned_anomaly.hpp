// baypr/meta/learned_anomaly.hpp: meta-learning the anomaly model's parameters together with the
// embedding's.
//
//   AnomalyCoordinates                          (location, log scale, log dof) of the model
//     ::of(model), ::model(coordinates)         to and from the model (unconstrained <-> positive)
//   anomaly_log_pdf_coordinate_gradient(a, Z)   d log p_a(z_j) / d coordinates, a row per row of Z
//   joint_parameters(theta, model)              [theta; location; log scale; log dof]
//   split_joint_parameters(joint)               -> {theta, model}
//   learned_anomaly_meta_step(embedding, joint, episode, prior, options)
//
// BayPrAnoMeta's outer loss scores queries under the vague Student-t p_a (location a, scale s I,
// dof v; authors a = 0, s = 100, v = 2). The inner loop never sees p_a, so the meta-gradient of
// L_out with respect to p_a's parameters is sum_j (dL_out / d log p_a(q_j)) d log p_a(q_j) / d
// parameters at the adapted query embeddings q_j = f_theta'(x_j) (MetaStep::anomaly_weights: for
// the generative objective -1/m on the anomalous queries, for the discriminative one dL/ds_j). With
// r2 = |z - a 1|^2 and u = s v + r2 (d the embedding dimension, psi the digamma function):
//   d log p_a / d a        = (v + d) sum_k (z_k - a) / u
//   d log p_a / d log s    = -d/2 + ((v + d)/2) r2 / u
//   d log p_a / d log v    = (v/2) [psi((v + d)/2) - psi(v/2)] - d/2 - (v/2) log1p(r2 / (s v))
//                            + ((v + d)/2) r2 / u
// Log coordinates keep s and v positive under any optimiser step. learned_anomaly_meta_step is
// meta_step on the theta part of the joint vector plus this gradient on the last three entries,
// so train() (meta/trainer.hpp) optimises both with one Adam state.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <utility>

#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/meta/adapt.hpp"

namespace baypr::meta {

struct AnomalyCoordinates {
  static constexpr Eigen::Index size = 3;

  [[nodiscard]] static Eigen::Vector3d of(const VagueAnomalyModel& a) {
    return {a.location, std::log(a.scale), std::log(a.dof)};
  }

  // Throws baypr::invalid_argument on a non-finite coordinate or one whose exponential overflows
  // or underflows to zero (the model would then be invalid).
  [[nodiscard]] static VagueAnomalyModel model(const Eigen::Vector3d& c) {
    constexpr const char* fn = "baypr::meta::AnomalyCoordinates::model";
    baypr::detail::check_finite(fn, "coordinates", c);
    const VagueAnomalyModel a{c(0), std::exp(c(1)), std::exp(c(2))};
    if (!(a.scale > 0.0) || !std::isfinite(a.scale)) {
      baypr::detail::throw_invalid(fn, "coordinates",
                                   "log scale " + baypr::detail::format_value(c(1)) +
                                       " gives scale " + baypr::detail::format_value(a.scale) +
                                       " (must be positive and finite)");
    }
    if (!(a.dof > 0.0) || !std::isfinite(a.dof)) {
      baypr::detail::throw_invalid(fn, "coordinates",
                                   "log dof " + baypr::detail::format_value(c(2)) + " gives dof " +
                                       baypr::detail::format_value(a.dof) +
                                       " (must be positive and finite)");
    }
    return a;
  }
};

// One row per row of Z: the gradient of log p_a(z_j) with respect to (location, log scale, log
// dof).
inline Eigen::Matrix<double, Eigen::Dynamic, 3> anomaly_log_pdf_coordinate_gradient(
    const VagueAnomalyModel& a, const Eigen::MatrixXd& Z) {
  constexpr const char* fn = "baypr::meta::anomaly_log_pdf_coordinate_gradient";
  if (!(a.scale > 0.0) || !std::isfinite(a.scale) || !(a.dof > 0.0) || !std::isfinite(a.dof) ||
      !std::isfinite(a.location)) {
    baypr::detail::throw_invalid(
        fn, "anomaly",
        "needs a finite location and positive finite scale and dof, got location " +
            baypr::detail::format_value(a.location) + ", scale " +
            baypr::detail::format_value(a.scale) + ", dof " + baypr::detail::format_value(a.dof));
  }
  baypr::detail::check_finite(fn, "Z", Z);
  const double d = static_cast<double>(Z.cols()), v = a.dof, s = a.scale;
  const double half = (v + d) / 2;
  const double psi_term = v / 2 * (special::digamma(half) - special::digamma(v / 2)) - d / 2;
  Eigen::Matrix<double, Eigen::Dynamic, 3> g(Z.rows(), 3);
  for (Eigen::Index j = 0; j < Z.rows(); ++j) {
    const Eigen::RowVectorXd centred = Z.row(j).array() - a.location;
    const double r2 = centred.squaredNorm(), u = s * v + r2;
    g(j, 0) = (v + d) * centred.sum() / u;
    g(j, 1) = -d / 2 + half * r2 / u;
    g(j, 2) = psi_term - v / 2 * std::log1p(r2 / (s * v)) + half * r2 / u;
  }
  return g;
}

inline Eigen::VectorXd joint_parameters(const Eigen::VectorXd& theta,
                                        const VagueAnomalyModel& anomaly) {
  Eigen::VectorXd joint(theta.size() + AnomalyCoordinates::size);
  joint << theta, AnomalyCoordinates::of(anomaly);
  return joint;
}

inline std::pair<Eigen::VectorXd, VagueAnomalyModel> split_joint_parameters(
    const Eigen::VectorXd& joint) {
  constexpr const char* fn = "baypr::meta::split_joint_parameters";
  if (joint.size() <= AnomalyCoordinates::size) {
    baypr::detail::throw_invalid(
        fn, "joint",
        "needs the embedding parameters and 3 anomaly coordinates, got size " +
            std::to_string(joint.size()));
  }
  const Eigen::Index p = joint.size() - AnomalyCoordinates::size;
  return {joint.head(p), AnomalyCoordinates::model(joint.tail<3>())};
}

// meta_step with the anomaly model's coordinates appended to the parameters: `joint` =
// joint_parameters(theta, anomaly), which replaces options.anomaly. The result's gradient and
// adapted vectors have the joint layout (the anomaly coordinates are not adapted by the inner
// loop: adapted's tail = joint's).
template <DifferentiableEmbedding E>
[[nodiscard]] MetaStep learned_anomaly_meta_step(const E& embedding, const Eigen::VectorXd& joint,
                                                 const MetaEpisode& episode,
                                                 const NiwPrior<double>& prior,
                                                 MetaOptions options = {}) {
  constexpr const char* fn = "baypr::meta::learned_anomaly_meta_step";
  baypr::detail::check_size(fn, "joint", "size", joint.size(),
                            embedding.parameter_count() + AnomalyCoordinates::size);
  auto [theta, anomaly] = split_joint_parameters(joint);
  options.anomaly = anomaly;
  MetaStep step = meta_step(embedding, theta, episode, prior, options);

  // dL/d coordinates = sum_j (dL / d log p_a(q_j)) d log p_a(q_j) / d coordinates.
  const Eigen::MatrixXd q = embedding.forward(step.adapted, episode.queries);
  const Eigen::Vector3d coordinate_gradient =
      (step.anomaly_weights.transpose() * anomaly_log_pdf_coordinate_gradient(anomaly, q))
          .transpose();
  detail::append_unadapted(step, coordinate_gradient, joint.tail<3>());
  return step;
}

}  // namespace baypr::meta
