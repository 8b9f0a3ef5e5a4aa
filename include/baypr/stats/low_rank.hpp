// baypr/stats/low_rank.hpp: a "diagonal plus low rank" symmetric positive definite matrix,
//
//   A = c (D + W^T W),   D diagonal > 0 (d entries),  W r x d,  c > 0,
//
// the shape of Psi_n (and of the predictive scale) when Psi0 is diagonal and there are few
// samples: W holds the centred samples and the prior-mean disagreement, so r = n + 1 << d.
// Writing V = W D^{-1/2} and the thin QR V^T = Q R (Q: d x k orthonormal, k = min(d, r)),
//
//   A = c D^{1/2} (I + Q R R^T Q^T) D^{1/2},   M = I_k + R R^T = L_M L_M^T,
//   x^T A^{-1} x = (||y - Q Q^T y||^2 + ||L_M^{-1} Q^T y||^2) / c,   y = D^{-1/2} x,
//   log|A| = d log c + sum log D + 2 sum log diag(L_M).
//
// Both terms of the quadratic form are sums of squares computed from an explicit projection, so
// there is none of the cancellation of the textbook Woodbury form x^T D^{-1} x - (...). Building
// costs O(d r^2); each quadratic form O(d k); a batch of m is two GEMMs of m x d x k.
//
// Public because it is the scale of a few-shot posterior and predictive
// (NiwPosterior::LowRank, StudentT::LowRankScale, StudentT::from_low_rank).
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>
#include <cmath>

#include "baypr/core/errors.hpp"
#include "baypr/core/traits.hpp"

namespace baypr {

template <class Scalar, int Dim = Eigen::Dynamic>
class DiagPlusLowRank {
 public:
  using Vector = Eigen::Matrix<Scalar, Dim, 1>;
  using Matrix = Eigen::Matrix<Scalar, Dim, Dim>;
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Dim>;
  using Basis = Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>;
  using Small = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

  DiagPlusLowRank() = default;

  // A = c (diag(diag) + W^T W): diag finite and > 0 (d >= 1 entries), W r x d finite (r >= 0; it
  // may be rank deficient, e.g. zero rows), c finite and > 0. Errors name `fn` (the caller's
  // function).
  DiagPlusLowRank(const Vector& diag, const Rows& W, const Scalar& c,
                  const char* fn = "baypr::DiagPlusLowRank::DiagPlusLowRank")
      : diag_(diag), c_(c) {
    using std::log;
    using std::sqrt;
    if (diag.size() < 1) detail::throw_invalid(fn, "diag", "must have at least one entry, got 0");
    for (Eigen::Index i = 0; i < diag.size(); ++i) {
      if (!(value_of(diag(i)) > 0.0) || !std::isfinite(value_of(diag(i)))) {
        detail::throw_invalid(fn, "diag",
                              "must be finite and > 0, got " + detail::format_value(diag(i)) +
                                  " at index " + std::to_string(i));
      }
    }
    detail::check_size(fn, "W", "columns", W.cols(), diag.size());
    detail::check_finite(fn, "W", W);
    detail::check_positive(fn, "c", c);
    inv_sqrt_diag_ = diag.array().rsqrt().matrix();
    const Eigen::Index d = diag.size();
    const Eigen::Index k = std::min<Eigen::Index>(d, W.rows());
    Basis Vt = inv_sqrt_diag_.asDiagonal() * W.transpose();  // d x r
    if (W.rows() > 0) {
      const Eigen::HouseholderQR<Basis> qr(Vt);
      q_ = qr.householderQ() * Basis::Identity(d, k);
      const Small R = qr.matrixQR().topRows(k).template triangularView<Eigen::Upper>();
      rrt_ = R * R.transpose();
    } else {
      q_.resize(d, 0);
      rrt_.resize(0, 0);
    }
    const Small M = Small::Identity(k, k) + rrt_;
    const Eigen::LLT<Small> llt(M);
    if (llt.info() != Eigen::Success || !detail::cholesky_pivots_positive(llt.matrixLLT())) {
      detail::throw_numerical(fn,
                              "low-rank capacitance matrix is not numerically positive definite");
    }
    lm_ = llt.matrixL();
    log_det_unscaled_ = diag.array().log().sum() + Scalar(2) * lm_.diagonal().array().log().sum();
  }

  [[nodiscard]] Eigen::Index dim() const { return diag_.size(); }
  // The same matrix with c replaced: no refactorisation (Sigma = c Psi_n shares Psi_n's QR).
  [[nodiscard]] DiagPlusLowRank scaled(const Scalar& c) const {
    DiagPlusLowRank out(*this);
    out.c_ = c;
    return out;
  }

  [[nodiscard]] Scalar log_det() const {
    using std::log;
    return from_index<Scalar>(dim()) * log(c_) + log_det_unscaled_;
  }

  // The dense matrix A (O(d^2 k)); for checks and small d.
  [[nodiscard]] Matrix dense() const {
    const Basis dq = diag_.cwiseSqrt().asDiagonal() * q_;
    Matrix a = dq * rrt_ * dq.transpose();
    a.diagonal() += diag_;
    return c_ * a;
  }

  // x^T A^{-1} x for every row x of R (m x d) -> m values; optionally the rows of A^{-1} x.
  void quadratic_forms(const Rows& R, Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& delta,
                       Rows* solved = nullptr) const {
    Rows Y = R * inv_sqrt_diag_.asDiagonal();
    const Small P = Y * q_;             // m x k: Q^T y per row
    Y.noalias() -= P * q_.transpose();  // y - Q Q^T y, formed explicitly (no cancellation)
    Small B = P;
    lm_.transpose()
        .template triangularView<Eigen::Upper>()
        .template solveInPlace<Eigen::OnTheRight>(B);
    delta = (Y.rowwise().squaredNorm() + B.rowwise().squaredNorm()) / c_;
    if (solved != nullptr) {
      // A^{-1} x = D^{-1/2} (y_perp + Q M^{-1} Q^T y) / c
      lm_.template triangularView<Eigen::Lower>().template solveInPlace<Eigen::OnTheRight>(B);
      Y.noalias() += B * q_.transpose();
      *solved = (Y * inv_sqrt_diag_.asDiagonal()) / c_;
    }
  }

  // diag(A^{-1}) in O(d k^2): D^{-1} (1 - rowsq(Q) + rowdot(Q, Q M^{-1})) / c.
  [[nodiscard]] Vector inverse_diagonal() const {
    Basis qm = q_;
    lm_.transpose()
        .template triangularView<Eigen::Upper>()
        .template solveInPlace<Eigen::OnTheRight>(qm);
    const Vector inner =
        Vector::Ones(dim()) - q_.rowwise().squaredNorm() + qm.rowwise().squaredNorm();
    return inner.cwiseProduct(inv_sqrt_diag_.cwiseAbs2()) / c_;
  }

  // A^{-1} U for the columns of U (d x p).
  [[nodiscard]] Basis solve(const Basis& U) const {
    Rows R = U.transpose();
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> unused;
    Rows S;
    quadratic_forms(R, unused, &S);
    return S.transpose();
  }

 private:
  Vector diag_;
  Vector inv_sqrt_diag_;
  Basis q_;
  Small rrt_;
  Small lm_;
  Scalar c_{1};
  Scalar log_det_unscaled_{};
};

}  // namespace baypr
