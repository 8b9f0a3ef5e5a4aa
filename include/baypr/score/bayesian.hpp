// baypr/score/bayesian.hpp: the Bayesian scorer, an NIW normality model over the support with the
// Student-t posterior predictive as the score, as in BayPrAnoMeta.
//
// Score types (higher = more anomalous):
//   nll   -log t(q | posterior(support))                      the negative log predictive density
//   llr   log p_a(q) - log t(q | posterior(support))           the method's score: likelihood ratio
//         against a vague Student-t anomaly model p_a (authors: mu 0, Sigma 100 I, dof 2)
//   tail  -log P(delta(Y) >= delta(q)), Y ~ predictive        the calibrated p-value, as -log p so
//         tiny p-values stay distinct (computed in log space, never underflows to a tie)
//
// Prior: by default NIW(mu0 = 0, kappa0 = 1e-4, nu0 = d + 2, Psi0 = I), the authors' prior with a
// weaker prior mean (they use kappa0 = 0.01; see the options), a fixed Psi0 = s I of your choice,
// an empirical-Bayes s that maximises the marginal likelihood of the support, or a whole NiwPrior
// of your own (options.prior), such as baypr::fit_prior's type-II maximum likelihood prior learned
// from other product lines' support sets (stats/prior_fit.hpp). With few support rows in high
// dimension most directions see only the prior, so s matters; the empirical choice adapts it to the
// scale of the embeddings.
#pragma once

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <cmath>
#include <optional>
#include <string>

#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/student_t.hpp"
#include "baypr/stats/sufficient_statistics.hpp"

namespace baypr {

enum class BayesScore { nll, llr, tail };

struct BayesianScorerOptions {
  BayesScore score = BayesScore::llr;
  // Strength of the prior mean mu0 = 0. 1e-4, not the authors' 0.01: with K = 1 the rank-one term
  // kappa0 n / (kappa0 + n) (zbar - mu0)(zbar - mu0)^T of Psi_n discounts deviations along the
  // support mean, and at 0.01 that loses to the plain distance to the support image (the
  // prototype). Chosen on Fashion-MNIST validation classes {3, 4, 5} (pixels and a 128-d
  // projection, K = 1..8): see docs/design.md. Psi0 = I and the anomaly model t(0, 100 I, 2)
  // assume embeddings of about unit scale per coordinate (standardise them).
  double kappa0 = 1e-4;
  // nu0 = d + nu0_offset (authors: d + 2). Must keep nu0 > d - 1.
  double nu0_offset = 2.0;
  // Psi0 = psi_scale I, or chosen by maximum marginal likelihood when empirical_psi_scale is set.
  double psi_scale = 1.0;
  bool empirical_psi_scale = false;
  // The vague anomaly model of the llr score: isotropic Student-t (location 0).
  double anomaly_scale = 100.0;  // Sigma_a = anomaly_scale I
  double anomaly_dof = 2.0;
  Path path = Path::automatic;
  // A prior to use as it is (its dimension must match the support's): overrides kappa0,
  // nu0_offset and psi_scale; incompatible with empirical_psi_scale.
  std::optional<NiwPrior<double>> prior;
};

class BayesianScorer {
 public:
  using Options = BayesianScorerOptions;

  BayesianScorer() = default;
  explicit BayesianScorer(const Options& options) : options_(options) { check_options(); }

  // Fit the posterior on support rows (n x d, n >= 1).
  template <class Derived>
  BayesianScorer& fit(const Eigen::MatrixBase<Derived>& support) {
    constexpr const char* fn = "baypr::BayesianScorer::fit";
    detail::check_nonempty(fn, "support", support.rows());
    detail::check_finite(fn, "support", support);
    const Eigen::MatrixXd Z = support.template cast<double>();
    const Eigen::Index d = Z.cols();
    if (options_.prior) detail::check_size(fn, "support", "columns", d, options_.prior->dim());
    const double s = options_.prior                 ? options_.prior->scatter().diagonal().mean()
                     : options_.empirical_psi_scale ? empirical_scale(Z)
                                                    : options_.psi_scale;
    const auto prior = options_.prior ? *options_.prior : make_prior(d, s);
    commit(s, prior.posterior(Z, options_.path));
    return *this;
  }

  // Fit the posterior on sufficient statistics instead of rows (count >= 1), such as statistics
  // pooled across sites (federated/pooling.hpp): the posterior of the rows they summarise, to
  // rounding, without the rows. The statistics determine the marginal likelihood, so
  // empirical_psi_scale works here too.
  BayesianScorer& fit(const SufficientStatistics<double>& statistics) {
    constexpr const char* fn = "baypr::BayesianScorer::fit";
    statistics.check(fn, "statistics");
    if (statistics.count < 1) {
      detail::throw_invalid(fn, "statistics.count", "must be >= 1 (no rows to fit), got 0");
    }
    const Eigen::Index d = statistics.dim();
    if (options_.prior) {
      detail::check_size(fn, "statistics", "dimension", d, options_.prior->dim());
    }
    const double s = options_.prior                 ? options_.prior->scatter().diagonal().mean()
                     : options_.empirical_psi_scale ? empirical_scale(statistics)
                                                    : options_.psi_scale;
    const auto prior = options_.prior ? *options_.prior : make_prior(d, s);
    commit(s, prior.posterior(statistics, options_.path));
    return *this;
  }

  // Fold newly confirmed normal rows into the posterior without refitting (O(d^2) each on the
  // dense path). The prior (including an empirical psi scale) stays as fitted.
  template <class Derived>
  BayesianScorer& add_normal(const Eigen::MatrixBase<Derived>& rows) {
    constexpr const char* fn = "baypr::BayesianScorer::add_normal";
    require_fitted(fn);
    detail::check_size(fn, "rows", "columns", rows.cols(), dim());
    detail::check_finite(fn, "rows", rows);
    auto post = *posterior_;
    for (Eigen::Index i = 0; i < rows.rows(); ++i) post.add(rows.row(i).template cast<double>());
    auto t = post.predictive();
    posterior_.emplace(std::move(post));
    predictive_.emplace(std::move(t));
    return *this;
  }

  // One score per query row (see BayesScore).
  template <class Derived>
  [[nodiscard]] Eigen::VectorXd score(const Eigen::MatrixBase<Derived>& queries) const {
    return score(queries, options_.score);
  }

  template <class Derived>
  [[nodiscard]] Eigen::VectorXd score(const Eigen::MatrixBase<Derived>& queries,
                                      BayesScore type) const {
    constexpr const char* fn = "baypr::BayesianScorer::score";
    require_fitted(fn);
    detail::check_size(fn, "queries", "columns", queries.cols(), dim());
    detail::check_finite(fn, "queries", queries);
    const Eigen::MatrixXd Q = queries.template cast<double>();
    const Eigen::VectorXd delta = predictive_->mahalanobis(Q);
    Eigen::VectorXd out(delta.size());
    const double d = static_cast<double>(dim());
    const IsotropicStudentT anomaly(d, options_.anomaly_dof, options_.anomaly_scale);
    for (Eigen::Index j = 0; j < delta.size(); ++j) {
      const double nll = -predictive_->log_pdf_from_delta(delta(j));
      switch (type) {
        case BayesScore::nll:
          out(j) = nll;
          break;
        case BayesScore::llr:
          out(j) = anomaly.log_pdf(Q.row(j).squaredNorm()) + nll;
          break;
        case BayesScore::tail:
          out(j) = -special::f_logsf(delta(j) / d, d, predictive_->dof());
          break;
      }
    }
    return out;
  }

  [[nodiscard]] bool fitted() const { return predictive_.has_value(); }
  [[nodiscard]] Eigen::Index dim() const { return predictive_ ? predictive_->dim() : 0; }
  [[nodiscard]] const Options& options() const { return options_; }
  // The Psi0 scale actually used (the empirical one when requested; the mean of Psi0's diagonal
  // with options.prior).
  [[nodiscard]] double psi_scale() const { return psi_scale_; }
  [[nodiscard]] const NiwPosterior<double>& posterior() const {
    require_fitted("baypr::BayesianScorer::posterior");
    return *posterior_;
  }
  [[nodiscard]] const StudentT<double>& predictive() const {
    require_fitted("baypr::BayesianScorer::predictive");
    return *predictive_;
  }

 private:
  void check_options() const {
    constexpr const char* fn = "baypr::BayesianScorer::BayesianScorer";
    detail::check_positive(fn, "options.kappa0", options_.kappa0);
    detail::check_positive(fn, "options.psi_scale", options_.psi_scale);
    detail::check_positive(fn, "options.anomaly_scale", options_.anomaly_scale);
    detail::check_positive(fn, "options.anomaly_dof", options_.anomaly_dof);
    if (!(options_.nu0_offset > -1.0) || !std::isfinite(options_.nu0_offset)) {
      detail::throw_invalid(fn, "options.nu0_offset",
                            "must be > -1 (nu0 = d + offset > d - 1), got " +
                                detail::format_value(options_.nu0_offset));
    }
    if (options_.prior && options_.empirical_psi_scale) {
      detail::throw_invalid(fn, "options.prior",
                            "cannot be combined with options.empirical_psi_scale");
    }
  }

  void require_fitted(const char* fn) const { detail::check_fitted(fn, fitted(), "fit(support)"); }

  // Commit a fit only after everything succeeded.
  void commit(double s, NiwPosterior<double> post) {
    auto t = post.predictive();
    psi_scale_ = s;
    posterior_.emplace(std::move(post));
    predictive_.emplace(std::move(t));
  }

  // make_prior and empirical_scale are templates only nominally, so that what they use (the
  // eigensolver above all) is instantiated where fit() is, not in every file including this one.
  template <class = void>
  NiwPrior<double> make_prior(Eigen::Index d, double s) const {
    return NiwPrior<double>::isotropic(d, options_.kappa0,
                                       static_cast<double>(d) + options_.nu0_offset, s);
  }

  // argmax over log s of the support's log marginal likelihood under Psi0 = s I (mu0 = 0).
  // Only two terms of the log evidence depend on s: (nu0 d / 2) log s - (nu_n / 2) log|s I + M|,
  // M = S + beta e e^T = W^T W with W = [centred rows; sqrt(beta) e^T]. With the eigenvalues
  // lambda of the smaller Gram matrix of W, log|s I + M| = sum log(s + lambda_i) + (d - r) log s,
  // so each evaluation is O(n) after one O(n^2 d) eigen-decomposition (from statistics: of M
  // itself, O(d^3)). The function is concave
  // in log s (a sum of -log(1 + lambda e^{-t}) terms and a linear one): golden-section search.
  template <class = void>
  double empirical_scale(const Eigen::MatrixXd& Z) const {
    const Eigen::Index n = Z.rows(), d = Z.cols();
    const double nn = static_cast<double>(n);
    const double beta = options_.kappa0 * nn / (options_.kappa0 + nn);
    const Eigen::RowVectorXd zbar = Z.colwise().mean();
    Eigen::MatrixXd W(n + 1, d);
    W.topRows(n) = Z.rowwise() - zbar;
    W.row(n) = std::sqrt(beta) * zbar;  // e = zbar - mu0, mu0 = 0
    const Eigen::MatrixXd gram =
        n + 1 <= d ? Eigen::MatrixXd(W * W.transpose()) : Eigen::MatrixXd(W.transpose() * W);
    const Eigen::VectorXd lambda =
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(gram, Eigen::EigenvaluesOnly)
            .eigenvalues()
            .cwiseMax(0.0);
    return best_scale(lambda, n, d, Z.squaredNorm() / static_cast<double>(Z.size()));
  }

  // The same from sufficient statistics: M = S + beta zbar zbar^T directly (d x d).
  template <class = void>
  double empirical_scale(const SufficientStatistics<double>& st) const {
    const Eigen::Index n = st.count, d = st.dim();
    const double nn = static_cast<double>(n);
    const double beta = options_.kappa0 * nn / (options_.kappa0 + nn);
    const Eigen::MatrixXd M = st.scatter + beta * st.mean * st.mean.transpose();
    const Eigen::VectorXd lambda =
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(M, Eigen::EigenvaluesOnly)
            .eigenvalues()
            .cwiseMax(0.0);
    const double ms = (st.scatter.trace() + nn * st.mean.squaredNorm()) /
                      (nn * static_cast<double>(d));  // the rows' mean square
    return best_scale(lambda, n, d, ms);
  }

  // The golden-section search over log s, given M's non-zero eigenvalues `lambda` (and zeros
  // for the rest of its d) and the rows' mean square `ms` (which centres the search).
  template <class = void>
  double best_scale(const Eigen::VectorXd& lambda, Eigen::Index n, Eigen::Index d,
                    double ms) const {
    const double dd = static_cast<double>(d), nn = static_cast<double>(n);
    const double r = static_cast<double>(lambda.size());
    const double nu0 = dd + options_.nu0_offset, nu_n = nu0 + nn;
    auto objective = [&](double log_s) {
      const double s = std::exp(log_s);
      return nu0 * dd / 2 * log_s -
             nu_n / 2 * ((lambda.array() + s).log().sum() + (dd - r) * log_s);
    };
    const double centre = std::log(ms > 0 ? ms : 1.0);
    double lo = centre - 25.0, hi = centre + 15.0;
    const double invphi = (std::sqrt(5.0) - 1.0) / 2.0;
    double a = hi - invphi * (hi - lo), b = lo + invphi * (hi - lo);
    double fa = objective(a), fb = objective(b);
    for (int it = 0; it < 100 && hi - lo > 1e-9; ++it) {
      if (fa > fb) {
        hi = b;
        b = a;
        fb = fa;
        a = hi - invphi * (hi - lo);
        fa = objective(a);
      } else {
        lo = a;
        a = b;
        fa = fb;
        b = lo + invphi * (hi - lo);
        fb = objective(b);
      }
    }
    return std::exp((lo + hi) / 2);
  }

  Options options_;
  double psi_scale_ = 1.0;
  std::optional<NiwPosterior<double>> posterior_;
  std::optional<StudentT<double>> predictive_;
};

}  // namespace baypr
