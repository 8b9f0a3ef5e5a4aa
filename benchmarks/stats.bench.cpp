// benchmarks/stats.bench.cpp: rates of baypr's statistics core, each next to a reference measured
// in the same binary and run, and a ratio summary printed at the end (timing claims are ratios).
//
//   log_pdf/<T>/d:<d>                 batched StudentT::log_pdf, N = 16384 rows, dense scale
//   gemm/<T>/d:<d>                    reference: Eigen GEMM (N x d) * (d x d), same shapes
//   fit/<path>/n:<n>/d:<d>            NiwPrior::posterior(Z, path) + predictive(), isotropic prior
//   query/<path>/n:<n>/d:<d>          log_pdf of 4096 queries under that predictive
//   update/add_remove/n:600/d:512     add() + remove() of one sample (dense rank-one up/downdate)
//   update/refit/n:601/d:512          reference: prior.posterior(Z) from scratch
//   grad/vjp/<path>/d:<d>/n:<n>/m:16  log_predictive_vjp: value and every gradient
//   grad/value/<path>/d:<d>/n:<n>/m:16  reference: posterior + predictive + log_pdf, value only
//   grad/vjp_data/<path>/d:<d>/n:<n>/m:16  the same VJP without the d x d Psi0 gradient
//   episode/<path>/d:<d>              episode head: K = 5 support, 16 queries, log_predictive_vjp
//
// Counters: GFLOPS (N d^2 flops for log_pdf's triangular solve, 2 N d^2 for GEMM), queries/s,
// updates/s, fits/s, episodes/s. Eigen runs single-threaded (no OpenMP). Sections 2-5 use double.
// Filter sections with --benchmark_filter, e.g. '^(log_pdf|gemm)/'. The summary is printed to
// stdout with the console format and to stderr with --benchmark_format=json; each figure is the
// best (lowest CPU time per iteration) over repetitions. See scripts/bench.
#include <benchmark/benchmark.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "baypr/stats/niw.hpp"
#include "baypr/stats/predictive_vjp.hpp"
#include "baypr/stats/student_t.hpp"
#include "summary_reporter.hpp"

namespace {

using benchmark::Counter;
using Eigen::Index;

template <class Scalar>
using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using Vec = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

constexpr Index kLogPdfRows = 16384;  // section 1 batch
constexpr Index kQueryRows = 4096;    // section 2 query batch
constexpr Index kGradQueries = 16;    // sections 4 and 5
constexpr Index kEpisodeSupport = 5;

template <class Scalar>
const char* type_name() {
  return sizeof(Scalar) == sizeof(float) ? "float" : "double";
}

const char* path_name(baypr::Path p) {
  return p == baypr::Path::dense ? "dense" : "low_rank";
}

// Seeded standard-normal matrix: reproducible inputs, generated outside the timed loops.
template <class Scalar>
Rows<Scalar> random_normal(Index rows, Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Rows<Scalar> m(rows, cols);
  for (Index j = 0; j < cols; ++j) {
    for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<Scalar>(normal(rng));
  }
  return m;
}

template <class Scalar>
Counter rate(double per_iteration) {
  return Counter(per_iteration, Counter::kIsIterationInvariantRate);
}

// A dense Student-t with a well-conditioned random scale Sigma = A A^T / d + I.
template <class Scalar>
baypr::StudentT<Scalar> random_student_t(Index d, std::uint64_t seed) {
  const Rows<Scalar> a = random_normal<Scalar>(d, d, seed);
  Rows<Scalar> sigma = a * a.transpose() / static_cast<Scalar>(d);
  sigma.diagonal().array() += Scalar(1);
  const Rows<Scalar> chol = Eigen::LLT<Rows<Scalar>>(sigma).matrixL();
  const Vec<Scalar> mu = Scalar(0.1) * random_normal<Scalar>(d, 1, seed + 1);
  return baypr::StudentT<Scalar>::from_cholesky(mu, chol, static_cast<Scalar>(d + 5));
}

baypr::NiwPrior<double> isotropic_prior(Index d) {
  return baypr::NiwPrior<double>::isotropic(d, 0.01, static_cast<double>(d + 2), 1.0);
}

// ---- 1. Batched log_pdf vs GEMM of the same shapes ---------------------------------------------

template <class Scalar>
void bm_log_pdf(benchmark::State& state, Index d) {
  const auto t = random_student_t<Scalar>(d, 101);
  const Rows<Scalar> X = random_normal<Scalar>(kLogPdfRows, d, 102);
  for (auto _ : state) {
    auto lp = t.log_pdf(X);
    benchmark::DoNotOptimize(lp.data());
    benchmark::ClobberMemory();
  }
  const double dd = static_cast<double>(d);
  state.counters["GFLOPS"] = rate<Scalar>(static_cast<double>(kLogPdfRows) * dd * dd * 1e-9);
}

template <class Scalar>
void bm_gemm(benchmark::State& state, Index d) {
  const Rows<Scalar> X = random_normal<Scalar>(kLogPdfRows, d, 102);
  const Rows<Scalar> B = random_normal<Scalar>(d, d, 103);
  Rows<Scalar> C(kLogPdfRows, d);
  for (auto _ : state) {
    C.noalias() = X * B;
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  const double dd = static_cast<double>(d);
  state.counters["GFLOPS"] = rate<Scalar>(2.0 * static_cast<double>(kLogPdfRows) * dd * dd * 1e-9);
}

// ---- 2. Posterior fit + predictive, dense vs low rank; per-query rate ---------------------------

void bm_fit(benchmark::State& state, baypr::Path path, Index n, Index d) {
  const auto prior = isotropic_prior(d);
  const Rows<double> Z = random_normal<double>(n, d, 201);
  for (auto _ : state) {
    const auto post = prior.posterior(Z, path);
    auto t = post.predictive();
    benchmark::DoNotOptimize(t);
    benchmark::ClobberMemory();
  }
  state.counters["fits"] = rate<double>(1.0);
}

void bm_query(benchmark::State& state, baypr::Path path, Index n, Index d) {
  const auto prior = isotropic_prior(d);
  const Rows<double> Z = random_normal<double>(n, d, 201);
  const auto t = prior.posterior(Z, path).predictive();
  const Rows<double> Q = random_normal<double>(kQueryRows, d, 202);
  for (auto _ : state) {
    auto lp = t.log_pdf(Q);
    benchmark::DoNotOptimize(lp.data());
    benchmark::ClobberMemory();
  }
  state.counters["queries"] = rate<double>(static_cast<double>(kQueryRows));
}

// ---- 3. add + remove vs refit (dense path, n > d) -----------------------------------------------

constexpr Index kUpdateDim = 512;
constexpr Index kUpdateRows = 600;

void bm_add_remove(benchmark::State& state) {
  const auto prior = isotropic_prior(kUpdateDim);
  const Rows<double> Z = random_normal<double>(kUpdateRows, kUpdateDim, 301);
  const Eigen::RowVectorXd x = random_normal<double>(1, kUpdateDim, 302);
  auto post = prior.posterior(Z, baypr::Path::dense);
  for (auto _ : state) {
    post.add(x);
    post.remove(x);
    benchmark::DoNotOptimize(post);
    benchmark::ClobberMemory();
  }
  state.counters["updates"] = rate<double>(1.0);
}

void bm_refit(benchmark::State& state) {
  const auto prior = isotropic_prior(kUpdateDim);
  Rows<double> Z(kUpdateRows + 1, kUpdateDim);
  Z.topRows(kUpdateRows) = random_normal<double>(kUpdateRows, kUpdateDim, 301);
  Z.bottomRows(1) = random_normal<double>(1, kUpdateDim, 302);
  for (auto _ : state) {
    auto post = prior.posterior(Z, baypr::Path::dense);
    benchmark::DoNotOptimize(post);
    benchmark::ClobberMemory();
  }
  state.counters["fits"] = rate<double>(1.0);
}

// ---- 4. value + every gradient vs value alone ---------------------------------------------------

struct GradInputs {
  baypr::NiwPrior<double> prior;
  Rows<double> Z;
  Rows<double> Q;
  Vec<double> w;
};

GradInputs grad_inputs(Index d, Index n, Index m, std::uint64_t seed) {
  return {isotropic_prior(d), random_normal<double>(n, d, seed),
          random_normal<double>(m, d, seed + 1),
          Vec<double>::Constant(m, -1.0 / static_cast<double>(m))};
}

void bm_vjp(benchmark::State& state, baypr::Path path, Index d, Index n,
            baypr::PriorScatterGradient scatter = baypr::PriorScatterGradient::compute) {
  const GradInputs in = grad_inputs(d, n, kGradQueries, 401);
  for (auto _ : state) {
    auto g = baypr::log_predictive_vjp(in.prior, in.Z, in.Q, in.w, path, scatter);
    benchmark::DoNotOptimize(g);
    benchmark::ClobberMemory();
  }
  state.counters["evals"] = rate<double>(1.0);
}

void bm_value(benchmark::State& state, baypr::Path path, Index d, Index n) {
  const GradInputs in = grad_inputs(d, n, kGradQueries, 401);
  for (auto _ : state) {
    const auto post = in.prior.posterior(in.Z, path);
    const auto t = post.predictive();
    double value = in.w.dot(t.log_pdf(in.Q));
    benchmark::DoNotOptimize(value);
    benchmark::ClobberMemory();
  }
  state.counters["evals"] = rate<double>(1.0);
}

// ---- 5. Episode head ----------------------------------------------------------------------------

void bm_episode(benchmark::State& state, baypr::Path path, Index d) {
  const GradInputs in = grad_inputs(d, kEpisodeSupport, kGradQueries, 501);
  for (auto _ : state) {
    // Adaptation needs the support and query gradients only (the prior stays fixed).
    auto g = baypr::log_predictive_vjp(in.prior, in.Z, in.Q, in.w, path,
                                       baypr::PriorScatterGradient::skip);
    benchmark::DoNotOptimize(g.value);
    benchmark::DoNotOptimize(g.d_support.data());
    benchmark::DoNotOptimize(g.d_queries.data());
    benchmark::ClobberMemory();
  }
  state.counters["episodes"] = rate<double>(1.0);
}

// ---- Ratio summary (benchmarks/summary_reporter.hpp) -------------------------------------------

using baypr_bench::Ratio;

std::string name_of(std::initializer_list<std::string> parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "/") + p;
  return s;
}

std::string arg(const char* key, Index value) {
  return std::string(key) + ":" + std::to_string(value);
}

template <class Scalar>
void register_log_pdf(std::vector<Ratio>& ratios) {
  for (const Index d : {16, 64, 128, 512, 1024}) {
    const std::string lp = name_of({"log_pdf", type_name<Scalar>(), arg("d", d)});
    const std::string mm = name_of({"gemm", type_name<Scalar>(), arg("d", d)});
    benchmark::RegisterBenchmark(lp.c_str(), [d](benchmark::State& s) {
      bm_log_pdf<Scalar>(s, d);
    })->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(mm.c_str(), [d](benchmark::State& s) {
      bm_gemm<Scalar>(s, d);
    })->Unit(benchmark::kMillisecond);
    ratios.push_back({"log_pdf GFLOPS / GEMM GFLOPS (N = 16384)",
                      std::string(type_name<Scalar>()) + " " + arg("d", d), lp, mm, "GFLOPS",
                      d >= 128 ? 0.6 : 0.0, true});
  }
}

std::vector<Ratio> register_all() {
  using baypr::Path;
  std::vector<Ratio> ratios;
  register_log_pdf<float>(ratios);
  register_log_pdf<double>(ratios);

  for (const Index d : {128, 512, 1024}) {
    for (const Index n : {1, 5, 10}) {
      std::string fit[2], query[2];
      int k = 0;
      for (const Path p : {Path::dense, Path::low_rank}) {
        fit[k] = name_of({"fit", path_name(p), arg("n", n), arg("d", d)});
        query[k] = name_of({"query", path_name(p), arg("n", n), arg("d", d)});
        benchmark::RegisterBenchmark(fit[k].c_str(), [p, n, d](benchmark::State& s) {
          bm_fit(s, p, n, d);
        })->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(query[k].c_str(), [p, n, d](benchmark::State& s) {
          bm_query(s, p, n, d);
        })->Unit(benchmark::kMillisecond);
        ++k;
      }
      const std::string label = arg("n", n) + " " + arg("d", d);
      ratios.push_back({"fit + predictive: dense time / low-rank time (speedup)", label, fit[0],
                        fit[1], "", (d == 1024 && n == 5) ? 20.0 : 0.0, true});
      ratios.push_back({"log_pdf per query: low-rank queries/s / dense queries/s", label, query[1],
                        query[0], "queries", 0.0, true});
      ratios.push_back(
          {"log_pdf per query: low-rank queries/s", label, query[1], "", "queries", 0.0, true});
    }
  }

  benchmark::RegisterBenchmark("update/add_remove/n:600/d:512", bm_add_remove)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("update/refit/n:601/d:512", bm_refit)->Unit(benchmark::kMicrosecond);
  ratios.push_back({"add()+remove() vs refit, d = 512, n = 600 (dense)",
                    "refit time / (add+remove) time", "update/refit/n:601/d:512",
                    "update/add_remove/n:600/d:512", "", 0.0, true});

  for (const Index d : {64, 256}) {
    for (const Index n : {Index{5}, 2 * d}) {
      for (const Path p : {Path::dense, Path::low_rank}) {
        if (p == Path::low_rank && n + 1 >= d) continue;  // low rank only pays when n + 1 < d
        const std::string tail =
            name_of({path_name(p), arg("d", d), arg("n", n), arg("m", kGradQueries)});
        const std::string vjp = "grad/vjp/" + tail, value = "grad/value/" + tail;
        benchmark::RegisterBenchmark(vjp.c_str(), [p, d, n](benchmark::State& s) {
          bm_vjp(s, p, d, n);
        })->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(value.c_str(), [p, d, n](benchmark::State& s) {
          bm_value(s, p, d, n);
        })->Unit(benchmark::kMicrosecond);
        ratios.push_back(
            {"value + all gradients / value alone (time)", tail, vjp, value, "", 3.0, false});
        // Without the d x d Psi0 gradient (PriorScatterGradient::skip): what adaptation pays.
        const std::string data = "grad/vjp_data/" + tail;
        benchmark::RegisterBenchmark(data.c_str(), [p, d, n](benchmark::State& s) {
          bm_vjp(s, p, d, n, baypr::PriorScatterGradient::skip);
        })->Unit(benchmark::kMicrosecond);
        ratios.push_back({"value + data gradients (no Psi0 gradient) / value alone (time)", tail,
                          data, value, "", 3.0, false});
      }
    }
  }

  for (const Index d : {128, 512}) {
    for (const Path p : {Path::dense, Path::low_rank}) {
      const std::string ep = name_of({"episode", path_name(p), arg("d", d)});
      benchmark::RegisterBenchmark(ep.c_str(), [p, d](benchmark::State& s) {
        bm_episode(s, p, d);
      })->Unit(benchmark::kMicrosecond);
      ratios.push_back({"episode head (K = 5, 16 queries, value + gradients): episodes/s",
                        std::string(path_name(p)) + " " + arg("d", d), ep, "", "episodes", 0.0,
                        true});
    }
    ratios.push_back({"episode head: low-rank speedup over dense", arg("d", d),
                      name_of({"episode", "dense", arg("d", d)}),
                      name_of({"episode", "low_rank", arg("d", d)}), "", 0.0, true});
  }
  return ratios;
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);  // a no-op without OpenMP, which the benchmarks do not enable
  const std::string format = baypr_bench::output_format(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
  benchmark::AddCustomContext("eigen_threads", std::to_string(Eigen::nbThreads()));
  baypr_bench::run_with_summary("stats.bench", format, {register_all(), {}, {34, 12}});
  benchmark::Shutdown();
  return 0;
}
