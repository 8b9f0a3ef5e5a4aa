// baypr/stats/sufficient_statistics.hpp: the sufficient statistics of a normality model, as a value
// that can leave the site that computed it.
//
//   SufficientStatistics<Scalar>::of(Z)   count n, mean zbar, centred scatter S of Z's rows
//   a.merge(b)                            the statistics of the union of both sets of rows, exactly
//   pooled(span of statistics)            the same over any number of sites, in the given order
//   NiwPrior::posterior(statistics)       the posterior they give (stats/niw.hpp)
//
// With n = n_a + n_b and delta = zbar_b - zbar_a (Chan, Golub and LeVeque's pairwise update):
//   zbar = zbar_a + (n_b / n) delta,   S = S_a + S_b + (n_a n_b / n) delta delta^T,
// so the posterior of the pooled statistics is the posterior of all the rows together (to
// rounding), and no row needs to leave its site. This is what a federated site sends instead of
// its embeddings (the federated layer adds secure aggregation on top).
//
// Invariants (checked by check(), which every consumer calls): count >= 0; mean d values and
// scatter d x d; all finite; scatter symmetric with a non-negative diagonal; count = 0 has a zero
// mean and a zero scatter; count = 1 has a zero scatter. Positive semi-definiteness is not checked
// beyond that (the posterior's Cholesky of Psi0 + S + ... fails loudly if it is violated badly).
#pragma once

#include <Eigen/Core>
#include <span>
#include <string>

#include "baypr/core/errors.hpp"
#include "baypr/core/traits.hpp"

namespace baypr {

template <class Scalar = double>
struct SufficientStatistics {
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

  Eigen::Index count = 0;
  Vector mean;     // zbar (zero when count = 0)
  Matrix scatter;  // S = sum_i (z_i - zbar)(z_i - zbar)^T

  // Empty statistics of dimension d.
  [[nodiscard]] static SufficientStatistics empty(Eigen::Index d) {
    return {0, Vector::Zero(d), Matrix::Zero(d, d)};
  }

  // The statistics of Z's rows (n x d; n = 0 allowed, d >= 1; finite).
  template <class Derived>
  [[nodiscard]] static SufficientStatistics of(const Eigen::MatrixBase<Derived>& Z) {
    constexpr const char* fn = "baypr::SufficientStatistics::of";
    if (Z.cols() < 1) detail::throw_invalid(fn, "Z", "needs at least one column, got 0");
    detail::check_finite(fn, "Z", Z);
    SufficientStatistics s = empty(Z.cols());
    s.count = Z.rows();
    if (s.count == 0) return s;
    Matrix centred = Z.derived().template cast<Scalar>();
    s.mean = centred.colwise().mean().transpose();
    centred.rowwise() -= s.mean.transpose();
    s.scatter.noalias() = centred.transpose() * centred;
    return s;
  }

  [[nodiscard]] Eigen::Index dim() const { return mean.size(); }

  // Throws baypr::invalid_argument naming `function` and `argument` when an invariant fails.
  void check(const char* function, const std::string& argument) const {
    const Eigen::Index d = mean.size();
    if (d < 1) detail::throw_invalid(function, argument + ".mean", "must have at least one value");
    if (count < 0) {
      detail::throw_invalid(function, argument + ".count",
                            "must be >= 0, got " + std::to_string(count));
    }
    if (scatter.rows() != d || scatter.cols() != d) {
      detail::throw_invalid(function, argument + ".scatter",
                            "must be " + std::to_string(d) + " x " + std::to_string(d) + ", got " +
                                std::to_string(scatter.rows()) + " x " +
                                std::to_string(scatter.cols()));
    }
    detail::check_finite(function, argument + ".mean", mean);
    detail::check_finite(function, argument + ".scatter", scatter);
    if (!(scatter - scatter.transpose()).isZero(Scalar(0))) {
      const Scalar asym = (scatter - scatter.transpose()).cwiseAbs().maxCoeff();
      const Scalar size = Scalar(1) + scatter.cwiseAbs().maxCoeff();
      if (asym > Scalar(1e-12) * size) {
        detail::throw_invalid(function, argument + ".scatter",
                              "must be symmetric, got an asymmetry of " +
                                  detail::format_value(static_cast<double>(asym)));
      }
    }
    if ((scatter.diagonal().array() < Scalar(0)).any()) {
      detail::throw_invalid(function, argument + ".scatter", "has a negative diagonal entry");
    }
    if (count == 0 && (!mean.isZero(Scalar(0)) || !scatter.isZero(Scalar(0)))) {
      detail::throw_invalid(function, argument,
                            "has count 0 but a non-zero mean or scatter (empty statistics are "
                            "all zero)");
    }
    if (count == 1 && !scatter.isZero(Scalar(0))) {
      detail::throw_invalid(function, argument, "has count 1 but a non-zero scatter");
    }
  }

  // The statistics of both sets of rows together. Both must be valid and of one dimension; on
  // error this is left unchanged.
  SufficientStatistics& merge(const SufficientStatistics& other) {
    constexpr const char* fn = "baypr::SufficientStatistics::merge";
    check(fn, "this");
    other.check(fn, "other");
    detail::check_size(fn, "other", "dimension", other.dim(), dim());
    if (other.count == 0) return *this;
    if (count == 0) {
      *this = other;
      return *this;
    }
    const Scalar na = from_index<Scalar>(count), nb = from_index<Scalar>(other.count);
    const Scalar n = na + nb;
    const Vector delta = other.mean - mean;
    scatter += other.scatter;
    scatter.noalias() += (na * nb / n) * delta * delta.transpose();
    mean += (nb / n) * delta;
    count += other.count;
    return *this;
  }
};

// The statistics of all sites' rows together, merged left to right (the order fixes the rounding,
// so a fixed order gives a bitwise-reproducible result). At least one site; all of one dimension.
[[nodiscard]] inline SufficientStatistics<double> pooled(
    std::span<const SufficientStatistics<double>> sites) {
  constexpr const char* fn = "baypr::pooled";
  if (sites.empty()) detail::throw_invalid(fn, "sites", "needs at least one site");
  for (std::size_t i = 0; i < sites.size(); ++i) {
    sites[i].check(fn, "sites[" + std::to_string(i) + "]");
    detail::check_size(fn, "sites[" + std::to_string(i) + "]", "dimension", sites[i].dim(),
                       sites[0].dim());
  }
  SufficientStatistics<double> out = sites[0];
  for (std::size_t i = 1; i < sites.size(); ++i) out.merge(sites[i]);
  return out;
}

}  // namespace baypr
