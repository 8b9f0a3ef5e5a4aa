// fit_prior (stats/prior_fit.hpp): the pooled log evidence against the posterior's own
// log_marginal_likelihood (itself checked against SciPy in stats_niw), its gradient against finite
// differences on both evaluation paths, recovery of known hyper-parameters from simulated groups,
// stationarity of the result, BayesianScorer with a given prior, and bad input.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/LU>
#include <limits>
#include <random>
#include <vector>

#include "baypr/score/bayesian.hpp"
#include "baypr/stats/prior_fit.hpp"
#include "support/catch.hpp"
#include "support/finite_differences.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;
using baypr::test::normal_matrix;

namespace {

// Groups of the given sizes around random means with a shared random covariance.
std::vector<Eigen::MatrixXd> random_groups(const std::vector<Eigen::Index>& sizes, Eigen::Index d,
                                           std::mt19937_64& rng) {
  const Eigen::MatrixXd A = normal_matrix(d, d, rng) / std::sqrt(static_cast<double>(d));
  std::vector<Eigen::MatrixXd> out;
  for (const Eigen::Index n : sizes) {
    const Eigen::RowVectorXd centre = 2.0 * normal_matrix(1, d, rng);
    Eigen::MatrixXd z = normal_matrix(n, d, rng) * A;
    z.rowwise() += centre;
    out.push_back(z);
  }
  return out;
}

baypr::NiwPrior<double> diagonal_prior(Eigen::Index d, std::mt19937_64& rng) {
  const Eigen::VectorXd mu0 = normal_matrix(d, 1, rng);
  const Eigen::VectorXd psi = (0.5 * normal_matrix(d, 1, rng)).array().exp().matrix();
  return baypr::NiwPrior<double>(mu0, 0.3, static_cast<double>(d) + 1.7,
                                 Eigen::MatrixXd(psi.asDiagonal()));
}

double direct_log_evidence(const std::vector<Eigen::MatrixXd>& groups,
                           const baypr::NiwPrior<double>& prior) {
  double sum = 0.0;
  for (const auto& z : groups)
    sum += prior.posterior(z, baypr::Path::dense).log_marginal_likelihood();
  return sum;
}

// (mu, Sigma) ~ NIW(mu0, kappa0, nu0, Psi0) with integer nu0: Sigma^{-1} = sum of nu0 outer
// products of N(0, Psi0^{-1}) draws; then n rows from N(mu, Sigma).
Eigen::MatrixXd niw_group(const baypr::NiwPrior<double>& p, Eigen::Index n, std::mt19937_64& rng) {
  const Eigen::Index d = p.dim();
  const Eigen::MatrixXd psi_inv = p.scatter().inverse();
  const Eigen::MatrixXd Lw = psi_inv.llt().matrixL();
  const auto nu = static_cast<Eigen::Index>(p.nu());
  const Eigen::MatrixXd X = normal_matrix(nu, d, rng) * Lw.transpose();
  const Eigen::MatrixXd sigma = (X.transpose() * X).inverse();
  const Eigen::MatrixXd Ls = sigma.llt().matrixL();
  const Eigen::VectorXd mu = p.mean() + Ls * normal_matrix(d, 1, rng) / std::sqrt(p.kappa());
  Eigen::MatrixXd z = normal_matrix(n, d, rng) * Ls.transpose();
  z.rowwise() += mu.transpose();
  return z;
}

}  // namespace

TEST_CASE("the pooled log evidence equals the sum of the posteriors' log marginal likelihoods",
          "[prior_fit]") {
  std::mt19937_64 rng(11);
  const Eigen::Index d = 8;
  // n + 1 < d on the low-rank path, the rest dense.
  const auto groups = random_groups({1, 2, 3, 6, 7, 10, 25}, d, rng);
  for (const auto scatter : {baypr::ScatterFamily::diagonal, baypr::ScatterFamily::isotropic}) {
    baypr::PriorFitOptions o;
    o.scatter = scatter;
    const auto start = diagonal_prior(d, rng);
    const baypr::detail::PooledEvidence evidence(groups, start, o);
    const Eigen::VectorXd x = evidence.coordinates(start);
    const auto prior = evidence.prior(x);
    const double want = direct_log_evidence(groups, prior);
    CHECK(std::abs(evidence.value(x, nullptr) - want) <= 1e-11 * std::abs(want));
    if (scatter == baypr::ScatterFamily::diagonal) {
      CHECK((prior.scatter() - start.scatter()).norm() <= 1e-12 * start.scatter().norm());
      CHECK(std::abs(prior.nu() - start.nu()) <= 1e-12 * start.nu());
    }
  }
}

TEST_CASE("the pooled log evidence gradient matches finite differences", "[prior_fit][gradient]") {
  std::mt19937_64 rng(12);
  const Eigen::Index d = 6;
  const auto groups = random_groups({1, 2, 4, 5, 9, 30}, d, rng);
  for (const bool learn_mean : {true, false}) {
    for (const auto scatter : {baypr::ScatterFamily::diagonal, baypr::ScatterFamily::isotropic}) {
      INFO("learn_mean " << learn_mean << " isotropic "
                         << (scatter == baypr::ScatterFamily::isotropic));
      baypr::PriorFitOptions o;
      o.learn_mean = learn_mean;
      o.scatter = scatter;
      const baypr::detail::PooledEvidence evidence(groups, diagonal_prior(d, rng), o);
      const Eigen::VectorXd x = evidence.coordinates(diagonal_prior(d, rng));
      Eigen::VectorXd analytic;
      evidence.value(x, &analytic);
      const Eigen::VectorXd numeric = baypr::test::central_difference(
          [&](const Eigen::VectorXd& y) { return evidence.value(y, nullptr); }, x, 1e-4);
      CHECK(baypr::test::relative_error(analytic, numeric) <= 1e-8);
    }
  }
  SECTION("fixed kappa0 and nu0 have zero gradient") {
    baypr::PriorFitOptions o;
    o.learn_kappa = false;
    o.learn_dof = false;
    const baypr::detail::PooledEvidence evidence(groups, diagonal_prior(d, rng), o);
    Eigen::VectorXd g;
    evidence.value(evidence.coordinates(diagonal_prior(d, rng)), &g);
    CHECK(g(d) == 0.0);
    CHECK(g(d + 1) == 0.0);
  }
}

TEST_CASE("fit_prior recovers the hyper-parameters that generated the groups", "[prior_fit]") {
  std::mt19937_64 rng(13);
  const Eigen::Index d = 3;
  const Eigen::Vector3d mu0(1.0, -2.0, 0.5);
  const Eigen::Vector3d psi(1.0, 2.0, 0.5);
  const baypr::NiwPrior<double> truth(mu0, 2.0, 9.0, Eigen::MatrixXd(psi.asDiagonal()));
  std::vector<Eigen::MatrixXd> groups;
  for (int g = 0; g < 1500; ++g) groups.push_back(niw_group(truth, 5, rng));
  const auto fit = baypr::fit_prior(groups);
  REQUIRE(fit.converged);
  CHECK(fit.gradient_norm < 1e-7);
  CHECK(fit.iterations > 0);
  // Maximum likelihood: at least the evidence of the truth, and of the start.
  CHECK(fit.log_evidence >= direct_log_evidence(groups, truth));
  CHECK(std::abs(fit.log_evidence - direct_log_evidence(groups, fit.prior)) <=
        1e-10 * std::abs(fit.log_evidence));
  CHECK(fit.log_evidence >= direct_log_evidence(groups, baypr::detail::moment_start(groups)));
  // Sampling error of 1500 groups: a few per cent; a wrong gradient or a stuck search misses
  // by far more.
  CHECK((fit.prior.mean() - mu0).norm() < 0.1);
  CHECK(std::abs(fit.prior.kappa() / 2.0 - 1.0) < 0.15);
  CHECK(std::abs(fit.prior.nu() / 9.0 - 1.0) < 0.1);
  for (Eigen::Index k = 0; k < d; ++k) {
    CHECK(std::abs(fit.prior.scatter()(k, k) / psi(k) - 1.0) < 0.12);
    for (Eigen::Index j = 0; j < d; ++j) {
      if (j != k) CHECK(fit.prior.scatter()(j, k) == 0.0);
    }
  }
  SECTION("the isotropic family and fixed coordinates") {
    baypr::PriorFitOptions o;
    o.scatter = baypr::ScatterFamily::isotropic;
    o.learn_mean = false;
    o.learn_kappa = false;
    o.start = truth;
    const auto iso = baypr::fit_prior(groups, o);
    REQUIRE(iso.converged);
    CHECK(iso.prior.mean() == mu0);
    CHECK(iso.prior.kappa() == 2.0);
    CHECK(iso.prior.scatter().isApprox(iso.prior.scatter()(0, 0) * Eigen::Matrix3d::Identity()));
    CHECK(iso.log_evidence < fit.log_evidence);  // the truth is not isotropic
  }
}

TEST_CASE("fit_prior's result is stationary and works at high dimension with tiny groups",
          "[prior_fit]") {
  std::mt19937_64 rng(14);
  const Eigen::Index d = 40;
  std::vector<Eigen::Index> sizes(60, 3);
  sizes.push_back(50);  // one dense group
  const auto groups = random_groups(sizes, d, rng);
  const auto fit = baypr::fit_prior(groups);
  REQUIRE(fit.converged);
  baypr::PriorFitOptions o;
  const baypr::detail::PooledEvidence evidence(groups, fit.prior, o);
  Eigen::VectorXd g;
  evidence.value(evidence.coordinates(fit.prior), &g);
  CHECK(g.cwiseAbs().maxCoeff() / evidence.rows() < 1e-6);
  CHECK(fit.log_evidence > direct_log_evidence(groups, baypr::detail::moment_start(groups)));
}

TEST_CASE("min_scatter bounds an evidence that identical rows make unbounded", "[prior_fit]") {
  std::mt19937_64 rng(15);
  const Eigen::Index d = 6;
  auto groups = random_groups({4, 4, 4, 4, 4, 4}, d, rng);
  // Groups of identical rows (a constant background): with most groups like that, the evidence
  // grows without bound as psi -> 0 (each contributes -(n d / 2) log psi to it, against
  // (rank (nu0 + n) / 2) log psi from the others).
  for (std::size_t g = 0; g < 5; ++g) groups[g].rowwise() = groups[g].row(1);
  for (const auto family : {baypr::ScatterFamily::isotropic, baypr::ScatterFamily::diagonal}) {
    baypr::PriorFitOptions o;
    o.scatter = family;
    o.min_scatter = 0.05;
    const auto fit = baypr::fit_prior(groups, o);
    // The evidence still wants psi -> 0: the fit ends held on the bound, converged on the
    // projected gradient, and every free coordinate stationary.
    CHECK(fit.converged);
    CHECK(fit.prior.scatter().diagonal().minCoeff() >= 0.05 * (1 - 1e-12));
    CHECK(fit.prior.scatter().diagonal().minCoeff() <= 0.05 * (1 + 1e-9));
    CHECK(fit.gradient_norm < o.gradient_tolerance);
    const baypr::detail::PooledEvidence evidence(groups, fit.prior, o);
    Eigen::VectorXd g;
    const Eigen::VectorXd x = evidence.coordinates(fit.prior);
    evidence.value(x, &g);
    const Eigen::Index psi_start = x.size() - (family == baypr::ScatterFamily::diagonal ? d : 1);
    for (Eigen::Index i = 0; i < x.size(); ++i) {
      const bool on_bound = i >= psi_start && std::exp(x(i)) <= 0.05 * (1 + 1e-9);
      if (on_bound) {
        CHECK(g(i) < 0.0);  // the evidence would rise below the bound
      } else {
        CHECK(std::abs(g(i)) / evidence.rows() < 1e-6);
      }
    }
  }
  baypr::PriorFitOptions bad;
  bad.min_scatter = -1.0;
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, bad); }),
                 "argument 'options.min_scatter' must be finite and >= 0, got -1"));
}

TEST_CASE("BayesianScorer uses a given prior as it is", "[prior_fit][scorer]") {
  std::mt19937_64 rng(15);
  const Eigen::Index d = 5;
  const auto groups = random_groups({4, 4, 4, 4, 4, 4}, d, rng);
  const auto fit = baypr::fit_prior(groups);
  baypr::BayesianScorerOptions o;
  o.prior = fit.prior;
  o.score = baypr::BayesScore::nll;
  baypr::BayesianScorer scorer(o);
  const Eigen::MatrixXd support = normal_matrix(3, d, rng), queries = normal_matrix(7, d, rng);
  scorer.fit(support);
  const auto t = fit.prior.posterior(support).predictive();
  for (Eigen::Index j = 0; j < queries.rows(); ++j) {
    const double want = -t.log_pdf(queries.row(j).transpose());
    CHECK(std::abs(scorer.score(queries)(j) - want) <= 1e-12 * std::abs(want));
  }
  CHECK(scorer.psi_scale() == fit.prior.scatter().diagonal().mean());

  // Wrong dimension: named, and the fitted scorer is unchanged.
  const Eigen::VectorXd before = scorer.score(queries);
  CHECK(contains(message_of([&] { scorer.fit(normal_matrix(3, d + 1, rng)); }),
                 "baypr::BayesianScorer::fit: argument 'support' has columns 6, expected 5"));
  CHECK(scorer.score(queries) == before);
  o.empirical_psi_scale = true;
  CHECK(contains(message_of([&] { baypr::BayesianScorer bad(o); }),
                 "argument 'options.prior' cannot be combined with options.empirical_psi_scale"));
}

TEST_CASE("fit_prior rejects bad input, naming the argument", "[prior_fit][errors]") {
  std::mt19937_64 rng(16);
  const auto groups = random_groups({3, 3, 3}, 4, rng);
  const std::vector<Eigen::MatrixXd> none;
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(none); }),
                 "baypr::fit_prior: argument 'groups' must hold at least one group, got 0"));
  auto empty = groups;
  empty[1] = Eigen::MatrixXd(0, 4);
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(empty); }),
                 "argument 'groups[1]' must have at least one row"));
  auto narrow = groups;
  narrow[2] = Eigen::MatrixXd::Zero(3, 3);
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(narrow); }),
                 "argument 'groups[2]' has columns 3, expected 4"));
  auto nan = groups;
  nan[2](1, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(nan); }),
                 "argument 'groups[2]' must be finite, got nan at row 1, column 3"));

  baypr::PriorFitOptions o;
  o.start = baypr::NiwPrior<double>::method_default(5);
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, o); }),
                 "argument 'options.start' has dimension 5, expected 4"));
  Eigen::Matrix4d full = Eigen::Matrix4d::Identity();
  full(0, 1) = full(1, 0) = 0.2;
  o.start = baypr::NiwPrior<double>(Eigen::Vector4d::Zero(), 1.0, 6.0, full);
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, o); }),
                 "argument 'options.start' must have a diagonal Psi0"));
  o.start = baypr::NiwPrior<double>::isotropic(4, 1e-30, 6.0, 1.0);
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, o); }),
                 "argument 'options.start' has kappa0"));
  o.start.reset();
  std::vector<Eigen::MatrixXd> tiny = groups;
  for (auto& z : tiny) z *= 1e-30;
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(tiny, o); }),
                 "argument 'groups' have a scale outside what fit_prior searches"));
  o.max_iterations = -1;
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, o); }),
                 "argument 'options.max_iterations' must be >= 0, got -1"));
  o.max_iterations = 10;
  o.gradient_tolerance = 0.0;
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, o); }),
                 "argument 'options.gradient_tolerance'"));
  o.gradient_tolerance = 1e-7;
  o.memory = 0;
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, o); }),
                 "argument 'options.memory' must be >= 1, got 0"));
  o.memory = 5;
  o.scatter = static_cast<baypr::ScatterFamily>(7);
  CHECK(contains(message_of([&] { (void)baypr::fit_prior(groups, o); }),
                 "argument 'options.scatter'"));
  // max_iterations = 0 returns the start, unconverged unless it is already stationary.
  o.scatter = baypr::ScatterFamily::diagonal;
  o.max_iterations = 0;
  const auto at_start = baypr::fit_prior(groups, o);
  CHECK(at_start.iterations == 0);
  CHECK_FALSE(at_start.converged);
  const auto start = baypr::detail::moment_start(groups);
  CHECK(at_start.prior.mean().isApprox(start.mean(), 1e-14));
  CHECK(at_start.prior.scatter().isApprox(start.scatter(), 1e-14));
}
