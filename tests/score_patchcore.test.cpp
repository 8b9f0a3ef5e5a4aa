// Exact k-NN search against a brute-force loop, greedy k-centre coreset properties, and the
// PatchCore scorer (nearest distance, neighbour re-weighting, bad input, strong guarantee).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "baypr/score/knn.hpp"
#include "baypr/score/patchcore.hpp"
#include "baypr/score/scorer.hpp"
#include "support/catch.hpp"

using Eigen::Index;

namespace {

template <class Scalar>
using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const baypr::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("(other exception) ") + e.what();
  }
  return "(no exception)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

template <class Scalar>
Rows<Scalar> gaussian(Index rows, Index cols, std::mt19937_64& rng, double shift = 0.0) {
  std::normal_distribution<double> normal;
  return Rows<Scalar>::NullaryExpr(rows, cols,
                                   [&] { return static_cast<Scalar>(normal(rng) + shift); });
}

// Small integers: every distance and every GEMM partial sum is exact in float, and ties abound.
template <class Scalar>
Rows<Scalar> small_integers(Index rows, Index cols, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(-2, 2);
  return Rows<Scalar>::NullaryExpr(rows, cols, [&] { return static_cast<Scalar>(pick(rng)); });
}

Index uniform_index(std::mt19937_64& rng, Index lo, Index hi) {
  return std::uniform_int_distribution<Index>(lo, hi)(rng);
}

// Brute force: every squared distance by a plain loop in long double, sorted by (distance, index).
template <class Scalar>
std::vector<std::pair<long double, Index>> brute_force(const Rows<Scalar>& bank,
                                                       const Rows<Scalar>& queries, Index q) {
  std::vector<std::pair<long double, Index>> all;
  for (Index i = 0; i < bank.rows(); ++i) {
    long double s = 0;
    for (Index j = 0; j < bank.cols(); ++j) {
      const long double diff =
          static_cast<long double>(bank(i, j)) - static_cast<long double>(queries(q, j));
      s += diff * diff;
    }
    all.emplace_back(s, i);
  }
  std::sort(all.begin(), all.end());
  return all;
}

template <class Scalar>
void check_exact_against_brute_force(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const baypr::KnnBlocking tiny{5, 4, 3};  // several bank, query and depth blocks, ragged edges
  for (int trial = 0; trial < 12; ++trial) {
    const Index n = uniform_index(rng, 1, 90), m = uniform_index(rng, 1, 40),
                d = uniform_index(rng, 1, 24);
    const Rows<Scalar> bank = small_integers<Scalar>(n, d, rng);
    const Rows<Scalar> queries = small_integers<Scalar>(m, d, rng);
    for (const Index k : {Index{1}, Index{3}, n}) {
      if (k > n) continue;
      for (const auto& blocking : {baypr::KnnBlocking{}, tiny}) {
        INFO("n=" << n << " m=" << m << " d=" << d << " k=" << k
                  << " bank_block=" << blocking.bank_block);
        const auto r = baypr::knn_search(queries, bank, k, blocking);
        REQUIRE(r.indices.rows() == m);
        REQUIRE(r.indices.cols() == k);
        for (Index q = 0; q < m; ++q) {
          const auto expected = brute_force(bank, queries, q);
          for (Index t = 0; t < k; ++t) {
            CHECK(r.indices(q, t) == expected[static_cast<std::size_t>(t)].second);
            CHECK(static_cast<long double>(r.squared_distances(q, t)) ==
                  expected[static_cast<std::size_t>(t)].first);
          }
        }
      }
    }
  }
}

template <class Scalar>
void check_gaussian_against_brute_force(std::uint64_t seed, double tolerance) {
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 6; ++trial) {
    const Index n = uniform_index(rng, 1, 400), m = uniform_index(rng, 1, 70),
                d = uniform_index(rng, 1, 300);
    const Rows<Scalar> bank = gaussian<Scalar>(n, d, rng);
    const Rows<Scalar> queries = gaussian<Scalar>(m, d, rng, 0.1);
    const baypr::KnnIndex<Scalar> index(bank);
    for (const Index k : {Index{1}, Index{3}, n}) {
      if (k > n) continue;
      INFO("n=" << n << " m=" << m << " d=" << d << " k=" << k);
      const auto r = index.search(queries, k);
      for (Index q = 0; q < m; ++q) {
        const auto expected = brute_force(bank, queries, q);
        const long double scale = 1 + expected.back().first;
        std::set<Index> seen;
        for (Index t = 0; t < k; ++t) {
          const Index i = r.indices(q, t);
          REQUIRE(i >= 0);
          REQUIRE(i < n);
          seen.insert(i);
          const long double reported = r.squared_distances(q, t);
          // The reported distance is that of the reported row, and the t-th smallest overall.
          const auto own = std::find_if(expected.begin(), expected.end(),
                                        [&](const auto& e) { return e.second == i; });
          CHECK(std::abs(reported - own->first) <= tolerance * scale);
          CHECK(std::abs(reported - expected[static_cast<std::size_t>(t)].first) <=
                tolerance * scale);
          if (t > 0) CHECK(r.squared_distances(q, t - 1) <= r.squared_distances(q, t));
        }
        CHECK(static_cast<Index>(seen.size()) == k);  // no neighbour twice
      }
    }
  }
}

// Covering radius of `centres` over all rows: max_i min_c ||x_i - x_c||.
double covering_radius(const Eigen::MatrixXd& x, const std::vector<Index>& centres) {
  double radius = 0;
  for (Index i = 0; i < x.rows(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (const Index c : centres) best = std::min(best, (x.row(i) - x.row(c)).norm());
    radius = std::max(radius, best);
  }
  return radius;
}

}  // namespace

// ---- k-nearest neighbours -----------------------------------------------------------------

TEST_CASE("knn_search equals brute force exactly on integer data, ties by index", "[knn]") {
  check_exact_against_brute_force<float>(11);
  check_exact_against_brute_force<double>(12);
}

TEST_CASE("knn_search agrees with brute force on Gaussian data", "[knn]") {
  check_gaussian_against_brute_force<float>(21, 2e-5);
  check_gaussian_against_brute_force<double>(22, 1e-12);
}

TEST_CASE("knn: duplicates of a query give distance exactly 0, lowest index first", "[knn]") {
  std::mt19937_64 rng(3);
  Rows<float> bank =
      gaussian<float>(50, 33, rng, 5.0);  // large norms: GEMM cancellation would show
  bank.row(40) = bank.row(7);
  const Rows<float> queries = bank.row(7);
  const auto r = baypr::knn_search(queries, bank, 3);
  CHECK(r.indices(0, 0) == 7);
  CHECK(r.indices(0, 1) == 40);
  CHECK(r.squared_distances(0, 0) == 0.0f);
  CHECK(r.squared_distances(0, 1) == 0.0f);
  CHECK(r.squared_distances(0, 2) > 0.0f);
}

TEST_CASE("knn: maps, row-major storage and expressions give the same result", "[knn]") {
  std::mt19937_64 rng(4);
  const Rows<double> bank = gaussian<double>(120, 17, rng);
  const Rows<double> queries = gaussian<double>(30, 17, rng);
  const baypr::KnnIndex<double> index(bank);
  const auto plain = index.search(queries, 4);
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = queries;
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
      map(row_major.data(), row_major.rows(), row_major.cols());
  CHECK(index.search(map, 4).indices == plain.indices);
  CHECK(index.search(map, 4).squared_distances == plain.squared_distances);
  const auto expr = index.search(queries * 1.0, 4);  // an expression, evaluated once
  CHECK(expr.indices == plain.indices);
  CHECK(index.bank() == bank);
  CHECK((index.squared_norms() - bank.rowwise().squaredNorm()).cwiseAbs().maxCoeff() <= 1e-12);
  // search into an existing result, and zero queries
  baypr::KnnResult<double> reuse;
  index.search(queries.topRows(0), 2, reuse);
  CHECK(reuse.indices.rows() == 0);
  CHECK(reuse.indices.cols() == 2);
}

TEST_CASE("knn: bad input is rejected with the argument and value", "[knn][errors]") {
  const Eigen::MatrixXd bank = Eigen::MatrixXd::Random(10, 4);
  const baypr::KnnIndex<double> index(bank);
  const Eigen::MatrixXd q = Eigen::MatrixXd::Random(3, 4);
  std::string msg = message_of([&] { (void)index.search(q, 0); });
  CHECK(contains(msg, "baypr::KnnIndex::search: argument 'k'"));
  CHECK(contains(msg, "got 0"));
  msg = message_of([&] { (void)index.search(q, 11); });
  CHECK(contains(msg, "[1, 10]"));
  CHECK(contains(msg, "got 11"));
  msg = message_of([&] { (void)index.search(Eigen::MatrixXd::Zero(2, 5), 1); });
  CHECK(contains(msg, "argument 'queries' has columns 5, expected 4"));
  Eigen::MatrixXd bad = q;
  bad(2, 1) = std::numeric_limits<double>::quiet_NaN();
  msg = message_of([&] { (void)index.search(bad, 1); });
  CHECK(contains(msg, "argument 'queries' must be finite, got nan at row 2, column 1"));
  msg = message_of([&] { (void)baypr::knn_search(q, Eigen::MatrixXd(0, 4), 1); });
  CHECK(contains(msg, "baypr::knn_search: argument 'bank' must have at least one row"));
  Eigen::MatrixXd bad_bank = bank;
  bad_bank(3, 0) = std::numeric_limits<double>::infinity();
  msg = message_of([&] { baypr::KnnIndex<double> b(bad_bank); });
  CHECK(contains(
      msg,
      "baypr::KnnIndex::KnnIndex: argument 'bank' must be finite, got inf at row 3, column 0"));
  msg = message_of([&] { (void)baypr::KnnIndex<double>().search(q, 1); });
  CHECK(contains(msg, "argument 'this' is an empty index"));
  Eigen::MatrixXf huge = Eigen::MatrixXf::Constant(2, 3, 1e30f);
  msg = message_of([&] { baypr::KnnIndex<float> b(huge); });
  CHECK(contains(msg, "row 0 whose squared norm overflows"));
}

// ---- coreset ------------------------------------------------------------------------------

TEST_CASE("greedy coreset: size, distinct indices, seeded reproducibility", "[coreset]") {
  std::mt19937_64 rng(5);
  const Eigen::MatrixXd x = gaussian<double>(500, 40, rng);
  baypr::CoresetOptions opt;
  opt.ratio = 0.1;
  opt.seed = 17;
  const auto a = baypr::greedy_coreset(x, opt);
  CHECK(a.size() == 50);
  CHECK(std::set<Index>(a.begin(), a.end()).size() == a.size());
  CHECK(baypr::greedy_coreset(x, opt) == a);
  opt.seed = 18;
  CHECK(baypr::greedy_coreset(x, opt) != a);
  opt.count = 7;
  CHECK(baypr::greedy_coreset(x, opt).size() == 7);
  opt.count = 0;
  opt.ratio = 0.29;  // 0.29 * 100 is 28.999999999999996 in double
  CHECK(baypr::greedy_coreset(x.topRows(100), opt).size() == 29);
  opt.ratio = 1e-6;
  CHECK(baypr::greedy_coreset(x, opt).size() == 1);  // never empty
  opt.ratio = 1.0;
  const auto all = baypr::greedy_coreset(x, opt);
  REQUIRE(all.size() == 500);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == static_cast<Index>(i));

  // With the random projection (d > projection_dim) and in float.
  const Eigen::MatrixXf wide = gaussian<float>(300, 200, rng);
  baypr::CoresetOptions p;
  p.count = 40;
  p.projection_dim = 16;
  p.seed = 1;
  const auto b = baypr::greedy_coreset(wide, p);
  CHECK(b.size() == 40);
  CHECK(std::set<Index>(b.begin(), b.end()).size() == 40);
  CHECK(baypr::greedy_coreset(wide, p) == b);

  // All rows identical: every distance is 0, yet no row is chosen twice.
  const Eigen::MatrixXd same = Eigen::MatrixXd::Ones(20, 3);
  baypr::CoresetOptions s;
  s.count = 19;
  const auto c = baypr::greedy_coreset(same, s);
  CHECK(std::set<Index>(c.begin(), c.end()).size() == 19);
}

TEST_CASE("greedy coreset: covering radius within 2x the optimal k-centre radius", "[coreset]") {
  std::mt19937_64 rng(6);
  for (int trial = 0; trial < 4; ++trial) {
    // Three loose clusters in the plane, 12 points; brute force over all 3-subsets.
    Eigen::MatrixXd x = gaussian<double>(12, 2, rng);
    for (Index i = 0; i < 12; ++i) x(i, 0) += 4.0 * static_cast<double>(i % 3);
    double optimal = std::numeric_limits<double>::infinity();
    for (Index a = 0; a < 12; ++a)
      for (Index b = a + 1; b < 12; ++b)
        for (Index c = b + 1; c < 12; ++c)
          optimal = std::min(optimal, covering_radius(x, {a, b, c}));
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
      baypr::CoresetOptions opt;
      opt.count = 3;
      opt.seed = seed;
      const auto centres = baypr::greedy_coreset(x, opt);
      INFO("trial " << trial << " seed " << seed);
      CHECK(covering_radius(x, centres) <= 2.0 * optimal * (1 + 1e-12));
    }
  }
}

TEST_CASE("greedy coreset: bad input", "[coreset][errors]") {
  const Eigen::MatrixXd x = Eigen::MatrixXd::Random(10, 3);
  baypr::CoresetOptions opt;
  opt.ratio = 0.0;
  CHECK(contains(message_of([&] { (void)baypr::greedy_coreset(x, opt); }),
                 "baypr::greedy_coreset: argument 'options.ratio' must be in (0, 1], got 0"));
  opt.ratio = 1.5;
  CHECK(contains(message_of([&] { (void)baypr::greedy_coreset(x, opt); }), "got 1.5"));
  opt.ratio = 0.5;
  opt.count = 11;
  CHECK(contains(message_of([&] { (void)baypr::greedy_coreset(x, opt); }),
                 "argument 'options.count' must be at most the number of rows 10, got 11"));
  opt.count = -1;
  CHECK(contains(message_of([&] { (void)baypr::greedy_coreset(x, opt); }),
                 "'options.count' must be >= 0"));
  opt.count = 0;
  opt.projection_dim = 0;
  CHECK(contains(message_of([&] { (void)baypr::greedy_coreset(x, opt); }),
                 "'options.projection_dim' must be >= 1, got 0"));
  opt.projection_dim = 128;
  Eigen::MatrixXd bad = x;
  bad(4, 2) = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(message_of([&] { (void)baypr::greedy_coreset(bad, opt); }),
                 "argument 'rows' must be finite, got nan at row 4, column 2"));
}

// ---- PatchCore scorer ---------------------------------------------------------------------------

TEST_CASE("PatchCore: support rows score 0 with the full bank; far queries score higher",
          "[patchcore]") {
  std::mt19937_64 rng(7);
  const Eigen::MatrixXd support = gaussian<double>(200, 24, rng, 3.0);
  baypr::PatchCoreOptions opt;
  opt.coreset.ratio = 1.0;
  baypr::PatchCoreScorer<double> scorer(opt);
  scorer.fit(support);
  CHECK(scorer.memory_size() == 200);
  CHECK(scorer.score(support).cwiseAbs().maxCoeff() == 0.0);

  // Euclidean (not squared) distance to the nearest support row, checked by brute force.
  const Eigen::MatrixXd queries = gaussian<double>(20, 24, rng, 3.0);
  const Eigen::VectorXd s = scorer.score(queries);
  for (Index q = 0; q < queries.rows(); ++q) {
    const double nearest = (support.rowwise() - queries.row(q)).rowwise().norm().minCoeff();
    CHECK(std::abs(s(q) - nearest) <= 1e-12 * (1 + nearest));
  }

  // Along a ray away from the data the score increases.
  baypr::PatchCoreScorer<double> coreset_scorer(
      baypr::PatchCoreOptions{{0.1, 0, 128, 3}, 1, false});
  coreset_scorer.fit(support);
  CHECK(coreset_scorer.memory_size() == 20);
  const Eigen::RowVectorXd centre = support.colwise().mean();
  const Eigen::RowVectorXd dir = Eigen::RowVectorXd::Ones(24) / std::sqrt(24.0);
  Eigen::MatrixXd ray(5, 24);
  for (Index i = 0; i < 5; ++i)
    ray.row(i) = centre + (10.0 * std::pow(2.0, static_cast<double>(i))) * dir;
  const Eigen::VectorXd r = coreset_scorer.score(ray);
  for (Index i = 1; i < 5; ++i) CHECK(r(i) > r(i - 1));
  CHECK(coreset_scorer.score(support).mean() < r(0));

  // float works the same way
  baypr::PatchCoreScorer<float> f(opt);
  f.fit(support);
  CHECK(f.score(support).cwiseAbs().maxCoeff() == 0.0f);
}

TEST_CASE("PatchCore: k > 1 without re-weighting averages the k nearest distances", "[patchcore]") {
  std::mt19937_64 rng(8);
  const Eigen::MatrixXd support = gaussian<double>(60, 5, rng);
  const Eigen::MatrixXd queries = gaussian<double>(10, 5, rng);
  baypr::PatchCoreScorer<double> scorer(baypr::PatchCoreOptions{{1.0, 0, 128, 0}, 3, false});
  scorer.fit(support);
  const auto details = scorer.score_details(queries);
  for (Index q = 0; q < queries.rows(); ++q) {
    Eigen::VectorXd d = (support.rowwise() - queries.row(q)).rowwise().norm();
    std::sort(d.data(), d.data() + d.size());
    CHECK(std::abs(details.score(q) - d.head(3).mean()) <= 1e-12);
    CHECK(std::abs(details.nearest_distance(q) - d(0)) <= 1e-12);
    CHECK(details.weight(q) == 1.0);
  }
}

TEST_CASE("PatchCore re-weighting: the paper's formula on a hand-worked case",
          "[patchcore][reweight]") {
  // Memory bank {0, 1, 3} on a line (coreset ratio 1), k = 2, query 5: m* = 3 with s* = 2;
  // N_b(m*) = {3, 1} (distances 0 and 2 from m*); distances from q: 2 and 4.
  // w = 1 - e^2 / (e^2 + e^4).
  Eigen::MatrixXd support(3, 1);
  support << 0.0, 1.0, 3.0;
  baypr::PatchCoreScorer<double> scorer(baypr::PatchCoreOptions{{1.0, 0, 128, 0}, 2, true});
  scorer.fit(support);
  Eigen::MatrixXd q(1, 1);
  q << 5.0;
  const auto details = scorer.score_details(q);
  const double w = 1.0 - std::exp(2.0) / (std::exp(2.0) + std::exp(4.0));
  CHECK(details.nearest(0) == 2);
  CHECK(details.nearest_distance(0) == 2.0);
  CHECK(std::abs(details.weight(0) - w) <= 1e-15);
  CHECK(std::abs(details.score(0) - 2.0 * w) <= 1e-15);
  // Far away (distances ~ 1e3), the stable softmax does not overflow.
  q << 1000.0;
  const auto far = scorer.score_details(q);
  CHECK(std::isfinite(far.score(0)));
  CHECK(std::abs(far.weight(0) - (1.0 - 1.0 / (1.0 + std::exp(2.0)))) <= 1e-12);
}

TEST_CASE("PatchCore re-weighting keeps the order of increasingly distant queries",
          "[patchcore][reweight]") {
  std::mt19937_64 rng(9);
  const Eigen::MatrixXd support = gaussian<double>(300, 8, rng);
  const Index k = 3;
  baypr::PatchCoreScorer<double> plain(baypr::PatchCoreOptions{{0.2, 0, 128, 5}, 1, false});
  baypr::PatchCoreScorer<double> weighted(baypr::PatchCoreOptions{{0.2, 0, 128, 5}, k, true});
  plain.fit(support);
  weighted.fit(support);
  CHECK(weighted.coreset_indices() == plain.coreset_indices());
  // Queries whose nearest distance at least doubles from one to the next: since the weight lies
  // in [1 - 1/k, 1) = [2/3, 1), the weighted scores keep the order.
  Eigen::MatrixXd queries(6, 8);
  const Eigen::RowVectorXd dir = Eigen::RowVectorXd::Unit(8, 0);
  for (Index i = 0; i < 6; ++i)
    queries.row(i) = (4.0 * std::pow(2.0, static_cast<double>(i))) * dir;
  const Eigen::VectorXd p = plain.score(queries);
  const auto w = weighted.score_details(queries);
  for (Index i = 0; i < 6; ++i) {
    CHECK(w.nearest_distance(i) == p(i));
    CHECK(w.weight(i) >= 1.0 - 1.0 / static_cast<double>(k) - 1e-12);
    CHECK(w.weight(i) < 1.0);
    CHECK(w.score(i) <= p(i));
    if (i > 0) {
      REQUIRE(p(i) >= 2.0 * p(i - 1));
      CHECK(w.score(i) > w.score(i - 1));
    }
  }
}

TEST_CASE("PatchCore: bad input names the function, argument and value; fit is all-or-nothing",
          "[patchcore][errors]") {
  auto construct = [](baypr::PatchCoreOptions o) {
    return message_of([&] { baypr::PatchCoreScorer<double> s(o); });
  };
  baypr::PatchCoreOptions o;
  o.coreset.ratio = 0.0;
  CHECK(contains(construct(o),
                 "baypr::PatchCoreScorer::PatchCoreScorer: argument 'options.coreset.ratio' must "
                 "be in (0, 1], got 0"));
  o.coreset.ratio = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(construct(o), "'options.coreset.ratio' must be in (0, 1], got nan"));
  o.coreset.ratio = 1.01;
  CHECK(contains(construct(o), "got 1.01"));
  o = {};
  o.neighbours = 0;
  CHECK(contains(construct(o), "argument 'options.neighbours' must be >= 1, got 0"));
  o.neighbours = 1;
  o.reweight = true;
  CHECK(contains(construct(o), "'options.neighbours' must be >= 2 when options.reweight is set"));
  o = {};
  o.coreset.count = -3;
  CHECK(contains(construct(o), "'options.coreset.count' must be >= 0"));
  o.coreset.count = 0;
  o.min_memory = 0;
  CHECK(contains(construct(o), "'options.min_memory' must be >= 1, got 0"));
  o = {};
  o.coreset.projection_dim = 0;
  CHECK(contains(construct(o), "'options.coreset.projection_dim' must be >= 1, got 0"));

  baypr::PatchCoreScorer<double> scorer(baypr::PatchCoreOptions{{0.5, 0, 128, 0}, 2, true});
  const Eigen::MatrixXd q = Eigen::MatrixXd::Random(4, 6);
  CHECK(contains(message_of([&] { (void)scorer.score(q); }),
                 "baypr::PatchCoreScorer::score: argument 'this' is not fitted"));
  CHECK(contains(message_of([&] { (void)scorer.score_details(q); }),
                 "baypr::PatchCoreScorer::score_details: argument 'this' is not fitted"));
  CHECK(contains(
      message_of([&] { scorer.fit(Eigen::MatrixXd(0, 6)); }),
      "baypr::PatchCoreScorer::fit: argument 'support_rows' must have at least one row, got 0"));

  const Eigen::MatrixXd support = Eigen::MatrixXd::Random(40, 6);
  scorer.fit(support);
  const Eigen::VectorXd before = scorer.score(q);
  const auto coreset_before = scorer.coreset_indices();
  Eigen::MatrixXd bad = Eigen::MatrixXd::Random(30, 6);
  bad(12, 5) = std::numeric_limits<double>::infinity();
  CHECK(contains(message_of([&] { scorer.fit(bad); }),
                 "baypr::PatchCoreScorer::fit: argument 'support_rows' must be finite, got inf at "
                 "row 12, column 5"));
  CHECK(contains(message_of([&] { scorer.fit(Eigen::MatrixXd::Random(30, 0)); }),
                 "at least one column"));
  // Unchanged after the failed fits.
  CHECK(scorer.memory_size() == 20);
  CHECK(scorer.coreset_indices() == coreset_before);
  CHECK(scorer.score(q) == before);

  CHECK(contains(message_of([&] { (void)scorer.score(Eigen::MatrixXd::Random(2, 5)); }),
                 "argument 'query_rows' has columns 5, expected 6"));
  Eigen::MatrixXd bad_q = q;
  bad_q(1, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(message_of([&] { (void)scorer.score(bad_q); }),
                 "argument 'query_rows' must be finite, got nan at row 1, column 3"));

  // A double beyond float's range is caught after the conversion, not passed on as inf.
  baypr::PatchCoreScorer<float> narrow;
  CHECK(contains(message_of([&] { narrow.fit(Eigen::MatrixXd::Constant(3, 2, 1e300)); }),
                 "argument 'support_rows' must be finite, got inf at row 0, column 0"));
  CHECK(!narrow.fitted());

  // An absolute coreset size larger than the support is capped at the support size.
  baypr::PatchCoreScorer<double> capped(baypr::PatchCoreOptions{{0.1, 1000, 128, 0}, 1, false});
  capped.fit(support);
  CHECK(capped.memory_size() == 40);
}

static_assert(baypr::Scorer<baypr::PatchCoreScorer<double>>);
static_assert(requires(const baypr::PatchCoreScorer<float>& s) {
  { s.fitted() } -> std::same_as<bool>;
  { s.dim() } -> std::same_as<Eigen::Index>;
});  // as every scorer (tests/score_scorers.test.cpp)

TEST_CASE("PatchCore through the patch layer: a defective patch flags its image",
          "[patchcore][patches]") {
  std::mt19937_64 rng(10);
  const Index patches = 16, d = 12;
  const Eigen::MatrixXd support = gaussian<double>(8 * patches, d, rng);  // 8 normal images
  Eigen::MatrixXd queries = gaussian<double>(4 * patches, d, rng);        // 4 query images
  queries.row(2 * patches + 5).array() += 6.0;                            // image 2, patch 5
  baypr::PatchCoreScorer<double> scorer(baypr::PatchCoreOptions{{0.25, 0, 128, 0}, 1, false});
  const auto out = baypr::score_patches(scorer, support, queries, patches);
  REQUIRE(out.image.size() == 4);
  Index worst = 0;
  out.image.maxCoeff(&worst);
  CHECK(worst == 2);
  Index row = 0, col = 0;
  out.patches.maxCoeff(&row, &col);
  CHECK(row == 2);
  CHECK(col == 5);
}

TEST_CASE("PatchCore: a ratio-sized memory bank never degenerates on a small support",
          "[patchcore]") {
  std::mt19937_64 rng(21);
  const Eigen::MatrixXd five = gaussian<double>(5, 8, rng);
  baypr::PatchCoreScorer<double> scorer;  // default ratio 0.1: floor(0.5) would keep one row
  scorer.fit(five);
  CHECK(scorer.memory_size() == 5);
  const Eigen::MatrixXd forty = gaussian<double>(40, 8, rng);
  scorer.fit(forty);
  CHECK(scorer.memory_size() == 16);  // min_memory
  baypr::PatchCoreOptions o;
  o.neighbours = 20;
  baypr::PatchCoreScorer<double> wide(o);
  wide.fit(forty);
  CHECK(wide.memory_size() == 21);  // neighbours + 1
  o.neighbours = 1;
  o.coreset.count = 3;  // explicit: kept as given
  baypr::PatchCoreScorer<double> explicit_count(o);
  explicit_count.fit(forty);
  CHECK(explicit_count.memory_size() == 3);
  const Eigen::MatrixXd many = gaussian<double>(400, 8, rng);
  scorer.fit(many);
  CHECK(scorer.memory_size() == 40);  // the ratio, when it keeps more
}
