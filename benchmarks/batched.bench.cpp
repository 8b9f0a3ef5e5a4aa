// benchmarks/batched.bench.cpp: the batched ("SIMD across matrices") Cholesky path against a loop
// of Eigen LLT over the same matrices, in the same binary and run (timing claims are ratios).
//
//   eigen_loop/<T>/d:<d>      for each of 1024 matrices (Eigen::Matrix dynamic): LLT, one forward
//                             solve L z = b, log|A| = 2 sum log L_jj
//   batched/<T>/d:<d>         CholeskyBatch of the same 1024 matrices (interleaved), solve_lower,
//                             log_determinants
//   batched_packing/<T>/d:<d> the same, plus packing the 1024 Eigen matrices into the batch and the
//                             right-hand sides in, and the solutions out (what a caller with
//                             Eigen matrices pays)
//   batched_scalar/double/d:<d>  the same kernel with one scalar lane (simd::ScalarLanes)
//   student_t/<T>/d:<d>       StudentTBatch::log_pdf, one point per model, against a loop of
//                             StudentT::log_pdf over the same models
//   per_position/grid:28x28/d:32  PerPositionScorer::score of 16 images (784 positions), GFLOPS
//                             of its triangular solves against gemm/double/n:512 (Eigen GEMM)
//
// Counters: matrices/s (points/s for student_t). One thread. The lane width is xsimd's for the
// compile flags: configure with the `native` preset (-march=native) for AVX2 / AVX-512 figures;
// the summary's first note names the lanes in use.
#include <benchmark/benchmark.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "baypr/core/batched_cholesky.hpp"
#include "baypr/score/per_position.hpp"
#include "baypr/stats/batched_student_t.hpp"
#include "baypr/stats/student_t.hpp"
#include "summary_reporter.hpp"

namespace {

using benchmark::Counter;
using Eigen::Index;

constexpr Index kBatch = 1024;

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using Vec = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

template <class Scalar>
const char* type_name() {
  return sizeof(Scalar) == sizeof(float) ? "float" : "double";
}

template <class Scalar>
struct Problem {
  std::vector<Mat<Scalar>> matrices;
  std::vector<Vec<Scalar>> rhs;
};

template <class Scalar>
Problem<Scalar> make_problem(Index d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Problem<Scalar> p;
  for (Index k = 0; k < kBatch; ++k) {
    const Eigen::MatrixXd B = Eigen::MatrixXd::NullaryExpr(d, d, [&] { return normal(rng); });
    const Eigen::MatrixXd A =
        B * B.transpose() / static_cast<double>(d) + Eigen::MatrixXd::Identity(d, d);
    p.matrices.push_back(A.template cast<Scalar>());
    p.rhs.push_back(
        Eigen::VectorXd::NullaryExpr(d, [&] { return normal(rng); }).template cast<Scalar>());
  }
  return p;
}

Counter per_matrix() {
  return Counter(static_cast<double>(kBatch), Counter::kIsIterationInvariantRate);
}

template <class Scalar>
void bm_eigen_loop(benchmark::State& state, Index d) {
  const Problem<Scalar> p = make_problem<Scalar>(d, 1);
  std::vector<Vec<Scalar>> z(static_cast<std::size_t>(kBatch));
  std::vector<Scalar> log_det(static_cast<std::size_t>(kBatch));
  for (auto _ : state) {
    for (std::size_t k = 0; k < p.matrices.size(); ++k) {
      const Eigen::LLT<Mat<Scalar>> llt(p.matrices[k]);
      z[k] = llt.matrixL().solve(p.rhs[k]);
      log_det[k] = Scalar(2) * llt.matrixLLT().diagonal().array().log().sum();
    }
    benchmark::DoNotOptimize(z.data());
    benchmark::DoNotOptimize(log_det.data());
    benchmark::ClobberMemory();
  }
  state.counters["matrices"] = per_matrix();
}

template <class Scalar, class Lanes>
void bm_batched(benchmark::State& state, Index d, bool packing) {
  using Batch = baypr::batched::SymmetricBatch<Scalar, Lanes>;
  using Vectors = baypr::batched::VectorBatch<Scalar, Lanes>;
  const Problem<Scalar> p = make_problem<Scalar>(d, 1);
  Batch a(kBatch, d);
  Vectors b(kBatch, d);
  for (Index k = 0; k < kBatch; ++k) {
    a.set(k, p.matrices[static_cast<std::size_t>(k)]);
    b.set(k, p.rhs[static_cast<std::size_t>(k)]);
  }
  std::vector<Vec<Scalar>> out(static_cast<std::size_t>(kBatch));
  for (auto _ : state) {
    if (packing) {
      for (Index k = 0; k < kBatch; ++k) {
        a.set(k, p.matrices[static_cast<std::size_t>(k)]);
        b.set(k, p.rhs[static_cast<std::size_t>(k)]);
      }
    }
    const baypr::batched::CholeskyBatch<Scalar, Lanes> chol(a);
    const Vectors z = chol.solve_lower(b);
    const Vec<Scalar> log_det = chol.log_determinants();
    if (packing) {
      for (Index k = 0; k < kBatch; ++k) out[static_cast<std::size_t>(k)] = z.get(k);
    }
    benchmark::DoNotOptimize(z.element(0, 0));
    benchmark::DoNotOptimize(log_det.data());
    benchmark::ClobberMemory();
  }
  state.counters["matrices"] = per_matrix();
}

template <class Scalar>
void bm_student_t(benchmark::State& state, Index d, bool batched) {
  using Lanes = baypr::simd::DefaultLanes<Scalar>;
  const Problem<Scalar> p = make_problem<Scalar>(d, 2);
  baypr::batched::SymmetricBatch<Scalar, Lanes> scale(kBatch, d);
  baypr::batched::VectorBatch<Scalar, Lanes> mu(kBatch, d);
  baypr::batched::VectorBatch<Scalar, Lanes> x(kBatch, d);
  std::vector<baypr::StudentT<Scalar>> models;
  const Vec<Scalar> dof = Vec<Scalar>::Constant(kBatch, Scalar(5));
  for (Index k = 0; k < kBatch; ++k) {
    const auto at = static_cast<std::size_t>(k);
    scale.set(k, p.matrices[at]);
    mu.set(k, Vec<Scalar>::Zero(d));
    x.set(k, p.rhs[at]);
    models.emplace_back(Vec<Scalar>::Zero(d), p.matrices[at], Scalar(5));
  }
  const baypr::batched::StudentTBatch<Scalar, Lanes> t(mu, scale, dof);
  Vec<Scalar> out(kBatch);
  for (auto _ : state) {
    if (batched) {
      out = t.log_pdf(x);
    } else {
      for (Index k = 0; k < kBatch; ++k) {
        out(k) = models[static_cast<std::size_t>(k)].log_pdf(p.rhs[static_cast<std::size_t>(k)]);
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["points"] = per_matrix();
}

// Per-position scoring of aligned images, the workload the batched path is for: a 28 x 28 grid
// (784 positions) of d = 32 patch embeddings, PerPositionScorer::score (nll) of 16 query images.
// Flops counted: the forward substitution, d^2 per position and image (d (d + 1) / 2 fused
// multiply-adds), the rest (packing, differences, log1p) taken as overhead.
constexpr Index kGrid = 28, kGridDim = 32, kGridQueries = 16;

void bm_per_position(benchmark::State& state) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  const Index P = kGrid * kGrid;
  const Eigen::MatrixXd support =
      Eigen::MatrixXd::NullaryExpr(8 * P, kGridDim, [&] { return normal(rng); });
  const Eigen::MatrixXd queries =
      Eigen::MatrixXd::NullaryExpr(kGridQueries * P, kGridDim, [&] { return normal(rng); });
  baypr::PerPositionScorerOptions o;
  o.grid_rows = kGrid;
  o.grid_cols = kGrid;
  o.score = baypr::BayesScore::nll;
  o.prior = baypr::NiwPrior<double>::isotropic(kGridDim, 0.1, kGridDim + 2.0, 1.0);
  baypr::PerPositionScorer scorer(o);
  scorer.fit(support);
  Eigen::VectorXd out;
  for (auto _ : state) {
    out = scorer.score(queries);
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = static_cast<double>(kGridQueries * P * kGridDim * kGridDim);
  state.counters["GFLOPS"] = Counter(flops * 1e-9, Counter::kIsIterationInvariantRate);
}

// The reference: Eigen's double GEMM rate on 512 x 512 matrices in the same run (what one core
// attains with FMA at this build's vector width).
void bm_gemm(benchmark::State& state) {
  const Index n = 512;
  const Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, n), b = Eigen::MatrixXd::Random(n, n);
  Eigen::MatrixXd c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOPS"] =
      Counter(2.0 * static_cast<double>(n * n * n) * 1e-9, Counter::kIsIterationInvariantRate);
}

using baypr_bench::Ratio;

std::string arg_d(Index d) {
  return "d:" + std::to_string(d);
}

template <class Scalar>
void register_type(std::vector<Ratio>& ratios) {
  using Lanes = baypr::simd::DefaultLanes<Scalar>;
  const std::string t = type_name<Scalar>();
  for (const Index d : {4, 8, 16, 32, 64}) {
    const std::string loop = "eigen_loop/" + t + "/" + arg_d(d);
    const std::string fast = "batched/" + t + "/" + arg_d(d);
    const std::string packed = "batched_packing/" + t + "/" + arg_d(d);
    benchmark::RegisterBenchmark(loop.c_str(), [d](benchmark::State& s) {
      bm_eigen_loop<Scalar>(s, d);
    })->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(fast.c_str(), [d](benchmark::State& s) {
      bm_batched<Scalar, Lanes>(s, d, false);
    })->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(packed.c_str(), [d](benchmark::State& s) {
      bm_batched<Scalar, Lanes>(s, d, true);
    })->Unit(benchmark::kMicrosecond);
    // The floor: >= 4x at d <= 16, 3x at 32, 2x at 64 (double and float alike).
    const double target = d <= 16 ? 4.0 : (d == 32 ? 3.0 : 2.0);
    ratios.push_back({"Cholesky + solve + log-det: batched / Eigen LLT loop (speed)",
                      t + " " + arg_d(d), fast, loop, "matrices", target, true});
    ratios.push_back({"... including packing from and to Eigen matrices", t + " " + arg_d(d),
                      packed, loop, "matrices", 0.0, true});
    if constexpr (std::is_same_v<Scalar, double>) {
      const std::string scalar = "batched_scalar/" + t + "/" + arg_d(d);
      benchmark::RegisterBenchmark(scalar.c_str(), [d](benchmark::State& s) {
        bm_batched<Scalar, baypr::simd::ScalarLanes<Scalar>>(s, d, false);
      })->Unit(benchmark::kMicrosecond);
      ratios.push_back({"one scalar lane / Eigen LLT loop (speed)", t + " " + arg_d(d), scalar,
                        loop, "matrices", 0.0, true});
    }
  }
  for (const Index d : {8, 32}) {
    const std::string batched = "student_t/batched/" + t + "/" + arg_d(d);
    const std::string loop = "student_t/loop/" + t + "/" + arg_d(d);
    benchmark::RegisterBenchmark(batched.c_str(), [d](benchmark::State& s) {
      bm_student_t<Scalar>(s, d, true);
    })->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(loop.c_str(), [d](benchmark::State& s) {
      bm_student_t<Scalar>(s, d, false);
    })->Unit(benchmark::kMicrosecond);
    ratios.push_back({"Student-t log_pdf, one point per model: batched / StudentT loop (speed)",
                      t + " " + arg_d(d), batched, loop, "points", 0.0, true});
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string format = baypr_bench::output_format(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::string lanes =
      "double lanes " + std::to_string(baypr::simd::DefaultLanes<double>::width) +
      ", float lanes " + std::to_string(baypr::simd::DefaultLanes<float>::width);
  benchmark::AddCustomContext("baypr_lanes", lanes);
  benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
  std::vector<Ratio> ratios;
  register_type<double>(ratios);
  register_type<float>(ratios);
  benchmark::RegisterBenchmark("per_position/grid:28x28/d:32", bm_per_position)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("gemm/double/n:512", bm_gemm)->Unit(benchmark::kMillisecond);
  ratios.push_back({"per-position scoring GFLOPS / Eigen GEMM GFLOPS (flop-rate bound)",
                    "28 x 28 grid, d = 32, 16 images", "per_position/grid:28x28/d:32",
                    "gemm/double/n:512", "GFLOPS", 0.5, true});
  baypr_bench::run_with_summary("batched.bench", format,
                                {std::move(ratios), {"lanes: " + lanes}, {40, 12}});
  benchmark::Shutdown();
  return 0;
}
