// baypr/stats/student_t.hpp: the multivariate Student-t distribution, the NIW posterior predictive.
//
//   log t(x) = lgamma((v+d)/2) - lgamma(v/2) - (d/2) log(v pi) - (1/2) log|Sigma|
//              - ((v+d)/2) log1p(delta / v),   delta = (x - mu)^T Sigma^{-1} (x - mu)
//
// StudentT<Scalar, Dim> holds the location mu, the scale Sigma and the degrees of freedom v. The
// scale is held either densely, by its Cholesky factor (batched evaluation whitens all rows with
// one blocked triangular solve, N d^2 flops in a BLAS-3 kernel), or as diagonal plus low rank
// (the few-shot posterior predictive with a diagonal prior: O(d k) per query, k = n + 1).
// delta / d follows F(d, v) under the distribution itself, which gives calibrated tail
// probabilities and thresholds for a chosen false-alarm rate with no anomalous data.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <random>
#include <string>

#include "baypr/core/errors.hpp"
#include "baypr/core/linalg.hpp"
#include "baypr/core/special.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/stats/low_rank.hpp"

namespace baypr {

// Value and analytic partial derivatives of log t(x) at one point (Stan-style "operands and
// partials"). d_scale is the derivative with respect to the entries of Sigma taken as independent:
// (w s s^T - Sigma^{-1}) / 2, with s = Sigma^{-1}(x - mu), w = (v + d) / (v + delta). It is
// symmetric; for a symmetric perturbation E, d log t = <d_scale, E> (Frobenius).
template <class Scalar, int Dim = Eigen::Dynamic>
struct StudentTGradient {
  Scalar value;
  Eigen::Matrix<Scalar, Dim, 1> d_x;
  Eigen::Matrix<Scalar, Dim, 1> d_location;
  Eigen::Matrix<Scalar, Dim, Dim> d_scale;
  Scalar d_dof;
};

template <class Scalar = double, int Dim = Eigen::Dynamic>
class StudentT {
 public:
  using Vector = Eigen::Matrix<Scalar, Dim, 1>;
  using Matrix = Eigen::Matrix<Scalar, Dim, Dim>;
  // Rows of samples or queries: one sample per row, n x d.
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Dim>;
  using Values = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using Gradient = StudentTGradient<Scalar, Dim>;
  using LowRankScale = DiagPlusLowRank<Scalar, Dim>;

  // Validates every argument: finite location, symmetric positive definite scale, dof > 0.
  StudentT(const Vector& location, const Matrix& scale, const Scalar& dof)
      : location_(location), dof_(dof) {
    constexpr const char* fn = "baypr::StudentT::StudentT";
    detail::check_finite(fn, "location", location);
    detail::check_size(fn, "scale", "rows", scale.rows(), location.size());
    detail::check_size(fn, "scale", "columns", scale.cols(), location.size());
    detail::check_finite(fn, "scale", scale);
    detail::check_positive(fn, "dof", dof);
    detail::check_symmetric(fn, "scale", scale);
    const Eigen::LLT<Matrix> llt((scale + scale.transpose()) / Scalar(2));
    if (llt.info() != Eigen::Success)
      detail::throw_invalid(fn, "scale", "must be positive definite");
    chol_ = llt.matrixL();
    detail::check_cholesky_pivots(fn, "scale", chol_);
    finish(Scalar(2) * chol_.diagonal().array().log().sum());
  }

  // From a lower Cholesky factor L of Sigma (L L^T = Sigma) that the caller already holds, e.g.
  // a posterior's factor scaled: no refactorisation. Only the lower triangle of L is read.
  static StudentT from_cholesky(const Vector& location, const Matrix& chol_lower,
                                const Scalar& dof) {
    constexpr const char* fn = "baypr::StudentT::from_cholesky";
    check_location_dof(fn, location, dof);
    detail::check_size(fn, "chol_lower", "rows", chol_lower.rows(), location.size());
    detail::check_size(fn, "chol_lower", "columns", chol_lower.cols(), location.size());
    StudentT t(location, dof);
    t.chol_ = chol_lower.template triangularView<Eigen::Lower>();
    detail::check_finite(fn, "chol_lower", t.chol_);
    detail::check_cholesky_pivots(fn, "chol_lower", t.chol_);
    t.finish(Scalar(2) * t.chol_.diagonal().array().log().sum());
    return t;
  }

  // With a diagonal-plus-low-rank scale, as built by a few-shot posterior (see low_rank.hpp).
  static StudentT from_low_rank(const Vector& location, LowRankScale scale, const Scalar& dof) {
    constexpr const char* fn = "baypr::StudentT::from_low_rank";
    check_location_dof(fn, location, dof);
    detail::check_size(fn, "scale", "dimension", scale.dim(), location.size());
    StudentT t(location, dof);
    const Scalar log_det = scale.log_det();
    t.low_rank_ = std::move(scale);
    t.finish(log_det);
    return t;
  }

  [[nodiscard]] Eigen::Index dim() const { return location_.size(); }
  [[nodiscard]] const Vector& location() const { return location_; }
  [[nodiscard]] const Scalar& dof() const { return dof_; }
  [[nodiscard]] Scalar log_det_scale() const { return log_det_; }
  // True when the scale is held as diagonal plus low rank (O(d k) per query).
  [[nodiscard]] bool is_low_rank() const { return low_rank_.has_value(); }
  // Sigma as a dense matrix (assembled in O(d^2 k) for a low-rank scale).
  [[nodiscard]] Matrix scale() const {
    if (low_rank_) return low_rank_->dense();
    return chol_ * chol_.transpose();
  }
  // Lower Cholesky factor of scale() (computed, O(d^3), for a low-rank scale).
  [[nodiscard]] Matrix scale_cholesky() const {
    if (low_rank_) return Eigen::LLT<Matrix>(low_rank_->dense()).matrixL();
    return chol_;
  }

  // Squared Mahalanobis distance delta of each row of X (m x d) -> m values.
  template <class Derived>
  [[nodiscard]] Values mahalanobis(const Eigen::MatrixBase<Derived>& X) const {
    return mahalanobis_checked(X, "baypr::StudentT::mahalanobis");
  }

  // log t(x) of one point (a compile-time vector of size d).
  template <class Derived>
  requires(Derived::IsVectorAtCompileTime == 1) [[nodiscard]] Scalar
      log_pdf(const Eigen::MatrixBase<Derived>& x) const {
    const Rows r = check_point("baypr::StudentT::log_pdf", x).transpose();
    return log_pdf_from_delta(quadratic_forms(r)(0));
  }

  // log t of each row of X (m x d) -> m values; one blocked solve for all rows.
  template <class Derived>
  requires(Derived::IsVectorAtCompileTime == 0) [[nodiscard]] Values
      log_pdf(const Eigen::MatrixBase<Derived>& X) const {
    Values delta = mahalanobis_checked(X, "baypr::StudentT::log_pdf");
    return delta.unaryExpr([this](const Scalar& dl) { return log_pdf_from_delta(dl); });
  }

  // log t given the squared Mahalanobis distance delta.
  [[nodiscard]] Scalar log_pdf_from_delta(const Scalar& delta) const {
    using special::log1p;
    return log_norm_ - half_v_plus_d_ * log1p(delta / dof_);
  }

  // P(delta(Y) >= delta(x_j)) for Y ~ this distribution, per row of X: the calibrated p-value
  // of each query (small = anomalous). Uses delta / d ~ F(d, v).
  template <class Derived>
  [[nodiscard]] Eigen::VectorXd tail_probability(const Eigen::MatrixBase<Derived>& X) const requires
      is_plain_scalar_v<Scalar> {
    const Values delta = mahalanobis_checked(X, "baypr::StudentT::tail_probability");
    const double d = static_cast<double>(dim());
    const double v = static_cast<double>(dof_);
    Eigen::VectorXd p(delta.size());
    for (Eigen::Index j = 0; j < delta.size(); ++j) {
      p(j) = special::f_sf(static_cast<double>(delta(j)) / d, d, v);
    }
    return p;
  }

  // The delta whose tail probability is alpha, 0 < alpha < 1: flag x when mahalanobis(x) exceeds
  // it for a false-alarm rate alpha on normal data drawn from this distribution.
  [[nodiscard]] double threshold(double alpha) const requires is_plain_scalar_v<Scalar> {
    constexpr const char* fn = "baypr::StudentT::threshold";
    if (!(alpha > 0.0 && alpha < 1.0)) {
      detail::throw_invalid(fn, "alpha", "must be in (0, 1), got " + detail::format_value(alpha));
    }
    const double d = static_cast<double>(dim());
    return d * special::f_isf(alpha, d, static_cast<double>(dof_));
  }

  // Value and every analytic partial at one point (see StudentTGradient).
  template <class Derived>
  [[nodiscard]] Gradient log_pdf_gradient(const Eigen::MatrixBase<Derived>& x) const {
    using special::digamma;
    using special::log1p;
    const Rows r = check_point("baypr::StudentT::log_pdf_gradient", x).transpose();
    Rows s_row;
    const Scalar G = quadratic_forms(r, &s_row)(0);
    const Vector s = s_row.transpose();
    const Scalar d = from_index<Scalar>(dim());
    const Scalar w = (dof_ + d) / (dof_ + G);
    Gradient g;
    g.value = log_pdf_from_delta(G);
    g.d_x = -w * s;
    g.d_location = w * s;
    g.d_scale = (w * s * s.transpose() - scale_inverse()) / Scalar(2);
    g.d_dof = (digamma(half_v_plus_d_) - digamma(dof_ / Scalar(2)) - log1p(G / dof_) +
               (G - d) / (G + dof_)) /
              Scalar(2);
    return g;
  }

  // Sigma^{-1}, dense.
  [[nodiscard]] Matrix scale_inverse() const {
    if (low_rank_) return low_rank_->solve(Matrix::Identity(dim(), dim()));
    return detail::inverse_from_cholesky(chol_);
  }

  // diag(Sigma^{-1}): O(d k^2) on the low-rank path, O(d^3 / 3) dense.
  [[nodiscard]] Vector scale_inverse_diagonal() const {
    if (low_rank_) return low_rank_->inverse_diagonal();
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> inv = chol_;
    detail::invert_lower_in_place<Scalar>(inv);
    return inv.template triangularView<Eigen::Lower>()
        .toDenseMatrix()
        .colwise()
        .squaredNorm()
        .transpose();
  }

  // Sigma^{-1} U for the columns of U (d x p).
  [[nodiscard]] Eigen::Matrix<Scalar, Dim, Eigen::Dynamic> scale_solve(
      const Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>& U) const {
    if (low_rank_) return low_rank_->solve(U);
    Eigen::Matrix<Scalar, Dim, Eigen::Dynamic> X = U;
    chol_.template triangularView<Eigen::Lower>().solveInPlace(X);
    chol_.transpose().template triangularView<Eigen::Upper>().solveInPlace(X);
    return X;
  }

  // Squared Mahalanobis distances of the rows of R = X - 1 mu^T (already centred, unchecked),
  // and optionally the rows of Sigma^{-1} r. The one kernel every evaluation goes through.
  Values quadratic_forms(const Rows& R, Rows* solved = nullptr) const {
    Values delta;
    if (low_rank_) {
      low_rank_->quadratic_forms(R, delta, solved);
      return delta;
    }
    Rows W = R;
    chol_.transpose()
        .template triangularView<Eigen::Upper>()
        .template solveInPlace<Eigen::OnTheRight>(W);
    delta = W.rowwise().squaredNorm();
    if (solved != nullptr) {
      chol_.template triangularView<Eigen::Lower>().template solveInPlace<Eigen::OnTheRight>(W);
      *solved = std::move(W);
    }
    return delta;
  }

  // Draw m samples (rows) with the given uniform random bit generator: mu + L g / sqrt(u / v),
  // g ~ N(0, I), u ~ chi^2(v). For testing calibration; double and float only.
  template <class Rng>
  [[nodiscard]] Rows sample(Eigen::Index m, Rng& rng) const requires is_plain_scalar_v<Scalar> {
    std::normal_distribution<double> normal;
    std::chi_squared_distribution<double> chi2(static_cast<double>(dof_));
    const Matrix L = scale_cholesky();
    Rows out(m, dim());
    Vector g(dim());
    for (Eigen::Index j = 0; j < m; ++j) {
      for (Eigen::Index k = 0; k < dim(); ++k) g(k) = static_cast<Scalar>(normal(rng));
      const auto u = static_cast<Scalar>(std::sqrt(static_cast<double>(dof_) / chi2(rng)));
      const Vector lg = L.template triangularView<Eigen::Lower>() * g;
      out.row(j) = (location_ + u * lg).transpose();
    }
    return out;
  }

 private:
  StudentT(const Vector& location, const Scalar& dof) : location_(location), dof_(dof) {}

  static void check_location_dof(const char* fn, const Vector& location, const Scalar& dof) {
    detail::check_finite(fn, "location", location);
    detail::check_positive(fn, "dof", dof);
  }

  void finish(const Scalar& log_det) {
    using special::lgamma;
    using std::log;
    const Scalar d = from_index<Scalar>(dim());
    log_det_ = log_det;
    half_v_plus_d_ = (dof_ + d) / Scalar(2);
    log_norm_ = lgamma(half_v_plus_d_) - lgamma(dof_ / Scalar(2)) -
                d / Scalar(2) * log(dof_ * Scalar(std::numbers::pi)) - log_det_ / Scalar(2);
  }

  template <class Derived>
  Vector check_point(const char* fn, const Eigen::MatrixBase<Derived>& x) const {
    detail::check_size(fn, "x", "size", x.size(), dim());
    detail::check_finite(fn, "x", x);
    return Vector(x.derived().template cast<Scalar>().reshaped()) - location_;
  }

  template <class Derived>
  Values mahalanobis_checked(const Eigen::MatrixBase<Derived>& X, const char* fn) const {
    detail::check_size(fn, "X", "columns", X.cols(), dim());
    detail::check_finite(fn, "X", X);
    if (low_rank_) {
      Rows R = X.derived().template cast<Scalar>();
      R.rowwise() -= location_.transpose();
      return quadratic_forms(R);
    }
    // Dense: whiten blocks of rows in one reused buffer (cast, centre, TRSM, sum of squares), so
    // the working set stays in cache and there is one allocation per call, not per row.
    const Eigen::Index m = X.rows();
    const Eigen::Index block = std::min<Eigen::Index>(m, row_block);
    Values delta(m);
    Rows buffer(block, dim());
    const auto upper = chol_.transpose().template triangularView<Eigen::Upper>();
    for (Eigen::Index start = 0; start < m; start += block) {
      const Eigen::Index rows = std::min(block, m - start);
      auto W = buffer.topRows(rows);
      W = X.derived().middleRows(start, rows).template cast<Scalar>();
      W.rowwise() -= location_.transpose();
      upper.template solveInPlace<Eigen::OnTheRight>(W);
      delta.segment(start, rows) = W.rowwise().squaredNorm();
    }
    return delta;
  }

  static constexpr Eigen::Index row_block = 256;

  Vector location_;
  Matrix chol_;                           // dense representation (lower factor of Sigma)
  std::optional<LowRankScale> low_rank_;  // or diagonal plus low rank
  Scalar dof_{};
  Scalar log_det_{};
  Scalar half_v_plus_d_{};
  Scalar log_norm_{};
};

// The isotropic Student-t t(z | a 1, s I, v) in d dimensions, as a function of r2 = |z - a|^2:
//   log p = lgamma((v + d)/2) - lgamma(v/2) - (d/2) log(v pi s) - ((v + d)/2) log(1 + r2 / (s v)).
// The vague anomaly model p_a, in one place for BayesianScorer's llr score and for meta-training
// (meta::VagueAnomalyModel). The constant is computed once, in double; log_pdf takes any Scalar
// (double or dual numbers).
class IsotropicStudentT {
 public:
  IsotropicStudentT(double d, double dof, double scale)
      : half_dof_d_((dof + d) / 2),
        scale_dof_(scale * dof),
        log_normaliser_(special::lgamma((dof + d) / 2) - special::lgamma(dof / 2) -
                        d / 2 * std::log(dof * std::numbers::pi * scale)) {}

  template <class Scalar>
  [[nodiscard]] Scalar log_pdf(const Scalar& r2) const {
    using std::log;
    return Scalar(log_normaliser_) - Scalar(half_dof_d_) * log(Scalar(1) + r2 / Scalar(scale_dof_));
  }

 private:
  double half_dof_d_, scale_dof_, log_normaliser_;
};

}  // namespace baypr
