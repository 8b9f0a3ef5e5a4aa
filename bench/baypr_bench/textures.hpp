// bench/baypr_bench/textures.hpp: an MVTec-AD-like texture anomaly benchmark on grey textures
// (e.g. GIMP patterns): normal crops, synthetic defects with exact pixel masks, a fixed patch
// embedding, and a few-shot episode runner reporting image and pixel AUROC per defect type. The
// repository's benchmark code, not the library's API: this directory is not installed.
//
//   NuisanceOptions, normal_crop(texture, size, rng, nuisance)      a normal image
//   DefectType {cut_paste, scratch, blotch, hole}, defect_name(type)
//   DefectImage add_defect(normal, type, rng, other_texture)        image + exact mask
//   PatchFeatureOptions, PatchGrid patch_grid(image_size, options), patch_feature_dim(options)
//   Eigen::MatrixXd patch_features(image, options)                  one row per patch
//   Eigen::ArrayXXd patch_scores_to_map(patch_scores, grid)         patch scores -> pixel map
//   TextureCategory, TextureOptions, TextureResults
//   TextureResults run_texture_episodes(categories, options, methods = texture_episode_methods())
//   std::vector<EpisodeMethod> texture_episode_methods()
//
// Textures are Eigen::ArrayXXd, rows = y, values in [0, 1], at least 2 x 2. GIMP patterns tile
// seamlessly, so every read of a texture wraps around (periodic) and is bilinear between pixels.
//
// Randomness: only std::mt19937_64 (its output is fixed by the standard) read through
// core/random.hpp's uniform01, standard_normal and uniform_below, never a std::*_distribution
// (their algorithms differ between standard libraries), so a seed gives the same random draws
// everywhere (the pixel geometry goes through libm's sin, cos, atan2 and sqrt,
// which can differ in the last bit between C libraries; bit-identical images are promised only
// for the same build).
//
// normal_crop: a size x size image; output pixel (i, j) reads the texture at
//   offset + c + scale R(angle) (i - c, j - c),   c = (size - 1) / 2,
// with an integer offset uniform over the texture (drawn first: row, then column), angle uniform in
// +-rotation_degrees, scale uniform in [scale_min, scale_max]; then v -> clamp(gain v + bias, 0,
// 1), gain uniform in 1 +- gain, bias uniform in +-bias. Every call draws the same number of values
// whatever the options, and with no nuisance (NuisanceOptions::none()) the crop is exactly the
// periodic sub-block of the texture at the offset (bilinear weights 1 and 0 at integer points).
//
// add_defect on a normal image (any shape, at least 16 x 16, values in [0, 1]); sizes scale with
// the shorter side n:
//   cut_paste  a rectangle, each side 8-25% of n, copied from `other_texture` (required) at a
//              random periodic offset, its mean moved half-way towards the covered region's mean
//              (mild matching: the foreign texture stays visible)
//   scratch    a 1-3 px wide quadratic Bezier curve (straight to clearly bent), length 30-70% of n,
//              random direction; pixels move 70-95% of the way to 0.03 or 0.97 (usually the side
//              away from the image mean)
//   blotch     the union of 2-4 overlapping ellipses with wavy borders (a stain): pixels are
//              blended (weight 0.6 at the border rising to 1 inside) towards a 5 x 5 box blur of
//              the image shifted by +-(0.15..0.3)
//   hole       an ellipse, semi-axes 5-13% of n: near-black core (0.02..0.05, +-0.005 noise) and a
//              slightly lighter rim (0.08..0.15 brighter, the outer quarter of the radius)
// The mask is exactly the set of pixels whose value changed (a pixel whose new value happens to
// equal the old one is not in it). A draw whose mask covers less than 0.5% or more than 15% of the
// image is redrawn (up to 64 times, then baypr::numerical_error: e.g. a constant image that a
// defect cannot change).
//
// Patch embedding (fixed, untrained: no learned weights anywhere): on a square image of side S, a
// grid of patches of side `patch` every `stride` pixels, rows = cols = (S - patch) / stride + 1
// (S - patch must be a multiple of stride and stride <= patch, so the grid covers every pixel
// exactly to the border). Each patch's descriptor is the concatenation of
//   raw      the patch's patch x patch pixels, row-major (when options.raw)
//   context  the context x context window centred on the patch (context - patch even), average-
//            pooled in context_pool x context_pool cells, row-major (when options.context > 0);
//            pixels outside the image are clamped to the nearest border pixel (crops are not
//            periodic, so wrapping would read the opposite edge)
// Defaults: 8 x 8 patches, stride 4, 16 x 16 context pooled 2 x 2: d = 64 + 64 = 128, and 64 px
// images give 15 x 15 = 225 patches. Rows are the patches in row-major grid order. No
// standardisation here: patch_features is a pure function of the image. patch_scores_to_map gives
// each pixel the mean score of the patches covering it.
//
// Episodes: for category index c, shot K and episode e, a std::mt19937_64 seeded from (seed, c, K,
// e) through derive_seed (as run_one_class_episodes) draws, in this order: the K support
// crops; normal_queries normal crops; then for every defect type in options.defect_types,
// anomalous_per_type defect images, each a fresh normal crop with add_defect applied (for
// cut_paste the source is another category's texture, chosen uniformly by the same rng, so
// cut_paste needs >= 2 categories). The images depend only on (seed, c, K, e), not on the methods,
// so methods are compared on identical episodes (paired). Patch features of support and queries are
// standardised per episode with the mean and sd (n - 1) of the support patches, the sd floored at
// max(1e-3 x mean sd, 1e-12): the support is all a few-shot method may look at. Each method is fit
// on all support patch rows and scores all query patch rows (higher = more anomalous; every method
// in texture_episode_methods follows that convention); image score = max over the image's patches,
// pixel map = patch_scores_to_map. Per episode: image AUROC over all queries (normal vs every
// anomaly) and per defect type (normal vs that type); pixel AUROC over every pixel of every query
// (normal images give all-negative pixels) and per type (normal queries plus that type's), all
// from one sort of the pixels (the values baypr::pixel_auroc gives on each subset).
// Kept as well: every image score (cheap; per method, category and K an episodes x queries matrix,
// columns in the query order above, TextureResults::query_types saying which is which), and with
// keep_examples, for the first episode of each category at the largest K, the support and query
// images, the masks and every method's pixel maps (for heatmap figures).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/eval/episodes.hpp"
#include "baypr/eval/metrics.hpp"
#include "baypr/score/baselines.hpp"
#include "baypr/score/bayesian.hpp"
#include "baypr/score/patchcore.hpp"
#include "baypr/score/scorer.hpp"

namespace baypr {

using DefectMask = Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic>;

struct NuisanceOptions {
  double rotation_degrees = 5.0;  // angle uniform in [-rotation_degrees, rotation_degrees]
  double scale_min = 0.95;  // texture pixels per image pixel, uniform in [scale_min, scale_max]
  double scale_max = 1.05;
  double gain = 0.05;  // brightness gain uniform in [1 - gain, 1 + gain]
  double bias = 0.05;  // brightness offset uniform in [-bias, bias]

  [[nodiscard]] static NuisanceOptions none() { return {0.0, 1.0, 1.0, 0.0, 0.0}; }
};

enum class DefectType { cut_paste, scratch, blotch, hole };

[[nodiscard]] inline std::string_view defect_name(DefectType type) {
  switch (type) {
    case DefectType::cut_paste:
      return "cut_paste";
    case DefectType::scratch:
      return "scratch";
    case DefectType::blotch:
      return "blotch";
    case DefectType::hole:
      return "hole";
  }
  return "unknown";
}

[[nodiscard]] inline std::vector<DefectType> all_defect_types() {
  return {DefectType::cut_paste, DefectType::scratch, DefectType::blotch, DefectType::hole};
}

struct DefectImage {
  Eigen::ArrayXXd image;
  DefectMask mask;  // true = pixel changed by the defect
  DefectType type;
};

struct PatchFeatureOptions {
  Eigen::Index patch = 8;         // patch side
  Eigen::Index stride = 4;        // grid step, 1 <= stride <= patch
  bool raw = true;                // include the raw patch pixels
  Eigen::Index context = 16;      // context window side; 0: no context part
  Eigen::Index context_pool = 2;  // context average-pooling cell side (divides context)
};

struct PatchGrid {
  Eigen::Index image_size = 0, patch = 0, stride = 0, rows = 0, cols = 0;
  [[nodiscard]] Eigen::Index count() const { return rows * cols; }
};

namespace detail {

inline double uniform_in(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform01(rng);
}

inline bool coin(std::mt19937_64& rng, double p_true) {
  return uniform01(rng) < p_true;
}

inline double as_double(Eigen::Index i) {
  return static_cast<double>(i);
}

inline Eigen::Index wrap_index(Eigen::Index i, Eigen::Index n) {
  const Eigen::Index r = i % n;
  return r < 0 ? r + n : r;
}

// Bilinear read of a periodic texture at (y, x); exact at integer points.
inline double sample_periodic(const Eigen::ArrayXXd& t, double y, double x) {
  const double fy = std::floor(y), fx = std::floor(x);
  const double wy = y - fy, wx = x - fx;
  const Eigen::Index y0 = wrap_index(static_cast<Eigen::Index>(fy), t.rows());
  const Eigen::Index x0 = wrap_index(static_cast<Eigen::Index>(fx), t.cols());
  const Eigen::Index y1 = y0 + 1 == t.rows() ? 0 : y0 + 1;
  const Eigen::Index x1 = x0 + 1 == t.cols() ? 0 : x0 + 1;
  return (1.0 - wy) * ((1.0 - wx) * t(y0, x0) + wx * t(y0, x1)) +
         wy * ((1.0 - wx) * t(y1, x0) + wx * t(y1, x1));
}

inline void check_grey_image(std::string_view fn, std::string_view arg, const Eigen::ArrayXXd& t,
                             Eigen::Index min_side) {
  if (t.rows() < min_side || t.cols() < min_side) {
    throw_invalid(fn, arg,
                  "must be at least " + std::to_string(min_side) + " x " +
                      std::to_string(min_side) + " pixels, got " + std::to_string(t.rows()) +
                      " x " + std::to_string(t.cols()));
  }
  check_finite(fn, arg, t);
  for (Eigen::Index j = 0; j < t.cols(); ++j) {
    for (Eigen::Index i = 0; i < t.rows(); ++i) {
      if (t(i, j) < 0.0 || t(i, j) > 1.0) {
        throw_invalid(fn, arg,
                      "must have values in [0, 1], got " + format_value(t(i, j)) + " at row " +
                          std::to_string(i) + ", column " + std::to_string(j));
      }
    }
  }
}

inline void check_nuisance(std::string_view fn, const NuisanceOptions& o) {
  if (!(o.rotation_degrees >= 0.0 && o.rotation_degrees <= 180.0)) {
    throw_invalid(fn, "nuisance.rotation_degrees",
                  "must be in [0, 180], got " + format_value(o.rotation_degrees));
  }
  if (!(o.scale_min > 0.0 && o.scale_min <= o.scale_max && std::isfinite(o.scale_max))) {
    throw_invalid(fn, "nuisance.scale_min / scale_max",
                  "must satisfy 0 < scale_min <= scale_max < inf, got " +
                      format_value(o.scale_min) + " and " + format_value(o.scale_max));
  }
  if (!(o.gain >= 0.0 && o.gain < 1.0))
    throw_invalid(fn, "nuisance.gain", "must be in [0, 1), got " + format_value(o.gain));
  if (!(o.bias >= 0.0 && o.bias < 1.0))
    throw_invalid(fn, "nuisance.bias", "must be in [0, 1), got " + format_value(o.bias));
}

// Box mean over the (2 r + 1)^2 window at (i, j), pixels beyond the border clamped.
inline double box_mean(const Eigen::ArrayXXd& img, Eigen::Index i, Eigen::Index j, Eigen::Index r) {
  double sum = 0.0;
  for (Eigen::Index a = -r; a <= r; ++a) {
    const Eigen::Index y = std::clamp<Eigen::Index>(i + a, 0, img.rows() - 1);
    for (Eigen::Index b = -r; b <= r; ++b)
      sum += img(y, std::clamp<Eigen::Index>(j + b, 0, img.cols() - 1));
  }
  return sum / as_double((2 * r + 1) * (2 * r + 1));
}

// Distance from (y, x) to the segment a-b.
inline double segment_distance(double y, double x, double ay, double ax, double by, double bx) {
  const double vy = by - ay, vx = bx - ax, wy = y - ay, wx = x - ax;
  const double len2 = vy * vy + vx * vx;
  const double t = len2 > 0.0 ? std::clamp((wy * vy + wx * vx) / len2, 0.0, 1.0) : 0.0;
  const double dy = wy - t * vy, dx = wx - t * vx;
  return std::sqrt(dy * dy + dx * dx);
}

// One draw of a defect's new pixel values (may leave pixels unchanged).
inline Eigen::ArrayXXd draw_defect(const Eigen::ArrayXXd& img, DefectType type,
                                   std::mt19937_64& rng, const Eigen::ArrayXXd* other) {
  const Eigen::Index h = img.rows(), w = img.cols();
  const double n = as_double(std::min(h, w));
  Eigen::ArrayXXd out = img;
  switch (type) {
    case DefectType::cut_paste: {
      const auto rh = std::max<Eigen::Index>(
          2, static_cast<Eigen::Index>(std::lround(uniform_in(rng, 0.08, 0.25) * n)));
      const auto rw = std::max<Eigen::Index>(
          2, static_cast<Eigen::Index>(std::lround(uniform_in(rng, 0.08, 0.25) * n)));
      const auto y0 =
          static_cast<Eigen::Index>(uniform_below(rng, static_cast<std::uint64_t>(h - rh + 1)));
      const auto x0 =
          static_cast<Eigen::Index>(uniform_below(rng, static_cast<std::uint64_t>(w - rw + 1)));
      const auto sy =
          static_cast<Eigen::Index>(uniform_below(rng, static_cast<std::uint64_t>(other->rows())));
      const auto sx =
          static_cast<Eigen::Index>(uniform_below(rng, static_cast<std::uint64_t>(other->cols())));
      Eigen::ArrayXXd src(rh, rw);
      for (Eigen::Index i = 0; i < rh; ++i) {
        for (Eigen::Index j = 0; j < rw; ++j)
          src(i, j) =
              (*other)(wrap_index(sy + i, other->rows()), wrap_index(sx + j, other->cols()));
      }
      const double src_mean = src.mean(), dst_mean = img.block(y0, x0, rh, rw).mean();
      const double shift = 0.5 * (dst_mean - src_mean);
      out.block(y0, x0, rh, rw) = (src + shift).cwiseMax(0.0).cwiseMin(1.0);
      break;
    }
    case DefectType::scratch: {
      const double p0y = uniform_in(rng, 0.0, as_double(h - 1)),
                   p0x = uniform_in(rng, 0.0, as_double(w - 1));
      const double dir = uniform_in(rng, 0.0, 2.0 * std::numbers::pi);
      const double len = uniform_in(rng, 0.3, 0.7) * n;
      const double bend = uniform_in(rng, -0.3, 0.3) * len;
      const double half_width =
          0.5 * as_double(1 + static_cast<Eigen::Index>(uniform_below(rng, 3)));
      const bool toward_light = coin(rng, 0.75) == (img.mean() < 0.5);
      const double target = toward_light ? 0.97 : 0.03;
      const double alpha = uniform_in(rng, 0.7, 0.95);
      const double p2y = p0y + len * std::sin(dir), p2x = p0x + len * std::cos(dir);
      const double p1y = 0.5 * (p0y + p2y) + bend * std::cos(dir),
                   p1x = 0.5 * (p0x + p2x) - bend * std::sin(dir);
      constexpr int pieces = 32;
      std::vector<double> cy(pieces + 1), cx(pieces + 1);
      for (int k = 0; k <= pieces; ++k) {
        const double t = static_cast<double>(k) / pieces, s = 1.0 - t;
        cy[static_cast<std::size_t>(k)] = s * s * p0y + 2.0 * s * t * p1y + t * t * p2y;
        cx[static_cast<std::size_t>(k)] = s * s * p0x + 2.0 * s * t * p1x + t * t * p2x;
      }
      for (Eigen::Index j = 0; j < w; ++j) {
        for (Eigen::Index i = 0; i < h; ++i) {
          double dist = std::numeric_limits<double>::infinity();
          for (std::size_t k = 0; k < pieces; ++k) {
            dist = std::min(dist, segment_distance(as_double(i), as_double(j), cy[k], cx[k],
                                                   cy[k + 1], cx[k + 1]));
          }
          if (dist <= half_width) out(i, j) = img(i, j) + alpha * (target - img(i, j));
        }
      }
      break;
    }
    case DefectType::blotch: {
      const double cy = uniform_in(rng, 0.2, 0.8) * as_double(h),
                   cx = uniform_in(rng, 0.2, 0.8) * as_double(w);
      const auto count = 2 + static_cast<int>(uniform_below(rng, 3));
      struct Blob {
        double y, x, a, b, cos_t, sin_t, amp, freq, phase;
      };
      std::vector<Blob> blobs;
      for (int k = 0; k < count; ++k) {
        Blob bl{};
        bl.y = cy + 0.06 * n * standard_normal(rng);
        bl.x = cx + 0.06 * n * standard_normal(rng);
        bl.a = uniform_in(rng, 0.05, 0.12) * n;
        bl.b = uniform_in(rng, 0.05, 0.12) * n;
        const double theta = uniform_in(rng, 0.0, std::numbers::pi);
        bl.cos_t = std::cos(theta);
        bl.sin_t = std::sin(theta);
        bl.amp = uniform_in(rng, 0.05, 0.2);
        bl.freq = as_double(2 + static_cast<Eigen::Index>(uniform_below(rng, 3)));
        bl.phase = uniform_in(rng, 0.0, 2.0 * std::numbers::pi);
        blobs.push_back(bl);
      }
      const double shift = (coin(rng, 0.5) ? 1.0 : -1.0) * uniform_in(rng, 0.15, 0.3);
      for (Eigen::Index j = 0; j < w; ++j) {
        for (Eigen::Index i = 0; i < h; ++i) {
          double inside = 0.0;  // max over blobs of 1 - (normalised radius); > 0 inside the stain
          for (const Blob& bl : blobs) {
            const double dy = as_double(i) - bl.y, dx = as_double(j) - bl.x;
            const double u = bl.cos_t * dx + bl.sin_t * dy, v = -bl.sin_t * dx + bl.cos_t * dy;
            const double r = std::sqrt(u * u / (bl.a * bl.a) + v * v / (bl.b * bl.b));
            const double wavy = 1.0 + bl.amp * std::sin(bl.freq * std::atan2(v, u) + bl.phase);
            inside = std::max(inside, 1.0 - r / wavy);
          }
          if (inside > 0.0) {
            const double weight = 0.6 + 0.4 * std::min(1.0, inside / 0.3);
            const double stain = box_mean(img, i, j, 2) + shift;
            out(i, j) = std::clamp(img(i, j) + weight * (stain - img(i, j)), 0.0, 1.0);
          }
        }
      }
      break;
    }
    case DefectType::hole: {
      const double cy = uniform_in(rng, 0.15, 0.85) * as_double(h),
                   cx = uniform_in(rng, 0.15, 0.85) * as_double(w);
      const double a = uniform_in(rng, 0.05, 0.13) * n, b = uniform_in(rng, 0.05, 0.13) * n;
      const double theta = uniform_in(rng, 0.0, std::numbers::pi);
      const double ct = std::cos(theta), st = std::sin(theta);
      const double dark = uniform_in(rng, 0.02, 0.05);
      const double rim = dark + uniform_in(rng, 0.08, 0.15);
      for (Eigen::Index j = 0; j < w; ++j) {
        for (Eigen::Index i = 0; i < h; ++i) {
          const double dy = as_double(i) - cy, dx = as_double(j) - cx;
          const double u = ct * dx + st * dy, v = -st * dx + ct * dy;
          const double r = std::sqrt(u * u / (a * a) + v * v / (b * b));
          if (r < 1.0) {
            // The slight noise keeps the core from being a flat constant, as a real hole's is not.
            const double noise = 0.01 * (uniform01(rng) - 0.5);
            out(i, j) = std::clamp((r < 0.75 ? dark : rim) + noise, 0.0, 1.0);
          }
        }
      }
      break;
    }
  }
  return out;
}

}  // namespace detail

// A size x size normal image: a crop of the periodic texture with mild nuisance (see the header
// comment for the exact mapping and the order of the draws).
[[nodiscard]] inline Eigen::ArrayXXd normal_crop(const Eigen::ArrayXXd& texture, Eigen::Index size,
                                                 std::mt19937_64& rng,
                                                 const NuisanceOptions& nuisance = {}) {
  constexpr std::string_view fn = "baypr::normal_crop";
  detail::check_grey_image(fn, "texture", texture, 2);
  if (size < 1) detail::throw_invalid(fn, "size", "must be >= 1, got " + std::to_string(size));
  detail::check_nuisance(fn, nuisance);
  const double oy = detail::as_double(
      static_cast<Eigen::Index>(uniform_below(rng, static_cast<std::uint64_t>(texture.rows()))));
  const double ox = detail::as_double(
      static_cast<Eigen::Index>(uniform_below(rng, static_cast<std::uint64_t>(texture.cols()))));
  const double max_angle = nuisance.rotation_degrees * std::numbers::pi / 180.0;
  const double angle = detail::uniform_in(rng, -max_angle, max_angle);
  const double scale = detail::uniform_in(rng, nuisance.scale_min, nuisance.scale_max);
  const double gain = detail::uniform_in(rng, 1.0 - nuisance.gain, 1.0 + nuisance.gain);
  const double bias = detail::uniform_in(rng, -nuisance.bias, nuisance.bias);
  const double ca = scale * std::cos(angle), sa = scale * std::sin(angle);
  const double c = 0.5 * detail::as_double(size - 1);
  Eigen::ArrayXXd out(size, size);
  for (Eigen::Index j = 0; j < size; ++j) {
    const double dx = detail::as_double(j) - c;
    for (Eigen::Index i = 0; i < size; ++i) {
      const double dy = detail::as_double(i) - c;
      const double v = detail::sample_periodic(texture, oy + c + (ca * dy - sa * dx),
                                               ox + c + (sa * dy + ca * dx));
      out(i, j) = std::clamp(gain * v + bias, 0.0, 1.0);
    }
  }
  return out;
}

// `normal` with one synthetic defect of the given type and its exact mask (see the header comment).
// other_texture: the cut_paste source (required for cut_paste, ignored otherwise).
[[nodiscard]] inline DefectImage add_defect(const Eigen::ArrayXXd& normal, DefectType type,
                                            std::mt19937_64& rng,
                                            const Eigen::ArrayXXd* other_texture = nullptr) {
  constexpr std::string_view fn = "baypr::add_defect";
  detail::check_grey_image(fn, "normal", normal, 16);
  if (type != DefectType::cut_paste && type != DefectType::scratch && type != DefectType::blotch &&
      type != DefectType::hole) {
    detail::throw_invalid(fn, "type",
                          "is not a DefectType, got " + std::to_string(static_cast<int>(type)));
  }
  if (type == DefectType::cut_paste) {
    if (other_texture == nullptr)
      detail::throw_invalid(fn, "other_texture", "is required for cut_paste, got nullptr");
    detail::check_grey_image(fn, "other_texture", *other_texture, 2);
  }
  const auto total = detail::as_double(normal.size());
  for (int attempt = 0; attempt < 64; ++attempt) {
    DefectImage out{detail::draw_defect(normal, type, rng, other_texture), DefectMask(), type};
    out.mask = out.image != normal;
    const double area = detail::as_double(out.mask.count()) / total;
    if (area >= 0.005 && area <= 0.15) return out;
  }
  detail::throw_numerical(
      fn, "could not draw a " + std::string(defect_name(type)) +
              " defect changing 0.5% to 15% of the image in 64 attempts (is the image constant?)");
}

// The patch grid of a square image of side image_size, validating the options.
[[nodiscard]] inline PatchGrid patch_grid(Eigen::Index image_size, const PatchFeatureOptions& o) {
  constexpr std::string_view fn = "baypr::patch_grid";
  if (o.patch < 1)
    detail::throw_invalid(fn, "options.patch", "must be >= 1, got " + std::to_string(o.patch));
  if (o.stride < 1 || o.stride > o.patch) {
    detail::throw_invalid(fn, "options.stride",
                          "must be in [1, patch = " + std::to_string(o.patch) +
                              "] so every pixel is covered, got " + std::to_string(o.stride));
  }
  if (image_size < o.patch) {
    detail::throw_invalid(fn, "image_size",
                          "must be >= options.patch = " + std::to_string(o.patch) + ", got " +
                              std::to_string(image_size));
  }
  if ((image_size - o.patch) % o.stride != 0) {
    detail::throw_invalid(
        fn, "image_size",
        "minus options.patch must be a multiple of options.stride = " + std::to_string(o.stride) +
            " (so the grid reaches the border), got " + std::to_string(image_size));
  }
  if (o.context < 0)
    detail::throw_invalid(fn, "options.context", "must be >= 0, got " + std::to_string(o.context));
  if (o.context > 0) {
    if (o.context_pool < 1 || o.context % o.context_pool != 0) {
      detail::throw_invalid(
          fn, "options.context_pool",
          "must be >= 1 and divide options.context = " + std::to_string(o.context) + ", got " +
              std::to_string(o.context_pool));
    }
    if ((o.context - o.patch) % 2 != 0) {
      detail::throw_invalid(
          fn, "options.context",
          "minus options.patch must be even (a centred window), got " + std::to_string(o.context));
    }
  }
  if (!o.raw && o.context == 0)
    detail::throw_invalid(fn, "options", "must enable raw or context (context > 0)");
  const Eigen::Index n = (image_size - o.patch) / o.stride + 1;
  return {image_size, o.patch, o.stride, n, n};
}

[[nodiscard]] inline Eigen::Index patch_feature_dim(const PatchFeatureOptions& o) {
  const Eigen::Index cells = o.context > 0 && o.context_pool > 0 ? o.context / o.context_pool : 0;
  return (o.raw ? o.patch * o.patch : 0) + cells * cells;
}

// One descriptor row per patch of the (square) image, row-major over the grid.
[[nodiscard]] inline Eigen::MatrixXd patch_features(const Eigen::ArrayXXd& image,
                                                    const PatchFeatureOptions& o = {}) {
  constexpr std::string_view fn = "baypr::patch_features";
  if (image.rows() != image.cols()) {
    detail::throw_invalid(fn, "image",
                          "must be square, got " + std::to_string(image.rows()) + " x " +
                              std::to_string(image.cols()));
  }
  detail::check_finite(fn, "image", image);
  const PatchGrid grid = patch_grid(image.rows(), o);
  const Eigen::Index last = image.rows() - 1;
  const Eigen::Index cells = o.context > 0 ? o.context / o.context_pool : 0;
  const double pool_area = o.context > 0 ? detail::as_double(o.context_pool * o.context_pool) : 1.0;
  // Row-major output: each patch's descriptor is written contiguously.
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> out(grid.count(),
                                                                             patch_feature_dim(o));
  for (Eigen::Index gi = 0; gi < grid.rows; ++gi) {
    for (Eigen::Index gj = 0; gj < grid.cols; ++gj) {
      const Eigen::Index y = gi * o.stride, x = gj * o.stride, row = gi * grid.cols + gj;
      Eigen::Index f = 0;
      if (o.raw) {
        for (Eigen::Index a = 0; a < o.patch; ++a) {
          for (Eigen::Index b = 0; b < o.patch; ++b) out(row, f++) = image(y + a, x + b);
        }
      }
      const Eigen::Index top = y + (o.patch - o.context) / 2, left = x + (o.patch - o.context) / 2;
      for (Eigen::Index u = 0; u < cells; ++u) {
        for (Eigen::Index v = 0; v < cells; ++v) {
          double sum = 0.0;
          for (Eigen::Index a = 0; a < o.context_pool; ++a) {
            const Eigen::Index yy = std::clamp<Eigen::Index>(top + u * o.context_pool + a, 0, last);
            for (Eigen::Index b = 0; b < o.context_pool; ++b) {
              sum += image(yy, std::clamp<Eigen::Index>(left + v * o.context_pool + b, 0, last));
            }
          }
          out(row, f++) = sum / pool_area;
        }
      }
    }
  }
  return out;
}

// Pixel map from patch scores (grid.count() values, row-major grid order): each pixel is the mean
// score of the patches covering it.
[[nodiscard]] inline Eigen::ArrayXXd patch_scores_to_map(const Eigen::VectorXd& patch_scores,
                                                         const PatchGrid& grid) {
  constexpr std::string_view fn = "baypr::patch_scores_to_map";
  if (grid.patch < 1 || grid.stride < 1 || grid.stride > grid.patch || grid.rows < 1 ||
      grid.cols < 1 || (grid.rows - 1) * grid.stride + grid.patch != grid.image_size ||
      (grid.cols - 1) * grid.stride + grid.patch != grid.image_size) {
    detail::throw_invalid(fn, "grid",
                          "must cover the image exactly (stride <= patch, (rows - 1) stride + "
                          "patch = image_size), got "
                          "image_size " +
                              std::to_string(grid.image_size) + ", patch " +
                              std::to_string(grid.patch) + ", stride " +
                              std::to_string(grid.stride) + ", " + std::to_string(grid.rows) +
                              " x " + std::to_string(grid.cols));
  }
  detail::check_size(fn, "patch_scores", "size", patch_scores.size(), grid.count());
  detail::check_finite(fn, "patch_scores", patch_scores);
  Eigen::ArrayXXd sum = Eigen::ArrayXXd::Zero(grid.image_size, grid.image_size);
  Eigen::ArrayXXd count = Eigen::ArrayXXd::Zero(grid.image_size, grid.image_size);
  for (Eigen::Index gi = 0; gi < grid.rows; ++gi) {
    for (Eigen::Index gj = 0; gj < grid.cols; ++gj) {
      const double s = patch_scores(gi * grid.cols + gj);
      sum.block(gi * grid.stride, gj * grid.stride, grid.patch, grid.patch) += s;
      count.block(gi * grid.stride, gj * grid.stride, grid.patch, grid.patch) += 1.0;
    }
  }
  return sum / count;
}

struct TextureCategory {
  std::string name;
  Eigen::ArrayXXd texture;  // rows = y, values in [0, 1], periodic
};

struct TextureOptions {
  std::vector<Eigen::Index> shots = {1, 2, 4, 8};
  int episodes = 10;  // per category per K (>= 2, for the interval)
  std::uint64_t seed = 2026;
  Eigen::Index normal_queries = 12;
  Eigen::Index anomalous_per_type = 4;
  std::vector<DefectType> defect_types = all_defect_types();
  Eigen::Index image_size = 64;
  PatchFeatureOptions features;
  NuisanceOptions nuisance;
  std::function<void(std::string_view)> progress;  // called once per (category, K) when set
  bool keep_examples = false;
};

// One episode's metrics for one method.
struct TextureEpisodeResult {
  double image_auroc = 0.0, pixel_auroc = 0.0;                   // all defect types together
  std::vector<double> image_auroc_by_type, pixel_auroc_by_type;  // per options.defect_types entry
};

// The first episode of one category at the largest K (keep_examples).
struct TextureExample {
  std::string category;
  Eigen::Index shot = 0;
  std::vector<Eigen::ArrayXXd> support, queries;
  std::vector<DefectMask> masks;                   // per query (all false for normal ones)
  std::vector<std::vector<Eigen::ArrayXXd>> maps;  // maps[m][q]: method m's pixel map of query q
};

enum class TextureMetric { image_auroc, pixel_auroc };

struct TextureResults {
  std::vector<std::string> methods, categories;
  std::vector<Eigen::Index> shots;
  std::vector<DefectType> defect_types;
  // Query q of every episode: -1 normal, else the index into defect_types of its defect.
  std::vector<int> query_types;
  // episodes[m][c][k][e]: method m, category c, shot index k, episode e.
  std::vector<std::vector<std::vector<std::vector<TextureEpisodeResult>>>> episodes;
  // image_scores[m][c][k]: episodes x queries, row e = episode e, columns as query_types.
  std::vector<std::vector<std::vector<Eigen::MatrixXd>>> image_scores;
  std::vector<TextureExample> examples;  // one per category with keep_examples, else empty

  // 0 / 1 image labels of the queries (1 = defective), in query order.
  [[nodiscard]] Eigen::VectorXi query_labels() const {
    Eigen::VectorXi out(static_cast<Eigen::Index>(query_types.size()));
    for (std::size_t q = 0; q < query_types.size(); ++q)
      out(static_cast<Eigen::Index>(q)) = query_types[q] >= 0 ? 1 : 0;
    return out;
  }

  // Per episode, the mean over categories of a metric (all defect types together, or defect type
  // index `type` when >= 0): the values a summary table's mean and interval come from.
  // Throws baypr::invalid_argument for m, k or type out of range.
  [[nodiscard]] std::vector<double> class_averaged(TextureMetric metric, std::size_t m,
                                                   std::size_t k, int type = -1) const {
    constexpr std::string_view fn = "baypr::TextureResults::class_averaged";
    detail::check_index(fn, "m", m, methods.size());
    detail::check_index(fn, "k", k, shots.size());
    if (type < -1 || type >= static_cast<int>(defect_types.size())) {
      detail::throw_invalid(fn, "type",
                            "must be -1 (all types) or in [0, " +
                                std::to_string(defect_types.size()) + "), got " +
                                std::to_string(type));
    }
    if (episodes.size() != methods.size() || categories.empty()) {
      detail::throw_invalid(fn, "this", "holds no results for its methods and categories");
    }
    const auto& per_c = episodes[m];
    const auto t = static_cast<std::size_t>(type);
    return group_averaged(per_c.size(), per_c.at(0).at(k).size(),
                          [&](std::size_t c, std::size_t e) {
                            const TextureEpisodeResult& r = per_c.at(c).at(k).at(e);
                            if (metric == TextureMetric::image_auroc) {
                              return type < 0 ? r.image_auroc : r.image_auroc_by_type.at(t);
                            }
                            return type < 0 ? r.pixel_auroc : r.pixel_auroc_by_type.at(t);
                          });
  }

  // mean_interval of class_averaged: the table entry.
  [[nodiscard]] MeanInterval summary(TextureMetric metric, std::size_t m, std::size_t k,
                                     int type = -1, double level = 0.95) const {
    return mean_interval(class_averaged(metric, m, k, type), level);
  }
};

// The texture benchmark's methods (higher = more anomalous for each): Bayesian llr, nll and tail
// with the empirical-Bayes Psi0 scale (kappa0 = 0.01, as measured; with K x 225 patches the support
// outweighs the prior), PatchCore with a 10% and a 100% coreset, prototype (squared distance to the
// support mean), Gaussian (Ledoit-Wolf Mahalanobis).
[[nodiscard]] inline std::vector<EpisodeMethod> texture_episode_methods(
    Path bayes_path = Path::automatic) {
  BayesianScorerOptions llr;
  llr.empirical_psi_scale = true;
  llr.kappa0 = 0.01;
  llr.path = bayes_path;
  BayesianScorerOptions nll = llr, tail = llr;
  nll.score = BayesScore::nll;
  tail.score = BayesScore::tail;
  PatchCoreOptions tenth, all_rows;
  tenth.coreset.ratio = 0.1;
  all_rows.coreset.ratio = 1.0;
  return {make_episode_method("bayes llr (EB Psi0)", BayesianScorer(llr)),
          make_episode_method("bayes nll (EB Psi0)", BayesianScorer(nll)),
          make_episode_method("bayes tail (EB Psi0)", BayesianScorer(tail)),
          make_episode_method("patchcore (coreset 10%)", PatchCoreScorer<double>(tenth)),
          make_episode_method("patchcore (coreset 100%)", PatchCoreScorer<double>(all_rows)),
          make_episode_method("prototype", PrototypeScorer()),
          make_episode_method("gaussian (Ledoit-Wolf)", GaussianScorer())};
}

namespace detail {

// Pixel AUROC over all query pixels and per defect type (normal images' pixels plus that type's)
// from one sort: the same values as baypr::pixel_auroc on each subset (Mann-Whitney, ties 1/2,
// 2U accumulated exactly as an integer), without sorting every subset again. types[q]: -1 normal,
// else the defect type index; every subset has both classes by construction.
struct PixelAurocs {
  double all = 0.0;
  std::vector<double> by_type;
};

inline PixelAurocs pixel_aurocs(const std::vector<Eigen::ArrayXXd>& maps,
                                const std::vector<DefectMask>& masks, const std::vector<int>& types,
                                std::size_t n_types) {
  struct Pixel {
    double score;
    std::size_t group;  // 0: normal image, 1 + t: defect type t
    bool positive;
  };
  const std::size_t groups = n_types + 1;
  std::size_t total = 0;
  for (const auto& m : maps) total += static_cast<std::size_t>(m.size());
  std::vector<Pixel> pixels;
  pixels.reserve(total);
  std::vector<std::uint64_t> pos(groups, 0), neg(groups, 0);
  for (std::size_t q = 0; q < maps.size(); ++q) {
    const auto g = static_cast<std::size_t>(types[q] + 1);
    for (Eigen::Index i = 0; i < maps[q].size(); ++i) {
      const bool positive = masks[q](i);
      pixels.push_back(Pixel{maps[q](i), g, positive});
      ++(positive ? pos : neg)[g];
    }
  }
  std::sort(pixels.begin(), pixels.end(),
            [](const Pixel& a, const Pixel& b) { return a.score > b.score; });
  std::vector<std::uint64_t> dp(groups), dn(groups), seen_neg(groups, 0),
      two_u(groups, 0);  // two_u[0]: all
  std::uint64_t all_pos = 0, all_neg = 0;
  for (std::size_t g = 0; g < groups; ++g) {
    all_pos += pos[g];
    all_neg += neg[g];
  }
  std::size_t i = 0;
  while (i < pixels.size()) {
    std::fill(dp.begin(), dp.end(), 0);
    std::fill(dn.begin(), dn.end(), 0);
    const double threshold = pixels[i].score;
    for (; i < pixels.size() && pixels[i].score == threshold; ++i)
      ++(pixels[i].positive ? dp : dn)[pixels[i].group];
    std::uint64_t tie_p = 0, tie_n = 0, seen = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      tie_p += dp[g];
      tie_n += dn[g];
      seen += seen_neg[g];
    }
    two_u[0] += 2 * tie_p * (all_neg - seen - tie_n) + tie_p * tie_n;
    for (std::size_t g = 1; g < groups; ++g) {
      const std::uint64_t n_ties = dn[0] + dn[g],
                          below = neg[0] + neg[g] - seen_neg[0] - seen_neg[g] - n_ties;
      two_u[g] += 2 * dp[g] * below + dp[g] * n_ties;
    }
    for (std::size_t g = 0; g < groups; ++g) seen_neg[g] += dn[g];
  }
  PixelAurocs out;
  out.all = static_cast<double>(two_u[0]) /
            (2.0 * static_cast<double>(all_pos) * static_cast<double>(all_neg));
  for (std::size_t g = 1; g < groups; ++g) {
    out.by_type.push_back(static_cast<double>(two_u[g]) / (2.0 * static_cast<double>(pos[g]) *
                                                           static_cast<double>(neg[0] + neg[g])));
  }
  return out;
}

}  // namespace detail

[[nodiscard]] inline TextureResults run_texture_episodes(
    const std::vector<TextureCategory>& categories, const TextureOptions& options,
    const std::vector<EpisodeMethod>& methods = texture_episode_methods()) {
  constexpr std::string_view fn = "baypr::run_texture_episodes";
  if (categories.empty()) detail::throw_invalid(fn, "categories", "must not be empty");
  if (methods.empty()) detail::throw_invalid(fn, "methods", "must not be empty");
  for (const auto& cat : categories)
    detail::check_grey_image(fn, "categories[" + cat.name + "].texture", cat.texture, 2);
  if (options.episodes < 2) {
    detail::throw_invalid(fn, "options.episodes",
                          "must be >= 2, got " + std::to_string(options.episodes));
  }
  if (options.shots.empty()) detail::throw_invalid(fn, "options.shots", "must not be empty");
  for (const Eigen::Index k : options.shots) {
    if (k < 1)
      detail::throw_invalid(fn, "options.shots", "must all be >= 1, got K = " + std::to_string(k));
  }
  if (options.normal_queries < 1) {
    detail::throw_invalid(fn, "options.normal_queries",
                          "must be >= 1, got " + std::to_string(options.normal_queries));
  }
  if (options.anomalous_per_type < 1) {
    detail::throw_invalid(fn, "options.anomalous_per_type",
                          "must be >= 1, got " + std::to_string(options.anomalous_per_type));
  }
  if (options.defect_types.empty())
    detail::throw_invalid(fn, "options.defect_types", "must not be empty");
  const bool uses_cut_paste = std::find(options.defect_types.begin(), options.defect_types.end(),
                                        DefectType::cut_paste) != options.defect_types.end();
  if (uses_cut_paste && categories.size() < 2) {
    detail::throw_invalid(
        fn, "categories",
        "must hold at least 2 textures when cut_paste is used (its source is another category), "
        "got " +
            std::to_string(categories.size()));
  }
  if (options.image_size < options.features.patch) {
    detail::throw_invalid(
        fn, "options.image_size",
        "must be >= options.features.patch = " + std::to_string(options.features.patch) + ", got " +
            std::to_string(options.image_size));
  }
  if (options.image_size < 16) {
    detail::throw_invalid(
        fn, "options.image_size",
        "must be >= 16 (room for defects), got " + std::to_string(options.image_size));
  }
  detail::check_nuisance(fn, options.nuisance);
  const PatchGrid grid = patch_grid(options.image_size, options.features);
  const Eigen::Index p = grid.count(), d = patch_feature_dim(options.features);
  if (*std::min_element(options.shots.begin(), options.shots.end()) * p < 2) {
    detail::throw_invalid(
        fn, "options.shots",
        "gives a support of 1 patch (K = 1, one patch per image): the standardisation needs >= 2");
  }

  TextureResults out;
  out.methods.reserve(methods.size());
  for (const auto& m : methods) out.methods.push_back(m.name);
  for (const auto& cat : categories) out.categories.push_back(cat.name);
  out.shots = options.shots;
  out.defect_types = options.defect_types;
  out.query_types.assign(static_cast<std::size_t>(options.normal_queries), -1);
  for (std::size_t t = 0; t < options.defect_types.size(); ++t) {
    out.query_types.insert(out.query_types.end(),
                           static_cast<std::size_t>(options.anomalous_per_type),
                           static_cast<int>(t));
  }
  const Eigen::VectorXi labels = out.query_labels();
  const auto n_queries = static_cast<Eigen::Index>(out.query_types.size());
  const std::size_t n_types = options.defect_types.size();
  out.episodes.assign(
      methods.size(),
      std::vector<std::vector<std::vector<TextureEpisodeResult>>>(
          categories.size(), std::vector<std::vector<TextureEpisodeResult>>(out.shots.size())));
  out.image_scores.assign(
      methods.size(),
      std::vector<std::vector<Eigen::MatrixXd>>(
          categories.size(), std::vector<Eigen::MatrixXd>(
                                 out.shots.size(), Eigen::MatrixXd(options.episodes, n_queries))));
  const std::size_t example_k = static_cast<std::size_t>(
      std::max_element(out.shots.begin(), out.shots.end()) - out.shots.begin());

  for (std::size_t ci = 0; ci < categories.size(); ++ci) {
    const Eigen::ArrayXXd& texture = categories[ci].texture;
    for (std::size_t ki = 0; ki < out.shots.size(); ++ki) {
      const Eigen::Index k = out.shots[ki];
      if (options.progress) {
        options.progress("category " + categories[ci].name + ", K = " + std::to_string(k) + ": " +
                         std::to_string(options.episodes) + " episodes");
      }
      for (int e = 0; e < options.episodes; ++e) {
        std::mt19937_64 rng(derive_seed(
            options.seed, {static_cast<std::uint64_t>(ci), static_cast<std::uint64_t>(k),
                           static_cast<std::uint64_t>(e)}));

        std::vector<Eigen::ArrayXXd> support, queries;
        std::vector<DefectMask> masks;
        for (Eigen::Index i = 0; i < k; ++i)
          support.push_back(normal_crop(texture, options.image_size, rng, options.nuisance));
        for (Eigen::Index i = 0; i < options.normal_queries; ++i) {
          queries.push_back(normal_crop(texture, options.image_size, rng, options.nuisance));
          masks.push_back(DefectMask::Constant(options.image_size, options.image_size, false));
        }
        for (const DefectType type : options.defect_types) {
          for (Eigen::Index i = 0; i < options.anomalous_per_type; ++i) {
            const Eigen::ArrayXXd base =
                normal_crop(texture, options.image_size, rng, options.nuisance);
            const Eigen::ArrayXXd* other = nullptr;
            if (type == DefectType::cut_paste) {
              auto oc = static_cast<std::size_t>(uniform_below(rng, categories.size() - 1));
              if (oc >= ci) ++oc;
              other = &categories[oc].texture;
            }
            DefectImage defect = add_defect(base, type, rng, other);
            queries.push_back(std::move(defect.image));
            masks.push_back(std::move(defect.mask));
          }
        }

        Eigen::MatrixXd support_rows(k * p, d), query_rows(n_queries * p, d);
        for (Eigen::Index i = 0; i < k; ++i) {
          support_rows.middleRows(i * p, p) =
              patch_features(support[static_cast<std::size_t>(i)], options.features);
        }
        for (Eigen::Index i = 0; i < n_queries; ++i) {
          query_rows.middleRows(i * p, p) =
              patch_features(queries[static_cast<std::size_t>(i)], options.features);
        }
        const Eigen::RowVectorXd mean = support_rows.colwise().mean();
        support_rows.rowwise() -= mean;
        query_rows.rowwise() -= mean;
        Eigen::RowVectorXd sd =
            (support_rows.colwise().squaredNorm() / detail::as_double(support_rows.rows() - 1))
                .cwiseSqrt();
        sd = sd.cwiseMax(std::max(1e-3 * sd.mean(), 1e-12));
        support_rows.array().rowwise() /= sd.array();
        query_rows.array().rowwise() /= sd.array();

        const bool keep = options.keep_examples && e == 0 && ki == example_k;
        TextureExample example;
        if (keep) {
          example.category = categories[ci].name;
          example.shot = k;
          example.support = support;
          example.queries = queries;
          example.masks = masks;
        }
        for (std::size_t m = 0; m < methods.size(); ++m) {
          const Eigen::VectorXd flat = methods[m].fit_score(support_rows, query_rows);
          if (flat.size() != n_queries * p) {
            detail::throw_invalid(fn, "methods[" + methods[m].name + "]",
                                  "returned " + std::to_string(flat.size()) +
                                      " scores, expected one per query patch, " +
                                      std::to_string(n_queries * p));
          }
          const Eigen::Map<
              const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
              patch_scores(flat.data(), n_queries, p);
          const Eigen::VectorXd image = aggregate(patch_scores, Aggregation::max());
          std::vector<Eigen::ArrayXXd> maps;
          maps.reserve(static_cast<std::size_t>(n_queries));
          for (Eigen::Index q = 0; q < n_queries; ++q) {
            maps.push_back(patch_scores_to_map(patch_scores.row(q).transpose(), grid));
          }
          TextureEpisodeResult r;
          r.image_auroc = auroc(image, labels);
          detail::PixelAurocs pixel = detail::pixel_aurocs(maps, masks, out.query_types, n_types);
          r.pixel_auroc = pixel.all;
          r.pixel_auroc_by_type = std::move(pixel.by_type);
          for (std::size_t t = 0; t < n_types; ++t) {
            const auto type = static_cast<int>(t);
            Eigen::VectorXd sub_scores(options.normal_queries + options.anomalous_per_type);
            Eigen::VectorXi sub_labels(sub_scores.size());
            Eigen::Index j = 0;
            for (Eigen::Index q = 0; q < n_queries; ++q) {
              const int qt = out.query_types[static_cast<std::size_t>(q)];
              if (qt < 0 || qt == type) {
                sub_scores(j) = image(q);
                sub_labels(j++) = qt < 0 ? 0 : 1;
              }
            }
            r.image_auroc_by_type.push_back(auroc(sub_scores, sub_labels));
          }
          out.episodes[m][ci][ki].push_back(std::move(r));
          out.image_scores[m][ci][ki].row(e) = image.transpose();
          if (keep) example.maps.push_back(std::move(maps));
        }
        if (keep) out.examples.push_back(std::move(example));
      }
    }
  }
  return out;
}

}  // namespace baypr
