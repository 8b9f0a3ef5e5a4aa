// baypr/core/linalg.hpp: dense kernels Eigen does not provide.
//
//   invert_lower(L)             L^{-1} for lower-triangular L, d^3/3 flops (LAPACK's trtri)
//   inverse_from_cholesky(L)    (L L^T)^{-1} = L^{-T} L^{-1}, 2 d^3/3 flops in all (potri)
//
// Solving L X = I with Eigen's TRSM costs d^3 (it cannot know the right-hand side is the
// identity), and forming L^{-T} L^{-1} as a full product another d^3 to 2 d^3. Both recursions
// below split the triangle in halves and spend their flops in GEMM / TRSM / TRMM blocks.
#pragma once

#include <Eigen/Core>

namespace baypr::detail {

inline constexpr Eigen::Index linalg_leaf = 48;

// In place: the lower triangle of `a` (a lower-triangular factor) becomes its inverse. The strict
// upper triangle is neither read nor written.
// (Eigen::Ref keeps the recursion on one type; nested Block types would never terminate.)
template <class Scalar>
void invert_lower_in_place(Eigen::Ref<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>> a) {
  using Block = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index n = a.rows();
  if (n <= linalg_leaf) {
    Block inv = a.template triangularView<Eigen::Lower>().solve(Block::Identity(n, n));
    a.template triangularView<Eigen::Lower>() = inv;
    return;
  }
  const Eigen::Index h = n / 2;
  auto A = a.topLeftCorner(h, h);
  auto B = a.bottomLeftCorner(n - h, h);
  auto C = a.bottomRightCorner(n - h, n - h);
  // [A 0; B C]^{-1} = [A^{-1} 0; -C^{-1} B A^{-1}  C^{-1}]
  A.template triangularView<Eigen::Lower>().template solveInPlace<Eigen::OnTheRight>(B);
  C.template triangularView<Eigen::Lower>().solveInPlace(B);
  B = -B;
  invert_lower_in_place<Scalar>(A);
  invert_lower_in_place<Scalar>(C);
}

// In place: given the lower-triangular inverse factor M = L^{-1} in the lower triangle of `a`,
// the lower triangle becomes that of M^T M = (L L^T)^{-1} (LAPACK's lauum on the transpose).
template <class Scalar>
void lower_gram_in_place(Eigen::Ref<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>> a) {
  using Block = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index n = a.rows();
  if (n <= linalg_leaf) {
    const Block m = a.template triangularView<Eigen::Lower>();
    Block g = Block::Zero(n, n);
    g.template selfadjointView<Eigen::Lower>().rankUpdate(m.transpose());
    a.template triangularView<Eigen::Lower>() = g;
    return;
  }
  const Eigen::Index h = n / 2;
  auto P = a.topLeftCorner(h, h);
  auto Q = a.bottomLeftCorner(n - h, h);
  auto R = a.bottomRightCorner(n - h, n - h);
  // [P 0; Q R]^T [P 0; Q R] = [P^T P + Q^T Q, Q^T R; R^T Q, R^T R]
  lower_gram_in_place<Scalar>(P);
  P.template selfadjointView<Eigen::Lower>().rankUpdate(Q.transpose());
  Q = R.template triangularView<Eigen::Lower>().transpose() * Q;  // (Q^T R)^T = R^T Q
  lower_gram_in_place<Scalar>(R);
}

// (L L^T)^{-1} from the lower Cholesky factor L, as a full symmetric matrix.
template <class Matrix>
Matrix inverse_from_cholesky(const Matrix& chol_lower) {
  using Scalar = typename Matrix::Scalar;
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> a = chol_lower;
  invert_lower_in_place<Scalar>(a);
  lower_gram_in_place<Scalar>(a);
  a.template triangularView<Eigen::StrictlyUpper>() = a.transpose();
  return Matrix(a);
}

}  // namespace baypr::detail
