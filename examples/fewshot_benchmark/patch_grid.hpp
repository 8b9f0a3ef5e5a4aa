// Fashion-MNIST images as an aligned patch grid, shared by the benchmark's fashion-patches section
// (fashion_patches.cpp) and the experiment that chose the per-position scorer's defaults
// (examples/experiments/per_position_validation.cpp): the standardised 28 x 28 pixels cut into
// 7 x 7 patches every 3 pixels, an 8 x 8 grid of 64 positions with d = 49 raw pixels each; image
// score = max over the positions.
#pragma once

#include <baypr/eval/episodes.hpp>
#include <baypr/score/scorer.hpp>

#include <Eigen/Core>
#include <string>
#include <utility>

namespace bench::patch_grid {

inline constexpr Eigen::Index kSide = 28, kPatch = 7, kStride = 3;
inline constexpr Eigen::Index kGrid = (kSide - kPatch) / kStride + 1;  // 8
inline constexpr Eigen::Index kPositions = kGrid * kGrid, kDim = kPatch * kPatch;

// One row per image (its 784 pixels, row-major): its 64 patches, position-major, each 49 pixels
// row-major.
inline Eigen::MatrixXd patch_rows_of(const Eigen::MatrixXd& pixels) {
  Eigen::MatrixXd out(pixels.rows(), kPositions * kDim);
  for (Eigen::Index i = 0; i < pixels.rows(); ++i) {
    for (Eigen::Index gr = 0; gr < kGrid; ++gr) {
      for (Eigen::Index gc = 0; gc < kGrid; ++gc) {
        const Eigen::Index base = (gr * kGrid + gc) * kDim;
        for (Eigen::Index r = 0; r < kPatch; ++r) {
          for (Eigen::Index c = 0; c < kPatch; ++c) {
            out(i, base + r * kPatch + c) =
                pixels(i, (gr * kStride + r) * kSide + gc * kStride + c);
          }
        }
      }
    }
  }
  return out;
}

// (n images) x (64 * 49) -> (64 n) x 49 patch rows, image-major.
inline Eigen::MatrixXd unflatten(const Eigen::MatrixXd& images) {
  Eigen::MatrixXd rows(images.rows() * kPositions, kDim);
  for (Eigen::Index i = 0; i < images.rows(); ++i) {
    for (Eigen::Index j = 0; j < kPositions; ++j) {
      rows.row(i * kPositions + j) = images.row(i).segment(j * kDim, kDim);
    }
  }
  return rows;
}

// An episode method scoring images by a patch scorer (a copy fitted per episode): max over the
// positions of the patch scores.
template <class S>
baypr::EpisodeMethod patch_method(std::string name, S scorer) {
  return {
      std::move(name), [scorer](const Eigen::MatrixXd& support, const Eigen::MatrixXd& queries) {
        S s = scorer;
        return baypr::score_patches(s, unflatten(support), unflatten(queries), kPositions).image;
      }};
}

}  // namespace bench::patch_grid
