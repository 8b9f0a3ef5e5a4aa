// baypr/meta/baselines.hpp: the meta-learning baselines Proto-MAML and MAML with a linear head,
// with the same inner SGD, first-order and exact second-order meta-gradients as BayPrAnoMeta
// (meta/adapt.hpp: unrolled_meta_gradient, Hessian-vector products by HvpScalar duals).
//
// Both use the logistic loss l(s, y) = softplus(s) - y s of an anomaly logit s (y = 1 anomalous),
// averaged over the queries for the outer loss. Z = f_theta(support) (n x d), q = f_theta(query).
//
// Proto-MAML: prototype c = mean_i z_i, spread r = (1/n) sum_i |z_i - c|^2.
//   inner loss  L_in  = r                       (pull the support embeddings to their prototype)
//   logit       s(q)  = |q - c|^2 - r           (a normal query sits at about the support spread)
//   outer loss  mean_j l(s(q_j), y_j); score |q - c|^2.
// The offset r is part of the model, not detached: every gradient includes its dependence on Z.
//
// MAML: parameters [theta (the embedding's), w (d), b]; logit s(q) = w . q + b.
//   inner loss  (1/n) sum_i l(s(z_i), 0)        (the support is all normal)
//   outer loss  mean_j l(s(q_j), y_j); score s(q).
// initial_parameters<Maml>() appends a zero head to the embedding's parameters.
//
// Both are policies of meta/adapt.hpp's entry points (adapt<ProtoMaml>, meta_step<Maml>,
// scores<ProtoMaml>, MetaStepper<E, Maml>, ...). They take the prior for the one signature and do
// not use it; of MetaOptions they use adapt and order (adapt.path does not enter).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/meta/adapt.hpp"
#include "baypr/meta/embedding.hpp"

namespace baypr::meta {

namespace detail {

// softplus(s) = log(1 + e^s) and sigmoid(s), overflow-free, for double and duals.
template <class Scalar>
Scalar softplus(const Scalar& s) {
  using std::exp;
  using std::log;
  if (value_of(s) > 0.0) return s + log(Scalar(1) + exp(-s));
  return log(Scalar(1) + exp(s));
}

template <class Scalar>
Scalar sigmoid(const Scalar& s) {
  using std::exp;
  if (value_of(s) >= 0.0) return Scalar(1) / (Scalar(1) + exp(-s));
  const Scalar e = exp(s);
  return e / (Scalar(1) + e);
}

template <class Scalar, class E>
std::pair<Scalar, ParamVector<Scalar>> proto_inner(const E& embedding,
                                                   const ParamVector<Scalar>& theta,
                                                   const Eigen::MatrixXd& support) {
  const RowMatrix<Scalar> Z = embedding.forward(theta, support);
  const Scalar n = from_index<Scalar>(Z.rows());
  RowMatrix<Scalar> C = Z;
  C.rowwise() -= Z.colwise().sum() / n;
  const Scalar value = C.squaredNorm() / n;
  // d r / d z_i = (2/n)(z_i - c): the prototype's own dependence sums to zero.
  const RowMatrix<Scalar> dZ = C * (Scalar(2) / n);
  return {value, embedding.vjp(theta, support, dZ)};
}

// l(s, y) averaged over rows, and dl/ds (already divided by the count).
inline double logistic_loss(const Eigen::VectorXd& s, const Eigen::VectorXi& y,
                            Eigen::VectorXd* ds) {
  const double inv = 1.0 / static_cast<double>(s.size());
  double value = 0.0;
  ds->resize(s.size());
  for (Eigen::Index j = 0; j < s.size(); ++j) {
    const double yj = static_cast<double>(y(j));
    value += inv * (softplus(s(j)) - yj * s(j));
    (*ds)(j) = inv * (sigmoid(s(j)) - yj);
  }
  return value;
}

template <class Scalar, class E>
std::pair<Scalar, ParamVector<Scalar>> maml_inner(const E& embedding,
                                                  const ParamVector<Scalar>& params,
                                                  const Eigen::MatrixXd& support) {
  const Eigen::Index p = embedding.parameter_count(), d = embedding.output_dim();
  const ParamVector<Scalar> theta = params.head(p);
  const ParamVector<Scalar> w = params.segment(p, d);
  const Scalar b = params(p + d);
  const RowMatrix<Scalar> Z = embedding.forward(theta, support);
  const Eigen::Index n = Z.rows();
  const Scalar inv = Scalar(1) / from_index<Scalar>(n);
  ParamVector<Scalar> s = Z * w;
  Scalar value(0);
  ParamVector<Scalar> ds(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    s(i) += b;
    value += inv * softplus(s(i));
    ds(i) = inv * sigmoid(s(i));
  }
  ParamVector<Scalar> g(params.size());
  g.head(p) = embedding.vjp(theta, support, RowMatrix<Scalar>(ds * w.transpose()));
  g.segment(p, d) = Z.transpose() * ds;
  g(p + d) = ds.sum();
  return {value, std::move(g)};
}

// The meta-step of a baseline: Method::inner_loss through the inner steps (in the duals of the
// second-order step too), Method::outer after them.
template <class Method, class E>
void baseline_step(const char* fn, const E& embedding, MetaWorkspace<E>& ws,
                   const Eigen::VectorXd& params, const MetaEpisode& episode,
                   const NiwPrior<double>& prior, const MetaOptions& options, MetaGradient order) {
  auto inner = [&](const auto& t) {
    using Scalar = typename std::decay_t<decltype(t)>::Scalar;
    return Method::template inner_loss<Scalar>(embedding, t, episode.support);
  };
  auto outer_fn = [&](const Eigen::VectorXd& t) {
    return Method::outer(fn, embedding, t, episode, prior, options);
  };
  ws.result = run_meta_step(fn, embedding, params, inner, outer_fn, options.adapt, order);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Proto-MAML

struct ProtoMaml : detail::EmbeddingParameters {
  template <class E>
  static void check(const char*, const E&, const NiwPrior<double>&, const MetaOptions&) {}

  template <class E>
  static LossAndGradient inner(const char*, const E& embedding, const Eigen::VectorXd& theta,
                               const Eigen::MatrixXd& support, const NiwPrior<double>&,
                               const MetaOptions&) {
    auto [value, gradient] = inner_loss<double>(embedding, theta, support);
    return {value, std::move(gradient)};
  }

  template <class E>
  static Adaptation adapt(const char* fn, const E& embedding, const Eigen::VectorXd& theta,
                          const Eigen::MatrixXd& support, const NiwPrior<double>&,
                          const MetaOptions& options) {
    Adaptation out;
    detail::sgd_adapt(
        fn, [&](const Eigen::VectorXd& t) { return inner_loss<double>(embedding, t, support); },
        theta, options.adapt, out);
    out.support = embedding.forward(out.params, support);
    const Eigen::MatrixXd C = out.support.rowwise() - out.support.colwise().mean();
    out.inner_losses.push_back(C.squaredNorm() / static_cast<double>(C.rows()));
    return out;
  }

  template <class E>
  static OuterLossAndGradient outer(const char*, const E& embedding, const Eigen::VectorXd& adapted,
                                    const MetaEpisode& episode, const NiwPrior<double>&,
                                    const MetaOptions&) {
    const Eigen::MatrixXd Z = embedding.forward(adapted, episode.support);
    const Eigen::MatrixXd Q = embedding.forward(adapted, episode.queries);
    const double n = static_cast<double>(Z.rows());
    const Eigen::RowVectorXd c = Z.colwise().mean();
    const Eigen::MatrixXd C = Z.rowwise() - c;
    const double r = C.squaredNorm() / n;
    const Eigen::MatrixXd D = Q.rowwise() - c;
    const Eigen::VectorXd s = D.rowwise().squaredNorm().array() - r;
    Eigen::VectorXd ds;
    OuterLossAndGradient out;
    out.value = detail::logistic_loss(s, episode.labels, &ds);
    const Eigen::MatrixXd dq = 2.0 * ds.asDiagonal() * D;
    const Eigen::RowVectorXd dc = -dq.colwise().sum();
    const double dr = -ds.sum();
    Eigen::MatrixXd dz = (2.0 * dr / n) * C;
    dz.rowwise() += dc / n;
    out.gradient = detail::episode_vjp(embedding, adapted, episode, dz, dq);
    return out;
  }

  // The inner loss in any scalar (double, or the duals of the second-order step).
  template <class Scalar, class E>
  static std::pair<Scalar, ParamVector<Scalar>> inner_loss(const E& embedding,
                                                           const ParamVector<Scalar>& theta,
                                                           const Eigen::MatrixXd& support) {
    return detail::proto_inner<Scalar>(embedding, theta, support);
  }

  template <class E>
  static void step(const char* fn, const E& embedding, detail::MetaWorkspace<E>& ws,
                   const Eigen::VectorXd& theta, const MetaEpisode& episode,
                   const NiwPrior<double>& prior, const MetaOptions& options, MetaGradient order) {
    detail::baseline_step<ProtoMaml>(fn, embedding, ws, theta, episode, prior, options, order);
  }

  // |f(q) - c|^2 with c the prototype of the adapted support.
  template <class E>
  static Eigen::VectorXd scores(const char*, const E& embedding, const Adaptation& adaptation,
                                const Eigen::MatrixXd& queries, const MetaOptions&) {
    const Eigen::MatrixXd Q = embedding.forward(adaptation.params, queries);
    return (Q.rowwise() - adaptation.support.colwise().mean()).rowwise().squaredNorm();
  }
};

// ---------------------------------------------------------------------------------------------
// MAML with a linear head

struct Maml {
  // [theta; w (d); b].
  template <class E>
  [[nodiscard]] static Eigen::Index parameter_count(const E& embedding) {
    return embedding.parameter_count() + embedding.output_dim() + 1;
  }

  // [theta; w = 0; b = 0].
  template <class E>
  [[nodiscard]] static Eigen::VectorXd initial_parameters(const E& embedding,
                                                          const Eigen::VectorXd& theta) {
    Eigen::VectorXd params = Eigen::VectorXd::Zero(parameter_count(embedding));
    params.head(theta.size()) = theta;
    return params;
  }

  template <class E>
  static void check(const char*, const E&, const NiwPrior<double>&, const MetaOptions&) {}

  template <class E>
  static LossAndGradient inner(const char*, const E& embedding, const Eigen::VectorXd& params,
                               const Eigen::MatrixXd& support, const NiwPrior<double>&,
                               const MetaOptions&) {
    auto [value, gradient] = inner_loss<double>(embedding, params, support);
    return {value, std::move(gradient)};
  }

  template <class E>
  static Adaptation adapt(const char* fn, const E& embedding, const Eigen::VectorXd& params,
                          const Eigen::MatrixXd& support, const NiwPrior<double>&,
                          const MetaOptions& options) {
    Adaptation out;
    detail::sgd_adapt(
        fn, [&](const Eigen::VectorXd& t) { return inner_loss<double>(embedding, t, support); },
        params, options.adapt, out);
    const Eigen::Index p = embedding.parameter_count(), d = embedding.output_dim();
    out.support = embedding.forward(Eigen::VectorXd(out.params.head(p)), support);
    const Eigen::VectorXd s = (out.support * out.params.segment(p, d)).array() + out.params(p + d);
    double loss = 0.0;
    for (Eigen::Index i = 0; i < s.size(); ++i) loss += detail::softplus(s(i));
    out.inner_losses.push_back(loss / static_cast<double>(s.size()));
    return out;
  }

  template <class E>
  static OuterLossAndGradient outer(const char*, const E& embedding, const Eigen::VectorXd& adapted,
                                    const MetaEpisode& episode, const NiwPrior<double>&,
                                    const MetaOptions&) {
    const Eigen::Index p = embedding.parameter_count(), d = embedding.output_dim();
    const Eigen::VectorXd theta = adapted.head(p);
    const Eigen::VectorXd w = adapted.segment(p, d);
    const Eigen::MatrixXd Q = embedding.forward(theta, episode.queries);
    const Eigen::VectorXd s = (Q * w).array() + adapted(p + d);
    Eigen::VectorXd ds;
    OuterLossAndGradient out;
    out.value = detail::logistic_loss(s, episode.labels, &ds);
    out.gradient.resize(adapted.size());
    out.gradient.head(p) =
        embedding.vjp(theta, episode.queries, Eigen::MatrixXd(ds * w.transpose()));
    out.gradient.segment(p, d) = Q.transpose() * ds;
    out.gradient(p + d) = ds.sum();
    return out;
  }

  // The inner loss in any scalar (double, or the duals of the second-order step).
  template <class Scalar, class E>
  static std::pair<Scalar, ParamVector<Scalar>> inner_loss(const E& embedding,
                                                           const ParamVector<Scalar>& params,
                                                           const Eigen::MatrixXd& support) {
    return detail::maml_inner<Scalar>(embedding, params, support);
  }

  template <class E>
  static void step(const char* fn, const E& embedding, detail::MetaWorkspace<E>& ws,
                   const Eigen::VectorXd& params, const MetaEpisode& episode,
                   const NiwPrior<double>& prior, const MetaOptions& options, MetaGradient order) {
    detail::baseline_step<Maml>(fn, embedding, ws, params, episode, prior, options, order);
  }

  // The head's anomaly logit w . f(q) + b under the adapted parameters.
  template <class E>
  static Eigen::VectorXd scores(const char*, const E& embedding, const Adaptation& adaptation,
                                const Eigen::MatrixXd& queries, const MetaOptions&) {
    const Eigen::Index p = embedding.parameter_count(), d = embedding.output_dim();
    const Eigen::VectorXd& a = adaptation.params;
    const Eigen::MatrixXd Q = embedding.forward(Eigen::VectorXd(a.head(p)), queries);
    return (Q * a.segment(p, d)).array() + a(p + d);
  }
};

}  // namespace baypr::meta
