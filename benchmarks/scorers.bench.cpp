// Bayesian scoring vs PatchCore scoring on the same embeddings: fit time, query rate and model
// memory, measured in one binary and run.
//
//   scorers/<method>/fit/N:<n>/d:<d>     fit on n support rows (patches)
//   scorers/<method>/score/N:<n>/d:<d>   score 4096 query rows; counter queries/s
// Counter model_MiB: the memory the fitted model keeps, counted from what it stores (Bayesian:
// five d x d matrices, independent of n; PatchCore: the coreset bank, 10% of n rows, and norms).
// A ratio summary (benchmarks/summary_reporter.hpp) follows the table: per shape, Bayesian
// queries/s over PatchCore queries/s, and Bayesian model MiB over PatchCore model MiB.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <random>
#include <string>
#include <vector>

#include "baypr/score/bayesian.hpp"
#include "baypr/score/patchcore.hpp"
#include "summary_reporter.hpp"

namespace {

using Index = Eigen::Index;
constexpr Index queries = 4096;

Eigen::MatrixXd rows(Index n, Index d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  return Eigen::MatrixXd::NullaryExpr(n, d, [&] { return normal(rng); });
}

double mib(double bytes) {
  return bytes / (1024.0 * 1024.0);
}

double model_bytes(const baypr::BayesianScorer& s) {
  const auto d = static_cast<double>(s.dim());
  // Dense path: prior Psi0 and its factor, posterior scatter S and the factor of Psi_n, the
  // predictive's factor of Sigma (5 d x d), plus a few vectors.
  return 8.0 * (5.0 * d * d + 4.0 * d);
}

double model_bytes(const baypr::PatchCoreScorer<double>& s, Index n, Index d, double ratio) {
  (void)s;
  const double bank = std::max(1.0, std::floor(ratio * static_cast<double>(n)));
  return 8.0 * bank * (static_cast<double>(d) + 1.0);  // bank rows and their squared norms
}

void bayes_fit(benchmark::State& state, Index n, Index d) {
  const Eigen::MatrixXd S = rows(n, d, 1);
  baypr::BayesianScorer scorer;
  for (auto _ : state) {
    scorer.fit(S);
    benchmark::ClobberMemory();
  }
  state.counters["model_MiB"] = mib(model_bytes(scorer));
}

void bayes_score(benchmark::State& state, Index n, Index d) {
  const Eigen::MatrixXd S = rows(n, d, 1), Q = rows(queries, d, 2);
  baypr::BayesianScorer scorer;
  scorer.fit(S);
  for (auto _ : state) {
    Eigen::VectorXd s = scorer.score(Q);
    benchmark::DoNotOptimize(s.data());
  }
  state.counters["queries"] = benchmark::Counter(static_cast<double>(queries),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["model_MiB"] = mib(model_bytes(scorer));
}

void patchcore_fit(benchmark::State& state, Index n, Index d) {
  const Eigen::MatrixXd S = rows(n, d, 1);
  baypr::PatchCoreScorer<double> scorer;
  for (auto _ : state) {
    scorer.fit(S);
    benchmark::ClobberMemory();
  }
  state.counters["model_MiB"] = mib(model_bytes(scorer, n, d, 0.1));
}

void patchcore_score(benchmark::State& state, Index n, Index d) {
  const Eigen::MatrixXd S = rows(n, d, 1), Q = rows(queries, d, 2);
  baypr::PatchCoreScorer<double> scorer;
  scorer.fit(S);
  for (auto _ : state) {
    auto s = scorer.score(Q);
    benchmark::DoNotOptimize(s.data());
  }
  state.counters["queries"] = benchmark::Counter(static_cast<double>(queries),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["model_MiB"] = mib(model_bytes(scorer, n, d, 0.1));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string format = baypr_bench::output_format(argc, argv);
  std::vector<baypr_bench::Ratio> ratios;
  for (const Index n : {2000, 10000}) {
    for (const Index d : {128, 512}) {
      const std::string tail = "/N:" + std::to_string(n) + "/d:" + std::to_string(d);
      const std::string label = "N:" + std::to_string(n) + " d:" + std::to_string(d);
      benchmark::RegisterBenchmark(("scorers/bayes/fit" + tail).c_str(), [n,
                                                                          d](benchmark::State& s) {
        bayes_fit(s, n, d);
      })->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("scorers/bayes/score" + tail).c_str(),
                                   [n, d](benchmark::State& s) { bayes_score(s, n, d); })
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("scorers/patchcore/fit" + tail).c_str(),
                                   [n, d](benchmark::State& s) { patchcore_fit(s, n, d); })
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("scorers/patchcore/score" + tail).c_str(),
                                   [n, d](benchmark::State& s) { patchcore_score(s, n, d); })
          ->Unit(benchmark::kMillisecond);
      ratios.push_back({"score: Bayesian queries/s / PatchCore queries/s", label,
                        "scorers/bayes/score" + tail, "scorers/patchcore/score" + tail, "queries"});
      ratios.push_back({"model memory: Bayesian MiB / PatchCore MiB", label,
                        "scorers/bayes/fit" + tail, "scorers/patchcore/fit" + tail, "model_MiB"});
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  baypr_bench::run_with_summary("scorers.bench", format, {std::move(ratios), {}, {28, 10}});
  benchmark::Shutdown();
  return 0;
}
