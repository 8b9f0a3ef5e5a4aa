// baypr/score/detail/knn_kernel.hpp: the inner loops of score/knn.hpp's exact k-NN search, kept
// apart from its public types: the register-blocked GEMM tile kernel on packed panels, the bounded
// max-heap of a query's k best, and the vectorised scan of one tile column that feeds it.
// Not part of the public API (namespace baypr::detail); see score/knn.hpp for the method.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>

namespace baypr::detail {

// The tile kernel: C (MR x NR, column-major in the tile) = or += A B over a depth slice, with A
// packed as MR contiguous bank values per depth step and B as NR contiguous query values per step.
// Two SIMD packets by six columns keep 12 accumulators, two A packets and one broadcast in 15
// vector registers (AVX2 / SSE have 16), so nothing spills. On one Zen 3 core (AVX2 + FMA, GCC 12)
// it runs at ~96 GFLOP/s in float on packed data, against ~70 for Eigen's own gebp kernel, whose
// 24 x 4 shape needs all 16 registers and spills. Written with Eigen's packet primitives
// (pload, pset1, pmadd: Eigen::internal, stable since Eigen 3.3), so it follows whatever SIMD
// Eigen was compiled for (SSE2, AVX, AVX-512, NEON; scalar when vectorisation is off).
template <class Scalar>
struct KnnKernel {
  using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
  static constexpr Eigen::Index packet = Eigen::internal::packet_traits<Scalar>::size;
  static constexpr Eigen::Index mr = 2 * packet;  // bank rows per micro-tile
  static constexpr Eigen::Index nr = 6;           // queries per micro-tile

  // c[j * ldc + r] (r < mr, j < nr) = (accumulate ? c : 0) + sum_k a[k * mr + r] * b[k * nr + j].
  static EIGEN_ALWAYS_INLINE void micro(Eigen::Index depth, const Scalar* a, const Scalar* b,
                                        Scalar* c, Eigen::Index ldc, bool accumulate) {
    using namespace Eigen::internal;
    Packet c0[nr], c1[nr];
    for (Eigen::Index j = 0; j < nr; ++j) {
      c0[j] = pset1<Packet>(Scalar(0));
      c1[j] = pset1<Packet>(Scalar(0));
    }
    for (Eigen::Index k = 0; k < depth; ++k) {
      const Packet a0 = pload<Packet>(a);
      const Packet a1 = pload<Packet>(a + packet);
      for (Eigen::Index j = 0; j < nr; ++j) {
        const Packet bj = pset1<Packet>(b[j]);
        c0[j] = pmadd(a0, bj, c0[j]);
        c1[j] = pmadd(a1, bj, c1[j]);
      }
      a += mr;
      b += nr;
    }
    for (Eigen::Index j = 0; j < nr; ++j) {
      Scalar* cj = c + j * ldc;
      if (accumulate) {
        c0[j] = padd(c0[j], ploadu<Packet>(cj));
        c1[j] = padd(c1[j], ploadu<Packet>(cj + packet));
      }
      pstoreu(cj, c0[j]);
      pstoreu(cj + packet, c1[j]);
    }
  }

  // Packs rows [r0, r0 + rows) of the augmented bank (row-major, `width` = d + 1 columns) as
  // ceil(rows / mr) panels of width x mr, zero-padded to whole panels.
  static void pack_bank(const Scalar* aug, Eigen::Index width, Eigen::Index r0, Eigen::Index rows,
                        Scalar* out) {
    for (Eigen::Index p0 = 0; p0 < rows; p0 += mr) {
      const Eigen::Index pr = std::min(mr, rows - p0);
      Scalar* panel = out + p0 * width;
      if (pr < mr) std::fill(panel, panel + width * mr, Scalar(0));
      for (Eigen::Index r = 0; r < pr; ++r) {
        const Scalar* row = aug + (r0 + p0 + r) * width;
        for (Eigen::Index k = 0; k < width; ++k) panel[k * mr + r] = row[k];
      }
    }
  }

  // Packs query rows [q0, q0 + count) as ceil(count / nr) panels of (d + 1) x nr holding
  // [-2 q; 1], zero-padded to whole panels: the tile product is then ||b||^2 - 2 q.b.
  template <class Q>
  static void pack_queries(const Q& queries, Eigen::Index q0, Eigen::Index count, Scalar* out) {
    const Eigen::Index d = queries.cols(), width = d + 1;
    for (Eigen::Index p0 = 0; p0 < count; p0 += nr) {
      const Eigen::Index pc = std::min(nr, count - p0);
      Scalar* panel = out + p0 * width;
      if (pc < nr) std::fill(panel, panel + width * nr, Scalar(0));
      for (Eigen::Index j = 0; j < pc; ++j) {
        const Eigen::Index i = q0 + p0 + j;
        for (Eigen::Index k = 0; k < d; ++k) panel[k * nr + j] = Scalar(-2) * queries.coeff(i, k);
        panel[d * nr + j] = Scalar(1);
      }
    }
  }

  // The tile C (rows x cols, column-major, leading dimension ldc >= whole panels of rows) from
  // packed bank rows and packed queries of depth `width`, in depth slices of `kc`: each A
  // micro-panel slice stays in L1 while it meets every query panel, whose slice stays in L2.
  static void tile(const Scalar* apack, Eigen::Index rows, const Scalar* bpack, Eigen::Index cols,
                   Eigen::Index width, Eigen::Index kc, Scalar* c, Eigen::Index ldc) {
    for (Eigen::Index k0 = 0; k0 < width; k0 += kc) {
      const Eigen::Index kk = std::min(kc, width - k0);
      for (Eigen::Index i = 0; i < rows; i += mr) {
        const Scalar* a = apack + i * width + k0 * mr;
        for (Eigen::Index j = 0; j < cols; j += nr) {
          micro(kk, a, bpack + j * width + k0 * nr, c + j * ldc + i, ldc, k0 > 0);
        }
      }
    }
  }
};

inline Eigen::Index knn_round_up(Eigen::Index x, Eigen::Index multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

// Bounded max-heap on parallel arrays (distance, index), ordered lexicographically so that the
// top is the worst of the current k best: larger distance, or equal distance and larger index.
template <class Scalar>
inline bool knn_worse(Scalar da, Eigen::Index ia, Scalar db, Eigen::Index ib) {
  return da > db || (da == db && ia > ib);
}

template <class Scalar>
inline void knn_heap_push(Scalar* dist, Eigen::Index* idx, Eigen::Index size, Scalar v,
                          Eigen::Index id) {
  Eigen::Index c = size;
  while (c > 0) {
    const Eigen::Index p = (c - 1) / 2;
    if (!knn_worse(v, id, dist[p], idx[p])) break;
    dist[c] = dist[p];
    idx[c] = idx[p];
    c = p;
  }
  dist[c] = v;
  idx[c] = id;
}

template <class Scalar>
inline void knn_heap_replace_top(Scalar* dist, Eigen::Index* idx, Eigen::Index size, Scalar v,
                                 Eigen::Index id) {
  Eigen::Index c = 0;
  for (;;) {
    const Eigen::Index l = 2 * c + 1;
    if (l >= size) break;
    const Eigen::Index r = l + 1;
    const Eigen::Index w = (r < size && knn_worse(dist[r], idx[r], dist[l], idx[l])) ? r : l;
    if (!knn_worse(dist[w], idx[w], v, id)) break;
    dist[c] = dist[w];
    idx[c] = idx[w];
    c = w;
  }
  dist[c] = v;
  idx[c] = id;
}

// Offers the `len` values g[0..len) (bank rows base, base + 1, ...) to one query's heap of
// capacity k holding `filled` entries. Bank indices only increase from one call to the next, so a
// value equal to the current k-th best never displaces it (the tie goes to the smaller index).
template <class Scalar>
inline void knn_scan(const Scalar* g, Eigen::Index len, Eigen::Index base, Scalar* dist,
                     Eigen::Index* idx, Eigen::Index k, Eigen::Index& filled) {
  Eigen::Index i = 0;
  for (; filled < k && i < len; ++i) knn_heap_push(dist, idx, filled++, g[i], base + i);
  if (i == len) return;
  Scalar thr = dist[0];
  // Four SIMD packets per chunk: the vectorised minimum rejects a chunk in a few instructions.
  constexpr Eigen::Index chunk = 4 * Eigen::internal::packet_traits<Scalar>::size;
  using Chunk = Eigen::Array<Scalar, chunk, 1>;
  for (; i + chunk <= len; i += chunk) {
    if (!(Eigen::Map<const Chunk>(g + i).minCoeff() < thr)) continue;
    for (Eigen::Index t = i; t < i + chunk; ++t) {
      if (g[t] < thr) {
        knn_heap_replace_top(dist, idx, k, g[t], base + t);
        thr = dist[0];
      }
    }
  }
  for (; i < len; ++i) {
    if (g[i] < thr) {
      knn_heap_replace_top(dist, idx, k, g[i], base + i);
      thr = dist[0];
    }
  }
}

}  // namespace baypr::detail
