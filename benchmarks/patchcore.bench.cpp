// benchmarks/patchcore.bench.cpp: PatchCore's two kernels, exact k-NN search and greedy coreset
// selection, with faiss's exact search measured in the same binary and run as the peer, and a
// ratio summary printed at the end (timing claims are ratios).
//
//   knn/baypr/N:<N>/d:<d>/k:<k>         baypr::KnnIndex<float>::search of m queries
//   knn/faiss/N:<N>/d:<d>/k:<k>         faiss::IndexFlatL2::search, same bank and queries
//   knn/baypr_double/N:10000/d:<d>/k:<k>  baypr in double (faiss has no double index)
//   coreset/N:<N>/d:1024                baypr::greedy_coreset, ratio 0.1, projection to 128
//
// Bank: N = 10000 and 50000 Gaussian rows; d in {128, 512, 1024}; m = 4096 queries, except
// N = 50000 with d = 1024, which uses m = 1024 (4096 queries would be 420 GFLOP per iteration);
// rates are per query, so the ratio is unaffected. Counters: queries (queries/s), GFLOPS (2 N m d
// flops per search: the GEMM that dominates both). Everything runs on one thread: Eigen without
// OpenMP, faiss with omp_set_num_threads(1), and OpenBLAS (if that is faiss's BLAS) with
// openblas_set_num_threads(1).
//
// faiss's search is a BLAS sgemm plus a heap scan, so its speed is that of the BLAS the system
// resolves libblas.so.3 to; the context line `faiss_blas` names it. Debian's default is the
// unoptimised reference BLAS (~3 GFLOP/s): `scripts/deps bench` installs OpenBLAS, the BLAS a
// faiss user would have. When a faiss search of all m queries would take over 10 s (the reference
// BLAS), it searches fewer, about 2 s worth (a multiple of 64; the counter `batch` gives the
// number), so that the whole run stays short.
//
// Built without faiss (no libfaiss-dev), the faiss rows and ratios are simply absent. Filter with
// --benchmark_filter, e.g. '^knn/'. The summary goes to stdout with the console format and to
// stderr with --benchmark_format=json; each figure is the best run of each benchmark.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baypr/core/random.hpp"
#include "baypr/score/knn.hpp"
#include "baypr/score/patchcore.hpp"
#include "summary_reporter.hpp"

#if defined(BAYPR_HAVE_FAISS)
#include <faiss/IndexFlat.h>
#include <omp.h>
#endif

namespace {

using benchmark::Counter;
using Eigen::Index;

template <class Scalar>
using RowMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr Index kQueries = 4096;
constexpr Index kQueriesLargest = 1024;  // N 50000 x d 1024

Index queries_for(Index n, Index d) {
  return (n >= 50000 && d >= 1024) ? kQueriesLargest : kQueries;
}

Counter rate(double per_iteration) {
  return Counter(per_iteration, Counter::kIsIterationInvariantRate);
}

// Gaussian rows from the library's seeded portable normal draws (both halves of each Box-Muller
// pair): reproducible, and fast enough to fill 50000 x 1024 in about a second.
RowMajor<float> gaussian_rows(Index rows, Index cols, std::uint64_t seed) {
  baypr::PortableNormal normal(seed);
  RowMajor<float> m(rows, cols);
  float* p = m.data();
  for (Index i = 0; i < m.size(); ++i) p[i] = static_cast<float>(normal());
  return m;
}

// One (N, d) data set at a time, with the indexes built on it; benchmarks are registered grouped by
// (N, d) so each is generated and indexed once.
struct Workload {
  Index n = 0, d = 0;
  RowMajor<float> bank, queries;
  std::optional<baypr::KnnIndex<float>> index_f;
  std::optional<baypr::KnnIndex<double>> index_d;
  RowMajor<double> queries_d;
#if defined(BAYPR_HAVE_FAISS)
  std::unique_ptr<faiss::IndexFlatL2> faiss;
#endif
};

Workload& workload(Index n, Index d) {
  static Workload w;
  if (w.n != n || w.d != d) {
    w = Workload{};
    w.n = n;
    w.d = d;
    w.bank = gaussian_rows(n, d, 1000 + static_cast<std::uint64_t>(n + d));
    w.queries = gaussian_rows(kQueries, d, 2000 + static_cast<std::uint64_t>(n + d));
  }
  return w;
}

template <class Scalar>
void bm_baypr(benchmark::State& state, Index n, Index d, Index k) {
  Workload& w = workload(n, d);
  const Index m = queries_for(n, d);
  const baypr::KnnIndex<Scalar>* index = nullptr;
  if constexpr (sizeof(Scalar) == sizeof(float)) {
    if (!w.index_f) w.index_f.emplace(w.bank);
    index = &*w.index_f;
  } else {
    if (!w.index_d) {
      w.index_d.emplace(w.bank.template cast<double>());
      w.queries_d = w.queries.template cast<double>();
    }
    index = &*w.index_d;
  }
  const auto queries = [&] {
    if constexpr (sizeof(Scalar) == sizeof(float)) {
      return w.queries.topRows(m);
    } else {
      return w.queries_d.topRows(m);
    }
  }();
  baypr::KnnResult<Scalar> out;
  for (auto _ : state) {
    index->search(queries, k, out);
    benchmark::DoNotOptimize(out.indices.data());
    benchmark::DoNotOptimize(out.squared_distances.data());
    benchmark::ClobberMemory();
  }
  const double md = static_cast<double>(m);
  state.counters["queries"] = rate(md);
  state.counters["GFLOPS"] =
      rate(2.0 * static_cast<double>(n) * md * static_cast<double>(d) * 1e-9);
  state.counters["batch"] = md;
}

#if defined(BAYPR_HAVE_FAISS)
constexpr double kFaissSecondsPerIteration = 2.0;

void bm_faiss(benchmark::State& state, Index n, Index d, Index k) {
  Workload& w = workload(n, d);
  if (!w.faiss) {
    w.faiss = std::make_unique<faiss::IndexFlatL2>(d);
    w.faiss->add(n, w.bank.data());
  }
  Index m = queries_for(n, d);
  std::vector<float> dist(static_cast<std::size_t>(m * k));
  std::vector<faiss::Index::idx_t> labels(static_cast<std::size_t>(m * k));
  {
    // Calibration: with a slow BLAS, search fewer queries per iteration (a multiple of 64).
    constexpr Index probe = 64;
    w.faiss->search(probe, w.queries.data(), k, dist.data(), labels.data());  // warm up
    const auto t0 = std::chrono::steady_clock::now();
    w.faiss->search(probe, w.queries.data(), k, dist.data(), labels.data());
    const double per_query =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
        static_cast<double>(probe);
    // A 64-query probe underestimates an optimised BLAS's efficiency on the full batch by up to
    // ~2x; the reference BLAS is ~30x slower, so 10 s separates the two cleanly.
    if (per_query * static_cast<double>(m) > 10.0) {
      const auto affordable = static_cast<Index>(kFaissSecondsPerIteration / per_query);
      m = std::clamp<Index>(affordable / probe * probe, probe, m);
    }
  }
  for (auto _ : state) {
    w.faiss->search(m, w.queries.data(), k, dist.data(), labels.data());
    benchmark::DoNotOptimize(dist.data());
    benchmark::DoNotOptimize(labels.data());
    benchmark::ClobberMemory();
  }
  const double md = static_cast<double>(m);
  state.counters["queries"] = rate(md);
  state.counters["GFLOPS"] =
      rate(2.0 * static_cast<double>(n) * md * static_cast<double>(d) * 1e-9);
  state.counters["batch"] = md;
}
#endif

void bm_coreset(benchmark::State& state, Index n, Index d) {
  Workload& w = workload(n, d);
  baypr::CoresetOptions options;
  options.ratio = 0.1;
  options.projection_dim = 128;
  options.seed = 1;
  Index count = 0;
  for (auto _ : state) {
    const auto selected = baypr::greedy_coreset(w.bank, options);
    count = static_cast<Index>(selected.size());
    benchmark::DoNotOptimize(selected.data());
    benchmark::ClobberMemory();
  }
  const double p = 128.0, nn = static_cast<double>(n);
  state.counters["centres"] = rate(static_cast<double>(count));
  // Projection GEMM (2 N d p) plus one GEMV over the projected rows per centre (2 N p).
  state.counters["GFLOPS"] = rate(
      (2.0 * nn * static_cast<double>(d) * p + 2.0 * static_cast<double>(count) * nn * p) * 1e-9);
}

// ---- Ratio summary (benchmarks/summary_reporter.hpp) -------------------------------------------

using baypr_bench::Ratio;

std::string arg(const char* key, Index value) {
  return std::string(key) + ":" + std::to_string(value);
}

std::vector<Ratio> register_all() {
  std::vector<Ratio> ratios;
  constexpr Index coreset_d = 1024;
  for (const Index n : {10000, 50000}) {
    for (const Index d : {128, 512, 1024}) {
      for (const Index k : {1, 9}) {
        const std::string tail = arg("N", n) + "/" + arg("d", d) + "/" + arg("k", k);
        const std::string label = arg("N", n) + " " + arg("d", d) + " " + arg("k", k);
        const std::string ours = "knn/baypr/" + tail;
        benchmark::RegisterBenchmark(ours.c_str(), [n, d, k](benchmark::State& s) {
          bm_baypr<float>(s, n, d, k);
        })->Unit(benchmark::kMillisecond);
#if defined(BAYPR_HAVE_FAISS)
        const std::string peer = "knn/faiss/" + tail;
        benchmark::RegisterBenchmark(peer.c_str(), [n, d, k](benchmark::State& s) {
          bm_faiss(s, n, d, k);
        })->Unit(benchmark::kMillisecond);
        ratios.push_back(
            {"exact k-NN, float, 1 thread: baypr queries/s / faiss IndexFlatL2 queries/s", label,
             ours, peer, "queries", 0.8});
        ratios.push_back({"faiss IndexFlatL2 GFLOP/s", label, peer, "", "GFLOPS", 0});
#endif
        ratios.push_back({"baypr KnnIndex<float> GFLOP/s", label, ours, "", "GFLOPS", 0});
        if (n == 10000) {
          const std::string dbl = "knn/baypr_double/" + tail;
          benchmark::RegisterBenchmark(dbl.c_str(), [n, d, k](benchmark::State& s) {
            bm_baypr<double>(s, n, d, k);
          })->Unit(benchmark::kMillisecond);
          ratios.push_back({"baypr KnnIndex<double> GFLOP/s", label, dbl, "", "GFLOPS", 0});
        }
      }
      if (d == coreset_d) {
        const std::string name = "coreset/" + arg("N", n) + "/" + arg("d", d);
        benchmark::RegisterBenchmark(name.c_str(), [n, d](benchmark::State& s) {
          bm_coreset(s, n, d);
        })->Unit(benchmark::kMillisecond);
        ratios.push_back({"greedy coreset (ratio 0.1, projection 128, float): seconds",
                          arg("N", n) + " " + arg("d", d), name, "", "", 0});
      }
    }
  }
  ratios.push_back({"greedy coreset: time(N 50000) / time(N 10000)  (O(N^2): 25 expected)",
                    "d:1024", "coreset/N:50000/d:1024", "coreset/N:10000/d:1024", "", 0});
  return ratios;
}

#if defined(BAYPR_HAVE_FAISS)
// The shared library that provides sgemm_ (faiss's BLAS), resolved through symlinks.
std::string blas_library() {
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (sym == nullptr || dladdr(sym, &info) == 0 || info.dli_fname == nullptr)
    return "(none loaded)";
  std::error_code ec;
  const auto path = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::string(info.dli_fname) : path.string();
}
#endif

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);  // a no-op without OpenMP, which baypr's targets do not enable
  std::vector<std::string> notes;
  notes.push_back(
      "N 50000 x d 1024 uses 1024 queries (4096 would be 420 GFLOP per search); rates are per "
      "query");
#if defined(BAYPR_HAVE_FAISS)
  omp_set_num_threads(1);
  using SetThreads = void (*)(int);
  if (void* f = dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) reinterpret_cast<SetThreads>(f)(1);
  const std::string blas = blas_library();
  const bool optimised =
      blas.find("openblas") != std::string::npos || blas.find("blis") != std::string::npos ||
      blas.find("mkl") != std::string::npos || blas.find("atlas") != std::string::npos;
  if (!optimised) {
    notes.push_back("faiss runs on " + blas +
                    ", not an optimised BLAS: its rows measure that BLAS. "
                    "Install one (scripts/deps bench installs OpenBLAS) for a fair peer");
  }
#else
  notes.push_back("built without faiss (libfaiss-dev not found): no peer rows");
#endif
  const std::string format = baypr_bench::output_format(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
#if defined(BAYPR_HAVE_FAISS)
  benchmark::AddCustomContext("faiss_blas", blas);
#endif
  baypr_bench::run_with_summary("patchcore.bench", format,
                                {register_all(), std::move(notes), {28, 10}});
  benchmark::Shutdown();
  return 0;
}
