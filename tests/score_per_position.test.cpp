// PerPositionScorer and PadimScorer: each position's scores against the plain per-position
// computation (NiwPosterior / StudentT, Eigen's LLT), neighbourhood pooling, the learned prior,
// the case they exist for (the right patch in the wrong place), and bad input.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "baypr/eval/metrics.hpp"
#include "baypr/score/bayesian.hpp"
#include "baypr/score/per_position.hpp"
#include "baypr/score/scorer.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::message_of;

static_assert(baypr::Scorer<baypr::PerPositionScorer>);
static_assert(baypr::Scorer<baypr::PadimScorer>);

namespace {

constexpr Eigen::Index kGridRows = 3, kGridCols = 4, kPositions = kGridRows * kGridCols;

// Aligned "images": position j has its own mean (a distinct pattern) and scale; n images x P
// positions rows, image-major.
struct Aligned {
  Eigen::MatrixXd means;  // P x d
  Eigen::VectorXd scales;
};

Aligned make_aligned(Eigen::Index d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Aligned a{Eigen::MatrixXd::NullaryExpr(kPositions, d, [&] { return 2.0 * normal(rng); }),
            Eigen::VectorXd::LinSpaced(kPositions, 0.3, 1.0)};
  return a;
}

Eigen::MatrixXd draw_images(const Aligned& a, Eigen::Index n, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  const Eigen::Index d = a.means.cols();
  Eigen::MatrixXd rows(n * kPositions, d);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < kPositions; ++j) {
      for (Eigen::Index c = 0; c < d; ++c)
        rows(i * kPositions + j, c) = a.means(j, c) + a.scales(j) * normal(rng);
    }
  }
  return rows;
}

baypr::PerPositionScorerOptions grid_options() {
  baypr::PerPositionScorerOptions o;
  o.grid_rows = kGridRows;
  o.grid_cols = kGridCols;
  return o;
}

}  // namespace

TEST_CASE("PerPositionScorer scores each position under its own posterior predictive",
          "[per_position]") {
  std::mt19937_64 rng(3);
  const Eigen::Index d = 5, n = 4;
  const Aligned a = make_aligned(d, rng);
  const Eigen::MatrixXd support = draw_images(a, n, rng);
  const Eigen::MatrixXd queries = draw_images(a, 3, rng);
  const auto prior = baypr::NiwPrior<double>::isotropic(d, 0.5, d + 3.0, 0.7);
  for (const bool pool : {false, true}) {
    for (const auto type :
         {baypr::BayesScore::nll, baypr::BayesScore::tail, baypr::BayesScore::llr}) {
      INFO("pool " << pool << ", score " << static_cast<int>(type));
      auto o = grid_options();
      o.prior = prior;
      o.score = type;
      o.pool_neighbourhood = pool;
      baypr::PerPositionScorer scorer(o);
      const Eigen::VectorXd got = scorer.fit(support).score(queries);
      REQUIRE(got.size() == queries.rows());
      CHECK(!scorer.prior_fit_report().has_value());  // the prior was given, not learned
      for (const Eigen::Index j : {Eigen::Index{0}, Eigen::Index{5}, kPositions - 1}) {
        // The position's support rows, by hand: itself, or its clipped 3 x 3 neighbourhood.
        std::vector<Eigen::Index> members;
        const Eigen::Index r = j / kGridCols, c = j % kGridCols;
        for (Eigen::Index rr = 0; rr < kGridRows; ++rr) {
          for (Eigen::Index cc = 0; cc < kGridCols; ++cc) {
            const bool near = std::abs(rr - r) <= 1 && std::abs(cc - c) <= 1;
            if (pool ? near : (rr == r && cc == c)) members.push_back(rr * kGridCols + cc);
          }
        }
        Eigen::MatrixXd z(n * static_cast<Eigen::Index>(members.size()), d);
        Eigen::Index at = 0;
        for (Eigen::Index i = 0; i < n; ++i) {
          for (const auto m : members) z.row(at++) = support.row(i * kPositions + m);
        }
        const auto t = prior.posterior(z, baypr::Path::dense).predictive();
        const baypr::IsotropicStudentT anomaly(static_cast<double>(d), 2.0, 100.0);
        for (Eigen::Index i = 0; i < 3; ++i) {
          const Eigen::VectorXd q = queries.row(i * kPositions + j).transpose();
          const double delta = t.mahalanobis(q.transpose())(0);
          double want = -t.log_pdf(q);
          if (type == baypr::BayesScore::tail) {
            want = -baypr::special::f_logsf(delta / d, static_cast<double>(d), t.dof());
          } else if (type == baypr::BayesScore::llr) {
            want += anomaly.log_pdf(q.squaredNorm());
          }
          CHECK(std::abs(got(i * kPositions + j) - want) <= 1e-10 * std::max(1.0, std::abs(want)));
        }
      }
    }
  }
}

TEST_CASE("PerPositionScorer learns its prior across positions, also from one image",
          "[per_position]") {
  std::mt19937_64 rng(5);
  const Eigen::Index d = 4;
  const Aligned a = make_aligned(d, rng);
  for (const Eigen::Index n : {1, 2, 6}) {
    INFO("n = " << n);
    const Eigen::MatrixXd support = draw_images(a, n, rng);
    auto learned = grid_options();
    learned.kappa0.reset();  // kappa0 learned too
    baypr::PerPositionScorer scorer(learned);
    scorer.fit(support);
    // The same prior as fit_prior over the positions' groups: isotropic, Psi0 >= 0.01 x the
    // support's mean variance, kappa0 and nu0 fixed at one row each.
    std::vector<Eigen::MatrixXd> groups;
    for (Eigen::Index j = 0; j < kPositions; ++j) {
      Eigen::MatrixXd g(n, d);
      for (Eigen::Index i = 0; i < n; ++i) g.row(i) = support.row(i * kPositions + j);
      groups.push_back(g);
    }
    baypr::PriorFitOptions o = baypr::PerPositionScorerOptions::isotropic_fit();
    o.learn_kappa = n >= 2;
    o.learn_dof = n >= 2;
    o.min_scatter = 0.01 * (support.rowwise() - support.colwise().mean()).squaredNorm() /
                    static_cast<double>(support.size());
    const baypr::PriorFit fit = baypr::fit_prior(std::span<const Eigen::MatrixXd>(groups), o);
    const auto& want = fit.prior;
    // fit_prior's report comes with the scorer, so a fit that stopped short can be seen.
    REQUIRE(scorer.prior_fit_report().has_value());
    CHECK(scorer.prior_fit_report()->iterations == fit.iterations);
    CHECK(scorer.prior_fit_report()->converged == fit.converged);
    CHECK(scorer.prior_fit_report()->log_evidence == fit.log_evidence);
    CHECK((scorer.prior().scatter() - want.scatter()).cwiseAbs().maxCoeff() <= 1e-12);
    CHECK(scorer.prior().kappa() == want.kappa());
    CHECK(scorer.prior().nu() == want.nu());
    CHECK(scorer.prior().scatter().isDiagonal());
    CHECK(scorer.score(draw_images(a, 2, rng)).allFinite());

    // The default holds kappa0 at 1e-4 and learns the rest: the same optimum as fit_prior with
    // kappa0 fixed from another start (mu0 = 0, Psi0 = I, nu0 = d + 2).
    baypr::PerPositionScorer fixed(grid_options());
    fixed.fit(support);
    CHECK(fixed.prior().kappa() == 1e-4);
    o.learn_kappa = false;
    o.start = baypr::NiwPrior<double>::isotropic(d, 1e-4, static_cast<double>(d) + 2.0, 1.0);
    const baypr::PriorFit other = baypr::fit_prior(std::span<const Eigen::MatrixXd>(groups), o);
    REQUIRE(other.converged);
    REQUIRE(fixed.prior_fit_report()->converged);
    CHECK(std::abs(fixed.prior_fit_report()->log_evidence - other.log_evidence) <=
          1e-9 * std::abs(other.log_evidence));
    CHECK((fixed.prior().scatter() - other.prior.scatter()).cwiseAbs().maxCoeff() <=
          1e-5 * other.prior.scatter().cwiseAbs().maxCoeff());
    // (mu0 is not compared: with kappa0 = 1e-4 the evidence is nearly flat in it.)
    CHECK(std::abs(fixed.prior().nu() - other.prior.nu()) <= 1e-5 * other.prior.nu());
  }
}

TEST_CASE("PerPositionScorerOptions::kappa0 out of range is named", "[per_position]") {
  for (const double bad : {0.0, -1.0, 1e-30, 1e30, std::numeric_limits<double>::quiet_NaN()}) {
    auto o = grid_options();
    o.kappa0 = bad;
    const std::string m = message_of([&] { baypr::PerPositionScorer s(o); });
    CHECK(contains(m, "baypr::PerPositionScorer::PerPositionScorer"));
    CHECK(contains(m, "options.kappa0"));
  }
}

TEST_CASE(
    "the right patch in the wrong place: per-position models see it, one pooled model "
    "cannot",
    "[per_position]") {
  std::mt19937_64 rng(7);
  const Eigen::Index d = 6;
  const Aligned a = make_aligned(d, rng);
  const Eigen::MatrixXd support = draw_images(a, 4, rng);
  Eigen::MatrixXd queries = draw_images(a, 40, rng);
  Eigen::VectorXi labels = Eigen::VectorXi::Zero(40);
  for (Eigen::Index i = 20; i < 40; ++i) {  // swap two positions' patches
    queries.row(i * kPositions + 1).swap(queries.row(i * kPositions + 9));
    labels(i) = 1;
  }
  baypr::PerPositionScorer per_position(grid_options());
  const auto ours = baypr::score_patches(per_position, support, queries, kPositions);
  baypr::BayesianScorer pooled;
  const auto global = baypr::score_patches(pooled, support, queries, kPositions);
  const double auroc_ours = baypr::auroc(ours.image, labels);
  const double auroc_global = baypr::auroc(global.image, labels);
  CHECK(auroc_ours > 0.95);
  CHECK(auroc_global < 0.75);
}

TEST_CASE("a background that is exactly constant: the scatter floor keeps every posterior proper",
          "[per_position]") {
  std::mt19937_64 rng(17);
  const Eigen::Index d = 4;
  const Aligned a = make_aligned(d, rng);
  Eigen::MatrixXd support = draw_images(a, 3, rng);
  // Positions 0 .. 8 show the same patch in every image (a constant background). With most
  // positions like that, the pooled evidence grows without bound as Psi0 -> 0.
  for (Eigen::Index i = 0; i < 3; ++i) {
    for (Eigen::Index j = 0; j < 9; ++j)
      support.row(i * kPositions + j).setConstant(-1.0 + 0.1 * static_cast<double>(j));
  }
  baypr::PerPositionScorer scorer(grid_options());
  const Eigen::VectorXd s = scorer.fit(support).score(draw_images(a, 2, rng));
  CHECK(s.allFinite());
  const double variance = (support.rowwise() - support.colwise().mean()).squaredNorm() /
                          static_cast<double>(support.size());
  CHECK(scorer.prior().scatter()(0, 0) >= 0.01 * variance * (1 - 1e-12));
  // Without the floor the evidence is unbounded there: Psi0 collapses onto fit_prior's own e^-40
  // bound (and the posteriors at the constant positions are singular up to rounding).
  auto o = grid_options();
  o.scatter_floor = 0.0;
  baypr::PerPositionScorer unfloored(o);
  const std::string m = message_of([&] { unfloored.fit(support); });
  if (m == "(no exception)") {
    CHECK(unfloored.prior().scatter()(0, 0) < 1e-15);
  } else {  // or a posterior is not even numerically positive definite: named
    CHECK(contains(m, "baypr::PerPositionScorer::fit: position "));
  }
}

TEST_CASE("PadimScorer equals the per-position Gaussian + 0.01 I Mahalanobis distance",
          "[per_position]") {
  std::mt19937_64 rng(11);
  const Eigen::Index d = 5;
  const Aligned a = make_aligned(d, rng);
  for (const Eigen::Index n : {1, 3, 8}) {
    const Eigen::MatrixXd support = draw_images(a, n, rng);
    const Eigen::MatrixXd queries = draw_images(a, 2, rng);
    baypr::PadimScorer padim(kGridRows, kGridCols);
    const Eigen::VectorXd got = padim.fit(support).score(queries);
    for (Eigen::Index j = 0; j < kPositions; ++j) {
      Eigen::MatrixXd z(n, d);
      for (Eigen::Index i = 0; i < n; ++i) z.row(i) = support.row(i * kPositions + j);
      const Eigen::RowVectorXd m = z.colwise().mean();
      const Eigen::MatrixXd c = z.rowwise() - m;
      Eigen::MatrixXd cov = 0.01 * Eigen::MatrixXd::Identity(d, d);
      if (n > 1) cov += c.transpose() * c / static_cast<double>(n - 1);
      const Eigen::LLT<Eigen::MatrixXd> llt(cov);
      for (Eigen::Index i = 0; i < 2; ++i) {
        const Eigen::VectorXd diff = (queries.row(i * kPositions + j) - m).transpose();
        const double want = std::sqrt(diff.dot(llt.solve(diff)));
        CHECK(std::abs(got(i * kPositions + j) - want) <= 1e-10 * std::max(1.0, want));
      }
    }
  }
}

TEST_CASE("per-position scorers refuse bad input and keep their model", "[per_position]") {
  auto o = grid_options();
  o.grid_rows = 0;
  CHECK(contains(message_of([&] { baypr::PerPositionScorer s(o); }),
                 "baypr::PerPositionScorer::PerPositionScorer: argument 'options.grid_rows' must "
                 "be >= 1, got 0"));
  CHECK(contains(message_of([] { baypr::PadimScorer s(2, 2, -1.0); }),
                 "argument 'eps' must be finite and > 0"));
  baypr::PerPositionScorer scorer(grid_options());
  CHECK(contains(message_of([&] { (void)scorer.score(Eigen::MatrixXd::Zero(kPositions, 3)); }),
                 "fit(support)"));
  std::mt19937_64 rng(13);
  const Aligned a = make_aligned(3, rng);
  const Eigen::MatrixXd support = draw_images(a, 3, rng);
  scorer.fit(support);
  const Eigen::MatrixXd queries = draw_images(a, 1, rng);
  const Eigen::VectorXd before = scorer.score(queries);
  CHECK(contains(message_of([&] { scorer.fit(support.topRows(kPositions + 1)); }),
                 "argument 'support' has 13 rows, not a multiple of the grid's 12 positions"));
  Eigen::MatrixXd bad = support;
  bad(4, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(message_of([&] { scorer.fit(bad); }), "must be finite, got nan at row 4"));
  CHECK(contains(message_of([&] { (void)scorer.score(Eigen::MatrixXd::Zero(kPositions, 4)); }),
                 "argument 'queries' has columns 4, expected 3"));
  CHECK(scorer.score(queries) == before);  // the failed fits changed nothing
  baypr::PadimScorer padim(kGridRows, kGridCols);
  CHECK(contains(message_of([&] { padim.fit(bad); }), "baypr::PadimScorer::fit"));
  CHECK_FALSE(padim.fitted());
}
