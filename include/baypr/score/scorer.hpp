// baypr/score/scorer.hpp: the one interface every scorer shares, and the patch layer on top.
//
// A scorer fits a normality model on support rows (n x d, one embedding per row) and scores query
// rows: one value per row, higher = more anomalous. Patch embeddings (n images x p patches x d)
// are handled once, here, for every scorer: the rows are the n p patches (row-major, image by
// image, as numpy's reshape(n * p, d) lays them out), the per-row scores are the anomaly map, and
// an aggregation (max, mean, mean of the top k) turns each image's p patch scores into its score.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <concepts>
#include <functional>
#include <string>
#include <string_view>

#include "baypr/core/errors.hpp"

namespace baypr {

template <class S>
concept Scorer = requires(S s, const Eigen::MatrixXd& rows) {
  s.fit(rows);
  { s.score(rows) } -> std::convertible_to<Eigen::VectorXd>;
};

// How patch scores become an image score.
struct Aggregation {
  enum class Kind { max, mean, top_k };
  Kind kind = Kind::max;
  Eigen::Index k = 1;  // for top_k: the mean of the k largest patch scores

  static Aggregation max() { return {Kind::max, 1}; }
  static Aggregation mean() { return {Kind::mean, 1}; }
  static Aggregation top_k(Eigen::Index k) {
    if (k < 1) {
      detail::throw_invalid("baypr::Aggregation::top_k", "k",
                            "must be >= 1, got " + std::to_string(k));
    }
    return {Kind::top_k, k};
  }
  // "max", "mean" or "topk:K".
  static Aggregation parse(std::string_view text) {
    constexpr const char* fn = "baypr::Aggregation::parse";
    if (text == "max") return max();
    if (text == "mean") return mean();
    if (text.starts_with("topk:")) {
      const std::string digits(text.substr(5));
      std::size_t used = 0;
      long long k = 0;
      try {
        k = std::stoll(digits, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == digits.size() && !digits.empty() && k >= 1)
        return top_k(static_cast<Eigen::Index>(k));
    }
    detail::throw_invalid(
        fn, "text", "must be max, mean or topk:K with K >= 1, got '" + std::string(text) + "'");
  }
};

// Image scores from an (images x patches) matrix of patch scores.
template <class Derived>
Eigen::VectorXd aggregate(const Eigen::MatrixBase<Derived>& patch_scores, const Aggregation& how) {
  constexpr const char* fn = "baypr::aggregate";
  const Eigen::Index n = patch_scores.rows(), p = patch_scores.cols();
  if (p < 1)
    detail::throw_invalid(fn, "patch_scores", "must have at least one patch per image, got 0");
  detail::check_finite(fn, "patch_scores", patch_scores);
  Eigen::VectorXd out(n);
  switch (how.kind) {
    case Aggregation::Kind::max:
      out = patch_scores.template cast<double>().rowwise().maxCoeff();
      break;
    case Aggregation::Kind::mean:
      out = patch_scores.template cast<double>().rowwise().mean();
      break;
    case Aggregation::Kind::top_k: {
      const Eigen::Index k = std::min(how.k, p);
      Eigen::VectorXd row(p);
      for (Eigen::Index i = 0; i < n; ++i) {
        row = patch_scores.row(i).template cast<double>().transpose();
        std::nth_element(row.data(), row.data() + (p - k), row.data() + p);
        out(i) = row.tail(k).mean();
      }
      break;
    }
  }
  return out;
}

// Patch embeddings of n images with p patches each: (n p) x d rows, image-major.
struct PatchScores {
  Eigen::VectorXd image;    // n image scores
  Eigen::MatrixXd patches;  // n x p anomaly map (patch scores, row i = image i)
};

// Fit `scorer` on all support patches pooled, score every query patch, aggregate per image.
template <Scorer S, class DS, class DQ>
PatchScores score_patches(S& scorer, const Eigen::MatrixBase<DS>& support_rows,
                          const Eigen::MatrixBase<DQ>& query_rows, Eigen::Index patches_per_image,
                          const Aggregation& how = Aggregation::max()) {
  constexpr const char* fn = "baypr::score_patches";
  if (patches_per_image < 1) {
    detail::throw_invalid(fn, "patches_per_image",
                          "must be >= 1, got " + std::to_string(patches_per_image));
  }
  if (support_rows.rows() % patches_per_image != 0) {
    detail::throw_invalid(fn, "support_rows",
                          "has " + std::to_string(support_rows.rows()) +
                              " rows, not a multiple of patches_per_image " +
                              std::to_string(patches_per_image));
  }
  if (query_rows.rows() % patches_per_image != 0) {
    detail::throw_invalid(fn, "query_rows",
                          "has " + std::to_string(query_rows.rows()) +
                              " rows, not a multiple of patches_per_image " +
                              std::to_string(patches_per_image));
  }
  scorer.fit(support_rows);
  const Eigen::VectorXd flat = scorer.score(query_rows);
  PatchScores out;
  out.patches =
      Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          flat.data(), query_rows.rows() / patches_per_image, patches_per_image);
  out.image = aggregate(out.patches, how);
  return out;
}

}  // namespace baypr
