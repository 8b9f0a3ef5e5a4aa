// baypr/cuda/kernels.cuh: the CUDA layer's kernels, templated on the scalar (float, double).
// For nvcc-compiled code; the compiled library instantiates them behind <baypr/cuda/api.hpp>,
// where the layouts are documented.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace baypr::cuda::kernels {

inline constexpr int block_size = 256;

template <class Scalar>
__device__ inline Scalar log1p_(Scalar x) {
  return log1p(x);
}

// One (value, index) candidate; ordered by value, then by index (ties to the smaller index).
template <class Scalar>
struct Candidate {
  Scalar value;
  std::int64_t index;
};

template <class Scalar>
__device__ inline bool before(const Candidate<Scalar>& a, const Candidate<Scalar>& b) {
  return a.value < b.value || (a.value == b.value && a.index < b.index);
}

// x[i] = value for i < n.
template <class Scalar>
__global__ void fill(Scalar* x, std::int64_t n, Scalar value) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = value;
}

// x(:, j) -= mu for the n columns of a d x n column-major matrix.
template <class Scalar>
__global__ void subtract_location(Scalar* x, const Scalar* mu, std::int64_t n, std::int64_t d) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n * d) return;
  x[t] -= mu[t % d];
}

// out[j] = log_norm - half_v_plus_d * log1p(|y(:, j)|^2 / dof): one warp per column of the
// d x n column-major y (each column contiguous, read once, coalesced).
template <class Scalar>
__global__ void student_t_from_whitened(const Scalar* y, std::int64_t n, std::int64_t d,
                                        Scalar log_norm, Scalar half_v_plus_d, Scalar dof,
                                        Scalar* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const std::int64_t j = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (j >= n) return;
  const Scalar* col = y + j * d;
  Scalar s = 0;
  for (std::int64_t i = lane; i < d; i += 32) s += col[i] * col[i];
  for (int offset = 16; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
  if (lane == 0) out[j] = log_norm - half_v_plus_d * log1p_(s / dof);
}

// Merges one tile of GEMM scores into each query's running k best. Block j owns query j: every
// thread keeps a sorted list of its k best candidates from its strided share of the tile (thread
// 0 starts from the running list of the earlier tiles), then k rounds of a block-wide arg-min
// over the lists' heads write the new running list. s(i, j) = bank_norms[t0 + i] - 2 * dots(i, j)
// with dots the rows x m column-major GEMM tile.
template <class Scalar, int MaxK>
__global__ void merge_tile_top_k(const Scalar* dots, std::int64_t rows, std::int64_t t0,
                                 const Scalar* bank_norms, std::int64_t k, bool first_tile,
                                 Scalar* best_value, std::int64_t* best_index) {
  const std::int64_t j = blockIdx.x;
  const int t = static_cast<int>(threadIdx.x);
  const int kk = static_cast<int>(k);
  Candidate<Scalar> list[MaxK];
  int size = 0;
  auto insert = [&](Candidate<Scalar> c) {
    if (size == kk && !before(c, list[size - 1])) return;
    int pos = size < kk ? size++ : kk - 1;
    while (pos > 0 && before(c, list[pos - 1])) {
      list[pos] = list[pos - 1];
      --pos;
    }
    list[pos] = c;
  };
  if (t == 0 && !first_tile) {
    for (std::int64_t r = 0; r < k; ++r)
      list[size++] = {best_value[j * k + r], best_index[j * k + r]};
  }
  const Scalar* col = dots + j * rows;
  for (std::int64_t i = t; i < rows; i += blockDim.x) {
    insert({bank_norms[t0 + i] - Scalar(2) * col[i], t0 + i});
  }
  __shared__ Scalar warp_value[block_size / 32];
  __shared__ std::int64_t warp_index[block_size / 32];
  __shared__ int warp_owner[block_size / 32];
  __shared__ int winner;
  int head = 0;
  const int lane = t % 32, warp = t / 32, warps = static_cast<int>(blockDim.x) / 32;
  for (std::int64_t r = 0; r < k; ++r) {
    Candidate<Scalar> c{head < size ? list[head].value : Scalar(0),
                        head < size ? list[head].index : INT64_MAX};
    int empty = head >= size ? 1 : 0;
    int owner = t;
    for (int offset = 16; offset > 0; offset /= 2) {
      const Scalar ov = __shfl_down_sync(0xffffffffu, c.value, offset);
      const std::int64_t oi = __shfl_down_sync(0xffffffffu, c.index, offset);
      const int oe = __shfl_down_sync(0xffffffffu, empty, offset);
      const int oo = __shfl_down_sync(0xffffffffu, owner, offset);
      const Candidate<Scalar> other{ov, oi};
      if (!oe && (empty || before(other, c))) {
        c = other;
        empty = 0;
        owner = oo;
      }
    }
    if (lane == 0) {
      warp_value[warp] = c.value;
      warp_index[warp] = empty ? INT64_MAX : c.index;
      warp_owner[warp] = empty ? -1 : owner;
    }
    __syncthreads();
    if (t == 0) {
      int w_best = -1;
      for (int w = 0; w < warps; ++w) {
        if (warp_owner[w] < 0) continue;
        if (w_best < 0 || before(Candidate<Scalar>{warp_value[w], warp_index[w]},
                                 Candidate<Scalar>{warp_value[w_best], warp_index[w_best]})) {
          w_best = w;
        }
      }
      // At least k candidates exist in all (k <= N and every tile's rows are offered).
      best_value[j * k + r] = warp_value[w_best];
      best_index[j * k + r] = warp_index[w_best];
      winner = warp_owner[w_best];
    }
    __syncthreads();
    if (t == winner) ++head;
    __syncthreads();
  }
}

// Exact squared distances of the chosen neighbours, then each query's k sorted by (distance,
// index). One thread per query.
template <class Scalar>
__global__ void finish_neighbours(const Scalar* bank, const Scalar* queries, std::int64_t m,
                                  std::int64_t d, std::int64_t k, Scalar* distance,
                                  std::int64_t* index) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= m) return;
  const Scalar* q = queries + j * d;
  Scalar* dist = distance + j * k;
  std::int64_t* idx = index + j * k;
  for (std::int64_t r = 0; r < k; ++r) {
    const Scalar* b = bank + idx[r] * d;
    Scalar s = 0;
    for (std::int64_t l = 0; l < d; ++l) {
      const Scalar diff = b[l] - q[l];
      s += diff * diff;
    }
    dist[r] = s;
  }
  for (std::int64_t r = 1; r < k; ++r) {
    const Candidate<Scalar> c{dist[r], idx[r]};
    std::int64_t p = r;
    while (p > 0 && before(c, Candidate<Scalar>{dist[p - 1], idx[p - 1]})) {
      dist[p] = dist[p - 1];
      idx[p] = idx[p - 1];
      --p;
    }
    dist[p] = c.value;
    idx[p] = c.index;
  }
}

// Squared norms of the N rows of x (N x p row-major), one thread per row.
template <class Scalar>
__global__ void row_squared_norms(const Scalar* x, std::int64_t N, std::int64_t p, Scalar* out) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  Scalar s = 0;
  for (std::int64_t l = 0; l < p; ++l) s += x[i * p + l] * x[i * p + l];
  out[i] = s;
}

// centre = row *next of x; also records *next as selected[step].
template <class Scalar>
__global__ void gather_centre(const Scalar* x, std::int64_t p, const std::int64_t* next,
                              Scalar* centre, std::int64_t* selected, std::int64_t step) {
  const std::int64_t l = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (l == 0) selected[step] = *next;
  if (l < p) centre[l] = x[*next * p + l];
}

// min_dist = min(min_dist, max(0, (norms + |c|^2) - 2 dots)); the centre itself gets -1 (as
// the CPU greedy: it is never chosen again, even among duplicate rows).
template <class Scalar>
__global__ void update_min_distance(const Scalar* norms, const Scalar* dots,
                                    const std::int64_t* next, std::int64_t N, Scalar* min_dist) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  const std::int64_t c = *next;
  if (i == c) {
    min_dist[i] = Scalar(-1);
    return;
  }
  Scalar v = (norms[i] + norms[c]) - Scalar(2) * dots[i];
  v = v > Scalar(0) ? v : Scalar(0);
  if (v < min_dist[i]) min_dist[i] = v;
}

// *next = the first index of the largest min_dist (one block).
template <class Scalar>
__global__ void arg_max(const Scalar* v, std::int64_t N, std::int64_t* next) {
  __shared__ Scalar best_value[block_size];
  __shared__ std::int64_t best_index[block_size];
  const int t = static_cast<int>(threadIdx.x);
  Scalar bv = v[0];
  std::int64_t bi = 0;
  for (std::int64_t i = t; i < N; i += blockDim.x) {
    if (v[i] > bv || (v[i] == bv && i < bi)) {
      bv = v[i];
      bi = i;
    }
  }
  best_value[t] = bv;
  best_index[t] = bi;
  __syncthreads();
  for (int stride = static_cast<int>(blockDim.x) / 2; stride > 0; stride /= 2) {
    if (t < stride) {
      const Scalar ov = best_value[t + stride];
      const std::int64_t oi = best_index[t + stride];
      if (ov > best_value[t] || (ov == best_value[t] && oi < best_index[t])) {
        best_value[t] = ov;
        best_index[t] = oi;
      }
    }
    __syncthreads();
  }
  if (t == 0) *next = best_index[0];
}

__host__ __device__ inline std::int64_t packed(std::int64_t i, std::int64_t j) {
  return i * (i + 1) / 2 + j;
}

// Cholesky-Banachiewicz of matrix b = thread b, in the interleaved packed layout.
template <class Scalar>
__global__ void cholesky_interleaved(const Scalar* A, std::int64_t batch, std::int64_t d, Scalar* L,
                                     Scalar* log_det, int* info) {
  const std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  auto at = [&](std::int64_t i, std::int64_t j) { return packed(i, j) * batch + b; };
  Scalar logdet = 0;
  int failed = 0;
  for (std::int64_t i = 0; i < d && failed == 0; ++i) {
    for (std::int64_t j = 0; j <= i; ++j) {
      Scalar s = A[at(i, j)];
      for (std::int64_t l = 0; l < j; ++l) s -= L[at(i, l)] * L[at(j, l)];
      if (j < i) {
        L[at(i, j)] = s / L[at(j, j)];
      } else if (s > Scalar(0) && isfinite(s)) {
        const Scalar r = sqrt(s);
        L[at(i, i)] = r;
        logdet += Scalar(2) * log(r);
      } else {
        L[at(i, i)] = s;  // the failing pivot's value, as the CPU batch reports it
        failed = static_cast<int>(i) + 1;
      }
    }
  }
  log_det[b] = failed == 0 ? logdet : static_cast<Scalar>(NAN);
  info[b] = failed;
}

// Per-position Student-t: model b scores point b (interleaved layouts, one thread per model).
template <class Scalar>
__global__ void student_t_batch(const Scalar* L, const Scalar* location, const Scalar* log_norm,
                                const Scalar* half_v_plus_d, const Scalar* dof, const Scalar* x,
                                std::int64_t batch, std::int64_t d, Scalar* y, Scalar* out) {
  const std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  Scalar delta = 0;
  for (std::int64_t i = 0; i < d; ++i) {
    Scalar s = x[i * batch + b] - location[i * batch + b];
    for (std::int64_t l = 0; l < i; ++l) s -= L[packed(i, l) * batch + b] * y[l * batch + b];
    const Scalar yi = s / L[packed(i, i) * batch + b];
    y[i * batch + b] = yi;
    delta += yi * yi;
  }
  out[b] = log_norm[b] - half_v_plus_d[b] * log1p_(delta / dof[b]);
}

}  // namespace baypr::cuda::kernels
