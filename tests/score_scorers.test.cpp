// Bayesian, prototype and Gaussian scorers, the patch layer, and Ledoit-Wolf against scikit-learn.
#include <Eigen/Core>
#include <concepts>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "baypr/score/baselines.hpp"
#include "baypr/score/bayesian.hpp"
#include "baypr/score/scorer.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/messages.hpp"

using baypr::test::contains;
using baypr::test::max_relative_error;
using baypr::test::message_of;
using baypr::test::relative_error;

static_assert(baypr::Scorer<baypr::BayesianScorer>);
static_assert(baypr::Scorer<baypr::PrototypeScorer>);
static_assert(baypr::Scorer<baypr::GaussianScorer>);

namespace {
// Every scorer of the library says whether it is fitted and on how many columns.
template <class S>
concept Inspectable = requires(const S& s) {
  { s.fitted() } -> std::same_as<bool>;
  { s.dim() } -> std::same_as<Eigen::Index>;
};
}  // namespace
static_assert(
    Inspectable<baypr::BayesianScorer> && Inspectable<baypr::PrototypeScorer> &&
    Inspectable<baypr::GaussianScorer>);  // PatchCoreScorer: tests/score_patchcore.test.cpp

namespace {

Eigen::MatrixXd normal_rows(Eigen::Index n, Eigen::Index d, std::mt19937_64& rng,
                            double shift = 0.0, double sd = 1.0) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd X = Eigen::MatrixXd::NullaryExpr(n, d, [&] { return sd * normal(rng); });
  X.array() += shift;
  return X;
}

struct LwCase {
  std::string name;
  Eigen::MatrixXd X, covariance;
  double shrinkage = 0.0;
};

std::vector<LwCase> read_lw_cases() {
  std::ifstream in(BAYPR_TEST_DATA_DIR "/ledoit_wolf.txt");
  REQUIRE(in.good());
  std::vector<LwCase> out;
  std::string line;
  LwCase c;
  Eigen::Index n = 0, d = 0;
  auto values = [](std::istringstream& is, Eigen::Index count) {
    std::vector<double> v;
    std::string tok;
    while (is >> tok) v.push_back(std::strtod(tok.c_str(), nullptr));
    REQUIRE(static_cast<Eigen::Index>(v.size()) == count);
    return v;
  };
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string key;
    is >> key;
    if (key == "case") {
      c = LwCase{};
      is >> c.name >> n >> d;
    } else if (key == "X") {
      const auto v = values(is, n * d);
      c.X =
          Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
              v.data(), n, d);
    } else if (key == "covariance") {
      const auto v = values(is, d * d);
      c.covariance =
          Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
              v.data(), d, d);
    } else if (key == "shrinkage") {
      is >> c.shrinkage;
    } else if (key == "end") {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("Ledoit-Wolf matches scikit-learn", "[score][gaussian][reference]") {
  const auto cases = read_lw_cases();
  REQUIRE(cases.size() == 5);
  for (const auto& c : cases) {
    INFO("case " << c.name);
    const auto lw = baypr::ledoit_wolf(c.X);
    CHECK(relative_error(lw.shrinkage, c.shrinkage) <= 1e-10);
    CHECK(max_relative_error(lw.covariance, c.covariance) <= 1e-12);
  }
}

TEST_CASE("Bayesian scorer scores are the predictive's quantities", "[score][bayes]") {
  std::mt19937_64 rng(1);
  for (Eigen::Index d : {3, 40}) {
    const Eigen::MatrixXd S = normal_rows(5, d, rng, 0.5);
    const Eigen::MatrixXd Q = normal_rows(7, d, rng, 0.5, 2.0);
    baypr::BayesianScorer scorer;
    scorer.fit(S);
    // The default prior: the authors' with kappa0 = 1e-4.
    const auto prior = baypr::NiwPrior<double>::isotropic(d, 1e-4, static_cast<double>(d) + 2, 1.0);
    const auto t = prior.posterior(S).predictive();
    INFO("d=" << d);
    CHECK(max_relative_error(scorer.score(Q, baypr::BayesScore::nll), -t.log_pdf(Q)) <= 1e-13);
    // llr against a dense Student-t anomaly model built independently (mu 0, 100 I, dof 2).
    const baypr::StudentT<double> anomaly(Eigen::VectorXd::Zero(d),
                                          100.0 * Eigen::MatrixXd::Identity(d, d), 2.0);
    const Eigen::VectorXd llr = anomaly.log_pdf(Q) - t.log_pdf(Q);
    CHECK(max_relative_error(scorer.score(Q, baypr::BayesScore::llr), llr) <= 1e-12);
    const Eigen::VectorXd tail = -t.tail_probability(Q).array().log();
    CHECK(max_relative_error(scorer.score(Q, baypr::BayesScore::tail), tail) <= 1e-10);
  }
}

TEST_CASE("Bayesian scorer: add_normal equals a refit; empirical scale maximises evidence",
          "[score][bayes]") {
  std::mt19937_64 rng(2);
  const Eigen::Index d = 6;
  const Eigen::MatrixXd S = normal_rows(12, d, rng, 1.0, 0.3);
  const Eigen::MatrixXd Q = normal_rows(5, d, rng, 1.0, 0.6);
  baypr::BayesianScorer online;
  online.fit(S.topRows(4)).add_normal(S.bottomRows(8));
  baypr::BayesianScorer batch;
  batch.fit(S);
  CHECK(max_relative_error(online.score(Q), batch.score(Q)) <= 1e-12);

  baypr::BayesianScorerOptions opt;
  opt.empirical_psi_scale = true;
  baypr::BayesianScorer eb(opt);
  eb.fit(S.topRows(4));
  const double s = eb.psi_scale();
  REQUIRE(s > 0.0);
  auto evidence = [&](double scale) {
    return baypr::NiwPrior<double>::isotropic(d, opt.kappa0, d + opt.nu0_offset, scale)
        .posterior(S.topRows(4))
        .log_marginal_likelihood();
  };
  CHECK(evidence(s) >= evidence(s * 1.001));
  CHECK(evidence(s) >= evidence(s / 1.001));
  // Also with more rows than dimensions (the other Gram matrix) and a single row.
  for (Eigen::Index n : {1, 12}) {
    baypr::BayesianScorer eb_n(opt);
    eb_n.fit(S.topRows(n));
    const double sn = eb_n.psi_scale();
    auto ev = [&](double scale) {
      return baypr::NiwPrior<double>::isotropic(d, opt.kappa0, d + opt.nu0_offset, scale)
          .posterior(S.topRows(n))
          .log_marginal_likelihood();
    };
    INFO("n=" << n << " s=" << sn);
    CHECK(ev(sn) >= ev(sn * 1.001));
    CHECK(ev(sn) >= ev(sn / 1.001));
  }
}

TEST_CASE("Bayesian scorer: fit(statistics) equals fit(rows), pooled statistics included",
          "[score][bayes]") {
  std::mt19937_64 rng(4);
  const Eigen::Index d = 6;
  const Eigen::MatrixXd S = normal_rows(12, d, rng, 1.0, 0.3);
  const Eigen::MatrixXd Q = normal_rows(5, d, rng, 1.0, 0.6);
  baypr::BayesianScorerOptions empirical;
  empirical.empirical_psi_scale = true;
  baypr::BayesianScorerOptions own_prior;
  own_prior.prior = baypr::NiwPrior<double>::isotropic(d, 0.01, d + 3.0, 0.5);
  // Fewer rows than dimensions (the low-rank case of the empirical scale), a single row, more.
  for (const Eigen::Index n : {Eigen::Index{1}, Eigen::Index{4}, Eigen::Index{12}}) {
    for (const auto& options : {baypr::BayesianScorerOptions{}, empirical, own_prior}) {
      INFO("n = " << n << ", empirical " << options.empirical_psi_scale);
      baypr::BayesianScorer rows(options), stats(options);
      rows.fit(S.topRows(n));
      // The statistics of two halves, pooled as sites would.
      auto st = baypr::SufficientStatistics<double>::of(S.topRows(n / 2));
      st.merge(baypr::SufficientStatistics<double>::of(S.middleRows(n / 2, n - n / 2)));
      stats.fit(st);
      // The empirical scale is a maximiser found by golden-section search, and the evidence is
      // flat at its maximum: the two paths' rounding moves it by ~1e-8 relative (the search's
      // tolerance), so both are held to 1e-6 there and to 1e-10 with a fixed prior.
      const double tolerance = options.empirical_psi_scale ? 1e-6 : 1e-10;
      CHECK(std::abs(stats.psi_scale() - rows.psi_scale()) <= tolerance * rows.psi_scale());
      CHECK(max_relative_error(stats.score(Q), rows.score(Q)) <= tolerance);
      for (const auto type : {baypr::BayesScore::nll, baypr::BayesScore::tail}) {
        CHECK(max_relative_error(stats.score(Q, type), rows.score(Q, type)) <= tolerance);
      }
      if (options.empirical_psi_scale) {  // and it maximises the pooled statistics' evidence
        const auto evidence = [&](double scale) {
          return baypr::NiwPrior<double>::isotropic(d, options.kappa0, d + options.nu0_offset,
                                                    scale)
              .posterior(st)
              .log_marginal_likelihood();
        };
        CHECK(evidence(stats.psi_scale()) >= evidence(stats.psi_scale() * 1.001));
        CHECK(evidence(stats.psi_scale()) >= evidence(stats.psi_scale() / 1.001));
      }
    }
  }
  // No rows, a dimension that is not the prior's: named, and the fitted scorer unchanged.
  baypr::BayesianScorer fitted(own_prior);
  fitted.fit(S);
  const Eigen::VectorXd before = fitted.score(Q);
  CHECK(contains(message_of([&] { fitted.fit(baypr::SufficientStatistics<double>::empty(d)); }),
                 "baypr::BayesianScorer::fit: argument 'statistics.count' must be >= 1"));
  CHECK(contains(message_of([&] {
                   fitted.fit(baypr::SufficientStatistics<double>::of(Eigen::MatrixXd::Ones(2, 3)));
                 }),
                 "argument 'statistics'"));
  CHECK(fitted.score(Q) == before);
}

TEST_CASE("Scorers rank a shifted cluster above the normal one", "[score]") {
  std::mt19937_64 rng(3);
  const Eigen::Index d = 16;
  const Eigen::MatrixXd S = normal_rows(8, d, rng);
  const Eigen::MatrixXd normal_q = normal_rows(20, d, rng);
  const Eigen::MatrixXd anomal_q = normal_rows(20, d, rng, 3.0);
  baypr::BayesianScorerOptions opt;
  opt.empirical_psi_scale = true;
  baypr::BayesianScorer bayes(opt);
  baypr::PrototypeScorer proto;
  baypr::GaussianScorer gauss;
  auto separated = [&](auto& scorer) {
    scorer.fit(S);
    return scorer.score(anomal_q).minCoeff() > scorer.score(normal_q).maxCoeff();
  };
  CHECK(separated(bayes));
  CHECK(separated(proto));
  CHECK(separated(gauss));
}

TEST_CASE("Prototype and Gaussian scorers by hand", "[score]") {
  Eigen::MatrixXd S(2, 2);
  S << 0.0, 0.0, 2.0, 2.0;
  Eigen::MatrixXd Q(2, 2);
  Q << 1.0, 1.0, 4.0, 1.0;
  baypr::PrototypeScorer proto;
  proto.fit(S);
  CHECK(proto.score(Q)(0) == 0.0);
  CHECK(proto.score(Q)(1) == 9.0);
  // One support row: no spread, the Gaussian scorer falls back to the prototype score.
  baypr::GaussianScorer gauss;
  gauss.fit(S.topRows(1));
  CHECK(relative_error(gauss.score(Q)(1), 17.0) <= 1e-15);
}

TEST_CASE("Aggregation and the patch layer", "[score][patches]") {
  Eigen::MatrixXd P(2, 4);
  P << 1, 5, 2, 4,  //
      0, 0, 9, 1;
  CHECK(baypr::aggregate(P, baypr::Aggregation::max()) == Eigen::Vector2d(5, 9));
  CHECK(baypr::aggregate(P, baypr::Aggregation::mean()) == Eigen::Vector2d(3, 2.5));
  CHECK(baypr::aggregate(P, baypr::Aggregation::parse("topk:2")) == Eigen::Vector2d(4.5, 5));
  CHECK(baypr::aggregate(P, baypr::Aggregation::top_k(10)) == Eigen::Vector2d(3, 2.5));
  CHECK(contains(message_of([] { (void)baypr::Aggregation::parse("topk:0"); }),
                 "baypr::Aggregation::parse: argument 'text' must be max, mean or topk:K"));
  CHECK_THROWS_AS(baypr::Aggregation::parse("median"), std::invalid_argument);

  std::mt19937_64 rng(4);
  const Eigen::Index p = 6, d = 5;
  const Eigen::MatrixXd support = normal_rows(3 * p, d, rng);
  Eigen::MatrixXd queries = normal_rows(2 * p, d, rng);
  queries.row(p + 4).array() += 10.0;  // a defect in image 1, patch 4
  baypr::PrototypeScorer proto;
  const auto res = baypr::score_patches(proto, support, queries, p);
  REQUIRE(res.patches.rows() == 2);
  REQUIRE(res.patches.cols() == p);
  CHECK(res.patches(1, 4) == res.patches.maxCoeff());
  CHECK(res.image(1) == res.patches(1, 4));
  const Eigen::VectorXd flat = proto.score(queries);
  CHECK(res.patches(0, 3) == flat(3));
  CHECK(contains(message_of([&] { (void)baypr::score_patches(proto, support, queries, 5); }),
                 "not a multiple of patches_per_image 5"));
}

TEST_CASE("Scorer errors name function and argument; a failed fit keeps the old state",
          "[score][errors]") {
  baypr::BayesianScorer bayes;
  Eigen::MatrixXd Q = Eigen::MatrixXd::Zero(2, 3);
  CHECK(contains(message_of([&] { (void)bayes.score(Q); }),
                 "baypr::BayesianScorer::score: argument 'this' is not fitted"));
  Eigen::MatrixXd S = Eigen::MatrixXd::Random(4, 3);
  bayes.fit(S);
  const Eigen::VectorXd before = bayes.score(Q);
  Eigen::MatrixXd bad = S;
  bad(1, 2) = std::nan("");
  CHECK(contains(
      message_of([&] { bayes.fit(bad); }),
      "baypr::BayesianScorer::fit: argument 'support' must be finite, got nan at row 1, column 2"));
  CHECK(bayes.score(Q) == before);
  CHECK(contains(message_of([&] { (void)bayes.score(Eigen::MatrixXd::Zero(2, 4)); }),
                 "argument 'queries' has columns 4, expected 3"));
  baypr::BayesianScorerOptions opt;
  opt.kappa0 = -1.0;
  CHECK(contains(message_of([&] { baypr::BayesianScorer s(opt); }),
                 "argument 'options.kappa0' must be finite and > 0, got -1"));
  baypr::PrototypeScorer proto;
  CHECK_THROWS_AS(proto.fit(Eigen::MatrixXd(0, 3)), std::invalid_argument);
  baypr::GaussianScorer gauss;
  CHECK_THROWS_AS(gauss.score(Q), std::invalid_argument);
  CHECK(contains(
      message_of([&] { (void)gauss.score(Q); }),
      "baypr::GaussianScorer::score: argument 'this' is not fitted: call fit(support) first"));
  CHECK(contains(
      message_of([&] { (void)proto.prototype(); }),
      "baypr::PrototypeScorer::prototype: argument 'this' is not fitted: call fit(support) first"));
  CHECK(contains(message_of([] { baypr::GaussianScorer g(baypr::GaussianScorerOptions{-0.5}); }),
                 "baypr::GaussianScorer::GaussianScorer: argument 'options.ridge' must be finite "
                 "and >= 0, got -0.5"));

  // fitted() / dim() on every scorer: false / 0 before fit, true / d after, unchanged by a failed
  // fit.
  CHECK((!proto.fitted() && proto.dim() == 0 && !gauss.fitted() && gauss.dim() == 0));
  proto.fit(S);
  gauss.fit(S);
  CHECK((proto.fitted() && proto.dim() == 3 && gauss.fitted() && gauss.dim() == 3 &&
         bayes.fitted() && bayes.dim() == 3));
  CHECK_THROWS_AS(gauss.fit(bad), std::invalid_argument);
  CHECK((gauss.fitted() && gauss.dim() == 3));
  CHECK(baypr::GaussianScorer(baypr::GaussianScorerOptions{0.5}).options().ridge == 0.5);
}
