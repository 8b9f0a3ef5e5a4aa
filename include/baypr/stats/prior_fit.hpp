// baypr/stats/prior_fit.hpp: hierarchical empirical Bayes for the NIW prior.
//
// fit_prior(groups) chooses NIW(mu0, kappa0, nu0, Psi0 = diag(psi)) by type-II maximum likelihood:
// it maximises the pooled log marginal likelihood sum_g log p(Z_g | prior) of many support sets
// (groups) with the features held fixed. Each group is one draw of (mu, Sigma) from the prior and
// its rows draws from N(mu, Sigma): a plant's other product lines, or the classes of a meta-train
// split sampled as support sets of the size used at test time. The result is an ordinary NiwPrior,
// so BayesianScorerOptions::prior and everything in meta/ accept it.
//
// Per group (n rows, mean zbar, centred scatter S, e = zbar - mu0, kappa_n = kappa0 + n,
// nu_n = nu0 + n, beta = kappa0 n / kappa_n, Psi_n = Psi0 + S + beta e e^T):
//   L = -(n d / 2) log pi + (d / 2) log(kappa0 / kappa_n) + log Gamma_d(nu_n / 2)
//       - log Gamma_d(nu0 / 2) + (nu0 / 2) log|Psi0| - (nu_n / 2) log|Psi_n|
// and its exact gradient in the unconstrained coordinates
//   x = [mu0 (d, when learned); log kappa0; log(nu0 - d + 1); log psi (d, or 1 when isotropic)]:
//   dL/dmu0          = nu_n beta Psi_n^{-1} e
//   dL/dlog kappa0   = kappa0 [(d / 2)(1 / kappa0 - 1 / kappa_n) - (nu_n / 2) (n / kappa_n)^2 e^T
//   Psi_n^{-1} e] dL/dlog(nu0-d+1) = (nu0 - d + 1) (1/2) [sum_i (psi((nu_n + 1 - i) / 2) - psi((nu0
//   + 1 - i) / 2))
//                                          + log|Psi0| - log|Psi_n|]
//   dL/dlog psi_k    = nu0 / 2 - (nu_n / 2) psi_k (Psi_n^{-1})_kk
// (psi() the digamma function). A group with n + 1 < d is evaluated on the low-rank path
// (Psi_n = D + W^T W, W = [centred rows; sqrt(beta) e^T], Woodbury and the determinant lemma:
// O(n^2 d)); a larger one densely from its precomputed scatter (O(d^3)). The optimiser is L-BFGS
// with a backtracking Armijo line search on the mean log evidence per row; each log coordinate is
// kept in [-40, 40] (a trial point outside is rejected like a non-finite one), and the log psi
// coordinates are projected onto their lower bound, log(options.min_scatter) when that is set.
//
// Identifiability: groups of one row carry no within-group scatter, so kappa0 and Psi0 trade off
// along a ridge; give groups of at least two rows (or fix kappa0, learn_kappa = false). Groups of
// identical rows (an exactly constant background) make the evidence unbounded as Psi0 -> 0 when
// they dominate: bound it with options.min_scatter.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/stats/niw.hpp"

namespace baypr {

// The family of Psi0 that fit_prior searches: psi I (one scale) or diag(psi).
enum class ScatterFamily { isotropic, diagonal };

struct PriorFitOptions {
  bool learn_mean = true;   // mu0; otherwise kept at the start's
  bool learn_kappa = true;  // kappa0
  bool learn_dof = true;    // nu0
  ScatterFamily scatter = ScatterFamily::diagonal;
  // Where the search starts and what the fixed coordinates are. Must have a diagonal Psi0 (for
  // the isotropic family, the mean of its diagonal is the start). Default: moments of the groups
  // (mu0 the mean of the group means, nu0 = d + 2, psi the pooled within-group variance, kappa0
  // from the spread of the group means).
  std::optional<NiwPrior<double>> start;
  int max_iterations = 300;
  // Converged when the largest gradient coordinate of the mean log evidence per row is below this.
  double gradient_tolerance = 1e-7;
  int memory = 10;  // L-BFGS pairs kept
  // A lower bound on every entry of Psi0 (0: only the e^-40 bound). Data with groups of identical
  // rows (image patches of a background that is exactly constant) has an unbounded evidence as
  // psi -> 0; the bound makes the problem bounded. The search is projected onto it (a psi on the
  // bound whose gradient points outwards is held there, and convergence is judged on that
  // projected gradient). Entries of the moment start below 2 min_scatter are raised to it.
  double min_scatter = 0.0;
};

struct PriorFit {
  NiwPrior<double> prior;
  double log_evidence = 0.0;  // sum over groups of log p(Z_g | prior)
  int iterations = 0;
  bool converged = false;  // the gradient tolerance was met
  // Largest coordinate of the mean log evidence per row's gradient, projected (min_scatter).
  double gradient_norm = 0.0;
};

namespace detail {

// The pooled log evidence as a function of the unconstrained coordinates (see the file comment).
// PooledEvidence, moment_start and fit_prior are templates only nominally (`class = void`): a
// template is instantiated where it is used, while a plain inline function instantiates
// everything its body uses (NiwPrior<double>, Eigen's LLT, ...) in every translation unit that
// includes this header, used or not (5 s of GCC per test file).
template <class = void>
class PooledEvidence {
 public:
  static constexpr double log_bound = 40.0;

  PooledEvidence(std::vector<Eigen::MatrixXd> groups, const NiwPrior<double>& fixed,
                 const PriorFitOptions& o)
      : d_(fixed.dim()), options_(o), fixed_(fixed) {
    for (auto& z : groups) {
      Group g;
      g.n = z.rows();
      g.mean = z.colwise().mean().transpose();
      if (g.n + 1 < d_) {
        g.centred = z.rowwise() - g.mean.transpose();
      } else {
        const Eigen::MatrixXd c = z.rowwise() - g.mean.transpose();
        g.scatter = c.transpose() * c;
      }
      rows_ += static_cast<double>(g.n);
      groups_.push_back(std::move(g));
    }
  }

  [[nodiscard]] Eigen::Index dim() const { return d_; }
  [[nodiscard]] double rows() const { return rows_; }
  [[nodiscard]] Eigen::Index size() const {
    return (options_.learn_mean ? d_ : 0) + 2 +
           (options_.scatter == ScatterFamily::diagonal ? d_ : 1);
  }

  // Coordinates of a prior with a diagonal Psi0.
  [[nodiscard]] Eigen::VectorXd coordinates(const NiwPrior<double>& p) const {
    Eigen::VectorXd x(size());
    Eigen::Index i = 0;
    if (options_.learn_mean) {
      x.head(d_) = p.mean();
      i = d_;
    }
    x(i++) = std::log(p.kappa());
    x(i++) = std::log(p.nu() - static_cast<double>(d_) + 1.0);
    const Eigen::VectorXd psi = p.scatter().diagonal();
    if (options_.scatter == ScatterFamily::diagonal) {
      x.tail(d_) = psi.array().log().matrix();
    } else {
      x(i) = std::log(psi.mean());
    }
    return x;
  }

  struct Hyper {
    Eigen::VectorXd mu0, psi;
    double kappa0 = 0, nu0 = 0;
  };

  [[nodiscard]] Hyper hyper(const Eigen::VectorXd& x) const {
    Hyper h;
    Eigen::Index i = 0;
    if (options_.learn_mean) {
      h.mu0 = x.head(d_);
      i = d_;
    } else {
      h.mu0 = fixed_.mean();
    }
    h.kappa0 = options_.learn_kappa ? std::exp(x(i)) : fixed_.kappa();
    ++i;
    h.nu0 = options_.learn_dof ? static_cast<double>(d_) - 1.0 + std::exp(x(i)) : fixed_.nu();
    ++i;
    if (options_.scatter == ScatterFamily::diagonal) {
      h.psi = x.tail(d_).array().exp().matrix();
    } else {
      h.psi = Eigen::VectorXd::Constant(d_, std::exp(x(i)));
    }
    return h;
  }

  [[nodiscard]] NiwPrior<double> prior(const Eigen::VectorXd& x) const {
    const Hyper h = hyper(x);
    return NiwPrior<double>(h.mu0, h.kappa0, h.nu0, Eigen::MatrixXd(h.psi.asDiagonal()));
  }

  // True when every log coordinate is within the bounds and the mean finite, and nu0 = d - 1 +
  // e^x stays above d - 1 in floating point (below e^-36 or so for d = 49, the excess rounds away
  // and log Gamma_d(nu0 / 2) would be evaluated at 0).
  [[nodiscard]] bool admissible(const Eigen::VectorXd& x) const {
    if (!detail::all_finite(x)) return false;
    const Eigen::Index start = options_.learn_mean ? d_ : 0;
    if (!(x.tail(x.size() - start).array().abs() <= log_bound).all()) return false;
    const Hyper h = hyper(x);
    // (A relative slack: the search holds log psi at log(min_scatter), and exp(log(m)) may
    // round to just below m.)
    if (h.psi.minCoeff() < options_.min_scatter * (1.0 - 1e-12)) return false;
    return !options_.learn_dof || h.nu0 > static_cast<double>(d_) - 1.0;
  }

  // Sum over groups of the log evidence; its gradient in x into *gradient when given. NaN where a
  // group's Psi_n is numerically singular (fit_prior's line search rejects such a point).
  double value(const Eigen::VectorXd& x, Eigen::VectorXd* gradient) const {
    const Hyper h = hyper(x);
    const double dd = static_cast<double>(d_);
    const double log_det0 = h.psi.array().log().sum();
    double total = 0.0;
    Eigen::VectorXd g_mu = Eigen::VectorXd::Zero(d_), g_logpsi = Eigen::VectorXd::Zero(d_);
    double g_kappa = 0.0, g_nu = 0.0;
    // lgamma / digamma sums of the prior, shared by all groups.
    double lg0 = 0.0, dg0 = 0.0;
    for (Eigen::Index i = 0; i < d_; ++i) {
      const double a = (h.nu0 - static_cast<double>(i)) / 2;
      lg0 += special::lgamma(a);
      dg0 += special::digamma(a);
    }
    for (const Group& grp : groups_) {
      const double n = static_cast<double>(grp.n);
      const double kappa_n = h.kappa0 + n, nu_n = h.nu0 + n, beta = h.kappa0 * n / kappa_n;
      const Eigen::VectorXd e = grp.mean - h.mu0;
      Eigen::VectorXd solved_e, inverse_diagonal;
      double log_det_n = 0.0;
      const bool factored =
          grp.scatter.rows() == 0
              ? low_rank(grp, h.psi, e, beta, log_det_n, solved_e, inverse_diagonal)
              : dense(grp, h.psi, e, beta, log_det_n, solved_e, inverse_diagonal);
      if (!factored) return std::numeric_limits<double>::quiet_NaN();  // numerically singular Psi_n
      double lgn = 0.0, dgn = 0.0;
      for (Eigen::Index i = 0; i < d_; ++i) {
        const double a = (nu_n - static_cast<double>(i)) / 2;
        lgn += special::lgamma(a);
        if (gradient) dgn += special::digamma(a);
      }
      total += -(n * dd / 2) * std::log(std::numbers::pi) +
               dd / 2 * (std::log(h.kappa0) - std::log(kappa_n)) + lgn - lg0 +
               h.nu0 / 2 * log_det0 - nu_n / 2 * log_det_n;
      if (gradient) {
        const double quad = e.dot(solved_e);
        g_mu += nu_n * beta * solved_e;
        g_kappa +=
            dd / 2 * (1 / h.kappa0 - 1 / kappa_n) - nu_n / 2 * (n / kappa_n) * (n / kappa_n) * quad;
        g_nu += (dgn - dg0 + log_det0 - log_det_n) / 2;
        g_logpsi += (h.nu0 / 2 - nu_n / 2 * (h.psi.array() * inverse_diagonal.array())).matrix();
      }
    }
    if (gradient) {
      gradient->resize(size());
      Eigen::Index i = 0;
      if (options_.learn_mean) {
        gradient->head(d_) = g_mu;
        i = d_;
      }
      (*gradient)(i++) = options_.learn_kappa ? h.kappa0 * g_kappa : 0.0;
      (*gradient)(i++) = options_.learn_dof ? (h.nu0 - dd + 1) * g_nu : 0.0;
      if (options_.scatter == ScatterFamily::diagonal) {
        gradient->tail(d_) = g_logpsi;
      } else {
        (*gradient)(i) = g_logpsi.sum();
      }
    }
    return total;
  }

 private:
  struct Group {
    Eigen::Index n = 0;
    Eigen::VectorXd mean;
    Eigen::MatrixXd centred;  // n x d when n + 1 < d
    Eigen::MatrixXd scatter;  // d x d otherwise
  };

  // Psi_n = diag(psi) + W^T W, W = [centred rows; sqrt(beta) e^T] (m = n + 1 rows).
  bool low_rank(const Group& g, const Eigen::VectorXd& psi, const Eigen::VectorXd& e, double beta,
                double& log_det, Eigen::VectorXd& solved_e,
                Eigen::VectorXd& inverse_diagonal) const {
    const Eigen::Index m = g.centred.rows() + 1;
    Eigen::MatrixXd W(m, d_);
    W.topRows(m - 1) = g.centred;
    W.row(m - 1) = std::sqrt(beta) * e.transpose();
    const Eigen::VectorXd inv_psi = psi.cwiseInverse();
    const Eigen::MatrixXd U = W * inv_psi.asDiagonal();  // W D^{-1}, m x d
    Eigen::MatrixXd C = U * W.transpose();
    C.diagonal().array() += 1.0;
    const Eigen::LLT<Eigen::MatrixXd> llt(C);
    if (llt.info() != Eigen::Success) return false;
    log_det = psi.array().log().sum() + 2 * llt.matrixLLT().diagonal().array().log().sum();
    // Psi_n^{-1} e = D^{-1} e - U^T C^{-1} U e
    solved_e = inv_psi.cwiseProduct(e) - U.transpose() * llt.solve(U * e);
    // (Psi_n^{-1})_kk = 1/psi_k - |L^{-1} U_{:,k}|^2
    const Eigen::MatrixXd V = llt.matrixL().solve(U);
    inverse_diagonal = inv_psi - V.colwise().squaredNorm().transpose();
    return true;
  }

  bool dense(const Group& g, const Eigen::VectorXd& psi, const Eigen::VectorXd& e, double beta,
             double& log_det, Eigen::VectorXd& solved_e, Eigen::VectorXd& inverse_diagonal) const {
    Eigen::MatrixXd P = g.scatter;
    P.diagonal() += psi;
    P.noalias() += beta * e * e.transpose();
    const Eigen::LLT<Eigen::MatrixXd> llt(P);
    if (llt.info() != Eigen::Success) return false;
    log_det = 2 * llt.matrixLLT().diagonal().array().log().sum();
    solved_e = llt.solve(e);
    const Eigen::MatrixXd Linv = llt.matrixL().solve(Eigen::MatrixXd::Identity(d_, d_));
    inverse_diagonal = Linv.colwise().squaredNorm().transpose();
    return true;
  }

  Eigen::Index d_;
  PriorFitOptions options_;
  NiwPrior<double> fixed_;
  std::vector<Group> groups_;
  double rows_ = 0.0;
};

// The moment start (see PriorFitOptions::start).
template <class = void>
NiwPrior<double> moment_start(const std::vector<Eigen::MatrixXd>& groups) {
  const Eigen::Index d = groups.front().cols();
  const double dd = static_cast<double>(d);
  Eigen::VectorXd mu0 = Eigen::VectorXd::Zero(d), within = Eigen::VectorXd::Zero(d);
  double dof = 0.0, mean_n = 0.0;
  for (const auto& z : groups) {
    const Eigen::VectorXd m = z.colwise().mean().transpose();
    mu0 += m;
    within += (z.rowwise() - m.transpose()).colwise().squaredNorm().transpose();
    dof += static_cast<double>(z.rows() - 1);
    mean_n += static_cast<double>(z.rows());
  }
  const double g = static_cast<double>(groups.size());
  mu0 /= g;
  mean_n /= g;
  Eigen::VectorXd between = Eigen::VectorXd::Zero(d);
  for (const auto& z : groups) {
    between += (z.colwise().mean().transpose() - mu0).array().square().matrix();
  }
  if (groups.size() > 1) between /= g - 1;
  Eigen::VectorXd psi = dof > 0 ? Eigen::VectorXd(within / dof) : between;
  if (!(psi.mean() > 0) || !std::isfinite(psi.mean()))
    psi.setOnes();  // nothing to learn a scale from
  psi = psi.cwiseMax(1e-6 * psi.mean());
  double kappa0 = 1.0;
  if (dof > 0 && groups.size() > 1) {
    // E[spread of the group means] = Sigma / kappa0 + Sigma / n.
    const double excess = between.mean() - psi.mean() / mean_n;
    kappa0 = excess > 0 ? psi.mean() / excess : 1e6;
  }
  kappa0 = std::clamp(kappa0, 1e-6, 1e6);
  return NiwPrior<double>(mu0, kappa0, dd + 2, Eigen::MatrixXd(psi.asDiagonal()));
}

// Where fit_prior's search starts: options.start as given, or the moment start with its Psi0
// entries raised to 2 min_scatter when one lies below min_scatter.
template <class = void>
NiwPrior<double> search_start(const std::vector<Eigen::MatrixXd>& groups,
                              const PriorFitOptions& options) {
  if (options.start) return *options.start;
  NiwPrior<double> start = moment_start<>(groups);
  if (start.scatter().diagonal().minCoeff() < options.min_scatter) {
    start = NiwPrior<double>(
        start.mean(), start.kappa(), start.nu(),
        Eigen::MatrixXd(
            start.scatter().diagonal().cwiseMax(2.0 * options.min_scatter).asDiagonal()));
  }
  return start;
}

}  // namespace detail

// Type-II maximum likelihood NIW prior over groups of rows (each n_g x d, n_g >= 1). Throws
// baypr::invalid_argument for no groups, an empty group, mismatched columns, non-finite values,
// a start prior of another dimension or with a non-diagonal Psi0, or bad options.
template <class = void>
[[nodiscard]] PriorFit fit_prior(std::span<const Eigen::MatrixXd> groups,
                                 const PriorFitOptions& options = {}) {
  constexpr const char* fn = "baypr::fit_prior";
  if (groups.empty()) detail::throw_invalid(fn, "groups", "must hold at least one group, got 0");
  const Eigen::Index d = groups.front().cols();
  if (d < 1) detail::throw_invalid(fn, "groups[0]", "must have at least one column, got 0");
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string name = "groups[" + std::to_string(g) + "]";
    detail::check_nonempty(fn, name, groups[g].rows());
    detail::check_size(fn, name, "columns", groups[g].cols(), d);
    detail::check_finite(fn, name, groups[g]);
  }
  if (options.max_iterations < 0) {
    detail::throw_invalid(fn, "options.max_iterations",
                          "must be >= 0, got " + std::to_string(options.max_iterations));
  }
  detail::check_positive(fn, "options.gradient_tolerance", options.gradient_tolerance);
  if (options.memory < 1) {
    detail::throw_invalid(fn, "options.memory",
                          "must be >= 1, got " + std::to_string(options.memory));
  }
  if (options.scatter != ScatterFamily::isotropic && options.scatter != ScatterFamily::diagonal) {
    detail::throw_invalid(fn, "options.scatter", "is not a ScatterFamily value");
  }
  if (!(options.min_scatter >= 0.0) || !std::isfinite(options.min_scatter)) {
    detail::throw_invalid(
        fn, "options.min_scatter",
        "must be finite and >= 0, got " + detail::format_value(options.min_scatter));
  }
  std::vector<Eigen::MatrixXd> copies(groups.begin(), groups.end());
  const NiwPrior<double> start = detail::search_start<>(copies, options);
  if (options.start) {
    detail::check_size(fn, "options.start", "dimension", start.dim(), d);
    if (!start.is_diagonal())
      detail::throw_invalid(fn, "options.start", "must have a diagonal Psi0");
  }
  const detail::PooledEvidence<> evidence(std::move(copies), start, options);
  const double rows = evidence.rows();
  Eigen::VectorXd x = evidence.coordinates(start);
  if (!evidence.admissible(x)) {
    if (options.start) {
      detail::throw_invalid(fn, "options.start",
                            "has kappa0, nu0 - d + 1 or a Psi0 entry outside [e^-40, e^40], or "
                            "a Psi0 entry below options.min_scatter");
    }
    detail::throw_invalid(
        fn, "groups",
        "have a scale outside what fit_prior searches (the moments give kappa0 or a "
        "Psi0 entry outside [e^-40, e^40], or below options.min_scatter): rescale them");
  }
  // Minimise f = -(log evidence) / rows.
  Eigen::VectorXd grad;
  double f = -evidence.value(x, &grad) / rows;
  if (!std::isfinite(f)) {
    detail::throw_numerical(
        fn,
        "the log evidence is not finite at the start (a group's Psi_n is numerically singular)");
  }
  grad = -grad / rows;
  // options.min_scatter bounds the log psi coordinates from below: the search projects onto the
  // bound (a coordinate on it whose gradient points outwards is held there), and convergence is
  // judged on the projected gradient.
  const Eigen::Index psi_start =
      evidence.size() - (options.scatter == ScatterFamily::diagonal ? d : 1);
  const double lower = std::max(options.min_scatter > 0.0 ? std::log(options.min_scatter)
                                                          : -detail::PooledEvidence<>::log_bound,
                                -detail::PooledEvidence<>::log_bound);
  const auto project = [&](Eigen::VectorXd& v) {
    for (Eigen::Index i = psi_start; i < v.size(); ++i) v(i) = std::max(v(i), lower);
  };
  const auto projected = [&](const Eigen::VectorXd& v, const Eigen::VectorXd& g) {
    Eigen::VectorXd pg = g;
    for (Eigen::Index i = psi_start; i < v.size(); ++i) {
      if (v(i) <= lower && g(i) > 0) pg(i) = 0.0;
    }
    return pg;
  };
  // Which coordinates are held on the bound; the curvature pairs are dropped when that changes
  // (they describe the search in the other subspace).
  const auto held = [&](const Eigen::VectorXd& v, const Eigen::VectorXd& g) {
    std::vector<bool> h(static_cast<std::size_t>(v.size()), false);
    for (Eigen::Index i = psi_start; i < v.size(); ++i)
      h[static_cast<std::size_t>(i)] = v(i) <= lower && g(i) > 0;
    return h;
  };
  std::deque<std::pair<Eigen::VectorXd, Eigen::VectorXd>> pairs;  // (s, y)
  Eigen::VectorXd pgrad = projected(x, grad);
  std::vector<bool> active = held(x, grad);
  PriorFit out{evidence.prior(x), -f * rows, 0, false, pgrad.cwiseAbs().maxCoeff()};
  int it = 0;
  for (; it < options.max_iterations; ++it) {
    if (pgrad.cwiseAbs().maxCoeff() < options.gradient_tolerance) {
      out.converged = true;
      break;
    }
    // Two-loop recursion.
    Eigen::VectorXd q = pgrad;
    std::vector<double> alpha(pairs.size());
    for (std::size_t k = pairs.size(); k-- > 0;) {
      const auto& [s, y] = pairs[k];
      alpha[k] = s.dot(q) / y.dot(s);
      q -= alpha[k] * y;
    }
    if (!pairs.empty()) {
      const auto& [s, y] = pairs.back();
      q *= s.dot(y) / y.squaredNorm();
    } else {
      q /= std::max(1.0, pgrad.norm());  // a first step of length at most 1
    }
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      const auto& [s, y] = pairs[k];
      const double b = y.dot(q) / y.dot(s);
      q += (alpha[k] - b) * s;
    }
    Eigen::VectorXd direction = -q;
    for (Eigen::Index i = psi_start; i < x.size(); ++i) {
      // Held coordinates stay on the bound (the curvature pairs, from the full gradient, may
      // give them either sign), and no free one is pushed below it.
      if (active[static_cast<std::size_t>(i)] || (x(i) <= lower && direction(i) < 0))
        direction(i) = 0.0;
    }
    double slope = pgrad.dot(direction);
    if (!(slope < 0)) {  // not a descent direction: restart from steepest descent
      pairs.clear();
      direction = -pgrad / std::max(1.0, pgrad.norm());
      slope = pgrad.dot(direction);
    }
    double step = 1.0, f_next = 0.0;
    Eigen::VectorXd x_next, g_next;
    bool accepted = false;
    for (int ls = 0; ls < 60; ++ls, step /= 2) {
      x_next = x + step * direction;
      project(x_next);
      if (!evidence.admissible(x_next)) continue;
      // Armijo on the projected step: the predicted change from the full gradient must be a
      // decrease (projection can turn a descent direction's step into one that is not).
      const double predicted = grad.dot(x_next - x);
      if (!(predicted < 0)) continue;
      f_next = -evidence.value(x_next, &g_next) / rows;
      if (std::isfinite(f_next) && f_next <= f + 1e-4 * predicted) {
        accepted = true;
        break;
      }
    }
    // No decrease possible along the direction (or only by a step that rounds away): stop,
    // unconverged.
    if (!accepted || x_next == x) break;
    g_next = -g_next / rows;
    Eigen::VectorXd s = x_next - x, y = g_next - grad;
    if (s.dot(y) > 1e-12 * s.norm() * y.norm()) {
      pairs.emplace_back(std::move(s), std::move(y));
      if (static_cast<int>(pairs.size()) > options.memory) pairs.pop_front();
    }
    x = std::move(x_next);
    f = f_next;
    grad = std::move(g_next);
    pgrad = projected(x, grad);
    std::vector<bool> now = held(x, grad);
    if (now != active) {
      pairs.clear();
      active = std::move(now);
    }
  }
  const double gnorm = pgrad.cwiseAbs().maxCoeff();
  out = PriorFit{evidence.prior(x), -f * rows, it,
                 out.converged || gnorm < options.gradient_tolerance, gnorm};
  return out;
}

}  // namespace baypr
