// baypr/core/simd.hpp: the lane types of baypr's batched kernels ("SIMD across matrices").
//
//   simd::ScalarLanes<T>        one lane, plain T: the portable path, and the reference the
//                               vectorised path is tested against
//   simd::XsimdLanes<T, Arch>   xsimd::batch<T, Arch>: SSE / AVX2 / AVX-512 / NEON lanes
//                               (only where baypr::simd is linked: BAYPR_WITH_XSIMD)
//   simd::DefaultLanes<T>       XsimdLanes<T> on xsimd's best architecture for the compile flags
//                               where BAYPR_WITH_XSIMD is defined, else ScalarLanes<T>
//
// A lane type is a small traits struct: Pack holds `width` values of T (lane k of every register
// belongs to problem k of a group), Mask one flag per lane, and the static functions below are the
// only operations the batched kernels use. The core stays Eigen-only: xsimd is an optional layer.
//
// The architecture follows the compile flags (-march) and DefaultLanes follows BAYPR_WITH_XSIMD:
// every translation unit of one program must agree on both (link baypr::simd to all of its
// targets or to none), as with Eigen's own vectorisation, or classes holding batches differ in
// layout between files (an ODR violation no tool reports). NEON lanes need AArch64 for double.
#pragma once

#include <cmath>
#include <cstddef>

#if defined(BAYPR_WITH_XSIMD)
#include <xsimd/xsimd.hpp>
#endif

namespace baypr::simd {

template <class T>
struct ScalarLanes {
  using Scalar = T;
  using Pack = T;
  using Mask = bool;
  static constexpr std::ptrdiff_t width = 1;

  static Pack load(const T* p) { return *p; }
  static void store(T* p, Pack v) { *p = v; }
  static Pack splat(T x) { return x; }
  static Pack fnma(Pack a, Pack b, Pack c) { return c - a * b; }  // c - a b
  static Pack sqrt(Pack x) { return std::sqrt(x); }
  static Pack log(Pack x) { return std::log(x); }
  static Pack log1p(Pack x) { return std::log1p(x); }
  // x > 0 fails for NaN too, so a NaN pivot counts as "not positive".
  static Mask not_positive(Pack x) { return !(x > T(0)); }
  static Mask either(Mask a, Mask b) { return a || b; }
  static Pack select(Mask m, Pack a, Pack b) { return m ? a : b; }
  static bool any(Mask m) { return m; }
  static void store_mask(bool* out, Mask m) { *out = m; }
};

#if defined(BAYPR_WITH_XSIMD)
template <class T, class Arch = xsimd::default_arch>
struct XsimdLanes {
  using Scalar = T;
  using Pack = xsimd::batch<T, Arch>;
  using Mask = xsimd::batch_bool<T, Arch>;
  static constexpr std::ptrdiff_t width = static_cast<std::ptrdiff_t>(Pack::size);

  static Pack load(const T* p) { return Pack::load_unaligned(p); }
  static void store(T* p, const Pack& v) { v.store_unaligned(p); }
  static Pack splat(T x) { return Pack(x); }
  static Pack fnma(const Pack& a, const Pack& b, const Pack& c) { return xsimd::fnma(a, b, c); }
  static Pack sqrt(const Pack& x) { return xsimd::sqrt(x); }
  static Pack log(const Pack& x) { return xsimd::log(x); }
  static Pack log1p(const Pack& x) { return xsimd::log1p(x); }
  static Mask not_positive(const Pack& x) { return !(x > Pack(T(0))); }
  static Mask either(const Mask& a, const Mask& b) { return a || b; }
  static Pack select(const Mask& m, const Pack& a, const Pack& b) { return xsimd::select(m, a, b); }
  static bool any(const Mask& m) { return xsimd::any(m); }
  static void store_mask(bool* out, const Mask& m) { m.store_unaligned(out); }
};

template <class T>
using DefaultLanes = XsimdLanes<T>;
#else
template <class T>
using DefaultLanes = ScalarLanes<T>;
#endif

}  // namespace baypr::simd
