// src/cuda/knn.cu: exact k-nearest-neighbour search (GEMM tiles, top-k merged on the device) and
// the greedy k-centre coreset.
#include <algorithm>
#include <limits>

#include "blas.cuh"

namespace baypr::cuda::device {

template <class Scalar>
void knn_search(Context& ctx, const Scalar* bank, const Scalar* bank_norms, std::int64_t N,
                const Scalar* queries, std::int64_t m, std::int64_t d, std::int64_t k,
                std::int64_t* indices, Scalar* distances) {
  constexpr const char* fn = "baypr::cuda::device::knn_search";
  check_knn_k(fn, k, N);
  if (m == 0) return;
  auto& c = ctx.impl();
  const int di = detail::to_int(d, fn, "d"), mi = detail::to_int(m, fn, "m");
  detail::to_int(N, fn, "N");
  // Bank rows per GEMM tile: the rows x m tile of scores within 256 MiB, and at least k rows so
  // that the first tile alone fills each query's list.
  constexpr std::int64_t budget = std::int64_t{256} << 20;
  std::int64_t tile = budget / (m * static_cast<std::int64_t>(sizeof(Scalar)));
  tile = std::min(std::max(tile, std::max<std::int64_t>(k, 256)), N);  // k <= N, so tile >= k
  auto* dots =
      static_cast<Scalar*>(c.scratch_for(static_cast<std::size_t>(tile * m) * sizeof(Scalar), fn));
  const Scalar one = 1, zero = 0;
  for (std::int64_t t0 = 0; t0 < N; t0 += tile) {
    const std::int64_t rows = std::min(tile, N - t0);
    const int ri = static_cast<int>(rows);
    // dots (rows x m, column-major) = bank[t0 : t0 + rows] * queries^T.
    BAYPR_CUDA_CHECK(fn, detail::gemm(c.blas, CUBLAS_OP_T, CUBLAS_OP_N, ri, mi, di, &one,
                                      bank + t0 * d, di, queries, di, &zero, dots, ri));
    kernels::merge_tile_top_k<Scalar, static_cast<int>(max_knn_k)>
        <<<static_cast<unsigned>(m), kernels::block_size, 0, c.stream>>>(
            dots, rows, t0, bank_norms, k, t0 == 0, distances, indices);
    detail::check_launch(fn, "merge_tile_top_k");
  }
  kernels::finish_neighbours<<<detail::blocks_for(m), kernels::block_size, 0, c.stream>>>(
      bank, queries, m, d, k, distances, indices);
  detail::check_launch(fn, "finish_neighbours");
}

template <class Scalar>
void greedy_coreset(Context& ctx, const Scalar* x, std::int64_t N, std::int64_t p,
                    std::int64_t count, std::int64_t first, std::int64_t* selected) {
  constexpr const char* fn = "baypr::cuda::device::greedy_coreset";
  if (count < 1 || count > N) {
    baypr::detail::throw_invalid(
        fn, "count",
        "must be in [1, rows = " + std::to_string(N) + "], got " + std::to_string(count));
  }
  if (first < 0 || first >= N) {
    baypr::detail::throw_invalid(
        fn, "first",
        "must be a row index below " + std::to_string(N) + ", got " + std::to_string(first));
  }
  auto& c = ctx.impl();
  const int pi = detail::to_int(p, fn, "p"), ni = detail::to_int(N, fn, "N");
  // Scratch: the chosen index, then norms, min_dist, dots (N each) and the centre (p).
  const std::size_t bytes =
      sizeof(std::int64_t) + static_cast<std::size_t>(3 * N + p) * sizeof(Scalar);
  auto* base = static_cast<char*>(c.scratch_for(bytes, fn));
  auto* next = reinterpret_cast<std::int64_t*>(base);
  auto* norms = reinterpret_cast<Scalar*>(base + sizeof(std::int64_t));
  Scalar* min_dist = norms + N;
  Scalar* dots = min_dist + N;
  Scalar* centre = dots + N;
  const unsigned row_blocks = detail::blocks_for(N);
  kernels::row_squared_norms<<<row_blocks, kernels::block_size, 0, c.stream>>>(x, N, p, norms);
  detail::check_launch(fn, "row_squared_norms");
  kernels::fill<<<row_blocks, kernels::block_size, 0, c.stream>>>(
      min_dist, N, std::numeric_limits<Scalar>::infinity());
  detail::check_launch(fn, "fill");
  BAYPR_CUDA_CHECK(fn,
                   cudaMemcpyAsync(next, &first, sizeof first, cudaMemcpyHostToDevice, c.stream));
  const Scalar one = 1, zero = 0;
  for (std::int64_t step = 0; step < count; ++step) {
    kernels::gather_centre<<<detail::blocks_for(p), kernels::block_size, 0, c.stream>>>(
        x, p, next, centre, selected, step);
    detail::check_launch(fn, "gather_centre");
    // dots = X^T centre, X the p x N column-major view of the rows.
    BAYPR_CUDA_CHECK(fn, detail::gemv_t(c.blas, pi, ni, &one, x, pi, centre, &zero, dots));
    kernels::update_min_distance<<<row_blocks, kernels::block_size, 0, c.stream>>>(
        norms, dots, next, N, min_dist);
    detail::check_launch(fn, "update_min_distance");
    if (step + 1 == count) break;
    kernels::arg_max<<<1, kernels::block_size, 0, c.stream>>>(min_dist, N, next);
    detail::check_launch(fn, "arg_max");
  }
  // `first` (the copy's source) must outlive the queued work.
  detail::synchronize(ctx, fn);
}

#define BAYPR_CUDA_INSTANTIATE(S)                                                                 \
  template void knn_search<S>(Context&, const S*, const S*, std::int64_t, const S*, std::int64_t, \
                              std::int64_t, std::int64_t, std::int64_t*, S*);                     \
  template void greedy_coreset<S>(Context&, const S*, std::int64_t, std::int64_t, std::int64_t,   \
                                  std::int64_t, std::int64_t*);
BAYPR_CUDA_INSTANTIATE(float)
BAYPR_CUDA_INSTANTIATE(double)
#undef BAYPR_CUDA_INSTANTIATE

}  // namespace baypr::cuda::device
