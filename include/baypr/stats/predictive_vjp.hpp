// baypr/stats/predictive_vjp.hpp: value and reverse-mode gradient of the weighted posterior
// predictive log density, through the whole chain support -> NIW posterior -> Student-t:
//
//   V(Z, Q, prior) = sum_j w_j log t(q_j | posterior(Z))
//
// with gradients with respect to the support rows Z, the query rows Q and the prior
// hyper-parameters, both natural (mu0, kappa0, nu0, Psi0) and unconstrained (log kappa0,
// log(nu0 - d + 1), the Cholesky factor of Psi0 with log diagonal). The "self" variant, where the
// queries are the support rows themselves, is the inner loss of Bayesian Proto-MAML:
// L_in = -mean_i log t(z_i | posterior(Z)) is log_predictive_self_vjp with weights -1/n.
//
// Everything is analytic and blocked (two TRSMs for the queries, GEMMs back to the support; on
// the low-rank path nothing is O(d^2)), and templated on Scalar so that dual numbers over this
// reverse pass give second derivatives.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <concepts>
#include <numbers>

#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/stats/niw.hpp"

namespace baypr {

// NIW hyper-parameters without constraints, for gradient-based learning of the prior:
// kappa0 = exp(log_kappa0), nu0 = d - 1 + exp(log_nu0_excess), Psi0 = L L^T with L lower
// triangular, L(i, j) = psi0_factor(i, j) below the diagonal and L(i, i) = exp(psi0_factor(i, i)).
// The strict upper triangle of psi0_factor is ignored.
template <class Scalar = double, int Dim = Eigen::Dynamic>
struct NiwUnconstrained {
  Eigen::Matrix<Scalar, Dim, 1> mu0;
  Scalar log_kappa0;
  Scalar log_nu0_excess;
  Eigen::Matrix<Scalar, Dim, Dim> psi0_factor;

  static NiwUnconstrained from_prior(const NiwPrior<Scalar, Dim>& prior) {
    using std::log;
    NiwUnconstrained u{prior.mean(), log(prior.kappa()),
                       log(prior.nu() - from_index<Scalar>(prior.dim() - 1)),
                       prior.scatter_cholesky()};
    u.psi0_factor.diagonal() = u.psi0_factor.diagonal().array().log().matrix();
    return u;
  }

  [[nodiscard]] NiwPrior<Scalar, Dim> to_prior() const {
    using std::exp;
    Eigen::Matrix<Scalar, Dim, Dim> L = psi0_factor.template triangularView<Eigen::StrictlyLower>();
    L.diagonal() = psi0_factor.diagonal().array().exp().matrix();
    const Eigen::Index d = mu0.size();
    return NiwPrior<Scalar, Dim>(
        mu0, exp(log_kappa0), from_index<Scalar>(d - 1) + exp(log_nu0_excess), L * L.transpose());
  }
};

// Value and gradients of V = sum_j w_j log t(q_j | posterior(Z)).
// d_psi0 is the derivative with respect to the entries of Psi0 taken as independent (symmetric;
// for a symmetric perturbation E, dV = <d_psi0, E>), and d_psi0_factor the derivative with
// respect to NiwUnconstrained::psi0_factor (lower triangular; its diagonal is with respect to the
// log diagonal). Both are d x d and are computed on the dense path only: on the low-rank path
// they are empty (0 x 0), which keeps that path O(n^2 d); d_psi0_log_diagonal (the diagonal of
// d_psi0_factor) is always there and is all a diagonal prior needs. Note it is the derivative with
// respect to log L0_ii (Psi0_ii = exp(2 f_i) for a diagonal prior), twice d/d(log Psi0_ii).
template <class Scalar = double, int Dim = Eigen::Dynamic>
struct PredictiveVjp {
  Scalar value;
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> log_pdf;      // log t(q_j | posterior(Z)), m values
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> weights;      // the w_j used (m values)
  Eigen::Matrix<Scalar, Eigen::Dynamic, Dim> d_support;  // n x d
  Eigen::Matrix<Scalar, Eigen::Dynamic, Dim> d_queries;  // m x d (0 x d for the self variant)
  Eigen::Matrix<Scalar, Dim, 1> d_mu0;
  Scalar d_kappa0;
  Scalar d_nu0;
  Eigen::Matrix<Scalar, Dim, Dim> d_psi0;
  Scalar d_log_kappa0;
  Scalar d_log_nu0_excess;
  Eigen::Matrix<Scalar, Dim, Dim> d_psi0_factor;
  Eigen::Matrix<Scalar, Dim, 1> d_psi0_log_diagonal;
};

// Whether log_predictive_vjp computes the gradients with respect to Psi0 (d_psi0, d_psi0_factor,
// d_psi0_log_diagonal). Skipping them leaves those fields empty and saves the d x d work on the
// dense path: adaptation of an embedding with a fixed prior needs only the data gradients.
enum class PriorScatterGradient { compute, skip };

namespace detail {

// weights_of(l) -> w: the weights from the m query log densities l_j = log t(q_j | posterior(Z))
// (a fixed vector for the plain VJP; a function of l for a loss such as a logistic one on a score).
template <class Scalar, int Dim, class WeightsOf>
PredictiveVjp<Scalar, Dim> predictive_vjp_impl(const NiwPrior<Scalar, Dim>& prior,
                                               const Eigen::Matrix<Scalar, Eigen::Dynamic, Dim>& Z,
                                               const Eigen::Matrix<Scalar, Eigen::Dynamic, Dim>& Q,
                                               const WeightsOf& weights_of, Path path,
                                               PriorScatterGradient scatter_gradient) {
  using Vector = Eigen::Matrix<Scalar, Dim, 1>;
  using Matrix = Eigen::Matrix<Scalar, Dim, Dim>;
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Dim>;
  using Basis = Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>;
  using special::digamma;
  using special::log1p;

  const Eigen::Index d = prior.dim(), n = Z.rows();
  const Scalar dd = from_index<Scalar>(d), nn = from_index<Scalar>(n);
  const auto post = prior.posterior(Z, path);
  const auto t = post.predictive();
  const Scalar k0 = prior.kappa(), kn = post.kappa(), v = t.dof();
  const Scalar c = (kn + Scalar(1)) / (kn * v);
  const Scalar beta = k0 * nn / kn;
  const Vector mu_n = post.mean();
  const Vector e = n > 0 ? Vector(post.sample_mean() - prior.mean()) : Vector(Vector::Zero(d));

  // Queries: delta_j and the rows s_j = Sigma^{-1}(q_j - mu_n).
  Rows R = Q;
  R.rowwise() -= mu_n.transpose();
  Rows Smat;
  const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> G = t.quadratic_forms(R, &Smat);

  const Scalar half_vd = (v + dd) / Scalar(2);
  const Scalar dig = digamma(half_vd) - digamma(v / Scalar(2));
  PredictiveVjp<Scalar, Dim> out;
  out.log_pdf.resize(Q.rows());
  for (Eigen::Index j = 0; j < Q.rows(); ++j) out.log_pdf(j) = t.log_pdf_from_delta(G(j));
  out.weights = weights_of(out.log_pdf);
  const auto& w = out.weights;
  out.value = Scalar(0);
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> a(Q.rows());  // w_j (v + d) / (v + delta_j)
  Scalar W(0), aG(0), dv_direct(0);
  for (Eigen::Index j = 0; j < Q.rows(); ++j) {
    const Scalar lp = log1p(G(j) / v);
    out.value += w(j) * out.log_pdf(j);
    a(j) = w(j) * (v + dd) / (v + G(j));
    W += w(j);
    aG += a(j) * G(j);
    dv_direct += w(j) * (dig - lp + (G(j) - dd) / (G(j) + v));
  }
  dv_direct /= Scalar(2);
  out.d_queries = -(a.asDiagonal() * Smat);
  const Vector g_mu = Smat.transpose() * a;  // dV/dmu_n

  // dV/dSigma = (Smat^T diag(a) Smat - W Sigma^{-1}) / 2 and G_psi = dV/dPsi_n = c dV/dSigma,
  // applied to U = [centred support rows, e]. On the dense path, when the Psi0 gradient is wanted
  // (G_psi is needed anyway) or U is wide (n + 1 >= d, where one GEMM beats two solves), G_psi is
  // formed; otherwise it is applied implicitly, which never forms a d x d matrix.
  Rows C = Z;
  if (n > 0) C.rowwise() -= post.sample_mean().transpose();
  Basis U(d, n + 1);
  U.leftCols(n) = C.transpose();
  U.col(n) = e;
  const bool explicit_g =
      !post.is_low_rank() && (scatter_gradient == PriorScatterGradient::compute || n + 1 >= d);
  Matrix G_psi;
  Basis GU;
  if (explicit_g) {
    G_psi = -W * t.scale_inverse();
    G_psi.noalias() += Smat.transpose() * (a.asDiagonal() * Smat);
    G_psi *= c / Scalar(2);
    GU.noalias() = G_psi * U;
  } else {
    GU =
        (c / Scalar(2)) * (Smat.transpose() * (a.asDiagonal() * (Smat * U)) - W * t.scale_solve(U));
  }
  const Vector Ge = GU.col(n);

  // Sigma = c Psi_n, c = (kappa_n + 1) / (kappa_n v): dV/dc = <dV/dSigma, Psi_n>
  // = (sum_j a_j delta_j - W d) / (2 c).
  const Scalar dc = (aG - W * dd) / (Scalar(2) * c);
  out.d_nu0 = dv_direct - dc * c / v;
  out.d_support = Scalar(2) * GU.leftCols(n).transpose();
  out.d_support.rowwise() += (Scalar(2) * k0 / kn * Ge + g_mu / kn).transpose();
  out.d_mu0 = k0 / kn * g_mu - Scalar(2) * beta * Ge;
  out.d_kappa0 =
      -dc / (kn * kn * v) + g_mu.dot(prior.mean() - mu_n) / kn + nn * nn / (kn * kn) * e.dot(Ge);
  out.d_log_kappa0 = k0 * out.d_kappa0;
  out.d_log_nu0_excess = (prior.nu() - dd + Scalar(1)) * out.d_nu0;

  if (scatter_gradient == PriorScatterGradient::skip) {
    out.d_psi0.resize(0, 0);
    out.d_psi0_factor.resize(0, 0);
    out.d_psi0_log_diagonal.resize(0);
  } else if (post.is_low_rank()) {
    // Psi0 is diagonal: dV/dPsi0_ii = c/2 (sum_j a_j s_ji^2 - W (Sigma^{-1})_ii).
    const Vector g_diag =
        (c / Scalar(2)) * (Smat.cwiseAbs2().transpose() * a - W * t.scale_inverse_diagonal());
    out.d_psi0_log_diagonal = Scalar(2) * g_diag.cwiseProduct(prior.scatter().diagonal());
    out.d_psi0.resize(0, 0);
    out.d_psi0_factor.resize(0, 0);
  } else {
    // Psi0 = L0 L0^T: dV/dL0 = 2 G_psi L0 (lower part); O(d^2) when L0 is diagonal.
    const Matrix L0 = prior.scatter_cholesky();
    if (prior.is_diagonal()) {
      out.d_psi0_factor =
          (Scalar(2) * G_psi * L0.diagonal().asDiagonal()).template triangularView<Eigen::Lower>();
    } else {
      out.d_psi0_factor = (Scalar(2) * G_psi * L0.template triangularView<Eigen::Lower>())
                              .template triangularView<Eigen::Lower>();
    }
    out.d_psi0_factor.diagonal() = out.d_psi0_factor.diagonal().cwiseProduct(L0.diagonal());
    out.d_psi0_log_diagonal = out.d_psi0_factor.diagonal();
    out.d_psi0 = std::move(G_psi);
  }
  return out;
}

template <class Scalar, class Derived>
Eigen::Matrix<Scalar, Eigen::Dynamic, 1> checked_weights(const char* fn,
                                                         const Eigen::MatrixBase<Derived>& weights,
                                                         Eigen::Index expected) {
  check_size(fn, "weights", "size", weights.size(), expected);
  check_finite(fn, "weights", weights);
  return weights.derived().template cast<Scalar>().reshaped();
}

template <class Scalar, int Dim, class Derived>
Eigen::Matrix<Scalar, Eigen::Dynamic, Dim> checked_rows(const char* fn, const char* arg,
                                                        const Eigen::MatrixBase<Derived>& X,
                                                        Eigen::Index d) {
  check_size(fn, arg, "columns", X.cols(), d);
  check_finite(fn, arg, X);
  return X.derived().template cast<Scalar>();
}

}  // namespace detail

// V = sum_j w_j log t(q_j | posterior(Z)) and its gradients (see PredictiveVjp).
// support: n x d (n >= 0), queries: m x d, weights: m.
template <class Scalar, int Dim, class DZ, class DQ, class DW>
PredictiveVjp<Scalar, Dim> log_predictive_vjp(
    const NiwPrior<Scalar, Dim>& prior, const Eigen::MatrixBase<DZ>& support,
    const Eigen::MatrixBase<DQ>& queries, const Eigen::MatrixBase<DW>& weights,
    Path path = Path::automatic,
    PriorScatterGradient scatter_gradient = PriorScatterGradient::compute) {
  constexpr const char* fn = "baypr::log_predictive_vjp";
  auto Z = detail::checked_rows<Scalar, Dim>(fn, "support", support, prior.dim());
  auto Q = detail::checked_rows<Scalar, Dim>(fn, "queries", queries, prior.dim());
  const auto w = detail::checked_weights<Scalar>(fn, weights, Q.rows());
  return detail::predictive_vjp_impl(
      prior, Z, Q, [&w](const auto&) -> const auto& { return w; }, path, scatter_gradient);
}

// The same with the weights chosen from the query log densities: w = weights_of(l), l_j =
// log t(q_j | posterior(Z)) (an m-vector in, an m-vector out). For a loss whose weight on a
// query depends on its density (a logistic loss on the score log p_a(q) - log t(q | Z): dL/dl_j
// = -alpha e_j) in one posterior fit instead of two. The returned weights are checked (size m,
// finite). The result's log_pdf holds l and weights the w used.
template <class Scalar, int Dim, class DZ, class DQ, class WeightsOf>
requires std::invocable < const WeightsOf&, const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>
& > PredictiveVjp<Scalar, Dim> log_predictive_vjp_with(
        const NiwPrior<Scalar, Dim>& prior, const Eigen::MatrixBase<DZ>& support,
        const Eigen::MatrixBase<DQ>& queries, const WeightsOf& weights_of,
        Path path = Path::automatic,
        PriorScatterGradient scatter_gradient = PriorScatterGradient::compute) {
  constexpr const char* fn = "baypr::log_predictive_vjp_with";
  auto Z = detail::checked_rows<Scalar, Dim>(fn, "support", support, prior.dim());
  auto Q = detail::checked_rows<Scalar, Dim>(fn, "queries", queries, prior.dim());
  const auto checked = [&](const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& l) {
    return detail::checked_weights<Scalar>(fn, weights_of(l), Q.rows());
  };
  return detail::predictive_vjp_impl(prior, Z, Q, checked, path, scatter_gradient);
}

// The same with the queries being the support rows themselves; d_support holds the total
// gradient (both roles) and d_queries is empty. L_in = -mean_i log t(z_i | posterior(Z)) is
// this with weights all -1/n.
template <class Scalar, int Dim, class DZ, class DW>
PredictiveVjp<Scalar, Dim> log_predictive_self_vjp(
    const NiwPrior<Scalar, Dim>& prior, const Eigen::MatrixBase<DZ>& support,
    const Eigen::MatrixBase<DW>& weights, Path path = Path::automatic,
    PriorScatterGradient scatter_gradient = PriorScatterGradient::compute) {
  constexpr const char* fn = "baypr::log_predictive_self_vjp";
  auto Z = detail::checked_rows<Scalar, Dim>(fn, "support", support, prior.dim());
  detail::check_nonempty(fn, "support", Z.rows());
  const auto w = detail::checked_weights<Scalar>(fn, weights, Z.rows());
  auto out = detail::predictive_vjp_impl(
      prior, Z, Z, [&w](const auto&) -> const auto& { return w; }, path, scatter_gradient);
  out.d_support += out.d_queries;
  out.d_queries.resize(0, prior.dim());
  return out;
}

}  // namespace baypr
