// baypr/stats/niw.hpp: the Normal-Inverse-Wishart prior and its conjugate posterior.
//
// NiwPrior<Scalar, Dim> validates and holds NIW(mu0, kappa0, nu0, Psi0). NiwPosterior holds the
// sufficient statistics of the samples seen (count n, mean zbar, centred scatter S) together with
// the lower Cholesky factor of
//
//   Psi_n = Psi0 + S + (kappa0 n / kappa_n) (zbar - mu0)(zbar - mu0)^T,
//
// so that the predictive Student-t costs no refactorisation, add()/remove() are O(d^2) rank-one
// Cholesky updates/downdates, and merge() pools two posteriors exactly (sufficient statistics
// combine without the samples). The scatter is always centred, never an uncentred sum of x x^T.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <memory>
#include <numbers>
#include <optional>
#include <string>

#include "baypr/core/errors.hpp"
#include "baypr/core/special.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/stats/low_rank.hpp"
#include "baypr/stats/student_t.hpp"
#include "baypr/stats/sufficient_statistics.hpp"

namespace baypr {

template <class Scalar = double, int Dim = Eigen::Dynamic>
class NiwPosterior;

// How a posterior holds Psi_n. With a diagonal Psi0 and n + 1 < d, Psi_n is diagonal plus rank
// <= n + 1: fitting costs O(n^2 d) and each query O(n d) (Woodbury identity and determinant
// lemma, see low_rank.hpp) instead of O(d^3) and O(d^2). `automatic` takes the low-rank path
// exactly then; `dense` and `low_rank` force one (low_rank requires a diagonal Psi0).
enum class Path { automatic, dense, low_rank };

template <class Scalar = double, int Dim = Eigen::Dynamic>
class NiwPrior {
 public:
  using Vector = Eigen::Matrix<Scalar, Dim, 1>;
  using Matrix = Eigen::Matrix<Scalar, Dim, Dim>;
  using Posterior = NiwPosterior<Scalar, Dim>;

  // Validates every argument: finite mu0, kappa0 > 0, nu0 > d - 1, Psi0 symmetric positive
  // definite (symmetric to a relative tolerance; the mean of Psi0 and Psi0^T is kept).
  NiwPrior(const Vector& mu0, const Scalar& kappa0, const Scalar& nu0, const Matrix& psi0) {
    constexpr const char* fn = "baypr::NiwPrior::NiwPrior";
    const Eigen::Index d = mu0.size();
    if (d < 1) detail::throw_invalid(fn, "mu0", "must have at least one entry, got 0");
    detail::check_finite(fn, "mu0", mu0);
    detail::check_positive(fn, "kappa0", kappa0);
    detail::check_finite_scalar(fn, "nu0", nu0);
    if (!(value_of(nu0) > static_cast<double>(d - 1))) {
      detail::throw_invalid(
          fn, "nu0",
          "must be > d - 1 = " + std::to_string(d - 1) + ", got " + detail::format_value(nu0));
    }
    detail::check_size(fn, "psi0", "rows", psi0.rows(), d);
    detail::check_size(fn, "psi0", "columns", psi0.cols(), d);
    detail::check_finite(fn, "psi0", psi0);
    detail::check_symmetric(fn, "psi0", psi0);
    auto data = std::make_shared<Data>();
    data->mu0 = mu0;
    data->kappa0 = kappa0;
    data->nu0 = nu0;
    data->psi0 = (psi0 + psi0.transpose()) / Scalar(2);
    data->llt0.compute(data->psi0);
    if (data->llt0.info() != Eigen::Success) {
      detail::throw_invalid(fn, "psi0", "must be positive definite");
    }
    detail::check_cholesky_pivots(fn, "psi0", data->llt0.matrixLLT());
    data->log_det_psi0 = Scalar(2) * data->llt0.matrixLLT().diagonal().array().log().sum();
    data->diagonal = true;
    for (Eigen::Index j = 0; j < d; ++j) {
      for (Eigen::Index i = 0; i < d; ++i) {
        data->diagonal = data->diagonal && (i == j || data->psi0(i, j) == Scalar(0));
      }
    }
    data_ = std::move(data);
  }

  // mu0 = 0, Psi0 = psi_scale I.
  static NiwPrior isotropic(Eigen::Index d, const Scalar& kappa0, const Scalar& nu0,
                            const Scalar& psi_scale) {
    constexpr const char* fn = "baypr::NiwPrior::isotropic";
    if (d < 1 || (Dim != Eigen::Dynamic && d != Dim)) {
      detail::throw_invalid(fn, "d",
                            "must be >= 1 (and equal to Dim when fixed), got " + std::to_string(d));
    }
    detail::check_positive(fn, "psi_scale", psi_scale);
    return NiwPrior(Vector::Zero(d), kappa0, nu0, Matrix::Identity(d, d) * psi_scale);
  }

  // The method's defaults (authors' code): mu0 = 0, kappa0 = 0.01, nu0 = d + 2, Psi0 = I.
  static NiwPrior method_default(Eigen::Index d) {
    return isotropic(d, Scalar(0.01), from_index<Scalar>(d + 2), Scalar(1));
  }

  [[nodiscard]] Eigen::Index dim() const { return data_->mu0.size(); }
  [[nodiscard]] const Vector& mean() const { return data_->mu0; }
  [[nodiscard]] const Scalar& kappa() const { return data_->kappa0; }
  [[nodiscard]] const Scalar& nu() const { return data_->nu0; }
  [[nodiscard]] const Matrix& scatter() const { return data_->psi0; }
  // Lower Cholesky factor of Psi0.
  [[nodiscard]] Matrix scatter_cholesky() const { return data_->llt0.matrixL(); }
  [[nodiscard]] const Scalar& log_det_scatter() const { return data_->log_det_psi0; }
  // True when Psi0 is diagonal (isotropic included).
  [[nodiscard]] bool is_diagonal() const { return data_->diagonal; }

  // Posterior given samples (n x d, one sample per row; any Eigen expression). n = 0 is allowed
  // and gives the prior itself as a posterior with no samples.
  template <class Derived>
  [[nodiscard]] Posterior posterior(const Eigen::MatrixBase<Derived>& samples,
                                    Path path = Path::automatic) const {
    return Posterior(*this, samples, path);
  }
  [[nodiscard]] Posterior posterior(Path path = Path::automatic) const {
    return Posterior(*this, path);
  }
  // Posterior given the sufficient statistics of the samples (stats/sufficient_statistics.hpp:
  // e.g. pooled from several sites) instead of the samples: equal to the posterior of the samples
  // to rounding. Always the dense path (the low-rank path needs the samples themselves; asking for
  // it throws).
  [[nodiscard]] Posterior posterior(const SufficientStatistics<Scalar>& statistics,
                                    Path path = Path::automatic) const {
    return Posterior(*this, statistics, path);
  }

  // The prior predictive (the posterior predictive with no samples).
  [[nodiscard]] StudentT<Scalar, Dim> predictive() const { return posterior().predictive(); }

  // Exact equality of hyper-parameters: posteriors can only be merged when this holds.
  friend bool operator==(const NiwPrior& a, const NiwPrior& b) {
    if (a.data_ == b.data_) return true;
    return a.dim() == b.dim() && a.kappa() == b.kappa() && a.nu() == b.nu() &&
           a.mean() == b.mean() && a.scatter() == b.scatter();
  }

 private:
  friend class NiwPosterior<Scalar, Dim>;

  // Immutable once built and shared by every copy and every posterior: copying a prior (which
  // each posterior holds) costs a reference count, not two d x d matrices.
  struct Data {
    Vector mu0;
    Scalar kappa0;
    Scalar nu0;
    Matrix psi0;
    Eigen::LLT<Matrix> llt0;
    Scalar log_det_psi0{};
    bool diagonal = false;
  };
  std::shared_ptr<const Data> data_;
};

template <class Scalar, int Dim>
class NiwPosterior {
 public:
  using Prior = NiwPrior<Scalar, Dim>;
  using Vector = typename Prior::Vector;
  using Matrix = typename Prior::Matrix;
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Dim>;
  using LowRank = DiagPlusLowRank<Scalar, Dim>;

  // The posterior with no samples: equal to the prior.
  explicit NiwPosterior(const Prior& prior, Path path = Path::automatic)
      : prior_(prior), path_(path), mean_(Vector::Zero(prior.dim())) {
    low_rank_ = choose_low_rank(prior, path, 0, "baypr::NiwPrior::posterior");
    if (low_rank_) {
      samples_.resize(0, prior.dim());
      rebuild_low_rank("baypr::NiwPrior::posterior");
    } else {
      centred_scatter_ = Matrix::Zero(prior.dim(), prior.dim());
      llt_ = prior.data_->llt0;
    }
  }

  template <class Derived>
  NiwPosterior(const Prior& prior, const Eigen::MatrixBase<Derived>& samples,
               Path path = Path::automatic)
      : prior_(prior), path_(path) {
    constexpr const char* fn = "baypr::NiwPrior::posterior";
    detail::check_size(fn, "samples", "columns", samples.cols(), prior.dim());
    detail::check_finite(fn, "samples", samples);
    low_rank_ = choose_low_rank(prior, path, samples.rows(), fn);
    n_ = samples.rows();
    if (low_rank_) {
      samples_ = samples.derived().template cast<Scalar>();
      rebuild_low_rank(fn);
      return;
    }
    mean_ = Vector::Zero(prior.dim());
    centred_scatter_ = Matrix::Zero(prior.dim(), prior.dim());
    if (n_ > 0) {
      Rows centred = samples.derived().template cast<Scalar>();
      mean_ = centred.colwise().mean().transpose();
      centred.rowwise() -= mean_.transpose();
      centred_scatter_ = scatter_of(centred);
    }
    refactor(fn);
  }

  NiwPosterior(const Prior& prior, const SufficientStatistics<Scalar>& statistics,
               Path path = Path::automatic)
      : prior_(prior), path_(path) {
    constexpr const char* fn = "baypr::NiwPrior::posterior";
    statistics.check(fn, "statistics");
    detail::check_size(fn, "statistics", "dimension", statistics.dim(), prior.dim());
    if (path == Path::low_rank) {
      detail::throw_invalid(fn, "path",
                            "must be automatic or dense: the low-rank path needs the samples "
                            "themselves");
    }
    n_ = statistics.count;
    mean_ = statistics.mean;
    centred_scatter_ = statistics.scatter;
    refactor(fn);
  }

  [[nodiscard]] const Prior& prior() const { return prior_; }
  [[nodiscard]] Eigen::Index dim() const { return prior_.dim(); }
  [[nodiscard]] Eigen::Index count() const { return n_; }
  [[nodiscard]] Scalar kappa() const { return prior_.kappa() + from_index<Scalar>(n_); }
  [[nodiscard]] Scalar nu() const { return prior_.nu() + from_index<Scalar>(n_); }
  // True when Psi_n is held as diagonal plus low rank (see Path).
  [[nodiscard]] bool is_low_rank() const { return low_rank_; }
  // mu_n = (kappa0 mu0 + n zbar) / kappa_n
  [[nodiscard]] Vector mean() const {
    if (n_ == 0) return prior_.mean();
    return prior_.mean() + (from_index<Scalar>(n_) / kappa()) * (mean_ - prior_.mean());
  }
  // Psi_n, assembled from the exact sufficient statistics (not from a factorisation).
  [[nodiscard]] Matrix scatter() const {
    if (n_ == 0) return prior_.scatter();
    const Vector e = mean_ - prior_.mean();
    return prior_.scatter() + sample_scatter() + shrinkage() * e * e.transpose();
  }
  // Lower Cholesky factor of Psi_n (computed, O(d^3), on the low-rank path).
  [[nodiscard]] Matrix scatter_cholesky() const {
    if (low_rank_) return Eigen::LLT<Matrix>(scatter()).matrixL();
    return llt_->matrixL();
  }
  [[nodiscard]] Scalar log_det_scatter() const {
    if (low_rank_) return psi_low_rank_.log_det();
    return Scalar(2) * llt_->matrixLLT().diagonal().array().log().sum();
  }
  // The sufficient statistics (count, mean, centred scatter) as one value: what a site sends
  // to pool its posterior with others' (NiwPrior::posterior(statistics) rebuilds one).
  [[nodiscard]] SufficientStatistics<Scalar> statistics() const {
    return {n_, mean_, sample_scatter()};
  }
  // Sufficient statistics: mean zbar (zero when empty) and centred scatter S of the samples.
  [[nodiscard]] const Vector& sample_mean() const { return mean_; }
  [[nodiscard]] Matrix sample_scatter() const {
    if (!low_rank_) return centred_scatter_;
    if (n_ == 0) return Matrix::Zero(dim(), dim());
    Rows centred = samples_;
    centred.rowwise() -= mean_.transpose();
    return scatter_of(centred);
  }

  // Posterior predictive: Student-t with v = nu_n - d + 1, location mu_n,
  // Sigma = Psi_n (kappa_n + 1) / (kappa_n v). No refactorisation on either path.
  [[nodiscard]] StudentT<Scalar, Dim> predictive() const {
    using std::sqrt;
    const Scalar v = predictive_dof();
    const Scalar c = (kappa() + Scalar(1)) / (kappa() * v);
    if (low_rank_) return StudentT<Scalar, Dim>::from_low_rank(mean(), psi_low_rank_.scaled(c), v);
    return StudentT<Scalar, Dim>::from_cholesky(mean(), Matrix(llt_->matrixL()) * sqrt(c), v);
  }
  [[nodiscard]] Scalar predictive_dof() const {
    return nu() - from_index<Scalar>(dim()) + Scalar(1);
  }

  // log p(samples) under the prior:
  //   -(n d / 2) log pi + log Gamma_d(nu_n / 2) - log Gamma_d(nu0 / 2)
  //   + (nu0 / 2) log|Psi0| - (nu_n / 2) log|Psi_n| + (d / 2)(log kappa0 - log kappa_n)
  [[nodiscard]] Scalar log_marginal_likelihood() const {
    using special::lgamma;
    using std::log;
    const Eigen::Index d = dim();
    const Scalar n = from_index<Scalar>(n_);
    Scalar gammas(0);
    for (Eigen::Index j = 0; j < d; ++j) {
      const Scalar shift = from_index<Scalar>(j) / Scalar(2);
      gammas += lgamma(nu() / Scalar(2) - shift) - lgamma(prior_.nu() / Scalar(2) - shift);
    }
    const Scalar dd = from_index<Scalar>(d);
    return -(n * dd / Scalar(2)) * Scalar(std::log(std::numbers::pi)) + gammas +
           prior_.nu() / Scalar(2) * prior_.log_det_scatter() -
           nu() / Scalar(2) * log_det_scatter() +
           dd / Scalar(2) * (log(prior_.kappa()) - log(kappa()));
  }

  // Fold one sample in. Dense path: O(d^2), kappa' = kappa + 1, mu' = mu + (x - mu)/kappa',
  // Psi' = Psi + (kappa / kappa')(x - mu)(x - mu)^T as a rank-one Cholesky update. Low-rank
  // path: O(n^2 d) refit of the small factor; an automatic-path posterior turns dense once
  // n + 1 reaches d.
  template <class Derived>
  NiwPosterior& add(const Eigen::MatrixBase<Derived>& x) {
    constexpr const char* fn = "baypr::NiwPosterior::add";
    const Vector xv = check_sample(fn, x);
    if (low_rank_) {
      NiwPosterior next(*this);
      if (path_ == Path::automatic && n_ + 2 >= dim()) {
        next.make_dense(fn);
        next.add_dense(xv, fn);
      } else {
        next.samples_.conservativeResize(n_ + 1, Eigen::NoChange);
        next.samples_.row(n_) = xv.transpose();
        next.n_ = n_ + 1;
        next.rebuild_low_rank(fn);
      }
      *this = std::move(next);
      return *this;
    }
    add_dense(xv, fn);
    return *this;
  }

  // Take one sample out (the inverse of add). Dense path: O(d^2) rank-one downdate; throws
  // numerical_error, leaving the posterior unchanged, when the downdate would make Psi_n indefinite
  // (x was never added, or too close to rounding); with one sample left, x must equal it to 1e-8
  // relative (else invalid_argument, posterior unchanged). Low-rank path: x must equal a held
  // sample (an automatic-path posterior turns dense to downdate any other x).
  template <class Derived>
  NiwPosterior& remove(const Eigen::MatrixBase<Derived>& x) {
    constexpr const char* fn = "baypr::NiwPosterior::remove";
    const Vector xv = check_sample(fn, x);
    if (n_ == 0) detail::throw_invalid(fn, "this", "is an empty posterior (count() == 0)");
    if (low_rank_) {
      Eigen::Index found = -1;
      for (Eigen::Index i = n_ - 1; i >= 0 && found < 0; --i) {
        if (samples_.row(i) == xv.transpose()) found = i;
      }
      NiwPosterior next(*this);
      if (found >= 0) {
        next.samples_.row(found) = samples_.row(n_ - 1);
        next.samples_.conservativeResize(n_ - 1, Eigen::NoChange);
        next.n_ = n_ - 1;
        next.rebuild_low_rank(fn);
      } else if (path_ == Path::automatic) {
        next.make_dense(fn);
        next.remove_dense(xv, fn);
      } else {
        detail::throw_invalid(fn, "x",
                              "is not one of the samples of this low-rank posterior "
                              "(Path::low_rank removes held samples only)");
      }
      *this = std::move(next);
      return *this;
    }
    remove_dense(xv, fn);
    return *this;
  }

  // Pool another posterior of the same prior: the result is the posterior of both sample sets.
  // Exact: n, means and centred scatters combine (Chan et al.'s parallel update).
  NiwPosterior& merge(const NiwPosterior& other) {
    constexpr const char* fn = "baypr::NiwPosterior::merge";
    if (!(other.prior_ == prior_)) {
      detail::throw_invalid(fn, "other",
                            "was built from a different prior (kappa0 " +
                                detail::format_value(other.prior_.kappa()) + " vs " +
                                detail::format_value(prior_.kappa()) + ", nu0 " +
                                detail::format_value(other.prior_.nu()) + " vs " +
                                detail::format_value(prior_.nu()) + ", or mu0 / psi0 differ)");
    }
    if (other.n_ == 0) return *this;
    NiwPosterior merged(*this);
    const Eigen::Index total = n_ + other.n_;
    if (low_rank_ && other.low_rank_ && (path_ == Path::low_rank || total + 1 < dim())) {
      merged.samples_.conservativeResize(total, Eigen::NoChange);
      merged.samples_.bottomRows(other.n_) = other.samples_;
      merged.n_ = total;
      merged.rebuild_low_rank(fn);
    } else {
      if (merged.low_rank_) merged.drop_low_rank();  // factorised once, by refactor() below
      const Scalar na = from_index<Scalar>(n_), nb = from_index<Scalar>(other.n_);
      const Scalar n = na + nb;
      const Vector delta = other.mean_ - mean_;
      merged.n_ = total;
      merged.mean_ = mean_ + (nb / n) * delta;
      merged.centred_scatter_ += other.sample_scatter() + (na * nb / n) * delta * delta.transpose();
      merged.refactor(fn);
    }
    *this = std::move(merged);
    return *this;
  }

 private:
  static bool choose_low_rank(const Prior& prior, Path path, Eigen::Index n, const char* fn) {
    switch (path) {
      case Path::dense:
        return false;
      case Path::low_rank:
        if (!prior.is_diagonal()) {
          detail::throw_invalid(fn, "path", "is Path::low_rank, which needs a diagonal psi0");
        }
        return true;
      case Path::automatic:
      default:
        return prior.is_diagonal() && n + 1 < prior.dim();
    }
  }

  static Matrix scatter_of(const Rows& centred) {
    Matrix s = Matrix::Zero(centred.cols(), centred.cols());
    s.template selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
    return s.template selfadjointView<Eigen::Lower>();
  }

  // kappa0 n / kappa_n, the weight of the prior-mean disagreement in Psi_n.
  Scalar shrinkage() const { return prior_.kappa() * from_index<Scalar>(n_) / kappa(); }

  template <class Derived>
  Vector check_sample(const char* fn, const Eigen::MatrixBase<Derived>& x) const {
    detail::check_size(fn, "x", "size", x.size(), dim());
    detail::check_finite(fn, "x", x);
    return x.derived().template cast<Scalar>().reshaped();
  }

  void add_dense(const Vector& xv, const char* fn) {
    const Vector r = xv - mean();
    const Scalar k = kappa();
    Eigen::LLT<Matrix> llt = *llt_;  // updated on a copy: the strong guarantee
    llt.rankUpdate(r, k / (k + Scalar(1)));
    if (llt.info() != Eigen::Success || !detail::cholesky_pivots_positive(llt.matrixLLT())) {
      detail::throw_numerical(fn, "rank-one Cholesky update failed (non-finite result)");
    }
    const Vector dz = xv - mean_;
    const Scalar n1 = from_index<Scalar>(n_ + 1);
    // Commit: nothing below can throw.
    centred_scatter_.noalias() += (from_index<Scalar>(n_) / n1) * dz * dz.transpose();
    mean_ += dz / n1;
    llt_ = std::move(llt);
    ++n_;
  }

  void remove_dense(const Vector& xv, const char* fn) {
    if (n_ == 1) {
      // The one sample is the mean: x must equal it (to rounding, relative to the larger of x, the
      // mean and the prior's scale sqrt(max Psi0_ii)), else the downdate is impossible.
      using std::abs;
      using std::max;
      using std::sqrt;
      const double scale =
          max({value_of(xv.cwiseAbs().maxCoeff()), value_of(mean_.cwiseAbs().maxCoeff()),
               value_of(sqrt(prior_.scatter().diagonal().maxCoeff()))});
      const double gap = value_of((xv - mean_).cwiseAbs().maxCoeff());
      if (!(gap <= 1e-8 * scale)) {
        detail::throw_invalid(
            fn, "x",
            "is not the one sample of this posterior (largest coordinate difference " +
                detail::format_value(gap) + "); posterior left unchanged");
      }
      *this = NiwPosterior(prior_, path_);  // exactly the prior again
      return;
    }
    // With kappa' = kappa_n and mu' = mu_n: Psi = Psi' - (kappa' / kappa)(x - mu')(x - mu')^T.
    const Vector r = xv - mean();
    const Scalar k1 = kappa();
    Eigen::LLT<Matrix> llt = *llt_;
    llt.rankUpdate(r, -k1 / (k1 - Scalar(1)));
    if (llt.info() != Eigen::Success || !detail::cholesky_pivots_positive(llt.matrixLLT())) {
      detail::throw_numerical(fn,
                              "removing x would make the posterior scatter Psi_n indefinite "
                              "(was x added before?); posterior left unchanged");
    }
    const Scalar n1 = from_index<Scalar>(n_ - 1);
    const Vector mean_prev = (mean_ * from_index<Scalar>(n_) - xv) / n1;
    const Vector dz = xv - mean_prev;
    centred_scatter_.noalias() -= (n1 / from_index<Scalar>(n_)) * dz * dz.transpose();
    mean_ = mean_prev;
    llt_ = std::move(llt);
    --n_;
  }

  // Switch the representation to dense (used when an automatic-path posterior outgrows the
  // low-rank regime, or must downdate a sample it does not hold).
  void make_dense(const char* fn) {
    drop_low_rank();
    refactor(fn);
  }

  // The dense sufficient statistics from the held samples, without factorising Psi_n yet.
  void drop_low_rank() {
    centred_scatter_ = sample_scatter();
    samples_.resize(0, dim());
    low_rank_ = false;
  }

  void refactor(const char* fn) {
    Eigen::LLT<Matrix> llt(scatter());
    if (llt.info() != Eigen::Success || !detail::cholesky_pivots_positive(llt.matrixLLT())) {
      detail::throw_numerical(fn, "posterior scatter Psi_n is not numerically positive definite");
    }
    llt_ = std::move(llt);
  }

  // Psi_n = D + W^T W with W = [centred samples; sqrt(kappa0 n / kappa_n) (zbar - mu0)^T].
  void rebuild_low_rank(const char* fn) {
    using std::sqrt;
    mean_ = Vector::Zero(dim());
    Rows W(n_ > 0 ? n_ + 1 : 0, dim());
    if (n_ > 0) {
      mean_ = samples_.colwise().mean().transpose();
      W.topRows(n_) = samples_.rowwise() - mean_.transpose();
      W.row(n_) = sqrt(shrinkage()) * (mean_ - prior_.mean()).transpose();
    }
    psi_low_rank_ = LowRank(prior_.scatter().diagonal(), W, Scalar(1), fn);
  }

  Prior prior_;
  Path path_ = Path::automatic;
  bool low_rank_ = false;
  Eigen::Index n_ = 0;
  Vector mean_;  // zbar (zero when n = 0)
  // Dense representation.
  Matrix centred_scatter_;  // S = sum (z_i - zbar)(z_i - zbar)^T
  // Cholesky factorisation of Psi_n. Engaged on the dense path only: a default-constructed LLT
  // leaves its info() indeterminate, so copying an unused one would read an invalid value.
  std::optional<Eigen::LLT<Matrix>> llt_;
  // Low-rank representation.
  Rows samples_;          // the samples themselves (n x d, n + 1 < d typically)
  LowRank psi_low_rank_;  // Psi_n as diagonal plus low rank
};

}  // namespace baypr
