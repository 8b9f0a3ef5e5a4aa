// baypr/cuda/check.cuh: CUDA, cuBLAS and cuSOLVER statuses turned into baypr's exceptions.
//
//   BAYPR_CUDA_CHECK(fn, call)   runs `call` (a cudaError_t, cublasStatus_t or
//                                cusolverStatus_t expression) and throws on failure:
//                                "<fn>: <call text> failed: <status name> (<description>)"
//
// An invalid value reported by the library becomes baypr::invalid_argument, anything else
// baypr::numerical_error. For nvcc-compiled code only (includes the CUDA headers).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <string>
#include <string_view>

#include "baypr/core/exceptions.hpp"

namespace baypr::cuda::detail {

[[noreturn]] inline void throw_status(std::string_view fn, std::string_view call,
                                      std::string_view name, std::string_view what,
                                      bool invalid_value) {
  std::string msg(call);
  msg.append(" failed: ").append(name).append(" (").append(what).append(")");
  if (invalid_value) {
    throw invalid_argument(std::string(fn) + ": " + msg);
  }
  baypr::detail::throw_numerical(fn, msg);
}

inline void check_status(cudaError_t s, std::string_view fn, std::string_view call) {
  if (s == cudaSuccess) return;
  throw_status(fn, call, cudaGetErrorName(s), cudaGetErrorString(s), s == cudaErrorInvalidValue);
}

inline void check_status(cublasStatus_t s, std::string_view fn, std::string_view call) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw_status(fn, call, cublasGetStatusName(s), cublasGetStatusString(s),
               s == CUBLAS_STATUS_INVALID_VALUE);
}

inline const char* cusolver_status_name(cusolverStatus_t s) {
  switch (s) {
    case CUSOLVER_STATUS_NOT_INITIALIZED:
      return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED:
      return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE:
      return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH:
      return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_EXECUTION_FAILED:
      return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR:
      return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_NOT_SUPPORTED:
      return "CUSOLVER_STATUS_NOT_SUPPORTED";
    default:
      return "cusolverStatus_t";
  }
}

inline void check_status(cusolverStatus_t s, std::string_view fn, std::string_view call) {
  if (s == CUSOLVER_STATUS_SUCCESS) return;
  throw_status(fn, call, cusolver_status_name(s), "status " + std::to_string(static_cast<int>(s)),
               s == CUSOLVER_STATUS_INVALID_VALUE);
}

}  // namespace baypr::cuda::detail

// A macro so that the message can quote the call as written.
#define BAYPR_CUDA_CHECK(fn, call) ::baypr::cuda::detail::check_status((call), (fn), #call)
