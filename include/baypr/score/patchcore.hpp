// baypr/score/patchcore.hpp: PatchCore scoring (Roth et al., "Towards Total Recall in Industrial
// Anomaly Detection", CVPR 2022) on rows of embeddings, the peer baypr's Bayesian scorer is
// compared against.
//
//   baypr::greedy_coreset(rows, options)   greedy k-centre coreset of the rows (indices)
//   baypr::PatchCoreScorer<Scalar>         memory bank = coreset of the support rows; score of a
//                                          query row = Euclidean distance to its nearest memory
//                                          item, optionally re-weighted as in the paper (eq. 7)
//
// Coreset (the paper's Algorithm 1, as in amazon-science/patchcore-inspection's
// GreedyCoresetSampler and anomalib's KCenterGreedy): the rows are projected to projection_dim
// dimensions by a seeded Gaussian random matrix (entries N(0, 1/projection_dim); skipped when
// d <= projection_dim), then the classic farthest-point (Gonzalez) greedy runs in that space: the
// first centre is a seeded uniformly random row, and each step adds the row farthest from the
// current centres. Each row's squared distance to its nearest centre is kept and updated with the
// one new centre per step, ||x||^2 + ||c||^2 - 2 X c by one GEMV: O(N p) per step, O(count N p) in
// all, no N x N matrix. The covering radius of the result is at most twice the optimal k-centre
// radius of the (projected) rows. Differences from the references, none of which affects that
// guarantee: anomalib starts from a random row but does not keep it (its first centre is the row
// farthest from it); patchcore-inspection's approximate sampler starts from the row with the
// largest mean distance to 10 random rows and projects with torch.nn.Linear's uniform
// initialisation. The random numbers come from std::mt19937_64 through a fixed Box-Muller
// transform rather than std::normal_distribution, whose output differs between standard
// libraries, so a seed means the same projection and start everywhere.
//
// Re-weighting (the paper's eq. 7; anomalib's PatchcoreModel.compute_anomaly_score): with m* the
// memory item nearest to query q, s* = ||q - m*||, and N_b(m*) the `neighbours` memory items
// nearest to m* (m* itself first, as anomalib finds them with a k-NN search of the bank),
//   w = 1 - exp(||q - m*||) / sum_{m in N_b(m*)} exp(||q - m||),   score = w s*
// (a softmax over N_b(m*), evaluated stably). anomalib applies this only to the highest-scoring
// patch of each image; here every row gets its weight, and score_details() also returns the
// unweighted s*, so a patch layer can reproduce anomalib exactly: take the row with the largest
// nearest_distance and use its score. Since d(q, m) >= s* for every m, w lies in [1 - 1/|N_b|, 1),
// |N_b| = min(neighbours, memory size). Without re-weighting, `neighbours` = k averages the
// distances to the k nearest memory items (patchcore-inspection's n_nearest_neighbours, which
// averages faiss's squared distances; baypr averages Euclidean ones); k = 1 (the default) is the
// nearest distance.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/score/knn.hpp"

namespace baypr {

struct CoresetOptions {
  double ratio = 0.1;                 // fraction of the rows kept, in (0, 1]; used when count == 0
  Eigen::Index count = 0;             // > 0: keep exactly this many rows (at most the row count)
  Eigen::Index projection_dim = 128;  // random projection target; none when d <= projection_dim
  std::uint64_t seed = 0;             // projection and first centre
};

namespace detail {

// The coreset options, named as the caller's argument `name` (e.g. "options" or "options.coreset").
inline void check_coreset_options(std::string_view fn, std::string_view name,
                                  const CoresetOptions& o) {
  const std::string prefix = std::string(name) + ".";
  if (!(o.ratio > 0.0 && o.ratio <= 1.0)) {
    throw_invalid(fn, prefix + "ratio", "must be in (0, 1], got " + format_value(o.ratio));
  }
  if (o.count < 0) {
    throw_invalid(fn, prefix + "count",
                  "must be >= 0 (0: use the ratio), got " + std::to_string(o.count));
  }
  if (o.projection_dim < 1) {
    throw_invalid(fn, prefix + "projection_dim",
                  "must be >= 1, got " + std::to_string(o.projection_dim));
  }
}

// floor(ratio * n), at least 1, forgiving the rounding of decimal ratios (0.29 * 100 is
// 28.999999999999996 in double; the caller meant 29).
inline Eigen::Index coreset_size(double ratio, Eigen::Index n) {
  const double x = ratio * static_cast<double>(n);
  const auto c = static_cast<Eigen::Index>(std::floor(x + x * 1e-9));
  return std::clamp<Eigen::Index>(c, 1, n);
}

// The space the greedy runs in and its first centre, drawn from `seed`: the rows projected by the
// seeded Gaussian matrix when d > projection_dim (as they are otherwise), and the first row index.
// Shared with the CUDA greedy (<baypr/cuda/cuda.hpp>), so that a seed means the same projection
// and start on both.
template <class Scalar>
struct CoresetSpace {
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> rows;  // N x p, column-major
  Eigen::Index first = 0;
};

template <class Scalar, class Derived>
CoresetSpace<Scalar> coreset_space(const Eigen::MatrixBase<Derived>& rows,
                                   Eigen::Index projection_dim, std::uint64_t seed) {
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index n = rows.rows(), d = rows.cols();
  PortableNormal normal(seed);
  CoresetSpace<Scalar> space;
  if (d > projection_dim) {
    Matrix proj(d, projection_dim);
    const double scale = 1.0 / std::sqrt(static_cast<double>(projection_dim));
    for (Eigen::Index j = 0; j < projection_dim; ++j) {
      for (Eigen::Index i = 0; i < d; ++i) proj(i, j) = static_cast<Scalar>(scale * normal());
    }
    space.rows.noalias() = rows.template cast<Scalar>() * proj;
  } else {
    space.rows = rows.template cast<Scalar>();
  }
  space.first = static_cast<Eigen::Index>(normal.bits() % static_cast<std::uint64_t>(n));
  return space;
}

// The checks of greedy_coreset's arguments, reported under `fn`, and the coreset's size in
// [1, N]. Shared with the CUDA greedy (<baypr/cuda/cuda.hpp>).
template <class Derived>
Eigen::Index checked_coreset_count(std::string_view fn, const Eigen::MatrixBase<Derived>& rows,
                                   const CoresetOptions& options) {
  check_coreset_options(fn, "options", options);
  check_nonempty(fn, "rows", rows.rows());
  if (rows.cols() < 1) throw_invalid(fn, "rows", "must have at least one column, got 0");
  if (options.count > rows.rows()) {
    throw_invalid(fn, "options.count",
                  "must be at most the number of rows " + std::to_string(rows.rows()) + ", got " +
                      std::to_string(options.count));
  }
  check_finite(fn, "rows", rows);
  return options.count > 0 ? options.count : coreset_size(options.ratio, rows.rows());
}

// The greedy itself on validated, finite rows; `count` in [1, N].
template <class Scalar, class Derived>
std::vector<Eigen::Index> greedy_coreset_impl(const Eigen::MatrixBase<Derived>& rows,
                                              Eigen::Index count, Eigen::Index projection_dim,
                                              std::uint64_t seed) {
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  const Eigen::Index n = rows.rows();
  std::vector<Eigen::Index> selected;
  selected.reserve(static_cast<std::size_t>(count));
  if (count == n) {  // every row: nothing to choose
    for (Eigen::Index i = 0; i < n; ++i) selected.push_back(i);
    return selected;
  }
  // Column-major N x p: the GEMV below streams it once per step.
  CoresetSpace<Scalar> space = coreset_space<Scalar>(rows, projection_dim, seed);
  const auto& x = space.rows;
  const Vector norms = x.rowwise().squaredNorm();
  // min_dist(i): squared distance from row i to its nearest centre; -1 marks centres, so the
  // argmax never returns one again, even among duplicate rows.
  Eigen::Array<Scalar, Eigen::Dynamic, 1> min_dist =
      Eigen::Array<Scalar, Eigen::Dynamic, 1>::Constant(n, std::numeric_limits<Scalar>::infinity());
  Vector centre(x.cols()), dots(n);
  Eigen::Index next = space.first;
  for (Eigen::Index step = 0; step < count; ++step) {
    selected.push_back(next);
    centre = x.row(next).transpose();
    dots.noalias() = x * centre;
    const Scalar cn = norms(next);
    min_dist = min_dist.min((norms.array() + cn - Scalar(2) * dots.array()).max(Scalar(0)));
    min_dist(next) = Scalar(-1);
    if (step + 1 == count) break;
    Eigen::Index best = 0;
    Scalar best_value = min_dist(0);
    for (Eigen::Index i = 1; i < n; ++i) {
      if (min_dist(i) > best_value) {
        best_value = min_dist(i);
        best = i;
      }
    }
    next = best;
  }
  return selected;
}

}  // namespace detail

// Indices of a greedy k-centre coreset of the rows (N x d, float or double), in the order chosen
// (the seeded random start first). Its size is options.count when > 0 (at most N), else
// max(1, floor(options.ratio N)); when that is N, every row is returned in order.
template <class Derived>
[[nodiscard]] std::vector<Eigen::Index> greedy_coreset(const Eigen::MatrixBase<Derived>& rows,
                                                       const CoresetOptions& options = {}) {
  using Scalar = typename Derived::Scalar;
  static_assert(std::is_floating_point_v<Scalar>,
                "baypr::greedy_coreset: rows must be float or double");
  const Eigen::Index count = detail::checked_coreset_count("baypr::greedy_coreset", rows, options);
  return detail::greedy_coreset_impl<Scalar>(rows, count, options.projection_dim, options.seed);
}

struct PatchCoreOptions {
  // The memory bank: the greedy coreset of the support rows, coreset.ratio of them (in (0, 1]) or
  // coreset.count rows when > 0 (capped at the support size); its projection and seed.
  CoresetOptions coreset{};
  Eigen::Index neighbours = 1;  // k: averaged distances, or |N_b(m*)| when re-weighting
  bool reweight = false;        // the paper's eq. 7 (needs neighbours >= 2)
  // A ratio-sized bank keeps at least min(n, max(min_memory, neighbours + 1)) of the n support
  // rows: the coreset bounds the cost of large patch banks, and below a few dozen rows it saves
  // nothing while every dropped row is normal data lost (10% of 5 image embeddings is one row:
  // measured on a digit set at K = 5, AUROC 0.759 against 0.859 with the whole bank). An explicit
  // coreset.count is kept as given.
  Eigen::Index min_memory = 16;
};

template <class Scalar = double>
class PatchCoreScorer {
  static_assert(std::is_floating_point_v<Scalar>,
                "baypr::PatchCoreScorer: Scalar must be float or double");

 public:
  using Options = PatchCoreOptions;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using IndexVector = Eigen::Matrix<Eigen::Index, Eigen::Dynamic, 1>;

  // Per query row: the score, the distance s* to the nearest memory item and its bank index, and
  // the re-weighting factor (1 without re-weighting; score = weight * s* with it).
  struct Details {
    Vector score;
    Vector nearest_distance;
    IndexVector nearest;
    Vector weight;
  };

  PatchCoreScorer() = default;

  explicit PatchCoreScorer(const Options& options) : options_(options) {
    constexpr std::string_view fn = "baypr::PatchCoreScorer::PatchCoreScorer";
    detail::check_coreset_options(fn, "options.coreset", options.coreset);
    if (options.min_memory < 1) {
      detail::throw_invalid(fn, "options.min_memory",
                            "must be >= 1, got " + std::to_string(options.min_memory));
    }
    if (options.neighbours < 1) {
      detail::throw_invalid(fn, "options.neighbours",
                            "must be >= 1, got " + std::to_string(options.neighbours));
    }
    if (options.reweight && options.neighbours < 2) {
      detail::throw_invalid(
          fn, "options.neighbours",
          "must be >= 2 when options.reweight is set (the weight over one neighbour "
          "is 0; anomalib uses 9), got " +
              std::to_string(options.neighbours));
    }
  }

  // Builds the memory bank: the coreset of the support rows (n x d, one embedding or patch per
  // row). On failure the scorer is left as it was.
  template <class Derived>
  PatchCoreScorer& fit(const Eigen::MatrixBase<Derived>& support_rows) {
    constexpr std::string_view fn = "baypr::PatchCoreScorer::fit";
    detail::check_nonempty(fn, "support_rows", support_rows.rows());
    if (support_rows.cols() < 1)
      detail::throw_invalid(fn, "support_rows", "must have at least one column, got 0");
    // Checked after the conversion, so that a double too large for a float scorer is caught too.
    const Matrix support = support_rows.template cast<Scalar>();
    detail::check_finite(fn, "support_rows", support);
    const Eigen::Index n = support.rows(), d = support.cols();
    const Eigen::Index floor_size =
        std::min(n, std::max(options_.min_memory, options_.neighbours + 1));
    const CoresetOptions& c = options_.coreset;
    const Eigen::Index count =
        c.count > 0 ? std::min(c.count, n) : std::max(detail::coreset_size(c.ratio, n), floor_size);
    std::vector<Eigen::Index> coreset =
        detail::greedy_coreset_impl<Scalar>(support, count, c.projection_dim, c.seed);
    Matrix bank(static_cast<Eigen::Index>(coreset.size()), d);
    for (std::size_t i = 0; i < coreset.size(); ++i)
      bank.row(static_cast<Eigen::Index>(i)) = support.row(coreset[i]);
    KnnIndex<Scalar> index;
    detail::KnnAccess::assign(index, bank, fn);
    typename KnnResult<Scalar>::IndexRows neighbours;
    if (options_.reweight)
      neighbours = index.search(index.bank(), std::min(options_.neighbours, index.size())).indices;
    // Commit (no throwing operation below).
    index_ = std::move(index);
    coreset_ = std::move(coreset);
    bank_neighbours_ = std::move(neighbours);
    return *this;
  }

  // Anomaly score of each query row (higher = more anomalous).
  template <class Derived>
  [[nodiscard]] Vector score(const Eigen::MatrixBase<Derived>& query_rows) const {
    return details_of(query_rows, "baypr::PatchCoreScorer::score").score;
  }

  template <class Derived>
  [[nodiscard]] Details score_details(const Eigen::MatrixBase<Derived>& query_rows) const {
    return details_of(query_rows, "baypr::PatchCoreScorer::score_details");
  }

 private:
  template <class Derived>
  [[nodiscard]] Details details_of(const Eigen::MatrixBase<Derived>& query_rows,
                                   std::string_view fn) const {
    detail::check_fitted(fn, fitted(), "fit(support_rows)");
    detail::check_size(fn, "query_rows", "columns", query_rows.cols(), dim());
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> q =
        query_rows.template cast<Scalar>();
    detail::check_finite(fn, "query_rows", q);
    const Eigen::Index m = q.rows();
    const Eigen::Index k = std::min(options_.neighbours, index_.size());
    Details out;
    out.score.resize(m);
    out.nearest_distance.resize(m);
    out.nearest.resize(m);
    out.weight.setOnes(m);
    if (!options_.reweight) {
      const KnnResult<Scalar> r = index_.search(q, k);
      for (Eigen::Index i = 0; i < m; ++i) {
        out.nearest(i) = r.indices(i, 0);
        out.nearest_distance(i) = std::sqrt(r.squared_distances(i, 0));
        out.score(i) = r.squared_distances.row(i).cwiseSqrt().mean();
      }
      return out;
    }
    const KnnResult<Scalar> r = index_.search(q, 1);
    const auto bank = index_.bank();
    const Eigen::Index kb = bank_neighbours_.cols();
    Vector dist(kb);
    for (Eigen::Index i = 0; i < m; ++i) {
      const Eigen::Index nearest = r.indices(i, 0);
      const Scalar s = std::sqrt(r.squared_distances(i, 0));
      out.nearest(i) = nearest;
      out.nearest_distance(i) = s;
      // A one-item bank has no neighbourhood to weigh against: weight 1.
      if (kb >= 2) {
        for (Eigen::Index j = 0; j < kb; ++j)
          dist(j) = (bank.row(bank_neighbours_(nearest, j)) - q.row(i)).norm();
        const Scalar top = std::max(dist.maxCoeff(), s);
        out.weight(i) = Scalar(1) - std::exp(s - top) / (dist.array() - top).exp().sum();
      }
      out.score(i) = out.weight(i) * s;
    }
    return out;
  }

 public:
  [[nodiscard]] bool fitted() const { return !index_.empty(); }
  [[nodiscard]] Eigen::Index dim() const { return index_.dim(); }
  // Memory bank size (coreset rows).
  [[nodiscard]] Eigen::Index memory_size() const { return index_.size(); }
  // The memory bank, M x d row-major (row i = support row coreset_indices()[i]).
  [[nodiscard]] auto memory_bank() const { return index_.bank(); }
  [[nodiscard]] const std::vector<Eigen::Index>& coreset_indices() const { return coreset_; }
  [[nodiscard]] const Options& options() const { return options_; }
  // The exact nearest-neighbour index over the memory bank.
  [[nodiscard]] const KnnIndex<Scalar>& index() const { return index_; }

 private:
  Options options_;
  KnnIndex<Scalar> index_;
  std::vector<Eigen::Index> coreset_;
  typename KnnResult<Scalar>::IndexRows bank_neighbours_;  // M x min(k, M), when re-weighting
};

}  // namespace baypr
