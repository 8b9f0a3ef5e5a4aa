// baypr/eval/metrics.hpp: evaluation metrics for anomaly scores (Eigen only).
//
//   auroc(scores, labels)                 area under the ROC curve, exact and tie-aware
//   roc_curve(scores, labels)             the ROC curve's points, one per distinct threshold
//   average_precision(scores, labels)     AUPRC, as scikit-learn's average_precision_score
//   best_f1(scores, labels)               the best F1 over all thresholds, with its threshold
//   pixel_auroc(maps, masks)              AUROC over every pixel of one or many score maps
//   bootstrap_interval(metric, ...)       stratified percentile bootstrap interval of a metric
//   mean_interval(values, level)          mean of per-episode values with a Student-t interval
//   group_averaged(groups, episodes, value)
//                                         per episode, the mean over groups (classes) of a value
//   grouped_bootstrap_interval(values, groups, resamples, level, rng)
//                                         mean with a two-level (groups, then values within
//                                         each group) percentile bootstrap interval
//
// Conventions: a higher score is more anomalous; label 1 = anomalous (positive), 0 = normal.
// Scores and labels are any Eigen vector expressions of equal length (row or column); scores of
// any real type, labels int, bool or floating with values exactly 0 or 1. A sample is flagged at
// threshold t when its score is >= t. Bad input (sizes differ, a non-finite score, a label that is
// not 0/1, a single class) throws baypr::invalid_argument naming the function, the argument and
// the offending index.
//
// The ranking metrics copy the samples into one buffer of (score, label) pairs (their only
// allocation besides their results), sort it once (O(n log n)) and walk the distinct thresholds
// from the highest down.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/random.hpp"
#include "baypr/core/special.hpp"
#include "baypr/core/traits.hpp"

namespace baypr {

// The ROC curve at every distinct threshold, highest first, starting at (0, 0) with threshold
// +inf (nothing flagged) and ending at (1, 1) with the lowest score (everything flagged).
struct RocCurve {
  Eigen::VectorXd fpr;         // false positive rate: flagged normals / normals
  Eigen::VectorXd tpr;         // true positive rate (recall): flagged anomalies / anomalies
  Eigen::VectorXd thresholds;  // flag score >= threshold
};

// The threshold with the highest F1 (the highest such threshold where several tie).
struct F1Result {
  double f1 = 0.0;
  double threshold = 0.0;  // flag score >= threshold
  double precision = 0.0;
  double recall = 0.0;
};

// A metric's value on the full data and a percentile bootstrap interval around it.
struct Interval {
  double estimate = 0.0;
  double lower = 0.0;
  double upper = 0.0;
  double level = 0.0;
};

// The mean of a set of values with a Student-t confidence interval: mean +- half_width.
struct MeanInterval {
  double mean = 0.0;
  double lower = 0.0;
  double upper = 0.0;
  double level = 0.0;
  double half_width = 0.0;  // t_{(1 + level)/2, n - 1} * sample std / sqrt(n)
  Eigen::Index count = 0;
};

namespace detail {

struct ScoredLabel {
  double score;
  bool positive;
};

// The validated samples of one metric call, in input order, with the class sizes.
struct LabelledSamples {
  std::vector<ScoredLabel> samples;
  Eigen::Index positives = 0;
  Eigen::Index negatives = 0;
};

// The argument as read coefficient by coefficient: plain objects, maps and blocks in place,
// cheap element-wise expressions as they are, and expensive ones (products) evaluated once, since
// their coeff() would otherwise redo the whole product per coefficient. This is Eigen's own rule
// for nesting an expression (nested_eval, with each coefficient read once).
template <class Derived>
using readable_t = typename Eigen::internal::nested_eval<Derived, 1>::type;

// Element k of a row or column vector (2-D access, so blocks without linear access work too).
template <class V>
auto vector_coeff(const V& v, Eigen::Index k) {
  return v.rows() == 1 ? v.coeff(0, k) : v.coeff(k, 0);
}

template <class Derived>
void check_vector(std::string_view function, std::string_view argument,
                  const Eigen::DenseBase<Derived>& v) {
  if (v.rows() != 1 && v.cols() != 1) {
    throw_invalid(function, argument,
                  "must be a vector, got a " + std::to_string(v.rows()) + "x" +
                      std::to_string(v.cols()) + " matrix");
  }
}

// Validates one (score, label) pair and appends it; `where` describes its position for messages
// ("index 3", "image 1, row 2, column 5") and is only evaluated on error.
template <class S, class L, class Where>
void append_sample(std::string_view function, std::string_view scores_name,
                   std::string_view labels_name, const S& score, const L& label,
                   LabelledSamples& out, Where&& where) {
  const double s = value_of(score);
  if (!std::isfinite(s)) {
    throw_invalid(function, scores_name,
                  "must be finite, got " + format_value(s) + " at " + where());
  }
  const double y = value_of(label);
  if (y != 0.0 && y != 1.0) {
    throw_invalid(function, labels_name,
                  "must be 0 or 1, got " + format_value(y) + " at " + where());
  }
  const bool positive = y == 1.0;
  out.samples.push_back(ScoredLabel{s, positive});
  if (positive) {
    ++out.positives;
  } else {
    ++out.negatives;
  }
}

template <class DS, class DL>
LabelledSamples collect_vectors(std::string_view function, const Eigen::DenseBase<DS>& scores,
                                const Eigen::DenseBase<DL>& labels) {
  check_vector(function, "scores", scores);
  check_vector(function, "labels", labels);
  check_size(function, "labels", "size", labels.size(), scores.size());
  const readable_t<DS> s(scores.derived());
  const readable_t<DL> l(labels.derived());
  LabelledSamples out;
  out.samples.reserve(static_cast<std::size_t>(scores.size()));
  for (Eigen::Index k = 0; k < scores.size(); ++k) {
    append_sample(function, "scores", "labels", vector_coeff(s, k), vector_coeff(l, k), out,
                  [k] { return "index " + std::to_string(k); });
  }
  return out;
}

// Appends every pixel of one map / mask pair (column-major order; the order does not matter).
// image is "" for a single map, else "image <i>", to locate bad input in messages.
template <class DM, class DK>
void append_map(std::string_view function, const Eigen::DenseBase<DM>& map,
                const Eigen::DenseBase<DK>& mask, const std::string& image, LabelledSamples& out) {
  if (map.rows() != mask.rows() || map.cols() != mask.cols()) {
    throw_invalid(function, "masks",
                  "has shape " + std::to_string(mask.rows()) + "x" + std::to_string(mask.cols()) +
                      (image.empty() ? "" : " at " + image) + ", expected that of its map, " +
                      std::to_string(map.rows()) + "x" + std::to_string(map.cols()));
  }
  const readable_t<DM> m(map.derived());
  const readable_t<DK> k(mask.derived());
  for (Eigen::Index j = 0; j < map.cols(); ++j) {
    for (Eigen::Index i = 0; i < map.rows(); ++i) {
      append_sample(function, "maps", "masks", m.coeff(i, j), k.coeff(i, j), out, [&] {
        return (image.empty() ? "" : image + ", ") + "row " + std::to_string(i) + ", column " +
               std::to_string(j);
      });
    }
  }
}

inline void check_both_classes(std::string_view function, std::string_view labels_name,
                               const LabelledSamples& data) {
  if (data.positives == 0 || data.negatives == 0) {
    throw_invalid(function, labels_name,
                  "must contain both classes (0 and 1), got " + std::to_string(data.positives) +
                      " positives and " + std::to_string(data.negatives) + " negatives");
  }
}

// One distinct threshold: the cumulative counts of samples with score >= threshold, and how many
// of them sit exactly at it.
struct ThresholdStep {
  double threshold;
  Eigen::Index true_positives;
  Eigen::Index false_positives;
  Eigen::Index tied_positives;
  Eigen::Index tied_negatives;
};

inline void sort_descending(std::vector<ScoredLabel>& samples) {
  std::sort(samples.begin(), samples.end(),
            [](const ScoredLabel& a, const ScoredLabel& b) { return a.score > b.score; });
}

// Calls visit(step) once per distinct score of samples sorted by decreasing score, highest first.
// Ties are grouped, so every metric built on this is tie-aware by construction.
template <class Visit>
void walk_thresholds(const std::vector<ScoredLabel>& samples, Visit&& visit) {
  Eigen::Index tp = 0;
  Eigen::Index fp = 0;
  std::size_t i = 0;
  while (i < samples.size()) {
    const double threshold = samples[i].score;
    Eigen::Index dp = 0;
    Eigen::Index dn = 0;
    for (; i < samples.size() && samples[i].score == threshold; ++i) {
      if (samples[i].positive) {
        ++dp;
      } else {
        ++dn;
      }
    }
    tp += dp;
    fp += dn;
    visit(ThresholdStep{threshold, tp, fp, dp, dn});
  }
}

template <class Visit>
void for_each_threshold(std::vector<ScoredLabel>& samples, Visit&& visit) {
  sort_descending(samples);
  walk_thresholds(samples, std::forward<Visit>(visit));
}

// Mann-Whitney: AUROC = U / (P N), U = #(positive > negative) + #(positive == negative) / 2.
// 2U is accumulated as an integer (exact for n up to ~6e9), so the result is rounded only once.
inline double auroc_of(LabelledSamples& data) {
  const auto negatives = static_cast<std::uint64_t>(data.negatives);
  std::uint64_t two_u = 0;
  for_each_threshold(data.samples, [&](const ThresholdStep& step) {
    const auto dp = static_cast<std::uint64_t>(step.tied_positives);
    const auto dn = static_cast<std::uint64_t>(step.tied_negatives);
    const auto below = negatives - static_cast<std::uint64_t>(step.false_positives);
    two_u += 2U * dp * below + dp * dn;
  });
  return static_cast<double>(two_u) /
         (2.0 * static_cast<double>(data.positives) * static_cast<double>(data.negatives));
}

// values(k) as a double, which must be finite ("argument 'values' must be finite, got ... at
// index k" otherwise): the per-value check of the interval functions.
template <class V>
double finite_value(std::string_view function, const V& values, Eigen::Index k) {
  const double x = value_of(vector_coeff(values, k));
  if (!std::isfinite(x)) {
    throw_invalid(function, "values",
                  "must be finite, got " + format_value(x) + " at index " + std::to_string(k));
  }
  return x;
}

// The q-quantile of sorted values, linear between order statistics (NumPy's default).
inline double sorted_quantile(const std::vector<double>& sorted, double q) {
  const double h = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(h));
  if (below + 1 >= sorted.size()) return sorted.back();
  const double frac = h - static_cast<double>(below);
  return sorted[below] + frac * (sorted[below + 1] - sorted[below]);
}

inline void check_level(std::string_view function, double level) {
  if (!(level > 0.0 && level < 1.0)) {
    throw_invalid(function, "level", "must be in (0, 1), got " + format_value(level));
  }
}

}  // namespace detail

// Area under the ROC curve: the probability that a random anomaly scores above a random normal
// sample, ties counting 1/2 (the Mann-Whitney U statistic; equal to the trapezoidal area under
// the ROC curve, as scikit-learn's roc_auc_score).
template <class DS, class DL>
[[nodiscard]] double auroc(const Eigen::MatrixBase<DS>& scores,
                           const Eigen::MatrixBase<DL>& labels) {
  constexpr std::string_view function = "baypr::auroc";
  auto data = detail::collect_vectors(function, scores, labels);
  detail::check_both_classes(function, "labels", data);
  return detail::auroc_of(data);
}

// The ROC curve at every distinct threshold (no points dropped), for plotting or for choosing an
// operating point.
template <class DS, class DL>
[[nodiscard]] RocCurve roc_curve(const Eigen::MatrixBase<DS>& scores,
                                 const Eigen::MatrixBase<DL>& labels) {
  constexpr std::string_view function = "baypr::roc_curve";
  auto data = detail::collect_vectors(function, scores, labels);
  detail::check_both_classes(function, "labels", data);
  // Count the distinct thresholds first, so the curve is allocated once at its final size.
  detail::sort_descending(data.samples);
  Eigen::Index distinct = 0;
  detail::walk_thresholds(data.samples, [&](const detail::ThresholdStep&) { ++distinct; });
  RocCurve curve;
  curve.fpr.resize(distinct + 1);
  curve.tpr.resize(distinct + 1);
  curve.thresholds.resize(distinct + 1);
  curve.fpr(0) = 0.0;
  curve.tpr(0) = 0.0;
  curve.thresholds(0) = std::numeric_limits<double>::infinity();
  const auto p = static_cast<double>(data.positives);
  const auto n = static_cast<double>(data.negatives);
  Eigen::Index k = 1;
  detail::walk_thresholds(data.samples, [&](const detail::ThresholdStep& step) {
    curve.fpr(k) = static_cast<double>(step.false_positives) / n;
    curve.tpr(k) = static_cast<double>(step.true_positives) / p;
    curve.thresholds(k) = step.threshold;
    ++k;
  });
  return curve;
}

// Area under the precision-recall curve, step-wise (no interpolation, which would be optimistic):
// sum over distinct thresholds of (R_k - R_{k-1}) P_k, as scikit-learn's average_precision_score.
template <class DS, class DL>
[[nodiscard]] double average_precision(const Eigen::MatrixBase<DS>& scores,
                                       const Eigen::MatrixBase<DL>& labels) {
  constexpr std::string_view function = "baypr::average_precision";
  auto data = detail::collect_vectors(function, scores, labels);
  detail::check_both_classes(function, "labels", data);
  double sum = 0.0;
  detail::for_each_threshold(data.samples, [&](const detail::ThresholdStep& step) {
    if (step.tied_positives == 0) return;  // recall unchanged: no contribution
    const auto tp = static_cast<double>(step.true_positives);
    sum += static_cast<double>(step.tied_positives) * tp /
           (tp + static_cast<double>(step.false_positives));
  });
  return sum / static_cast<double>(data.positives);  // the common 1/P of every recall step
}

// The maximum F1 = 2 P R / (P + R) over every distinct threshold (flag score >= threshold), with
// the threshold, precision and recall there. Where several thresholds reach the same F1, the
// highest is returned (fewest flags). F1 is formed as 2 TP / (#positives + #flagged), a ratio of
// exact integers, so equal F1 values compare exactly equal.
template <class DS, class DL>
[[nodiscard]] F1Result best_f1(const Eigen::MatrixBase<DS>& scores,
                               const Eigen::MatrixBase<DL>& labels) {
  constexpr std::string_view function = "baypr::best_f1";
  auto data = detail::collect_vectors(function, scores, labels);
  detail::check_both_classes(function, "labels", data);
  const auto p = static_cast<double>(data.positives);
  F1Result best;
  best.f1 = -1.0;
  detail::for_each_threshold(data.samples, [&](const detail::ThresholdStep& step) {
    const auto tp = static_cast<double>(step.true_positives);
    const double flagged = tp + static_cast<double>(step.false_positives);
    const double f1 = 2.0 * tp / (p + flagged);
    if (f1 > best.f1) best = F1Result{f1, step.threshold, tp / flagged, tp / p};
  });
  return best;
}

// Pixel-level AUROC of one anomaly map against its ground-truth mask (same shape; mask 1 =
// defective pixel): every pixel is one sample.
template <class DM, class DK>
[[nodiscard]] double pixel_auroc(const Eigen::DenseBase<DM>& map,
                                 const Eigen::DenseBase<DK>& mask) {
  constexpr std::string_view function = "baypr::pixel_auroc";
  detail::LabelledSamples data;
  data.samples.reserve(static_cast<std::size_t>(map.size()));
  detail::append_map(function, map, mask, std::string(), data);
  detail::check_both_classes(function, "masks", data);
  return detail::auroc_of(data);
}

// Pixel-level AUROC over all pixels of all images pooled (the usual MVTec protocol), maps[i]
// against masks[i]; images may differ in shape.
template <class M, class K>
requires std::derived_from<M, Eigen::DenseBase<M>> && std::derived_from<K, Eigen::DenseBase<K>>
[[nodiscard]] double pixel_auroc(const std::vector<M>& maps, const std::vector<K>& masks) {
  constexpr std::string_view function = "baypr::pixel_auroc";
  detail::check_size(function, "masks", "size", static_cast<Eigen::Index>(masks.size()),
                     static_cast<Eigen::Index>(maps.size()));
  std::size_t total = 0;
  for (const auto& m : maps) total += static_cast<std::size_t>(m.size());
  detail::LabelledSamples data;
  data.samples.reserve(total);
  for (std::size_t i = 0; i < maps.size(); ++i) {
    detail::append_map(function, maps[i], masks[i], "image " + std::to_string(i), data);
  }
  detail::check_both_classes(function, "masks", data);
  return detail::auroc_of(data);
}

// Percentile bootstrap confidence interval of metric(scores, labels) at the given level.
//
// Each resample draws, with replacement, as many anomalies from the anomalies and as many normals
// from the normals as the data has (stratified), so every resample has both classes and the
// class balance of the data. metric is called as metric(const Eigen::VectorXd& scores,
// const Eigen::VectorXi& labels) -> double, e.g.
//   [](const auto& s, const auto& l) { return baypr::auroc(s, l); }
// on the full data (in input order) for the estimate and on each resample (anomalies first).
// The interval runs between the (1 - level)/2 and (1 + level)/2 quantiles of the resampled values
// (linear interpolation). All randomness comes from rng, so a fixed seed reproduces the interval.
template <class Metric, class DS, class DL>
requires std::invocable<Metric&, const Eigen::VectorXd&, const Eigen::VectorXi&>
[[nodiscard]] Interval bootstrap_interval(Metric&& metric, const Eigen::MatrixBase<DS>& scores,
                                          const Eigen::MatrixBase<DL>& labels,
                                          Eigen::Index resamples, double level,
                                          std::mt19937_64& rng) {
  constexpr std::string_view function = "baypr::bootstrap_interval";
  if (resamples < 1) {
    detail::throw_invalid(function, "resamples", "must be >= 1, got " + std::to_string(resamples));
  }
  detail::check_level(function, level);
  const auto data = detail::collect_vectors(function, scores, labels);
  detail::check_both_classes(function, "labels", data);

  const auto n = static_cast<Eigen::Index>(data.samples.size());
  Eigen::VectorXd full_scores(n);
  Eigen::VectorXi full_labels(n);
  std::vector<double> positive_scores;
  std::vector<double> negative_scores;
  positive_scores.reserve(static_cast<std::size_t>(data.positives));
  negative_scores.reserve(static_cast<std::size_t>(data.negatives));
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto& s = data.samples[static_cast<std::size_t>(i)];
    full_scores(i) = s.score;
    full_labels(i) = s.positive ? 1 : 0;
    (s.positive ? positive_scores : negative_scores).push_back(s.score);
  }

  auto evaluate = [&](const Eigen::VectorXd& s, const Eigen::VectorXi& l, const char* what) {
    const auto v = static_cast<double>(std::invoke(metric, s, l));
    if (!std::isfinite(v)) {
      detail::throw_numerical(
          function, std::string("metric returned ") + detail::format_value(v) + " on " + what);
    }
    return v;
  };

  Interval result;
  result.level = level;
  result.estimate = evaluate(full_scores, full_labels, "the full data");

  // Resample buffers reused across resamples: labels are fixed by the stratification.
  Eigen::VectorXd resampled(n);
  Eigen::VectorXi resampled_labels(n);
  resampled_labels.head(data.positives).setOnes();
  resampled_labels.tail(data.negatives).setZero();
  std::vector<double> values(static_cast<std::size_t>(resamples));
  for (auto& value : values) {
    for (Eigen::Index i = 0; i < data.positives; ++i) {
      resampled(i) = positive_scores[uniform_below(rng, positive_scores.size())];
    }
    for (Eigen::Index i = 0; i < data.negatives; ++i) {
      resampled(data.positives + i) = negative_scores[uniform_below(rng, negative_scores.size())];
    }
    value = evaluate(resampled, resampled_labels, "a resample");
  }
  std::sort(values.begin(), values.end());
  result.lower = detail::sorted_quantile(values, 0.5 * (1.0 - level));
  result.upper = detail::sorted_quantile(values, 0.5 * (1.0 + level));
  return result;
}

// Per episode e, the mean over groups g of value(g, e), for results in which every group (a class,
// a texture category) ran the same episodes: the values whose mean and interval a summary table
// reports. Sums in group order, then divides once. Throws baypr::invalid_argument for no groups.
template <class F>
[[nodiscard]] std::vector<double> group_averaged(std::size_t groups, std::size_t episodes,
                                                 F&& value) {
  if (groups == 0) detail::throw_invalid("baypr::group_averaged", "groups", "must be positive");
  std::vector<double> out(episodes, 0.0);
  for (std::size_t g = 0; g < groups; ++g) {
    for (std::size_t e = 0; e < episodes; ++e) out[e] += value(g, e);
  }
  for (double& v : out) v /= static_cast<double>(groups);
  return out;
}

// Mean of per-episode values (e.g. one AUROC per few-shot episode) with the Student-t interval
// mean +- t_{(1 + level)/2, n - 1} s / sqrt(n), s the sample standard deviation; needs n >= 2.
// t^2 is the upper (1 - level) quantile of F(1, n - 1), since T^2 ~ F(1, n - 1) for T ~ t(n - 1).
template <class D>
[[nodiscard]] MeanInterval mean_interval(const Eigen::MatrixBase<D>& values, double level = 0.95) {
  constexpr std::string_view function = "baypr::mean_interval";
  detail::check_vector(function, "values", values);
  detail::check_level(function, level);
  const Eigen::Index n = values.size();
  if (n < 2) {
    detail::throw_invalid(function, "values",
                          "must have at least 2 entries, got " + std::to_string(n));
  }
  const detail::readable_t<D> v(values.derived());
  double sum = 0.0;
  for (Eigen::Index k = 0; k < n; ++k) sum += detail::finite_value(function, v, k);
  const double count = static_cast<double>(n);
  const double mean = sum / count;
  double squares = 0.0;  // two passes: no cancellation when the spread is small against the mean
  for (Eigen::Index k = 0; k < n; ++k) {
    const double r = value_of(detail::vector_coeff(v, k)) - mean;
    squares += r * r;
  }
  const double standard_error = std::sqrt(squares / (count - 1.0) / count);
  // 1 - level is exact in double for level >= 1/2, the usual case.
  const double t = std::sqrt(special::f_isf(1.0 - level, 1.0, count - 1.0));
  MeanInterval result;
  result.mean = mean;
  result.half_width = t * standard_error;
  result.lower = mean - result.half_width;
  result.upper = mean + result.half_width;
  result.level = level;
  result.count = n;
  return result;
}

// The same for values in a std::vector (one per episode, as they are usually collected).
[[nodiscard]] inline MeanInterval mean_interval(const std::vector<double>& values,
                                                double level = 0.95) {
  return mean_interval(
      Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size())),
      level);
}

// Mean of values that come in groups (e.g. per-episode AUROC differences, grouped by the episode's
// normal class) with a two-level percentile bootstrap interval: each resample draws as many groups
// as there are, with replacement, then within each drawn group as many of its values as it has,
// with replacement, and takes the mean of all drawn values. The interval runs between the
// (1 - level)/2 and (1 + level)/2 quantiles of the resampled means. It reflects both the spread of
// the groups (few classes: a wide interval) and the spread within them, which a t interval over
// all values, treating every episode as independent, understates. groups[i] names values[i]'s
// group (any ints); needs at least 2 groups, finite values. The estimate (mean) is the plain mean
// of all values. All randomness comes from rng.
template <class D>
[[nodiscard]] MeanInterval grouped_bootstrap_interval(const Eigen::MatrixBase<D>& values,
                                                      const std::vector<int>& groups,
                                                      Eigen::Index resamples, double level,
                                                      std::mt19937_64& rng) {
  constexpr std::string_view function = "baypr::grouped_bootstrap_interval";
  detail::check_vector(function, "values", values);
  detail::check_level(function, level);
  if (resamples < 1) {
    detail::throw_invalid(function, "resamples", "must be >= 1, got " + std::to_string(resamples));
  }
  const Eigen::Index n = values.size();
  if (static_cast<Eigen::Index>(groups.size()) != n) {
    detail::throw_invalid(function, "groups",
                          "must have one entry per value (" + std::to_string(n) + "), got " +
                              std::to_string(groups.size()));
  }
  const detail::readable_t<D> v(values.derived());
  std::vector<int> names;
  std::vector<std::vector<double>> members;
  double sum = 0.0;
  for (Eigen::Index k = 0; k < n; ++k) {
    const double x = detail::finite_value(function, v, k);
    sum += x;
    const int g = groups[static_cast<std::size_t>(k)];
    const auto it = std::find(names.begin(), names.end(), g);
    if (it == names.end()) {
      names.push_back(g);
      members.push_back({x});
    } else {
      members[static_cast<std::size_t>(it - names.begin())].push_back(x);
    }
  }
  if (members.size() < 2) {
    detail::throw_invalid(function, "groups",
                          "must name at least 2 groups, got " + std::to_string(members.size()));
  }
  std::vector<double> means(static_cast<std::size_t>(resamples));
  for (auto& mean : means) {
    double total = 0.0;
    std::size_t count = 0;
    for (std::size_t g = 0; g < members.size(); ++g) {
      const auto& group = members[uniform_below(rng, members.size())];
      for (std::size_t i = 0; i < group.size(); ++i) {
        total += group[uniform_below(rng, group.size())];
      }
      count += group.size();
    }
    mean = total / static_cast<double>(count);
  }
  std::sort(means.begin(), means.end());
  MeanInterval result;
  result.mean = sum / static_cast<double>(n);
  result.lower = detail::sorted_quantile(means, 0.5 * (1.0 - level));
  result.upper = detail::sorted_quantile(means, 0.5 * (1.0 + level));
  result.half_width = 0.5 * (result.upper - result.lower);
  result.level = level;
  result.count = n;
  return result;
}

}  // namespace baypr
