// baypr/stats/batched_student_t.hpp: many multivariate Student-t densities evaluated together,
// one model per lane of the interleaved batch (core/batched_cholesky.hpp).
//
//   StudentTBatch<T, Lanes>(location, scale, dof)   count models t(mu_k, Sigma_k, v_k), dimension d
//                                                   (scale: a SymmetricBatch or its CholeskyBatch)
//     .log_pdf(x [, &delta])  log t_k(x_k) for every k: one point per model (and delta_k)
//     .log_pdf(xs [, &delta]) the same for many batches of points (count x xs.size()), reading
//                        each model's factor once for all of them
//     .log_pdf_rows(X [, &delta]) the same for batches given as row blocks of one matrix (M count
//                        x d), read in place: per-position scoring of M images
//     .mahalanobis(x)    delta_k = (x_k - mu_k)^T Sigma_k^{-1} (x_k - mu_k)
//
//   log t(x) = lgamma((v+d)/2) - lgamma(v/2) - (d/2) log(v pi) - (1/2) log|Sigma|
//              - ((v+d)/2) log1p(delta / v)
//
// The workload: per-position normality models (one posterior predictive per patch position of
// aligned images), where a query image brings one point per model. Each log_pdf is one forward
// substitution per model, d^2 flops, run `width` models at a time. The per-model constants are
// computed once, in double precision, by the scalar special functions of core/special.hpp.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "baypr/core/batched_cholesky.hpp"
#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"

namespace baypr::batched {

template <class Scalar = double, class Lanes = simd::DefaultLanes<Scalar>>
class StudentTBatch {
 public:
  using Index = Eigen::Index;
  using Values = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using Symmetric = SymmetricBatch<Scalar, Lanes>;
  using Vectors = VectorBatch<Scalar, Lanes>;
  using Cholesky = CholeskyBatch<Scalar, Lanes>;
  using Pack = typename Lanes::Pack;
  static constexpr Index width = Lanes::width;

  // Throws baypr::invalid_argument for mismatched counts or dimensions, a dof that is not finite
  // and > 0 (naming the model), or a scale that is not positive definite (naming the model, its
  // pivot and the pivot's value).
  StudentTBatch(const Vectors& location, const Symmetric& scale, const Values& dof)
      : StudentTBatch(location, Cholesky(checked(location, scale.count(), scale.dim(), dof, scale)),
                      dof) {}

  // The same from the scales' Cholesky factors, for a caller that has factored them already.
  StudentTBatch(const Vectors& location, Cholesky scale_cholesky, const Values& dof)
      : location_(location), chol_(std::move(scale_cholesky)) {
    constexpr const char* fn = "baypr::batched::StudentTBatch::StudentTBatch";
    checked(location, chol_.count(), chol_.dim(), dof, 0);
    if (!chol_.ok()) {
      const BatchFailure& f = chol_.failures().front();
      baypr::detail::throw_invalid(fn, "scale",
                                   "must hold positive definite matrices, but matrix " +
                                       std::to_string(f.index) + " has Cholesky pivot " +
                                       std::to_string(f.pivot) + " = " +
                                       baypr::detail::format_value(f.value));
    }
    const Index groups = chol_.factor().groups();
    dof_.assign(static_cast<std::size_t>(groups * width), Scalar(1));
    half_dof_d_.assign(dof_.size(), Scalar(0));
    normaliser_.assign(dof_.size(), Scalar(0));
    const Values log_dets = chol_.log_determinants();
    const auto d = static_cast<double>(dim());
    for (Index k = 0; k < count(); ++k) {
      const auto v = static_cast<double>(dof(k));
      const auto at = static_cast<std::size_t>(k);
      dof_[at] = dof(k);
      half_dof_d_[at] = static_cast<Scalar>((v + d) / 2);
      normaliser_[at] = static_cast<Scalar>(special::lgamma((v + d) / 2) - special::lgamma(v / 2) -
                                            d / 2 * std::log(v * std::numbers::pi) -
                                            static_cast<double>(log_dets(k)) / 2);
    }
  }

  [[nodiscard]] Index count() const { return location_.count(); }
  [[nodiscard]] Index dim() const { return location_.dim(); }
  [[nodiscard]] const Cholesky& scale_cholesky() const { return chol_; }
  // The degrees of freedom v_k of every model.
  [[nodiscard]] Eigen::Map<const Values> dof() const {
    return Eigen::Map<const Values>(dof_.data(), count());
  }

  // log t_k(x_k) for every model k; with `delta`, also each delta_k, from the same solve.
  [[nodiscard]] Values log_pdf(const Vectors& x, Values* delta = nullptr) const {
    return evaluate("baypr::batched::StudentTBatch::log_pdf", x, true, delta);
  }

  // Many points per model: column m of the result is log_pdf(xs[m]) (and of *delta, delta). The
  // models' factors are read once for all m (groups outer, batches inner), which is what makes
  // scoring many images against many small models compute-bound rather than memory-bound.
  [[nodiscard]] Matrix log_pdf(std::span<const Vectors> xs, Matrix* delta = nullptr) const {
    constexpr const char* fn = "baypr::batched::StudentTBatch::log_pdf";
    for (std::size_t m = 0; m < xs.size(); ++m) {
      const std::string name = "xs[" + std::to_string(m) + "]";
      baypr::detail::check_size(fn, name, "count", xs[m].count(), count());
      baypr::detail::check_size(fn, name, "dim", xs[m].dim(), dim());
    }
    return solve(static_cast<Index>(xs.size()), true, delta,
                 [&](Index m, Index p, std::size_t) -> std::pair<const Scalar*, Index> {
                   return {xs[static_cast<std::size_t>(m)].element(p, 0), width};
                 });
  }

  // The same for batches given as row blocks of one matrix: batch m is rows [m count(), (m + 1)
  // count()) of X (M count() x d), so column m of the result is log_pdf of that block's rows as a
  // VectorBatch. A column-major X is read in place, without packing into lanes (only a last,
  // partial group of models is copied); a row-major one is copied by Eigen::Ref first.
  [[nodiscard]] Matrix log_pdf_rows(const Eigen::Ref<const Matrix>& X,
                                    Matrix* delta = nullptr) const {
    baypr::detail::check_finite("baypr::batched::StudentTBatch::log_pdf_rows", "X", X);
    return log_pdf_rows(X, already_checked, delta);
  }
  // ... for an X already known to be finite (the shape is still checked).
  [[nodiscard]] Matrix log_pdf_rows(const Eigen::Ref<const Matrix>& X, AlreadyChecked,
                                    Matrix* delta = nullptr) const {
    constexpr const char* fn = "baypr::batched::StudentTBatch::log_pdf_rows";
    baypr::detail::check_size(fn, "X", "columns", X.cols(), dim());
    if (X.rows() % count() != 0) {
      baypr::detail::throw_invalid(fn, "X",
                                   "has " + std::to_string(X.rows()) +
                                       " rows, not a multiple of the batch's " +
                                       std::to_string(count()) + " models");
    }
    const Index n = count(), d = dim();
    const Index full = n / width;  // groups whose lanes are all models
    detail::Buffer<Scalar> packed(block * static_cast<std::size_t>(d * width), Scalar(0));
    return solve(X.rows() / n, true, delta,
                 [&](Index m, Index p, std::size_t b) -> std::pair<const Scalar*, Index> {
                   if (p < full) return {X.data() + m * n + p * width, X.outerStride()};
                   Scalar* out = packed.data() + static_cast<Index>(b) * d * width;
                   for (Index i = 0; i < d; ++i) {
                     for (Index lane = 0; p * width + lane < n; ++lane) {
                       out[i * width + lane] = X(m * n + p * width + lane, i);
                     }
                   }
                   return {out, width};
                 });
  }

  // The squared Mahalanobis distance delta_k of x_k under model k.
  [[nodiscard]] Values mahalanobis(const Vectors& x) const {
    return evaluate("baypr::batched::StudentTBatch::mahalanobis", x, false, nullptr);
  }

 private:
  // Checks the shapes and the dofs, and passes `through` on (so that the check runs before the
  // delegating constructor factors the scales).
  template <class T>
  static const T& checked(const Vectors& location, Index count, Index dim, const Values& dof,
                          const T& through) {
    constexpr const char* fn = "baypr::batched::StudentTBatch::StudentTBatch";
    baypr::detail::check_size(fn, "scale", "count", count, location.count());
    baypr::detail::check_size(fn, "scale", "dim", dim, location.dim());
    baypr::detail::check_size(fn, "dof", "size", dof.size(), location.count());
    for (Index k = 0; k < dof.size(); ++k) {
      const auto v = static_cast<double>(dof(k));
      if (!(v > 0.0) || !std::isfinite(v)) {
        baypr::detail::throw_invalid(fn, "dof",
                                     "must be finite and > 0, got " +
                                         baypr::detail::format_value(v) + " for model " +
                                         std::to_string(k));
      }
    }
    return through;
  }

  Values evaluate(std::string_view fn, const Vectors& x, bool density, Values* delta) const {
    baypr::detail::check_size(fn, "x", "count", x.count(), count());
    baypr::detail::check_size(fn, "x", "dim", x.dim(), dim());
    Matrix deltas;
    const Matrix r = solve(1, density, delta ? &deltas : nullptr,
                           [&](Index, Index p, std::size_t) -> std::pair<const Scalar*, Index> {
                             return {x.element(p, 0), width};
                           });
    if (delta != nullptr) *delta = deltas.col(0);
    return r.col(0);
  }

  // The one kernel loop, on checked batches: for each group of models, the M batches of points
  // `block` at a time: the forward solve of x - mu with the group's factor (each factor element
  // loaded once per block: CholeskyBatch::forward_norm_many), delta; and with `density`, log t.
  // source(m, p, b) gives batch m's points for group p (slot b of the block) as a pointer and the
  // stride between their elements. Column m holds batch m's values (delta when not `density`).
  // A last, partial block goes one batch at a time through the same kernel
  // (forward_norm_many<1>), whose arithmetic per batch is the blocked one's, so a batch's values do
  // not depend on how many others come with it.
  static constexpr std::size_t block = 4;
  template <class Source>
  Matrix solve(Index M, bool density, Matrix* delta, const Source& source) const {
    const Index d = dim(), groups = chol_.factor().groups();
    detail::Buffer<Scalar> z(block * static_cast<std::size_t>(d * width));
    detail::Buffer<Scalar> out(static_cast<std::size_t>(groups * width * M));
    detail::Buffer<Scalar> deltas(delta != nullptr ? out.size() : 0);
    std::array<Scalar*, block> zs{};
    for (std::size_t b = 0; b < block; ++b) {
      zs[b] = z.data() + static_cast<Index>(b) * d * width;
    }
    std::array<const Scalar*, block> rhs{};
    std::array<Pack, block> g{};
    for (Index p = 0; p < groups; ++p) {
      const auto at = static_cast<std::size_t>(p * width);
      const Pack c = Lanes::load(normaliser_.data() + at);
      const Pack h = Lanes::load(half_dof_d_.data() + at);
      const Pack v = Lanes::load(dof_.data() + at);
      const Scalar* mu = location_.element(p, 0);
      for (Index m0 = 0; m0 < M; m0 += static_cast<Index>(block)) {
        const Index in_block = std::min<Index>(static_cast<Index>(block), M - m0);
        Index stride = width;
        for (Index b = 0; b < in_block; ++b) {
          const auto k = static_cast<std::size_t>(b);
          std::tie(rhs[k], stride) = source(m0 + b, p, k);
        }
        if (in_block == static_cast<Index>(block)) {
          chol_.template forward_norm_many<block>(p, rhs, stride, mu, zs, g);
        } else {
          for (Index b = 0; b < in_block; ++b) {
            const auto k = static_cast<std::size_t>(b);
            std::array<Pack, 1> one{};
            chol_.template forward_norm_many<1>(p, {rhs[k]}, stride, mu, {zs[k]}, one);
            g[k] = one[0];
          }
        }
        for (Index b = 0; b < in_block; ++b) {
          const Pack gb = g[static_cast<std::size_t>(b)];
          const auto o = static_cast<std::size_t>(((m0 + b) * groups + p) * width);
          Lanes::store(out.data() + o, density ? Pack(c - h * Lanes::log1p(gb / v)) : gb);
          if (delta != nullptr) Lanes::store(deltas.data() + o, gb);
        }
      }
    }
    Matrix result(count(), M);
    if (delta != nullptr) delta->resize(count(), M);
    for (Index m = 0; m < M; ++m) {
      const auto o = static_cast<std::size_t>(m * groups * width);
      result.col(m) = Eigen::Map<const Values>(out.data() + o, count());
      if (delta != nullptr) delta->col(m) = Eigen::Map<const Values>(deltas.data() + o, count());
    }
    return result;
  }

  Vectors location_;
  Cholesky chol_;
  // Per lane (padding lanes: dof 1, constants 0, never read back).
  detail::Buffer<Scalar> dof_, half_dof_d_, normaliser_;
};

}  // namespace baypr::batched
