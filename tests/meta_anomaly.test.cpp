// Tests of include/baypr/meta/learned_anomaly.hpp: the anomaly model's coordinate gradient against
// finite differences of log p_a, and the joint meta-step against finite differences of
// joint -> L_out(adapt(theta), p_a(coordinates)) (second order: every entry; first order: the
// anomaly entries, which are exact in both orders because the inner loop does not involve p_a).
#include <Eigen/Core>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "baypr/meta/learned_anomaly.hpp"
#include "support/catch.hpp"
#include "support/finite_differences.hpp"
#include "support/messages.hpp"

namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using baypr::meta::AnomalyCoordinates;
using baypr::meta::Linear;
using baypr::meta::MetaEpisode;
using baypr::meta::MetaGradient;
using baypr::meta::MetaOptions;
using baypr::meta::VagueAnomalyModel;

using baypr::test::central_difference;
using baypr::test::normal_matrix;
using baypr::test::relative_error;

MetaEpisode episode(std::mt19937_64& rng) {
  MetaEpisode e;
  e.support = normal_matrix(4, 6, rng);
  e.queries = normal_matrix(7, 6, rng);
  e.queries.bottomRows(3) *= 3.0;  // anomalous rows spread wider
  e.labels = Eigen::VectorXi{{0, 0, 0, 0, 1, 1, 1}};
  return e;
}

}  // namespace

TEST_CASE("anomaly coordinates: round trip and the gradient of log p_a against finite differences",
          "[meta]") {
  const VagueAnomalyModel a{0.3, 7.0, 3.5};
  const Eigen::Vector3d c = AnomalyCoordinates::of(a);
  CHECK(c(0) == 0.3);
  CHECK(c(1) == std::log(7.0));
  const VagueAnomalyModel back = AnomalyCoordinates::model(c);
  CHECK(std::abs(back.scale - 7.0) < 1e-14);
  CHECK(std::abs(back.dof - 3.5) < 1e-14);

  std::mt19937_64 rng(5);
  for (const Eigen::Index d : {1, 4, 32}) {
    const Mat z = 2.0 * normal_matrix(3, d, rng);
    const auto g = baypr::meta::anomaly_log_pdf_coordinate_gradient(a, z);
    REQUIRE(g.rows() == 3);
    for (Eigen::Index j = 0; j < z.rows(); ++j) {
      const Vec fd = central_difference(
          [&](const Vec& x) { return AnomalyCoordinates::model(x).log_pdf(Mat(z.row(j)))(0); },
          Vec(c), 1e-4);
      INFO("d = " << d << ", row " << j << ": analytic " << g.row(j) << ", differences "
                  << fd.transpose());
      CHECK(relative_error(g.row(j).transpose(), fd) < 1e-9);
    }
  }
  // At the location itself (r2 = 0): d/da = 0 and d/dlog s = -d/2 exactly.
  const auto g0 = baypr::meta::anomaly_log_pdf_coordinate_gradient(a, Mat::Constant(1, 5, 0.3));
  CHECK(g0(0, 0) == 0.0);
  CHECK(g0(0, 1) == -2.5);
}

TEST_CASE("anomaly coordinates: invalid values are rejected with the function and argument named",
          "[meta]") {
  using baypr::test::contains;
  using baypr::test::message_of;
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(contains(message_of([] {
                   (void)AnomalyCoordinates::model({0.0, 800.0, 0.0});
                 }),
                 "baypr::meta::AnomalyCoordinates::model: argument 'coordinates'"));
  // Values as the other messages print them (12 significant digits, not std::to_string's fixed 6
  // decimals, which printed a tiny scale as 0.000000).
  CHECK(contains(message_of([] {
                   (void)AnomalyCoordinates::model({0.0, -800.0, 0.0});
                 }),
                 "log scale -800 gives scale 0 (must be positive and finite)"));
  CHECK(contains(
      message_of([] {
        (void)baypr::meta::anomaly_log_pdf_coordinate_gradient({0.0, 1e-9, -2.0}, Mat::Zero(1, 2));
      }),
      "got location 0, scale 1e-09, dof -2"));
  CHECK(contains(message_of([&] {
                   (void)AnomalyCoordinates::model({inf, 0.0, 0.0});
                 }),
                 "baypr::meta::AnomalyCoordinates::model"));
  CHECK(contains(
      message_of([] {
        (void)baypr::meta::anomaly_log_pdf_coordinate_gradient({0.0, -1.0, 2.0}, Mat::Zero(1, 2));
      }),
      "baypr::meta::anomaly_log_pdf_coordinate_gradient: argument 'anomaly'"));
  CHECK(contains(message_of([] { (void)baypr::meta::split_joint_parameters(Vec::Zero(3)); }),
                 "baypr::meta::split_joint_parameters: argument 'joint'"));
  const Linear linear(6, 3);
  std::mt19937_64 rng(1);
  const MetaEpisode e = episode(rng);
  const auto prior = baypr::NiwPrior<double>::method_default(3);
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::learned_anomaly_meta_step(
                       linear, linear.initial_parameters(1), e, prior);
                 }),
                 "baypr::meta::learned_anomaly_meta_step: argument 'joint'"));
}

TEST_CASE("learned_anomaly_meta_step: gradient against finite differences of the joint outer loss",
          "[meta]") {
  std::mt19937_64 rng(17);
  const MetaEpisode e = episode(rng);
  const Linear linear(6, 3);
  const auto prior = baypr::NiwPrior<double>::method_default(3);
  const VagueAnomalyModel start{0.2, 5.0, 3.0};
  const Vec joint = baypr::meta::joint_parameters(linear.initial_parameters(3), start);
  REQUIRE(joint.size() == linear.parameter_count() + 3);
  MetaOptions options;
  options.adapt = {2, 0.1, baypr::Path::automatic};
  // The default (discriminative) objective, with SupCon.
  options.outer.supcon_weight = 0.1;
  options.outer.supcon_temperature = 0.5;

  // The objective written independently of learned_anomaly_meta_step: adapt, then the outer loss
  // with the anomaly model of the joint vector's tail.
  const auto objective = [&](const Vec& j) {
    const auto [theta, anomaly] = baypr::meta::split_joint_parameters(j);
    MetaOptions o = options;
    o.anomaly = anomaly;
    const auto a = baypr::meta::adapt(linear, theta, e.support, prior, o);
    return baypr::meta::outer_loss_and_gradient(linear, a.params, e, prior, o).value;
  };
  const Vec fd = central_difference(objective, joint, 1e-4);

  MetaOptions second = options;
  second.order = MetaGradient::second_order;
  // options.anomaly is replaced by the joint vector's model: a different one here changes nothing.
  second.anomaly = VagueAnomalyModel{-1.0, 50.0, 7.0};
  const auto so = baypr::meta::learned_anomaly_meta_step(linear, joint, e, prior, second);
  REQUIRE(so.gradient.size() == joint.size());
  INFO("analytic " << so.gradient.transpose() << "\ndifferences " << fd.transpose());
  CHECK(relative_error(so.gradient, fd) < 1e-8);
  CHECK(std::abs(so.outer_loss - objective(joint)) < 1e-14 * std::abs(so.outer_loss));
  CHECK(so.adapted.tail<3>() == joint.tail<3>());
  // The anomaly coordinates' gradient is non-trivial here (a test of it that could pass with zeros
  // would be no test).
  CHECK(so.gradient.tail<3>().cwiseAbs().minCoeff() > 1e-6);

  // First order: the embedding part is the first-order meta-gradient, the anomaly part is exact.
  MetaOptions first = options;
  first.order = MetaGradient::first_order;
  const auto fo = baypr::meta::learned_anomaly_meta_step(linear, joint, e, prior, first);
  CHECK(relative_error(fo.gradient.tail<3>(), fd.tail<3>()) < 1e-8);
  first.anomaly = start;
  const auto plain =
      baypr::meta::meta_step(linear, joint.head(linear.parameter_count()), e, prior, first);
  CHECK(fo.gradient.head(linear.parameter_count()) == plain.gradient);
  // The default order, automatic, is second order for this (twice differentiable) embedding.
  const auto automatic = baypr::meta::learned_anomaly_meta_step(linear, joint, e, prior, options);
  CHECK(automatic.gradient == so.gradient);
}

TEST_CASE(
    "learned_anomaly_meta_step: under the generative objective an episode without anomalous "
    "queries leaves "
    "the coordinates' gradient zero",
    "[meta]") {
  std::mt19937_64 rng(23);
  MetaEpisode e = episode(rng);
  e.labels.setZero();
  const Linear linear(6, 3);
  const auto prior = baypr::NiwPrior<double>::method_default(3);
  const Vec joint =
      baypr::meta::joint_parameters(linear.initial_parameters(4), VagueAnomalyModel{});
  MetaOptions generative;
  generative.outer.objective = baypr::meta::Objective::generative;
  generative.order = MetaGradient::second_order;
  const auto step = baypr::meta::learned_anomaly_meta_step(linear, joint, e, prior, generative);
  CHECK(step.gradient.tail<3>().isZero(0.0));
  CHECK(step.gradient.head(linear.parameter_count()).norm() > 0.0);
}
