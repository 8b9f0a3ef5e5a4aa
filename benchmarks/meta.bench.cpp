// benchmarks/meta.bench.cpp: meta-training step throughput (episodes/s) of baypr::meta::meta_step
// for the MLP and conv embeddings, first and exact second order, one thread.
//
//   BM_MetaStep/<emb>/<order>          Path::automatic (low-rank NIW path here: d = 64 > K + 1)
//   BM_MetaStep/<emb>/<order>/dense    Path::dense, the same algorithm as the PyTorch peer
//   BM_MetaStepFresh/<emb>/<order>/dense   the same through the free meta_step, which allocates
//                                          its buffers on every call (the others reuse a
//                                          MetaStepper's, as a training loop would)
//   BM_MetaStepGenerative/<emb>/<order>/dense   the paper's generative outer loss instead of the
//                                          default discriminative one (their ratio: what the
//                                          new objective costs)
//
// <emb>: mlp  = Mlp::paper_head(784, 64) (Linear-ReLU-LayerNorm) on 784-pixel rows;
//        conv = Conv{28 x 28, channels {1, 16, 32}, strides {2, 2}, output 64}.
// <order>: first (FOMAML) or second (exact second order). Episode: K = 5 support rows, 12 normal +
// 4 anomalous queries, uniform [0, 1) inputs; prior NiwPrior::method_default(64) (mu0 0, kappa0
// 0.01, nu0 d + 2, Psi0 I); anomaly model t(0, 100 I, dof 2); one inner SGD step of 5e-4; the
// default outer objective (discriminative, calibration rho = beta = 0).
// Counter items_per_second = episodes/s. The summary gives automatic / dense per case.
//
// The peer is benchmarks/meta_step_peer.py (PyTorch, float64, one thread): the same step with
// dense Cholesky. `meta.bench --export DIR` writes, instead of benchmarking, each embedding's
// parameters, episode and baypr's losses and meta-gradients (both orders, both paths) as .npy
// files, which `meta_step_peer.py --check DIR` compares with PyTorch's.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "baypr/io/npy.hpp"
#include "baypr/meta/adapt.hpp"
#include "baypr/meta/conv.hpp"
#include "baypr/meta/mlp.hpp"
#include "summary_reporter.hpp"

namespace {

using Index = Eigen::Index;
namespace meta = baypr::meta;

constexpr Index side = 28, pixels = side * side, dim = 64;
constexpr Index support_rows = 5, normal_queries = 12, anomalous_queries = 4;

Eigen::MatrixXd uniform_rows(Index n, Index cols, std::mt19937_64& rng) {
  return Eigen::MatrixXd::NullaryExpr(n, cols,
                                      [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; });
}

meta::MetaEpisode episode(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  meta::MetaEpisode e;
  e.support = uniform_rows(support_rows, pixels, rng);
  e.queries = uniform_rows(normal_queries + anomalous_queries, pixels, rng);
  e.labels.setOnes(normal_queries + anomalous_queries);
  e.labels.head(normal_queries).setZero();
  return e;
}

meta::Mlp make_mlp() {
  return meta::Mlp::paper_head(pixels, dim);
}
meta::Conv make_conv() {
  return meta::Conv(meta::ConvOptions{side, side, {1, 16, 32}, {2, 2}, dim});
}

// One inner step of 5e-4, the authors' anomaly model, the given order, path and objective.
meta::MetaOptions options(meta::MetaGradient order, baypr::Path path,
                          meta::Objective objective = meta::Objective::discriminative) {
  meta::MetaOptions o;
  o.adapt.inner_steps = 1;
  o.adapt.inner_step_size = 5e-4;
  o.adapt.path = path;
  o.order = order;
  o.outer.objective = objective;
  return o;
}

template <class E>
void meta_step_bench(benchmark::State& state, const E& embedding, meta::MetaGradient order,
                     baypr::Path path, bool fresh, meta::Objective objective) {
  const Eigen::VectorXd theta = embedding.initial_parameters(7);
  const meta::MetaEpisode e = episode(11);
  const auto prior = baypr::NiwPrior<double>::method_default(dim);
  const meta::MetaOptions o = options(order, path, objective);
  meta::MetaStepper<E> stepper(embedding);
  meta::MetaStep s;
  for (auto _ : state) {
    if (fresh) {
      s = meta::meta_step(embedding, theta, e, prior, o);
    } else {
      stepper.step(theta, e, prior, o, s);
    }
    benchmark::DoNotOptimize(s.gradient.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["params"] = static_cast<double>(embedding.parameter_count());
}

Eigen::MatrixXd scalar(double v) {
  return Eigen::MatrixXd::Constant(1, 1, v);
}

// Parameters, episode, and baypr's step for each order and path, for meta_step_peer.py --check.
template <class E>
void export_case(const std::filesystem::path& dir, const std::string& name, const E& embedding) {
  const Eigen::VectorXd theta = embedding.initial_parameters(7);
  const meta::MetaEpisode e = episode(11);
  const auto prior = baypr::NiwPrior<double>::method_default(dim);
  const std::filesystem::path out = dir / name;
  std::filesystem::create_directories(out);
  baypr::write_npy(out / "theta.npy", theta);
  baypr::write_npy(out / "support.npy", e.support);
  baypr::write_npy(out / "queries.npy", e.queries);
  baypr::write_npy(out / "labels.npy", Eigen::MatrixXd(e.labels.cast<double>()));
  for (const auto& [order, order_name] : {std::pair{meta::MetaGradient::first_order, "first"},
                                          std::pair{meta::MetaGradient::second_order, "second"}}) {
    for (const auto& [path, path_name] :
         {std::pair{baypr::Path::automatic, "automatic"}, std::pair{baypr::Path::dense, "dense"}}) {
      const meta::MetaStep s = meta::meta_step(embedding, theta, e, prior, options(order, path));
      const std::string tag = std::string(order_name) + "_" + path_name;
      baypr::write_npy(out / ("outer_loss_" + tag + ".npy"), scalar(s.outer_loss));
      baypr::write_npy(out / ("inner_loss_" + tag + ".npy"), scalar(s.inner_loss));
      baypr::write_npy(out / ("gradient_" + tag + ".npy"), s.gradient);
    }
  }
  std::cout << "meta.bench: wrote " << out.string() << " (" << embedding.parameter_count()
            << " parameters)\n";
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--export") == 0) {
      const std::filesystem::path dir(argv[i + 1]);
      export_case(dir, "mlp", make_mlp());
      export_case(dir, "conv", make_conv());
      return 0;
    }
  }
  const std::string format = baypr_bench::output_format(argc, argv);
  std::vector<baypr_bench::Ratio> ratios;
  // Built once and captured by value: constructing an embedding is not part of a step.
  const meta::Mlp mlp = make_mlp();
  const meta::Conv conv = make_conv();
  for (const auto& [order, order_name] : {std::pair{meta::MetaGradient::first_order, "first"},
                                          std::pair{meta::MetaGradient::second_order, "second"}}) {
    for (const std::string emb : {"mlp", "conv"}) {
      const std::string base = "BM_MetaStep/" + emb + "/" + order_name;
      const std::string fresh_name = "BM_MetaStepFresh/" + emb + "/" + order_name + "/dense";
      const std::string generative_name =
          "BM_MetaStepGenerative/" + emb + "/" + order_name + "/dense";
      constexpr auto discriminative = meta::Objective::discriminative;
      for (const auto& [name, path, fresh, objective] :
           {std::tuple{base, baypr::Path::automatic, false, discriminative},
            std::tuple{base + "/dense", baypr::Path::dense, false, discriminative},
            std::tuple{fresh_name, baypr::Path::dense, true, discriminative},
            std::tuple{generative_name, baypr::Path::dense, false, meta::Objective::generative}}) {
        const auto o = order;
        const auto p = path;
        const bool f = fresh;
        const auto j = objective;
        if (emb == "mlp") {
          benchmark::RegisterBenchmark(name.c_str(), [mlp, o, p, f, j](benchmark::State& s) {
            meta_step_bench(s, mlp, o, p, f, j);
          })->Unit(benchmark::kMicrosecond);
        } else {
          benchmark::RegisterBenchmark(name.c_str(), [conv, o, p, f, j](benchmark::State& s) {
            meta_step_bench(s, conv, o, p, f, j);
          })->Unit(benchmark::kMicrosecond);
        }
      }
      ratios.push_back({"episodes/s: discriminative / generative objective, dense",
                        emb + " " + order_name, base + "/dense", generative_name,
                        "items_per_second"});
      ratios.push_back({"episodes/s: MetaStepper (buffers kept) / meta_step (allocating), dense",
                        emb + " " + order_name, base + "/dense", fresh_name, "items_per_second"});
      ratios.push_back({"episodes/s: Path::automatic (low-rank) / Path::dense",
                        emb + " " + order_name, base, base + "/dense", "items_per_second"});
      ratios.push_back({"episodes/s: second order / first order", emb + " " + order_name, base,
                        "BM_MetaStep/" + emb + "/first", "items_per_second"});
    }
  }
  // The second/first lines for "first" are 1 by construction: drop them.
  std::erase_if(ratios, [](const baypr_bench::Ratio& r) { return r.numerator == r.denominator; });
  const std::vector<std::string> notes = {
      "the PyTorch peer and its ratios: python3 benchmarks/meta_step_peer.py --compare <this "
      "binary>"};
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  baypr_bench::run_with_summary("meta.bench", format, {std::move(ratios), notes, {24, 10}});
  benchmark::Shutdown();
  return 0;
}
