// baypr/meta/adapt.hpp: task adaptation and meta-gradients of Bayesian Proto-MAML (BayPrAnoMeta).
//
// An embedding f_theta (meta/embedding.hpp) maps support inputs to Z = f_theta(X_s) (n x d) and
// query inputs to Q = f_theta(X_q) (m x d). With a fixed NIW prior and t(. | Z) the posterior
// predictive Student-t of the prior updated with Z:
//
//   inner loss   L_in(theta)  = -(1/n) sum_i log t(z_i | Z)          (log_predictive_self_vjp)
//   adaptation   theta_{t+1}  = theta_t - alpha grad L_in(theta_t),  t = 0..T-1, theta' = theta_T
//   outer loss   L_out(theta') = -(1/m) sum_j [(1 - y_j) log t(q_j | Z) + y_j log p_a(q_j)]
//   score        s(q) = log p_a(q) - log t(q | Z)                    (higher = more anomalous)
//
// with Z and Q computed at theta' (L_out depends on theta' through both) and p_a the vague
// anomaly Student-t: location a 1, scale s I, dof v (authors: a = 0, s = 100, v = 2),
//   log p_a(q) = lgamma((v+d)/2) - lgamma(v/2) - (d/2) log(v pi s)
//                - ((v+d)/2) log1p(|q - a|^2 / (s v)).
//
// Meta-gradient with respect to the initial theta (chain rule through the T SGD steps):
//   first_order    g = grad L_out(theta_T)                         (FOMAML: Jacobians taken as I)
//   second_order   v = grad L_out(theta_T); for t = T-1..0: v <- v - alpha H_in(theta_t) v; g = v
// exact, because d theta_{t+1} / d theta_t = I - alpha H_in(theta_t) and H_in is symmetric. Each
// Hessian-vector product is computed exactly, not by differences: the inner-loss gradient
// (embedding forward, the analytic predictive reverse pass, embedding vjp) is evaluated in
// forward-mode duals HvpScalar with theta_t + eps v, and its eps part is H_in v. That needs a
// TwiceDifferentiableEmbedding; for an embedding that works in double only, first order is
// available and asking for second order throws baypr::invalid_argument (the order is a run-time
// option, so one call site can serve both kinds of embedding); the default,
// MetaGradient::automatic, is second order exactly when E is twice differentiable.
// Note: an embedding whose forward/vjp take `const Eigen::VectorXd&` satisfies the concept
// TwiceDifferentiableEmbedding by Eigen's implicit conversions and then fails to compile here;
// constrain such a double-only member to double (a template with requires std::same_as<S, double>).
//
// One dialect (meta/options.hpp): every entry point takes (embedding, theta, episode or support,
// prior, MetaOptions), and the method is a policy type, BayPrAnoMeta by default:
//   parameter_count<M>(embedding), initial_parameters<M>(embedding, theta)
//   inner_loss_and_gradient<M>(embedding, theta, support, prior, options)
//   adapt<M>(embedding, theta, support, prior, options)              -> Adaptation
//   outer_loss_and_gradient<M>(embedding, adapted, episode, prior, options)
//   meta_step<M>(embedding, theta, episode, prior, options)          -> MetaStep
//   scores<M>(embedding, adaptation, queries, options)
//   scores<M>(embedding, theta, support, queries, prior, options)    adapt, then score
//   MetaStepper<E, M>(embedding).step(theta, episode, prior, options)
// with M one of BayPrAnoMeta (here), ProtoMaml and Maml (meta/baselines.hpp).
//
// Fast path: for an embedding with the tape API (meta/embedding.hpp; Linear, Mlp and Conv have
// it) every forward keeps its activations for the vjp, support and queries of the outer loss go
// through the embedding as one batch when its rows are independent, and with the tangent API
// each H_in v is the tangent of the taped inner gradient written out in plain double matrices
// (only the small n x d Student-t part runs in duals). Same results to rounding (tested against
// the forward/vjp path). MetaStepper keeps all buffers between steps (meta_step allocates them).
//
// unrolled_meta_gradient() is that unrolling, generic over the inner and outer objectives; the
// baselines (meta/baselines.hpp: Proto-MAML, MAML) reuse it. Optionally a supervised contrastive
// term (SupCon, on L2-normalised query embeddings) is added to the outer loss, see OuterOptions.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/meta/embedding.hpp"
#include "baypr/meta/episode.hpp"
#include "baypr/meta/options.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/predictive_vjp.hpp"
#include "baypr/stats/student_t.hpp"

namespace baypr::meta {

namespace detail {

inline void check_steps(const char* fn, const char* steps_arg, int steps, const char* size_arg,
                        double step_size) {
  if (steps < 0)
    baypr::detail::throw_invalid(fn, steps_arg, "must be >= 0, got " + std::to_string(steps));
  if (!std::isfinite(step_size) || step_size < 0.0) {
    baypr::detail::throw_invalid(
        fn, size_arg, "must be finite and >= 0, got " + baypr::detail::format_value(step_size));
  }
}

inline void check_adapt_options(const char* fn, const AdaptOptions& o) {
  check_steps(fn, "options.adapt.inner_steps", o.inner_steps, "options.adapt.inner_step_size",
              o.inner_step_size);
}

inline void check_anomaly_model(const char* fn, const VagueAnomalyModel& a) {
  baypr::detail::check_finite_scalar(fn, "options.anomaly.location", a.location);
  baypr::detail::check_positive(fn, "options.anomaly.scale", a.scale);
  baypr::detail::check_positive(fn, "options.anomaly.dof", a.dof);
}

inline void check_outer_options(const char* fn, const OuterOptions& o) {
  if (o.objective != Objective::discriminative && o.objective != Objective::ranking &&
      o.objective != Objective::generative) {
    baypr::detail::throw_invalid(
        fn, "options.outer.objective",
        "is not a valid Objective, got " + std::to_string(static_cast<int>(o.objective)));
  }
  baypr::detail::check_finite_scalar(fn, "options.outer.calibration.rho", o.calibration.rho);
  baypr::detail::check_finite_scalar(fn, "options.outer.calibration.beta", o.calibration.beta);
  // exp(rho) must stay a finite, non-zero scale.
  if (std::abs(o.calibration.rho) > 50.0) {
    baypr::detail::throw_invalid(fn, "options.outer.calibration.rho",
                                 "must lie in [-50, 50] (alpha = exp(rho)), got " +
                                     baypr::detail::format_value(o.calibration.rho));
  }
  if (!std::isfinite(o.calibration_l2) || o.calibration_l2 < 0.0) {
    baypr::detail::throw_invalid(
        fn, "options.outer.calibration_l2",
        "must be finite and >= 0, got " + baypr::detail::format_value(o.calibration_l2));
  }
  if (!std::isfinite(o.supcon_weight) || o.supcon_weight < 0.0) {
    baypr::detail::throw_invalid(
        fn, "options.outer.supcon_weight",
        "must be finite and >= 0, got " + baypr::detail::format_value(o.supcon_weight));
  }
  baypr::detail::check_positive(fn, "options.outer.supcon_temperature", o.supcon_temperature);
}

inline void check_parameters(const char* fn, const char* arg, const Eigen::VectorXd& theta,
                             Eigen::Index expected) {
  baypr::detail::check_size(fn, arg, "size", theta.size(), expected);
  baypr::detail::check_finite(fn, arg, theta);
}

// Divergent inner steps (a step size far too large) are a numerical failure, not bad input.
inline void check_adapted(const char* fn, const Eigen::VectorXd& theta) {
  if (!baypr::detail::all_finite(theta)) {
    baypr::detail::throw_numerical(
        fn, "the adapted parameters are not finite (inner step size too large?)");
  }
}

template <class E>
void check_inputs(const char* fn, const char* arg, const E& embedding, const Eigen::MatrixXd& x) {
  baypr::detail::check_nonempty(fn, arg, x.rows());
  baypr::detail::check_size(fn, arg, "columns", x.cols(), embedding.input_dim());
  baypr::detail::check_finite(fn, arg, x);
}

template <class E>
void check_episode(const char* fn, const E& embedding, const MetaEpisode& episode) {
  check_inputs(fn, "episode.support", embedding, episode.support);
  check_inputs(fn, "episode.queries", embedding, episode.queries);
  (void)baypr::detail::check_binary_labels(fn, "episode.labels", episode.labels,
                                           episode.queries.rows());
}

template <class E>
void check_prior(const char* fn, const E& embedding, const NiwPrior<double>& prior) {
  baypr::detail::check_size(fn, "prior", "dimension", prior.dim(), embedding.output_dim());
}

// The double prior as a constant (zero-derivative) prior in another scalar.
template <class Scalar>
NiwPrior<Scalar> lift_prior(const NiwPrior<double>& prior) {
  if constexpr (std::is_same_v<Scalar, double>) {
    return prior;
  } else {
    return NiwPrior<Scalar>(prior.mean().template cast<Scalar>(), Scalar(prior.kappa()),
                            Scalar(prior.nu()), prior.scatter().template cast<Scalar>());
  }
}

// L_in and its gradient in any Scalar (double, or HvpScalar for Hessian-vector products).
template <class Scalar, class E>
std::pair<Scalar, ParamVector<Scalar>> bayes_inner(const E& embedding,
                                                   const ParamVector<Scalar>& theta,
                                                   const Eigen::MatrixXd& support,
                                                   const NiwPrior<Scalar>& prior, Path path) {
  const RowMatrix<Scalar> Z = embedding.forward(theta, support);
  const Eigen::VectorXd w =
      Eigen::VectorXd::Constant(Z.rows(), -1.0 / static_cast<double>(Z.rows()));
  const auto g = log_predictive_self_vjp(prior, Z, w, path, PriorScatterGradient::skip);
  return {g.value, embedding.vjp(theta, support, g.d_support)};
}

// H v for a gradient function of theta written for HvpScalar: evaluate it at theta + eps v.
template <class GradientFn>
Eigen::VectorXd hvp_by_duals(const GradientFn& gradient, const Eigen::VectorXd& theta,
                             const Eigen::VectorXd& v) {
  ParamVector<HvpScalar> t(theta.size());
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    t(i) = HvpScalar(theta(i), Eigen::Matrix<double, 1, 1>(v(i)));
  }
  const ParamVector<HvpScalar> g = gradient(t);
  Eigen::VectorXd out(g.size());
  for (Eigen::Index i = 0; i < g.size(); ++i) out(i) = g(i).derivatives()(0);
  return out;
}

// Supervised contrastive loss on L2-normalised rows u_j = q_j / |q_j| with labels y:
//   L = (1/|A|) sum_{i in A} -(1/|P_i|) sum_{p in P_i} [s_ip / tau
//                                                        - log sum_{a != i} exp(s_ia / tau)]
// s_ij = u_i . u_j, P_i the other rows with y_i's label, A the rows with P_i non-empty (L = 0 when
// A is empty). Adds weight * dL/dQ to *dq and returns weight * L.
inline double add_supcon(const char* fn, const Eigen::MatrixXd& Q, const Eigen::VectorXi& y,
                         double weight, double tau, Eigen::MatrixXd* dq) {
  const Eigen::Index m = Q.rows();
  const Eigen::VectorXd norms = Q.rowwise().norm();
  if (weight == 0.0 || m < 2) return 0.0;
  if ((norms.array() <= 0.0).any()) {
    baypr::detail::throw_numerical(
        fn, "a query embedding is zero: the SupCon term cannot normalise it");
  }
  const Eigen::MatrixXd U = norms.cwiseInverse().asDiagonal() * Q;
  const Eigen::MatrixXd S = U * U.transpose() / tau;
  Eigen::MatrixXd dS = Eigen::MatrixXd::Zero(m, m);  // dL/dS (S already divided by tau)
  double loss = 0.0;
  Eigen::Index anchors = 0;
  for (Eigen::Index i = 0; i < m; ++i) {
    Eigen::Index positives = 0;
    for (Eigen::Index p = 0; p < m; ++p) positives += (p != i && y(p) == y(i));
    if (positives > 0) ++anchors;
  }
  if (anchors == 0) return 0.0;
  for (Eigen::Index i = 0; i < m; ++i) {
    const int yi = y(i);
    Eigen::Index positives = 0;
    for (Eigen::Index p = 0; p < m; ++p) positives += (p != i && y(p) == yi);
    if (positives == 0) continue;
    double mx = -std::numeric_limits<double>::infinity();
    for (Eigen::Index a = 0; a < m; ++a)
      if (a != i) mx = std::max(mx, S(i, a));
    double z = 0.0;
    for (Eigen::Index a = 0; a < m; ++a)
      if (a != i) z += std::exp(S(i, a) - mx);
    const double lse = mx + std::log(z);
    const double c = 1.0 / (static_cast<double>(anchors) * static_cast<double>(positives));
    for (Eigen::Index a = 0; a < m; ++a) {
      if (a == i) continue;
      const bool pos = y(a) == yi;
      if (pos) loss -= c * (S(i, a) - lse);
      // d/dS_ia of -c sum_p (S_ip - lse) = -c [a in P] + c |P| softmax_ia
      dS(i, a) +=
          -c * (pos ? 1.0 : 0.0) + c * static_cast<double>(positives) * std::exp(S(i, a) - lse);
    }
  }
  // S = U U^T / tau -> dL/dU = (dS + dS^T) U / tau; u = q / |q| -> dq = (du - u (u . du)) / |q|.
  const Eigen::MatrixXd dU = (dS + dS.transpose()) * U / tau;
  for (Eigen::Index j = 0; j < m; ++j) {
    const double proj = U.row(j).dot(dU.row(j));
    dq->row(j) += weight * (dU.row(j) - proj * U.row(j)) / norms(j);
  }
  return weight * loss;
}

inline double softplus(double x) {
  return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}
inline double sigmoid(double x) {
  return x >= 0.0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
}

// The discriminative / ranking loss on scores s (m values) with labels y, and its derivatives:
// dL/ds into ds, dL/d(rho, beta) into dcal (the L2 term included). Returns L.
inline double calibrated_loss(const Eigen::VectorXd& s, const Eigen::VectorXi& y,
                              const OuterOptions& o, Eigen::VectorXd& ds, Eigen::Vector2d& dcal) {
  const Eigen::Index m = s.size();
  const double alpha = o.calibration.alpha(), beta = o.calibration.beta, rho = o.calibration.rho;
  Eigen::Index counts[2] = {0, 0};
  for (const int label : y) ++counts[label];
  ds.setZero(m);
  double value = 0.0;
  double d_alpha = 0.0, d_beta = 0.0;
  if (o.objective == Objective::discriminative) {
    for (Eigen::Index j = 0; j < m; ++j) {
      const int label = y(j);
      const double w = 1.0 / (2.0 * static_cast<double>(counts[label]));
      const double a = alpha * s(j) + beta;
      value += w * (softplus(a) - label * a);
      const double e = w * (sigmoid(a) - label);  // dL/da_j
      ds(j) = alpha * e;
      d_alpha += e * s(j);
      d_beta += e;
    }
    value += o.calibration_l2 * (rho * rho + beta * beta);
  } else {  // ranking
    if (counts[0] > 0 && counts[1] > 0) {
      const double inv_pairs =
          1.0 / (static_cast<double>(counts[0]) * static_cast<double>(counts[1]));
      for (Eigen::Index i = 0; i < m; ++i) {
        if (y(i) != 0) continue;
        for (Eigen::Index k = 0; k < m; ++k) {
          if (y(k) != 1) continue;
          const double diff = s(i) - s(k);
          value += inv_pairs * softplus(alpha * diff);
          const double g = inv_pairs * sigmoid(alpha * diff);  // d/d(alpha diff)
          ds(i) += alpha * g;
          ds(k) -= alpha * g;
          d_alpha += g * diff;
        }
      }
    }
    value += o.calibration_l2 * rho * rho;
  }
  dcal(0) = alpha * d_alpha + 2.0 * o.calibration_l2 * rho;
  dcal(1) = o.objective == Objective::discriminative ? d_beta + 2.0 * o.calibration_l2 * beta : 0.0;
  return value;
}

// L_out (see OuterOptions) from the support embeddings Z and query embeddings Q at theta', with
// its gradients with respect to both (into dz, dq), to the calibration (into dcal) and to each
// log p_a(q_j) (into da).
template <class DZ, class DQ>
double outer_objective(const Eigen::MatrixBase<DZ>& Z, const Eigen::MatrixBase<DQ>& Q,
                       const Eigen::VectorXi& labels, const NiwPrior<double>& prior,
                       const VagueAnomalyModel& anomaly, Path path, const OuterOptions& outer,
                       Eigen::MatrixXd& dz, Eigen::MatrixXd& dq, Eigen::Vector2d& dcal,
                       Eigen::VectorXd& da,
                       const char* fn = "baypr::meta::outer_loss_and_gradient") {
  const Eigen::Index m = Q.rows();
  double value = 0.0;
  dcal.setZero();
  if (outer.objective == Objective::generative) {
    const double inv_m = 1.0 / static_cast<double>(m);
    Eigen::VectorXd w(m);
    da.resize(m);  // dL / d log p_a(q_j)
    for (Eigen::Index j = 0; j < m; ++j) {
      const bool normal = labels(j) == 0;
      w(j) = normal ? -inv_m : 0.0;
      da(j) = normal ? 0.0 : -inv_m;
    }
    auto normal = log_predictive_vjp(prior, Z, Q, w, path, PriorScatterGradient::skip);
    value = normal.value;
    dq = std::move(normal.d_queries);
    const Eigen::VectorXd la = anomaly.log_pdf(Q);
    const Eigen::MatrixXd ga = anomaly.log_pdf_gradient(Q);
    for (Eigen::Index j = 0; j < m; ++j) {
      if (labels(j) == 1) {
        value -= inv_m * la(j);
        dq.row(j) -= inv_m * ga.row(j);
      }
    }
    dz = std::move(normal.d_support);
  } else {
    // s_j = log p_a(q_j) - l_j: dL/dl_j = -dL/ds_j, so the VJP's weights are -dL/ds, chosen once
    // the densities l are known (one posterior fit).
    const Eigen::VectorXd la = anomaly.log_pdf(Q);
    Eigen::VectorXd ds;
    auto normal = log_predictive_vjp_with(
        prior, Z, Q,
        [&](const Eigen::VectorXd& l) -> Eigen::VectorXd {
          value = calibrated_loss(la - l, labels, outer, ds, dcal);
          return -ds;
        },
        path, PriorScatterGradient::skip);
    dq = std::move(normal.d_queries);
    dq.noalias() += ds.asDiagonal() * anomaly.log_pdf_gradient(Q);
    dz = std::move(normal.d_support);
    da = std::move(ds);
  }
  if (outer.supcon_weight != 0.0) {
    const Eigen::MatrixXd Qe = Q;
    value += add_supcon(fn, Qe, labels, outer.supcon_weight, outer.supcon_temperature, &dq);
  }
  return value;
}

}  // namespace detail

// Generic unrolled meta-gradient over T SGD steps theta_{t+1} = theta_t - alpha grad L_in(theta_t):
//   inner_gradient(theta)   -> LossAndGradient of L_in at theta (double)
//   inner_hvp(theta, v)     -> H_in(theta) v (only called for second order)
//   outer_gradient(theta')  -> LossAndGradient of L_out at the adapted theta'
// Returns the outer loss, the inner loss at theta_0, the meta-gradient and theta_T.
template <class InnerGradient, class InnerHvp, class OuterGradient>
MetaStep unrolled_meta_gradient(const InnerGradient& inner_gradient, const InnerHvp& inner_hvp,
                                const OuterGradient& outer_gradient, const Eigen::VectorXd& theta,
                                int steps, double step_size, MetaGradient order,
                                const char* fn = "baypr::meta::unrolled_meta_gradient") {
  detail::check_steps(fn, "steps", steps, "step_size", step_size);
  if (order != MetaGradient::first_order && order != MetaGradient::second_order) {
    baypr::detail::throw_invalid(fn, "order", "must be first_order or second_order");
  }
  std::vector<Eigen::VectorXd> trajectory;  // theta_0 .. theta_{T-1}, kept for the reverse sweep
  trajectory.reserve(static_cast<std::size_t>(steps));
  Eigen::VectorXd current = theta;
  MetaStep out;
  for (int t = 0; t < steps; ++t) {
    const LossAndGradient g = inner_gradient(current);
    if (t == 0) out.inner_loss = g.value;
    if (order == MetaGradient::second_order) trajectory.push_back(current);
    current -= step_size * g.gradient;
  }
  if (steps == 0) out.inner_loss = inner_gradient(current).value;
  detail::check_adapted(fn, current);
  auto outer = outer_gradient(current);
  out.outer_loss = outer.value;
  if constexpr (requires { outer.calibration_gradient; }) {
    out.calibration_gradient = outer.calibration_gradient;
    out.anomaly_weights = std::move(outer.anomaly_weights);
  }
  Eigen::VectorXd v = std::move(outer.gradient);
  if (order == MetaGradient::second_order) {
    for (auto it = trajectory.rbegin(); it != trajectory.rend(); ++it)
      v -= step_size * inner_hvp(*it, v);
  }
  out.gradient = std::move(v);
  out.adapted = std::move(current);
  return out;
}

namespace detail {

// The meta-step shared by every method. `inner` is generic over the scalar: inner(theta) ->
// std::pair<Scalar, ParamVector<Scalar>> (loss, gradient) for Scalar double and, when E is
// twice differentiable, HvpScalar (it is only instantiated with HvpScalar then).
template <class E, class Inner, class Outer>
MetaStep run_meta_step(const char* fn, const E& embedding, const Eigen::VectorXd& theta,
                       const Inner& inner, const Outer& outer, const AdaptOptions& options,
                       MetaGradient order) {
  (void)embedding;
  auto inner_double = [&](const Eigen::VectorXd& t) {
    auto [value, gradient] = inner(t);
    return LossAndGradient{value, std::move(gradient)};
  };
  if constexpr (TwiceDifferentiableEmbedding<E>) {
    auto hvp = [&](const Eigen::VectorXd& t, const Eigen::VectorXd& v) {
      return hvp_by_duals([&](const ParamVector<HvpScalar>& td) { return inner(td).second; }, t, v);
    };
    return unrolled_meta_gradient(inner_double, hvp, outer, theta, options.inner_steps,
                                  options.inner_step_size, order, fn);
  } else {
    if (order == MetaGradient::second_order) {
      baypr::detail::throw_invalid(
          fn, "order",
          "second_order needs a TwiceDifferentiableEmbedding (forward and vjp in "
          "HvpScalar); this embedding supports first_order only");
    }
    auto no_hvp = [](const Eigen::VectorXd&, const Eigen::VectorXd& v) -> Eigen::VectorXd {
      return v;
    };
    return unrolled_meta_gradient(inner_double, no_hvp, outer, theta, options.inner_steps,
                                  options.inner_step_size, order, fn);
  }
}

// T SGD steps on inner(theta) -> (loss, gradient) in double: out.params = theta_T, and the T
// losses on the way in out.inner_losses (the caller appends L_in(theta_T)).
template <class Inner>
void sgd_adapt(const char* fn, const Inner& inner, const Eigen::VectorXd& theta,
               const AdaptOptions& o, Adaptation& out) {
  out.params = theta;
  out.inner_losses.clear();
  out.inner_losses.reserve(static_cast<std::size_t>(o.inner_steps) + 1);
  for (int t = 0; t < o.inner_steps; ++t) {
    const auto g = inner(out.params);
    out.inner_losses.push_back(g.first);
    out.params -= o.inner_step_size * g.second;
  }
  check_adapted(fn, out.params);
}

}  // namespace detail

namespace detail {

// Everything a meta-step allocates, kept between the steps of a MetaStepper so that steady-state
// steps allocate nothing parameter- or activation-sized: glibc hands big freed blocks back to the
// OS, and touching fresh ones page-faults (measured: about half of a conv step). An embedding
// without the tape API allocates in its forward/vjp anyway: only the result is kept.
template <class E>
struct MetaWorkspace {
  MetaStep result;
};

template <TapedEmbedding E>
struct MetaWorkspace<E> {
  using Tape = typename E::Tape;
  std::vector<Tape> inner;  // one per inner step for second order (their activations)
  std::vector<Eigen::MatrixXd> inner_z;
  std::vector<Eigen::VectorXd> trajectory;  // theta_0 .. theta_{T-1}
  Tape outer, outer_queries;
  Eigen::MatrixXd stacked, d_stacked, dz, dq, dz_dot;
  Eigen::VectorXd gradient, hvp, w;
  RowMatrix<HvpScalar> z_dual;
  // The prior lifted to duals (a Cholesky in duals), kept while the caller's prior is unchanged.
  std::optional<NiwPrior<double>> dual_source;
  std::optional<NiwPrior<HvpScalar>> dual_prior;
  MetaStep result;
};

// L_out and its gradient at theta' (into gradient) for a TapedEmbedding: support and queries as
// one stacked batch when the rows are independent (one forward, one vjp), else one tape each.
template <TapedEmbedding E>
double taped_outer(const E& embedding, MetaWorkspace<E>& ws, const Eigen::VectorXd& adapted,
                   const MetaEpisode& episode, const NiwPrior<double>& prior,
                   const VagueAnomalyModel& anomaly, Path path, const OuterOptions& outer,
                   Eigen::VectorXd& gradient, Eigen::Vector2d& dcal, Eigen::VectorXd& da,
                   const char* fn = "baypr::meta::outer_loss_and_gradient") {
  const Eigen::MatrixXd& support = episode.support;
  const Eigen::Index n = support.rows(), m = episode.queries.rows();
  double value = 0.0;
  if constexpr (RowIndependentEmbedding<E>) {
    ws.stacked.resize(n + m, support.cols());
    ws.stacked.topRows(n) = support;
    ws.stacked.bottomRows(m) = episode.queries;
    const Eigen::MatrixXd& all = embedding.forward_with_tape(adapted, ws.stacked, ws.outer);
    value = outer_objective(all.topRows(n), all.bottomRows(m), episode.labels, prior, anomaly, path,
                            outer, ws.dz, ws.dq, dcal, da, fn);
    ws.d_stacked.resize(n + m, ws.dz.cols());
    ws.d_stacked.topRows(n) = ws.dz;
    ws.d_stacked.bottomRows(m) = ws.dq;
    embedding.vjp_from_tape(adapted, ws.stacked, ws.d_stacked, ws.outer, gradient);
  } else {
    const Eigen::MatrixXd& Z = embedding.forward_with_tape(adapted, support, ws.outer);
    const Eigen::MatrixXd& Q =
        embedding.forward_with_tape(adapted, episode.queries, ws.outer_queries);
    value = outer_objective(Z, Q, episode.labels, prior, anomaly, path, outer, ws.dz, ws.dq, dcal,
                            da, fn);
    embedding.vjp_from_tape(adapted, support, ws.dz, ws.outer, gradient);
    embedding.vjp_from_tape(adapted, episode.queries, ws.dq, ws.outer_queries, ws.gradient);
    gradient += ws.gradient;
  }
  return value;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The methods. A method is a policy type behind the entry points below; each provides, as static
// members (fn names the entry point for error messages; the entry point has checked theta's size
// against parameter_count, the inputs, the episode and options.adapt / options.order):
//   parameter_count(embedding)                      the size of its parameter vector
//   initial_parameters(embedding, theta)            that vector from the embedding's parameters
//   check(fn, embedding, prior, options)            what else it needs valid
//   inner(fn, embedding, theta, support, prior, options)          -> LossAndGradient (L_in)
//   adapt(fn, embedding, theta, support, prior, options)          -> Adaptation
//   outer(fn, embedding, adapted, episode, prior, options)        -> OuterLossAndGradient
//   step(fn, embedding, workspace, theta, episode, prior, options, order)  into workspace.result
//   scores(fn, embedding, adaptation, queries, options)           -> one score per query
// BayPrAnoMeta is below; ProtoMaml and Maml are in meta/baselines.hpp.

namespace detail {

template <TapedEmbedding E>
void taped_meta_step(const char* fn, const E& embedding, MetaWorkspace<E>& ws,
                     const Eigen::VectorXd& theta, const MetaEpisode& episode,
                     const NiwPrior<double>& prior, const MetaOptions& meta_options,
                     MetaGradient order) {
  const AdaptOptions& options = meta_options.adapt;
  const VagueAnomalyModel& anomaly = meta_options.anomaly;
  const OuterOptions& outer = meta_options.outer;
  const int T = options.inner_steps;
  const double alpha = options.inner_step_size;
  const Path path = options.path;
  const bool second = order == MetaGradient::second_order && T > 0;
  const Eigen::MatrixXd& support = episode.support;
  const Eigen::Index n = support.rows();
  MetaStep& out = ws.result;
  ws.inner.resize(second ? static_cast<std::size_t>(T) : 1);
  if (second) {
    ws.trajectory.resize(static_cast<std::size_t>(T));
    ws.inner_z.resize(static_cast<std::size_t>(T));
  }
  ws.w.setConstant(n, -1.0 / static_cast<double>(n));
  for (int t = 0; t < T; ++t) {
    const auto k = second ? static_cast<std::size_t>(t) : 0;
    const Eigen::VectorXd& current = t == 0 ? theta : out.adapted;
    if (second && t > 0) ws.trajectory[k] = current;  // theta_0 is theta itself
    const Eigen::MatrixXd& Z = embedding.forward_with_tape(current, support, ws.inner[k]);
    if (second) ws.inner_z[k] = Z;
    const auto g = log_predictive_self_vjp(prior, Z, ws.w, path, PriorScatterGradient::skip);
    if (t == 0) out.inner_loss = g.value;
    embedding.vjp_from_tape(current, support, g.d_support, ws.inner[k], ws.gradient);
    if (t == 0) {
      out.adapted.noalias() = theta - alpha * ws.gradient;
    } else {
      out.adapted -= alpha * ws.gradient;
    }
  }
  if (T == 0) {
    out.adapted = theta;
    const Eigen::MatrixXd& Z = embedding.forward_with_tape(theta, support, ws.inner[0]);
    out.inner_loss =
        log_predictive_self_vjp(prior, Z, ws.w, path, PriorScatterGradient::skip).value;
  }
  check_adapted(fn, out.adapted);

  out.outer_loss = taped_outer(embedding, ws, out.adapted, episode, prior, anomaly, path, outer,
                               out.gradient, out.calibration_gradient, out.anomaly_weights, fn);
  if (!second) return;

  if constexpr (TwiceDifferentiableEmbedding<E>) {
    if (!ws.dual_prior || !(*ws.dual_source == prior)) {
      ws.dual_prior.emplace(lift_prior<HvpScalar>(prior));
      ws.dual_source.emplace(prior);
    }
    const NiwPrior<HvpScalar>& dual_prior = *ws.dual_prior;
    for (int t = T - 1; t >= 0; --t) {
      const auto k = static_cast<std::size_t>(t);
      const Eigen::VectorXd& theta_t = t == 0 ? theta : ws.trajectory[k];
      if constexpr (TangentTapedEmbedding<E>) {
        const Eigen::MatrixXd& z_dot =
            embedding.jvp_from_tape(theta_t, out.gradient, support, ws.inner[k]);
        const Eigen::MatrixXd& Z = ws.inner_z[k];
        ws.z_dual.resize(Z.rows(), Z.cols());
        for (Eigen::Index i = 0; i < Z.size(); ++i) {
          ws.z_dual(i) = HvpScalar(Z(i), Eigen::Matrix<double, 1, 1>(z_dot(i)));
        }
        const auto g =
            log_predictive_self_vjp(dual_prior, ws.z_dual, ws.w, path, PriorScatterGradient::skip);
        ws.dz.resize(Z.rows(), Z.cols());
        ws.dz_dot.resize(Z.rows(), Z.cols());
        for (Eigen::Index i = 0; i < Z.size(); ++i) {
          ws.dz(i) = g.d_support(i).value();
          ws.dz_dot(i) = g.d_support(i).derivatives()(0);
        }
        embedding.vjp_tangent_from_tape(theta_t, out.gradient, support, ws.dz, ws.dz_dot,
                                        ws.inner[k], ws.hvp);
      } else {
        ws.hvp = hvp_by_duals(
            [&](const ParamVector<HvpScalar>& td) {
              return bayes_inner<HvpScalar>(embedding, td, support, dual_prior, path).second;
            },
            theta_t, out.gradient);
      }
      out.gradient -= alpha * ws.hvp;
    }
  }
}

// The gradient with respect to theta of an outer loss whose gradients with respect to the support
// and query embeddings are dz and dq (the same for every method).
template <class E>
Eigen::VectorXd episode_vjp(const E& embedding, const Eigen::VectorXd& theta,
                            const MetaEpisode& episode, const Eigen::MatrixXd& dz,
                            const Eigen::MatrixXd& dq) {
  Eigen::VectorXd g = embedding.vjp(theta, episode.support, dz);
  g += embedding.vjp(theta, episode.queries, dq);
  return g;
}

// BayPrAnoMeta's outer loss at theta and its gradient by forward and vjp (no tape).
template <class E>
OuterLossAndGradient forward_outer(const char* fn, const E& embedding, const Eigen::VectorXd& theta,
                                   const MetaEpisode& episode, const NiwPrior<double>& prior,
                                   const MetaOptions& options) {
  const Eigen::MatrixXd Z = embedding.forward(theta, episode.support);
  const Eigen::MatrixXd Q = embedding.forward(theta, episode.queries);
  Eigen::MatrixXd dz, dq;
  OuterLossAndGradient out;
  out.value =
      outer_objective(Z, Q, episode.labels, prior, options.anomaly, options.adapt.path,
                      options.outer, dz, dq, out.calibration_gradient, out.anomaly_weights, fn);
  out.gradient = episode_vjp(embedding, theta, episode, dz, dq);
  return out;
}

// The meta-step for an embedding without the tape API: forward/vjp, Hessian-vector products by
// duals through the whole inner gradient.
template <class E>
MetaStep generic_meta_step(const char* fn, const E& embedding, const Eigen::VectorXd& theta,
                           const MetaEpisode& episode, const NiwPrior<double>& prior,
                           const MetaOptions& options, MetaGradient order) {
  const Path path = options.adapt.path;
  std::optional<NiwPrior<HvpScalar>> dual_prior;
  if constexpr (TwiceDifferentiableEmbedding<E>) {
    if (order == MetaGradient::second_order && options.adapt.inner_steps > 0) {
      dual_prior.emplace(lift_prior<HvpScalar>(prior));
    }
  }
  auto inner = [&](const auto& t) {
    using Scalar = typename std::decay_t<decltype(t)>::Scalar;
    if constexpr (std::is_same_v<Scalar, double>) {
      return bayes_inner<double>(embedding, t, episode.support, prior, path);
    } else {
      return bayes_inner<Scalar>(embedding, t, episode.support, *dual_prior, path);
    }
  };
  auto outer_fn = [&](const Eigen::VectorXd& t) {
    return forward_outer(fn, embedding, t, episode, prior, options);
  };
  return run_meta_step(fn, embedding, theta, inner, outer_fn, options.adapt, order);
}

}  // namespace detail

namespace detail {

// A method whose parameters are the embedding's own (BayPrAnoMeta, ProtoMaml).
struct EmbeddingParameters {
  template <class E>
  [[nodiscard]] static Eigen::Index parameter_count(const E& embedding) {
    return embedding.parameter_count();
  }

  template <class E>
  [[nodiscard]] static Eigen::VectorXd initial_parameters(const E&, const Eigen::VectorXd& theta) {
    return theta;
  }
};

}  // namespace detail

// BayPrAnoMeta (Bayesian Proto-MAML): the NIW posterior of the support embeddings, the Student-t
// posterior predictive as the normality model, the inner and outer losses and the score of the
// header comment. The default method of every entry point.
struct BayPrAnoMeta : detail::EmbeddingParameters {
  template <class E>
  static void check(const char* fn, const E& embedding, const NiwPrior<double>& prior,
                    const MetaOptions& options) {
    detail::check_prior(fn, embedding, prior);
    detail::check_anomaly_model(fn, options.anomaly);
    detail::check_outer_options(fn, options.outer);
  }

  template <class E>
  static LossAndGradient inner(const char*, const E& embedding, const Eigen::VectorXd& theta,
                               const Eigen::MatrixXd& support, const NiwPrior<double>& prior,
                               const MetaOptions& options) {
    auto [value, gradient] =
        detail::bayes_inner<double>(embedding, theta, support, prior, options.adapt.path);
    return {value, std::move(gradient)};
  }

  template <class E>
  static Adaptation adapt(const char* fn, const E& embedding, const Eigen::VectorXd& theta,
                          const Eigen::MatrixXd& support, const NiwPrior<double>& prior,
                          const MetaOptions& options) {
    const AdaptOptions& o = options.adapt;
    Adaptation out;
    detail::sgd_adapt(
        fn,
        [&](const Eigen::VectorXd& t) {
          return detail::bayes_inner<double>(embedding, t, support, prior, o.path);
        },
        theta, o, out);
    out.support = embedding.forward(out.params, support);
    out.posterior.emplace(prior.posterior(out.support, o.path));
    out.inner_losses.push_back(-out.posterior->predictive().log_pdf(out.support).mean());
    return out;
  }

  template <class E>
  static OuterLossAndGradient outer(const char* fn, const E& embedding,
                                    const Eigen::VectorXd& adapted, const MetaEpisode& episode,
                                    const NiwPrior<double>& prior, const MetaOptions& options) {
    OuterLossAndGradient out;
    if constexpr (TapedEmbedding<E>) {
      detail::MetaWorkspace<E> ws;
      out.value = detail::taped_outer(embedding, ws, adapted, episode, prior, options.anomaly,
                                      options.adapt.path, options.outer, out.gradient,
                                      out.calibration_gradient, out.anomaly_weights, fn);
    } else {
      out = detail::forward_outer(fn, embedding, adapted, episode, prior, options);
    }
    return out;
  }

  // The taped path where E has one, otherwise forward/vjp.
  template <class E>
  static void step(const char* fn, const E& embedding, detail::MetaWorkspace<E>& ws,
                   const Eigen::VectorXd& theta, const MetaEpisode& episode,
                   const NiwPrior<double>& prior, const MetaOptions& options, MetaGradient order) {
    if constexpr (TapedEmbedding<E>) {
      detail::taped_meta_step(fn, embedding, ws, theta, episode, prior, options, order);
    } else {
      ws.result = detail::generic_meta_step(fn, embedding, theta, episode, prior, options, order);
    }
  }

  // log p_a(q) - log t(q | posterior of the adapted support).
  template <class E>
  static Eigen::VectorXd scores(const char* fn, const E& embedding, const Adaptation& adaptation,
                                const Eigen::MatrixXd& queries, const MetaOptions& options) {
    detail::check_anomaly_model(fn, options.anomaly);
    if (!adaptation.posterior) {
      baypr::detail::throw_invalid(fn, "adaptation",
                                   "has no posterior: it was not made by adapt<BayPrAnoMeta>");
    }
    baypr::detail::check_size(fn, "adaptation.posterior", "dimension", adaptation.posterior->dim(),
                              embedding.output_dim());
    const Eigen::MatrixXd Q = embedding.forward(adaptation.params, queries);
    return options.anomaly.log_pdf(Q) - adaptation.posterior->predictive().log_pdf(Q);
  }
};

namespace detail {

template <class Method, class E>
void check_entry(const char* fn, const E& embedding, const char* theta_arg,
                 const Eigen::VectorXd& theta, const NiwPrior<double>& prior,
                 const MetaOptions& options) {
  check_adapt_options(fn, options.adapt);
  check_parameters(fn, theta_arg, theta, Method::parameter_count(embedding));
  Method::check(fn, embedding, prior, options);
}

// options.order made concrete for E: automatic is second order where E is twice differentiable;
// second order on an embedding that is not throws.
template <class E>
MetaGradient resolve_order(const char* fn, MetaGradient order) {
  if (order != MetaGradient::automatic && order != MetaGradient::first_order &&
      order != MetaGradient::second_order) {
    baypr::detail::throw_invalid(
        fn, "options.order",
        "is not a valid MetaGradient, got " + std::to_string(static_cast<int>(order)));
  }
  if constexpr (TwiceDifferentiableEmbedding<E>) {
    return order == MetaGradient::automatic ? MetaGradient::second_order : order;
  } else {
    if (order == MetaGradient::second_order) {
      baypr::detail::throw_invalid(
          fn, "options.order",
          "second_order needs a TwiceDifferentiableEmbedding (forward and vjp in "
          "HvpScalar); this embedding supports first_order only");
    }
    return MetaGradient::first_order;
  }
}

template <class Method, class E>
void meta_step_into(const char* fn, const E& embedding, MetaWorkspace<E>& ws,
                    const Eigen::VectorXd& theta, const MetaEpisode& episode,
                    const NiwPrior<double>& prior, const MetaOptions& options) {
  check_entry<Method>(fn, embedding, "theta", theta, prior, options);
  check_episode(fn, embedding, episode);
  const MetaGradient order = resolve_order<E>(fn, options.order);
  Method::step(fn, embedding, ws, theta, episode, prior, options, order);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The entry points: one dialect for every method, Method = BayPrAnoMeta by default, e.g.
//   meta_step(embedding, theta, episode, prior)              BayPrAnoMeta, the defaults
//   meta_step<ProtoMaml>(embedding, theta, episode, prior, options)
// ProtoMaml and Maml take the prior for the same signature and do not use it; Maml's parameter
// vector is [theta; w; b] (initial_parameters<Maml>(embedding, theta) makes it).

// The size of Method's parameter vector for this embedding.
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] Eigen::Index parameter_count(const E& embedding) {
  return Method::parameter_count(embedding);
}

// Method's parameter vector from the embedding's parameters theta (Maml appends a zero head).
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] Eigen::VectorXd initial_parameters(const E& embedding, const Eigen::VectorXd& theta) {
  detail::check_parameters("baypr::meta::initial_parameters", "theta", theta,
                           embedding.parameter_count());
  return Method::initial_parameters(embedding, theta);
}

// The inner loss L_in at theta on the support and its gradient.
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] LossAndGradient inner_loss_and_gradient(const E& embedding,
                                                      const Eigen::VectorXd& theta,
                                                      const Eigen::MatrixXd& support_inputs,
                                                      const NiwPrior<double>& prior,
                                                      const MetaOptions& options = {}) {
  constexpr const char* fn = "baypr::meta::inner_loss_and_gradient";
  detail::check_entry<Method>(fn, embedding, "theta", theta, prior, options);
  detail::check_inputs(fn, "support_inputs", embedding, support_inputs);
  return Method::inner(fn, embedding, theta, support_inputs, prior, options);
}

// options.adapt.inner_steps SGD steps from theta on the support: the adapted parameters, the
// support embedded with them, the inner loss along the way (T + 1 values) and, for BayPrAnoMeta,
// the posterior of the adapted support embeddings.
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] Adaptation adapt(const E& embedding, const Eigen::VectorXd& theta,
                               const Eigen::MatrixXd& support_inputs, const NiwPrior<double>& prior,
                               const MetaOptions& options = {}) {
  constexpr const char* fn = "baypr::meta::adapt";
  detail::check_entry<Method>(fn, embedding, "theta", theta, prior, options);
  detail::check_inputs(fn, "support_inputs", embedding, support_inputs);
  return Method::adapt(fn, embedding, theta, support_inputs, prior, options);
}

// The outer loss at the adapted parameters and its gradient with respect to them (through the
// support and the queries), to the calibration (rho, beta) and to each log p_a(q_j) (BayPrAnoMeta;
// zero / empty for the baselines).
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] OuterLossAndGradient outer_loss_and_gradient(const E& embedding,
                                                           const Eigen::VectorXd& adapted,
                                                           const MetaEpisode& episode,
                                                           const NiwPrior<double>& prior,
                                                           const MetaOptions& options = {}) {
  constexpr const char* fn = "baypr::meta::outer_loss_and_gradient";
  detail::check_entry<Method>(fn, embedding, "adapted", adapted, prior, options);
  detail::check_episode(fn, embedding, episode);
  return Method::outer(fn, embedding, adapted, episode, prior, options);
}

// One meta-training step on an episode: adapt on the support, the outer loss on the queries, and
// its gradient with respect to the initial parameters (options.order: first order, or exact
// second order, which needs a TwiceDifferentiableEmbedding). Allocates its buffers on every call;
// MetaStepper keeps them between steps.
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] MetaStep meta_step(const E& embedding, const Eigen::VectorXd& theta,
                                 const MetaEpisode& episode, const NiwPrior<double>& prior,
                                 const MetaOptions& options = {}) {
  detail::MetaWorkspace<E> ws;
  detail::meta_step_into<Method>("baypr::meta::meta_step", embedding, ws, theta, episode, prior,
                                 options);
  return std::move(ws.result);
}

// Scores of query inputs after an adaptation made by adapt<Method> (higher = more anomalous):
//   BayPrAnoMeta  log p_a(q) - log t(q | posterior of the adapted support)
//   ProtoMaml     |q - c|^2, c the adapted support's prototype
//   Maml          the head's logit w . q + b
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] Eigen::VectorXd scores(const E& embedding, const Adaptation& adaptation,
                                     const Eigen::MatrixXd& query_inputs,
                                     const MetaOptions& options = {}) {
  constexpr const char* fn = "baypr::meta::scores";
  detail::check_parameters(fn, "adaptation.params", adaptation.params,
                           Method::parameter_count(embedding));
  baypr::detail::check_nonempty(fn, "adaptation.support", adaptation.support.rows());
  baypr::detail::check_size(fn, "adaptation.support", "columns", adaptation.support.cols(),
                            embedding.output_dim());
  detail::check_inputs(fn, "query_inputs", embedding, query_inputs);
  return Method::scores(fn, embedding, adaptation, query_inputs, options);
}

// adapt on the support, then score the queries: the evaluation of one task.
template <class Method = BayPrAnoMeta, DifferentiableEmbedding E>
[[nodiscard]] Eigen::VectorXd scores(const E& embedding, const Eigen::VectorXd& theta,
                                     const Eigen::MatrixXd& support_inputs,
                                     const Eigen::MatrixXd& query_inputs,
                                     const NiwPrior<double>& prior,
                                     const MetaOptions& options = {}) {
  constexpr const char* fn = "baypr::meta::scores";
  detail::check_entry<Method>(fn, embedding, "theta", theta, prior, options);
  detail::check_inputs(fn, "support_inputs", embedding, support_inputs);
  detail::check_inputs(fn, "query_inputs", embedding, query_inputs);
  const Adaptation a = Method::adapt(fn, embedding, theta, support_inputs, prior, options);
  return Method::scores(fn, embedding, a, query_inputs, options);
}

// meta_step with its buffers (activations, parameter-sized vectors) kept between calls: the same
// results, and in steady state (same episode shape) no allocation of that size. One per thread:
// step() mutates the buffers. Holds a copy of the embedding.
template <DifferentiableEmbedding E, class Method = BayPrAnoMeta>
class MetaStepper {
 public:
  explicit MetaStepper(E embedding) : embedding_(std::move(embedding)) {}

  [[nodiscard]] const E& embedding() const { return embedding_; }

  [[nodiscard]] MetaStep step(const Eigen::VectorXd& theta, const MetaEpisode& episode,
                              const NiwPrior<double>& prior, const MetaOptions& options = {}) {
    MetaStep out;
    step(theta, episode, prior, options, out);
    return out;
  }

  // The same into out, reusing its vectors' storage (swapped with the workspace's); out is
  // unchanged when the step throws.
  void step(const Eigen::VectorXd& theta, const MetaEpisode& episode, const NiwPrior<double>& prior,
            const MetaOptions& options, MetaStep& out) {
    detail::meta_step_into<Method>("baypr::meta::MetaStepper::step", embedding_, ws_, theta,
                                   episode, prior, options);
    out.outer_loss = ws_.result.outer_loss;
    out.inner_loss = ws_.result.inner_loss;
    out.gradient.swap(ws_.result.gradient);
    out.adapted.swap(ws_.result.adapted);
    out.calibration_gradient = ws_.result.calibration_gradient;
    out.anomaly_weights.swap(ws_.result.anomaly_weights);
  }

 private:
  E embedding_;
  detail::MetaWorkspace<E> ws_;
};

namespace detail {

// A step on a joint vector [theta; extra], extra meta-parameters the inner loop does not adapt:
// appends their gradient to step.gradient and their (unchanged) values to step.adapted.
template <class DG, class DV>
void append_unadapted(MetaStep& step, const Eigen::MatrixBase<DG>& extra_gradient,
                      const Eigen::MatrixBase<DV>& extra_values) {
  const Eigen::Index p = step.gradient.size(), k = extra_gradient.size();
  Eigen::VectorXd gradient(p + k), adapted(p + k);
  gradient << step.gradient, extra_gradient;
  adapted << step.adapted, extra_values;
  step.gradient = std::move(gradient);
  step.adapted = std::move(adapted);
}

}  // namespace detail

// Training the calibration with theta under one optimiser: the joint vector [theta; rho; beta].
inline Eigen::VectorXd with_calibration(const Eigen::VectorXd& theta,
                                        const Calibration& calibration) {
  Eigen::VectorXd joint(theta.size() + 2);
  joint << theta, calibration.rho, calibration.beta;
  return joint;
}

inline std::pair<Eigen::VectorXd, Calibration> split_calibration(const Eigen::VectorXd& joint) {
  if (joint.size() < 3) {
    baypr::detail::throw_invalid(
        "baypr::meta::split_calibration", "joint",
        "needs the embedding parameters and (rho, beta), got size " + std::to_string(joint.size()));
  }
  const Eigen::Index p = joint.size() - 2;
  return {joint.head(p), Calibration{joint(p), joint(p + 1)}};
}

// A BayPrAnoMeta meta-step on the joint vector [theta; rho; beta] (options.outer.calibration is
// replaced by the joint's): the result's gradient has the joint layout, and so has adapted (rho,
// beta unchanged: the inner loop does not adapt them). With a MetaStepper, so its buffers are kept.
template <DifferentiableEmbedding E>
[[nodiscard]] MetaStep calibrated_meta_step(MetaStepper<E>& stepper, const Eigen::VectorXd& joint,
                                            const MetaEpisode& episode,
                                            const NiwPrior<double>& prior,
                                            MetaOptions options = {}) {
  constexpr const char* fn = "baypr::meta::calibrated_meta_step";
  baypr::detail::check_size(fn, "joint", "size", joint.size(),
                            stepper.embedding().parameter_count() + 2);
  auto [theta, calibration] = split_calibration(joint);
  options.outer.calibration = calibration;
  MetaStep step = stepper.step(theta, episode, prior, options);
  detail::append_unadapted(step, step.calibration_gradient, joint.tail<2>());
  return step;
}

// sigma(exp(rho) s + beta + log(r / (1 - r))): the calibrated probability that each query is
// anomalous when a fraction r (anomaly_rate) of queries is. The class-balanced discriminative loss
// calibrates to equal classes (r = 0.5, the default: sigma(exp(rho) s + beta)); another rate shifts
// the log odds by its own, Bayes' rule with the new prior (Saerens et al., Neural Computation
// 2002). anomaly_rate must lie in (0, 1).
inline Eigen::VectorXd anomaly_probability(const Eigen::VectorXd& scores,
                                           const Calibration& calibration,
                                           double anomaly_rate = 0.5) {
  if (!(anomaly_rate > 0.0 && anomaly_rate < 1.0)) {
    baypr::detail::throw_invalid(
        "baypr::meta::anomaly_probability", "anomaly_rate",
        "must lie in (0, 1), got " + baypr::detail::format_value(anomaly_rate));
  }
  const double alpha = calibration.alpha();
  const double shift = calibration.beta + std::log(anomaly_rate / (1.0 - anomaly_rate));
  return scores.unaryExpr([&](double s) { return detail::sigmoid(alpha * s + shift); });
}

// The calibration that minimises the class-balanced logistic loss (the discriminative objective
// without its L2 term) of fixed scores: Newton's method in (alpha, beta), where the loss is
// convex. Meant for scores of a few training episodes at theta_0, as the starting point of
// meta-training. Where the scores do not separate the classes the right way round (alpha <= 0 at
// the optimum), alpha = 1 / sd(s) and beta puts the boundary between the class means. Needs both
// labels present and finite scores.
inline Calibration fit_calibration(const Eigen::VectorXd& scores, const Eigen::VectorXi& labels) {
  constexpr const char* fn = "baypr::meta::fit_calibration";
  (void)baypr::detail::check_binary_labels(fn, "labels", labels, scores.size());
  baypr::detail::check_finite(fn, "scores", scores);
  double count[2] = {0.0, 0.0}, mean[2] = {0.0, 0.0};
  for (Eigen::Index j = 0; j < labels.size(); ++j) {
    count[labels(j)] += 1.0;
    mean[labels(j)] += scores(j);
  }
  if (count[0] == 0.0 || count[1] == 0.0) {
    baypr::detail::throw_invalid(fn, "labels", "needs both normal (0) and anomalous (1) queries");
  }
  mean[0] /= count[0];
  mean[1] /= count[1];
  double var = 0.0;
  for (Eigen::Index j = 0; j < labels.size(); ++j) {
    const double r = scores(j) - mean[labels(j)];
    var += r * r;
  }
  const double sd = std::sqrt(var / static_cast<double>(labels.size()));
  const double spread = std::max(sd, 1e-12 * (1.0 + std::abs(mean[0]) + std::abs(mean[1])));
  const double alpha0 = 1.0 / spread;
  const double mid = (mean[0] + mean[1]) / 2;
  Eigen::Vector2d x(alpha0, -alpha0 * mid);  // (alpha, beta)
  const auto loss = [&](const Eigen::Vector2d& p, Eigen::Vector2d* g, Eigen::Matrix2d* h) {
    double value = 0.0;
    if (g) g->setZero();
    if (h) h->setZero();
    for (Eigen::Index j = 0; j < labels.size(); ++j) {
      const double s = scores(j), w = 1.0 / (2.0 * count[labels(j)]);
      const double a = p(0) * s + p(1), sg = detail::sigmoid(a);
      value += w * (detail::softplus(a) - labels(j) * a);
      const Eigen::Vector2d u(s, 1.0);
      if (g) *g += w * (sg - labels(j)) * u;
      if (h) *h += w * sg * (1.0 - sg) * u * u.transpose();
    }
    return value;
  };
  for (int it = 0; it < 100; ++it) {
    Eigen::Vector2d g;
    Eigen::Matrix2d h;
    const double f = loss(x, &g, &h);
    h.diagonal().array() += 1e-12 * (1.0 + h.diagonal().array().abs());
    Eigen::Vector2d step = h.ldlt().solve(g);
    if (!baypr::detail::all_finite(step)) break;
    double t = 1.0;  // backtracking: the loss never rises
    while (t > 1e-10 && !(loss(x - t * step, nullptr, nullptr) <= f)) t /= 2;
    if (t <= 1e-10) break;
    x -= t * step;
    if ((t * step).norm() <= 1e-12 * (1.0 + x.norm())) break;
  }
  if (!(x(0) > 0.0) || !baypr::detail::all_finite(x)) x = Eigen::Vector2d(alpha0, -alpha0 * mid);
  return Calibration{std::log(x(0)), x(1)};
}

}  // namespace baypr::meta
