// The CUDA layer (baypr::cuda) against the CPU path it mirrors: Student-t batches, exact k-NN,
// the greedy coreset, batched Cholesky (own kernel and cuSOLVER) and per-position scores, with
// bad input and non-SPD matrices named. Two ctest entries run this program:
//   cuda_host     "[host]":   what needs no device (device discovery, Context without one);
//   cuda_device   "[device]": the comparisons. Its first case exits with 77 (ctest: skipped) and
//                 says why when this machine has no CUDA device.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cstdlib>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "baypr/cuda/cuda.hpp"
#include "baypr/score/knn.hpp"
#include "baypr/score/patchcore.hpp"
#include "baypr/stats/student_t.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;
using Eigen::Index;

namespace {

template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

template <class Scalar>
Matrix<Scalar> gaussian(Index rows, Index cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Matrix<Scalar> m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<Scalar>(normal(rng));
  return m;
}

template <class Scalar>
Matrix<Scalar> random_spd(Index d, std::mt19937_64& rng) {
  const Matrix<double> a = gaussian<double>(d + 3, d, rng);
  Matrix<double> s = a.transpose() * a / static_cast<double>(d + 3);
  s.diagonal().array() += 1.0;  // condition number below about 5: rounding stays comparable
  return s.cast<Scalar>();
}

template <class Scalar>
baypr::StudentT<Scalar> random_student_t(Index d, std::mt19937_64& rng) {
  const Matrix<Scalar> mu = gaussian<Scalar>(d, 1, rng);
  return baypr::StudentT<Scalar>(mu.col(0), random_spd<Scalar>(d, rng),
                                 static_cast<Scalar>(d) + Scalar(2.5));
}

template <class Scalar>
double tolerance() {
  return std::is_same_v<Scalar, float> ? 1e-5 : 1e-10;
}

}  // namespace

TEST_CASE("device discovery never throws, and a Context needs a device", "[host]") {
  const int n = baypr::cuda::device_count();
  CHECK(n >= 0);
  const std::string what = baypr::cuda::device_description(n);  // one past the last: none
  CHECK(contains(what, "no CUDA device"));
  const std::string msg = message_of([&] { baypr::cuda::Context ctx(n); });
  CHECK(contains(msg, "baypr::cuda::Context::Context: no CUDA device " + std::to_string(n)));
  CHECK(contains(message_of([] { baypr::cuda::Context ctx(-1); }), "no CUDA device -1"));
}

TEST_CASE("a CUDA device is present (else this program exits 77: skipped)", "[device]") {
  if (baypr::cuda::device_count() == 0) {
    std::cout << "baypr cuda tests: skipped, " << baypr::cuda::device_description(0) << "\n"
              << std::flush;
    std::exit(77);
  }
  std::cout << "baypr cuda tests on " << baypr::cuda::device_description(0) << "\n";
}

TEMPLATE_TEST_CASE("Student-t batch equals StudentT::log_pdf", "[device]", float, double) {
  using Scalar = TestType;
  baypr::cuda::Context ctx;
  std::mt19937_64 rng(3);
  for (const Index d : {Index{1}, Index{8}, Index{300}}) {
    const auto t = random_student_t<Scalar>(d, rng);
    const Matrix<Scalar> X = gaussian<Scalar>(1000, d, rng);
    const auto got = baypr::cuda::student_t_log_pdf(ctx, t, X);
    INFO("d = " << d);
    CHECK(baypr::test::max_relative_error(got, t.log_pdf(X)) <= tolerance<Scalar>());
  }
  const auto t = random_student_t<Scalar>(4, rng);
  CHECK(baypr::cuda::student_t_log_pdf(ctx, t, Matrix<Scalar>(0, 4)).size() == 0);
  Matrix<Scalar> bad = gaussian<Scalar>(3, 4, rng);
  bad(1, 2) = std::numeric_limits<Scalar>::quiet_NaN();
  CHECK(contains(message_of([&] { (void)baypr::cuda::student_t_log_pdf(ctx, t, bad); }),
                 "baypr::cuda::student_t_log_pdf: argument 'X' must be finite"));
  CHECK(contains(message_of([&] {
                   (void)baypr::cuda::student_t_log_pdf(ctx, t, gaussian<Scalar>(3, 5, rng));
                 }),
                 "baypr::cuda::student_t_log_pdf: argument 'X'"));
}

TEMPLATE_TEST_CASE("exact k-NN equals the CPU KnnIndex, across bank tiles", "[device]", float,
                   double) {
  using Scalar = TestType;
  baypr::cuda::Context ctx;
  std::mt19937_64 rng(5);
  struct Shape {
    Index bank, queries, dim;
  };
  // The last shape's score tile (bank x queries) exceeds the 256 MiB tile budget, so several
  // tiles are merged on the device.
  for (const Shape s : {Shape{50, 7, 3}, Shape{5000, 300, 64}, Shape{20000, 4000, 16}}) {
    const Matrix<Scalar> bank = gaussian<Scalar>(s.bank, s.dim, rng);
    const Matrix<Scalar> queries = gaussian<Scalar>(s.queries, s.dim, rng);
    const baypr::cuda::KnnIndex<Scalar> index(ctx, bank);
    for (const Index k : {Index{1}, Index{5}, Index{50}}) {
      const auto got = index.search(ctx, queries, k);
      const auto want = baypr::knn_search(queries, bank, k);
      INFO("bank " << s.bank << ", queries " << s.queries << ", d " << s.dim << ", k " << k);
      CHECK(baypr::test::max_relative_error(got.squared_distances, want.squared_distances) <=
            tolerance<Scalar>());
      // Selection uses GEMM values, rounded differently by cuBLAS and by the CPU kernel: two
      // neighbours whose distances tie to that rounding may be exchanged (their distances then
      // agree, checked above). In double that never happens on these data; in float it may, at
      // a few of the 4000 x 50 places.
      const Index differ = (got.indices.array() != want.indices.array()).count();
      if constexpr (std::is_same_v<Scalar, double>) {
        CHECK(differ == 0);
      } else {
        CHECK(differ <= want.indices.size() / 1000);
      }
    }
  }
  // A query equal to a bank row: distance exactly 0, that row first.
  const Matrix<Scalar> bank = gaussian<Scalar>(100, 5, rng);
  const auto self = baypr::cuda::knn_search(ctx, Matrix<Scalar>(bank.row(42)), bank, 3);
  CHECK(self.indices(0, 0) == 42);
  CHECK(self.squared_distances(0, 0) == Scalar(0));
  const baypr::cuda::KnnIndex<Scalar> index(ctx, bank);
  CHECK(contains(message_of([&] { (void)index.search(ctx, bank, 0); }),
                 "baypr::cuda::KnnIndex::search: argument 'k' must be in [1, min(64"));
  CHECK(contains(message_of([&] { (void)index.search(ctx, bank, 65); }), "got 65"));
  CHECK(contains(message_of([&] { (void)index.search(ctx, gaussian<Scalar>(2, 4, rng), 1); }),
                 "argument 'queries'"));
  Matrix<Scalar> bad = bank;
  bad(7, 1) = std::numeric_limits<Scalar>::infinity();
  CHECK(contains(message_of([&] { baypr::cuda::KnnIndex<Scalar> b(ctx, bad); }),
                 "baypr::cuda::KnnIndex::KnnIndex: argument 'bank' must be finite"));
}

TEST_CASE("the device greedy coreset chooses what greedy_coreset chooses", "[device]") {
  baypr::cuda::Context ctx;
  std::mt19937_64 rng(9);
  for (const Index d : {Index{16}, Index{200}}) {  // 200 > projection_dim: projected
    const Matrix<double> rows = gaussian<double>(3000, d, rng);
    baypr::CoresetOptions options;
    options.ratio = 0.05;
    options.seed = 11;
    INFO("d = " << d);
    CHECK(baypr::cuda::greedy_coreset(ctx, rows, options) == baypr::greedy_coreset(rows, options));
  }
  const Matrix<float> rows = gaussian<float>(500, 8, rng);
  baypr::CoresetOptions all;
  all.ratio = 1.0;
  CHECK(baypr::cuda::greedy_coreset(ctx, rows, all).size() == 500);
  baypr::CoresetOptions too_many;
  too_many.count = 501;
  CHECK(contains(message_of([&] { (void)baypr::cuda::greedy_coreset(ctx, rows, too_many); }),
                 "baypr::cuda::greedy_coreset: argument 'options.count'"));
}

TEMPLATE_TEST_CASE("batched Cholesky (own kernel, cuSOLVER) equals Eigen's LLT", "[device]", float,
                   double) {
  using Scalar = TestType;
  baypr::cuda::Context ctx;
  std::mt19937_64 rng(13);
  for (const Index d : {Index{1}, Index{4}, Index{16}, Index{64}}) {
    std::vector<Matrix<Scalar>> batch;
    for (int b = 0; b < 300; ++b) batch.push_back(random_spd<Scalar>(d, rng));
    for (const auto method :
         {baypr::cuda::CholeskyMethod::interleaved, baypr::cuda::CholeskyMethod::cusolver}) {
      const auto got =
          baypr::cuda::cholesky_batched(ctx, std::span<const Matrix<Scalar>>(batch), method);
      REQUIRE(got.factors.size() == batch.size());
      double worst = 0, worst_logdet = 0;
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const Matrix<Scalar> L = Eigen::LLT<Matrix<Scalar>>(batch[b]).matrixL();
        worst = std::max(worst, baypr::test::max_relative_error(got.factors[b], L));
        worst_logdet = std::max(
            worst_logdet, baypr::test::relative_error(
                              static_cast<double>(got.log_determinants(static_cast<Index>(b))),
                              2.0 * static_cast<double>(L.diagonal().array().log().sum())));
      }
      INFO("d = " << d << ", method " << static_cast<int>(method));
      CHECK(worst <= tolerance<Scalar>() * 10);
      CHECK(worst_logdet <= tolerance<Scalar>() * 10);
    }
    // One indefinite matrix: named by its index, whichever method.
    batch[7](0, 0) = -1;
    for (const auto method :
         {baypr::cuda::CholeskyMethod::interleaved, baypr::cuda::CholeskyMethod::cusolver}) {
      CHECK(contains(message_of([&] {
                       (void)baypr::cuda::cholesky_batched(
                           ctx, std::span<const Matrix<Scalar>>(batch), method);
                     }),
                     "baypr::cuda::cholesky_batched: matrix 7 of the batch is not positive "
                     "definite (pivot 0)"));
    }
  }
  std::vector<Matrix<Scalar>> mixed{random_spd<Scalar>(3, rng), random_spd<Scalar>(4, rng)};
  CHECK(contains(message_of([&] {
                   (void)baypr::cuda::cholesky_batched(ctx, std::span<const Matrix<Scalar>>(mixed));
                 }),
                 "argument 'matrices[1]'"));
}

TEMPLATE_TEST_CASE("per-position Student-t scores equal each model's log_pdf", "[device]", float,
                   double) {
  using Scalar = TestType;
  baypr::cuda::Context ctx;
  std::mt19937_64 rng(17);
  const Index d = 32, batch = 784;  // a 28 x 28 grid
  std::vector<baypr::StudentT<Scalar>> models;
  for (Index b = 0; b < batch; ++b) models.push_back(random_student_t<Scalar>(d, rng));
  const Matrix<Scalar> points = gaussian<Scalar>(batch, d, rng);
  const auto got = baypr::cuda::student_t_batch_log_pdf(
      ctx, std::span<const baypr::StudentT<Scalar>>(models), points);
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> want(batch);
  for (Index b = 0; b < batch; ++b) {
    want(b) = models[static_cast<std::size_t>(b)].log_pdf(points.row(b).transpose().eval());
  }
  CHECK(baypr::test::max_relative_error(got, want) <= tolerance<Scalar>());
  CHECK(contains(message_of([&] {
                   (void)baypr::cuda::student_t_batch_log_pdf(
                       ctx, std::span<const baypr::StudentT<Scalar>>(models),
                       gaussian<Scalar>(batch - 1, d, rng));
                 }),
                 "baypr::cuda::student_t_batch_log_pdf: argument 'points'"));
}
