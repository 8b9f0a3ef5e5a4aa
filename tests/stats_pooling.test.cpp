// Sufficient statistics as a value (stats/sufficient_statistics.hpp): sites' statistics pool into
// the statistics of the union of their rows, and NiwPrior::posterior(statistics) equals the
// posterior of those rows (the exact one-round pooling a federated server does).
#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "baypr/stats/niw.hpp"
#include "baypr/stats/sufficient_statistics.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"
#include "support/stack_rows.hpp"

using baypr::NiwPrior;
using baypr::Path;
using baypr::SufficientStatistics;
using baypr::test::contains;
using baypr::test::message_of;
using Stats = SufficientStatistics<double>;

namespace {

// Rows from a shifted, scaled normal: site s has its own mean, so pooling has work to do.
Eigen::MatrixXd site_rows(Eigen::Index n, Eigen::Index d, int site, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd z(n, d);
  for (Eigen::Index i = 0; i < z.size(); ++i) z(i) = normal(rng);
  z *= 0.5 + 0.3 * site;
  z.rowwise() += Eigen::RowVectorXd::LinSpaced(d, 1.0 * site, 3.0 - site);
  return z;
}

double relative(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).norm() / (1.0 + b.norm());
}

}  // namespace

TEST_CASE("SufficientStatistics: of, merge and pooled give the union's statistics",
          "[stats][pooling]") {
  std::mt19937_64 rng(20261205);
  const Eigen::Index d = 6;
  const std::vector<Eigen::Index> sizes = {0, 1, 3, 7, 20};
  std::vector<Eigen::MatrixXd> rows;
  std::vector<Stats> sites;
  Eigen::Index total = 0;
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    rows.push_back(site_rows(sizes[s], d, static_cast<int>(s), rng));
    sites.push_back(Stats::of(rows.back()));
    total += sizes[s];
  }
  const Eigen::MatrixXd all = baypr::test::stack_rows(rows);

  // of() from its definition.
  const Stats u = Stats::of(all);
  REQUIRE(u.count == total);
  const Eigen::VectorXd mean = all.colwise().mean().transpose();
  Eigen::MatrixXd scatter = Eigen::MatrixXd::Zero(d, d);
  for (Eigen::Index i = 0; i < total; ++i) {
    const Eigen::VectorXd e = all.row(i).transpose() - mean;
    scatter += e * e.transpose();
  }
  CHECK(relative(u.mean, mean) < 1e-14);
  CHECK(relative(u.scatter, scatter) < 1e-13);
  CHECK(Stats::of(rows[0]).count == 0);
  CHECK(Stats::of(rows[0]).mean.isZero(0.0));
  CHECK(Stats::of(rows[1]).scatter.isZero(0.0));

  // pooled() and merge() in any order: the union's statistics.
  const Stats p = baypr::pooled(sites);
  CHECK(p.count == total);
  CHECK(relative(p.mean, u.mean) < 1e-14);
  CHECK(relative(p.scatter, u.scatter) < 1e-13);
  Stats reversed = sites.back();
  for (auto it = sites.rbegin() + 1; it != sites.rend(); ++it) reversed.merge(*it);
  CHECK(reversed.count == total);
  CHECK(relative(reversed.mean, u.mean) < 1e-14);
  CHECK(relative(reversed.scatter, u.scatter) < 1e-13);
  // A fixed order is bitwise reproducible.
  const Stats again = baypr::pooled(sites);
  CHECK(again.mean == p.mean);
  CHECK(again.scatter == p.scatter);
  // Merging the empty statistics changes nothing; merging into them copies.
  Stats copy = p;
  copy.merge(Stats::empty(d));
  CHECK(copy.mean == p.mean);
  CHECK(copy.scatter == p.scatter);
  Stats from_empty = Stats::empty(d);
  from_empty.merge(p);
  CHECK(from_empty.scatter == p.scatter);
}

TEST_CASE("NiwPrior::posterior(statistics): the posterior of the pooled rows, on both paths",
          "[stats][pooling]") {
  std::mt19937_64 rng(7);
  // d = 5 (dense for the union) and d = 40 with few rows (the union's posterior on the low-rank
  // path; the statistics give the dense path, and both must agree).
  for (const Eigen::Index d : {Eigen::Index(5), Eigen::Index(40)}) {
    const std::vector<Eigen::Index> sizes =
        d == 5 ? std::vector<Eigen::Index>{4, 0, 9, 1} : std::vector<Eigen::Index>{1, 2, 3};
    const auto prior = d == 5
                           ? NiwPrior<double>::method_default(d)
                           : NiwPrior<double>::isotropic(d, 0.01, static_cast<double>(d + 2), 1.0);
    std::vector<Stats> sites;
    std::vector<Eigen::MatrixXd> rows;
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      rows.push_back(site_rows(sizes[s], d, static_cast<int>(s), rng));
      // Each site computes its statistics from its own posterior (or from the rows directly).
      sites.push_back(s % 2 == 0 ? prior.posterior(rows.back()).statistics()
                                 : Stats::of(rows.back()));
    }
    const Eigen::MatrixXd all = baypr::test::stack_rows(rows);
    // The pooled statistics give the dense path: against the union's dense posterior to 1e-12,
    // and against its automatic one (low-rank at d = 40) to the paths' agreement, 1e-10.
    const auto pooled = prior.posterior(baypr::pooled(sites));
    const auto automatic = prior.posterior(all);
    CHECK(automatic.is_low_rank() == (d == 40));
    CHECK_FALSE(pooled.is_low_rank());
    const Eigen::MatrixXd q = site_rows(6, d, 1, rng);
    for (const auto& [direct, tolerance] :
         {std::pair{prior.posterior(all, Path::dense), 1e-12}, std::pair{automatic, 1e-10}}) {
      INFO("d = " << d << ", tolerance " << tolerance);
      CHECK(pooled.count() == direct.count());
      CHECK(relative(pooled.mean(), direct.mean()) < tolerance);
      CHECK(relative(pooled.scatter(), direct.scatter()) < tolerance);
      CHECK(std::abs(pooled.log_det_scatter() - direct.log_det_scatter()) <
            tolerance * (1.0 + std::abs(direct.log_det_scatter())));
      CHECK(std::abs(pooled.log_marginal_likelihood() - direct.log_marginal_likelihood()) <
            tolerance * (1.0 + std::abs(direct.log_marginal_likelihood())));
      const Eigen::VectorXd lp = pooled.predictive().log_pdf(q);
      const Eigen::VectorXd ld = direct.predictive().log_pdf(q);
      CHECK((lp - ld).cwiseAbs().maxCoeff() < tolerance * (1.0 + ld.cwiseAbs().maxCoeff()));
    }
    // The posterior's own merge() agrees with pooling its statistics.
    auto merged = prior.posterior(rows[0]);
    for (std::size_t s = 1; s < rows.size(); ++s) merged.merge(prior.posterior(rows[s]));
    CHECK(relative(merged.scatter(), pooled.scatter()) < 1e-12);
  }
  // No statistics: the prior itself.
  const auto prior = NiwPrior<double>::method_default(3);
  const auto none = prior.posterior(Stats::empty(3));
  CHECK(none.count() == 0);
  CHECK(none.mean() == prior.mean());
  CHECK(none.scatter() == prior.scatter());
}

TEST_CASE("SufficientStatistics: bad input is named and leaves objects unchanged",
          "[stats][pooling]") {
  std::mt19937_64 rng(3);
  const Stats good = Stats::of(site_rows(4, 3, 0, rng));
  const double nan = std::numeric_limits<double>::quiet_NaN();

  Eigen::MatrixXd z = site_rows(4, 3, 1, rng);
  z(2, 1) = nan;
  CHECK(contains(message_of([&] { (void)Stats::of(z); }),
                 "baypr::SufficientStatistics::of: argument 'Z'"));
  CHECK(contains(message_of([&] { (void)Stats::of(Eigen::MatrixXd(2, 0)); }),
                 "needs at least one column"));

  Stats target = good;
  const auto unchanged = [&] {
    return target.count == good.count && target.mean == good.mean && target.scatter == good.scatter;
  };
  CHECK(contains(message_of([&] { target.merge(Stats::of(site_rows(2, 4, 0, rng))); }),
                 "baypr::SufficientStatistics::merge: argument 'other' has dimension 4, "
                 "expected 3"));
  CHECK(unchanged());
  Stats bad = good;
  bad.count = -1;
  CHECK(contains(message_of([&] { target.merge(bad); }), "argument 'other.count' must be >= 0"));
  CHECK(unchanged());
  bad = good;
  bad.scatter(0, 1) += 1.0;
  CHECK(contains(message_of([&] { target.merge(bad); }),
                 "argument 'other.scatter' must be symmetric"));
  CHECK(unchanged());
  bad = good;
  bad.mean(0) = nan;
  CHECK(contains(message_of([&] { target.merge(bad); }), "argument 'other.mean'"));
  CHECK(unchanged());
  bad = good;
  bad.scatter.resize(2, 2);
  CHECK(contains(message_of([&] { target.merge(bad); }),
                 "argument 'other.scatter' must be 3 x 3, got 2 x 2"));
  bad = Stats::empty(3);
  bad.mean(1) = 1.0;
  CHECK(contains(message_of([&] { target.merge(bad); }), "has count 0 but a non-zero mean"));
  bad = good;
  bad.scatter(1, 1) = -1.0;
  CHECK(contains(message_of([&] { target.merge(bad); }), "has a negative diagonal entry"));
  CHECK(unchanged());

  CHECK(contains(message_of([&] { (void)baypr::pooled({}); }),
                 "baypr::pooled: argument 'sites' needs at least one site"));
  const std::vector<Stats> mixed = {good, Stats::empty(2)};
  CHECK(contains(message_of([&] { (void)baypr::pooled(mixed); }),
                 "argument 'sites[1]' has dimension 2, expected 3"));

  const auto prior = NiwPrior<double>::method_default(3);
  CHECK(contains(message_of([&] { (void)prior.posterior(Stats::empty(2)); }),
                 "baypr::NiwPrior::posterior: argument 'statistics' has dimension 2, expected 3"));
  CHECK(contains(message_of([&] { (void)prior.posterior(good, Path::low_rank); }),
                 "argument 'path' must be automatic or dense"));
}
