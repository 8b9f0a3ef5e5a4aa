// bench/baypr_bench/textures.hpp: deterministic crops (and exact periodic sub-blocks without nuisance),
// every defect type's mask being exactly the changed pixels with a bounded area, patch features
// against a naive per-pixel reference, patch-score maps on hand-derived cases, and the episode
// runner end to end on synthetic periodic textures (shapes, reproducibility, real signal).
#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "baypr/io/pat.hpp"
#include "baypr_bench/textures.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

namespace {

// Periodic test textures: white noise box-blurred with wrap-around (radius 0 = raw noise),
// rescaled to [0.1, 0.9]; and oblique stripes with a little noise.
Eigen::ArrayXXd noise_texture(Eigen::Index rows, Eigen::Index cols, int radius,
                              std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Eigen::ArrayXXd raw(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i)
      raw(i, j) = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  }
  Eigen::ArrayXXd out = Eigen::ArrayXXd::Zero(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i) {
      for (int a = -radius; a <= radius; ++a) {
        for (int b = -radius; b <= radius; ++b) {
          out(i, j) += raw(((i + a) % rows + rows) % rows, ((j + b) % cols + cols) % cols);
        }
      }
    }
  }
  out = (out - out.minCoeff()) / (out.maxCoeff() - out.minCoeff());
  return 0.1 + 0.8 * out;
}

Eigen::ArrayXXd stripe_texture(Eigen::Index n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Eigen::ArrayXXd out(n, n);
  const double pi = 3.141592653589793;
  for (Eigen::Index j = 0; j < n; ++j) {
    for (Eigen::Index i = 0; i < n; ++i) {
      const double noise = static_cast<double>(rng() >> 11) * 0x1.0p-53 - 0.5;
      out(i, j) =
          0.5 + 0.3 * std::sin(2.0 * pi * static_cast<double>(3 * j + i) / static_cast<double>(n)) +
          0.1 * noise;
    }
  }
  return out;
}

std::vector<baypr::TextureCategory> three_categories() {
  return {{"fine noise", noise_texture(64, 64, 0, 11)},
          {"coarse noise", noise_texture(64, 64, 2, 12)},
          {"stripes", stripe_texture(64, 13)}};
}

}  // namespace

TEST_CASE("normal_crop: seeded, and exact periodic sub-blocks without nuisance",
          "[eval][textures]") {
  const Eigen::ArrayXXd tex = noise_texture(23, 17, 1, 5);
  std::mt19937_64 a(42), b(42), c(43);
  const Eigen::ArrayXXd ca = baypr::normal_crop(tex, 20, a), cb = baypr::normal_crop(tex, 20, b);
  const Eigen::ArrayXXd cc = baypr::normal_crop(tex, 20, c);
  CHECK((ca == cb).all());
  CHECK_FALSE((ca == cc).all());
  CHECK(ca.rows() == 20);
  CHECK(ca.cols() == 20);
  CHECK(ca.minCoeff() >= 0.0);
  CHECK(ca.maxCoeff() <= 1.0);
  // The next crop from the same generator differs too (state advanced).
  CHECK_FALSE((baypr::normal_crop(tex, 20, a) == ca).all());

  // No nuisance: the crop (larger than the texture, so it wraps) is exactly one periodic sub-block.
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const Eigen::ArrayXXd crop = baypr::normal_crop(tex, 30, rng, baypr::NuisanceOptions::none());
    int matches = 0;
    for (Eigen::Index oy = 0; oy < tex.rows(); ++oy) {
      for (Eigen::Index ox = 0; ox < tex.cols(); ++ox) {
        bool same = true;
        for (Eigen::Index i = 0; i < 30 && same; ++i) {
          for (Eigen::Index j = 0; j < 30 && same; ++j)
            same = crop(i, j) == tex((oy + i) % 23, (ox + j) % 17);
        }
        matches += same ? 1 : 0;
      }
    }
    CHECK(matches == 1);
  }

  // Default nuisance (rotation, scale): not an exact sub-block, but close to the texture's values.
  std::mt19937_64 rng(7);
  const Eigen::ArrayXXd rotated = baypr::normal_crop(tex, 16, rng);
  CHECK(rotated.minCoeff() >= 0.0);
  CHECK(rotated.maxCoeff() <= 1.0);
  CHECK(std::abs(rotated.mean() - tex.mean()) < 0.1);

  // Brightness only: a constant texture c becomes gain c + bias with the documented ranges.
  const Eigen::ArrayXXd flat = Eigen::ArrayXXd::Constant(5, 5, 0.5);
  baypr::NuisanceOptions bright = baypr::NuisanceOptions::none();
  bright.gain = 0.2;
  bright.bias = 0.1;
  double lo = 1.0, hi = 0.0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 r(seed);
    const Eigen::ArrayXXd out = baypr::normal_crop(flat, 4, r, bright);
    CHECK(out.maxCoeff() == out.minCoeff());
    lo = std::min(lo, out(0, 0));
    hi = std::max(hi, out(0, 0));
  }
  CHECK(lo >= 0.5 * 0.8 - 0.1);
  CHECK(hi <= 0.5 * 1.2 + 0.1);
  CHECK(lo < 0.35);  // the range is actually explored
  CHECK(hi > 0.65);
}

TEST_CASE("add_defect: the mask is exactly the changed pixels, 0.5-15% of the image",
          "[eval][textures]") {
  const Eigen::ArrayXXd other = noise_texture(40, 40, 3, 99);
  const std::vector<Eigen::ArrayXXd> textures = {
      noise_texture(64, 64, 0, 1), noise_texture(64, 64, 2, 2), stripe_texture(64, 3)};
  for (const baypr::DefectType type : baypr::all_defect_types()) {
    CAPTURE(std::string(baypr::defect_name(type)));
    double min_area = 1.0, max_area = 0.0, mean_change = 0.0;
    int count = 0;
    for (const Eigen::Index size : {Eigen::Index{32}, Eigen::Index{64}}) {
      for (std::uint64_t seed = 0; seed < 60; ++seed) {
        std::mt19937_64 rng(seed * 7 + static_cast<std::uint64_t>(size));
        const Eigen::ArrayXXd normal = baypr::normal_crop(textures[seed % 3], size, rng);
        const baypr::DefectImage d = baypr::add_defect(normal, type, rng, &other);
        REQUIRE(d.type == type);
        REQUIRE(d.image.rows() == size);
        REQUIRE(d.image.cols() == size);
        REQUIRE(d.mask.rows() == size);
        REQUIRE(d.mask.cols() == size);
        CHECK(d.image.minCoeff() >= 0.0);
        CHECK(d.image.maxCoeff() <= 1.0);
        const auto changed = d.mask.count();
        CHECK(changed > 0);
        double change = 0.0;
        for (Eigen::Index j = 0; j < size; ++j) {
          for (Eigen::Index i = 0; i < size; ++i) {
            if (d.mask(i, j)) {
              CHECK(d.image(i, j) != normal(i, j));
              change += std::abs(d.image(i, j) - normal(i, j));
            } else {
              CHECK(d.image(i, j) == normal(i, j));  // bit-identical outside the mask
            }
          }
        }
        mean_change += change / static_cast<double>(changed);
        ++count;
        const double area = static_cast<double>(changed) / static_cast<double>(size * size);
        min_area = std::min(min_area, area);
        max_area = std::max(max_area, area);
        if (type == baypr::DefectType::cut_paste) {
          // A filled rectangle: its bounding box is all mask, sides 8-25% of the image (>= 2 px).
          Eigen::Index top = size, bottom = -1, left = size, right = -1;
          for (Eigen::Index j = 0; j < size; ++j) {
            for (Eigen::Index i = 0; i < size; ++i) {
              if (!d.mask(i, j)) continue;
              top = std::min(top, i);
              bottom = std::max(bottom, i);
              left = std::min(left, j);
              right = std::max(right, j);
            }
          }
          const Eigen::Index h = bottom - top + 1, w = right - left + 1;
          CHECK(h * w == changed);
          CHECK(h >= std::max<Eigen::Index>(2, size * 8 / 100));
          CHECK(h <= (size + 3) / 4);
          CHECK(w <= (size + 3) / 4);
        }
        if (type == baypr::DefectType::hole) {
          // A dark hole: most defect pixels are near black.
          Eigen::Index dark = 0;
          for (Eigen::Index j = 0; j < size; ++j) {
            for (Eigen::Index i = 0; i < size; ++i)
              dark += d.mask(i, j) && d.image(i, j) < 0.07 ? 1 : 0;
          }
          CHECK(static_cast<double>(dark) >= 0.3 * static_cast<double>(changed));
          CHECK(d.image.maxCoeff() >= 0.0);
        }
        // Same seed, same defect.
        std::mt19937_64 again(seed * 7 + static_cast<std::uint64_t>(size));
        const Eigen::ArrayXXd normal2 = baypr::normal_crop(textures[seed % 3], size, again);
        const baypr::DefectImage d2 = baypr::add_defect(normal2, type, again, &other);
        CHECK((d2.image == d.image).all());
        CHECK((d2.mask == d.mask).all());
      }
    }
    CHECK(min_area >= 0.005);
    CHECK(max_area <= 0.15);
    CHECK(max_area > 2.0 * min_area);  // sizes vary
    // Visible: a strong mean intensity change inside the mask.
    CHECK(mean_change / count > 0.1);
  }
  CHECK(std::string(baypr::defect_name(baypr::DefectType::cut_paste)) == "cut_paste");
  CHECK(std::string(baypr::defect_name(baypr::DefectType::hole)) == "hole");
}

TEST_CASE("TextureResults::class_averaged: indices out of range are named, not read",
          "[eval][textures]") {
  baypr::TextureResults r;
  r.methods = {"m"};
  r.shots = {1};
  r.defect_types = {baypr::DefectType::scratch};
  const auto msg = [&](std::size_t m, std::size_t k, int type) {
    return message_of(
        [&] { (void)r.class_averaged(baypr::TextureMetric::image_auroc, m, k, type); });
  };
  CHECK(contains(msg(1, 0, -1),
                 "baypr::TextureResults::class_averaged: argument 'm' must be < 1, got 1"));
  CHECK(contains(msg(0, 3, -1), "argument 'k' must be < 1, got 3"));
  CHECK(contains(msg(0, 0, 1), "argument 'type' must be -1 (all types) or in [0, 1), got 1"));
  CHECK(contains(msg(0, 0, -1), "argument 'this' holds no results"));
  r.categories = {"c"};
  r.episodes.assign(1, std::vector<std::vector<std::vector<baypr::TextureEpisodeResult>>>(
                           1, std::vector<std::vector<baypr::TextureEpisodeResult>>(
                                  1, {{0.25, 0.5, {0.75}, {1.0}}})));
  CHECK(r.class_averaged(baypr::TextureMetric::image_auroc, 0, 0) == std::vector<double>{0.25});
  CHECK(r.class_averaged(baypr::TextureMetric::pixel_auroc, 0, 0, 0) == std::vector<double>{1.0});
}

TEST_CASE("add_defect: bad input", "[eval][textures]") {
  std::mt19937_64 rng(1);
  const Eigen::ArrayXXd img = noise_texture(32, 32, 1, 4);
  CHECK(contains(
      message_of([&] { (void)baypr::add_defect(img, baypr::DefectType::cut_paste, rng, nullptr); }),
      "baypr::add_defect: argument 'other_texture' is required for cut_paste"));
  CHECK(contains(message_of([&] {
                   (void)baypr::add_defect(Eigen::ArrayXXd::Constant(8, 8, 0.5),
                                           baypr::DefectType::hole, rng);
                 }),
                 "argument 'normal' must be at least 16 x 16 pixels, got 8 x 8"));
  Eigen::ArrayXXd bad = img;
  bad(3, 4) = std::nan("");
  CHECK(contains(message_of([&] { (void)baypr::add_defect(bad, baypr::DefectType::scratch, rng); }),
                 "argument 'normal' must be finite, got nan at row 3, column 4"));
  bad(3, 4) = 1.5;
  CHECK(contains(message_of([&] { (void)baypr::add_defect(bad, baypr::DefectType::scratch, rng); }),
                 "argument 'normal' must have values in [0, 1], got 1.5 at row 3, column 4"));
  // Pasting a constant texture into the same constant changes nothing: a numerical_error, not an
  // endless loop or an empty mask.
  const Eigen::ArrayXXd flat = Eigen::ArrayXXd::Constant(32, 32, 0.5);
  CHECK(contains(
      message_of([&] { (void)baypr::add_defect(flat, baypr::DefectType::cut_paste, rng, &flat); }),
      "baypr::add_defect: could not draw a cut_paste defect changing 0.5% to 15% of the image in "
      "64 attempts"));
  CHECK_THROWS_AS(baypr::add_defect(flat, baypr::DefectType::cut_paste, rng, &flat),
                  baypr::numerical_error);
}

TEST_CASE("patch_features: against a naive per-pixel reference", "[eval][textures]") {
  // 16 x 16 image, 4 x 4 patches, stride 2, 8 x 8 context pooled 2 x 2: grid 7 x 7, d = 16 + 16.
  std::mt19937_64 rng(3);
  Eigen::ArrayXXd img(16, 16);
  for (Eigen::Index j = 0; j < 16; ++j) {
    for (Eigen::Index i = 0; i < 16; ++i) img(i, j) = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  }
  baypr::PatchFeatureOptions o;
  o.patch = 4;
  o.stride = 2;
  o.context = 8;
  o.context_pool = 2;
  const baypr::PatchGrid grid = baypr::patch_grid(16, o);
  CHECK(grid.rows == 7);
  CHECK(grid.cols == 7);
  CHECK(baypr::patch_feature_dim(o) == 32);
  const Eigen::MatrixXd f = baypr::patch_features(img, o);
  REQUIRE(f.rows() == 49);
  REQUIRE(f.cols() == 32);
  auto clamped = [&](double y, double x) {
    const auto yi = static_cast<Eigen::Index>(std::min(15.0, std::max(0.0, y)));
    const auto xi = static_cast<Eigen::Index>(std::min(15.0, std::max(0.0, x)));
    return img(yi, xi);
  };
  double worst = 0.0;
  for (Eigen::Index gy = 0; gy < 7; ++gy) {
    for (Eigen::Index gx = 0; gx < 7; ++gx) {
      const Eigen::Index r = gy * 7 + gx;
      // Raw part, pixel by pixel.
      for (Eigen::Index a = 0; a < 4; ++a) {
        for (Eigen::Index b = 0; b < 4; ++b) CHECK(f(r, a * 4 + b) == img(2 * gy + a, 2 * gx + b));
      }
      // Context: the 8 x 8 window with the patch's centre (2 gy + 1.5, 2 gx + 1.5) at its centre,
      // i.e. pixels centre - 3.5 .. centre + 3.5, pooled 2 x 2, border pixels replicated.
      const double cy = 2.0 * static_cast<double>(gy) + 1.5,
                   cx = 2.0 * static_cast<double>(gx) + 1.5;
      for (int u = 0; u < 4; ++u) {
        for (int v = 0; v < 4; ++v) {
          const double y0 = cy - 3.5 + 2.0 * u, x0 = cx - 3.5 + 2.0 * v;
          const double expected = 0.25 * (clamped(y0, x0) + clamped(y0 + 1, x0) +
                                          clamped(y0, x0 + 1) + clamped(y0 + 1, x0 + 1));
          worst = std::max(worst, std::abs(f(r, 16 + u * 4 + v) - expected));
        }
      }
    }
  }
  CHECK(worst <= 1e-15);

  // The defaults: 64 px -> 15 x 15 patches of d = 128; 32 px -> 7 x 7; pieces switch off.
  const baypr::PatchFeatureOptions defaults;
  CHECK(baypr::patch_grid(64, defaults).count() == 225);
  CHECK(baypr::patch_grid(32, defaults).count() == 49);
  CHECK(baypr::patch_feature_dim(defaults) == 128);
  const Eigen::ArrayXXd big = noise_texture(64, 64, 1, 8);
  CHECK(baypr::patch_features(big).rows() == 225);
  CHECK(baypr::patch_features(big).cols() == 128);
  baypr::PatchFeatureOptions raw_only = defaults;
  raw_only.context = 0;
  const Eigen::MatrixXd fr = baypr::patch_features(big, raw_only);
  CHECK(fr.cols() == 64);
  CHECK(fr == baypr::patch_features(big).leftCols(64));
  baypr::PatchFeatureOptions context_only = defaults;
  context_only.raw = false;
  CHECK(baypr::patch_features(big, context_only) == baypr::patch_features(big).rightCols(64));
  // The last patch's context at the bottom-right corner reads clamped pixels: a 2 x 2 cell fully
  // beyond the corner equals the corner pixel.
  CHECK(baypr::patch_features(big)(224, 127) == big(63, 63));

  // Bad options.
  baypr::PatchFeatureOptions bad = defaults;
  bad.stride = 9;
  CHECK(contains(message_of([&] { (void)baypr::patch_features(big, bad); }),
                 "baypr::patch_grid: argument 'options.stride' must be in [1, patch = 8]"));
  bad = defaults;
  bad.stride = 3;
  CHECK(contains(message_of([&] { (void)baypr::patch_features(big, bad); }),
                 "must be a multiple of options.stride = 3"));
  bad = defaults;
  bad.context_pool = 3;
  CHECK(contains(message_of([&] { (void)baypr::patch_features(big, bad); }),
                 "argument 'options.context_pool'"));
  bad = defaults;
  bad.context = 0;
  bad.raw = false;
  CHECK(contains(message_of([&] { (void)baypr::patch_features(big, bad); }),
                 "must enable raw or context"));
  CHECK(contains(message_of([&] { (void)baypr::patch_features(Eigen::ArrayXXd::Zero(4, 4)); }),
                 "argument 'image_size' must be >= options.patch = 8, got 4"));
  CHECK(contains(message_of([&] { (void)baypr::patch_features(Eigen::ArrayXXd::Zero(16, 12)); }),
                 "argument 'image' must be square, got 16 x 12"));
}

TEST_CASE("patch_scores_to_map: mean of the covering patches", "[eval][textures]") {
  // 8 px, patch 4, stride 2: a 3 x 3 grid with scores 0..8 (row-major).
  const baypr::PatchGrid grid{8, 4, 2, 3, 3};
  Eigen::VectorXd s(9);
  for (int i = 0; i < 9; ++i) s(i) = i;
  const Eigen::ArrayXXd map = baypr::patch_scores_to_map(s, grid);
  REQUIRE(map.rows() == 8);
  REQUIRE(map.cols() == 8);
  CHECK(map(0, 0) == 0.0);                      // patch (0, 0) only
  CHECK(map(0, 7) == 2.0);                      // patch (0, 2) only
  CHECK(map(7, 7) == 8.0);                      // patch (2, 2) only
  CHECK(map(2, 2) == (0.0 + 1 + 3 + 4) / 4.0);  // patches (0..1, 0..1)
  CHECK(map(0, 3) == (0.0 + 1) / 2.0);          // patches (0, 0) and (0, 1)
  CHECK(map(4, 4) == (4.0 + 5 + 7 + 8) / 4.0);  // patches (1..2, 1..2)
  CHECK(map(5, 1) == (3.0 + 6) / 2.0);          // patches (1, 0) and (2, 0)
  // Row y is covered by grid rows gy with 2 gy <= y < 2 gy + 4: a brute-force check everywhere.
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      double sum = 0.0;
      int n = 0;
      for (int gy = 0; gy < 3; ++gy) {
        for (int gx = 0; gx < 3; ++gx) {
          if (2 * gy <= y && y < 2 * gy + 4 && 2 * gx <= x && x < 2 * gx + 4) {
            sum += s(gy * 3 + gx);
            ++n;
          }
        }
      }
      CHECK(map(y, x) == sum / n);
    }
  }
  // stride == patch: a partition, each pixel its patch's score.
  const Eigen::ArrayXXd tiles = baypr::patch_scores_to_map(s, baypr::PatchGrid{12, 4, 4, 3, 3});
  CHECK(tiles(5, 9) == 5.0);
  CHECK(tiles(11, 0) == 6.0);
  CHECK(contains(message_of([&] {
                   (void)baypr::patch_scores_to_map(s, baypr::PatchGrid{8, 4, 5, 3, 3});
                 }),
                 "argument 'grid' must cover the image exactly"));
  CHECK(contains(message_of([&] { (void)baypr::patch_scores_to_map(s.head(8), grid); }),
                 "argument 'patch_scores' has size 8, expected 9"));
}

TEST_CASE("run_texture_episodes: shapes, reproducibility, real signal",
          "[eval][textures][episodes]") {
  const auto categories = three_categories();
  baypr::TextureOptions o;
  o.shots = {1, 2};
  o.episodes = 3;
  o.image_size = 32;
  o.normal_queries = 8;
  o.anomalous_per_type = 3;
  o.keep_examples = true;
  int progress_calls = 0;
  o.progress = [&](std::string_view) { ++progress_calls; };
  const auto methods = baypr::texture_episode_methods();
  REQUIRE(methods.size() == 7);
  const baypr::TextureResults r = baypr::run_texture_episodes(categories, o, methods);
  CHECK(progress_calls == 6);
  const std::size_t nm = methods.size(), nq = 8 + 4 * 3;
  REQUIRE(r.methods.size() == nm);
  REQUIRE(r.categories.size() == 3);
  REQUIRE(r.shots.size() == 2);
  REQUIRE(r.defect_types.size() == 4);
  REQUIRE(r.query_types.size() == nq);
  CHECK(r.query_types[7] == -1);
  CHECK(r.query_types[8] == 0);
  CHECK(r.query_types[19] == 3);
  CHECK(r.query_labels().sum() == 12);
  REQUIRE(r.episodes.size() == nm);
  REQUIRE(r.image_scores.size() == nm);
  for (std::size_t m = 0; m < nm; ++m) {
    REQUIRE(r.episodes[m].size() == 3);
    for (std::size_t c = 0; c < 3; ++c) {
      REQUIRE(r.episodes[m][c].size() == 2);
      for (std::size_t k = 0; k < 2; ++k) {
        REQUIRE(r.episodes[m][c][k].size() == 3);
        CHECK(r.image_scores[m][c][k].rows() == 3);
        CHECK(r.image_scores[m][c][k].cols() == static_cast<Eigen::Index>(nq));
        for (const auto& e : r.episodes[m][c][k]) {
          CHECK(e.image_auroc_by_type.size() == 4);
          CHECK(e.pixel_auroc_by_type.size() == 4);
          CHECK(e.image_auroc >= 0.0);
          CHECK(e.image_auroc <= 1.0);
          CHECK(e.pixel_auroc >= 0.0);
          CHECK(e.pixel_auroc <= 1.0);
        }
        // The stored image scores reproduce the stored image AUROC.
        CHECK(baypr::auroc(r.image_scores[m][c][k].row(1).transpose(), r.query_labels()) ==
              r.episodes[m][c][k][1].image_auroc);
      }
    }
  }
  // Examples: the first episode of each category at K = 2.
  REQUIRE(r.examples.size() == 3);
  for (std::size_t c = 0; c < 3; ++c) {
    const baypr::TextureExample& ex = r.examples[c];
    CHECK(ex.category == r.categories[c]);
    CHECK(ex.shot == 2);
    CHECK(ex.support.size() == 2);
    CHECK(ex.queries.size() == nq);
    CHECK(ex.masks.size() == nq);
    REQUIRE(ex.maps.size() == nm);
    CHECK(ex.maps[0].size() == nq);
    CHECK(ex.maps[0][0].rows() == 32);
    CHECK(ex.masks[0].count() == 0);
    CHECK(ex.masks[nq - 1].count() > 0);
    // A pixel is a mean of patch scores, so no pixel exceeds the image score (the max patch).
    CHECK(ex.maps[0][nq - 1].maxCoeff() <=
          r.image_scores[0][c].back()(0, static_cast<Eigen::Index>(nq - 1)) + 1e-12);
  }
  CHECK(r.examples[0].category == "fine noise");
  // The stored pixel AUROCs (computed from one sort) equal baypr::pixel_auroc on each subset of the
  // kept maps: all queries, and normal queries plus one defect type.
  for (std::size_t c = 0; c < 3; ++c) {
    for (std::size_t m = 0; m < nm; ++m) {
      const baypr::TextureExample& ex = r.examples[c];
      const baypr::TextureEpisodeResult& res = r.episodes[m][c][1][0];
      CHECK(baypr::pixel_auroc(ex.maps[m], ex.masks) == res.pixel_auroc);
      for (int t = 0; t < 4; ++t) {
        std::vector<Eigen::ArrayXXd> maps;
        std::vector<baypr::DefectMask> masks;
        for (std::size_t q = 0; q < nq; ++q) {
          if (r.query_types[q] == -1 || r.query_types[q] == t) {
            maps.push_back(ex.maps[m][q]);
            masks.push_back(ex.masks[q]);
          }
        }
        CHECK(baypr::pixel_auroc(maps, masks) ==
              res.pixel_auroc_by_type[static_cast<std::size_t>(t)]);
      }
    }
  }

  // Bit-identical on a second run; different with another seed.
  baypr::TextureOptions quiet = o;
  quiet.progress = nullptr;
  quiet.keep_examples = false;
  const baypr::TextureResults again = baypr::run_texture_episodes(categories, quiet, methods);
  quiet.seed = 7;
  const baypr::TextureResults other = baypr::run_texture_episodes(categories, quiet, methods);
  bool all_same = true, any_different = false;
  for (std::size_t m = 0; m < nm; ++m) {
    for (std::size_t c = 0; c < 3; ++c) {
      for (std::size_t k = 0; k < 2; ++k) {
        all_same = all_same &&
                   (again.image_scores[m][c][k].array() == r.image_scores[m][c][k].array()).all();
        any_different =
            any_different ||
            !(other.image_scores[m][c][k].array() == r.image_scores[m][c][k].array()).all();
        for (std::size_t e = 0; e < 3; ++e) {
          all_same = all_same &&
                     again.episodes[m][c][k][e].pixel_auroc == r.episodes[m][c][k][e].pixel_auroc &&
                     again.episodes[m][c][k][e].pixel_auroc_by_type ==
                         r.episodes[m][c][k][e].pixel_auroc_by_type;
        }
      }
    }
  }
  CHECK(all_same);
  CHECK(any_different);

  // Real signal: every method's mean image AUROC over the run (both K, all categories) > 0.6.
  for (std::size_t m = 0; m < nm; ++m) {
    double image = 0.0, pixel = 0.0;
    for (std::size_t k = 0; k < 2; ++k) {
      for (const double v : r.class_averaged(baypr::TextureMetric::image_auroc, m, k))
        image += v / 6.0;
      for (const double v : r.class_averaged(baypr::TextureMetric::pixel_auroc, m, k))
        pixel += v / 6.0;
    }
    std::printf("%-26s image AUROC %.3f  pixel AUROC %.3f  (K=2 by type:", r.methods[m].c_str(),
                image, pixel);
    for (int t = 0; t < 4; ++t) {
      std::printf(
          " %s %.2f",
          std::string(baypr::defect_name(r.defect_types[static_cast<std::size_t>(t)])).c_str(),
          r.summary(baypr::TextureMetric::image_auroc, m, 1, t).mean);
    }
    std::printf(")\n");
    CAPTURE(r.methods[m]);
    CHECK(image > 0.6);
    CHECK(pixel > 0.6);
  }
  // class_averaged is the mean over categories of the stored values.
  const auto avg = r.class_averaged(baypr::TextureMetric::pixel_auroc, 2, 1, 1);
  CHECK(std::abs(avg[2] - (r.episodes[2][0][1][2].pixel_auroc_by_type[1] +
                           r.episodes[2][1][1][2].pixel_auroc_by_type[1] +
                           r.episodes[2][2][1][2].pixel_auroc_by_type[1]) /
                              3.0) < 1e-15);
  CHECK(r.summary(baypr::TextureMetric::image_auroc, 0, 0).count == 3);
}

TEST_CASE("run_texture_episodes on real GIMP patterns: better than chance, reproducible",
          "[eval][textures][episodes][data][slow]") {
  const std::filesystem::path root = "/usr/share/gimp/2.0/patterns";
  if (!std::filesystem::exists(root)) {
    WARN("GIMP patterns not installed (gimp-data): skipped");
    return;
  }
  // Three photographic textures of the benchmark's kind (wood, stone, fabric).
  std::vector<baypr::TextureCategory> categories;
  for (const char* name : {"Wood/burlwood.pat", "Stone/granite1.pat", "Fabric/burlap.pat"}) {
    const auto path = root / name;
    if (!std::filesystem::exists(path)) {
      WARN("missing " << path.string() << ": skipped");
      return;
    }
    categories.push_back({name, baypr::pattern_to_grey(baypr::read_pat(path))});
  }
  baypr::TextureOptions options;
  options.shots = {1, 4};
  options.episodes = 3;
  options.seed = 11;
  const auto r = baypr::run_texture_episodes(categories, options);
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    INFO(r.methods[m]);
    const double image = r.summary(baypr::TextureMetric::image_auroc, m, 1).mean;
    const double pixel = r.summary(baypr::TextureMetric::pixel_auroc, m, 1).mean;
    CHECK(image > 0.6);
    CHECK(pixel > 0.6);
  }
  const auto again = baypr::run_texture_episodes(categories, options);
  CHECK(again.image_scores == r.image_scores);
}

TEST_CASE("run_texture_episodes: bad input", "[eval][textures][episodes]") {
  const auto categories = three_categories();
  const std::vector<baypr::EpisodeMethod> one = {
      baypr::make_episode_method("prototype", baypr::PrototypeScorer())};
  baypr::TextureOptions o;
  o.image_size = 32;
  auto msg = [&](std::vector<baypr::TextureCategory> cats, baypr::TextureOptions opt,
                 std::vector<baypr::EpisodeMethod> ms) {
    return message_of([&] { (void)baypr::run_texture_episodes(cats, opt, ms); });
  };
  CHECK(contains(msg({}, o, one),
                 "baypr::run_texture_episodes: argument 'categories' must not be empty"));
  CHECK(contains(msg(categories, o, {}), "argument 'methods' must not be empty"));
  auto tiny = categories;
  tiny[1].texture = Eigen::ArrayXXd::Constant(1, 5, 0.5);
  CHECK(contains(
      msg(tiny, o, one),
      "argument 'categories[coarse noise].texture' must be at least 2 x 2 pixels, got 1 x 5"));
  auto nan = categories;
  nan[2].texture(1, 2) = std::nan("");
  CHECK(contains(
      msg(nan, o, one),
      "argument 'categories[stripes].texture' must be finite, got nan at row 1, column 2"));
  baypr::TextureOptions bad = o;
  bad.episodes = 1;
  CHECK(contains(msg(categories, bad, one), "argument 'options.episodes' must be >= 2, got 1"));
  bad = o;
  bad.shots = {1, 0};
  CHECK(
      contains(msg(categories, bad, one), "argument 'options.shots' must all be >= 1, got K = 0"));
  bad = o;
  bad.image_size = 6;
  CHECK(contains(msg(categories, bad, one),
                 "argument 'options.image_size' must be >= options.features.patch = 8, got 6"));
  bad = o;
  bad.image_size = 34;
  CHECK(contains(msg(categories, bad, one), "must be a multiple of options.stride = 4"));
  bad = o;
  bad.normal_queries = 0;
  CHECK(
      contains(msg(categories, bad, one), "argument 'options.normal_queries' must be >= 1, got 0"));
  bad = o;
  bad.defect_types.clear();
  CHECK(contains(msg(categories, bad, one), "argument 'options.defect_types' must not be empty"));
  bad = o;
  bad.image_size = 16;
  bad.features.patch = 16;
  bad.shots = {2, 1};
  CHECK(contains(msg(categories, bad, one), "argument 'options.shots' gives a support of 1 patch"));
  bad = o;
  bad.nuisance.scale_min = 0.0;
  CHECK(contains(msg(categories, bad, one), "argument 'nuisance.scale_min / scale_max'"));
  CHECK(contains(msg({categories[0]}, o, one),
                 "argument 'categories' must hold at least 2 textures when cut_paste is used"));
  // Without cut_paste one category is enough.
  bad = o;
  bad.defect_types = {baypr::DefectType::hole};
  bad.shots = {1};
  bad.episodes = 2;
  CHECK(baypr::run_texture_episodes({categories[0]}, bad, one).episodes[0][0][0].size() == 2);
  // A method returning the wrong number of scores is named.
  const std::vector<baypr::EpisodeMethod> broken = {
      {"broken", [](const Eigen::MatrixXd&, const Eigen::MatrixXd& q) {
         return Eigen::VectorXd::Zero(q.rows() - 1).eval();
       }}};
  CHECK(contains(msg(categories, o, broken), "argument 'methods[broken]' returned"));
}

// Timing of one episode at the benchmark's size (all methods, K = 8, 64 px): run explicitly with
// `textures.test "[.timing]"`.
TEST_CASE("run_texture_episodes: time per episode", "[.timing]") {
  const auto categories = three_categories();
  baypr::TextureOptions o;
  o.shots = {8};
  o.episodes = 2;
  const auto base = baypr::texture_episode_methods();
  std::vector<double> seconds(base.size(), 0.0);
  std::vector<baypr::EpisodeMethod> timed;
  for (std::size_t m = 0; m < base.size(); ++m) {
    timed.push_back(
        {base[m].name,
         [&seconds, m, f = base[m].fit_score](const Eigen::MatrixXd& s, const Eigen::MatrixXd& q) {
           const auto t0 = std::chrono::steady_clock::now();
           Eigen::VectorXd out = f(s, q);
           seconds[m] +=
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
           return out;
         }});
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = baypr::run_texture_episodes(categories, o, timed);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double episodes = 2.0 * static_cast<double>(categories.size());
  std::printf("one episode (K = 8, 64 px, %zu methods): %.3f s\n", base.size(), total / episodes);
  for (std::size_t m = 0; m < base.size(); ++m)
    std::printf("  %-26s %.3f s\n", base[m].name.c_str(), seconds[m] / episodes);
  CHECK(r.episodes.size() == base.size());
}
