// baypr/score/per_position.hpp: one normality model per patch position of aligned images.
//
//   PerPositionScorer   one NIW posterior per grid position (optionally fitted on the position's
//                       3 x 3 neighbourhood), all under one prior learned across the positions by
//                       type-II maximum likelihood (fit_prior): a hierarchical model in which the
//                       positions borrow strength from each other where the few shots say little.
//                       Scores each query patch under its own position's Student-t predictive.
//   PadimScorer         the PaDiM baseline (Defard et al., ICPR 2021): one Gaussian per position,
//                       sample covariance + 0.01 I, score = Mahalanobis distance.
//
// Rows are patches, image-major, as everywhere in baypr (score/scorer.hpp): support and query
// matrices hold n images x P positions rows, row i P + j is image i's patch at position j, and
// grid position j is (j / grid_cols, j % grid_cols). Both scorers satisfy the Scorer concept, so
// score_patches(scorer, support, queries, P) gives the anomaly maps and image scores.
//
// The P posteriors are evaluated together on the batched Cholesky path (core/batched_cholesky.hpp:
// "SIMD across positions"): a query image is one point per model. Both classes hold batches of
// simd::DefaultLanes, so every translation unit of a program must agree on BAYPR_WITH_XSIMD (link
// baypr::simd everywhere or nowhere) and on -march (core/simd.hpp).
//
// Score types (BayesScore, score/bayesian.hpp; higher = more anomalous): tail (the default) is
// -log P(delta(Y) >= delta(q)) under the position's own predictive, on a common scale for every
// position whatever its spread, which is what a maximum over positions needs; nll and llr as in
// BayesianScorer.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/core/batched_cholesky.hpp"
#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/score/bayesian.hpp"
#include "baypr/stats/batched_student_t.hpp"
#include "baypr/stats/niw.hpp"
#include "baypr/stats/prior_fit.hpp"
#include "baypr/stats/student_t.hpp"

namespace baypr {

struct PerPositionScorerOptions {
  // The patch grid: positions = grid_rows x grid_cols patches per image (both >= 1).
  Eigen::Index grid_rows = 0;
  Eigen::Index grid_cols = 0;
  // Fit each position's posterior on the support patches of its 3 x 3 neighbourhood (clipped at
  // the border) instead of its own alone: 9x the rows, for small misalignments and K = 1. The
  // learned prior then treats the overlapping neighbourhoods as independent groups (each row
  // counts in up to 9 of them): an approximation of the evidence, not the evidence.
  bool pool_neighbourhood = false;
  // llr: log p_a(q) - log t(q | position's posterior), as BayesianScorer's default. Chosen on
  // Fashion-MNIST validation classes {3, 4, 5} with kappa0 below (examples/experiments/
  // per_position_validation.cpp; docs/design.md): the calibrated tail ties PaDiM at K >= 4 but
  // loses at K = 1-2, llr wins at K = 1-2 and loses by 0.01-0.02 at K >= 4, and has the higher mean.
  BayesScore score = BayesScore::llr;
  // A prior to use as it is; by default one is learned across the positions by fit_prior with
  // prior_fit. Its default scatter family here is isotropic (Psi0 = psi I; the diagonal family tied
  // it on validation). With one row per position (K = 1, no pooling) there is no within-position
  // scatter, and nu0 cannot be told apart from Psi0: it is then kept at the moment start's.
  std::optional<NiwPrior<double>> prior;
  PriorFitOptions prior_fit = isotropic_fit();
  // kappa0 of the learned prior, held fixed (not learned; it overrides prior_fit.start's);
  // nullopt: learned where the groups identify it. Small by default for the reason BayesianScorer
  // gives: the rank-one term kappa0 n / (kappa0 + n) (zbar - mu0)(zbar - mu0)^T of Psi_n discounts
  // deviations along the support patch, and with few rows a learned kappa0 (1 at K = 1, from the
  // moment start) makes that term about d times Psi0 and puts the predictive mean halfway to the
  // mean of all positions. On the validation classes: mean image AUROC over K = 1..8 0.815 against
  // 0.780 learned, PaDiM 0.814.
  std::optional<double> kappa0 = 1e-4;
  // The learned Psi0's entries are kept >= scatter_floor times the mean per-coordinate variance
  // of all support patches (PriorFitOptions::min_scatter): where the support images agree exactly
  // at a position (a background that is constant), the evidence grows without bound as Psi0 -> 0,
  // and the posterior there would be singular. 0.01 mirrors PaDiM's + 0.01 I for unit-scale
  // features. 0 leaves only fit_prior's own bound.
  double scatter_floor = 0.01;
  // The vague anomaly model of the llr score, as in BayesianScorerOptions.
  double anomaly_scale = 100.0;
  double anomaly_dof = 2.0;

  static PriorFitOptions isotropic_fit() {
    PriorFitOptions o;
    o.scatter = ScatterFamily::isotropic;
    return o;
  }
};

namespace detail {

inline void check_grid(const char* fn, const char* rows_name, Eigen::Index rows,
                       const char* cols_name, Eigen::Index cols) {
  if (rows < 1) throw_invalid(fn, rows_name, "must be >= 1, got " + std::to_string(rows));
  if (cols < 1) throw_invalid(fn, cols_name, "must be >= 1, got " + std::to_string(cols));
  if (rows > std::numeric_limits<Eigen::Index>::max() / cols) {
    throw_invalid(fn, cols_name,
                  "times " + std::string(rows_name) + " = " + std::to_string(rows) +
                      " overflows the number of positions, got " + std::to_string(cols));
  }
}

// A position whose matrix (what: its scale or covariance) is not positive definite, with the
// remedy that the caller's options offer.
[[noreturn]] inline void throw_position_failure(const char* fn, const batched::BatchFailure& f,
                                                const char* what, const char* remedy) {
  throw_numerical(fn, "position " + std::to_string(f.index) + ": " + what +
                          " is not numerically positive definite (Cholesky pivot " +
                          std::to_string(f.pivot) + " = " + format_value(f.value) + "); " + remedy);
}

// n images x P positions rows: returns n, or names the argument.
template <class Derived>
Eigen::Index images_in(const char* fn, const char* argument, const Eigen::MatrixBase<Derived>& rows,
                       Eigen::Index positions, Eigen::Index dim) {
  check_nonempty(fn, argument, rows.rows());
  if (rows.rows() % positions != 0) {
    throw_invalid(fn, argument,
                  "has " + std::to_string(rows.rows()) + " rows, not a multiple of the grid's " +
                      std::to_string(positions) + " positions");
  }
  if (dim > 0) check_size(fn, argument, "columns", rows.cols(), dim);
  check_finite(fn, argument, rows);
  return rows.rows() / positions;
}

// The support rows of position j (of its 3 x 3 neighbourhood when pooling), image by image.
template <class Derived>
Eigen::MatrixXd position_rows(const Eigen::MatrixBase<Derived>& rows, Eigen::Index images,
                              Eigen::Index grid_rows, Eigen::Index grid_cols, Eigen::Index j,
                              bool pool) {
  const Eigen::Index positions = grid_rows * grid_cols;
  std::vector<Eigen::Index> members;
  if (pool) {
    const Eigen::Index r = j / grid_cols, c = j % grid_cols;
    for (Eigen::Index rr = std::max<Eigen::Index>(r - 1, 0); rr <= std::min(r + 1, grid_rows - 1);
         ++rr) {
      for (Eigen::Index cc = std::max<Eigen::Index>(c - 1, 0); cc <= std::min(c + 1, grid_cols - 1);
           ++cc) {
        members.push_back(rr * grid_cols + cc);
      }
    }
  } else {
    members.push_back(j);
  }
  Eigen::MatrixXd out(images * static_cast<Eigen::Index>(members.size()), rows.cols());
  Eigen::Index at = 0;
  for (Eigen::Index i = 0; i < images; ++i) {
    for (const Eigen::Index m : members)
      out.row(at++) = rows.row(i * positions + m).template cast<double>();
  }
  return out;
}

}  // namespace detail

class PerPositionScorer {
 public:
  using Options = PerPositionScorerOptions;

  explicit PerPositionScorer(const Options& options) : options_(options) {
    constexpr const char* fn = "baypr::PerPositionScorer::PerPositionScorer";
    detail::check_grid(fn, "options.grid_rows", options.grid_rows, "options.grid_cols",
                       options.grid_cols);
    detail::check_positive(fn, "options.anomaly_scale", options.anomaly_scale);
    detail::check_positive(fn, "options.anomaly_dof", options.anomaly_dof);
    if (!(options.scatter_floor >= 0.0) || !std::isfinite(options.scatter_floor)) {
      detail::throw_invalid(
          fn, "options.scatter_floor",
          "must be finite and >= 0, got " + detail::format_value(options.scatter_floor));
    }
    if (options.kappa0 && !(*options.kappa0 >= std::exp(-detail::PooledEvidence<>::log_bound) &&
                            *options.kappa0 <= std::exp(detail::PooledEvidence<>::log_bound))) {
      detail::throw_invalid(fn, "options.kappa0",
                            "must be in [e^-40, e^40] (or nullopt: learned), got " +
                                detail::format_value(*options.kappa0));
    }
    if (options.score != BayesScore::nll && options.score != BayesScore::llr &&
        options.score != BayesScore::tail) {
      detail::throw_invalid(fn, "options.score", "is not a BayesScore value");
    }
  }

  [[nodiscard]] Eigen::Index positions() const { return options_.grid_rows * options_.grid_cols; }
  [[nodiscard]] bool fitted() const { return model_.has_value(); }
  [[nodiscard]] Eigen::Index dim() const { return model_ ? model_->dim() : 0; }
  [[nodiscard]] const Options& options() const { return options_; }
  // The shared prior: options.prior, or the one learned by the last fit.
  [[nodiscard]] const NiwPrior<double>& prior() const {
    detail::check_fitted("baypr::PerPositionScorer::prior", fitted(), "fit(support)");
    return *prior_;
  }
  // How the last fit learned its prior (fit_prior's report: log evidence, iterations, whether the
  // gradient tolerance was met, the projected gradient's size), or nullopt when options.prior was
  // given. A fit that did not converge still uses the best prior found; this says so.
  [[nodiscard]] const std::optional<PriorFit>& prior_fit_report() const {
    detail::check_fitted("baypr::PerPositionScorer::prior_fit_report", fitted(), "fit(support)");
    return fit_;
  }

  // Support rows: n images x P positions, image-major (n >= 1).
  template <class Derived>
  PerPositionScorer& fit(const Eigen::MatrixBase<Derived>& support) {
    fit_impl(support);
    return *this;
  }

  // One score per query row (n images x P positions, image-major).
  template <class Derived>
  [[nodiscard]] Eigen::VectorXd score(const Eigen::MatrixBase<Derived>& queries) const {
    constexpr const char* fn = "baypr::PerPositionScorer::score";
    detail::check_fitted(fn, fitted(), "fit(support)");
    const Eigen::Index P = positions(), d = dim();
    const Eigen::Index n = detail::images_in(fn, "queries", queries, P, d);
    const IsotropicStudentT anomaly(static_cast<double>(d), options_.anomaly_dof,
                                    options_.anomaly_scale);
    // Images in chunks, each scored in one pass over the positions' factors (each factor read
    // once per chunk rather than once per image; memory bounded by the chunk). The query rows are
    // read in place (StudentTBatch::log_pdf_rows), and images_in has checked them all.
    constexpr Eigen::Index chunk = 32;
    Eigen::VectorXd out(n * P);
    Eigen::MatrixXd delta, log_t;
    for (Eigen::Index i0 = 0; i0 < n; i0 += chunk) {
      const Eigen::Index m = std::min(chunk, n - i0);
      const auto rows = queries.middleRows(i0 * P, m * P);
      if constexpr (std::is_same_v<typename Derived::Scalar, double>) {
        log_t = model_->log_pdf_rows(rows, batched::already_checked, &delta);
      } else {
        log_t =
            model_->log_pdf_rows(rows.template cast<double>(), batched::already_checked, &delta);
      }
      score_chunk(queries, i0, m, log_t, delta, anomaly, out);
    }
    return out;
  }

 private:
  template <class Derived>
  void score_chunk(const Eigen::MatrixBase<Derived>& queries, Eigen::Index i0, Eigen::Index m,
                   const Eigen::MatrixXd& log_t, const Eigen::MatrixXd& delta,
                   const IsotropicStudentT& anomaly, Eigen::VectorXd& out) const {
    const Eigen::Index P = positions();
    const auto d = static_cast<double>(dim());
    for (Eigen::Index c = 0; c < m; ++c) {
      const Eigen::Index i = i0 + c;
      for (Eigen::Index j = 0; j < P; ++j) {
        double s = 0.0;
        switch (options_.score) {
          case BayesScore::nll:
            s = -log_t(j, c);
            break;
          case BayesScore::llr:
            s = anomaly.log_pdf(queries.row(i * P + j).template cast<double>().squaredNorm()) -
                log_t(j, c);
            break;
          case BayesScore::tail:
            s = -special::f_logsf(delta(j, c) / d, d, model_->dof()(j));
            break;
        }
        out(i * P + j) = s;
      }
    }
  }

  template <class Derived>
  void fit_impl(const Eigen::MatrixBase<Derived>& support) {
    constexpr const char* fn = "baypr::PerPositionScorer::fit";
    const Eigen::Index P = positions();
    const Eigen::Index d_given = options_.prior ? options_.prior->dim() : 0;
    const Eigen::Index n = detail::images_in(fn, "support", support, P, d_given);
    const Eigen::Index d = support.cols();
    std::vector<Eigen::MatrixXd> groups;
    groups.reserve(static_cast<std::size_t>(P));
    for (Eigen::Index j = 0; j < P; ++j) {
      groups.push_back(detail::position_rows(support, n, options_.grid_rows, options_.grid_cols, j,
                                             options_.pool_neighbourhood));
    }
    std::optional<PriorFit> learned;
    if (!options_.prior) learned.emplace(learn_prior(groups, support));
    NiwPrior<double> prior = learned ? learned->prior : *options_.prior;
    batched::SymmetricBatch<double> scale(P, d);
    batched::VectorBatch<double> location(P, d);
    Eigen::VectorXd dof(P);
    for (Eigen::Index j = 0; j < P; ++j) {
      std::optional<NiwPosterior<double>> fitted_post;
      try {
        fitted_post.emplace(prior.posterior(groups[static_cast<std::size_t>(j)], Path::dense));
      } catch (const std::exception& e) {
        detail::throw_numerical(fn, "position " + std::to_string(j) + ": " + e.what());
      }
      const NiwPosterior<double>& post = *fitted_post;
      const double v = post.predictive_dof();
      const double kn = post.kappa();
      scale.set(j, post.scatter() * ((kn + 1.0) / (kn * v)));
      location.set(j, post.mean());
      dof(j) = v;
    }
    batched::CholeskyBatch<double> factor(scale);
    if (!factor.ok()) {
      detail::throw_position_failure(fn, factor.failures().front(),
                                     "the posterior predictive scale",
                                     "raise options.scatter_floor");
    }
    batched::StudentTBatch<double> model(location, std::move(factor), dof);
    // Commit only after everything succeeded.
    prior_.emplace(std::move(prior));
    model_.emplace(std::move(model));
    fit_ = std::move(learned);
  }

  template <class Derived>
  PriorFit learn_prior(const std::vector<Eigen::MatrixXd>& groups,
                       const Eigen::MatrixBase<Derived>& support) const {
    PriorFitOptions o = options_.prior_fit;
    const Eigen::RowVectorXd mean = support.template cast<double>().colwise().mean();
    const double variance = (support.template cast<double>().rowwise() - mean).squaredNorm() /
                            static_cast<double>(support.size());
    o.min_scatter = std::max(o.min_scatter, options_.scatter_floor * variance);
    const bool single_rows = std::any_of(groups.begin(), groups.end(),
                                         [](const Eigen::MatrixXd& g) { return g.rows() < 2; });
    if (single_rows) {
      o.learn_kappa = false;
      o.learn_dof = false;
    }
    if (options_.kappa0) {
      // fit_prior's own start with kappa0 replaced.
      const NiwPrior<double> start = detail::search_start<>(groups, o);
      o.start.emplace(start.mean(), *options_.kappa0, start.nu(), start.scatter());
      o.learn_kappa = false;
    }
    return fit_prior(std::span<const Eigen::MatrixXd>(groups), o);
  }

  Options options_;
  std::optional<NiwPrior<double>> prior_;
  std::optional<PriorFit> fit_;
  std::optional<batched::StudentTBatch<double>> model_;
};

// PaDiM: per position, the sample mean and covariance (n - 1 denominator; zero for one image)
// plus eps I (the published 0.01), and the Mahalanobis distance sqrt(delta) as the score.
class PadimScorer {
 public:
  PadimScorer(Eigen::Index grid_rows, Eigen::Index grid_cols, double eps = 0.01)
      : rows_(grid_rows), cols_(grid_cols), eps_(eps) {
    constexpr const char* fn = "baypr::PadimScorer::PadimScorer";
    detail::check_grid(fn, "grid_rows", grid_rows, "grid_cols", grid_cols);
    detail::check_positive(fn, "eps", eps);
  }

  [[nodiscard]] Eigen::Index positions() const { return rows_ * cols_; }
  [[nodiscard]] bool fitted() const { return chol_.has_value(); }

  template <class Derived>
  PadimScorer& fit(const Eigen::MatrixBase<Derived>& support) {
    constexpr const char* fn = "baypr::PadimScorer::fit";
    const Eigen::Index P = positions();
    const Eigen::Index n = detail::images_in(fn, "support", support, P, 0);
    const Eigen::Index d = support.cols();
    batched::SymmetricBatch<double> cov(P, d);
    batched::VectorBatch<double> mean(P, d);
    for (Eigen::Index j = 0; j < P; ++j) {
      const Eigen::MatrixXd z = detail::position_rows(support, n, rows_, cols_, j, false);
      const Eigen::RowVectorXd m = z.colwise().mean();
      const Eigen::MatrixXd c = z.rowwise() - m;
      Eigen::MatrixXd s = Eigen::MatrixXd::Identity(d, d) * eps_;
      if (n > 1) s += c.transpose() * c / static_cast<double>(n - 1);
      cov.set(j, s);
      mean.set(j, m.transpose());
    }
    batched::CholeskyBatch<double> chol(cov);
    if (!chol.ok()) {
      detail::throw_position_failure(fn, chol.failures().front(), "the covariance + eps I",
                                     "raise eps");
    }
    chol_.emplace(std::move(chol));
    mean_.emplace(std::move(mean));
    return *this;
  }

  template <class Derived>
  [[nodiscard]] Eigen::VectorXd score(const Eigen::MatrixBase<Derived>& queries) const {
    constexpr const char* fn = "baypr::PadimScorer::score";
    detail::check_fitted(fn, fitted(), "fit(support)");
    const Eigen::Index P = positions(), d = chol_->dim();
    const Eigen::Index n = detail::images_in(fn, "queries", queries, P, d);
    Eigen::VectorXd out(n * P);
    batched::VectorBatch<double> x(P, d);
    for (Eigen::Index i = 0; i < n; ++i) {
      x.set_rows(queries.middleRows(i * P, P).template cast<double>(), batched::already_checked);
      out.segment(i * P, P) = chol_->squared_norms(difference(x)).cwiseSqrt();
    }
    return out;
  }

 private:
  // x_j - mean_j for every position.
  batched::VectorBatch<double> difference(const batched::VectorBatch<double>& x) const {
    batched::VectorBatch<double> out = x;
    const Eigen::Index w = batched::VectorBatch<double>::width;
    for (Eigen::Index p = 0; p < out.groups(); ++p) {
      for (Eigen::Index i = 0; i < out.dim(); ++i) {
        double* o = out.element(p, i);
        const double* m = mean_->element(p, i);
        for (Eigen::Index l = 0; l < w; ++l) o[l] -= m[l];
      }
    }
    return out;
  }

  Eigen::Index rows_, cols_;
  double eps_;
  std::optional<batched::CholeskyBatch<double>> chol_;
  std::optional<batched::VectorBatch<double>> mean_;
};

}  // namespace baypr
