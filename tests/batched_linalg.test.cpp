// The batched ("SIMD across matrices") Cholesky kernels and Student-t densities against Eigen's
// LLT and baypr::StudentT matrix by matrix, the vector lanes against the scalar lane, failures
// named by batch index with the rest of the batch still exact, and bad input.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "baypr/core/batched_cholesky.hpp"
#include "baypr/stats/batched_student_t.hpp"
#include "baypr/stats/student_t.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

namespace {

template <class Scalar>
using MatrixT = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using VectorT = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

// A well-conditioned SPD matrix (eigenvalues in about [0.5, 5]) with some correlation.
template <class Scalar>
MatrixT<Scalar> random_spd(Eigen::Index d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  const Eigen::MatrixXd B = Eigen::MatrixXd::NullaryExpr(d, d, [&] { return normal(rng); });
  Eigen::MatrixXd A =
      B * B.transpose() / static_cast<double>(d) + 0.5 * Eigen::MatrixXd::Identity(d, d);
  return A.template cast<Scalar>();
}

template <class Scalar>
VectorT<Scalar> random_vector(Eigen::Index d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  return Eigen::VectorXd::NullaryExpr(d, [&] { return normal(rng); }).template cast<Scalar>();
}

template <class A, class B>
double relative_error(const A& got, const B& want) {
  const double scale = std::max(1.0, static_cast<double>(want.cwiseAbs().maxCoeff()));
  return static_cast<double>((got - want).cwiseAbs().maxCoeff()) / scale;
}

template <class Scalar>
constexpr double tolerance() {
  return std::is_same_v<Scalar, float> ? 1e-5 : 1e-12;
}

// Everything CholeskyBatch computes, matrix by matrix against Eigen's LLT in the same precision.
template <class Scalar, class Lanes>
void check_against_eigen(Eigen::Index count, Eigen::Index d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  baypr::batched::SymmetricBatch<Scalar, Lanes> a(count, d);
  baypr::batched::VectorBatch<Scalar, Lanes> b(count, d);
  std::vector<MatrixT<Scalar>> mats;
  std::vector<VectorT<Scalar>> rhs;
  for (Eigen::Index k = 0; k < count; ++k) {
    mats.push_back(random_spd<Scalar>(d, rng));
    rhs.push_back(random_vector<Scalar>(d, rng));
    a.set(k, mats.back());
    b.set(k, rhs.back());
  }
  const baypr::batched::CholeskyBatch<Scalar, Lanes> chol(a);
  REQUIRE(chol.ok());
  const VectorT<Scalar> log_dets = chol.log_determinants();
  const auto lower = chol.solve_lower(b);
  const auto solved = chol.solve(b);
  const VectorT<Scalar> norms = chol.squared_norms(b);
  const double tol = tolerance<Scalar>();
  for (Eigen::Index k = 0; k < count; ++k) {
    const Eigen::LLT<MatrixT<Scalar>> llt(mats[static_cast<std::size_t>(k)]);
    const MatrixT<Scalar> L = llt.matrixL();
    const VectorT<Scalar>& r = rhs[static_cast<std::size_t>(k)];
    const VectorT<Scalar> z = llt.matrixL().solve(r);
    CHECK(relative_error(chol.matrix_l(k), L) < tol);
    const double want_log_det = 2.0 * static_cast<double>(L.diagonal().array().log().sum());
    CHECK(std::abs(static_cast<double>(log_dets(k)) - want_log_det) <
          tol * std::max(1.0, std::abs(want_log_det)));
    CHECK(relative_error(lower.get(k), z) < tol);
    CHECK(relative_error(solved.get(k), llt.solve(r)) < tol);
    CHECK(std::abs(static_cast<double>(norms(k) - z.squaredNorm())) <
          tol * std::max<double>(1.0, z.squaredNorm()));
  }
}

using Fast = baypr::simd::DefaultLanes<double>;
using FastF = baypr::simd::DefaultLanes<float>;
using Slow = baypr::simd::ScalarLanes<double>;

}  // namespace

TEST_CASE("batched Cholesky, solves and log-determinants equal Eigen's LLT matrix by matrix",
          "[batched]") {
  // Counts that are and are not multiples of the lane width, d from 1 to past one cache line.
  for (const Eigen::Index d : {1, 2, 3, 4, 7, 16, 33}) {
    INFO("d = " << d);
    check_against_eigen<double, Fast>(13, d, 7 + static_cast<std::uint64_t>(d));
    check_against_eigen<float, FastF>(21, d, 11 + static_cast<std::uint64_t>(d));
    check_against_eigen<double, Slow>(5, d, 13 + static_cast<std::uint64_t>(d));
  }
  check_against_eigen<double, Fast>(64, 64, 3);
  check_against_eigen<double, Fast>(0, 4, 3);  // an empty batch is valid
}

TEST_CASE("the vector lanes and the scalar lane agree", "[batched]") {
  if constexpr (std::is_same_v<Fast, Slow>) {
    WARN("built without baypr::simd: both are the scalar lane, nothing to compare");
    return;
  }
  std::mt19937_64 rng(5);
  const Eigen::Index count = 11;
  const Eigen::Index d = 9;
  baypr::batched::SymmetricBatch<double, Fast> a(count, d);
  baypr::batched::SymmetricBatch<double, Slow> a1(count, d);
  baypr::batched::VectorBatch<double, Fast> x(count, d);
  baypr::batched::VectorBatch<double, Slow> x1(count, d);
  for (Eigen::Index k = 0; k < count; ++k) {
    const Eigen::MatrixXd m = random_spd<double>(d, rng);
    const Eigen::VectorXd v = random_vector<double>(d, rng);
    a.set(k, m);
    a1.set(k, m);
    x.set(k, v);
    x1.set(k, v);
  }
  baypr::batched::CholeskyBatch<double, Fast> c(a);
  baypr::batched::CholeskyBatch<double, Slow> c1(a1);
  c.rank_update(x, 0.75);
  c1.rank_update(x1, 0.75);
  CHECK(relative_error(c.log_determinants(), c1.log_determinants()) < 1e-14);
  CHECK(relative_error(c.solve(x).rows(), c1.solve(x1).rows()) < 1e-14);
  for (Eigen::Index k = 0; k < count; ++k) {
    CHECK(relative_error(c.matrix_l(k), c1.matrix_l(k)) < 1e-14);
  }
}

TEST_CASE("a matrix that is not positive definite is named, and the rest of the batch is exact",
          "[batched]") {
  std::mt19937_64 rng(17);
  const Eigen::Index count = 10;
  const Eigen::Index d = 5;
  baypr::batched::SymmetricBatch<double, Fast> a(count, d);
  std::vector<Eigen::MatrixXd> mats;
  for (Eigen::Index k = 0; k < count; ++k) {
    mats.push_back(random_spd<double>(d, rng));
    if (k == 3) mats.back()(2, 2) = -1.0;                   // fails at pivot 2 (or before)
    if (k == 8) mats.back() = Eigen::MatrixXd::Zero(d, d);  // pivot 0 is exactly 0
    a.set(k, mats.back());
  }
  const baypr::batched::CholeskyBatch<double, Fast> chol(a);
  CHECK_FALSE(chol.ok());
  REQUIRE(chol.failures().size() == 2);
  CHECK(chol.failures()[0].index == 3);
  CHECK(chol.failures()[0].pivot == 2);
  CHECK(chol.failures()[0].value < 0.0);
  CHECK(chol.failures()[1].index == 8);
  CHECK(chol.failures()[1].pivot == 0);
  CHECK(chol.failures()[1].value == 0.0);
  CHECK_FALSE(chol.ok(3));
  CHECK(chol.ok(4));
  for (Eigen::Index k = 0; k < count; ++k) {
    if (k == 3 || k == 8) continue;
    const Eigen::MatrixXd L =
        Eigen::LLT<Eigen::MatrixXd>(mats[static_cast<std::size_t>(k)]).matrixL();
    CHECK(relative_error(chol.matrix_l(k), L) < 1e-12);
  }
  const std::string m = message_of([&] { (void)chol.matrix_l(3); });
  CHECK(contains(m, "baypr::batched::CholeskyBatch::matrix_l"));
  CHECK(contains(m, "matrix 3 of the batch is not positive definite"));
  CHECK(contains(m, "pivot 2"));
  baypr::batched::VectorBatch<double, Fast> b(count, d);
  CHECK_THROWS_AS(chol.solve(b), baypr::numerical_error);
  CHECK(contains(message_of([&] { (void)chol.log_determinants(); }), "matrix 3 of the batch"));
}

TEST_CASE("failures in one group of lanes are listed by index, whatever their pivots",
          "[batched]") {
  // Matrices 0 and 1 share a group whenever there is more than one lane; 1 fails at pivot 0,
  // 0 only at pivot 3, so the pivots come in the opposite order of the indices.
  std::mt19937_64 rng(19);
  const Eigen::Index d = 5;
  baypr::batched::SymmetricBatch<double, Fast> a(3, d);
  Eigen::MatrixXd m0 = random_spd<double>(d, rng);
  m0(3, 3) = -4.0;
  Eigen::MatrixXd m1 = random_spd<double>(d, rng);
  m1(0, 0) = -1.0;
  a.set(0, m0);
  a.set(1, m1);
  a.set(2, random_spd<double>(d, rng));
  const baypr::batched::CholeskyBatch<double, Fast> chol(a);
  REQUIRE(chol.failures().size() == 2);
  CHECK(chol.failures()[0].index == 0);
  CHECK(chol.failures()[0].pivot == 3);
  CHECK(chol.failures()[1].index == 1);
  CHECK(chol.failures()[1].pivot == 0);
  CHECK_FALSE(chol.ok(0));
  CHECK_FALSE(chol.ok(1));
  CHECK(chol.ok(2));
  CHECK(contains(message_of([&] { (void)chol.matrix_l(0); }), "matrix 0 of the batch"));
  CHECK(contains(message_of([&] { (void)chol.log_determinants(); }), "matrix 0 of the batch"));
}

TEST_CASE("batched rank-one updates and downdates equal Eigen's, all or nothing", "[batched]") {
  std::mt19937_64 rng(23);
  const Eigen::Index count = 9;
  const Eigen::Index d = 6;
  baypr::batched::SymmetricBatch<double, Fast> a(count, d);
  baypr::batched::VectorBatch<double, Fast> x(count, d);
  std::vector<Eigen::MatrixXd> mats;
  std::vector<Eigen::VectorXd> xs;
  Eigen::VectorXd sigma(count);
  for (Eigen::Index k = 0; k < count; ++k) {
    mats.push_back(random_spd<double>(d, rng));
    xs.push_back(0.3 * random_vector<double>(d, rng));
    sigma(k) = (k % 2 == 0) ? 1.5 : -0.8;  // updates and (feasible) downdates in one batch
    a.set(k, mats.back());
    x.set(k, xs.back());
  }
  baypr::batched::CholeskyBatch<double, Fast> chol(a);
  chol.rank_update(x, sigma);
  for (Eigen::Index k = 0; k < count; ++k) {
    const auto at = static_cast<std::size_t>(k);
    Eigen::LLT<Eigen::MatrixXd> llt(mats[at]);
    llt.rankUpdate(xs[at], sigma(k));
    const Eigen::MatrixXd L = llt.matrixL();
    CHECK(relative_error(chol.matrix_l(k), L) < 1e-12);
    const Eigen::MatrixXd updated = mats[at] + sigma(k) * xs[at] * xs[at].transpose();
    CHECK(relative_error(chol.matrix_l(k) * chol.matrix_l(k).transpose(), updated) < 1e-12);
  }

  // A downdate that would make matrix 4 indefinite: an error naming it, and nothing changes.
  const Eigen::VectorXd logdet_before = chol.log_determinants();
  Eigen::VectorXd big = Eigen::VectorXd::Zero(count);
  big(4) = -1e6;
  const std::string m = message_of([&] { chol.rank_update(x, big); });
  CHECK(contains(m, "baypr::batched::CholeskyBatch::rank_update"));
  CHECK(contains(m, "matrix 4 of the batch would not stay positive definite"));
  CHECK(chol.ok());
  CHECK((chol.log_determinants().array() == logdet_before.array()).all());
}

TEST_CASE("StudentTBatch equals baypr::StudentT model by model", "[batched]") {
  std::mt19937_64 rng(29);
  for (const Eigen::Index d : {1, 3, 8, 20}) {
    const Eigen::Index count = 7;
    baypr::batched::SymmetricBatch<double, Fast> scale(count, d);
    baypr::batched::VectorBatch<double, Fast> mu(count, d);
    baypr::batched::VectorBatch<double, Fast> x(count, d);
    Eigen::VectorXd dof(count);
    std::vector<baypr::StudentT<double>> reference;
    for (Eigen::Index k = 0; k < count; ++k) {
      const Eigen::MatrixXd s = random_spd<double>(d, rng);
      const Eigen::VectorXd m = random_vector<double>(d, rng);
      dof(k) = 0.5 + 3.0 * static_cast<double>(k);
      scale.set(k, s);
      mu.set(k, m);
      x.set(k, m + 2.0 * random_vector<double>(d, rng));
      reference.emplace_back(m, s, dof(k));
    }
    const baypr::batched::StudentTBatch<double, Fast> t(mu, scale, dof);
    const Eigen::VectorXd lp = t.log_pdf(x);
    const Eigen::VectorXd delta = t.mahalanobis(x);
    CHECK(t.dof() == dof);
    // From a factor the caller already has, and with delta from the same solve: the same values.
    const baypr::batched::StudentTBatch<double, Fast> from_factor(
        mu, baypr::batched::CholeskyBatch<double, Fast>(scale), dof);
    Eigen::VectorXd delta_too;
    CHECK(from_factor.log_pdf(x, &delta_too) == lp);
    CHECK(delta_too == delta);
    // Many batches of points in one pass: column m is log_pdf(xs[m]).
    baypr::batched::VectorBatch<double, Fast> x2(count, d);
    for (Eigen::Index k = 0; k < count; ++k) x2.set(k, x.get(k) * 0.5);
    const std::vector<baypr::batched::VectorBatch<double, Fast>> xs = {x, x2};
    Eigen::MatrixXd deltas;
    const Eigen::MatrixXd many =
        t.log_pdf(std::span<const baypr::batched::VectorBatch<double, Fast>>(xs), &deltas);
    REQUIRE(many.rows() == count);
    REQUIRE(many.cols() == 2);
    CHECK(many.col(0) == lp);
    CHECK(deltas.col(0) == delta);
    CHECK(many.col(1) == t.log_pdf(x2));
    // Nine batches: two full blocks of the kernel and a partial one; each column is the batch's
    // own log_pdf, bitwise (the blocked kernel's arithmetic per batch is the single one's).
    std::vector<baypr::batched::VectorBatch<double, Fast>> nine;
    for (int m = 0; m < 9; ++m) {
      baypr::batched::VectorBatch<double, Fast> xm(count, d);
      for (Eigen::Index k = 0; k < count; ++k) xm.set(k, x.get(k) * (0.25 + 0.2 * m));
      nine.push_back(xm);
    }
    Eigen::MatrixXd nine_deltas;
    const Eigen::MatrixXd blocked =
        t.log_pdf(std::span<const baypr::batched::VectorBatch<double, Fast>>(nine), &nine_deltas);
    for (int m = 0; m < 9; ++m) {
      Eigen::VectorXd dm;
      CHECK(blocked.col(m) == t.log_pdf(nine[static_cast<std::size_t>(m)], &dm));
      CHECK(nine_deltas.col(m) == dm);
    }
    // The same batches as row blocks of one matrix, read in place (column-major; the last group
    // of 7 models is partial at every lane width but 1) or through a copy (row-major): bitwise.
    Eigen::MatrixXd stacked(9 * count, d);
    for (int m = 0; m < 9; ++m)
      stacked.middleRows(m * count, count) = nine[static_cast<std::size_t>(m)].rows();
    Eigen::MatrixXd rows_deltas;
    CHECK(t.log_pdf_rows(stacked, &rows_deltas) == blocked);
    CHECK(rows_deltas == nine_deltas);
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major =
        stacked;
    CHECK(t.log_pdf_rows(row_major) == blocked);
    CHECK(contains(message_of([&] { (void)t.log_pdf_rows(stacked.topRows(count + 1)); }),
                   "baypr::batched::StudentTBatch::log_pdf_rows: argument 'X' has " +
                       std::to_string(count + 1) + " rows, not a multiple of the batch's " +
                       std::to_string(count) + " models"));
    Eigen::MatrixXd with_nan = stacked;
    with_nan(3, 0) = std::numeric_limits<double>::quiet_NaN();
    CHECK(contains(message_of([&] { (void)t.log_pdf_rows(with_nan); }),
                   "baypr::batched::StudentTBatch::log_pdf_rows: argument 'X'"));
    CHECK(contains(message_of([&] {
                     const std::vector<baypr::batched::VectorBatch<double, Fast>> bad = {
                         x, baypr::batched::VectorBatch<double, Fast>(count + 1, d)};
                     (void)t.log_pdf(
                         std::span<const baypr::batched::VectorBatch<double, Fast>>(bad));
                   }),
                   "argument 'xs[1]' has count " + std::to_string(count + 1)));
    for (Eigen::Index k = 0; k < count; ++k) {
      const auto& ref = reference[static_cast<std::size_t>(k)];
      const double want = ref.log_pdf(x.get(k));
      CHECK(std::abs(lp(k) - want) < 1e-12 * std::max(1.0, std::abs(want)));
      const double want_delta = ref.mahalanobis(x.get(k).transpose())(0);
      CHECK(std::abs(delta(k) - want_delta) < 1e-12 * std::max(1.0, want_delta));
    }
  }
}

TEST_CASE("batched kernels refuse bad input with named errors", "[batched]") {
  using Sym = baypr::batched::SymmetricBatch<double, Fast>;
  using Vec = baypr::batched::VectorBatch<double, Fast>;
  CHECK(contains(message_of([] { Sym(-1, 3); }), "argument 'count' must be >= 0, got -1"));
  CHECK(contains(message_of([] { Vec(2, 0); }), "argument 'dim' must be >= 1, got 0"));
  Sym a(4, 3);
  CHECK(contains(message_of([&] { a.set(4, Eigen::Matrix3d::Identity()); }),
                 "argument 'k' must be in [0, 4), got 4"));
  CHECK(contains(message_of([&] { a.set(0, Eigen::Matrix2d::Identity()); }),
                 "argument 'm' has rows 2, expected 3"));
  Eigen::Matrix3d nan = Eigen::Matrix3d::Identity();
  nan(2, 1) = std::numeric_limits<double>::quiet_NaN();
  const Eigen::MatrixXd before = a.get(1);
  CHECK(contains(message_of([&] { a.set(1, nan); }), "must be finite, got nan at row 2, column 1"));
  CHECK(a.get(1) == before);  // nothing written
  Vec v(4, 3);
  CHECK(contains(message_of([&] {
                   v.set(0, Eigen::Vector3d(1.0, std::numeric_limits<double>::infinity(), 0.0));
                 }),
                 "baypr::batched::VectorBatch::set: argument 'v' must be finite"));
  // set_rows checks every entry (the already_checked overload only the shape), writing nothing
  // on failure.
  Eigen::MatrixXd rows = Eigen::MatrixXd::Ones(4, 3);
  v.set_rows(rows);
  rows(3, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(message_of([&] { v.set_rows(rows); }),
                 "baypr::batched::VectorBatch::set_rows: argument 'X' must be finite, got nan at "
                 "row 3, column 0"));
  CHECK(v.rows() == Eigen::MatrixXd::Ones(4, 3));
  CHECK(contains(
      message_of([&] { v.set_rows(Eigen::MatrixXd::Ones(3, 3), baypr::batched::already_checked); }),
      "argument 'X' has rows 3, expected 4"));
  const baypr::batched::CholeskyBatch<double, Fast> chol(a);
  CHECK(contains(message_of([&] { (void)chol.solve(Vec(5, 3)); }),
                 "baypr::batched::CholeskyBatch::solve: argument 'b' has count 5, expected 4"));
  CHECK(contains(message_of([&] { (void)chol.solve(Vec(4, 2)); }), "has dim 2, expected 3"));

  Eigen::VectorXd dof = Eigen::VectorXd::Constant(4, 3.0);
  dof(2) = -1.0;
  CHECK(contains(message_of([&] { baypr::batched::StudentTBatch<double, Fast>(v, a, dof); }),
                 "argument 'dof' must be finite and > 0, got -1 for model 2"));
  a.set(1, -Eigen::Matrix3d::Identity());
  CHECK(contains(message_of([&] {
                   baypr::batched::StudentTBatch<double, Fast>(v, a, Eigen::VectorXd::Ones(4));
                 }),
                 "matrix 1 has Cholesky pivot 0 = -1"));
}
