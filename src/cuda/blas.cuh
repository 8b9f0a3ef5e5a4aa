// src/cuda/blas.cuh: the cuBLAS / cuSOLVER calls the kernels use, overloaded on float and double.
#pragma once

#include "context.cuh"

namespace baypr::cuda::detail {

inline cublasStatus_t trsm(cublasHandle_t h, int m, int n, const float* alpha, const float* A,
                           int lda, float* B, int ldb) {
  return cublasStrsm(h, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT,
                     m, n, alpha, A, lda, B, ldb);
}
inline cublasStatus_t trsm(cublasHandle_t h, int m, int n, const double* alpha, const double* A,
                           int lda, double* B, int ldb) {
  return cublasDtrsm(h, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT,
                     m, n, alpha, A, lda, B, ldb);
}

// C (m x n) = alpha op(A) op(B) + beta C, column-major.
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float* alpha, const float* A, int lda,
                           const float* B, int ldb, const float* beta, float* C, int ldc) {
  return cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const double* alpha, const double* A, int lda,
                           const double* B, int ldb, const double* beta, double* C, int ldc) {
  return cublasDgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

inline cublasStatus_t gemv_t(cublasHandle_t h, int m, int n, const float* alpha, const float* A,
                             int lda, const float* x, const float* beta, float* y) {
  return cublasSgemv(h, CUBLAS_OP_T, m, n, alpha, A, lda, x, 1, beta, y, 1);
}
inline cublasStatus_t gemv_t(cublasHandle_t h, int m, int n, const double* alpha, const double* A,
                             int lda, const double* x, const double* beta, double* y) {
  return cublasDgemv(h, CUBLAS_OP_T, m, n, alpha, A, lda, x, 1, beta, y, 1);
}

inline cusolverStatus_t potrf_batched(cusolverDnHandle_t h, int n, float* A[], int lda, int* info,
                                      int batch) {
  return cusolverDnSpotrfBatched(h, CUBLAS_FILL_MODE_LOWER, n, A, lda, info, batch);
}
inline cusolverStatus_t potrf_batched(cusolverDnHandle_t h, int n, double* A[], int lda, int* info,
                                      int batch) {
  return cusolverDnDpotrfBatched(h, CUBLAS_FILL_MODE_LOWER, n, A, lda, info, batch);
}

// cuBLAS takes int sizes: refuse what does not fit rather than truncate.
inline int to_int(std::int64_t v, std::string_view fn, std::string_view what) {
  if (v < 0 || v > 2147483647) {
    baypr::detail::throw_invalid(fn, what, "must fit cuBLAS's int sizes, got " + std::to_string(v));
  }
  return static_cast<int>(v);
}

}  // namespace baypr::cuda::detail
