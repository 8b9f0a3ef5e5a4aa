// src/cuda/scoring.cu: Student-t scores of many queries under one model, and the batched
// per-position path (Cholesky factors, own kernel or cuSOLVER, and per-model scores).
#include <vector>

#include "blas.cuh"

namespace baypr::cuda::device {

template <class Scalar>
void student_t_log_pdf(Context& ctx, const Scalar* location, const Scalar* chol, Scalar log_norm,
                       Scalar half_v_plus_d, Scalar dof, Scalar* x, std::int64_t n, std::int64_t d,
                       Scalar* out) {
  constexpr const char* fn = "baypr::cuda::device::student_t_log_pdf";
  if (n == 0) return;
  auto& c = ctx.impl();
  const int di = detail::to_int(d, fn, "d"), ni = detail::to_int(n, fn, "n");
  kernels::subtract_location<<<detail::blocks_for(n * d), kernels::block_size, 0, c.stream>>>(
      x, location, n, d);
  detail::check_launch(fn, "subtract_location");
  const Scalar one = 1;
  BAYPR_CUDA_CHECK(fn, detail::trsm(c.blas, di, ni, &one, chol, di, x, di));
  const unsigned blocks = detail::blocks_for(n * 32);  // one warp per query
  kernels::student_t_from_whitened<<<blocks, kernels::block_size, 0, c.stream>>>(
      x, n, d, log_norm, half_v_plus_d, dof, out);
  detail::check_launch(fn, "student_t_from_whitened");
}

template <class Scalar>
void cholesky_interleaved(Context& ctx, const Scalar* A, std::int64_t batch, std::int64_t d,
                          Scalar* L, Scalar* log_det, int* info) {
  if (batch == 0) return;
  auto& c = ctx.impl();
  kernels::cholesky_interleaved<<<detail::blocks_for(batch), kernels::block_size, 0, c.stream>>>(
      A, batch, d, L, log_det, info);
  detail::check_launch("baypr::cuda::device::cholesky_interleaved", "cholesky_interleaved");
}

template <class Scalar>
void potrf_batched(Context& ctx, Scalar* A, std::int64_t batch, std::int64_t d, int* info) {
  constexpr const char* fn = "baypr::cuda::device::potrf_batched";
  if (batch == 0) return;
  auto& c = ctx.impl();
  const int di = detail::to_int(d, fn, "d"), bi = detail::to_int(batch, fn, "batch");
  // cuSOLVER wants a device array of the matrices' addresses.
  std::vector<Scalar*> host(static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b) host[static_cast<std::size_t>(b)] = A + b * d * d;
  auto* pointers = static_cast<Scalar**>(c.scratch_for(host.size() * sizeof(Scalar*), fn));
  BAYPR_CUDA_CHECK(fn, cudaMemcpyAsync(pointers, host.data(), host.size() * sizeof(Scalar*),
                                       cudaMemcpyHostToDevice, c.stream));
  BAYPR_CUDA_CHECK(fn, detail::potrf_batched(c.solver, di, pointers, di, info, bi));
  // `host` must outlive the asynchronous copy.
  BAYPR_CUDA_CHECK(fn, cudaStreamSynchronize(c.stream));
}

template <class Scalar>
void student_t_batch_log_pdf(Context& ctx, const Scalar* L, const Scalar* location,
                             const Scalar* log_norm, const Scalar* half_v_plus_d, const Scalar* dof,
                             const Scalar* x, std::int64_t batch, std::int64_t d, Scalar* work,
                             Scalar* out) {
  if (batch == 0) return;
  auto& c = ctx.impl();
  kernels::student_t_batch<<<detail::blocks_for(batch), kernels::block_size, 0, c.stream>>>(
      L, location, log_norm, half_v_plus_d, dof, x, batch, d, work, out);
  detail::check_launch("baypr::cuda::device::student_t_batch_log_pdf", "student_t_batch");
}

#define BAYPR_CUDA_INSTANTIATE(S)                                                               \
  template void student_t_log_pdf<S>(Context&, const S*, const S*, S, S, S, S*, std::int64_t,   \
                                     std::int64_t, S*);                                         \
  template void cholesky_interleaved<S>(Context&, const S*, std::int64_t, std::int64_t, S*, S*, \
                                        int*);                                                  \
  template void potrf_batched<S>(Context&, S*, std::int64_t, std::int64_t, int*);               \
  template void student_t_batch_log_pdf<S>(Context&, const S*, const S*, const S*, const S*,    \
                                           const S*, const S*, std::int64_t, std::int64_t, S*,  \
                                           S*);
BAYPR_CUDA_INSTANTIATE(float)
BAYPR_CUDA_INSTANTIATE(double)
#undef BAYPR_CUDA_INSTANTIATE

}  // namespace baypr::cuda::device
