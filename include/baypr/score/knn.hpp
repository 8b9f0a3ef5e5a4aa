// baypr/score/knn.hpp: exact k-nearest-neighbour search under the Euclidean distance.
//
//   baypr::KnnIndex<Scalar>      a bank of rows (N x d) held for repeated searches, like faiss's
//                                IndexFlatL2; search(Q, k) -> the k nearest bank rows of each query
//   baypr::knn_search(Q, B, k)   one-off search of the rows of Q among the rows of B
//   baypr::KnnResult<Scalar>     m x k indices and squared distances, nearest first
//
// Method (the one faiss uses for batches of queries): ||q - b||^2 = ||q||^2 + ||b||^2 - 2 q.b, with
// every q.b of a (bank block) x (query block) tile from one GEMM. Bank rows carry ||b||^2 as an
// extra coordinate and queries are packed as [-2 q; 1], so the GEMM of depth d + 1 yields s =
// ||b||^2 - 2 q.b directly, which orders the bank exactly as the distance does (||q||^2 is constant
// per query). The GEMM is baypr's own register-blocked kernel on packed panels (see
// score/detail/knn_kernel.hpp: ~1.4x Eigen's general product on AVX2), with queries packed once per
// super-block and each bank block once per super-block. Each tile column (one query, contiguous) is
// then scanned for values below that query's current k-th best: a vectorised minimum over chunks of
// four SIMD packets rejects whole chunks, and the rare survivors go into a bounded max-heap
// (partial selection: O(N) scan plus O(log k) per survivor, never a sort of the N values). The
// heaps live in the output rows themselves, and every buffer is allocated once per search.
//
// Finally the k distances of each query are recomputed directly as ||b - q||^2 (k d flops, against
// the search's 2 N d) and the k neighbours sorted by (distance, index). So reported distances carry
// no cancellation error: they are >= 0 by construction (no clamping needed) and exactly 0 for a
// query equal to a bank row, and ties go to the smaller bank index. Selection itself uses the GEMM
// values, whose rounding error is about eps (||q||^2 + ||b||^2): neighbours whose squared distances
// differ by less than that may be exchanged, as in any GEMM-based search (faiss included).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/score/detail/knn_kernel.hpp"

namespace baypr {

// Result of a search of m queries for their k nearest bank rows: row i holds query i's neighbours,
// nearest first (ties: smaller bank index first).
template <class Scalar>
struct KnnResult {
  using IndexRows = Eigen::Matrix<Eigen::Index, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ScalarRows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  IndexRows indices;             // m x k bank row indices
  ScalarRows squared_distances;  // m x k squared Euclidean distances ||q - b||^2 (as faiss reports)
};

// Tile sizes of a search; 0 picks the default. Exposed for tuning and tests (small tiles exercise
// every edge); results do not depend on them. Sizes are rounded up to the micro-kernel's shape.
struct KnnBlocking {
  Eigen::Index bank_block = 0;   // bank rows per tile (default 512)
  Eigen::Index query_block = 0;  // queries per tile (default 252)
  Eigen::Index depth_block = 0;  // GEMM depth per pass over a tile (default 256)
};

template <class Scalar = double>
class KnnIndex;

namespace detail {

// Lets knn_search run KnnIndex's checks under its own function name.
struct KnnAccess {
  template <class Scalar, class Derived>
  static void assign(KnnIndex<Scalar>& index, const Eigen::MatrixBase<Derived>& bank,
                     std::string_view fn) {
    index.assign(bank, fn);
  }
  template <class Scalar, class Derived>
  static void search(const KnnIndex<Scalar>& index, const Eigen::MatrixBase<Derived>& queries,
                     Eigen::Index k, KnnResult<Scalar>& out, const KnnBlocking& blocking,
                     std::string_view fn) {
    index.search_impl(queries, k, out, blocking, fn);
  }
};

}  // namespace detail

template <class Scalar>
class KnnIndex {
  static_assert(std::is_floating_point_v<Scalar>,
                "baypr::KnnIndex: Scalar must be float or double");

 public:
  using Result = KnnResult<Scalar>;
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  KnnIndex() = default;

  // Copies the bank (one row per item, N x d, N >= 1, d >= 1, finite).
  template <class Derived>
  explicit KnnIndex(const Eigen::MatrixBase<Derived>& bank) {
    assign(bank, "baypr::KnnIndex::KnnIndex");
  }

  [[nodiscard]] Eigen::Index size() const { return aug_.rows(); }
  [[nodiscard]] Eigen::Index dim() const { return dim_; }
  [[nodiscard]] bool empty() const { return aug_.rows() == 0; }
  // The bank rows (N x d, row-major), as given.
  [[nodiscard]] auto bank() const { return aug_.leftCols(dim_); }
  // Their squared norms (N).
  [[nodiscard]] auto squared_norms() const { return aug_.col(dim_); }

  // The k nearest bank rows of each query row (1 <= k <= size()).
  template <class Derived>
  [[nodiscard]] Result search(const Eigen::MatrixBase<Derived>& queries, Eigen::Index k,
                              const KnnBlocking& blocking = {}) const {
    Result out;
    search(queries, k, out, blocking);
    return out;
  }

  // The same into `out`, reusing its storage when it already has the right shape.
  template <class Derived>
  void search(const Eigen::MatrixBase<Derived>& queries, Eigen::Index k, Result& out,
              const KnnBlocking& blocking = {}) const {
    search_impl(queries, k, out, blocking, "baypr::KnnIndex::search");
  }

 private:
  friend struct detail::KnnAccess;
  using Kernel = detail::KnnKernel<Scalar>;
  using Buffer = std::vector<Scalar, Eigen::aligned_allocator<Scalar>>;

  // The checks and work of the constructor and search(), reporting errors under `fn` (knn_search
  // uses them under its own name).
  template <class Derived>
  void assign(const Eigen::MatrixBase<Derived>& bank, std::string_view fn) {
    static_assert(std::is_same_v<typename Derived::Scalar, Scalar>,
                  "baypr::KnnIndex: the bank's scalar type must be the index's");
    detail::check_nonempty(fn, "bank", bank.rows());
    if (bank.cols() < 1) detail::throw_invalid(fn, "bank", "must have at least one column, got 0");
    detail::check_finite(fn, "bank", bank);
    const Eigen::Index n = bank.rows(), d = bank.cols();
    Rows aug(n, d + 1);
    aug.leftCols(d) = bank;
    aug.col(d) = aug.leftCols(d).rowwise().squaredNorm();
    if (!detail::all_finite(aug.col(d))) {
      Eigen::Index row = 0;
      while (row < n && std::isfinite(aug(row, d))) ++row;
      detail::throw_invalid(
          fn, "bank",
          "has row " + std::to_string(row) + " whose squared norm overflows the scalar type");
    }
    aug_.swap(aug);
    dim_ = d;
  }

  template <class Derived>
  void search_impl(const Eigen::MatrixBase<Derived>& queries, Eigen::Index k, Result& out,
                   const KnnBlocking& blocking, std::string_view fn) const {
    static_assert(std::is_same_v<typename Derived::Scalar, Scalar>,
                  "baypr::KnnIndex::search: the queries' scalar type must be the index's");
    if (empty()) detail::throw_invalid(fn, "this", "is an empty index (no bank rows)");
    detail::check_size(fn, "queries", "columns", queries.cols(), dim_);
    if (k < 1 || k > size()) {
      detail::throw_invalid(fn, "k",
                            "must be in [1, " + std::to_string(size()) + "] (the bank size), got " +
                                std::to_string(k));
    }
    if (blocking.bank_block < 0 || blocking.query_block < 0 || blocking.depth_block < 0) {
      detail::throw_invalid(fn, "blocking",
                            "must have block sizes >= 0, got bank_block " +
                                std::to_string(blocking.bank_block) + ", query_block " +
                                std::to_string(blocking.query_block) + ", depth_block " +
                                std::to_string(blocking.depth_block));
    }
    detail::check_finite(fn, "queries", queries);
    // Expressions (products, casts) are evaluated once, not once per coefficient access.
    if constexpr ((Derived::Flags & Eigen::DirectAccessBit) != 0) {
      run(queries.derived(), k, out, blocking);
    } else {
      const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> plain = queries;
      run(plain, k, out, blocking);
    }
  }

  template <class Q>
  void run(const Q& queries, Eigen::Index k, Result& out, const KnnBlocking& blocking) const {
    using detail::knn_round_up;
    const Eigen::Index m = queries.rows(), n = size(), d = dim_, width = d + 1;
    out.indices.resize(m, k);
    out.squared_distances.resize(m, k);
    if (m == 0) return;
    constexpr Eigen::Index mr = Kernel::mr, nr = Kernel::nr;
    const Eigen::Index nb =
        knn_round_up(std::min(n, blocking.bank_block > 0 ? blocking.bank_block : 512), mr);
    const Eigen::Index mq =
        knn_round_up(std::min(m, blocking.query_block > 0 ? blocking.query_block : 252), nr);
    // Depth slices of about the requested size, balanced (d + 1 = 129 is one slice, not 128 + 1).
    const Eigen::Index kc_target = blocking.depth_block > 0 ? blocking.depth_block : 256;
    const Eigen::Index slices = (width + kc_target - 1) / kc_target;
    const Eigen::Index kc = (width + slices - 1) / slices;
    // Queries are packed once per super-block (~8 MiB) and every bank block is packed once per
    // super-block, so packing costs O((N + m) d) against the search's O(N m d).
    const Eigen::Index budget =
        (Eigen::Index{8} << 20) / (width * static_cast<Eigen::Index>(sizeof(Scalar)));
    const Eigen::Index super =
        std::min(knn_round_up(m, mq), std::max<Eigen::Index>(1, budget / mq) * mq);

    Buffer qpack(static_cast<std::size_t>(super * width));
    Buffer apack(static_cast<std::size_t>(nb * width));
    Buffer tile(static_cast<std::size_t>(nb * mq));
    std::vector<Eigen::Index> filled(static_cast<std::size_t>(super));
    std::vector<std::pair<Scalar, Eigen::Index>> best(static_cast<std::size_t>(k));
    Eigen::Matrix<Scalar, 1, Eigen::Dynamic> query(d);

    for (Eigen::Index s0 = 0; s0 < m; s0 += super) {
      const Eigen::Index sb = std::min(super, m - s0);
      Kernel::pack_queries(queries, s0, sb, qpack.data());
      std::fill(filled.begin(), filled.end(), Eigen::Index{0});
      for (Eigen::Index b0 = 0; b0 < n; b0 += nb) {
        const Eigen::Index bb = std::min(nb, n - b0);
        Kernel::pack_bank(aug_.data(), width, b0, bb, apack.data());
        for (Eigen::Index j0 = 0; j0 < sb; j0 += mq) {
          const Eigen::Index mb = std::min(mq, sb - j0);
          Kernel::tile(apack.data(), bb, qpack.data() + j0 * width, mb, width, kc, tile.data(), nb);
          for (Eigen::Index j = 0; j < mb; ++j) {
            const Eigen::Index q = s0 + j0 + j;
            detail::knn_scan(tile.data() + j * nb, bb, b0, out.squared_distances.row(q).data(),
                             out.indices.row(q).data(), k,
                             filled[static_cast<std::size_t>(j0 + j)]);
          }
        }
      }
      // Exact distances of the k selected, sorted by (distance, index). The query is copied to a
      // contiguous row first, so the result does not depend on the caller's storage order.
      for (Eigen::Index q = s0; q < s0 + sb; ++q) {
        Eigen::Index* idx = out.indices.row(q).data();
        Scalar* dist = out.squared_distances.row(q).data();
        query = queries.row(q);
        for (Eigen::Index t = 0; t < k; ++t) {
          best[static_cast<std::size_t>(t)] = {(aug_.row(idx[t]).head(d) - query).squaredNorm(),
                                               idx[t]};
        }
        std::sort(best.begin(), best.end());
        for (Eigen::Index t = 0; t < k; ++t) {
          dist[t] = best[static_cast<std::size_t>(t)].first;
          idx[t] = best[static_cast<std::size_t>(t)].second;
        }
      }
    }
  }

  Rows aug_;  // N x (d + 1): the bank rows, then their squared norms
  Eigen::Index dim_ = 0;
};

// The k nearest rows of `bank` for each row of `queries` (same scalar type, float or double).
// Builds a temporary KnnIndex; hold a KnnIndex to search the same bank repeatedly.
template <class DerivedQ, class DerivedB>
[[nodiscard]] KnnResult<typename DerivedQ::Scalar> knn_search(
    const Eigen::MatrixBase<DerivedQ>& queries, const Eigen::MatrixBase<DerivedB>& bank,
    Eigen::Index k, const KnnBlocking& blocking = {}) {
  using Scalar = typename DerivedQ::Scalar;
  static_assert(std::is_same_v<Scalar, typename DerivedB::Scalar>,
                "baypr::knn_search: queries and bank must have the same scalar type");
  constexpr std::string_view fn = "baypr::knn_search";
  KnnIndex<Scalar> index;
  detail::KnnAccess::assign(index, bank, fn);
  KnnResult<Scalar> out;
  detail::KnnAccess::search(index, queries, k, out, blocking, fn);
  return out;
}

}  // namespace baypr
