// baypr/score/baselines.hpp: the two non-Bayesian baselines on identical embeddings.
//
//   PrototypeScorer  squared Euclidean distance to the support mean (Proto-MAML's score)
//   GaussianScorer   plug-in Gaussian: squared Mahalanobis distance under the support mean and
//                    the Ledoit-Wolf shrunk covariance (PaDiM-style); Ledoit & Wolf, "A
//                    well-conditioned estimator for large-dimensional covariance matrices",
//                    J. Multivariate Anal. 2004.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "baypr/core/errors.hpp"

namespace baypr {

class PrototypeScorer {
 public:
  template <class Derived>
  PrototypeScorer& fit(const Eigen::MatrixBase<Derived>& support) {
    constexpr const char* fn = "baypr::PrototypeScorer::fit";
    detail::check_nonempty(fn, "support", support.rows());
    detail::check_finite(fn, "support", support);
    prototype_ = support.template cast<double>().colwise().mean().transpose();
    return *this;
  }

  template <class Derived>
  [[nodiscard]] Eigen::VectorXd score(const Eigen::MatrixBase<Derived>& queries) const {
    constexpr const char* fn = "baypr::PrototypeScorer::score";
    detail::check_fitted(fn, fitted(), "fit(support)");
    detail::check_size(fn, "queries", "columns", queries.cols(), prototype_->size());
    detail::check_finite(fn, "queries", queries);
    return (queries.template cast<double>().rowwise() - prototype_->transpose())
        .rowwise()
        .squaredNorm();
  }

  [[nodiscard]] bool fitted() const { return prototype_.has_value(); }
  [[nodiscard]] Eigen::Index dim() const { return prototype_ ? prototype_->size() : 0; }
  [[nodiscard]] const Eigen::VectorXd& prototype() const {
    detail::check_fitted("baypr::PrototypeScorer::prototype", fitted(), "fit(support)");
    return *prototype_;
  }

 private:
  std::optional<Eigen::VectorXd> prototype_;
};

// Ledoit-Wolf shrinkage of the (1/n-normalised) sample covariance of the rows of X towards
// mu I, mu = tr(S) / d: Sigma = (1 - delta) S + delta mu I with delta = min(1, b2 / d2),
// d2 = ||S - mu I||_F^2, b2 = min(d2, (1/n^2) sum_k ||x_k x_k^T - S||_F^2) (centred x_k).
struct LedoitWolf {
  Eigen::VectorXd mean;
  Eigen::MatrixXd covariance;
  double shrinkage;  // delta
};

template <class Derived>
LedoitWolf ledoit_wolf(const Eigen::MatrixBase<Derived>& X) {
  constexpr const char* fn = "baypr::ledoit_wolf";
  detail::check_nonempty(fn, "X", X.rows());
  detail::check_finite(fn, "X", X);
  const Eigen::Index n = X.rows(), d = X.cols();
  LedoitWolf out;
  out.mean = X.template cast<double>().colwise().mean().transpose();
  const Eigen::MatrixXd C = X.template cast<double>().rowwise() - out.mean.transpose();
  Eigen::MatrixXd S = Eigen::MatrixXd::Zero(d, d);
  S.selfadjointView<Eigen::Lower>().rankUpdate(C.transpose(), 1.0 / static_cast<double>(n));
  S = S.selfadjointView<Eigen::Lower>();
  const double mu = S.trace() / static_cast<double>(d);
  Eigen::MatrixXd T = S;
  T.diagonal().array() -= mu;
  const double d2 = T.squaredNorm();
  // sum_k ||x_k x_k^T - S||_F^2 = sum_k ||x_k||^4 - n ||S||_F^2 (as sum_k x_k^T S x_k = n ||S||^2).
  const double fourth = C.rowwise().squaredNorm().array().square().sum();
  const double nn = static_cast<double>(n);
  const double b2 = std::min(d2, std::max(0.0, (fourth - nn * S.squaredNorm()) / (nn * nn)));
  out.shrinkage = d2 > 0.0 ? b2 / d2 : 1.0;
  out.covariance = (1.0 - out.shrinkage) * S;
  out.covariance.diagonal().array() += out.shrinkage * mu;
  return out;
}

struct GaussianScorerOptions {
  // Added to the shrunk covariance as ridge * (tr(S) / d) I. PaDiM adds 0.01 I; relative to the
  // mean variance the same idea is scale-free. It matters for tiny supports: with n = 2 the
  // Ledoit-Wolf shrinkage is exactly 0 and the covariance has rank 1.
  double ridge = 0.01;
};

class GaussianScorer {
 public:
  using Options = GaussianScorerOptions;

  explicit GaussianScorer(const Options& options = {}) : options_(options) {
    if (!(options.ridge >= 0.0) || !std::isfinite(options.ridge)) {
      detail::throw_invalid("baypr::GaussianScorer::GaussianScorer", "options.ridge",
                            "must be finite and >= 0, got " + detail::format_value(options.ridge));
    }
  }

  // Fit mean and Ledoit-Wolf covariance (plus the ridge). When the support has no spread at all
  // (n = 1, or all rows equal) the covariance is 0; the scorer then uses the identity, i.e. the
  // prototype score.
  template <class Derived>
  GaussianScorer& fit(const Eigen::MatrixBase<Derived>& support) {
    constexpr const char* fn = "baypr::GaussianScorer::fit";
    LedoitWolf lw = ledoit_wolf(support);
    const Eigen::Index d = support.cols();
    Eigen::MatrixXd cov = lw.covariance;
    const double mean_variance = cov.trace() / static_cast<double>(d);
    cov.diagonal().array() += options_.ridge * mean_variance;
    if (!(cov.diagonal().maxCoeff() > 0.0)) cov = Eigen::MatrixXd::Identity(d, d);
    Eigen::LLT<Eigen::MatrixXd> llt(cov);
    if (llt.info() != Eigen::Success || !detail::cholesky_pivots_positive(llt.matrixLLT())) {
      detail::throw_numerical(fn, "the shrunk covariance is not numerically positive definite");
    }
    mean_ = std::move(lw.mean);
    chol_ = llt.matrixL();
    shrinkage_ = lw.shrinkage;
    return *this;
  }

  template <class Derived>
  [[nodiscard]] Eigen::VectorXd score(const Eigen::MatrixBase<Derived>& queries) const {
    constexpr const char* fn = "baypr::GaussianScorer::score";
    detail::check_fitted(fn, fitted(), "fit(support)");
    detail::check_size(fn, "queries", "columns", queries.cols(), mean_->size());
    detail::check_finite(fn, "queries", queries);
    Eigen::MatrixXd R = queries.template cast<double>().rowwise() - mean_->transpose();
    chol_.transpose().triangularView<Eigen::Upper>().solveInPlace<Eigen::OnTheRight>(R);
    return R.rowwise().squaredNorm();
  }

  [[nodiscard]] bool fitted() const { return mean_.has_value(); }
  [[nodiscard]] Eigen::Index dim() const { return mean_ ? mean_->size() : 0; }
  [[nodiscard]] const Options& options() const { return options_; }
  // The Ledoit-Wolf shrinkage delta of the last fit (0 before).
  [[nodiscard]] double shrinkage() const { return shrinkage_; }

 private:
  Options options_;
  std::optional<Eigen::VectorXd> mean_;
  Eigen::MatrixXd chol_;
  double shrinkage_ = 0.0;
};

}  // namespace baypr
