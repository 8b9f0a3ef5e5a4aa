// The outer objectives of meta/adapt.hpp (discriminative, ranking, generative) and the score
// calibration (rho, beta): values from their definitions, gradients with respect to theta, the
// calibration and the anomaly model against finite differences, first and exact second order
// through the inner steps, the mixture-posterior reading of the discriminative loss, the
// calibration fit, and bad input.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "baypr/meta/adapt.hpp"
#include "baypr/meta/learned_anomaly.hpp"
#include "baypr/meta/mlp.hpp"
#include "support/catch.hpp"
#include "support/finite_differences.hpp"
#include "support/messages.hpp"

namespace {

using baypr::NiwPrior;
using baypr::Path;
using baypr::meta::AdaptOptions;
using baypr::meta::Calibration;
using baypr::meta::Linear;
using baypr::meta::MetaEpisode;
using baypr::meta::MetaGradient;
using baypr::meta::MetaOptions;
using baypr::meta::Objective;
using baypr::meta::OuterOptions;
using baypr::meta::VagueAnomalyModel;
using baypr::test::central_difference;
using baypr::test::contains;
using baypr::test::message_of;
using baypr::test::normal_matrix;
using baypr::test::relative_error;
using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using Rng = std::mt19937_64;

// Normal queries near a random subspace, anomalous ones shifted off it: scores that separate the
// classes partly (so neither loss term vanishes).
MetaEpisode episode(Eigen::Index in, Eigen::Index support, Eigen::Index normal,
                    Eigen::Index anomalous, Rng& rng) {
  const Mat basis = normal_matrix(in, 2, rng);
  auto rows = [&](Eigen::Index n) {
    return Mat(normal_matrix(n, 2, rng) * basis.transpose() + 0.3 * normal_matrix(n, in, rng));
  };
  MetaEpisode e;
  e.support = rows(support);
  e.queries.resize(normal + anomalous, in);
  e.queries.topRows(normal) = rows(normal);
  e.queries.bottomRows(anomalous) = rows(anomalous) + normal_matrix(anomalous, in, rng);
  e.labels.setZero(normal + anomalous);
  e.labels.tail(anomalous).setOnes();
  return e;
}

OuterOptions options(Objective objective, Calibration calibration = {0.3, -0.4},
                     double supcon = 0.0) {
  OuterOptions o;
  o.objective = objective;
  o.calibration = calibration;
  o.calibration_l2 = 0.01;
  o.supcon_weight = supcon;
  return o;
}

// The one options struct of meta/ from its parts.
MetaOptions meta_options(const VagueAnomalyModel& anomaly, const OuterOptions& outer,
                         const AdaptOptions& adapt = {},
                         MetaGradient order = MetaGradient::automatic) {
  return MetaOptions{adapt, anomaly, outer, order};
}

// No inner step: the scores of the embedding at theta itself.
MetaOptions unadapted(const VagueAnomalyModel& anomaly) {
  MetaOptions o;
  o.anomaly = anomaly;
  o.adapt.inner_steps = 0;
  return o;
}

double softplus(double x) {
  return std::log1p(std::exp(x));
}

// |a - b| <= tol max(|a|, |b|).
bool near(double a, double b, double tol) {
  return std::abs(a - b) <= tol * std::max(std::abs(a), std::abs(b));
}

}  // namespace

TEST_CASE("discriminative and ranking outer losses: values from their definitions",
          "[meta][objective]") {
  Rng rng(3);
  const MetaEpisode ep = episode(6, 4, 5, 3, rng);
  const Linear emb(6, 3);
  const Vec theta = emb.initial_parameters(4);
  const auto prior = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly{0.1, 5.0, 3.0};
  const Mat Z = emb.forward(theta, ep.support), Q = emb.forward(theta, ep.queries);
  const Vec s = anomaly.log_pdf(Q) - prior.posterior(Z).predictive().log_pdf(Q);
  const Calibration c{0.3, -0.4};
  const double alpha = std::exp(c.rho);

  double want = 0.01 * (c.rho * c.rho + c.beta * c.beta);
  for (Eigen::Index j = 0; j < 8; ++j) {
    const int y = ep.labels(j);
    const double a = alpha * s(j) + c.beta;
    want += (softplus(a) - y * a) / (2.0 * (y == 0 ? 5 : 3));
  }
  const auto d = baypr::meta::outer_loss_and_gradient(
      emb, theta, ep, prior, meta_options(anomaly, options(Objective::discriminative, c)));
  CHECK(near(d.value, want, 1e-13));

  want = 0.01 * c.rho * c.rho;
  for (Eigen::Index i = 0; i < 5; ++i)
    for (Eigen::Index k = 5; k < 8; ++k) want += softplus(alpha * (s(i) - s(k))) / 15.0;
  const auto r = baypr::meta::outer_loss_and_gradient(
      emb, theta, ep, prior, meta_options(anomaly, options(Objective::ranking, c)));
  CHECK(near(r.value, want, 1e-13));
  CHECK(r.calibration_gradient(1) == 0.0);  // beta does not enter the ranking loss

  // The scores the loss is on are the ones scores() reports without adaptation, whether it adapts
  // itself or is given the adaptation (zero steps: theta itself, the support embedded with it and
  // its posterior).
  const MetaOptions none = unadapted(anomaly);
  CHECK((baypr::meta::scores(emb, theta, ep.support, ep.queries, prior, none) - s)
            .cwiseAbs()
            .maxCoeff() < 1e-12);
  const baypr::meta::Adaptation adaptation =
      baypr::meta::adapt(emb, theta, ep.support, prior, none);
  CHECK(adaptation.params == theta);
  CHECK(adaptation.support == Z);
  REQUIRE(adaptation.posterior.has_value());
  CHECK((adaptation.posterior->predictive().log_pdf(Q) - prior.posterior(Z).predictive().log_pdf(Q))
            .cwiseAbs()
            .maxCoeff() < 1e-12);
  REQUIRE(adaptation.inner_losses.size() == 1);
  CHECK(near(adaptation.inner_losses[0],
             baypr::meta::inner_loss_and_gradient(emb, theta, ep.support, prior, none).value,
             1e-12));
  CHECK(baypr::meta::scores(emb, adaptation, ep.queries, none) ==
        baypr::meta::scores(emb, theta, ep.support, ep.queries, prior, none));
  // With an inner step, too: scores(adaptation) is scores(theta) adapting first.
  MetaOptions one_step = none;
  one_step.adapt = {1, 0.1, Path::automatic};
  const baypr::meta::Adaptation stepped =
      baypr::meta::adapt(emb, theta, ep.support, prior, one_step);
  CHECK((stepped.params - theta).norm() > 1e-6);
  CHECK(stepped.support == emb.forward(stepped.params, ep.support));
  CHECK(baypr::meta::scores(emb, stepped, ep.queries, one_step) ==
        baypr::meta::scores(emb, theta, ep.support, ep.queries, prior, one_step));
  CHECK((baypr::meta::scores(emb, stepped, ep.queries, one_step) - s).cwiseAbs().maxCoeff() > 1e-6);
  // The calibrated probabilities are sigma(alpha s + beta).
  const Vec p = baypr::meta::anomaly_probability(s, c);
  for (Eigen::Index j = 0; j < 8; ++j)
    CHECK(near(p(j), 1.0 / (1.0 + std::exp(-(alpha * s(j) + c.beta))), 1e-10));
  // With an anomaly rate r the odds are those at r = 0.5 times r / (1 - r) (Bayes' rule with the
  // new prior); r = 0.5 is the default.
  CHECK(baypr::meta::anomaly_probability(s, c, 0.5) == p);
  for (const double rate : {0.25, 0.01, 0.9}) {
    const Vec pr = baypr::meta::anomaly_probability(s, c, rate);
    for (Eigen::Index j = 0; j < 8; ++j) {
      CHECK(near((pr(j) / (1.0 - pr(j))) / (p(j) / (1.0 - p(j))), rate / (1.0 - rate), 1e-10));
    }
  }
  for (const double bad : {0.0, 1.0, -0.1, 1.5, std::nan("")}) {
    const std::string what =
        baypr::test::message_of([&] { (void)baypr::meta::anomaly_probability(s, c, bad); });
    CAPTURE(bad, what);
    CHECK(baypr::test::contains(what, "baypr::meta::anomaly_probability"));
    CHECK(baypr::test::contains(what, "anomaly_rate"));
  }
}

TEST_CASE(
    "discriminative loss: with alpha = 1 and beta the log prior odds, -log p(y | q) of the mixture",
    "[meta][objective]") {
  // p(anomalous | q) = pi p_a(q) / (pi p_a(q) + (1 - pi) t(q | Z)) for prior weight pi of the
  // anomaly component; the loss per query, unweighted, is -log p(y_j | q_j).
  Rng rng(5);
  const MetaEpisode ep = episode(5, 3, 4, 4, rng);  // m_0 = m_1: the class weights are all 1/8
  const Linear emb(5, 3);
  const Vec theta = emb.initial_parameters(6);
  const auto prior = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly{0.0, 3.0, 2.0};
  const double pi = 0.2;
  OuterOptions o = options(Objective::discriminative, {0.0, std::log(pi / (1 - pi))});
  o.calibration_l2 = 0.0;
  const auto got =
      baypr::meta::outer_loss_and_gradient(emb, theta, ep, prior, meta_options(anomaly, o));
  const Mat Z = emb.forward(theta, ep.support), Q = emb.forward(theta, ep.queries);
  const Vec la = anomaly.log_pdf(Q), ln = prior.posterior(Z).predictive().log_pdf(Q);
  double want = 0.0;
  for (Eigen::Index j = 0; j < 8; ++j) {
    const double log_joint_a = std::log(pi) + la(j), log_joint_n = std::log(1 - pi) + ln(j);
    const double hi = std::max(log_joint_a, log_joint_n);
    const double log_evidence =
        hi + std::log(std::exp(log_joint_a - hi) + std::exp(log_joint_n - hi));
    want -= ((ep.labels(j) == 1 ? log_joint_a : log_joint_n) - log_evidence) / 8.0;
  }
  CHECK(near(got.value, want, 1e-12));
}

TEST_CASE("discriminative loss: equal scores (a collapsed embedding) are its worst value",
          "[meta][objective]") {
  // theta = 0 maps every input to the origin, so every query gets the same score s0; the loss is
  // then softplus(a0) - a0 / 2 with a0 = alpha s0 + beta, at least log 2 whatever the calibration.
  Rng rng(8);
  const MetaEpisode ep = episode(6, 4, 6, 3, rng);
  const Linear emb(6, 3);
  const auto prior = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly;
  const Vec collapsed = Vec::Zero(emb.parameter_count());
  const Vec s0 =
      baypr::meta::scores(emb, collapsed, ep.support, ep.queries, prior, unadapted(anomaly));
  REQUIRE((s0.array() == s0(0)).all());
  OuterOptions o = options(Objective::discriminative);
  o.calibration_l2 = 0.0;
  for (const double rho : {-3.0, 0.0, 2.0}) {
    for (const double beta : {-5.0, -1.0, 0.0, 1.0, 5.0, -std::exp(rho) * s0(0)}) {
      o.calibration = {rho, beta};
      const double value =
          baypr::meta::outer_loss_and_gradient(emb, collapsed, ep, prior, meta_options(anomaly, o))
              .value;
      CHECK(value >= std::log(2.0) - 1e-12);
    }
  }
  // The embedding before collapse, calibrated by fit_calibration, does better than chance here.
  const Vec theta = emb.initial_parameters(9);
  const Vec s1 = baypr::meta::scores(emb, theta, ep.support, ep.queries, prior, unadapted(anomaly));
  o.calibration = baypr::meta::fit_calibration(s1, ep.labels);
  CHECK(
      baypr::meta::outer_loss_and_gradient(emb, theta, ep, prior, meta_options(anomaly, o)).value <
      std::log(2.0) - 0.05);
}

TEST_CASE(
    "outer objectives: gradients in theta, the calibration and the anomaly model against finite "
    "differences",
    "[meta][objective]") {
  Rng rng(11);
  const auto prior = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly{0.2, 4.0, 3.0};
  const baypr::meta::Mlp mlp({6, 5, 3});
  for (const Objective objective :
       {Objective::discriminative, Objective::ranking, Objective::generative}) {
    for (const double supcon : {0.0, 0.2}) {
      const MetaEpisode ep = episode(6, 4, 5, 3, rng);
      const Vec theta = mlp.initial_parameters(12);
      const OuterOptions o = options(objective, {0.2, 0.5}, supcon);
      INFO("objective " << static_cast<int>(objective) << ", SupCon " << supcon);
      const auto g =
          baypr::meta::outer_loss_and_gradient(mlp, theta, ep, prior, meta_options(anomaly, o));
      const Vec fd = central_difference(
          [&](const Vec& t) {
            return baypr::meta::outer_loss_and_gradient(mlp, t, ep, prior, meta_options(anomaly, o))
                .value;
          },
          theta, 1e-4);
      CHECK(relative_error(g.gradient, fd) < 1e-8);
      const Vec cal(Eigen::Vector2d(o.calibration.rho, o.calibration.beta));
      const Vec fd_cal = central_difference(
          [&](const Vec& c) {
            OuterOptions oc = o;
            oc.calibration = {c(0), c(1)};
            return baypr::meta::outer_loss_and_gradient(mlp, theta, ep, prior,
                                                        meta_options(anomaly, oc))
                .value;
          },
          cal, 1e-4);
      if (objective == Objective::generative) {
        CHECK(g.calibration_gradient.isZero(0.0));
        CHECK(fd_cal.norm() < 1e-9);
      } else {
        CHECK((g.calibration_gradient - fd_cal).norm() < 1e-8 * fd_cal.norm());
        CHECK(fd_cal.norm() > 1e-4);
      }
    }
  }
}

TEST_CASE(
    "meta_step with the discriminative and ranking objectives: exact second order against finite "
    "differences",
    "[meta][objective]") {
  // A smooth embedding (a ReLU network's kinks would spoil the differences after the inner steps).
  Rng rng(13);
  const Linear mlp(6, 4);
  const VagueAnomalyModel anomaly;
  const auto prior = NiwPrior<double>::method_default(4);
  // K = 5 > d: dense posterior path; K = 2 < d: the low-rank one.
  for (const Eigen::Index shots : {Eigen::Index{5}, Eigen::Index{2}}) {
    for (const Objective objective : {Objective::discriminative, Objective::ranking}) {
      const MetaEpisode ep = episode(6, shots, 5, 3, rng);
      const Vec theta = mlp.initial_parameters(14);
      const AdaptOptions a{2, 0.2, Path::automatic};
      const OuterOptions o = options(objective, {-0.2, 0.3}, 0.1);
      INFO("K " << shots << ", objective " << static_cast<int>(objective));
      const Vec fd = central_difference(
          [&](const Vec& t) {
            const auto adapted =
                baypr::meta::adapt(mlp, t, ep.support, prior, meta_options(anomaly, o, a));
            return baypr::meta::outer_loss_and_gradient(mlp, adapted.params, ep, prior,
                                                        meta_options(anomaly, o, a))
                .value;
          },
          theta, 1e-4);
      const auto so = baypr::meta::meta_step(
          mlp, theta, ep, prior, meta_options(anomaly, o, a, MetaGradient::second_order));
      CHECK(relative_error(so.gradient, fd) < 1e-7);
      const auto fo = baypr::meta::meta_step(
          mlp, theta, ep, prior, meta_options(anomaly, o, a, MetaGradient::first_order));
      CHECK(relative_error(fo.gradient, fd) > 1e-4);  // first order is not the exact gradient here
      CHECK(fo.calibration_gradient == so.calibration_gradient);  // rho, beta are not adapted
      // The default order, automatic, is the exact second order for a twice differentiable
      // embedding.
      STATIC_REQUIRE(baypr::meta::TwiceDifferentiableEmbedding<Linear>);
      REQUIRE(MetaOptions{}.order == MetaGradient::automatic);
      const auto automatic =
          baypr::meta::meta_step(mlp, theta, ep, prior, meta_options(anomaly, o, a));
      CHECK(automatic.gradient == so.gradient);
      CHECK(automatic.outer_loss == so.outer_loss);
      // meta_step adapts as adapt() does: its inner loss is adapt's first, its theta' adapt's.
      const auto adapted =
          baypr::meta::adapt(mlp, theta, ep.support, prior, meta_options(anomaly, o, a));
      REQUIRE(adapted.inner_losses.size() == 3);
      CHECK(near(so.inner_loss, adapted.inner_losses[0], 1e-12));
      CHECK(relative_error(so.adapted, adapted.params) < 1e-12);
    }
  }
}

TEST_CASE("calibrated_meta_step: the joint [theta; rho; beta] gradient against finite differences",
          "[meta][objective]") {
  Rng rng(17);
  const Linear mlp(6, 3);
  const auto prior = NiwPrior<double>::method_default(3);
  const VagueAnomalyModel anomaly;
  const MetaEpisode ep = episode(6, 4, 6, 2, rng);
  const AdaptOptions a{1, 0.1, Path::automatic};
  const OuterOptions o = options(Objective::discriminative, {}, 0.1);
  const Vec joint = baypr::meta::with_calibration(mlp.initial_parameters(18), {0.4, -1.2});
  baypr::meta::MetaStepper stepper(mlp);
  const auto step = baypr::meta::calibrated_meta_step(
      stepper, joint, ep, prior, meta_options(anomaly, o, a, MetaGradient::second_order));
  const Vec fd = central_difference(
      [&](const Vec& j) {
        const auto [theta, c] = baypr::meta::split_calibration(j);
        OuterOptions oc = o;
        oc.calibration = c;
        const auto adapted =
            baypr::meta::adapt(mlp, theta, ep.support, prior, meta_options(anomaly, oc, a));
        return baypr::meta::outer_loss_and_gradient(mlp, adapted.params, ep, prior,
                                                    meta_options(anomaly, oc, a))
            .value;
      },
      joint, 1e-4);
  REQUIRE(step.gradient.size() == joint.size());
  CHECK(relative_error(step.gradient, fd) < 1e-7);
  CHECK(step.adapted.tail<2>() == joint.tail<2>());
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::calibrated_meta_step(stepper, joint.head(joint.size() - 1),
                                                           ep, prior);
                 }),
                 "baypr::meta::calibrated_meta_step: argument 'joint'"));
}

TEST_CASE(
    "learned anomaly model under the discriminative objective: gradient against finite differences",
    "[meta][objective]") {
  Rng rng(19);
  const Linear linear(6, 3);
  const auto prior = NiwPrior<double>::method_default(3);
  const MetaEpisode ep = episode(6, 4, 5, 3, rng);
  const AdaptOptions a{1, 0.1, Path::automatic};
  const OuterOptions o = options(Objective::discriminative);
  const Vec joint =
      baypr::meta::joint_parameters(linear.initial_parameters(3), VagueAnomalyModel{0.2, 5.0, 3.0});
  const auto step = baypr::meta::learned_anomaly_meta_step(
      linear, joint, ep, prior, meta_options({}, o, a, MetaGradient::second_order));
  const Vec fd = central_difference(
      [&](const Vec& j) {
        const auto [theta, anomaly] = baypr::meta::split_joint_parameters(j);
        const auto adapted =
            baypr::meta::adapt(linear, theta, ep.support, prior, meta_options(anomaly, o, a));
        return baypr::meta::outer_loss_and_gradient(linear, adapted.params, ep, prior,
                                                    meta_options(anomaly, o, a))
            .value;
      },
      joint, 1e-4);
  CHECK(relative_error(step.gradient, fd) < 1e-7);
  CHECK(step.gradient.tail<3>().cwiseAbs().minCoeff() > 1e-8);
}

TEST_CASE(
    "fit_calibration: the class-balanced logistic optimum, a fallback when the scores are reversed",
    "[meta][objective]") {
  Rng rng(23);
  std::normal_distribution<double> nd(0.0, 1.0);
  Vec s(60);
  Eigen::VectorXi y(60);
  for (Eigen::Index j = 0; j < 60; ++j) {
    y(j) = j < 45 ? 0 : 1;
    s(j) = 10.0 + 3.0 * nd(rng) + (j < 45 ? 0.0 : 4.0);
  }
  const Calibration c = baypr::meta::fit_calibration(s, y);
  // Stationary: the discriminative loss's calibration gradient (without L2) vanishes there.
  double g_alpha = 0.0, g_beta = 0.0;
  for (Eigen::Index j = 0; j < 60; ++j) {
    const int label = y(j);
    const double w = 1.0 / (2.0 * (label == 0 ? 45 : 15));
    const double e = w * (1.0 / (1.0 + std::exp(-(c.alpha() * s(j) + c.beta))) - label);
    g_alpha += e * s(j);
    g_beta += e;
  }
  CHECK(std::abs(g_alpha) < 1e-9);
  CHECK(std::abs(g_beta) < 1e-10);
  CHECK(c.alpha() > 0.0);
  // Reversed scores: alpha = 1 / pooled sd, the boundary at the midpoint of the class means.
  const Calibration r = baypr::meta::fit_calibration(Vec(-s), y);
  const double mean0 = -s.head(45).mean(), mean1 = -s.tail(15).mean();
  const double var = ((-s.head(45)).array() - mean0).square().sum() +
                     ((-s.tail(15)).array() - mean1).square().sum();
  CHECK(near(r.alpha(), 1.0 / std::sqrt(var / 60.0), 1e-10));
  CHECK(near(r.beta, -r.alpha() * (mean0 + mean1) / 2, 1e-10));
  // Bad input.
  CHECK(contains(
      message_of([&] { (void)baypr::meta::fit_calibration(s, Eigen::VectorXi::Zero(60)); }),
      "baypr::meta::fit_calibration: argument 'labels'"));
  Vec bad = s;
  bad(3) = std::nan("");
  CHECK(contains(message_of([&] { (void)baypr::meta::fit_calibration(bad, y); }),
                 "baypr::meta::fit_calibration: argument 'scores'"));
}

TEST_CASE("outer objectives: bad calibration or options are rejected, naming the argument",
          "[meta][objective]") {
  Rng rng(29);
  const Linear emb(5, 3);
  const Vec theta = emb.initial_parameters(1);
  const MetaEpisode ep = episode(5, 3, 4, 2, rng);
  const auto prior = NiwPrior<double>::method_default(3);
  auto message = [&](const OuterOptions& o) {
    return message_of([&] {
      (void)baypr::meta::meta_step(emb, theta, ep, prior,
                                   meta_options({}, o, {}, MetaGradient::first_order));
    });
  };
  OuterOptions o;
  o.calibration.rho = std::nan("");
  CHECK(contains(message(o), "baypr::meta::meta_step: argument 'options.outer.calibration.rho'"));
  o.calibration.rho = 60.0;
  CHECK(contains(message(o), "argument 'options.outer.calibration.rho' must lie in [-50, 50]"));
  o.calibration.rho = 0.0;
  o.calibration.beta = std::numeric_limits<double>::infinity();
  CHECK(contains(message(o), "argument 'options.outer.calibration.beta'"));
  o.calibration.beta = 0.0;
  o.calibration_l2 = -1.0;
  CHECK(contains(message(o), "argument 'options.outer.calibration_l2'"));
  o.calibration_l2 = 0.0;
  o.supcon_weight = -0.1;
  CHECK(contains(message(o), "argument 'options.outer.supcon_weight' must be finite and >= 0"));
  o.supcon_weight = 0.1;
  o.supcon_temperature = 0.0;
  CHECK(contains(message(o), "argument 'options.outer.supcon_temperature'"));
  o.supcon_weight = 0.0;
  o.supcon_temperature = 0.07;
  o.objective = static_cast<Objective>(7);
  CHECK(contains(message(o), "argument 'options.outer.objective'"));
  // The same checks name the same argument in every entry point that has an outer loss.
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::outer_loss_and_gradient(emb, theta, ep, prior,
                                                              meta_options({}, o));
                 }),
                 "baypr::meta::outer_loss_and_gradient: argument 'options.outer.objective'"));
  o.objective = Objective::discriminative;
  // The anomaly model and the order are options too, named by their path.
  CHECK(contains(
      message_of([&] {
        (void)baypr::meta::meta_step(emb, theta, ep, prior, meta_options({0.0, -1.0, 2.0}, o));
      }),
      "baypr::meta::meta_step: argument 'options.anomaly.scale'"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::meta_step(
                       emb, theta, ep, prior,
                       meta_options({}, o, {}, static_cast<MetaGradient>(9)));
                 }),
                 "baypr::meta::meta_step: argument 'options.order' is not a valid MetaGradient"));
  CHECK(contains(message_of([] { (void)baypr::meta::split_calibration(Vec::Zero(2)); }),
                 "baypr::meta::split_calibration: argument 'joint'"));
  // A zero query embedding cannot be normalised for SupCon: the message names the public entry
  // point (it used to say "baypr::meta supcon"), on the taped path and through
  // outer_loss_and_gradient.
  OuterOptions supcon;
  supcon.supcon_weight = 0.1;
  const Vec zero = Vec::Zero(theta.size());
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::meta_step(
                       emb, zero, ep, prior,
                       meta_options({}, supcon, {}, MetaGradient::first_order));
                 }),
                 "baypr::meta::meta_step: a query embedding is zero"));
  CHECK(contains(message_of([&] {
                   (void)baypr::meta::outer_loss_and_gradient(emb, zero, ep, prior,
                                                              meta_options({}, supcon));
                 }),
                 "baypr::meta::outer_loss_and_gradient: a query embedding is zero"));
}

TEST_CASE(
    "log_predictive_vjp_with: weights chosen from the densities equal the plain VJP with those "
    "weights",
    "[meta][objective]") {
  Rng rng(31);
  const auto prior = NiwPrior<double>::method_default(4);
  const Mat Z = normal_matrix(6, 4, rng), Q = normal_matrix(5, 4, rng);
  const auto chosen = baypr::log_predictive_vjp_with(
      prior, Z, Q, [](const Vec& l) { return Vec(l.array().exp()); });
  const auto plain = baypr::log_predictive_vjp(prior, Z, Q, chosen.weights);
  CHECK(chosen.weights.isApprox(chosen.log_pdf.array().exp().matrix()));
  CHECK(chosen.log_pdf.isApprox(prior.posterior(Z).predictive().log_pdf(Q)));
  CHECK(chosen.value == plain.value);
  CHECK(chosen.d_support == plain.d_support);
  CHECK(chosen.d_queries == plain.d_queries);
  CHECK(contains(message_of([&] {
                   (void)baypr::log_predictive_vjp_with(
                       prior, Z, Q, [](const Vec& l) { return Vec(l * std::nan("")); });
                 }),
                 "baypr::log_predictive_vjp_with: argument 'weights'"));
}
