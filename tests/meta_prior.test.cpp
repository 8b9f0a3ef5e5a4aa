// meta/learned_prior.hpp: the NIW prior and the calibration learned through the outer loss on
// fixed features. The loss from its definition (direct Student-t scores), its joint gradient
// against finite differences on both posterior paths and both calibrated objectives, the
// coordinates' round trip, descent on a fixed set of episodes, and bad input.
#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "baypr/meta/learned_prior.hpp"
#include "support/catch.hpp"
#include "support/finite_differences.hpp"
#include "support/messages.hpp"

namespace {

using baypr::NiwPrior;
using baypr::meta::Calibration;
using baypr::meta::MetaGradient;
using baypr::meta::MetaOptions;
using baypr::meta::Objective;
using baypr::meta::OuterOptions;
using baypr::meta::PriorCoordinates;
using baypr::meta::VagueAnomalyModel;
using baypr::test::contains;
using baypr::test::message_of;
using baypr::test::normal_matrix;
using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

struct Features {
  Mat Z, Q;
  Eigen::VectorXi labels;
};

// Support and normal queries around one centre, anomalous queries shifted.
Features features(Eigen::Index n, Eigen::Index d, Eigen::Index normal, Eigen::Index anomalous,
                  std::mt19937_64& rng) {
  const Mat centre = normal_matrix(1, d, rng);
  Features f;
  f.Z = normal_matrix(n, d, rng).rowwise() + centre.row(0);
  f.Q = normal_matrix(normal + anomalous, d, rng).rowwise() + centre.row(0);
  f.Q.bottomRows(anomalous) += 1.5 * normal_matrix(anomalous, d, rng);
  f.labels.setZero(normal + anomalous);
  f.labels.tail(anomalous).setOnes();
  return f;
}

NiwPrior<double> diagonal_prior(Eigen::Index d, std::mt19937_64& rng) {
  const Vec psi = (0.3 * normal_matrix(d, 1, rng)).array().exp().matrix();
  return NiwPrior<double>(0.5 * normal_matrix(d, 1, rng), 0.2, static_cast<double>(d) + 1.5,
                          Mat(psi.asDiagonal()));
}

// learned_prior_step's options: the anomaly model, the outer loss and the posterior path.
MetaOptions prior_options(const VagueAnomalyModel& anomaly, const OuterOptions& outer,
                          baypr::Path path = baypr::Path::automatic) {
  MetaOptions o;
  o.anomaly = anomaly;
  o.outer = outer;
  o.adapt.path = path;
  return o;
}

double softplus(double x) {
  return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}

}  // namespace

TEST_CASE("PriorCoordinates: round trip and validation", "[meta][prior]") {
  std::mt19937_64 rng(31);
  const auto p = diagonal_prior(5, rng);
  const Vec x = PriorCoordinates::of(p);
  REQUIRE(x.size() == 12);
  const auto back = PriorCoordinates::prior(x);
  CHECK((back.mean() - p.mean()).norm() == 0.0);
  CHECK(std::abs(back.kappa() - p.kappa()) <= 1e-15);
  CHECK(std::abs(back.nu() - p.nu()) <= 1e-13);
  CHECK((back.scatter() - p.scatter()).norm() <= 1e-14);
  Mat full = Mat::Identity(3, 3);
  full(0, 2) = full(2, 0) = 0.1;
  CHECK(contains(message_of([&] {
                   (void)PriorCoordinates::of(NiwPrior<double>(Vec::Zero(3), 1.0, 4.0, full));
                 }),
                 "argument 'prior' must have a diagonal Psi0"));
  CHECK(contains(message_of([&] { (void)PriorCoordinates::prior(Vec::Zero(5)); }),
                 "argument 'x' must have size 2 d + 2 with d >= 1, got 5"));
  Vec bad = x;
  bad(6) = std::numeric_limits<double>::infinity();
  CHECK(contains(message_of([&] { (void)PriorCoordinates::prior(bad); }),
                 "argument 'x' must be finite, got inf"));
}

TEST_CASE("learned_prior_step: the loss from its definition", "[meta][prior]") {
  std::mt19937_64 rng(32);
  const Eigen::Index d = 4;
  const auto f = features(3, d, 6, 3, rng);
  const auto prior = diagonal_prior(d, rng);
  const Calibration cal{0.2, -0.7};
  const VagueAnomalyModel anomaly{0.1, 20.0, 3.0};
  const Vec joint = baypr::meta::prior_joint_parameters(prior, cal);
  OuterOptions o;
  o.calibration_l2 = 0.01;
  const auto step =
      baypr::meta::learned_prior_step(f.Z, f.Q, f.labels, joint, prior_options(anomaly, o));
  // Independently: the posterior predictive's log density and the class-balanced logistic loss.
  const auto t = prior.posterior(f.Z, baypr::Path::dense).predictive();
  const Vec s = anomaly.log_pdf(f.Q) - t.log_pdf(f.Q);
  double want = o.calibration_l2 * (cal.rho * cal.rho + cal.beta * cal.beta);
  for (Eigen::Index j = 0; j < s.size(); ++j) {
    const int y = f.labels(j);
    const double a = std::exp(cal.rho) * s(j) + cal.beta;
    want += (softplus(a) - y * a) / (2.0 * (y == 0 ? 6.0 : 3.0));
  }
  CHECK(std::abs(step.outer_loss - want) <= 1e-12 * std::abs(want));
  CHECK(step.inner_loss == 0.0);
  CHECK(step.adapted.size() == 0);
  CHECK(step.gradient.size() == joint.size());
  CHECK(step.gradient.tail(2) == step.calibration_gradient);
  // The calibration is the joint vector's (options.outer.calibration is ignored), and the order
  // does not enter (nothing is adapted).
  MetaOptions other = prior_options(anomaly, o);
  other.outer.calibration = Calibration{1.5, 2.0};
  other.order = MetaGradient::first_order;
  const auto same = baypr::meta::learned_prior_step(f.Z, f.Q, f.labels, joint, other);
  CHECK(same.outer_loss == step.outer_loss);
  CHECK(same.gradient == step.gradient);
}

TEST_CASE("learned_prior_step: joint gradient against finite differences",
          "[meta][prior][gradient]") {
  std::mt19937_64 rng(33);
  struct Case {
    Eigen::Index n, d;
    baypr::Path path;
  };
  // n + 1 < d: the low-rank path (automatic and forced) and the dense one; n + 1 >= d: dense.
  for (const Case c : {Case{2, 7, baypr::Path::automatic}, Case{2, 7, baypr::Path::dense},
                       Case{9, 4, baypr::Path::automatic}}) {
    for (const Objective objective : {Objective::discriminative, Objective::ranking}) {
      INFO("n " << c.n << " d " << c.d << " path " << static_cast<int>(c.path) << " objective "
                << static_cast<int>(objective));
      const auto f = features(c.n, c.d, 5, 3, rng);
      const Vec joint =
          baypr::meta::prior_joint_parameters(diagonal_prior(c.d, rng), Calibration{-0.3, 0.4});
      OuterOptions o;
      o.objective = objective;
      const VagueAnomalyModel anomaly{0.0, 30.0, 2.0};
      const MetaOptions options = prior_options(anomaly, o, c.path);
      const auto step = baypr::meta::learned_prior_step(f.Z, f.Q, f.labels, joint, options);
      const Vec numeric = baypr::test::central_difference(
          [&](const Vec& x) {
            return baypr::meta::learned_prior_step(f.Z, f.Q, f.labels, x, options).outer_loss;
          },
          joint, 1e-4);
      CHECK(baypr::test::relative_error(step.gradient, numeric) <= 1e-7);
    }
  }
}

TEST_CASE("learned_prior_step: gradient descent on fixed episodes lowers the loss",
          "[meta][prior]") {
  std::mt19937_64 rng(34);
  const Eigen::Index d = 6;
  std::vector<Features> episodes;
  for (int e = 0; e < 8; ++e) episodes.push_back(features(3, d, 8, 4, rng));
  Vec joint = baypr::meta::prior_joint_parameters(
      NiwPrior<double>::isotropic(d, 0.01, d + 2.0, 1.0), Calibration{});
  const auto loss = [&](const Vec& x, Vec* g) {
    double sum = 0.0;
    if (g) g->setZero(x.size());
    for (const auto& f : episodes) {
      const auto s = baypr::meta::learned_prior_step(f.Z, f.Q, f.labels, x);
      sum += s.outer_loss;
      if (g) *g += s.gradient;
    }
    return sum / static_cast<double>(episodes.size());
  };
  const double start = loss(joint, nullptr);
  Vec g;
  for (int it = 0; it < 200; ++it) {
    loss(joint, &g);
    joint -= 0.05 * g / static_cast<double>(episodes.size());
  }
  const double end = loss(joint, nullptr);
  CHECK(end < start - 0.05);
  CHECK(end < std::log(2.0));  // better than chance (all scores equal)
}

TEST_CASE("learned_prior_step: bad input is rejected, naming the argument",
          "[meta][prior][errors]") {
  std::mt19937_64 rng(35);
  const Eigen::Index d = 3;
  const auto f = features(2, d, 4, 2, rng);
  const Vec joint = baypr::meta::prior_joint_parameters(diagonal_prior(d, rng), Calibration{});
  const auto msg = [&](const Vec& x, const OuterOptions& o = {},
                       const Eigen::VectorXi& labels = {}) {
    return message_of([&] {
      (void)baypr::meta::learned_prior_step(f.Z, f.Q, labels.size() == 0 ? f.labels : labels, x,
                                            prior_options(VagueAnomalyModel{}, o));
    });
  };
  CHECK(contains(msg(joint.head(5)),
                 "baypr::meta::learned_prior_step: argument 'joint' has size 5, expected 10"));
  Vec nan = joint;
  nan(1) = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(msg(nan), "argument 'joint' must be finite, got nan at row 1"));
  Vec far = joint;
  far(8) = 60.0;
  CHECK(contains(msg(far), "argument 'joint' has rho (entry 8) outside [-50, 50], got 60"));
  OuterOptions generative;
  generative.objective = Objective::generative;
  CHECK(contains(msg(joint, generative),
                 "baypr::meta::learned_prior_step: argument 'options.outer.objective' must be "
                 "discriminative or ranking"));
  OuterOptions negative_l2;
  negative_l2.calibration_l2 = -1.0;
  CHECK(contains(msg(joint, negative_l2),
                 "baypr::meta::learned_prior_step: argument 'options.outer.calibration_l2' must "
                 "be finite and >= 0, got -1"));
  CHECK(contains(msg(joint, {}, Eigen::VectorXi{{0, 0, 0, 2, 1, 1}}),
                 "argument 'labels' must be 0 (normal) or 1 (anomalous), got 2 at index 3"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::learned_prior_step(
                       f.Z, f.Q, f.labels, joint,
                       prior_options(VagueAnomalyModel{0.0, 0.0, 2.0}, {}));
                 }),
                 "baypr::meta::learned_prior_step: argument 'options.anomaly.scale'"));
  Vec huge_kappa = joint;
  huge_kappa(d) = 800.0;  // exp overflows: NiwPrior names kappa0
  CHECK(contains(msg(huge_kappa), "kappa0"));
}
