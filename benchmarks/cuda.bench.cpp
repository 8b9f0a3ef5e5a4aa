// benchmarks/cuda.bench.cpp: the CUDA layer against limits measured in the same run on the same
// device (built where BAYPR_ENABLE_CUDA is; exits 0 with a message where there is no device).
//
//   student_t/<T>/d:<d>     Student-t log-density of n = 16384 queries under one model (TRSM +
//                           fused norms); vs_gemm = time of cuBLAS GEMM (d x d) x (d x n) / ours
//                           (the goal: >= 0.5 for d >= 256)
//   knn/float/d:<d>         exact 10-NN of 4096 queries in a 65536-row bank; vs_gemm = time of
//                           the SGEMM of the same shape / ours (goal >= 0.8)
//   cholesky/<T>/d:<d>      own interleaved kernel, 65536 matrices; vs_copy = its bytes / s
//                           (packed A read + L written) over a device-to-device copy's (goal >= 0.6)
//   potrf_batched/<T>/d:<d> cuSOLVER potrfBatched on the same matrices (dense layout), pointer
//                           array prepared outside the timing; vs_own = own kernel time / this
//   per_position/<T>        784 positions x 64 images at d = 32: per-model Student-t scores
//
// Times are the device's (CUDA events on the context's stream), one warm-up call first.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "baypr/cuda/api.hpp"

namespace {

using baypr::cuda::Context;
using baypr::cuda::DeviceArray;

void check(cudaError_t s, const char* what) {
  if (s != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(s));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + " failed");
}
void check(cusolverStatus_t s, const char* what) {
  if (s != CUSOLVER_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + " failed");
}

Context& context() {
  static Context ctx;
  return ctx;
}
cudaStream_t stream() {
  return static_cast<cudaStream_t>(context().native_stream());
}

// Device milliseconds of f() (queued on the context's stream).
double device_ms(const std::function<void()>& f) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  check(cudaEventRecord(start, stream()), "cudaEventRecord");
  f();
  check(cudaEventRecord(stop, stream()), "cudaEventRecord");
  check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
}

// Runs the benchmark loop on device time, and returns the mean milliseconds per call.
double timed(benchmark::State& state, const std::function<void()>& prepare,
             const std::function<void()>& f) {
  prepare();
  f();  // warm-up
  context().synchronize();
  double total = 0;
  std::int64_t calls = 0;
  for (auto _ : state) {
    prepare();
    const double ms = device_ms(f);
    state.SetIterationTime(ms / 1e3);
    total += ms;
    ++calls;
  }
  return total / static_cast<double>(calls);
}

// Mean device milliseconds of a reference operation (cuBLAS GEMM, a copy): one warm-up call
// (cuBLAS picks and loads its kernel on the first), then five timed.
double reference_ms(const std::function<void()>& f) {
  f();
  context().synchronize();
  double total = 0;
  for (int r = 0; r < 5; ++r) total += device_ms(f);
  return total / 5;
}

template <class Scalar>
std::vector<Scalar> random_values(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<Scalar> v(n);
  for (auto& x : v) x = static_cast<Scalar>(normal(rng));
  return v;
}

cublasHandle_t blas() {
  static cublasHandle_t h = [] {
    cublasHandle_t handle;
    check(cublasCreate(&handle), "cublasCreate");
    check(cublasSetStream(handle, stream()), "cublasSetStream");
    return handle;
  }();
  return h;
}

template <class Scalar>
void gemm(int m, int n, int k, const Scalar* A, const Scalar* B, Scalar* C) {
  const Scalar one = 1, zero = 0;
  if constexpr (sizeof(Scalar) == sizeof(float)) {
    check(cublasSgemm(blas(), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, k, B, k, &zero, C, m),
          "cublasSgemm");
  } else {
    check(cublasDgemm(blas(), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, k, B, k, &zero, C, m),
          "cublasDgemm");
  }
}

// A lower-triangular, well-conditioned factor (column-major d x d).
template <class Scalar>
std::vector<Scalar> lower_factor(std::int64_t d) {
  std::vector<Scalar> L(static_cast<std::size_t>(d * d), Scalar(0));
  auto r = random_values<Scalar>(L.size(), 7, 0.1 / static_cast<double>(d));
  for (std::int64_t j = 0; j < d; ++j) {
    for (std::int64_t i = j; i < d; ++i) {
      L[static_cast<std::size_t>(j * d + i)] =
          i == j ? Scalar(1) : r[static_cast<std::size_t>(j * d + i)];
    }
  }
  return L;
}

template <class Scalar>
void student_t(benchmark::State& state) {
  const std::int64_t d = state.range(0), n = 16384;
  Context& ctx = context();
  const auto host_x = random_values<Scalar>(static_cast<std::size_t>(n * d), 1);
  const auto host_L = lower_factor<Scalar>(d);
  DeviceArray<Scalar> x0(host_x.size()), x(host_x.size()), L(host_L.size()),
      mu(static_cast<std::size_t>(d)), out(static_cast<std::size_t>(n)),
      gemm_out(static_cast<std::size_t>(n * d));
  x0.upload(ctx, host_x.data());
  L.upload(ctx, host_L.data());
  const auto host_mu = random_values<Scalar>(static_cast<std::size_t>(d), 2);
  mu.upload(ctx, host_mu.data());
  auto restore = [&] {
    baypr::cuda::detail::copy_on_device(ctx, x.data(), x0.data(), host_x.size() * sizeof(Scalar));
  };
  const double ours = timed(state, restore, [&] {
    baypr::cuda::device::student_t_log_pdf<Scalar>(ctx, mu.data(), L.data(), Scalar(-1),
                                                   Scalar(d + 5) / 2, Scalar(5), x.data(), n, d,
                                                   out.data());
  });
  const double ref = reference_ms([&] {
    gemm<Scalar>(static_cast<int>(d), static_cast<int>(n), static_cast<int>(d), L.data(), x0.data(),
                 gemm_out.data());
  });
  state.counters["vs_gemm"] = ref / ours;
  state.counters["queries_per_s"] = static_cast<double>(n) / (ours / 1e3);
}

void knn(benchmark::State& state) {
  using Scalar = float;
  const std::int64_t d = state.range(0), N = 65536, m = 4096, k = 10;
  Context& ctx = context();
  const auto host_bank = random_values<Scalar>(static_cast<std::size_t>(N * d), 3);
  const auto host_q = random_values<Scalar>(static_cast<std::size_t>(m * d), 4);
  std::vector<Scalar> norms(static_cast<std::size_t>(N), 0);
  for (std::int64_t i = 0; i < N; ++i)
    for (std::int64_t l = 0; l < d; ++l) {
      const Scalar v = host_bank[static_cast<std::size_t>(i * d + l)];
      norms[static_cast<std::size_t>(i)] += v * v;
    }
  DeviceArray<Scalar> bank(host_bank.size()), q(host_q.size()), bn(norms.size()),
      dist(static_cast<std::size_t>(m * k)), tile(static_cast<std::size_t>(N * m));
  DeviceArray<std::int64_t> idx(static_cast<std::size_t>(m * k));
  bank.upload(ctx, host_bank.data());
  q.upload(ctx, host_q.data());
  bn.upload(ctx, norms.data());
  const double ours = timed(
      state, [] {},
      [&] {
        baypr::cuda::device::knn_search<Scalar>(ctx, bank.data(), bn.data(), N, q.data(), m, d, k,
                                                idx.data(), dist.data());
      });
  const double ref = reference_ms([&] {
    gemm<Scalar>(static_cast<int>(N), static_cast<int>(m), static_cast<int>(d), bank.data(),
                 q.data(), tile.data());
  });
  state.counters["vs_gemm"] = ref / ours;
}

constexpr std::int64_t kMatrices = 65536;

template <class Scalar>
std::vector<Scalar> interleaved_spd(std::int64_t d) {
  const std::int64_t packed = d * (d + 1) / 2;
  std::vector<Scalar> a(static_cast<std::size_t>(packed * kMatrices), Scalar(0));
  auto r = random_values<Scalar>(a.size(), 5, 0.1 / static_cast<double>(d));
  for (std::int64_t i = 0, e = 0; i < d; ++i)
    for (std::int64_t j = 0; j <= i; ++j, ++e)
      for (std::int64_t b = 0; b < kMatrices; ++b) {
        const auto at = static_cast<std::size_t>(e * kMatrices + b);
        a[at] = i == j ? Scalar(2) : r[at];  // diagonally dominant: SPD
      }
  return a;
}

template <class Scalar>
void cholesky(benchmark::State& state) {
  const std::int64_t d = state.range(0), packed = d * (d + 1) / 2;
  Context& ctx = context();
  const auto host = interleaved_spd<Scalar>(d);
  DeviceArray<Scalar> A(host.size()), L(host.size()), copy(host.size()),
      logdet(static_cast<std::size_t>(kMatrices));
  DeviceArray<int> info(static_cast<std::size_t>(kMatrices));
  A.upload(ctx, host.data());
  const double ours = timed(
      state, [] {},
      [&] {
        baypr::cuda::device::cholesky_interleaved<Scalar>(ctx, A.data(), kMatrices, d, L.data(),
                                                          logdet.data(), info.data());
      });
  const std::size_t bytes = static_cast<std::size_t>(packed * kMatrices) * sizeof(Scalar);
  const double ref = reference_ms([&] {
    check(cudaMemcpyAsync(copy.data(), A.data(), bytes, cudaMemcpyDeviceToDevice, stream()),
          "cudaMemcpyAsync");
  });
  // Both move `bytes` in and `bytes` out.
  state.counters["vs_copy"] = ref / ours;
  state.counters["GB_per_s"] = 2.0 * static_cast<double>(bytes) / (ours / 1e3) / 1e9;
}

template <class Scalar>
void potrf_batched(benchmark::State& state) {
  const std::int64_t d = state.range(0);
  Context& ctx = context();
  // Dense column-major copies of the interleaved SPD matrices.
  const auto inter = interleaved_spd<Scalar>(d);
  std::vector<Scalar> dense(static_cast<std::size_t>(d * d * kMatrices));
  for (std::int64_t i = 0, e = 0; i < d; ++i)
    for (std::int64_t j = 0; j <= i; ++j, ++e)
      for (std::int64_t b = 0; b < kMatrices; ++b) {
        const Scalar v = inter[static_cast<std::size_t>(e * kMatrices + b)];
        dense[static_cast<std::size_t>(b * d * d + j * d + i)] = v;
        dense[static_cast<std::size_t>(b * d * d + i * d + j)] = v;
      }
  DeviceArray<Scalar> A0(dense.size()), A(dense.size());
  DeviceArray<int> info(static_cast<std::size_t>(kMatrices));
  DeviceArray<Scalar*> pointers(static_cast<std::size_t>(kMatrices));
  A0.upload(ctx, dense.data());
  std::vector<Scalar*> host_pointers(static_cast<std::size_t>(kMatrices));
  for (std::int64_t b = 0; b < kMatrices; ++b)
    host_pointers[static_cast<std::size_t>(b)] = A.data() + b * d * d;
  pointers.upload(ctx, host_pointers.data());
  cusolverDnHandle_t solver;
  check(cusolverDnCreate(&solver), "cusolverDnCreate");
  check(cusolverDnSetStream(solver, stream()), "cusolverDnSetStream");
  auto restore = [&] {
    baypr::cuda::detail::copy_on_device(ctx, A.data(), A0.data(), dense.size() * sizeof(Scalar));
  };
  const int di = static_cast<int>(d), bi = static_cast<int>(kMatrices);
  timed(state, restore, [&] {
    if constexpr (sizeof(Scalar) == sizeof(float)) {
      check(cusolverDnSpotrfBatched(solver, CUBLAS_FILL_MODE_LOWER, di, pointers.data(), di,
                                    info.data(), bi),
            "cusolverDnSpotrfBatched");
    } else {
      check(cusolverDnDpotrfBatched(solver, CUBLAS_FILL_MODE_LOWER, di, pointers.data(), di,
                                    info.data(), bi),
            "cusolverDnDpotrfBatched");
    }
  });
  cusolverDnDestroy(solver);
}

template <class Scalar>
void per_position(benchmark::State& state) {
  const std::int64_t d = 32, positions = 784, images = 64, batch = positions * images;
  const std::int64_t packed = d * (d + 1) / 2;
  Context& ctx = context();
  // One model per (position, image) slot: the positions' models repeated for each image.
  std::vector<Scalar> L(static_cast<std::size_t>(packed * batch), Scalar(0));
  for (std::int64_t i = 0, e = 0; i < d; ++i)
    for (std::int64_t j = 0; j <= i; ++j, ++e)
      for (std::int64_t b = 0; b < batch; ++b)
        L[static_cast<std::size_t>(e * batch + b)] = i == j ? Scalar(1) : Scalar(0.01);
  const auto mu = random_values<Scalar>(static_cast<std::size_t>(d * batch), 8);
  const auto x = random_values<Scalar>(static_cast<std::size_t>(d * batch), 9);
  std::vector<Scalar> log_norm(static_cast<std::size_t>(batch), Scalar(-1)),
      half(static_cast<std::size_t>(batch), Scalar(20)),
      dof(static_cast<std::size_t>(batch), Scalar(8));
  DeviceArray<Scalar> dL(L.size()), dmu(mu.size()), dx(x.size()), dn(log_norm.size()),
      dh(half.size()), dv(dof.size()), work(x.size()), out(static_cast<std::size_t>(batch));
  dL.upload(ctx, L.data());
  dmu.upload(ctx, mu.data());
  dx.upload(ctx, x.data());
  dn.upload(ctx, log_norm.data());
  dh.upload(ctx, half.data());
  dv.upload(ctx, dof.data());
  const double ms = timed(
      state, [] {},
      [&] {
        baypr::cuda::device::student_t_batch_log_pdf<Scalar>(ctx, dL.data(), dmu.data(), dn.data(),
                                                             dh.data(), dv.data(), dx.data(), batch,
                                                             d, work.data(), out.data());
      });
  state.counters["GFLOPS"] = static_cast<double>(batch * (d * d + 3 * d)) / (ms / 1e3) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (baypr::cuda::device_count() == 0) {
    std::printf("cuda.bench: %s; nothing to measure\n", baypr::cuda::device_description(0).c_str());
    return 0;
  }
  std::printf("cuda.bench on %s\n", baypr::cuda::device_description(0).c_str());
  // Device time (manual), in microseconds.
  auto add = [](const std::string& name, void (*fn)(benchmark::State&), std::int64_t arg) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), fn)->UseManualTime();
    b->Unit(benchmark::kMicrosecond);
    if (arg > 0) b->Arg(arg);
  };
  for (const std::int64_t d : {256, 512, 1024}) {
    add("student_t/float/d:" + std::to_string(d), student_t<float>, d);
    add("student_t/double/d:" + std::to_string(d), student_t<double>, d);
  }
  for (const std::int64_t d : {64, 128, 512}) add("knn/float/d:" + std::to_string(d), knn, d);
  for (const std::int64_t d : {4, 8, 16, 32, 64}) {
    add("cholesky/float/d:" + std::to_string(d), cholesky<float>, d);
    add("cholesky/double/d:" + std::to_string(d), cholesky<double>, d);
    add("potrf_batched/float/d:" + std::to_string(d), potrf_batched<float>, d);
    add("potrf_batched/double/d:" + std::to_string(d), potrf_batched<double>, d);
  }
  add("per_position/float", per_position<float>, 0);
  add("per_position/double", per_position<double>, 0);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
