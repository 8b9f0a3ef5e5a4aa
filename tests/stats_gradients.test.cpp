// Analytic gradients against finite differences: StudentT::log_pdf_gradient, and the whole chain
// support -> NIW posterior -> Student-t of log_predictive_vjp / log_predictive_self_vjp (support,
// queries, natural and unconstrained prior hyper-parameters); the low-rank path against the dense
// one; second derivatives from dual numbers run through the analytic reverse pass (Hessian-vector
// products against finite differences of the gradient); float against double; bad input.
//
// Finite differences use the five-point central stencil (truncation O(h^4), rounding
// O(eps |f| / h)) with h = 2e-4 relative to the scale of what is perturbed: its error is <~1e-9,
// so a tolerance of 1e-7 relative to max(1, max |gradient entry|) leaves a wide margin while any
// dropped term or wrong factor (which moves an entry by its own size) fails by orders of magnitude.
// Set BAYPR_GRADIENT_REPORT=1 to print the worst error of every check at exit.
#include <Eigen/Core>
#include <unsupported/Eigen/AutoDiff>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/baypr.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

using baypr::test::max_relative_error;
using baypr::test::relative_error;

namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using Prior = baypr::NiwPrior<double>;
using Unconstrained = baypr::NiwUnconstrained<double>;
using Vjp = baypr::PredictiveVjp<double>;
using baypr::Path;
using Rng = std::mt19937_64;

constexpr double infinity = std::numeric_limits<double>::infinity();

// Tolerances (see the header comment for the finite-difference error budget).
constexpr double fd_tol = 1e-7;     // analytic gradient vs finite differences
constexpr double path_tol = 1e-10;  // low-rank path vs dense path
constexpr double hvp_tol = 1e-7;    // dual-number Hessian-vector product vs FD of gradients
constexpr double float_tol = 1e-3;  // float vs double

// ---------------------------------------------------------------------------------------------
// Error bookkeeping: every comparison records its error under a check name, so that the worst
// case of each check can be reported (BAYPR_GRADIENT_REPORT=1).

class WorstErrors {
 public:
  void record(const std::string& check, double err) {
    auto [it, inserted] = worst_.try_emplace(check, err);
    if (!inserted && !(err <= it->second)) it->second = err;  // NaN is the worst
  }
  WorstErrors() = default;
  WorstErrors(const WorstErrors&) = delete;
  WorstErrors& operator=(const WorstErrors&) = delete;
  ~WorstErrors() {
    if (std::getenv("BAYPR_GRADIENT_REPORT") == nullptr) return;
    std::printf("worst error per check:\n");
    for (const auto& [check, err] : worst_) std::printf("  %-58s %.2e\n", check.c_str(), err);
  }

 private:
  std::map<std::string, double> worst_;
};

WorstErrors& worst_errors() {
  static WorstErrors w;
  return w;
}

void expect_within(const std::string& check, double err, double tol) {
  worst_errors().record(check, err);
  INFO(check << ": error " << err << ", tolerance " << tol);
  CHECK(err <= tol);
}

// max_ij |got - expected| / max(1, max |got|, max |expected|): relative for large gradients,
// absolute below 1. Shape mismatch or non-finite entries give +inf.
template <class A, class B>
double gradient_error(const Eigen::MatrixBase<A>& got, const Eigen::MatrixBase<B>& expected) {
  if (got.rows() != expected.rows() || got.cols() != expected.cols()) return infinity;
  double diff = 0.0, scale = 1.0;
  for (Eigen::Index j = 0; j < got.cols(); ++j) {
    for (Eigen::Index i = 0; i < got.rows(); ++i) {
      const double g = static_cast<double>(got(i, j));
      const double e = static_cast<double>(expected(i, j));
      if (!std::isfinite(g) || !std::isfinite(e)) return infinity;
      diff = std::max(diff, std::abs(g - e));
      scale = std::max({scale, std::abs(g), std::abs(e)});
    }
  }
  return diff / scale;
}

double gradient_error(double got, double expected) {
  if (!std::isfinite(got) || !std::isfinite(expected)) return infinity;
  return std::abs(got - expected) / std::max({1.0, std::abs(got), std::abs(expected)});
}

// ---------------------------------------------------------------------------------------------
// Finite differences.

// f'(0) by the five-point central stencil; f may return a double or an Eigen matrix.
template <class F>
auto central_difference(F&& f, double h) {
  using R = std::decay_t<decltype(f(0.0))>;
  const R fm2 = f(-2.0 * h), fm1 = f(-h), fp1 = f(h), fp2 = f(2.0 * h);
  R out = ((fm2 - fp2) + 8.0 * (fp1 - fm1)) / (12.0 * h);
  return out;
}

// d f / d X(i, j) for every entry of X; f takes the perturbed matrix.
template <class F>
Mat fd_entries(const Mat& X, double h, F&& f) {
  Mat G(X.rows(), X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    for (Eigen::Index i = 0; i < X.rows(); ++i) {
      G(i, j) = central_difference(
          [&](double t) {
            Mat Y = X;
            Y(i, j) += t;
            return f(Y);
          },
          h);
    }
  }
  return G;
}

// The gradient with respect to a symmetric matrix S whose entries are taken as independent:
// perturbing (i, j) and (j, i) together gives dV = 2 h G_ij off the diagonal and h G_ii on it.
template <class F>
Mat fd_symmetric(const Mat& S, double h, F&& f) {
  Mat G(S.rows(), S.cols());
  for (Eigen::Index j = 0; j < S.cols(); ++j) {
    for (Eigen::Index i = j; i < S.rows(); ++i) {
      const double fd = central_difference(
          [&](double t) {
            Mat Y = S;
            Y(i, j) += t;
            if (i != j) Y(j, i) += t;
            return f(Y);
          },
          h);
      G(i, j) = G(j, i) = (i == j) ? fd : fd / 2.0;
    }
  }
  return G;
}

// The gradient with respect to the lower triangle (diagonal included) of L; the strict upper
// triangle of the result is zero.
template <class F>
Mat fd_lower(const Mat& L, double h_off, double h_diag, F&& f) {
  Mat G = Mat::Zero(L.rows(), L.cols());
  for (Eigen::Index j = 0; j < L.cols(); ++j) {
    for (Eigen::Index i = j; i < L.rows(); ++i) {
      G(i, j) = central_difference(
          [&](double t) {
            Mat Y = L;
            Y(i, j) += t;
            return f(Y);
          },
          i == j ? h_diag : h_off);
    }
  }
  return G;
}

double max_abs(const Mat& X) {
  return X.size() == 0 ? 0.0 : X.cwiseAbs().maxCoeff();
}

// ---------------------------------------------------------------------------------------------
// Random inputs.

double log_uniform(Rng& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  return std::exp(u(rng));
}

Mat normal_matrix(Eigen::Index rows, Eigen::Index cols, Rng& rng) {
  std::normal_distribution<double> normal;
  Mat X(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) X(i, j) = normal(rng);
  return X;
}

Vec normal_vector(Eigen::Index size, Rng& rng) {
  return normal_matrix(size, 1, rng).col(0);
}

// Symmetric (exactly) positive definite, eigenvalues >= 0.3, non-diagonal.
Mat random_spd(Eigen::Index d, Rng& rng) {
  const Mat B = normal_matrix(d, d, rng);
  const Mat S = B * B.transpose() / static_cast<double>(d) + 0.3 * Mat::Identity(d, d);
  return (S + S.transpose()) / 2.0;
}

// A non-diagonal prior with random hyper-parameters: kappa0 in [0.05, 3], nu0 - (d - 1) in
// [0.5, 6], Psi0 of scale in [0.3, 3].
Prior random_prior(Eigen::Index d, Rng& rng) {
  const Vec mu0 = normal_vector(d, rng);
  const double kappa0 = log_uniform(rng, 0.05, 3.0);
  const double nu0 = static_cast<double>(d - 1) + log_uniform(rng, 0.5, 6.0);
  const double s = log_uniform(rng, 0.3, 3.0);
  return Prior(mu0, kappa0, nu0, s * random_spd(d, rng));
}

// A diagonal prior (isotropic: mu0 = 0, Psi0 = s I; else random mu0 and diagonal entries).
Prior random_diagonal_prior(Eigen::Index d, Rng& rng, bool isotropic) {
  const double kappa0 = log_uniform(rng, 0.05, 3.0);
  const double nu0 = static_cast<double>(d - 1) + log_uniform(rng, 0.5, 6.0);
  if (isotropic) return Prior::isotropic(d, kappa0, nu0, log_uniform(rng, 0.3, 3.0));
  Vec diag(d);
  for (Eigen::Index i = 0; i < d; ++i) diag(i) = log_uniform(rng, 0.3, 3.0);
  return Prior(normal_vector(d, rng), kappa0, nu0, Mat(diag.asDiagonal()));
}

// Correlated rows around an offset, one sample per row.
Mat data_rows(Eigen::Index n, Eigen::Index d, Rng& rng, double scale = 1.0) {
  const Mat A = normal_matrix(d, d, rng);
  Mat Y = scale * normal_matrix(n, d, rng) * A / std::sqrt(static_cast<double>(d));
  if (n > 0) Y.rowwise() += Eigen::RowVectorXd::LinSpaced(d, -1.0, 2.0);
  return Y;
}

// Weights of both signs (for m = 1 the sign alternates with `negative`).
Vec random_weights(Eigen::Index m, Rng& rng, bool negative) {
  Vec w = normal_vector(m, rng);
  if (m >= 2) {
    w(0) = std::abs(w(0)) + 0.1;
    w(1) = -std::abs(w(1)) - 0.1;
  } else if (m == 1) {
    w(0) = (negative ? -1.0 : 1.0) * (std::abs(w(0)) + 0.1);
  }
  return w;
}

const char* path_name(Path path) {
  switch (path) {
    case Path::dense:
      return "dense";
    case Path::low_rank:
      return "low-rank";
    case Path::automatic:
    default:
      return "automatic";
  }
}

// ---------------------------------------------------------------------------------------------
// Reference values computed directly from the posterior (no gradient code involved).

double weighted_log_density(const Prior& prior, const Mat& Z, const Mat& Q, const Vec& w,
                            Path path) {
  return w.dot(prior.posterior(Z, path).predictive().log_pdf(Q));
}

// d V / d psi0_factor(i, i) for a diagonal prior, i.e. with respect to the log diagonal f of the
// Cholesky factor of Psi0 (Psi0_ii = exp(2 f_i)), at the entries `indices` (all when empty). The
// prior is built diagonal directly (what NiwUnconstrained::to_prior gives for a diagonal factor,
// without its O(d^3) product, so that d = 300 stays cheap under the sanitizers).
template <class F>
Vec fd_factor_log_diagonal(const Prior& prior, const std::vector<Eigen::Index>& indices,
                           F&& value_of_prior) {
  const Vec f = Unconstrained::from_prior(prior).psi0_factor.diagonal();
  std::vector<Eigen::Index> all = indices;
  if (all.empty())
    for (Eigen::Index i = 0; i < f.size(); ++i) all.push_back(i);
  Vec out(static_cast<Eigen::Index>(all.size()));
  for (std::size_t k = 0; k < all.size(); ++k) {
    out(static_cast<Eigen::Index>(k)) = central_difference(
        [&](double t) {
          Vec g = f;
          g(all[k]) += t;
          return value_of_prior(Prior(prior.mean(), prior.kappa(), prior.nu(),
                                      Mat((2.0 * g).array().exp().matrix().asDiagonal())));
        },
        2e-4);
  }
  return out;
}

Vec select(const Vec& v, const std::vector<Eigen::Index>& indices) {
  if (indices.empty()) return v;
  Vec out(static_cast<Eigen::Index>(indices.size()));
  for (std::size_t k = 0; k < indices.size(); ++k)
    out(static_cast<Eigen::Index>(k)) = v(indices[k]);
  return out;
}

// Every gradient of log_predictive_vjp (or of the self variant, self = true: queries = support)
// against finite differences of the directly computed value.
void check_vjp_against_fd(const Prior& prior, const Mat& Z, const Mat& Q, const Vec& w, Path path,
                          bool self = false) {
  const std::string tag = std::string(self ? "self_vjp " : "vjp ") + path_name(path) + " ";
  const Eigen::Index d = prior.dim();
  const Vjp g = self ? baypr::log_predictive_self_vjp(prior, Z, w, path)
                     : baypr::log_predictive_vjp(prior, Z, Q, w, path);
  const bool low_rank = prior.posterior(Z, path).is_low_rank();
  auto V = [&](const Prior& p, const Mat& z, const Mat& q) {
    return weighted_log_density(p, z, self ? z : q, w, path);
  };

  expect_within(tag + "value vs direct (relative)", relative_error(g.value, V(prior, Z, Q)), 1e-12);

  const double data_scale = std::max({1.0, max_abs(Z), self ? 0.0 : max_abs(Q)});
  const double h_data = 2e-4 * data_scale;
  expect_within(tag + "d_support",
                gradient_error(g.d_support,
                               fd_entries(Z, h_data, [&](const Mat& z) { return V(prior, z, Q); })),
                fd_tol);
  if (self) {
    CHECK(g.d_queries.rows() == 0);
  } else {
    expect_within(
        tag + "d_queries",
        gradient_error(g.d_queries,
                       fd_entries(Q, h_data, [&](const Mat& q) { return V(prior, Z, q); })),
        fd_tol);
  }

  const Vec mu0 = prior.mean();
  const double k0 = prior.kappa(), nu0 = prior.nu();
  const Mat psi0 = prior.scatter();
  const double h_mu = 2e-4 * std::max(data_scale, max_abs(mu0));
  expect_within(tag + "d_mu0",
                gradient_error(g.d_mu0, fd_entries(mu0, h_mu,
                                                   [&](const Mat& m) {
                                                     return V(Prior(m.col(0), k0, nu0, psi0), Z, Q);
                                                   })),
                fd_tol);
  expect_within(tag + "d_kappa0",
                gradient_error(g.d_kappa0,
                               central_difference(
                                   [&](double t) { return V(Prior(mu0, k0 + t, nu0, psi0), Z, Q); },
                                   2e-4 * k0)),
                fd_tol);
  const double excess = nu0 - static_cast<double>(d - 1);
  expect_within(
      tag + "d_nu0",
      gradient_error(g.d_nu0, central_difference(
                                  [&](double t) { return V(Prior(mu0, k0, nu0 + t, psi0), Z, Q); },
                                  2e-4 * excess)),
      fd_tol);

  const Unconstrained u = Unconstrained::from_prior(prior);
  auto Vu = [&](const Unconstrained& x) { return V(x.to_prior(), Z, Q); };
  expect_within(tag + "d_log_kappa0",
                gradient_error(g.d_log_kappa0, central_difference(
                                                   [&](double t) {
                                                     Unconstrained x = u;
                                                     x.log_kappa0 += t;
                                                     return Vu(x);
                                                   },
                                                   2e-4)),
                fd_tol);
  expect_within(tag + "d_log_nu0_excess",
                gradient_error(g.d_log_nu0_excess, central_difference(
                                                       [&](double t) {
                                                         Unconstrained x = u;
                                                         x.log_nu0_excess += t;
                                                         return Vu(x);
                                                       },
                                                       2e-4)),
                fd_tol);

  if (!low_rank) {
    const double h_psi = 2e-4 * psi0.diagonal().maxCoeff();
    expect_within(tag + "d_psi0 (symmetric perturbations)",
                  gradient_error(g.d_psi0, fd_symmetric(psi0, h_psi,
                                                        [&](const Mat& p) {
                                                          return V(Prior(mu0, k0, nu0, p), Z, Q);
                                                        })),
                  fd_tol);
    expect_within(tag + "d_psi0 symmetric", gradient_error(g.d_psi0, Mat(g.d_psi0.transpose())),
                  1e-13);
    const double h_factor = 2e-4 * std::max(1.0, max_abs(u.psi0_factor));
    expect_within(tag + "d_psi0_factor (lower triangle)",
                  gradient_error(g.d_psi0_factor, fd_lower(u.psi0_factor, h_factor, 2e-4,
                                                           [&](const Mat& f) {
                                                             Unconstrained x = u;
                                                             x.psi0_factor = f;
                                                             return Vu(x);
                                                           })),
                  fd_tol);
    CHECK((g.d_psi0_log_diagonal == g.d_psi0_factor.diagonal()));
  } else {
    CHECK(g.d_psi0.size() == 0);
    CHECK(g.d_psi0_factor.size() == 0);
    expect_within(tag + "d_psi0_log_diagonal",
                  gradient_error(g.d_psi0_log_diagonal,
                                 fd_factor_log_diagonal(
                                     prior, {}, [&](const Prior& p) { return V(p, Z, Q); })),
                  fd_tol);
  }
}

// ---------------------------------------------------------------------------------------------
// Dual numbers: Eigen::AutoDiffScalar with two derivative components.

using AD = Eigen::AutoDiffScalar<Eigen::VectorXd>;
using MatAD = Eigen::Matrix<AD, Eigen::Dynamic, Eigen::Dynamic>;
using VecAD = Eigen::Matrix<AD, Eigen::Dynamic, 1>;

AD dual(double x, double d0, double d1) {
  Eigen::VectorXd der(2);
  der << d0, d1;
  return AD(x, der);
}

MatAD dual(const Mat& X, const Mat& D0, const Mat& D1) {
  MatAD out(X.rows(), X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    for (Eigen::Index i = 0; i < X.rows(); ++i) out(i, j) = dual(X(i, j), D0(i, j), D1(i, j));
  return out;
}

// k < 0: the value; k >= 0: derivative component k (zero when the dual carries none).
template <class S>
double scalar_part(const S& x, int k) {
  if constexpr (std::is_arithmetic_v<S>) {
    return static_cast<double>(x);
  } else {
    if (k < 0) return x.value();
    return x.derivatives().size() > k ? x.derivatives()(k) : 0.0;
  }
}

template <class Derived>
Mat part(const Eigen::MatrixBase<Derived>& X, int k) {
  Mat out(X.rows(), X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    for (Eigen::Index i = 0; i < X.rows(); ++i) out(i, j) = scalar_part(X(i, j), k);
  return out;
}

const std::vector<std::string>& block_names() {
  static const std::vector<std::string> names = {
      "value",  "d_support",    "d_queries",        "d_mu0",         "d_kappa0",           "d_nu0",
      "d_psi0", "d_log_kappa0", "d_log_nu0_excess", "d_psi0_factor", "d_psi0_log_diagonal"};
  return names;
}

// Every output of a VJP (value or derivative component k) as arrays, in block_names() order.
template <class S>
std::vector<Mat> blocks(const baypr::PredictiveVjp<S>& g, int k = -1) {
  auto scalar = [&](const S& x) { return Mat(Mat::Constant(1, 1, scalar_part(x, k))); };
  return {scalar(g.value),
          part(g.d_support, k),
          part(g.d_queries, k),
          part(g.d_mu0, k),
          scalar(g.d_kappa0),
          scalar(g.d_nu0),
          part(g.d_psi0, k),
          scalar(g.d_log_kappa0),
          scalar(g.d_log_nu0_excess),
          part(g.d_psi0_factor, k),
          part(g.d_psi0_log_diagonal, k)};
}

// Forward-mode duals over the analytic reverse pass: direction 0 moves the data (support and
// queries), direction 1 the unconstrained prior. The derivatives of every gradient entry are a
// Hessian-vector product, checked against central differences of the double gradient along the
// same direction; the derivatives of the value are checked against <gradient, direction>.
void check_second_order(const Prior& prior, const Mat& Z, const Mat& Q, const Vec& w, Path path,
                        bool self, Rng& rng) {
  const std::string tag = std::string(self ? "self_vjp " : "vjp ") + path_name(path) + " ";
  const Eigen::Index d = prior.dim(), n = Z.rows(), m = Q.rows();
  const bool low_rank = prior.posterior(Z, path).is_low_rank();
  const Unconstrained u = Unconstrained::from_prior(prior);

  // Directions, entries O(0.5).
  const Mat UZ = 0.5 * normal_matrix(n, d, rng);
  const Mat UQ = self ? Mat::Zero(m, d) : Mat(0.5 * normal_matrix(m, d, rng));
  const Vec Umu = 0.5 * normal_vector(d, rng);
  const double ulk = 0.5, uln = -0.4;
  Mat UL = 0.3 * normal_matrix(d, d, rng);
  if (low_rank) {
    UL = Mat(UL.diagonal().asDiagonal());  // the prior must stay diagonal
  } else {
    UL = Mat(UL.triangularView<Eigen::Lower>());
  }

  const Mat zeros_Z = Mat::Zero(n, d), zeros_Q = Mat::Zero(m, d);
  const MatAD Zad = dual(Z, UZ, zeros_Z);
  const MatAD Qad = dual(Q, UQ, zeros_Q);
  const VecAD wad = dual(Mat(w), Mat::Zero(m, 1), Mat::Zero(m, 1)).col(0);
  baypr::NiwUnconstrained<AD> uad;
  uad.mu0 = dual(Mat(u.mu0), Mat::Zero(d, 1), Mat(Umu)).col(0);
  uad.log_kappa0 = dual(u.log_kappa0, 0.0, ulk);
  uad.log_nu0_excess = dual(u.log_nu0_excess, 0.0, uln);
  uad.psi0_factor = dual(u.psi0_factor, Mat::Zero(d, d), UL);
  const baypr::NiwPrior<AD> prior_ad = uad.to_prior();
  REQUIRE(prior_ad.posterior(Zad, path).is_low_rank() == low_rank);
  const auto gad = self ? baypr::log_predictive_self_vjp(prior_ad, Zad, wad, path)
                        : baypr::log_predictive_vjp(prior_ad, Zad, Qad, wad, path);

  auto grads = [&](double t_data, double t_prior) {
    Unconstrained x = u;
    x.mu0 += t_prior * Umu;
    x.log_kappa0 += t_prior * ulk;
    x.log_nu0_excess += t_prior * uln;
    x.psi0_factor += t_prior * UL;
    const Prior p = x.to_prior();
    const Mat z = Z + t_data * UZ;
    return self ? baypr::log_predictive_self_vjp(p, z, w, path)
                : baypr::log_predictive_vjp(p, z, Mat(Q + t_data * UQ), w, path);
  };

  const Vjp base = grads(0.0, 0.0);
  const auto names = block_names();
  const std::vector<Mat> values_ad = blocks(gad), values = blocks(base);
  for (std::size_t b = 0; b < names.size(); ++b) {
    expect_within(tag + "dual value == double " + names[b], gradient_error(values_ad[b], values[b]),
                  1e-12);
  }

  // First order: d value / d direction == <gradient, direction>.
  const double dir0 = (base.d_support.cwiseProduct(UZ)).sum() +
                      (self ? 0.0 : base.d_queries.cwiseProduct(UQ).sum());
  double dir1 = base.d_mu0.dot(Umu) + base.d_log_kappa0 * ulk + base.d_log_nu0_excess * uln;
  dir1 += low_rank ? base.d_psi0_log_diagonal.dot(UL.diagonal())
                   : base.d_psi0_factor.cwiseProduct(UL).sum();
  expect_within(tag + "dual d value (data direction) == <gradient, direction>",
                gradient_error(scalar_part(gad.value, 0), dir0), 1e-11);
  expect_within(tag + "dual d value (prior direction) == <gradient, direction>",
                gradient_error(scalar_part(gad.value, 1), dir1), 1e-11);

  // Second order: derivative components of the gradients vs FD of the double gradients.
  const double h = 1e-3;
  for (int k = 0; k < 2; ++k) {
    auto at = [&](double t) { return blocks(k == 0 ? grads(t, 0.0) : grads(0.0, t)); };
    const std::vector<Mat> fm2 = at(-2.0 * h), fm1 = at(-h), fp1 = at(h), fp2 = at(2.0 * h);
    const std::vector<Mat> hvp = blocks(gad, k);
    for (std::size_t b = 1; b < names.size(); ++b) {
      const Mat fd = ((fm2[b] - fp2[b]) + 8.0 * (fp1[b] - fm1[b])) / (12.0 * h);
      expect_within(
          tag + "Hessian-vector product (" + (k == 0 ? "data" : "prior") + ") " + names[b],
          gradient_error(hvp[b], fd), hvp_tol);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("StudentT::log_pdf_gradient matches finite differences of log_pdf",
          "[gradients][studentt]") {
  Rng rng(20260201);
  for (Eigen::Index d : {1, 2, 5, 12}) {
    for (int rep = 0; rep < 3; ++rep) {
      const double radius = rep == 0 ? 0.3 : rep == 1 ? 1.5 : 6.0;  // centre, bulk, far tail
      const Vec mu = normal_vector(d, rng);
      const Mat sigma = log_uniform(rng, 0.2, 5.0) * random_spd(d, rng);
      const double dof = log_uniform(rng, 0.7, 30.0);
      const Mat Lsig = Eigen::LLT<Mat>(sigma).matrixL();
      const Vec x = mu + radius * Lsig * normal_vector(d, rng);
      INFO("d=" << d << " rep=" << rep << " dof=" << dof);

      const baypr::StudentT<double> t(mu, sigma, dof);
      const auto g = t.log_pdf_gradient(x);
      expect_within("StudentT value == log_pdf (relative)", relative_error(g.value, t.log_pdf(x)),
                    1e-14);
      auto lp = [&](const Vec& m, const Mat& s, double v, const Vec& at) {
        return baypr::StudentT<double>(m, s, v).log_pdf(at);
      };
      const double h = 2e-4 * std::sqrt(sigma.diagonal().maxCoeff());
      expect_within(
          "StudentT d_x",
          gradient_error(
              g.d_x, fd_entries(x, h, [&](const Mat& y) { return lp(mu, sigma, dof, y.col(0)); })),
          fd_tol);
      expect_within(
          "StudentT d_location",
          gradient_error(
              g.d_location,
              fd_entries(mu, h, [&](const Mat& y) { return lp(y.col(0), sigma, dof, x); })),
          fd_tol);
      expect_within(
          "StudentT d_scale (symmetric perturbations)",
          gradient_error(g.d_scale, fd_symmetric(sigma, 2e-4 * sigma.diagonal().maxCoeff(),
                                                 [&](const Mat& s) { return lp(mu, s, dof, x); })),
          fd_tol);
      expect_within("StudentT d_scale symmetric",
                    gradient_error(g.d_scale, Mat(g.d_scale.transpose())), 1e-14);
      expect_within("StudentT d_dof",
                    gradient_error(g.d_dof, central_difference(
                                                [&](double e) { return lp(mu, sigma, dof + e, x); },
                                                2e-4 * dof)),
                    fd_tol);
    }
  }
}

TEST_CASE("StudentT::log_pdf_gradient of a low-rank predictive equals the dense one",
          "[gradients][studentt][low_rank]") {
  Rng rng(31);
  struct Shape {
    Eigen::Index d, n;
    bool isotropic;
  };
  for (const Shape s :
       {Shape{5, 2, true}, Shape{12, 3, true}, Shape{12, 10, false}, Shape{40, 4, true}}) {
    INFO("d=" << s.d << " n=" << s.n << " isotropic=" << s.isotropic);
    const Prior prior = random_diagonal_prior(s.d, rng, s.isotropic);
    const Mat Z = data_rows(s.n, s.d, rng);
    const auto tl = prior.posterior(Z, Path::low_rank).predictive();
    const auto td = prior.posterior(Z, Path::dense).predictive();
    REQUIRE(tl.is_low_rank());
    REQUIRE(!td.is_low_rank());
    const Mat X = data_rows(3, s.d, rng, 2.0);
    for (Eigen::Index j = 0; j < X.rows(); ++j) {
      const Vec x = X.row(j).transpose();
      const auto gl = tl.log_pdf_gradient(x);
      const auto gd = td.log_pdf_gradient(x);
      expect_within("StudentT low-rank value == dense", relative_error(gl.value, gd.value),
                    path_tol);
      expect_within("StudentT low-rank d_x == dense", max_relative_error(gl.d_x, gd.d_x), path_tol);
      expect_within("StudentT low-rank d_location == dense",
                    max_relative_error(gl.d_location, gd.d_location), path_tol);
      expect_within("StudentT low-rank d_scale == dense",
                    max_relative_error(gl.d_scale, gd.d_scale), path_tol);
      expect_within("StudentT low-rank d_dof == dense", relative_error(gl.d_dof, gd.d_dof),
                    path_tol);
      // And the low-rank d_x against finite differences of the low-rank log_pdf itself.
      expect_within(
          "StudentT low-rank d_x",
          gradient_error(
              gl.d_x, fd_entries(x, 2e-4, [&](const Mat& y) { return tl.log_pdf(Vec(y.col(0))); })),
          fd_tol);
    }
  }
}

TEST_CASE("log_predictive_vjp: every gradient matches finite differences (dense path)",
          "[gradients][vjp]") {
  Rng rng(20260202);
  // Each SECTION is its own pass through the test case (Catch2 runs the case once per leaf
  // section), so the main sweep is a section too: outside one it ran again for every other.
  SECTION("non-diagonal priors: d x n x m sweep") {
    bool negative = false;
    for (Eigen::Index d : {1, 3, 6, 16}) {
      for (Eigen::Index n : {1, 2, 5, 20}) {
        for (Eigen::Index m : {1, 7}) {
          INFO("d=" << d << " n=" << n << " m=" << m);
          const Prior prior = random_prior(d, rng);
          const Mat Z = data_rows(n, d, rng);
          const Mat Q = data_rows(m, d, rng, 2.0);
          const Vec w = random_weights(m, rng, negative = !negative);
          check_vjp_against_fd(prior, Z, Q, w, Path::dense);
        }
      }
    }
  }
  SECTION("diagonal priors on the dense path (a diagonal Cholesky factor of Psi0)") {
    for (const auto& [d, n] : {std::pair<Eigen::Index, Eigen::Index>{6, 2}, {6, 20}, {16, 5}}) {
      INFO("d=" << d << " n=" << n);
      const Prior prior = random_diagonal_prior(d, rng, n == 20);
      const Mat Z = data_rows(n, d, rng);
      const Mat Q = data_rows(7, d, rng, 2.0);
      check_vjp_against_fd(prior, Z, Q, random_weights(7, rng, true), Path::dense);
    }
  }
  SECTION("no support rows (n = 0): the prior predictive") {
    for (Eigen::Index d : {1, 4}) {
      INFO("d=" << d);
      const Prior prior = random_prior(d, rng);
      const Mat Q = data_rows(5, d, rng, 2.0);
      check_vjp_against_fd(prior, Mat(0, d), Q, random_weights(5, rng, true), Path::dense);
    }
  }
}

TEST_CASE("log_predictive_vjp: every gradient matches finite differences (low-rank path)",
          "[gradients][vjp][low_rank]") {
  Rng rng(20260203);
  struct Shape {
    Eigen::Index d, n, m;
    bool isotropic;
  };
  // n + 1 < d (the regime the low-rank path is for), and forced with n + 1 >= d.
  for (const Shape s : {Shape{6, 1, 7, false}, Shape{6, 2, 1, true}, Shape{16, 1, 7, true},
                        Shape{16, 2, 7, false}, Shape{16, 5, 1, false}, Shape{16, 5, 7, true},
                        Shape{3, 5, 7, false}, Shape{6, 20, 7, false}}) {
    INFO("d=" << s.d << " n=" << s.n << " m=" << s.m << " isotropic=" << s.isotropic);
    const Prior prior = random_diagonal_prior(s.d, rng, s.isotropic);
    const Mat Z = data_rows(s.n, s.d, rng);
    const Mat Q = data_rows(s.m, s.d, rng, 2.0);
    REQUIRE(prior.posterior(Z, Path::low_rank).is_low_rank());
    check_vjp_against_fd(prior, Z, Q, random_weights(s.m, rng, s.isotropic), Path::low_rank);
  }
}

TEST_CASE("log_predictive_self_vjp: gradient with the queries moving with the support",
          "[gradients][vjp][self]") {
  Rng rng(20260204);
  bool negative = false;
  for (Eigen::Index d : {1, 3, 6, 16}) {
    for (Eigen::Index n : {1, 2, 5, 20}) {
      INFO("d=" << d << " n=" << n);
      const Prior prior = random_prior(d, rng);
      const Mat Z = data_rows(n, d, rng);
      const Vec w = random_weights(n, rng, negative = !negative);
      check_vjp_against_fd(prior, Z, Z, w, Path::dense, true);

      // The self variant is the plain one with Q = Z, both roles of Z summed.
      const Vjp s = baypr::log_predictive_self_vjp(prior, Z, w, Path::dense);
      const Vjp p = baypr::log_predictive_vjp(prior, Z, Z, w, Path::dense);
      CHECK(s.d_queries.rows() == 0);
      CHECK(s.d_queries.cols() == d);
      expect_within("self_vjp d_support == vjp(Z, Z) d_support + d_queries",
                    max_relative_error(s.d_support, Mat(p.d_support + p.d_queries)), 1e-14);
      CHECK(s.value == p.value);
      CHECK((s.d_psi0 == p.d_psi0));
      CHECK(s.d_kappa0 == p.d_kappa0);
    }
  }
  // Low-rank path: diagonal priors, n + 1 < d.
  for (const auto& [d, n] : {std::pair<Eigen::Index, Eigen::Index>{6, 2}, {16, 1}, {16, 5}}) {
    INFO("low-rank d=" << d << " n=" << n);
    const Prior prior = random_diagonal_prior(d, rng, n == 5);
    const Mat Z = data_rows(n, d, rng);
    check_vjp_against_fd(prior, Z, Z, random_weights(n, rng, true), Path::low_rank, true);
  }
}

TEST_CASE(
    "log_predictive_self_vjp with weights -1/n is the inner loss -mean log t(z_i | posterior(Z))",
    "[gradients][vjp][self]") {
  Rng rng(5);
  for (const auto& [d, n] :
       {std::pair<Eigen::Index, Eigen::Index>{1, 1}, {3, 5}, {8, 3}, {64, 5}, {6, 20}}) {
    for (const Path path : {Path::dense, Path::automatic}) {
      INFO("d=" << d << " n=" << n << " path " << path_name(path));
      const Prior prior =
          path == Path::dense ? random_prior(d, rng) : random_diagonal_prior(d, rng, true);
      const Mat Z = data_rows(n, d, rng);
      const Vec w = Vec::Constant(n, -1.0 / static_cast<double>(n));
      const auto post = prior.posterior(Z);
      const double loss = -post.predictive().log_pdf(Z).mean();
      const Vjp g = baypr::log_predictive_self_vjp(prior, Z, w, path);
      expect_within("self_vjp inner loss == -mean log t (relative)", relative_error(g.value, loss),
                    1e-12);
    }
  }
}

TEST_CASE("low-rank path == dense path for log_predictive_vjp", "[gradients][vjp][low_rank]") {
  Rng rng(20260205);
  struct Shape {
    Eigen::Index d, n;
    bool isotropic;
  };
  for (const Shape s :
       {Shape{8, 1, true}, Shape{8, 2, false}, Shape{8, 6, false}, Shape{64, 1, false},
        Shape{64, 5, true}, Shape{64, 20, false}, Shape{300, 5, false}, Shape{300, 3, true}}) {
    INFO("d=" << s.d << " n=" << s.n << " isotropic=" << s.isotropic);
    const Prior prior = random_diagonal_prior(s.d, rng, s.isotropic);
    const Mat Z = data_rows(s.n, s.d, rng);
    const Mat Q = data_rows(7, s.d, rng, 2.0);
    const Vec w = random_weights(7, rng, true);
    REQUIRE(prior.posterior(Z, Path::automatic).is_low_rank());
    const Vjp lr = baypr::log_predictive_vjp(prior, Z, Q, w, Path::low_rank);
    const Vjp de = baypr::log_predictive_vjp(prior, Z, Q, w, Path::dense);
    const Vjp au = baypr::log_predictive_vjp(prior, Z, Q, w, Path::automatic);
    CHECK(lr.d_psi0.size() == 0);
    CHECK(lr.d_psi0_factor.size() == 0);
    CHECK(de.d_psi0.rows() == s.d);
    CHECK(au.value == lr.value);  // automatic takes the low-rank path here
    CHECK((au.d_support == lr.d_support));

    expect_within("low-rank == dense value", relative_error(lr.value, de.value), path_tol);
    expect_within("low-rank == dense d_support", max_relative_error(lr.d_support, de.d_support),
                  path_tol);
    expect_within("low-rank == dense d_queries", max_relative_error(lr.d_queries, de.d_queries),
                  path_tol);
    expect_within("low-rank == dense d_mu0", max_relative_error(lr.d_mu0, de.d_mu0), path_tol);
    // The scalar hyper-parameter gradients are sums of O(1) terms that can cancel (at d = 300,
    // d_kappa0 ~ 5e-3 from terms ~1 has been seen): relative to max(1, |value|), as for FD.
    expect_within("low-rank == dense d_kappa0", gradient_error(lr.d_kappa0, de.d_kappa0), path_tol);
    expect_within("low-rank == dense d_nu0", gradient_error(lr.d_nu0, de.d_nu0), path_tol);
    expect_within("low-rank == dense d_log_kappa0",
                  gradient_error(lr.d_log_kappa0, de.d_log_kappa0), path_tol);
    expect_within("low-rank == dense d_log_nu0_excess",
                  gradient_error(lr.d_log_nu0_excess, de.d_log_nu0_excess), path_tol);
    expect_within("low-rank == dense d_psi0_log_diagonal",
                  max_relative_error(lr.d_psi0_log_diagonal, de.d_psi0_log_diagonal), path_tol);

    // Self variant too. Its d_support sums the support and query roles, which nearly cancel
    // (entries ~1e-2 from terms ~1), so it is compared relative to max(1, max |entry|).
    const Vec ws = random_weights(s.n, rng, false);
    const Vjp slr = baypr::log_predictive_self_vjp(prior, Z, ws, Path::low_rank);
    const Vjp sde = baypr::log_predictive_self_vjp(prior, Z, ws, Path::dense);
    expect_within("low-rank == dense self value", relative_error(slr.value, sde.value), path_tol);
    expect_within("low-rank == dense self d_support", gradient_error(slr.d_support, sde.d_support),
                  path_tol);
    expect_within("low-rank == dense self d_psi0_log_diagonal",
                  max_relative_error(slr.d_psi0_log_diagonal, sde.d_psi0_log_diagonal), path_tol);

    // FD of d_psi0_log_diagonal on the low-rank path: every entry up to d = 64, 12 random ones
    // at d = 300 (each evaluation still factors the d x d Psi0 in the NiwPrior constructor).
    std::vector<Eigen::Index> indices;
    if (s.d > 64) {
      std::uniform_int_distribution<Eigen::Index> pick(0, s.d - 1);
      for (int k = 0; k < 12; ++k) indices.push_back(pick(rng));
    }
    const Vec fd = fd_factor_log_diagonal(prior, indices, [&](const Prior& p) {
      return weighted_log_density(p, Z, Q, w, Path::low_rank);
    });
    expect_within("vjp low-rank d_psi0_log_diagonal (d up to 300)",
                  gradient_error(select(lr.d_psi0_log_diagonal, indices), fd), fd_tol);
  }
}

TEST_CASE("PriorScatterGradient::skip leaves the Psi0 gradients empty and the others unchanged",
          "[gradients][vjp]") {
  Rng rng(20260208);
  struct Case {
    Eigen::Index d, n;
    bool diagonal;
    Path path;
  };
  // Dense with n + 1 < d takes the implicit (no d x d) route when skipping; n + 1 >= d does not.
  for (const Case c : {Case{6, 2, false, Path::dense}, Case{6, 20, false, Path::dense},
                       Case{16, 5, true, Path::dense}, Case{16, 5, true, Path::low_rank},
                       Case{64, 5, true, Path::automatic}}) {
    INFO("d=" << c.d << " n=" << c.n << " path " << path_name(c.path));
    const Prior prior =
        c.diagonal ? random_diagonal_prior(c.d, rng, false) : random_prior(c.d, rng);
    const Mat Z = data_rows(c.n, c.d, rng);
    const Mat Q = data_rows(7, c.d, rng, 2.0);
    const Vec w = random_weights(7, rng, true);
    for (const bool self : {false, true}) {
      const Vec ws = self ? Vec(random_weights(c.n, rng, false)) : w;
      const Vjp full = self ? baypr::log_predictive_self_vjp(prior, Z, ws, c.path)
                            : baypr::log_predictive_vjp(prior, Z, Q, ws, c.path);
      const Vjp skip = self ? baypr::log_predictive_self_vjp(prior, Z, ws, c.path,
                                                             baypr::PriorScatterGradient::skip)
                            : baypr::log_predictive_vjp(prior, Z, Q, ws, c.path,
                                                        baypr::PriorScatterGradient::skip);
      CHECK(skip.d_psi0.size() == 0);
      CHECK(skip.d_psi0_factor.size() == 0);
      CHECK(skip.d_psi0_log_diagonal.size() == 0);
      const auto names = block_names();
      const std::vector<Mat> bf = blocks(full), bs = blocks(skip);
      for (std::size_t b = 0; b < names.size(); ++b) {
        if (names[b] == "d_psi0" || names[b] == "d_psi0_factor" ||
            names[b] == "d_psi0_log_diagonal")
          continue;
        expect_within("skip == compute " + names[b], max_relative_error(bs[b], bf[b]), path_tol);
      }
    }
  }
}

TEST_CASE("second order: dual numbers over the analytic reverse pass give Hessian-vector products",
          "[gradients][vjp][second_order]") {
  Rng rng(20260206);
  SECTION("dense path, non-diagonal priors") {
    for (const auto& [d, n] :
         {std::pair<Eigen::Index, Eigen::Index>{1, 3}, {3, 5}, {6, 2}, {6, 20}}) {
      INFO("d=" << d << " n=" << n);
      const Prior prior = random_prior(d, rng);
      const Mat Z = data_rows(n, d, rng);
      const Mat Q = data_rows(4, d, rng, 2.0);
      check_second_order(prior, Z, Q, random_weights(4, rng, true), Path::dense, false, rng);
      check_second_order(prior, Z, Z, random_weights(n, rng, false), Path::dense, true, rng);
    }
  }
  SECTION("low-rank path, diagonal priors") {
    for (const auto& [d, n] : {std::pair<Eigen::Index, Eigen::Index>{8, 2}, {16, 5}}) {
      INFO("d=" << d << " n=" << n);
      const Prior prior = random_diagonal_prior(d, rng, false);
      const Mat Z = data_rows(n, d, rng);
      const Mat Q = data_rows(4, d, rng, 2.0);
      check_second_order(prior, Z, Q, random_weights(4, rng, true), Path::low_rank, false, rng);
      check_second_order(prior, Z, Z, random_weights(n, rng, false), Path::low_rank, true, rng);
    }
  }
}

TEST_CASE("float agrees with double for the value and every gradient", "[gradients][vjp][float]") {
  Rng rng(20260207);
  struct Shape {
    Eigen::Index d, n;
    Path path;
  };
  for (const Shape s : {Shape{2, 5, Path::dense}, Shape{4, 3, Path::dense},
                        Shape{4, 8, Path::dense}, Shape{6, 2, Path::low_rank}}) {
    INFO("d=" << s.d << " n=" << s.n << " path " << path_name(s.path));
    const Prior p0 =
        s.path == Path::dense ? random_prior(s.d, rng) : random_diagonal_prior(s.d, rng, false);
    const baypr::NiwPrior<float> pf(p0.mean().cast<float>(), static_cast<float>(p0.kappa()),
                                    static_cast<float>(p0.nu()), p0.scatter().cast<float>());
    // The double reference sees exactly the float-rounded inputs.
    const Prior pd(pf.mean().cast<double>(), static_cast<double>(pf.kappa()),
                   static_cast<double>(pf.nu()), pf.scatter().cast<double>());
    const Eigen::MatrixXf Zf = data_rows(s.n, s.d, rng).cast<float>();
    const Eigen::MatrixXf Qf = data_rows(5, s.d, rng, 2.0).cast<float>();
    const Eigen::VectorXf wf = random_weights(5, rng, true).cast<float>();
    const auto gf = baypr::log_predictive_vjp(pf, Zf, Qf, wf, s.path);
    const Vjp gd = baypr::log_predictive_vjp(pd, Mat(Zf.cast<double>()), Mat(Qf.cast<double>()),
                                             Vec(wf.cast<double>()), s.path);
    const auto names = block_names();
    const std::vector<Mat> bf = blocks(gf), bd = blocks(gd);
    for (std::size_t b = 0; b < names.size(); ++b) {
      expect_within("float == double " + names[b], gradient_error(bf[b], bd[b]), float_tol);
    }
  }
}

TEST_CASE("log_predictive_vjp: bad input names the function, argument and row",
          "[gradients][vjp][errors]") {
  const Eigen::Index d = 3;
  Rng rng(9);
  const Prior prior = random_prior(d, rng);
  const Mat Z = data_rows(4, d, rng);
  const Mat Q = data_rows(5, d, rng);
  const Vec w = random_weights(5, rng, true);
  const double nan = std::nan("");

  Mat Zbad = Z;
  Zbad(2, 1) = nan;
  CHECK(contains(
      message_of([&] { (void)baypr::log_predictive_vjp(prior, Zbad, Q, w); }),
      "baypr::log_predictive_vjp: argument 'support' must be finite, got nan at row 2, column 1"));
  Mat Qbad = Q;
  Qbad(3, 0) = std::numeric_limits<double>::infinity();
  CHECK(contains(
      message_of([&] { (void)baypr::log_predictive_vjp(prior, Z, Qbad, w); }),
      "baypr::log_predictive_vjp: argument 'queries' must be finite, got inf at row 3, column 0"));
  Qbad(3, 0) = nan;
  CHECK(contains(message_of([&] { (void)baypr::log_predictive_vjp(prior, Z, Qbad, w); }),
                 "baypr::log_predictive_vjp: argument 'queries' must be finite, got nan at row 3"));
  Vec wbad = w;
  wbad(4) = nan;
  CHECK(contains(message_of([&] { (void)baypr::log_predictive_vjp(prior, Z, Q, wbad); }),
                 "baypr::log_predictive_vjp: argument 'weights' must be finite, got nan at row 4"));
  CHECK(contains(message_of([&] { (void)baypr::log_predictive_vjp(prior, Z, Q, Vec(w.head(3))); }),
                 "baypr::log_predictive_vjp: argument 'weights' has size 3, expected 5"));
  CHECK(contains(
      message_of([&] { (void)baypr::log_predictive_vjp(prior, Z, Mat(Q.leftCols(2)), w); }),
      "baypr::log_predictive_vjp: argument 'queries' has columns 2, expected 3"));
  CHECK(contains(message_of([&] { (void)baypr::log_predictive_vjp(prior, Mat::Zero(4, 4), Q, w); }),
                 "baypr::log_predictive_vjp: argument 'support' has columns 4, expected 3"));
  CHECK_THROWS_AS(baypr::log_predictive_vjp(prior, Z, Q, wbad), std::invalid_argument);

  // Self variant.
  const Vec ws = random_weights(4, rng, false);
  CHECK(contains(message_of([&] { (void)baypr::log_predictive_self_vjp(prior, Zbad, ws); }),
                 "baypr::log_predictive_self_vjp: argument 'support' must be finite, got nan at "
                 "row 2, column 1"));
  CHECK(contains(message_of([&] { (void)baypr::log_predictive_self_vjp(prior, Z, w); }),
                 "baypr::log_predictive_self_vjp: argument 'weights' has size 5, expected 4"));
  CHECK(
      contains(message_of([&] { (void)baypr::log_predictive_self_vjp(prior, Mat(0, d), Vec(0)); }),
               "baypr::log_predictive_self_vjp: argument 'support' must have at least one row"));

  // Forcing the low-rank path needs a diagonal Psi0.
  REQUIRE(!prior.is_diagonal());
  CHECK_THROWS_AS(baypr::log_predictive_vjp(prior, Z, Q, w, Path::low_rank), std::invalid_argument);
  CHECK(
      contains(message_of([&] { (void)baypr::log_predictive_vjp(prior, Z, Q, w, Path::low_rank); }),
               "argument 'path'"));
  CHECK_THROWS_AS(baypr::log_predictive_self_vjp(prior, Z, ws, Path::low_rank),
                  std::invalid_argument);
  CHECK(contains(
      message_of([&] { (void)baypr::log_predictive_self_vjp(prior, Z, ws, Path::low_rank); }),
      "argument 'path'"));

  // StudentT::log_pdf_gradient checks its point.
  const auto t = prior.posterior(Z).predictive();
  CHECK(contains(message_of([&] { (void)t.log_pdf_gradient(Vec::Zero(d + 1)); }),
                 "baypr::StudentT::log_pdf_gradient: argument 'x' has size 4, expected 3"));
  Vec xbad = Vec::Zero(d);
  xbad(1) = nan;
  CHECK(
      contains(message_of([&] { (void)t.log_pdf_gradient(xbad); }),
               "baypr::StudentT::log_pdf_gradient: argument 'x' must be finite, got nan at row 1"));
}
