// baypr/cuda/api.hpp: the CUDA layer's device-level entry points (baypr::cuda, library
// baypr::cuda, option BAYPR_ENABLE_CUDA). Plain C++ with no CUDA header, so a program compiled
// by g++ or clang++ links against the compiled kernels; <baypr/cuda/cuda.hpp> wraps these in
// Eigen-level functions that take and return host matrices.
//
//   baypr::cuda::device_count()        usable devices (0 without a device or driver; never throws)
//   baypr::cuda::Context               one device, one stream, cuBLAS and cuSOLVER handles, and a
//                                      reusable scratch buffer
//   baypr::cuda::DeviceArray<T>        device memory owned by a move-only value
//   baypr::cuda::device::...           the kernels' entry points on device pointers, float and
//                                      double (layouts documented at each)
//
// Every CUDA, cuBLAS and cuSOLVER status is checked; a failure throws baypr::invalid_argument
// (an invalid value reported by the runtime) or baypr::numerical_error (anything else, including
// "no device"), naming the baypr function and the failing call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "baypr/core/exceptions.hpp"

namespace baypr::cuda {

// Number of CUDA devices this process can use: 0 where there is no device or no driver.
[[nodiscard]] int device_count() noexcept;

// "<name> (compute capability X.Y, N MiB)" of device `device`, or why there is none.
[[nodiscard]] std::string device_description(int device = 0);

// One device, one stream, and the library handles the kernels use. Move-only (a moved-from
// Context may only be destroyed or assigned to); every operation on a Context is ordered on its
// stream, and the host-level functions synchronise before they return. Not safe for concurrent
// use from several threads (make one Context per thread).
class Context {
 public:
  struct Impl;  // defined by the compiled library (src/cuda/context.cu)

  // Selects `device` and creates the stream and the handles; numerical_error when the device
  // does not exist or the driver refuses.
  explicit Context(int device = 0);
  ~Context();
  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  [[nodiscard]] int device() const;
  // Waits for everything queued on the stream.
  void synchronize() const;
  // The stream, as a cudaStream_t (void* here, to keep CUDA headers out), for code that orders
  // its own work with the context's (events, cuBLAS calls of its own).
  [[nodiscard]] void* native_stream() const;
  [[nodiscard]] Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

namespace detail {
// Raw device memory (cudaMalloc / cudaFree on the context's device), for DeviceArray.
[[nodiscard]] void* device_allocate(std::size_t bytes);
void device_free(void* p) noexcept;
// Stream-ordered copies that synchronise before returning (the host memory may then be reused).
void copy_to_device(const Context& ctx, void* dst, const void* src, std::size_t bytes);
void copy_to_host(const Context& ctx, void* dst, const void* src, std::size_t bytes);
void copy_on_device(const Context& ctx, void* dst, const void* src, std::size_t bytes);
}  // namespace detail

// A device array of n elements of T, owned: freed when the value dies. Move-only.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t n)
      : data_(n == 0 ? nullptr : static_cast<T*>(detail::device_allocate(n * sizeof(T)))),
        size_(n) {}
  ~DeviceArray() { detail::device_free(data_); }
  DeviceArray(DeviceArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      detail::device_free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  [[nodiscard]] T* data() { return data_; }
  [[nodiscard]] const T* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }

  // Copies n = size() elements from / to host memory.
  void upload(const Context& ctx, const T* host) {
    detail::copy_to_device(ctx, data_, host, size_ * sizeof(T));
  }
  void download(const Context& ctx, T* host) const {
    detail::copy_to_host(ctx, host, data_, size_ * sizeof(T));
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// The kernels on device pointers. Indices and sizes are std::int64_t; every pointer is device
// memory of the context's device. Instantiated for float and double in the compiled library.
namespace device {

// Student-t log-density of n queries under one model (location mu, lower Cholesky factor L of
// the scale, dof v): log t(x) = log_norm - half_v_plus_d * log1p(delta / v) with
// delta = |L^{-1} (x - mu)|^2. `x` is d x n column-major (that is, n x d row-major: one query per
// contiguous d values) and is overwritten with L^{-1} (x - mu); `chol` is d x d column-major.
// Whitening is one cuBLAS TRSM; the row norms and the log terms are one fused kernel.
template <class Scalar>
void student_t_log_pdf(Context& ctx, const Scalar* location, const Scalar* chol, Scalar log_norm,
                       Scalar half_v_plus_d, Scalar dof, Scalar* x, std::int64_t n, std::int64_t d,
                       Scalar* out);

// Exact k nearest bank rows of each query (squared Euclidean distance). `bank` is N x d
// row-major with its squared row norms `bank_norms` (N); `queries` m x d row-major. Bank tiles
// are scored by one GEMM each (s = |b|^2 - 2 b.q, which orders the bank as the distance does)
// and merged into each query's running k best on the device (no host round trip per tile);
// the chosen k distances are then recomputed directly as |b - q|^2 and sorted by (distance,
// index), as the CPU KnnIndex reports them. `indices` and `distances` are m x k row-major.
// 1 <= k <= max_knn_k and k <= N.
inline constexpr std::int64_t max_knn_k = 64;

// k in [1, min(max_knn_k, rows)], or invalid_argument under `fn`.
inline void check_knn_k(std::string_view fn, std::int64_t k, std::int64_t rows) {
  if (k < 1 || k > max_knn_k || k > rows) {
    baypr::detail::throw_invalid(fn, "k",
                                 "must be in [1, min(" + std::to_string(max_knn_k) +
                                     ", bank rows = " + std::to_string(rows) + ")], got " +
                                     std::to_string(k));
  }
}

template <class Scalar>
void knn_search(Context& ctx, const Scalar* bank, const Scalar* bank_norms, std::int64_t N,
                const Scalar* queries, std::int64_t m, std::int64_t d, std::int64_t k,
                std::int64_t* indices, Scalar* distances);

// Farthest-point (k-centre) greedy over the rows of x (N x p row-major, already projected),
// from row `first`: `selected` (count) receives the rows in the order chosen, as
// baypr::greedy_coreset chooses them (ties to the smaller index). Each step is a cuBLAS GEMV
// and two kernels; the chosen index never leaves the device until the end.
template <class Scalar>
void greedy_coreset(Context& ctx, const Scalar* x, std::int64_t N, std::int64_t p,
                    std::int64_t count, std::int64_t first, std::int64_t* selected);

// Batched Cholesky in the interleaved layout: entry (i, j), j <= i, of matrix b is at
// [(i (i + 1) / 2 + j) * batch + b] (packed lower triangle, row by row, matrix index fastest,
// so neighbouring threads read neighbouring words). One thread per matrix. `L` receives the
// factors in the same layout (may alias `A`), `log_det` (batch) log|A_b|, and `info` (batch) 0
// or i + 1 for the first pivot i that is not positive (that factor is then incomplete; every
// other matrix is exact).
template <class Scalar>
void cholesky_interleaved(Context& ctx, const Scalar* A, std::int64_t batch, std::int64_t d,
                          Scalar* L, Scalar* log_det, int* info);

// The same with cuSOLVER's potrfBatched, in its layout: `A` is batch dense d x d column-major
// matrices one after another, factored in place (lower triangle); info as above.
template <class Scalar>
void potrf_batched(Context& ctx, Scalar* A, std::int64_t batch, std::int64_t d, int* info);

// Per-position Student-t scores: model b (factor L_b in the interleaved layout above, location
// column b of `location`, d x batch interleaved as [i * batch + b], and per-model log_norm,
// half_v_plus_d and dof) scores point b of `x` (the same layout as `location`) into out[b].
// `work` is d x batch scratch.
template <class Scalar>
void student_t_batch_log_pdf(Context& ctx, const Scalar* L, const Scalar* location,
                             const Scalar* log_norm, const Scalar* half_v_plus_d, const Scalar* dof,
                             const Scalar* x, std::int64_t batch, std::int64_t d, Scalar* work,
                             Scalar* out);

}  // namespace device
}  // namespace baypr::cuda
