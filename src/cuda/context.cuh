// src/cuda/context.cuh: what a Context holds, shared by the CUDA layer's translation units.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "baypr/cuda/api.hpp"
#include "baypr/cuda/check.cuh"
#include "baypr/cuda/kernels.cuh"

namespace baypr::cuda {

struct Context::Impl {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  void* scratch = nullptr;
  std::size_t scratch_bytes = 0;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Releases whatever was made, also after a constructor that failed half-way.
  ~Impl() {
    if (stream == nullptr) return;  // nothing was made (the stream is made first)
    cudaSetDevice(device);
    cudaStreamSynchronize(stream);
    if (scratch != nullptr) cudaFree(scratch);
    if (solver != nullptr) cusolverDnDestroy(solver);
    if (blas != nullptr) cublasDestroy(blas);
    cudaStreamDestroy(stream);
  }

  // At least `bytes` of device scratch, kept for later calls (grown, never shrunk).
  void* scratch_for(std::size_t bytes, std::string_view fn) {
    if (bytes > scratch_bytes) {
      if (scratch != nullptr) BAYPR_CUDA_CHECK(fn, cudaFree(scratch));
      scratch = nullptr;
      scratch_bytes = 0;
      BAYPR_CUDA_CHECK(fn, cudaMalloc(&scratch, bytes));
      scratch_bytes = bytes;
    }
    return scratch;
  }
};

namespace detail {

// Blocks of kernels::block_size threads covering n items.
inline unsigned blocks_for(std::int64_t n) {
  return static_cast<unsigned>((n + kernels::block_size - 1) / kernels::block_size);
}

// Checks the launch just queued (configuration errors surface here, execution errors at the
// next synchronisation).
inline void check_launch(std::string_view fn, std::string_view kernel) {
  check_status(cudaGetLastError(), fn, kernel);
}

inline void synchronize(Context& ctx, std::string_view fn) {
  BAYPR_CUDA_CHECK(fn, cudaStreamSynchronize(ctx.impl().stream));
}

}  // namespace detail
}  // namespace baypr::cuda
