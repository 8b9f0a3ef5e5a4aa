// baypr/core/batched_cholesky.hpp: many small independent Cholesky problems at once, "SIMD
// across matrices" (lane k of each register holds problem k of a group of `width`).
//
//   SymmetricBatch<T, Lanes>   count symmetric d x d matrices (lower triangles, interleaved)
//   VectorBatch<T, Lanes>      count vectors of length d (interleaved)
//   CholeskyBatch<T, Lanes>    A_k = L_k L_k^T for every k; failures() names the matrices that are
//                              not positive definite, and every other factor is still exact
//     .log_determinants()      log |A_k| = 2 sum_j log L_k(j, j)
//     .solve_lower(b)          L_k^{-1} b_k          (forward substitution)
//     .solve(b)                A_k^{-1} b_k          (forward, then back substitution)
//     .squared_norms(b)        b_k^T A_k^{-1} b_k = |L_k^{-1} b_k|^2
//     .rank_update(x, sigma)   L_k L_k^T + sigma_k x_k x_k^T, all or nothing
//
// Why: a loop of Eigen LLT over thousands of d = 4..64 problems (patch positions, the episodes of
// a meta-batch) runs each factorisation on its own, with short loops that fill a vector register
// poorly and a heap allocation per matrix. Interleaving `width` matrices element by element turns
// every scalar operation of the textbook algorithm into one full-width vector operation with no
// shuffles, whatever d is. The Lanes parameter (core/simd.hpp) is xsimd's batch where baypr::simd
// is linked, else one plain scalar; both run the same code, and the tests compare them with Eigen.
//
// Storage: matrix k lives in group p = k / width, lane k % width; element (i, j), j <= i, of the
// row-packed lower triangle is at ((p * d (d + 1) / 2) + i (i + 1) / 2 + j) * width + lane. Unused
// lanes of the last group hold the identity, so they never fail.
//
// Errors: inputs are checked where they enter (set: shape, finiteness, index); an operation that
// needs a factor of a matrix that failed throws baypr::numerical_error naming the batch index, the
// pivot and its value, and writes nothing (every operation returns a new object, and rank_update
// commits only when every matrix of the batch stays positive definite).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/simd.hpp"

namespace baypr::batched {

namespace detail {

// 64-byte alignment (a cache line, an AVX-512 register) for the interleaved groups.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  explicit AlignedAllocator(const AlignedAllocator<U>& /*other*/) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, std::size_t /*n*/) noexcept { ::operator delete (p, std::align_val_t{64}); }
  friend bool operator==(const AlignedAllocator&, const AlignedAllocator&) { return true; }
};

template <class T>
using Buffer = std::vector<T, AlignedAllocator<T>>;

inline Eigen::Index groups_for(Eigen::Index count, Eigen::Index width) {
  return (count + width - 1) / width;
}

inline void check_shape(std::string_view function, Eigen::Index count, Eigen::Index dim) {
  if (count < 0) {
    baypr::detail::throw_invalid(function, "count", "must be >= 0, got " + std::to_string(count));
  }
  if (dim < 1) {
    baypr::detail::throw_invalid(function, "dim", "must be >= 1, got " + std::to_string(dim));
  }
}

inline void check_member(std::string_view function, std::string_view argument, Eigen::Index k,
                         Eigen::Index count) {
  if (k < 0 || k >= count) {
    baypr::detail::throw_invalid(
        function, argument,
        "must be in [0, " + std::to_string(count) + "), got " + std::to_string(k));
  }
}

}  // namespace detail

// count symmetric d x d matrices, the lower triangle of each stored (set() reads the lower
// triangle only, as Eigen's LLT does). A new batch holds identity matrices.
template <class Scalar = double, class Lanes = simd::DefaultLanes<Scalar>>
class SymmetricBatch {
  static_assert(std::is_same_v<Scalar, typename Lanes::Scalar>, "Lanes must be over Scalar");

 public:
  using Index = Eigen::Index;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  static constexpr Index width = Lanes::width;

  SymmetricBatch(Index count, Index dim) {
    detail::check_shape("baypr::batched::SymmetricBatch::SymmetricBatch", count, dim);
    count_ = count;
    dim_ = dim;
    data_.assign(static_cast<std::size_t>(groups() * packed_size() * width), Scalar(0));
    for (Index p = 0; p < groups(); ++p) {
      for (Index i = 0; i < dim_; ++i) {
        Scalar* d = element(p, i, i);
        std::fill(d, d + width, Scalar(1));
      }
    }
  }

  [[nodiscard]] Index count() const { return count_; }
  [[nodiscard]] Index dim() const { return dim_; }
  [[nodiscard]] Index groups() const { return detail::groups_for(count_, width); }
  [[nodiscard]] Index packed_size() const { return dim_ * (dim_ + 1) / 2; }

  // Matrix k becomes the lower triangle of m (d x d, finite).
  template <class Derived>
  void set(Index k, const Eigen::MatrixBase<Derived>& m) {
    constexpr const char* fn = "baypr::batched::SymmetricBatch::set";
    detail::check_member(fn, "k", k, count_);
    baypr::detail::check_size(fn, "m", "rows", m.rows(), dim_);
    baypr::detail::check_size(fn, "m", "columns", m.cols(), dim_);
    const auto lower = m.template triangularView<Eigen::Lower>().toDenseMatrix();
    baypr::detail::check_finite(fn, "m (lower triangle)", lower);
    const Index p = k / width;
    const Index lane = k % width;
    for (Index i = 0; i < dim_; ++i) {
      for (Index j = 0; j <= i; ++j) element(p, i, j)[lane] = static_cast<Scalar>(m(i, j));
    }
  }

  // Matrix k, both triangles filled.
  [[nodiscard]] Matrix get(Index k) const {
    detail::check_member("baypr::batched::SymmetricBatch::get", "k", k, count_);
    Matrix out(dim_, dim_);
    const Index p = k / width;
    const Index lane = k % width;
    for (Index i = 0; i < dim_; ++i) {
      for (Index j = 0; j <= i; ++j) out(i, j) = out(j, i) = element(p, i, j)[lane];
    }
    return out;
  }

  // The first of the `width` lanes of element (i, j), j <= i, of group p.
  [[nodiscard]] Scalar* element(Index p, Index i, Index j) {
    return data_.data() + ((p * packed_size() + i * (i + 1) / 2 + j) * width);
  }
  [[nodiscard]] const Scalar* element(Index p, Index i, Index j) const {
    return data_.data() + ((p * packed_size() + i * (i + 1) / 2 + j) * width);
  }

 private:
  Index count_ = 0;
  Index dim_ = 1;
  detail::Buffer<Scalar> data_;
};

// Passed to VectorBatch::set_rows by a caller that has already checked X for non-finite entries
// (a scorer that validated its whole input once), so that the check is not repeated per chunk.
struct AlreadyChecked {};
inline constexpr AlreadyChecked already_checked{};

// count vectors of length d, interleaved like SymmetricBatch; a new batch holds zeros.
template <class Scalar = double, class Lanes = simd::DefaultLanes<Scalar>>
class VectorBatch {
  static_assert(std::is_same_v<Scalar, typename Lanes::Scalar>, "Lanes must be over Scalar");

 public:
  using Index = Eigen::Index;
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  static constexpr Index width = Lanes::width;

  VectorBatch(Index count, Index dim) {
    detail::check_shape("baypr::batched::VectorBatch::VectorBatch", count, dim);
    count_ = count;
    dim_ = dim;
    data_.assign(static_cast<std::size_t>(groups() * dim_ * width), Scalar(0));
  }

  // One vector per row of X (count x d).
  template <class Derived>
  static VectorBatch from_rows(const Eigen::MatrixBase<Derived>& X) {
    VectorBatch out(X.rows(), X.cols());
    out.set_rows(X);
    return out;
  }

  [[nodiscard]] Index count() const { return count_; }
  [[nodiscard]] Index dim() const { return dim_; }
  [[nodiscard]] Index groups() const { return detail::groups_for(count_, width); }

  template <class Derived>
  void set(Index k, const Eigen::MatrixBase<Derived>& v) {
    constexpr const char* fn = "baypr::batched::VectorBatch::set";
    detail::check_member(fn, "k", k, count_);
    baypr::detail::check_size(fn, "v", "size", v.size(), dim_);
    baypr::detail::check_finite(fn, "v", v);
    const Index p = k / width;
    const Index lane = k % width;
    for (Index i = 0; i < dim_; ++i) element(p, i)[lane] = static_cast<Scalar>(v(i));
  }

  // Vector k becomes row k of X (count x d, finite), for every k.
  template <class Derived>
  void set_rows(const Eigen::MatrixBase<Derived>& X) {
    baypr::detail::check_finite("baypr::batched::VectorBatch::set_rows", "X", X);
    set_rows(X, already_checked);
  }

  // The same without the finite check, for X known to be finite (the shape is still checked).
  template <class Derived>
  void set_rows(const Eigen::MatrixBase<Derived>& X, AlreadyChecked) {
    constexpr const char* fn = "baypr::batched::VectorBatch::set_rows";
    baypr::detail::check_size(fn, "X", "rows", X.rows(), count_);
    baypr::detail::check_size(fn, "X", "columns", X.cols(), dim_);
    // Column by column: consecutive rows go to consecutive lanes, contiguous on both sides for a
    // column-major X in memory, which is then copied a group at a time.
    constexpr bool contiguous_columns = (int(Derived::Flags) & Eigen::DirectAccessBit) != 0 &&
                                        (int(Derived::Flags) & Eigen::RowMajorBit) == 0 &&
                                        std::is_same_v<typename Derived::Scalar, Scalar>;
    const Index full = contiguous_columns ? count_ / width : 0;
    if constexpr (contiguous_columns) {
      // Group by group, so that the writes are sequential (a group's d x width block is
      // contiguous here, while one column's slots are d x width apart).
      const Scalar* x = X.derived().data();
      const Index stride = X.derived().outerStride();
      for (Index p = 0; p < full; ++p) {
        Scalar* out = element(p, 0);
        for (Index i = 0; i < dim_; ++i) {
          std::copy_n(x + i * stride + p * width, width, out + i * width);
        }
      }
    }
    for (Index i = 0; i < dim_; ++i) {
      for (Index k = full * width; k < count_; ++k) {
        element(k / width, i)[k % width] = static_cast<Scalar>(X(k, i));
      }
    }
  }

  [[nodiscard]] Vector get(Index k) const {
    detail::check_member("baypr::batched::VectorBatch::get", "k", k, count_);
    Vector out(dim_);
    const Index p = k / width;
    const Index lane = k % width;
    for (Index i = 0; i < dim_; ++i) out(i) = element(p, i)[lane];
    return out;
  }

  // Row k is vector k.
  [[nodiscard]] Rows rows() const {
    Rows out(count_, dim_);
    for (Index k = 0; k < count_; ++k) out.row(k) = get(k).transpose();
    return out;
  }

  [[nodiscard]] Scalar* element(Index p, Index i) { return data_.data() + (p * dim_ + i) * width; }
  [[nodiscard]] const Scalar* element(Index p, Index i) const {
    return data_.data() + (p * dim_ + i) * width;
  }

 private:
  Index count_ = 0;
  Index dim_ = 1;
  detail::Buffer<Scalar> data_;
};

// A matrix of the batch that is not positive definite: its index, the first pivot that was not
// > 0 (or not finite) and that pivot's value (the Schur complement entry before the square root).
struct BatchFailure {
  Eigen::Index index;
  Eigen::Index pivot;
  double value;
};

template <class Scalar = double, class Lanes = simd::DefaultLanes<Scalar>>
class CholeskyBatch {
 public:
  using Index = Eigen::Index;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using Values = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using Symmetric = SymmetricBatch<Scalar, Lanes>;
  using Vectors = VectorBatch<Scalar, Lanes>;
  using Pack = typename Lanes::Pack;
  static constexpr Index width = Lanes::width;

  // Factors every matrix of a; never throws for a matrix that is not positive definite: it is
  // listed in failures(), and every other factor is exact.
  explicit CholeskyBatch(const Symmetric& a)
      : factor_(a), inv_diag_(static_cast<std::size_t>(a.groups() * a.dim() * width), Scalar(0)) {
    for (Index p = 0; p < factor_.groups(); ++p) factor_group(p);
  }

  [[nodiscard]] Index count() const { return factor_.count(); }
  [[nodiscard]] Index dim() const { return factor_.dim(); }
  // Whether every matrix of the batch was positive definite.
  [[nodiscard]] bool ok() const { return failures_.empty(); }
  // The matrices that were not, by ascending index.
  [[nodiscard]] const std::vector<BatchFailure>& failures() const { return failures_; }
  [[nodiscard]] bool ok(Index k) const {
    detail::check_member("baypr::batched::CholeskyBatch::ok", "k", k, count());
    return find_failure(k) == nullptr;
  }

  // The lower-triangular factor of matrix k.
  [[nodiscard]] Matrix matrix_l(Index k) const {
    constexpr const char* fn = "baypr::batched::CholeskyBatch::matrix_l";
    detail::check_member(fn, "k", k, count());
    if (const BatchFailure* f = find_failure(k)) throw_failure(fn, *f);
    Matrix l = factor_.get(k);
    return l.template triangularView<Eigen::Lower>();
  }

  // log |A_k| for every k.
  [[nodiscard]] Values log_determinants() const {
    require_ok("baypr::batched::CholeskyBatch::log_determinants");
    detail::Buffer<Scalar> out(static_cast<std::size_t>(factor_.groups() * width));
    for (Index p = 0; p < factor_.groups(); ++p) {
      Pack s = Lanes::splat(Scalar(0));
      for (Index j = 0; j < dim(); ++j) s = s + Lanes::log(Lanes::load(factor_.element(p, j, j)));
      Lanes::store(out.data() + p * width, s + s);
    }
    return to_values(out);
  }

  // L_k^{-1} b_k for every k.
  [[nodiscard]] Vectors solve_lower(const Vectors& b) const {
    constexpr const char* fn = "baypr::batched::CholeskyBatch::solve_lower";
    check_operand(fn, "b", b);
    Vectors z = b;
    for (Index p = 0; p < factor_.groups(); ++p) forward(p, z);
    return z;
  }

  // A_k^{-1} b_k for every k.
  [[nodiscard]] Vectors solve(const Vectors& b) const {
    constexpr const char* fn = "baypr::batched::CholeskyBatch::solve";
    check_operand(fn, "b", b);
    Vectors z = b;
    for (Index p = 0; p < factor_.groups(); ++p) {
      forward(p, z);
      backward(p, z);
    }
    return z;
  }

  // b_k^T A_k^{-1} b_k for every k.
  [[nodiscard]] Values squared_norms(const Vectors& b) const {
    constexpr const char* fn = "baypr::batched::CholeskyBatch::squared_norms";
    check_operand(fn, "b", b);
    detail::Buffer<Scalar> out(static_cast<std::size_t>(factor_.groups() * width));
    detail::Buffer<Scalar> z(static_cast<std::size_t>(dim() * width));
    for (Index p = 0; p < factor_.groups(); ++p) {
      Lanes::store(out.data() + p * width, forward_norm(p, b.element(p, 0), z.data()));
    }
    return to_values(out);
  }

  // Every factor becomes that of L_k L_k^T + sigma x_k x_k^T (sigma < 0: a downdate). Throws
  // baypr::numerical_error naming the first matrix that would stop being positive definite, and
  // then changes nothing.
  void rank_update(const Vectors& x, Scalar sigma) {
    rank_update(x, Values::Constant(count(), sigma));
  }
  // ... with a weight sigma_k per matrix.
  void rank_update(const Vectors& x, const Values& sigma) {
    constexpr const char* fn = "baypr::batched::CholeskyBatch::rank_update";
    check_operand(fn, "x", x);
    baypr::detail::check_size(fn, "sigma", "size", sigma.size(), count());
    baypr::detail::check_finite(fn, "sigma", sigma);
    CholeskyBatch next = *this;
    detail::Buffer<Scalar> w(static_cast<std::size_t>(dim() * width));
    std::array<Scalar, static_cast<std::size_t>(width)> s{};
    std::vector<BatchFailure> failed;
    for (Index p = 0; p < factor_.groups(); ++p) {
      for (Index lane = 0; lane < width; ++lane) {
        const Index k = p * width + lane;
        s[static_cast<std::size_t>(lane)] = k < count() ? sigma(k) : Scalar(0);
      }
      std::copy(x.element(p, 0), x.element(p, 0) + dim() * width, w.data());
      next.update_group(p, w.data(), Lanes::load(s.data()), failed);
      if (!failed.empty()) break;  // groups run in index order: this is the first failure
    }
    if (!failed.empty()) {
      const BatchFailure& f = failed.front();
      baypr::detail::throw_numerical(
          fn, "matrix " + std::to_string(f.index) +
                  " of the batch would not stay positive definite (its pivot " +
                  std::to_string(f.pivot) + " would be " + baypr::detail::format_value(f.value) +
                  "); no factor was changed");
    }
    *this = std::move(next);
  }

  // The raw factor and inverse diagonal of group p (for kernels built on this one).
  [[nodiscard]] const Symmetric& factor() const { return factor_; }
  [[nodiscard]] const Scalar* inv_diag(Index p, Index j) const {
    return inv_diag_.data() + (p * dim() + j) * width;
  }

  // z (dim() x width scalars) = L^{-1} (rhs) for group p; returns |z|^2 per lane. rhs may alias z.
  Pack forward_norm(Index p, const Scalar* rhs, Scalar* z) const {
    const Index d = dim();
    Pack g = Lanes::splat(Scalar(0));
    for (Index i = 0; i < d; ++i) {
      Pack s = dot_sub(Lanes::load(rhs + i * width), factor_.element(p, i, 0), z, i);
      s = s * Lanes::load(inv_diag(p, i));
      Lanes::store(z + i * width, s);
      g = g + s * s;
    }
    return g;
  }

  // forward_norm for B right-hand sides of group p at once: z[b] = L^{-1} (rhs[b] - shift) and
  // g[b] = |z[b]|^2 per lane. z[b] and shift (null: none) are dim() x width scalars; rhs[b]'s
  // element i starts at rhs[b] + i rhs_stride (width for a VectorBatch's group; a column-major
  // matrix's outer stride when its rows are read in place). Each factor
  // element is loaded once for all B, and rows go two at a time, so that each load of z_b(j)
  // serves both: 2 + B loads per 2 B fused multiply-adds, where forward_norm needs 2 per 1. This
  // is the kernel of scoring many points per model (StudentTBatch::log_pdf of many batches). Each
  // row's sum runs over j in order whatever B, so a right-hand side's result does not depend on
  // B (it differs from forward_norm's, which splits the sum, by rounding only).
  template <std::size_t B>
  void forward_norm_many(Index p, const std::array<const Scalar*, B>& rhs, Index rhs_stride,
                         const Scalar* shift, const std::array<Scalar*, B>& z,
                         std::array<Pack, B>& g) const {
    for (std::size_t b = 0; b < B; ++b) g[b] = Lanes::splat(Scalar(0));
    Index i = 0;
    for (; i + 2 <= dim(); i += 2) forward_rows<B, 2>(p, i, rhs, rhs_stride, shift, z, g);
    for (; i < dim(); ++i) forward_rows<B, 1>(p, i, rhs, rhs_stride, shift, z, g);
  }

  [[noreturn]] static void throw_failure(std::string_view function, const BatchFailure& f) {
    baypr::detail::throw_numerical(
        function, "matrix " + std::to_string(f.index) +
                      " of the batch is not positive definite (its Cholesky pivot " +
                      std::to_string(f.pivot) + " is " + baypr::detail::format_value(f.value) +
                      ")");
  }
  void require_ok(std::string_view function) const {
    if (!failures_.empty()) throw_failure(function, failures_.front());
  }

 private:
  Scalar* inv_diag_mut(Index p, Index j) { return inv_diag_.data() + (p * dim() + j) * width; }

  // Rows i .. i + R - 1 of forward_norm_many: the sums over the solved rows j < i, sharing each
  // load, then the triangle of the R rows themselves, in order.
  template <std::size_t B, std::size_t R>
  void forward_rows(Index p, Index i, const std::array<const Scalar*, B>& rhs, Index rhs_stride,
                    const Scalar* shift, const std::array<Scalar*, B>& z,
                    std::array<Pack, B>& g) const {
    std::array<const Scalar*, R> l;
    std::array<std::array<Pack, B>, R> s;
    for (std::size_t r = 0; r < R; ++r) {
      const Index row = i + static_cast<Index>(r);
      l[r] = factor_.element(p, row, 0);
      const Pack c = shift != nullptr ? Lanes::load(shift + row * width) : Lanes::splat(Scalar(0));
      for (std::size_t b = 0; b < B; ++b) s[r][b] = Lanes::load(rhs[b] + row * rhs_stride) - c;
    }
    for (Index j = 0; j < i; ++j) {
      std::array<Pack, R> a;
      for (std::size_t r = 0; r < R; ++r) a[r] = Lanes::load(l[r] + j * width);
      for (std::size_t b = 0; b < B; ++b) {
        const Pack y = Lanes::load(z[b] + j * width);
        for (std::size_t r = 0; r < R; ++r) s[r][b] = Lanes::fnma(a[r], y, s[r][b]);
      }
    }
    for (std::size_t r = 0; r < R; ++r) {
      const Index row = i + static_cast<Index>(r);
      const Pack inv = Lanes::load(inv_diag(p, row));
      for (std::size_t b = 0; b < B; ++b) {
        const Pack y = s[r][b] * inv;
        Lanes::store(z[b] + row * width, y);
        g[b] = g[b] + y * y;
        for (std::size_t q = r + 1; q < R; ++q) {
          s[q][b] = Lanes::fnma(Lanes::load(l[q] + row * width), y, s[q][b]);
        }
      }
    }
  }

  const BatchFailure* find_failure(Index k) const {
    const auto it = std::lower_bound(failures_.begin(), failures_.end(), k,
                                     [](const BatchFailure& f, Index i) { return f.index < i; });
    return it != failures_.end() && it->index == k ? &*it : nullptr;
  }

  void check_operand(std::string_view function, std::string_view argument, const Vectors& b) const {
    baypr::detail::check_size(function, argument, "count", b.count(), count());
    baypr::detail::check_size(function, argument, "dim", b.dim(), dim());
    require_ok(function);
  }

  Values to_values(const detail::Buffer<Scalar>& lanes) const {
    return Eigen::Map<const Values>(lanes.data(), count());
  }

  // Records the lanes of `bad` not yet in `done` as failures at `pivot` with values `s`.
  void record(Index p, Index pivot, typename Lanes::Mask bad, const Pack& s,
              std::array<bool, static_cast<std::size_t>(width)>& done,
              std::vector<BatchFailure>& out) const {
    std::array<bool, static_cast<std::size_t>(width)> flags{};
    std::array<Scalar, static_cast<std::size_t>(width)> values{};
    Lanes::store_mask(flags.data(), bad);
    Lanes::store(values.data(), s);
    for (Index lane = 0; lane < width; ++lane) {
      const auto l = static_cast<std::size_t>(lane);
      const Index k = p * width + lane;
      if (flags[l] && !done[l] && k < count()) {
        out.push_back({k, pivot, static_cast<double>(values[l])});
        done[l] = true;
      }
    }
  }

  // s - sum_{k < n} a_k b_k over interleaved vectors, in four independent chains (a single
  // chain would wait on the FMA latency at every step).
  static Pack dot_sub(Pack s, const Scalar* a, const Scalar* b, Index n) {
    Pack c1 = Lanes::splat(Scalar(0)), c2 = c1, c3 = c1;
    Index k = 0;
    for (; k + 4 <= n; k += 4) {
      s = Lanes::fnma(Lanes::load(a + k * width), Lanes::load(b + k * width), s);
      c1 = Lanes::fnma(Lanes::load(a + (k + 1) * width), Lanes::load(b + (k + 1) * width), c1);
      c2 = Lanes::fnma(Lanes::load(a + (k + 2) * width), Lanes::load(b + (k + 2) * width), c2);
      c3 = Lanes::fnma(Lanes::load(a + (k + 3) * width), Lanes::load(b + (k + 3) * width), c3);
    }
    for (; k < n; ++k) s = Lanes::fnma(Lanes::load(a + k * width), Lanes::load(b + k * width), s);
    return (s + c1) + (c2 + c3);
  }

  // Columns j0 .. j0 + 3 of a row, given s_b = A(i, j0 + b) - L(i, :j0) . L(j0 + b, :j0): the
  // triangle of the four columns (L(i, j0 + b) also needs L(i, j0 .. j0 + b - 1)), then stores.
  void finish_block(Index p, Scalar* li, Index j0, Pack s0, Pack s1, Pack s2, Pack s3) const {
    const Scalar* l1 = factor_.element(p, j0 + 1, 0);
    const Scalar* l2 = factor_.element(p, j0 + 2, 0);
    const Scalar* l3 = factor_.element(p, j0 + 3, 0);
    const Pack x0 = s0 * Lanes::load(inv_diag(p, j0));
    s1 = Lanes::fnma(x0, Lanes::load(l1 + j0 * width), s1);
    s2 = Lanes::fnma(x0, Lanes::load(l2 + j0 * width), s2);
    s3 = Lanes::fnma(x0, Lanes::load(l3 + j0 * width), s3);
    const Pack x1 = s1 * Lanes::load(inv_diag(p, j0 + 1));
    s2 = Lanes::fnma(x1, Lanes::load(l2 + (j0 + 1) * width), s2);
    s3 = Lanes::fnma(x1, Lanes::load(l3 + (j0 + 1) * width), s3);
    const Pack x2 = s2 * Lanes::load(inv_diag(p, j0 + 2));
    s3 = Lanes::fnma(x2, Lanes::load(l3 + (j0 + 2) * width), s3);
    Lanes::store(li + j0 * width, x0);
    Lanes::store(li + (j0 + 1) * width, x1);
    Lanes::store(li + (j0 + 2) * width, x2);
    Lanes::store(li + (j0 + 3) * width, s3 * Lanes::load(inv_diag(p, j0 + 3)));
  }

  // Rows i0 .. i0 + R - 1 (R = 1 or 2), columns j < i0 in blocks of four: R x 4 independent
  // chains sharing each load (2 rows: 6 loads per 8 FMAs). Columns past the last full block are
  // left to the caller.
  template <int R>
  Index factor_blocks(Index p, Index i0) {
    Scalar* r0 = factor_.element(p, i0, 0);
    Scalar* r1 = R == 2 ? factor_.element(p, i0 + 1, 0) : r0;
    Index j0 = 0;
    for (; j0 + 4 <= i0; j0 += 4) {
      const Scalar* l0 = factor_.element(p, j0, 0);
      const Scalar* l1 = factor_.element(p, j0 + 1, 0);
      const Scalar* l2 = factor_.element(p, j0 + 2, 0);
      const Scalar* l3 = factor_.element(p, j0 + 3, 0);
      Pack s00 = Lanes::load(r0 + j0 * width), s01 = Lanes::load(r0 + (j0 + 1) * width);
      Pack s02 = Lanes::load(r0 + (j0 + 2) * width), s03 = Lanes::load(r0 + (j0 + 3) * width);
      Pack s10 = Lanes::load(r1 + j0 * width), s11 = Lanes::load(r1 + (j0 + 1) * width);
      Pack s12 = Lanes::load(r1 + (j0 + 2) * width), s13 = Lanes::load(r1 + (j0 + 3) * width);
      for (Index k = 0; k < j0; ++k) {
        const Pack b0 = Lanes::load(l0 + k * width), b1 = Lanes::load(l1 + k * width);
        const Pack b2 = Lanes::load(l2 + k * width), b3 = Lanes::load(l3 + k * width);
        const Pack a0 = Lanes::load(r0 + k * width);
        s00 = Lanes::fnma(a0, b0, s00);
        s01 = Lanes::fnma(a0, b1, s01);
        s02 = Lanes::fnma(a0, b2, s02);
        s03 = Lanes::fnma(a0, b3, s03);
        if constexpr (R == 2) {
          const Pack a1 = Lanes::load(r1 + k * width);
          s10 = Lanes::fnma(a1, b0, s10);
          s11 = Lanes::fnma(a1, b1, s11);
          s12 = Lanes::fnma(a1, b2, s12);
          s13 = Lanes::fnma(a1, b3, s13);
        }
      }
      finish_block(p, r0, j0, s00, s01, s02, s03);
      if constexpr (R == 2) finish_block(p, r1, j0, s10, s11, s12, s13);
    }
    return j0;
  }

  // Row i from column j0 on: the remaining off-diagonal entries one by one, then the pivot.
  void finish_row(Index p, Index i, Index j0, typename Lanes::Mask& bad,
                  std::array<bool, static_cast<std::size_t>(width)>& done) {
    const Pack one = Lanes::splat(Scalar(1));
    Scalar* li = factor_.element(p, i, 0);
    for (Index j = j0; j < i; ++j) {
      const Pack s = dot_sub(Lanes::load(li + j * width), li, factor_.element(p, j, 0), j);
      Lanes::store(li + j * width, s * Lanes::load(inv_diag(p, j)));
    }
    const Pack s = dot_sub(Lanes::load(li + i * width), li, li, i);
    const typename Lanes::Mask now = Lanes::not_positive(s);
    if (Lanes::any(now)) record(p, i, now, s, done, failures_);
    bad = Lanes::either(bad, now);
    const Pack root = Lanes::sqrt(Lanes::select(bad, one, s));
    Lanes::store(li + i * width, root);
    Lanes::store(inv_diag_mut(p, i), one / root);
  }

  // Cholesky-Banachiewicz, row by row: L(i, j) = (A(i, j) - L(i, :j) . L(j, :j)) / L(j, j), two
  // rows at a time through factor_blocks. A lane whose pivot is not > 0 is recorded and continues
  // with pivot 1 (lanes never mix).
  void factor_group(Index p) {
    const Index d = dim();
    const auto first_new = static_cast<std::ptrdiff_t>(failures_.size());
    std::array<bool, static_cast<std::size_t>(width)> done{};
    typename Lanes::Mask bad = Lanes::not_positive(Lanes::splat(Scalar(1)));
    Index i = 0;
    for (; i + 2 <= d; i += 2) {
      const Index j0 = factor_blocks<2>(p, i);
      finish_row(p, i, j0, bad, done);
      finish_row(p, i + 1, j0, bad, done);
    }
    if (i < d) finish_row(p, i, factor_blocks<1>(p, i), bad, done);
    sort_from(failures_, first_new);
  }

  // Groups run in order, but within a group a higher lane may fail at an earlier pivot than a
  // lower one: sort what this group added, so the whole list is by ascending index.
  static void sort_from(std::vector<BatchFailure>& list, std::ptrdiff_t first) {
    std::sort(list.begin() + first, list.end(),
              [](const BatchFailure& a, const BatchFailure& b) { return a.index < b.index; });
  }

  void forward(Index p, Vectors& z) const { forward_norm(p, z.element(p, 0), z.element(p, 0)); }

  // L^T y = z, in place, column by column of L^T (rows of L, contiguous).
  void backward(Index p, Vectors& z) const {
    const Index d = dim();
    Scalar* y = z.element(p, 0);
    for (Index i = d - 1; i >= 0; --i) {
      const Pack yi = Lanes::load(y + i * width) * Lanes::load(inv_diag(p, i));
      Lanes::store(y + i * width, yi);
      const Scalar* li = factor_.element(p, i, 0);
      for (Index k = 0; k < i; ++k) {
        Lanes::store(y + k * width,
                     Lanes::fnma(Lanes::load(li + k * width), yi, Lanes::load(y + k * width)));
      }
    }
  }

  // The classical rank-one update of a Cholesky factor, column by column (as in Eigen's
  // LLT::rankUpdate): beta accumulates 1 + sigma sum (w_j / L_jj)^2, w is overwritten.
  void update_group(Index p, Scalar* w, const Pack& sigma, std::vector<BatchFailure>& failed) {
    const Index d = dim();
    const auto first_new = static_cast<std::ptrdiff_t>(failed.size());
    std::array<bool, static_cast<std::size_t>(width)> done{};
    const Pack one = Lanes::splat(Scalar(1));
    typename Lanes::Mask bad = Lanes::not_positive(one);
    Pack beta = one;
    for (Index j = 0; j < d; ++j) {
      Scalar* ljj_at = factor_.element(p, j, j);
      const Pack ljj = Lanes::load(ljj_at);
      const Pack dj = ljj * ljj;
      const Pack wj = Lanes::load(w + j * width);
      const Pack swj2 = sigma * wj * wj;
      const Pack gamma = dj * beta + swj2;
      const Pack x = dj + swj2 / beta;
      const typename Lanes::Mask now = Lanes::not_positive(x);
      if (Lanes::any(now)) record(p, j, now, x, done, failed);
      bad = Lanes::either(bad, now);
      const Pack nljj = Lanes::sqrt(Lanes::select(bad, dj, x));
      Lanes::store(ljj_at, nljj);
      Lanes::store(inv_diag_mut(p, j), one / nljj);
      beta = beta + swj2 / dj;
      const Pack a = nljj / ljj;
      const Pack b = Lanes::select(bad, Lanes::splat(Scalar(0)), nljj * sigma * wj / gamma);
      const Pack c = wj / ljj;
      for (Index i = j + 1; i < d; ++i) {
        Scalar* lij_at = factor_.element(p, i, j);
        const Pack lij = Lanes::load(lij_at);
        const Pack wi = Lanes::fnma(c, lij, Lanes::load(w + i * width));
        Lanes::store(w + i * width, wi);
        Lanes::store(lij_at, a * lij + b * wi);
      }
    }
    sort_from(failed, first_new);
  }

  Symmetric factor_;
  detail::Buffer<Scalar> inv_diag_;
  std::vector<BatchFailure> failures_;
};

}  // namespace baypr::batched
