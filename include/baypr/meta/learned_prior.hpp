// baypr/meta/learned_prior.hpp: meta-learning the NIW prior and the score's calibration through
// the outer loss, on fixed features (MetaQDA, Zhang et al. ICCV 2021, with BayPrAnoMeta's score).
//
//   PriorCoordinates::of(prior), ::prior(x)     [mu0 (d); log kappa0; log(nu0 - d + 1); log psi]
//                                               of an NIW prior with a diagonal Psi0 = diag(psi)
//   prior_joint_parameters(prior, calibration)  [prior coordinates; rho; beta]
//   split_prior_joint(joint)                    -> {prior, calibration}
//   learned_prior_step(Z, Q, labels, joint, options)
//
// With the features fixed (an embedding frozen at theta, or descriptors with no embedding), the
// score s_j = log p_a(q_j) - log t(q_j | posterior of Z under the prior) depends on the prior and
// the calibrated outer loss L (OuterOptions: discriminative or ranking) on (rho, beta). Its
// gradient with respect to the prior is the predictive VJP's (stats/predictive_vjp.hpp) with
// weights -dL/ds_j, and d/d log psi_k is half the VJP's d_psi0_log_diagonal (psi_k = exp(2 f_k)
// for its log Cholesky diagonal f). One posterior fit per step; on the few-shot low-rank path
// nothing is O(d^2). learned_prior_step returns a MetaStep whose gradient is with respect to the
// whole joint vector, so meta::train optimises prior and calibration with one Adam state and keeps
// the best-validation values. This is hierarchical modelling fitted for the task the prior serves
// (ranking anomalies in new classes), where fit_prior (stats/prior_fit.hpp) maximises the
// evidence of the training support sets.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/meta/adapt.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/predictive_vjp.hpp"

namespace baypr::meta {

struct PriorCoordinates {
  [[nodiscard]] static Eigen::Index size(Eigen::Index d) { return 2 * d + 2; }

  // Throws baypr::invalid_argument when Psi0 is not diagonal.
  [[nodiscard]] static Eigen::VectorXd of(const NiwPrior<double>& p) {
    if (!p.is_diagonal()) {
      baypr::detail::throw_invalid("baypr::meta::PriorCoordinates::of", "prior",
                                   "must have a diagonal Psi0");
    }
    const Eigen::Index d = p.dim();
    Eigen::VectorXd x(size(d));
    x.head(d) = p.mean();
    x(d) = std::log(p.kappa());
    x(d + 1) = std::log(p.nu() - static_cast<double>(d) + 1.0);
    x.tail(d) = p.scatter().diagonal().array().log().matrix();
    return x;
  }

  // The prior of coordinates x (size 2 d + 2, d >= 1); NiwPrior validates the result, so
  // non-finite coordinates throw baypr::invalid_argument naming the hyper-parameter.
  [[nodiscard]] static NiwPrior<double> prior(const Eigen::VectorXd& x) {
    constexpr const char* fn = "baypr::meta::PriorCoordinates::prior";
    if (x.size() < 4 || x.size() % 2 != 0) {
      baypr::detail::throw_invalid(
          fn, "x", "must have size 2 d + 2 with d >= 1, got " + std::to_string(x.size()));
    }
    baypr::detail::check_finite(fn, "x", x);
    const Eigen::Index d = (x.size() - 2) / 2;
    const Eigen::VectorXd psi = x.tail(d).array().exp().matrix();
    return NiwPrior<double>(x.head(d), std::exp(x(d)),
                            static_cast<double>(d) - 1.0 + std::exp(x(d + 1)),
                            Eigen::MatrixXd(psi.asDiagonal()));
  }
};

[[nodiscard]] inline Eigen::VectorXd prior_joint_parameters(const NiwPrior<double>& prior,
                                                            const Calibration& calibration) {
  const Eigen::VectorXd x = PriorCoordinates::of(prior);
  Eigen::VectorXd joint(x.size() + 2);
  joint << x, calibration.rho, calibration.beta;
  return joint;
}

[[nodiscard]] inline std::pair<NiwPrior<double>, Calibration> split_prior_joint(
    const Eigen::VectorXd& joint) {
  constexpr const char* fn = "baypr::meta::split_prior_joint";
  if (joint.size() < 6 || joint.size() % 2 != 0) {
    baypr::detail::throw_invalid(
        fn, "joint", "must have size 2 d + 4 with d >= 1, got " + std::to_string(joint.size()));
  }
  const Eigen::Index n = joint.size() - 2;
  return {PriorCoordinates::prior(joint.head(n)), Calibration{joint(n), joint(n + 1)}};
}

// The calibrated outer loss (options.outer.objective discriminative or ranking;
// options.outer.calibration is ignored: the calibration comes from the joint vector; the anomaly
// model is options.anomaly, the posterior path options.adapt.path, and options.order does not
// enter: nothing is adapted) of one episode on fixed support features Z
// (n x d) and query features Q (m x d), and its gradient with respect to
// joint = [prior coordinates; rho; beta]. MetaStep::outer_loss and ::gradient are set, and
// ::calibration_gradient and ::anomaly_weights (dL/ds_j) as in the other steps; inner_loss is 0 and
// adapted is empty (nothing is adapted). SupCon does not enter (the features are fixed).
template <class DZ, class DQ>
[[nodiscard]] MetaStep learned_prior_step(const Eigen::MatrixBase<DZ>& Z,
                                          const Eigen::MatrixBase<DQ>& Q,
                                          const Eigen::VectorXi& labels,
                                          const Eigen::VectorXd& joint,
                                          const MetaOptions& options = {}) {
  constexpr const char* fn = "baypr::meta::learned_prior_step";
  baypr::detail::check_nonempty(fn, "Z", Z.rows());
  baypr::detail::check_nonempty(fn, "Q", Q.rows());
  const Eigen::Index d = Z.cols();
  baypr::detail::check_size(fn, "Q", "columns", Q.cols(), d);
  baypr::detail::check_size(fn, "joint", "size", joint.size(), PriorCoordinates::size(d) + 2);
  baypr::detail::check_finite(fn, "Z", Z);
  baypr::detail::check_finite(fn, "Q", Q);
  baypr::detail::check_finite(fn, "joint", joint);
  (void)baypr::detail::check_binary_labels(fn, "labels", labels, Q.rows());
  const VagueAnomalyModel& anomaly = options.anomaly;
  const Path path = options.adapt.path;
  if (options.outer.objective != Objective::discriminative &&
      options.outer.objective != Objective::ranking) {
    baypr::detail::throw_invalid(
        fn, "options.outer.objective",
        "must be discriminative or ranking (the generative loss of a prior is its "
        "evidence: use baypr::fit_prior)");
  }
  detail::check_anomaly_model(fn, anomaly);
  auto [prior, calibration] = split_prior_joint(joint);
  if (std::abs(calibration.rho) > 50.0) {
    baypr::detail::throw_invalid(fn, "joint",
                                 "has rho (entry " + std::to_string(joint.size() - 2) +
                                     ") outside [-50, 50], got " +
                                     baypr::detail::format_value(calibration.rho));
  }
  OuterOptions o = options.outer;
  o.calibration = calibration;
  o.supcon_weight = 0.0;
  detail::check_outer_options(fn, o);

  const Eigen::VectorXd la = anomaly.log_pdf(Q);
  Eigen::VectorXd ds;
  Eigen::Vector2d dcal = Eigen::Vector2d::Zero();
  double value = 0.0;
  const auto vjp = log_predictive_vjp_with(
      prior, Z, Q,
      [&](const Eigen::VectorXd& l) -> Eigen::VectorXd {
        value = detail::calibrated_loss(la - l, labels, o, ds, dcal);
        return -ds;
      },
      path, PriorScatterGradient::compute);
  MetaStep step;
  step.outer_loss = value;
  step.gradient.resize(joint.size());
  step.gradient.head(d) = vjp.d_mu0;
  step.gradient(d) = vjp.d_log_kappa0;
  step.gradient(d + 1) = vjp.d_log_nu0_excess;
  step.gradient.segment(d + 2, d) = vjp.d_psi0_log_diagonal / 2.0;
  step.gradient.tail(2) = dcal;
  step.calibration_gradient = dcal;
  step.anomaly_weights = std::move(ds);
  if (!baypr::detail::all_finite(step.gradient) || !std::isfinite(value)) {
    baypr::detail::throw_numerical(fn,
                                   "the loss or its gradient is not finite at this joint vector");
  }
  return step;
}

}  // namespace baypr::meta
