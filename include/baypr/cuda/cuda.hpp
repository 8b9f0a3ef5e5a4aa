// baypr/cuda/cuda.hpp: the CUDA layer on host matrices (library baypr::cuda, option
// BAYPR_ENABLE_CUDA; nvcc, cuBLAS and cuSOLVER are needed to build it, not to include this).
//
//   baypr::cuda::student_t_log_pdf(ctx, t, X)    log t(x) of each row of X under one Student-t
//   baypr::cuda::KnnIndex<Scalar>                a bank on the device; search(ctx, Q, k) -> the
//                                                exact k nearest rows, as baypr::KnnIndex
//   baypr::cuda::knn_search(ctx, Q, B, k)        one-off search
//   baypr::cuda::greedy_coreset(ctx, rows, opt)  baypr::greedy_coreset's choice, on the device
//   baypr::cuda::cholesky_batched(ctx, As, m)    many small SPD factorisations (own kernel in the
//                                                interleaved layout, or cuSOLVER potrfBatched)
//   baypr::cuda::student_t_batch_log_pdf(ctx, models, points)
//                                                model b scores point b (per-position scoring)
//
// Each function checks its arguments as the CPU function does (same messages, its own name),
// copies to the device, runs the kernels of <baypr/cuda/api.hpp> on the context's stream and
// copies the results back; nothing is written to a caller's object when it throws. Results equal
// the CPU path's to rounding (the tests use 1e-10 relative in double, 1e-5 in float), and the
// k-NN and coreset choices are the CPU's except between candidates whose values tie to rounding.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/cuda/api.hpp"
#include "baypr/score/knn.hpp"
#include "baypr/score/patchcore.hpp"
#include "baypr/stats/student_t.hpp"

namespace baypr::cuda {

template <class Scalar>
using HostRows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {
// Where entry (i, j), j <= i, of matrix b of a batch lives in the interleaved packed layout of
// <baypr/cuda/api.hpp> (the kernels' kernels::packed).
inline std::size_t interleaved_at(Eigen::Index i, Eigen::Index j, Eigen::Index b,
                                  Eigen::Index batch) {
  return static_cast<std::size_t>((i * (i + 1) / 2 + j) * batch + b);
}

template <class Scalar>
void check_scalar() {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "baypr::cuda: float or double");
}
}  // namespace detail

// log t(x) of each row of X (n x d) under `t` (its dense Cholesky factor is used; a low-rank
// scale is densified). n may be 0.
template <class Scalar, class Derived>
[[nodiscard]] Eigen::Matrix<Scalar, Eigen::Dynamic, 1> student_t_log_pdf(
    Context& ctx, const StudentT<Scalar>& t, const Eigen::MatrixBase<Derived>& X) {
  detail::check_scalar<Scalar>();
  constexpr const char* fn = "baypr::cuda::student_t_log_pdf";
  const Eigen::Index d = t.dim(), n = X.rows();
  baypr::detail::check_size(fn, "X", "columns", X.cols(), d);
  baypr::detail::check_finite(fn, "X", X);
  const HostRows<Scalar> x = X.template cast<Scalar>();
  const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> chol = t.scale_cholesky();
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(n);
  if (n == 0) return out;
  DeviceArray<Scalar> location(static_cast<std::size_t>(d)),
      factor(static_cast<std::size_t>(d * d)), points(static_cast<std::size_t>(n * d)),
      values(static_cast<std::size_t>(n));
  location.upload(ctx, t.location().data());
  factor.upload(ctx, chol.data());
  points.upload(ctx, x.data());
  const Scalar half_v_plus_d = (t.dof() + static_cast<Scalar>(d)) / Scalar(2);
  device::student_t_log_pdf<Scalar>(ctx, location.data(), factor.data(), t.log_pdf_from_delta(0),
                                    half_v_plus_d, t.dof(), points.data(), n, d, values.data());
  values.download(ctx, out.data());
  return out;
}

// A bank of rows (N x d) on the device, searched exactly like baypr::KnnIndex (same ordering
// value, distances recomputed directly, ties to the smaller index), k <= device::max_knn_k.
template <class Scalar = float>
class KnnIndex {
 public:
  using Result = KnnResult<Scalar>;

  template <class Derived>
  KnnIndex(Context& ctx, const Eigen::MatrixBase<Derived>& bank) {
    detail::check_scalar<Scalar>();
    static_assert(std::is_same_v<typename Derived::Scalar, Scalar>,
                  "baypr::cuda::KnnIndex: the bank's scalar type must be the index's");
    // The CPU index's checks (non-empty, finite, norms that do not overflow) under this name, and
    // its squared norms.
    baypr::KnnIndex<Scalar> host;
    baypr::detail::KnnAccess::assign(host, bank, "baypr::cuda::KnnIndex::KnnIndex");
    const HostRows<Scalar> rows = host.bank();
    const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> norms = host.squared_norms();
    DeviceArray<Scalar> b(static_cast<std::size_t>(rows.size())),
        nb(static_cast<std::size_t>(norms.size()));
    b.upload(ctx, rows.data());
    nb.upload(ctx, norms.data());
    bank_ = std::move(b);
    norms_ = std::move(nb);
    size_ = rows.rows();
    dim_ = rows.cols();
  }

  [[nodiscard]] Eigen::Index size() const { return size_; }
  [[nodiscard]] Eigen::Index dim() const { return dim_; }

  // The k nearest bank rows of each query row, nearest first.
  template <class Derived>
  [[nodiscard]] Result search(Context& ctx, const Eigen::MatrixBase<Derived>& queries,
                              Eigen::Index k) const {
    return search_as(ctx, queries, k, "baypr::cuda::KnnIndex::search");
  }

 private:
  template <class Derived>
  Result search_as(Context& ctx, const Eigen::MatrixBase<Derived>& queries, Eigen::Index k,
                   const char* fn) const {
    baypr::detail::check_size(fn, "queries", "columns", queries.cols(), dim_);
    baypr::detail::check_finite(fn, "queries", queries);
    device::check_knn_k(fn, k, size_);
    const HostRows<Scalar> q = queries.template cast<Scalar>();
    const Eigen::Index m = q.rows();
    Result out;
    out.indices.resize(m, k);
    out.squared_distances.resize(m, k);
    if (m == 0) return out;
    DeviceArray<Scalar> dq(static_cast<std::size_t>(q.size())),
        dist(static_cast<std::size_t>(m * k));
    DeviceArray<std::int64_t> idx(static_cast<std::size_t>(m * k));
    dq.upload(ctx, q.data());
    device::knn_search<Scalar>(ctx, bank_.data(), norms_.data(), size_, dq.data(), m, dim_, k,
                               idx.data(), dist.data());
    Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> indices(m, k);
    idx.download(ctx, indices.data());
    dist.download(ctx, out.squared_distances.data());
    out.indices = indices.template cast<Eigen::Index>();
    return out;
  }

  DeviceArray<Scalar> bank_, norms_;
  Eigen::Index size_ = 0, dim_ = 0;
};

// One-off search of the rows of Q among the rows of B (same scalar type), on the device.
template <class DerivedQ, class DerivedB>
[[nodiscard]] KnnResult<typename DerivedQ::Scalar> knn_search(
    Context& ctx, const Eigen::MatrixBase<DerivedQ>& queries,
    const Eigen::MatrixBase<DerivedB>& bank, Eigen::Index k) {
  using Scalar = typename DerivedQ::Scalar;
  static_assert(std::is_same_v<Scalar, typename DerivedB::Scalar>,
                "baypr::cuda::knn_search: queries and bank must have the same scalar type");
  const KnnIndex<Scalar> index(ctx, bank);
  return index.search(ctx, queries, k);
}

// The indices baypr::greedy_coreset(rows, options) returns, with the greedy on the device (the
// seeded projection is made on the host, as the CPU makes it; each step's GEMV and arg-max run
// on the device).
template <class Derived>
[[nodiscard]] std::vector<Eigen::Index> greedy_coreset(Context& ctx,
                                                       const Eigen::MatrixBase<Derived>& rows,
                                                       const CoresetOptions& options = {}) {
  using Scalar = typename Derived::Scalar;
  detail::check_scalar<Scalar>();
  const Eigen::Index n = rows.rows();
  const Eigen::Index count =
      baypr::detail::checked_coreset_count("baypr::cuda::greedy_coreset", rows, options);
  std::vector<Eigen::Index> selected;
  if (count == n) {  // every row: nothing to choose (as the CPU greedy)
    for (Eigen::Index i = 0; i < n; ++i) selected.push_back(i);
    return selected;
  }
  const auto space =
      baypr::detail::coreset_space<Scalar>(rows, options.projection_dim, options.seed);
  const HostRows<Scalar> x = space.rows;  // row-major: one row per contiguous p values
  DeviceArray<Scalar> dx(static_cast<std::size_t>(x.size()));
  DeviceArray<std::int64_t> chosen(static_cast<std::size_t>(count));
  dx.upload(ctx, x.data());
  device::greedy_coreset<Scalar>(ctx, dx.data(), n, x.cols(), count, space.first, chosen.data());
  std::vector<std::int64_t> host(static_cast<std::size_t>(count));
  chosen.download(ctx, host.data());
  selected.assign(host.begin(), host.end());
  return selected;
}

// How cholesky_batched factors: baypr's interleaved one-thread-per-matrix kernel, or cuSOLVER's
// potrfBatched (dense column-major matrices).
enum class CholeskyMethod { interleaved, cusolver };

template <class Scalar>
struct BatchedCholesky {
  std::vector<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>> factors;  // lower, L L^T = A
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> log_determinants;                   // log|A|
};

// Lower Cholesky factors of a batch of symmetric positive-definite d x d matrices (the lower
// triangles are read). A matrix that is not positive definite throws numerical_error naming
// its index in the batch and its pivot.
template <class Scalar>
[[nodiscard]] BatchedCholesky<Scalar> cholesky_batched(
    Context& ctx, std::span<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>> matrices,
    CholeskyMethod method = CholeskyMethod::interleaved) {
  detail::check_scalar<Scalar>();
  constexpr const char* fn = "baypr::cuda::cholesky_batched";
  const auto batch = static_cast<Eigen::Index>(matrices.size());
  baypr::detail::check_nonempty(fn, "matrices", batch);
  const Eigen::Index d = matrices[0].rows();
  if (d < 1) baypr::detail::throw_invalid(fn, "matrices", "must be at least 1 x 1, got 0 rows");
  for (Eigen::Index b = 0; b < batch; ++b) {
    const auto& A = matrices[static_cast<std::size_t>(b)];
    const std::string name = "matrices[" + std::to_string(b) + "]";
    baypr::detail::check_size(fn, name, "rows", A.rows(), d);
    baypr::detail::check_size(fn, name, "columns", A.cols(), d);
    baypr::detail::check_finite(fn, name, A);
  }
  const Eigen::Index packed = d * (d + 1) / 2;
  BatchedCholesky<Scalar> out;
  std::vector<int> info(static_cast<std::size_t>(batch));
  if (method == CholeskyMethod::interleaved) {
    std::vector<Scalar> host(static_cast<std::size_t>(packed * batch));
    for (Eigen::Index b = 0; b < batch; ++b) {
      const auto& A = matrices[static_cast<std::size_t>(b)];
      for (Eigen::Index i = 0; i < d; ++i) {
        for (Eigen::Index j = 0; j <= i; ++j)
          host[detail::interleaved_at(i, j, b, batch)] = A(i, j);
      }
    }
    DeviceArray<Scalar> a(host.size()), logdet(static_cast<std::size_t>(batch));
    DeviceArray<int> dinfo(info.size());
    a.upload(ctx, host.data());
    device::cholesky_interleaved<Scalar>(ctx, a.data(), batch, d, a.data(), logdet.data(),
                                         dinfo.data());
    dinfo.download(ctx, info.data());
    a.download(ctx, host.data());
    out.log_determinants.resize(batch);
    logdet.download(ctx, out.log_determinants.data());
    out.factors.assign(static_cast<std::size_t>(batch),
                       Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>::Zero(d, d));
    for (Eigen::Index b = 0; b < batch; ++b) {
      auto& L = out.factors[static_cast<std::size_t>(b)];
      for (Eigen::Index i = 0; i < d; ++i) {
        for (Eigen::Index j = 0; j <= i; ++j)
          L(i, j) = host[detail::interleaved_at(i, j, b, batch)];
      }
    }
  } else {
    std::vector<Scalar> host(static_cast<std::size_t>(d * d * batch));
    for (Eigen::Index b = 0; b < batch; ++b) {
      Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>(
          host.data() + b * d * d, d, d) = matrices[static_cast<std::size_t>(b)];
    }
    DeviceArray<Scalar> a(host.size());
    DeviceArray<int> dinfo(info.size());
    a.upload(ctx, host.data());
    device::potrf_batched<Scalar>(ctx, a.data(), batch, d, dinfo.data());
    dinfo.download(ctx, info.data());
    a.download(ctx, host.data());
    out.factors.resize(static_cast<std::size_t>(batch));
    out.log_determinants.resize(batch);
    for (Eigen::Index b = 0; b < batch; ++b) {
      auto& L = out.factors[static_cast<std::size_t>(b)];
      L = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>(
              host.data() + b * d * d, d, d)
              .template triangularView<Eigen::Lower>();
      out.log_determinants(b) = Scalar(2) * L.diagonal().array().log().sum();
    }
  }
  for (Eigen::Index b = 0; b < batch; ++b) {
    const int i = info[static_cast<std::size_t>(b)];
    if (i != 0) {
      baypr::detail::throw_numerical(fn, "matrix " + std::to_string(b) +
                                             " of the batch is not positive definite (pivot " +
                                             std::to_string(i - 1) + ")");
    }
  }
  return out;
}

// Per-position scores: models[b] scores row b of `points` (batch x d). Each model's dense
// Cholesky factor is used.
template <class Scalar, class Derived>
[[nodiscard]] Eigen::Matrix<Scalar, Eigen::Dynamic, 1> student_t_batch_log_pdf(
    Context& ctx, std::span<const StudentT<Scalar>> models,
    const Eigen::MatrixBase<Derived>& points) {
  detail::check_scalar<Scalar>();
  constexpr const char* fn = "baypr::cuda::student_t_batch_log_pdf";
  const auto batch = static_cast<Eigen::Index>(models.size());
  baypr::detail::check_nonempty(fn, "models", batch);
  const Eigen::Index d = models[0].dim();
  for (Eigen::Index b = 1; b < batch; ++b) {
    baypr::detail::check_size(fn, "models[" + std::to_string(b) + "]", "dimension",
                              models[static_cast<std::size_t>(b)].dim(), d);
  }
  baypr::detail::check_size(fn, "points", "rows", points.rows(), batch);
  baypr::detail::check_size(fn, "points", "columns", points.cols(), d);
  baypr::detail::check_finite(fn, "points", points);
  const Eigen::Index packed = d * (d + 1) / 2;
  const auto B = static_cast<std::size_t>(batch);
  std::vector<Scalar> factor(static_cast<std::size_t>(packed) * B),
      location(static_cast<std::size_t>(d) * B), x(static_cast<std::size_t>(d) * B), log_norm(B),
      half(B), dof(B);
  for (std::size_t b = 0; b < B; ++b) {
    const StudentT<Scalar>& t = models[b];
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> L = t.scale_cholesky();
    const auto k = static_cast<Eigen::Index>(b);
    for (Eigen::Index i = 0; i < d; ++i) {
      const auto row = static_cast<std::size_t>(i) * B + b;
      location[row] = t.location()(i);
      x[row] = static_cast<Scalar>(points(k, i));
      for (Eigen::Index j = 0; j <= i; ++j)
        factor[detail::interleaved_at(i, j, k, batch)] = L(i, j);
    }
    log_norm[b] = t.log_pdf_from_delta(0);
    half[b] = (t.dof() + static_cast<Scalar>(d)) / Scalar(2);
    dof[b] = t.dof();
  }
  DeviceArray<Scalar> dL(factor.size()), dmu(location.size()), dx(x.size()), dn(B), dh(B), dv(B),
      work(x.size()), values(B);
  dL.upload(ctx, factor.data());
  dmu.upload(ctx, location.data());
  dx.upload(ctx, x.data());
  dn.upload(ctx, log_norm.data());
  dh.upload(ctx, half.data());
  dv.upload(ctx, dof.data());
  device::student_t_batch_log_pdf<Scalar>(ctx, dL.data(), dmu.data(), dn.data(), dh.data(),
                                          dv.data(), dx.data(), batch, d, work.data(),
                                          values.data());
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(batch);
  values.download(ctx, out.data());
  return out;
}

}  // namespace baypr::cuda
