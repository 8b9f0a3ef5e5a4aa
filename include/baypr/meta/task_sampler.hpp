// baypr/meta/task_sampler.hpp: one-class few-shot episodes drawn from a labelled set.
//
//   TaskShape { shots, normal_queries, anomalous_queries }   the authors': 5, 12, 4
//   ClassTaskSampler(inputs, labels, classes, TaskShape)
//     .sample(std::mt19937_64&) -> MetaEpisode   K normal support, normal + anomalous queries
//
// Any type with `MetaEpisode sample(std::mt19937_64&) const` can stand in for ClassTaskSampler in
// meta::train (meta/trainer.hpp). Draws go through core/random.hpp, so a seed gives the same
// episodes with every standard library.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/meta/episode.hpp"

namespace baypr::meta {

// The shape of a one-class episode (the authors': K = 5, 12 normal + 4 anomalous queries).
struct TaskShape {
  Eigen::Index shots = 5;
  Eigen::Index normal_queries = 12;
  Eigen::Index anomalous_queries = 4;
};

// One-class episodes over a labelled set: pick a normal class uniformly among `classes`, K support
// rows and the normal queries from it (distinct rows), anomalous queries from the other classes of
// `classes` (so held-out classes never leak into meta-training).
class ClassTaskSampler {
 public:
  ClassTaskSampler(Eigen::MatrixXd inputs, const Eigen::VectorXi& labels, std::vector<int> classes,
                   TaskShape shape)
      : inputs_(std::move(inputs)), classes_(std::move(classes)), shape_(shape) {
    constexpr std::string_view fn = "baypr::meta::ClassTaskSampler";
    baypr::detail::check_size(fn, "labels", "size", labels.size(), inputs_.rows());
    baypr::detail::check_finite(fn, "inputs", inputs_);
    if (classes_.size() < 2)
      baypr::detail::throw_invalid(
          fn, "classes", "needs at least 2 classes, got " + std::to_string(classes_.size()));
    for (std::size_t c = 0; c < classes_.size(); ++c) {
      for (std::size_t o = c + 1; o < classes_.size(); ++o) {
        if (classes_[c] == classes_[o]) {
          baypr::detail::throw_invalid(fn, "classes",
                                       "lists class " + std::to_string(classes_[c]) + " twice");
        }
      }
    }
    if (shape_.shots < 1 || shape_.normal_queries < 1 || shape_.anomalous_queries < 1) {
      baypr::detail::throw_invalid(fn, "shape", "shots and both query counts must be >= 1");
    }
    rows_.resize(classes_.size());
    for (Eigen::Index i = 0; i < labels.size(); ++i) {
      for (std::size_t c = 0; c < classes_.size(); ++c) {
        if (labels(i) == classes_[c]) rows_[c].push_back(i);
      }
    }
    std::size_t total = 0;
    for (const auto& r : rows_) total += r.size();
    for (std::size_t c = 0; c < classes_.size(); ++c) {
      if (static_cast<Eigen::Index>(rows_[c].size()) < shape_.shots + shape_.normal_queries) {
        baypr::detail::throw_invalid(fn, "classes",
                                     "class " + std::to_string(classes_[c]) + " has " +
                                         std::to_string(rows_[c].size()) +
                                         " rows, fewer than K + normal queries");
      }
      if (static_cast<Eigen::Index>(total - rows_[c].size()) < shape_.anomalous_queries) {
        baypr::detail::throw_invalid(fn, "classes",
                                     "the classes other than " + std::to_string(classes_[c]) +
                                         " have " + std::to_string(total - rows_[c].size()) +
                                         " rows, fewer than the anomalous queries");
      }
    }
  }

  [[nodiscard]] MetaEpisode sample(std::mt19937_64& rng) const {
    const std::size_t c = static_cast<std::size_t>(baypr::uniform_below(rng, classes_.size()));
    constexpr std::string_view fn = "baypr::meta::ClassTaskSampler::sample";
    auto normal = baypr::sample_without_replacement(rows_[c], shape_.shots + shape_.normal_queries,
                                                    rng, fn, "shape.shots + shape.normal_queries");
    std::vector<Eigen::Index> others;
    for (std::size_t o = 0; o < classes_.size(); ++o) {
      if (o != c) others.insert(others.end(), rows_[o].begin(), rows_[o].end());
    }
    const auto anomalous = baypr::sample_without_replacement(
        std::move(others), shape_.anomalous_queries, rng, fn, "shape.anomalous_queries");
    MetaEpisode e;
    e.support = inputs_(std::vector<Eigen::Index>(normal.begin(), normal.begin() + shape_.shots),
                        Eigen::all);
    std::vector<Eigen::Index> queries(normal.begin() + shape_.shots, normal.end());
    queries.insert(queries.end(), anomalous.begin(), anomalous.end());
    e.queries = inputs_(queries, Eigen::all);
    e.labels.setOnes(static_cast<Eigen::Index>(queries.size()));
    e.labels.head(shape_.normal_queries).setZero();
    return e;
  }

  [[nodiscard]] const std::vector<int>& classes() const { return classes_; }

 private:
  Eigen::MatrixXd inputs_;
  std::vector<int> classes_;
  std::vector<std::vector<Eigen::Index>> rows_;
  TaskShape shape_;
};

}  // namespace baypr::meta
